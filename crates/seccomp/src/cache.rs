//! An on-disk cache of compiled programs, keyed by a hash of the profile
//! and the architecture.
//!
//! File `<dir>/<hex key>.bpf`:
//! ```text
//! magic "BSECCMP\0" | version u32 | arch u8 | needs_listener u8 | 0u16
//! | flags u32 | n_insns u32 | key [32] | sha256(body) [32] | body (n_insns * 8)
//! ```
//! (little-endian). Writes go to a temporary file in the same directory,
//! then rename(2), so a reader sees a whole file or none. Nothing read back is
//! trusted: size bounds, magic, version, key, arch, body hash, flag bits and
//! the BPF verifier must all pass, or the file counts as a miss and the
//! profile is compiled (and the file rewritten). No fsync: a file cut short
//! by a crash fails validation and is rebuilt.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::Program;
use crate::arch::Arch;
use crate::bpf;
use crate::compile::{ALL_FLAGS, COMPILER_REVISION, FLAG_NEW_LISTENER, compile_for};
use crate::error::{CacheError, CompileError};

const MAGIC: &[u8; 8] = b"BSECCMP\0";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4 + 32 + 32;
const MAX_FILE_LEN: usize = HEADER_LEN + bpf::MAX_INSNS * 8;

/// A directory of compiled programs.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

/// Cache key: SHA-256 over the format, the compiler revision, the crate
/// version, the architecture and the profile's canonical JSON (oci-spec
/// serializes struct fields in a fixed order and has no maps here).
pub fn cache_key(profile: &LinuxSeccomp, arch: Arch) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(FORMAT_VERSION.to_le_bytes());
    h.update(COMPILER_REVISION.to_le_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0, arch.id()]);
    // Serializing these plain structs cannot fail.
    h.update(serde_json::to_vec(profile).unwrap_or_default());
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Cache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// The file a profile's program lives in.
    pub fn path_for(&self, profile: &LinuxSeccomp, arch: Arch) -> PathBuf {
        self.dir
            .join(format!("{}.bpf", hex(&cache_key(profile, arch))))
    }

    /// The cached program for `profile` on `arch`, or compile it and store it.
    /// A missing, unreadable or invalid file is a miss; failing to store is
    /// logged (warn) and does not fail the call: the cache is an optimisation.
    pub fn load_or_compile(
        &self,
        profile: &LinuxSeccomp,
        arch: Arch,
    ) -> Result<Program, CompileError> {
        let key = cache_key(profile, arch);
        let path = self.dir.join(format!("{}.bpf", hex(&key)));
        if let Some(p) = self.load_file(&path, &key, arch) {
            return Ok(p);
        }
        let prog = compile_for(profile, arch)?;
        if let Err(e) = self.store_file(&path, &key, arch, &prog) {
            log::warn!("seccomp cache: {e}");
        }
        Ok(prog)
    }

    /// Read and validate a cache file; `None` (with a debug log) if it is
    /// missing or fails any check.
    pub fn load(&self, profile: &LinuxSeccomp, arch: Arch) -> Option<Program> {
        let key = cache_key(profile, arch);
        self.load_file(&self.dir.join(format!("{}.bpf", hex(&key))), &key, arch)
    }

    /// Store `prog` as the program for `profile` on `arch`.
    pub fn store(
        &self,
        profile: &LinuxSeccomp,
        arch: Arch,
        prog: &Program,
    ) -> Result<(), CacheError> {
        let key = cache_key(profile, arch);
        self.store_file(
            &self.dir.join(format!("{}.bpf", hex(&key))),
            &key,
            arch,
            prog,
        )
    }

    fn load_file(&self, path: &Path, key: &[u8; 32], arch: Arch) -> Option<Program> {
        let bytes = match read_bounded(path) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::debug!("seccomp cache: {}: {e}", path.display());
                }
                return None;
            }
        };
        match decode(&bytes, key, arch) {
            Ok(p) => Some(p),
            Err(why) => {
                log::debug!("seccomp cache: {} ignored: {why}", path.display());
                None
            }
        }
    }

    fn store_file(
        &self,
        path: &Path,
        key: &[u8; 32],
        arch: Arch,
        prog: &Program,
    ) -> Result<(), CacheError> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| CacheError::Io { path: p, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            hex(&key[..4])
        ));
        let data = encode(prog, key, arch);
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&data)?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(path)(e)
        })
    }
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = fs::File::open(path)?;
    let mut v = Vec::new();
    // Read one byte past the limit to notice an oversized file without
    // reading all of it.
    f.take(MAX_FILE_LEN as u64 + 1).read_to_end(&mut v)?;
    Ok(v)
}

pub(crate) fn encode(prog: &Program, key: &[u8; 32], arch: Arch) -> Vec<u8> {
    let body = prog.to_bytes();
    let mut v = Vec::with_capacity(HEADER_LEN + body.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    v.extend_from_slice(&[arch.id(), prog.needs_listener() as u8, 0, 0]);
    v.extend_from_slice(&prog.flags().to_le_bytes());
    v.extend_from_slice(&(prog.instructions().len() as u32).to_le_bytes());
    v.extend_from_slice(key);
    v.extend_from_slice(&Sha256::digest(&body));
    v.extend_from_slice(&body);
    v
}

pub(crate) fn decode(b: &[u8], key: &[u8; 32], arch: Arch) -> Result<Program, String> {
    if b.len() < HEADER_LEN || b.len() > MAX_FILE_LEN {
        return Err(format!("size {} out of bounds", b.len()));
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    if &b[..8] != MAGIC {
        return Err("bad magic".into());
    }
    if u32_at(8) != FORMAT_VERSION {
        return Err(format!("format version {}", u32_at(8)));
    }
    let (arch_id, listener, reserved) = (b[12], b[13], [b[14], b[15]]);
    if arch_id != arch.id() || listener > 1 || reserved != [0, 0] {
        return Err("bad arch or header bytes".into());
    }
    let flags = u32_at(16);
    let n = u32_at(20) as usize;
    if flags & !ALL_FLAGS != 0 || ((flags & FLAG_NEW_LISTENER != 0) != (listener == 1)) {
        return Err(format!("bad flags {flags:#x}"));
    }
    if &b[24..56] != key {
        return Err("key mismatch".into());
    }
    let body = &b[HEADER_LEN..];
    if !body.len().is_multiple_of(8) || body.len() / 8 != n {
        return Err(format!(
            "body length {} does not hold {n} instructions",
            body.len()
        ));
    }
    if Sha256::digest(body).as_slice() != &b[56..88] {
        return Err("body hash mismatch".into());
    }
    let insns = bpf::from_bytes(body).ok_or("body length")?;
    bpf::verify(&insns).map_err(|e| e.to_string())?;
    Ok(Program::from_parts(insns, flags, listener == 1))
}
