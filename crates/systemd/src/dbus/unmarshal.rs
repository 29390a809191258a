//! The D-Bus wire format to values, driven by a signature. Every read is bounds-checked: a
//! malformed message from the bus is an error naming what was wrong and where, never a panic.

use super::types::{Type, Value};

/// The spec's limit on one array's bytes.
const MAX_ARRAY: usize = 64 << 20;

pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Decoder<'a> {
    /// `buf` must start at an 8-aligned offset of its message.
    pub fn new(buf: &'a [u8], big_endian: bool) -> Decoder<'a> {
        Decoder {
            buf,
            pos: 0,
            big_endian,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    pub fn align(&mut self, a: usize) -> Result<(), String> {
        let next = self.pos.div_ceil(a) * a;
        if next > self.buf.len() {
            return Err(self.err("padding past the end"));
        }
        if self.buf[self.pos..next].iter().any(|&b| b != 0) {
            return Err(self.err("non-zero padding"));
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| self.err(&format!("{n} bytes past the end")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        if self.big_endian {
            a.reverse();
        }
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn text(&mut self, len: usize) -> Result<String, String> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(self.err("string without its NUL"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| self.err("string not UTF-8"))?;
        if s.contains('\0') {
            return Err(self.err("NUL inside a string"));
        }
        Ok(s.to_owned())
    }

    fn signature(&mut self) -> Result<String, String> {
        let len = self.take(1)?[0] as usize;
        self.text(len)
    }

    pub fn value(&mut self, ty: &Type) -> Result<Value, String> {
        Ok(match ty {
            Type::Byte => Value::Byte(self.take(1)?[0]),
            Type::Bool => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(self.err("boolean neither 0 nor 1")),
            },
            Type::I16 => Value::I16(i16::from_le_bytes(self.fixed()?)),
            Type::U16 => Value::U16(u16::from_le_bytes(self.fixed()?)),
            Type::I32 => Value::I32(i32::from_le_bytes(self.fixed()?)),
            Type::U32 => Value::U32(self.u32()?),
            Type::I64 => Value::I64(i64::from_le_bytes(self.fixed()?)),
            Type::U64 => Value::U64(u64::from_le_bytes(self.fixed()?)),
            Type::Str | Type::ObjectPath => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if *ty == Type::Str {
                    Value::Str(s)
                } else {
                    Value::ObjectPath(s)
                }
            }
            Type::Signature => Value::Signature(self.signature()?),
            Type::Variant => {
                let sig = self.signature()?;
                let inner = Type::parse_single(&sig).map_err(|e| self.err(&e))?;
                Value::Variant(Box::new(self.value(&inner)?))
            }
            Type::Array(elem) => {
                let len = self.u32()? as usize;
                if len > MAX_ARRAY {
                    return Err(self.err(&format!("array of {len} bytes")));
                }
                self.align(elem.align())?;
                let end = self.pos + len;
                if end > self.buf.len() {
                    return Err(self.err("array past the end"));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                if self.pos != end {
                    return Err(self.err("array elements overrun its length"));
                }
                Value::Array((**elem).clone(), items)
            }
            Type::Struct(fields) => {
                self.align(8)?;
                Value::Struct(
                    fields
                        .iter()
                        .map(|f| self.value(f))
                        .collect::<Result<_, _>>()?,
                )
            }
            Type::DictEntry(k, v) => {
                self.align(8)?;
                let k = self.value(k)?;
                Value::DictEntry(Box::new(k), Box::new(self.value(v)?))
            }
        })
    }
}

/// Read a body of the given signature; the whole buffer must be consumed.
pub fn unmarshal(buf: &[u8], signature: &str, big_endian: bool) -> Result<Vec<Value>, String> {
    let types = Type::parse_list(signature)?;
    let mut d = Decoder::new(buf, big_endian);
    let values = types
        .iter()
        .map(|t| d.value(t))
        .collect::<Result<Vec<_>, _>>()?;
    if d.pos() != buf.len() {
        return Err(format!(
            "{} bytes after a body of signature {signature:?}",
            buf.len() - d.pos()
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::super::marshal::marshal;
    use super::*;

    fn props() -> Vec<Value> {
        let prop = |n: &str, v: Value| Value::Struct(vec![Value::str(n), Value::variant(v)]);
        let sv = Type::Struct(vec![Type::Str, Type::Variant]);
        vec![
            Value::str("berth-x.scope"),
            Value::str("fail"),
            Value::Array(
                sv.clone(),
                vec![
                    prop("Delegate", Value::Bool(true)),
                    prop("PIDs", Value::Array(Type::U32, vec![Value::U32(42)])),
                    prop("MemoryMax", Value::U64(1 << 26)),
                    prop("AllowedCPUs", Value::bytes(&[0x2f])),
                    prop("X", Value::str_array(&["a", "b"])),
                ],
            ),
            Value::Array(
                Type::Struct(vec![Type::Str, Type::Array(Box::new(sv))]),
                vec![],
            ),
        ]
    }

    #[test]
    fn round_trip_of_a_start_transient_unit_body() {
        let v = props();
        let sig = super::super::types::signature_of(&v);
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        assert_eq!(unmarshal(&marshal(&v), &sig, false).unwrap(), v);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let v = props();
        let b = marshal(&v);
        let sig = super::super::types::signature_of(&v);
        for n in 0..b.len() {
            assert!(unmarshal(&b[..n], &sig, false).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        // boolean 2
        assert!(
            unmarshal(&[2, 0, 0, 0], "b", false)
                .unwrap_err()
                .contains("boolean")
        );
        // non-zero padding
        assert!(
            unmarshal(&[1, 9, 0, 0, 1, 0, 0, 0], "yu", false)
                .unwrap_err()
                .contains("padding")
        );
        // string missing NUL
        assert!(unmarshal(&[1, 0, 0, 0, b'a', b'b'], "s", false).is_err());
        // bad UTF-8
        assert!(
            unmarshal(&[1, 0, 0, 0, 0xff, 0], "s", false)
                .unwrap_err()
                .contains("UTF-8")
        );
        // huge array length
        assert!(unmarshal(&[0xff, 0xff, 0xff, 0x7f], "ay", false).is_err());
        // trailing bytes
        assert!(
            unmarshal(&[1, 0, 0, 0, 0], "u", false)
                .unwrap_err()
                .contains("after")
        );
    }

    #[test]
    fn big_endian_messages_are_read() {
        assert_eq!(
            unmarshal(&[0, 0, 0, 5], "u", true).unwrap(),
            vec![Value::U32(5)]
        );
        assert_eq!(
            unmarshal(&[0, 0, 0, 1, b'a', 0], "s", true).unwrap(),
            vec![Value::str("a")]
        );
    }
}
