//! D-Bus messages: the fixed header, the header fields and the body.

use super::marshal::Encoder;
use super::types::{Type, Value, signature_of};
use super::unmarshal::{Decoder, unmarshal};

/// The spec's limit on a whole message.
pub const MAX_MESSAGE: usize = 128 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// Header flag: the caller will not read a reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const DESTINATION: u8 = 6;
const SENDER: u8 = 7;
const SIGNATURE: u8 = 8;
const UNIX_FDS: u8 = 9;

impl Message {
    pub fn method_call(
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: Vec<Value>,
    ) -> Message {
        Message {
            kind: Kind::MethodCall,
            flags: 0,
            serial: 0,
            path: Some(path.into()),
            interface: Some(interface.into()),
            member: Some(member.into()),
            error_name: None,
            reply_serial: None,
            destination: Some(destination.into()),
            sender: None,
            body,
        }
    }

    /// `interface.member`, for error messages.
    pub fn method_name(&self) -> String {
        format!(
            "{}.{}",
            self.interface.as_deref().unwrap_or(""),
            self.member.as_deref().unwrap_or("")
        )
    }

    /// The wire form. Header fields in code order, as libdbus and sd-bus write them.
    pub fn encode(&self) -> Vec<u8> {
        let body = {
            let mut e = Encoder::new();
            self.body.iter().for_each(|v| e.value(v));
            e.buf
        };
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
        let mut fields = Vec::new();
        let mut push_str = |code, v: &Option<String>, obj: bool| {
            if let Some(s) = v {
                let v = if obj {
                    Value::ObjectPath(s.clone())
                } else {
                    Value::str(s.clone())
                };
                fields.push(field(code, v));
            }
        };
        push_str(PATH, &self.path, true);
        push_str(INTERFACE, &self.interface, false);
        push_str(MEMBER, &self.member, false);
        push_str(ERROR_NAME, &self.error_name, false);
        if let Some(r) = self.reply_serial {
            fields.push(field(REPLY_SERIAL, Value::U32(r)));
        }
        let mut push_str = |code, v: &Option<String>| {
            if let Some(s) = v {
                fields.push(field(code, Value::str(s.clone())));
            }
        };
        push_str(DESTINATION, &self.destination);
        push_str(SENDER, &self.sender);
        if !self.body.is_empty() {
            fields.push(field(SIGNATURE, Value::Signature(signature_of(&self.body))));
        }
        let mut e = Encoder::new();
        e.buf
            .extend_from_slice(&[b'l', self.kind as u8, self.flags, 1]);
        e.value(&Value::U32(body.len() as u32));
        e.value(&Value::U32(self.serial));
        e.value(&Value::Array(
            Type::Struct(vec![Type::Byte, Type::Variant]),
            fields,
        ));
        e.pad(8);
        e.buf.extend_from_slice(&body);
        e.buf
    }

