//! D-Bus types (signatures) and values: the subset systemd's manager interface uses.
//! Unix fds (`h`) and doubles are left out: nothing the driver sends or reads carries them.

use std::fmt;

/// One complete type of a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Byte,
    Bool,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Str,
    ObjectPath,
    Signature,
    Variant,
    Array(Box<Type>),
    Struct(Vec<Type>),
    DictEntry(Box<Type>, Box<Type>),
}

/// The spec's limits: 255 bytes of signature, 32 nested arrays and 32 nested structs.
const MAX_SIGNATURE: usize = 255;
const MAX_DEPTH: usize = 64;

impl Type {
    /// Alignment of the type's wire form, relative to the message start.
    pub fn align(&self) -> usize {
        match self {
            Type::Byte | Type::Signature | Type::Variant => 1,
            Type::I16 | Type::U16 => 2,
            Type::Bool | Type::I32 | Type::U32 | Type::Str | Type::ObjectPath | Type::Array(_) => 4,
            Type::I64 | Type::U64 | Type::Struct(_) | Type::DictEntry(..) => 8,
        }
    }

    /// Parse a signature holding any number of complete types (a body's signature).
    pub fn parse_list(sig: &str) -> Result<Vec<Type>, String> {
        if sig.len() > MAX_SIGNATURE {
            return Err(format!("signature of {} bytes (at most 255)", sig.len()));
        }
        let b = sig.as_bytes();
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < b.len() {
            out.push(parse_one(b, &mut pos, 0).map_err(|e| format!("signature {sig:?}: {e}"))?);
        }
        Ok(out)
    }

    /// Parse a signature that must be exactly one complete type (a variant's).
    pub fn parse_single(sig: &str) -> Result<Type, String> {
        let mut list = Type::parse_list(sig)?;
        if list.len() != 1 {
            return Err(format!("signature {sig:?} is not one complete type"));
        }
        Ok(list.remove(0))
    }

    fn write_sig(&self, out: &mut String) {
        match self {
            Type::Byte => out.push('y'),
            Type::Bool => out.push('b'),
            Type::I16 => out.push('n'),
            Type::U16 => out.push('q'),
            Type::I32 => out.push('i'),
            Type::U32 => out.push('u'),
            Type::I64 => out.push('x'),
            Type::U64 => out.push('t'),
            Type::Str => out.push('s'),
            Type::ObjectPath => out.push('o'),
            Type::Signature => out.push('g'),
            Type::Variant => out.push('v'),
            Type::Array(t) => {
                out.push('a');
                t.write_sig(out);
            }
            Type::Struct(ts) => {
                out.push('(');
                ts.iter().for_each(|t| t.write_sig(out));
                out.push(')');
            }
            Type::DictEntry(k, v) => {
                out.push('{');
                k.write_sig(out);
                v.write_sig(out);
                out.push('}');
            }
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_sig(&mut s);
        f.write_str(&s)
    }
}

fn parse_one(b: &[u8], pos: &mut usize, depth: usize) -> Result<Type, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let c = *b.get(*pos).ok_or("ends inside a type")?;
    *pos += 1;
    Ok(match c {
        b'y' => Type::Byte,
        b'b' => Type::Bool,
        b'n' => Type::I16,
        b'q' => Type::U16,
        b'i' => Type::I32,
        b'u' => Type::U32,
        b'x' => Type::I64,
        b't' => Type::U64,
        b's' => Type::Str,
        b'o' => Type::ObjectPath,
        b'g' => Type::Signature,
        b'v' => Type::Variant,
        b'a' => {
            if b.get(*pos) == Some(&b'{') {
                *pos += 1;
                let k = parse_one(b, pos, depth + 1)?;
                if matches!(
                    k,
                    Type::Array(_) | Type::Struct(_) | Type::DictEntry(..) | Type::Variant
                ) {
                    return Err("a dict key must be a basic type".into());
                }
                let v = parse_one(b, pos, depth + 1)?;
                if b.get(*pos) != Some(&b'}') {
                    return Err("a dict entry holds exactly two types".into());
                }
                *pos += 1;
                Type::Array(Box::new(Type::DictEntry(Box::new(k), Box::new(v))))
            } else {
                Type::Array(Box::new(parse_one(b, pos, depth + 1)?))
            }
        }
        b'(' => {
            let mut fields = Vec::new();
            while b.get(*pos) != Some(&b')') {
                if *pos >= b.len() {
                    return Err("unclosed struct".into());
                }
                fields.push(parse_one(b, pos, depth + 1)?);
            }
            *pos += 1;
            if fields.is_empty() {
                return Err("empty struct".into());
            }
            Type::Struct(fields)
        }
        other => {
            return Err(format!(
                "unknown or unsupported type code {:?}",
                other as char
            ));
        }
    })
}

/// A value with its type. Arrays carry their element type so that an empty one still has a
/// signature.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    Variant(Box<Value>),
    Array(Type, Vec<Value>),
    Struct(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    pub fn ty(&self) -> Type {
        match self {
            Value::Byte(_) => Type::Byte,
            Value::Bool(_) => Type::Bool,
            Value::I16(_) => Type::I16,
            Value::U16(_) => Type::U16,
            Value::I32(_) => Type::I32,
            Value::U32(_) => Type::U32,
            Value::I64(_) => Type::I64,
            Value::U64(_) => Type::U64,
            Value::Str(_) => Type::Str,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Struct(vs) => Type::Struct(vs.iter().map(Value::ty).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.ty()), Box::new(v.ty())),
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// `as`
    pub fn str_array<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            Type::Str,
            items.iter().map(|s| Value::str(s.as_ref())).collect(),
        )
    }

    /// `ay`
    pub fn bytes(b: &[u8]) -> Value {
        Value::Array(Type::Byte, b.iter().copied().map(Value::Byte).collect())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::U64(v) => Some(*v),
            _ => None,
        }
    }

    /// The value inside a variant (or the value itself).
    pub fn unvariant(&self) -> &Value {
        match self {
            Value::Variant(v) => v.unvariant(),
            v => v,
        }
    }
}

/// The signature of a list of values (a message body).
pub fn signature_of(values: &[Value]) -> String {
    values.iter().map(|v| v.ty().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip() {
        for sig in [
            "s",
            "ssa(sv)a(sa(sv))",
            "a{sv}",
            "a(sb)",
            "(yv)",
            "uoss",
            "aay",
        ] {
            let list = Type::parse_list(sig).unwrap();
            let back: String = list.iter().map(|t| t.to_string()).collect();
            assert_eq!(back, sig);
        }
    }

    #[test]
    fn bad_signatures_are_refused_naming_them() {
        for sig in ["a", "(s", "()", "a{vs}", "a{sss}", "h", "d", "(ss"] {
            let e = Type::parse_list(sig).unwrap_err();
            assert!(e.contains(&format!("{sig:?}")), "{sig}: {e}");
        }
        assert!(Type::parse_single("ss").is_err());
        assert!(Type::parse_list(&"a".repeat(70).replace("aa", "a(")).is_err());
    }

    #[test]
    fn value_types_include_empty_arrays() {
        let v = Value::Struct(vec![
            Value::str("PIDs"),
            Value::variant(Value::Array(Type::U32, vec![])),
        ]);
        assert_eq!(v.ty().to_string(), "(sv)");
        assert_eq!(Value::str_array::<&str>(&[]).ty().to_string(), "as");
    }
}
