//! Parsing a `linux.seccomp` JSON object with errors that name the entry.
//!
//! oci-spec's own deserializer would say "unknown variant `SCMP_ACT_FOO`,
//! expected one of ..." with a line and column; a user editing a 400-line
//! profile wants `syscalls[3]: unknown action "SCMP_ACT_FOO"`. So the JSON is
//! walked once for names and types, then handed to oci-spec.

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ProfileError;

/// Parse a `linux.seccomp` object from JSON text.
pub fn parse_profile(json: &[u8]) -> Result<LinuxSeccomp, ProfileError> {
    let v: Value = serde_json::from_slice(json).map_err(ProfileError::Json)?;
    parse_profile_value(v)
}

/// Parse a `linux.seccomp` object already read as a JSON value (for example
/// the `linux.seccomp` member of a config.json).
pub fn parse_profile_value(v: Value) -> Result<LinuxSeccomp, ProfileError> {
    check(&v)?;
    serde_json::from_value(v).map_err(ProfileError::Schema)
}

fn known<T: DeserializeOwned>(s: &str) -> bool {
    serde_json::from_value::<T>(Value::String(s.to_string())).is_ok()
}

fn obj<'a>(v: &'a Value, at: &str) -> Result<&'a serde_json::Map<String, Value>, ProfileError> {
    v.as_object().ok_or_else(|| ProfileError::Type {
        at: at.into(),
        expected: "an object",
    })
}

/// `key` of `o` as an array; absent or null -> empty.
fn arr<'a>(
    o: &'a serde_json::Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a [Value], ProfileError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ProfileError::Type {
            at: at.into(),
            expected: "an array",
        }),
    }
}

fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, ProfileError> {
    v.as_str().ok_or_else(|| ProfileError::Type {
        at: at.into(),
        expected: "a string",
    })
}

fn check(v: &Value) -> Result<(), ProfileError> {
    let root = obj(v, "seccomp")?;
    let act = root.get("defaultAction").ok_or(ProfileError::Missing {
        at: "defaultAction".into(),
    })?;
    let act = string(act, "defaultAction")?;
    if !known::<LinuxSeccompAction>(act) {
        return Err(ProfileError::UnknownAction {
            at: "defaultAction".into(),
            value: act.into(),
        });
    }
    for (i, a) in arr(root, "architectures", "architectures")?
        .iter()
        .enumerate()
    {
        let at = format!("architectures[{i}]");
        let s = string(a, &at)?;
        if !known::<OciArch>(s) {
            return Err(ProfileError::UnknownArch {
                at,
                value: s.into(),
            });
        }
    }
    for (i, f) in arr(root, "flags", "flags")?.iter().enumerate() {
        let at = format!("flags[{i}]");
        let s = string(f, &at)?;
        if !known::<LinuxSeccompFilterFlag>(s) {
            return Err(ProfileError::UnknownFlag {
                at,
                value: s.into(),
            });
        }
    }
    for (i, sc) in arr(root, "syscalls", "syscalls")?.iter().enumerate() {
        let at = format!("syscalls[{i}]");
        let o = obj(sc, &at)?;
        let act = o.get("action").ok_or_else(|| ProfileError::Missing {
            at: format!("{at}.action"),
        })?;
        let act = string(act, &format!("{at}.action"))?;
        if !known::<LinuxSeccompAction>(act) {
            return Err(ProfileError::UnknownAction {
                at,
                value: act.into(),
            });
        }
        if !o.contains_key("names") {
            return Err(ProfileError::Missing {
                at: format!("{at}.names"),
            });
        }
        for (j, n) in arr(o, "names", &format!("{at}.names"))?.iter().enumerate() {
            string(n, &format!("{at}.names[{j}]"))?;
        }
        for (j, a) in arr(o, "args", &format!("{at}.args"))?.iter().enumerate() {
            let at = format!("{at}.args[{j}]");
            let ao = obj(a, &at)?;
            let op = ao.get("op").ok_or_else(|| ProfileError::Missing {
                at: format!("{at}.op"),
            })?;
            let op = string(op, &format!("{at}.op"))?;
            if !known::<LinuxSeccompOperator>(op) {
                return Err(ProfileError::UnknownOp {
                    at,
                    value: op.into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        parse_profile(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_entry() {
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW"},{"names":["b"],"action":"SCMP_ACT_ALLOW"},{"names":["c"],"action":"SCMP_ACT_ALLOW"},{"names":["d"],"action":"SCMP_ACT_FOO"}]}"#
            ),
            r#"syscalls[3]: unknown action "SCMP_ACT_FOO""#
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#
            ),
            r#"syscalls[0].args[0]: unknown op "SCMP_CMP_XX""#
        );
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#),
            r#"defaultAction: unknown action "SCMP_ACT_NOPE""#
        );
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}"#
            ),
            r#"architectures[1]: unknown architecture "SCMP_ARCH_Z80""#
        );
        assert_eq!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_NOPE"]}"#),
            r#"flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE""#
        );
        assert_eq!(err(r#"{"syscalls":[]}"#), "defaultAction: missing");
        assert_eq!(
            err(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":"read","action":"SCMP_ACT_ALLOW"}]}"#
            ),
            "syscalls[0].names: expected an array"
        );
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","errnoRet":-1}]}"#)
            .starts_with("seccomp profile does not match the runtime-spec schema"));
        assert!(err("{").starts_with("seccomp profile is not valid JSON"));
    }

    #[test]
    fn accepts_every_spec_name() {
        let p = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","defaultErrnoRet":5,
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],
            "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath":"/run/agent.sock","listenerMetadata":"m",
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY","args":[
              {"index":0,"value":1,"op":"SCMP_CMP_NE"},{"index":1,"value":1,"op":"SCMP_CMP_LT"},
              {"index":2,"value":1,"op":"SCMP_CMP_LE"},{"index":3,"value":1,"op":"SCMP_CMP_EQ"},
              {"index":4,"value":1,"op":"SCMP_CMP_GE"},{"index":5,"value":1,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]},
              {"names":["write"],"action":"SCMP_ACT_GT_IS_NOT_AN_ACTION_BUT_THIS_IS_TESTED_ELSEWHERE"}]}"#,
        );
        assert!(p.is_err());
        for act in [
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
        ] {
            let j = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["read"],"action":"{act}"}}]}}"#
            );
            parse_profile(j.as_bytes()).unwrap_or_else(|e| panic!("{act}: {e}"));
        }
        for op in ["NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"] {
            let j = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["read"],"action":"SCMP_ACT_LOG","args":[{{"index":0,"value":1,"op":"SCMP_CMP_{op}"}}]}}]}}"#
            );
            parse_profile(j.as_bytes()).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }
}
