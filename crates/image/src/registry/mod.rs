//! A Distribution v2 registry client (blocking, over ureq): anonymous, Basic and Bearer
//! token authentication, manifests checked against what they claim to be, indexes resolved
//! by platform, digests verified, and the pull and push of whole images.

mod auth;
pub mod authfile;
pub mod certs;
mod client;
mod credhelper;
mod error;
pub mod manifest;
mod platform;
mod tlsprobe;
mod transport;

pub use authfile::Credentials;
pub use client::{Client, Fetched, Options};
pub use error::{Error, Result};
pub use platform::Platform;
pub mod pull;
pub mod push;
