//! berth-image: images for the `berth` command.
//!
//! A content-addressed store of verified blobs (manifests and configs kept byte-exact),
//! references resolved as docker resolves them, the archive formats (rootfs tarballs,
//! docker-archive, oci-archive, OCI layout), a Distribution v2 registry client, layer
//! unpacking that no image can escape, and overlay (or vfs) snapshots for containers.
//! It knows nothing of containers: the engine asks it for a root filesystem.

pub mod archive;
pub mod config;
pub mod digest;
pub mod error;
pub mod import;
pub mod overlay_xattr;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use config::ImageConfig;
pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use snapshot::{Rootfs, unmount_rootfs};
pub use store::{Image, LayerInfo, Store};
