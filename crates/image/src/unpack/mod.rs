//! Layer unpack that no image can escape.
//!
//! Every entry's parent is resolved inside the layer directory by the kernel
//! (`openat2(RESOLVE_IN_ROOT)`, see [`root`]) and its final component is created relative
//! to that directory's fd without following symlinks. Names climbing out with `..` are
//! refused, absolute names are taken as inside the layer, hard links must point at
//! something of this layer. Owners, modes (setuid included, set after the owner since
//! chown clears it), file capabilities and other xattrs, mtimes (directories' last, once
//! their children exist), device nodes and fifos are kept. Whiteouts become overlay's:
//! `.wh.NAME` a 0:0 character device, `.wh..wh..opq` the `trusted.overlay.opaque` xattr.

mod compression;
mod entry;
mod name;
mod root;

use std::io::Read;
use std::path::Path;

pub use compression::Compression;
pub(crate) use compression::open;
pub(crate) use root::remove_entry;

use crate::error::{Error, Result};
use entry::Unpacker;

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Unpacks the (uncompressed) tar `reader` into the existing directory `dir`. `layer`
/// names the layer in errors.
pub(crate) fn unpack(reader: &mut dyn Read, dir: &Path, layer: &str) -> Result<UnpackStats> {
    let mut unpacker = Unpacker::new(dir, layer)?;
    let mut archive = tar::Archive::new(reader);
    let read_err = |source| Error::Read {
        what: layer.to_string(),
        source,
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()
}
