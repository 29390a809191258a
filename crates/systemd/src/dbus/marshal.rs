//! Values to the D-Bus wire format (little endian). Offsets are relative to the start of the
//! buffer, which must itself sit at an 8-aligned offset of the message (the header does, and
//! so does the body: the header is padded to 8).

use super::types::{Type, Value};

#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::I32(x) => {
                self.pad(4);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) | Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.signature(s),
            Value::Variant(inner) => {
                self.signature(&inner.ty().to_string());
                self.value(inner);
            }
            Value::Array(elem, items) => self.array(elem, items),
            Value::Struct(fields) => {
                self.pad(8);
                fields.iter().for_each(|f| self.value(f));
            }
            Value::DictEntry(k, v) => {
                self.pad(8);
                self.value(k);
                self.value(v);
            }
        }
    }

    /// The length counts the elements' bytes only: not the padding between the length and
    /// the first element, which is there even when the array is empty.
    fn array(&mut self, elem: &Type, items: &[Value]) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(elem.align());
        let start = self.buf.len();
        items.iter().for_each(|i| self.value(i));
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Marshal a list of values (a message body) from offset 0.
pub fn marshal(values: &[Value]) -> Vec<u8> {
    let mut e = Encoder::new();
    values.iter().for_each(|v| e.value(v));
    e.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_types_align_and_terminate() {
        // y pad(3) u32 ; s = len + bytes + NUL ; t aligned to 8
        let b = marshal(&[
            Value::Byte(7),
            Value::U32(1),
            Value::str("ab"),
            Value::U64(2),
        ]);
        assert_eq!(
            b,
            [
                7, 0, 0, 0, 1, 0, 0, 0, // y, pad, u
                2, 0, 0, 0, b'a', b'b', 0, // s
                0, // pad to 16
                2, 0, 0, 0, 0, 0, 0, 0, // t
            ]
        );
    }

    #[test]
    fn empty_array_of_structs_still_pads_to_the_element() {
        // a(sv) empty: length 0 at 0..4, then pad to 8 even without elements.
        let b = marshal(&[Value::Array(
            Type::Struct(vec![Type::Str, Type::Variant]),
            vec![],
        )]);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0]);
        // after a byte: pad to 4 for the length, then to 8
        let b = marshal(&[Value::Byte(1), Value::Array(Type::U64, vec![])]);
        assert_eq!(b, [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn variant_carries_its_signature() {
        // v(b true): g "b" then pad to 4 then u32 1
        let b = marshal(&[Value::variant(Value::Bool(true))]);
        assert_eq!(b, [1, b'b', 0, 0, 1, 0, 0, 0]);
        // v(au [5]): g "au", pad to 4, length 4, 5
        let b = marshal(&[Value::variant(Value::Array(Type::U32, vec![Value::U32(5)]))]);
        assert_eq!(b, [2, b'a', b'u', 0, 4, 0, 0, 0, 5, 0, 0, 0]);
    }

    #[test]
    fn array_length_excludes_leading_padding() {
        // at(1, 2): length 16 at 0, pad 4..8, elements 8..24
        let b = marshal(&[Value::Array(Type::U64, vec![Value::U64(1), Value::U64(2)])]);
        assert_eq!(&b[..4], &16u32.to_le_bytes());
        assert_eq!(b.len(), 24);
    }
}
