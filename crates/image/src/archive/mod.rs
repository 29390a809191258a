//! Image archives in and out: docker-archive (as every `docker save` writes it, Docker >= 25's
//! OCI-layout form included), oci-archive (a tar of an OCI image layout) and OCI layout
//! directories (`oci:DIR[:TAG]`). Archives and their layers may be plain, gzip or zstd
//! (told by magic bytes); every blob is verified against its digest; a bad archive stores
//! nothing.
//!
//! - [`load`]: an archive (a file, a directory or stdin) into the store.
//! - [`save::select`] then [`save::save_tar`] / [`save::save_to_path`]: images out.

mod compression;
mod docker;
pub mod error;
mod layout;
mod load;
mod oci;
pub mod save;
mod source;
mod tarindex;
mod tarwrite;

pub use error::{Error, Result};
pub use load::{Loaded, Step};
pub use save::{Format, Selected};
pub use source::Source;

use crate::store::Store;

/// Loads every image of `source` (only the one tagged TAG for `oci:DIR:TAG`) into `store`,
/// calling `on_step` before each blob is stored.
pub fn load(store: &Store, source: &Source, on_step: &dyn Fn(Step<'_>)) -> Result<Vec<Loaded>> {
    let layout = source::open(source, &store.tmp_dir())?;
    load::load_layout(store, &*layout, source.tag(), on_step)
}