    /// How long the message starting with these 16 bytes is, in all.
    pub fn total_len(fixed: &[u8; 16]) -> Result<usize, String> {
        let be = match fixed[0] {
            b'l' => false,
            b'B' => true,
            o => return Err(format!("endianness byte {o:#x}")),
        };
        let word = |at: usize| {
            let w: [u8; 4] = fixed[at..at + 4].try_into().expect("4 bytes");
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let body = word(4) as usize;
        let fields = word(12) as usize;
        let total = (16 + fields).div_ceil(8) * 8 + body;
        if total > MAX_MESSAGE {
            return Err(format!("message of {total} bytes"));
        }
        Ok(total)
    }

    pub fn decode(buf: &[u8]) -> Result<Message, String> {
        if buf.len() < 16 {
            return Err("message shorter than its fixed header".into());
        }
        let be = buf[0] == b'B';
        let fixed: &[u8; 16] = buf[..16].try_into().expect("16 bytes");
        if Message::total_len(fixed)? != buf.len() {
            return Err("message length disagrees with its header".into());
        }
        let kind = match buf[1] {
            1 => Kind::MethodCall,
            2 => Kind::MethodReturn,
            3 => Kind::Error,
            4 => Kind::Signal,
            k => return Err(format!("message type {k}")),
        };
        if buf[3] != 1 {
            return Err(format!("protocol version {}", buf[3]));
        }
        let mut d = Decoder::new(buf, be);
        d.value(&Type::U32).and_then(|_| d.value(&Type::U32))?; // endianness..flags, body length
        let serial = d.u32()?;
        let fields_ty = Type::Array(Box::new(Type::Struct(vec![Type::Byte, Type::Variant])));
        let Value::Array(_, fields) = d.value(&fields_ty)? else {
            unreachable!("array type")
        };
        d.align(8)?;
        let body_at = d.pos();
        let mut m = Message {
            kind,
            flags: buf[2],
            serial,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            body: Vec::new(),
        };
        let mut signature = String::new();
        for f in fields {
            let Value::Struct(f) = f else {
                unreachable!("struct type")
            };
            let (Value::Byte(code), v) = (&f[0], f[1].unvariant()) else {
                unreachable!("(yv)")
            };
            let text = || {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("header field {code} of type {}", v.ty()))
            };
            match *code {
                PATH => m.path = Some(text()?),
                INTERFACE => m.interface = Some(text()?),
                MEMBER => m.member = Some(text()?),
                ERROR_NAME => m.error_name = Some(text()?),
                REPLY_SERIAL => m.reply_serial = Some(v.as_u32().ok_or("reply serial not a u32")?),
                DESTINATION => m.destination = Some(text()?),
                SENDER => m.sender = Some(text()?),
                SIGNATURE => signature = text()?,
                UNIX_FDS => {
                    return Err("message carries unix fds, which were not negotiated".into());
                }
                _ => {} // unknown fields must be ignored
            }
        }
        m.body = unmarshal(&buf[body_at..], &signature, be).map_err(|e| format!("body: {e}"))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Hello call every client sends first, computed by hand from the spec:
    /// fixed header, then a(yv) with PATH, INTERFACE, MEMBER, DESTINATION, no body.
    #[rustfmt::skip]
    const HELLO: &[u8] = &[
        b'l', 1, 0, 1,      // little endian, method call, no flags, version 1
        0, 0, 0, 0,         // body length 0
        1, 0, 0, 0,         // serial 1
        0x6d, 0, 0, 0,      // header fields: 109 bytes ('m', as in libdbus's own Hello)
        // (PATH, v o "/org/freedesktop/DBus")               at 16
        1, 1, b'o', 0, 21, 0, 0, 0,
        b'/', b'o', b'r', b'g', b'/', b'f', b'r', b'e', b'e', b'd', b'e', b's', b'k', b't',
        b'o', b'p', b'/', b'D', b'B', b'u', b's', 0,
        0, 0,               // pad to 48
        // (INTERFACE, v s "org.freedesktop.DBus")           at 48
        2, 1, b's', 0, 20, 0, 0, 0,
        b'o', b'r', b'g', b'.', b'f', b'r', b'e', b'e', b'd', b'e', b's', b'k', b't', b'o',
        b'p', b'.', b'D', b'B', b'u', b's', 0,
        0, 0, 0,            // pad to 80
        // (MEMBER, v s "Hello")                             at 80
        3, 1, b's', 0, 5, 0, 0, 0, b'H', b'e', b'l', b'l', b'o', 0,
        0, 0,               // pad to 96
        // (DESTINATION, v s "org.freedesktop.DBus")         at 96, ends at 125
        6, 1, b's', 0, 20, 0, 0, 0,
        b'o', b'r', b'g', b'.', b'f', b'r', b'e', b'e', b'd', b'e', b's', b'k', b't', b'o',
        b'p', b'.', b'D', b'B', b'u', b's', 0,
        0, 0, 0,            // header padded to 128
    ];

    fn hello() -> Message {
        let mut m = Message::method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            vec![],
        );
        m.serial = 1;
        m
    }

    #[test]
    fn hello_is_byte_exact() {
        assert_eq!(hello().encode(), HELLO);
        assert_eq!(
            Message::total_len(HELLO[..16].try_into().unwrap()).unwrap(),
            HELLO.len()
        );
        assert_eq!(Message::decode(HELLO).unwrap(), hello());
    }

    /// StopUnit("a.scope", "replace") to systemd, serial 2, computed by hand.
    #[test]
    fn stop_unit_call_is_byte_exact() {
        let mut m = Message::method_call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            vec![Value::str("a.scope"), Value::str("replace")],
        );
        m.serial = 2;
        let b = m.encode();
        // body: u32 7 "a.scope\0" (12 bytes), u32 7 "replace\0" (12 bytes) = 24
        #[rustfmt::skip]
        let body: &[u8] = &[
            7, 0, 0, 0, b'a', b'.', b's', b'c', b'o', b'p', b'e', 0,
            7, 0, 0, 0, b'r', b'e', b'p', b'l', b'a', b'c', b'e', 0,
        ];
        assert_eq!(&b[..12], &[b'l', 1, 0, 1, 24, 0, 0, 0, 2, 0, 0, 0]);
        assert!(b.ends_with(body));
        // the last header field is the signature: (8, v g "ss") right before the padding
        let hdr_len = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        assert_eq!(
            &b[16 + hdr_len - 8..16 + hdr_len],
            &[8, 1, b'g', 0, 2, b's', b's', 0]
        );
        assert_eq!((16 + hdr_len).div_ceil(8) * 8 + 24, b.len());
        assert_eq!(Message::decode(&b).unwrap(), m);
    }

    /// A JobRemoved signal as systemd sends it (sender, reply fields as a daemon adds them).
    #[test]
    fn signal_round_trip_and_header_errors() {
        let mut m = Message::method_call(
            "",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "JobRemoved",
            vec![
                Value::U32(77),
                Value::ObjectPath("/org/freedesktop/systemd1/job/77".into()),
                Value::str("x.scope"),
                Value::str("done"),
            ],
        );
        m.kind = Kind::Signal;
        m.destination = None;
        m.sender = Some(":1.0".into());
        m.serial = 9;
        let b = m.encode();
        assert_eq!(Message::decode(&b).unwrap(), m);
        let mut bad = b.clone();
        bad[3] = 2;
        assert!(Message::decode(&bad).unwrap_err().contains("version"));
        let mut bad = b.clone();
        bad[0] = b'x';
        assert!(Message::decode(&bad).unwrap_err().contains("endianness"));
        assert!(Message::decode(&b[..b.len() - 1]).is_err());
    }
}
