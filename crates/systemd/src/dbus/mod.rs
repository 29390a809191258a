//! A minimal synchronous D-Bus client: the wire format, messages, and a connection to the
//! system bus over its unix socket. What systemd's manager interface needs, nothing more.

pub mod address;
pub mod conn;
pub mod error;
pub mod marshal;
pub mod message;
pub mod types;
pub mod unmarshal;

pub use conn::{Connection, DEFAULT_TIMEOUT};
pub use error::Error;
pub use message::{Kind, Message};
pub use types::{Type, Value};
