//! Reading config.json and process.json into oci-spec types, with errors that name the file
//! and the field (`config.json: process.args[0]: invalid type: integer, expected a string`).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The name of the configuration file inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Reads `<bundle>/config.json`.
pub fn load_config(bundle: &Path) -> Result<Spec> {
    let path = bundle.join(CONFIG_FILE);
    let data = read(&path, "the bundle has no config.json (check --bundle)")?;
    parse(&path, &data)
}

/// Reads a runtime-spec `process` object, as `exec --process FILE` takes it.
pub fn load_process(path: &Path) -> Result<Process> {
    let (name, data) = read_input(path, "no such process file")?;
    parse(&name, &data)
}

/// Reads a file named on the command line, `-` being stdin; returns the name to use in
/// messages (`<stdin>` for stdin) and the content.
pub fn read_input(path: &Path, missing: &str) -> Result<(PathBuf, Vec<u8>)> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Error::path("read", "<stdin>", e))?;
        return Ok((PathBuf::from("<stdin>"), buf));
    }
    Ok((path.to_path_buf(), read(path, missing)?))
}

fn read(path: &Path, missing: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config {
                path: path.to_path_buf(),
                message: missing.to_string(),
            }
        } else {
            Error::path("read", path, e)
        }
    })
}

/// The runtime-spec's names of two scheduler flags, and the spelling oci-spec 0.10 reads.
const SCHEDULER_FLAG_SPELLINGS: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// oci-spec 0.10 misspells two `process.scheduler.flags` (see
/// [`SCHEDULER_FLAG_SPELLINGS`]): a document that uses the runtime-spec's names gets
/// oci-spec's in those arrays (and nowhere else). Only such documents pay for the rewrite.
fn spec_scheduler_flags(data: &[u8]) -> Option<Vec<u8>> {
    // One pass, the names compared only after a quote: a comparison at every byte
    // (`windows(..).any(..)` per name) was a tenth of the instructions of a `create`.
    let quoted_at = |i: usize, name: &str| {
        data[i..]
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'"'))
    };
    let named = data.iter().enumerate().any(|(i, &b)| {
        b == b'"'
            && SCHEDULER_FLAG_SPELLINGS
                .iter()
                .any(|(spec, _)| quoted_at(i + 1, spec))
    });
    if !named {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_slice(data).ok()?;
    for pointer in ["/process/scheduler/flags", "/scheduler/flags"] {
        let Some(flags) = value.pointer_mut(pointer).and_then(|f| f.as_array_mut()) else {
            continue;
        };
        for flag in flags {
            if let Some((_, ours)) = SCHEDULER_FLAG_SPELLINGS
                .iter()
                .find(|(spec, _)| flag.as_str() == Some(spec))
            {
                *flag = serde_json::Value::from(*ours);
            }
        }
    }
    serde_json::to_vec(&value).ok()
}

/// Parses JSON into `T`, naming the JSON path of the first error.
pub fn parse<T: DeserializeOwned>(path: &Path, data: &[u8]) -> Result<T> {
    let fixed = spec_scheduler_flags(data);
    let data = fixed.as_deref().unwrap_or(data);
    let mut de = serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if field.is_empty() || field == "." {
            inner.to_string()
        } else {
            format!("{field}: {inner}")
        };
        Error::Config {
            path: PathBuf::from(path),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_of_a_type_error() {
        let err = parse::<Spec>(
            Path::new("b/config.json"),
            br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":[1]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("b/config.json: process.args[0]"), "{err}");
    }

    #[test]
    fn names_an_unknown_namespace_type() {
        let err = parse::<Spec>(
            Path::new("config.json"),
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("linux.namespaces[1].type"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn reports_malformed_json_with_position() {
        let err = parse::<Spec>(Path::new("config.json"), b"{\"ociVersion\": ")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn scheduler_flags_take_the_runtime_specs_names() {
        let p: Process = parse(
            Path::new("process.json"),
            br#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["true"],"env":["X=SCHED_FLAG_DL_OVERRUN"],
                "scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]}}"#,
        )
        .unwrap();
        use oci_spec::runtime::LinuxSchedulerFlag::*;
        assert_eq!(
            p.scheduler().as_ref().unwrap().flags().as_deref().unwrap(),
            [SchedResetOnFork, SchedFlagDLOverrun, SchedFlagReclaim]
        );
        // Only the flags were renamed.
        assert_eq!(p.env().as_deref().unwrap(), ["X=SCHED_FLAG_DL_OVERRUN"]);
    }

    #[test]
    fn missing_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_config(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(err.contains("--bundle"), "{err}");
    }
}
