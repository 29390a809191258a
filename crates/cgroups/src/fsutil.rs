//! Small file helpers for cgroupfs: one open + one write (or read) per call,
//! errors that carry the controller, the file and the value.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Read a whole file into a string.
pub(crate) fn read(path: &Path) -> Result<String> {
    read_io(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Like [`read`] but keeps the plain io::Error (callers that treat ENOENT
/// specially).
pub(crate) fn read_io(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    // Plain read(2)s into a buffer: read_to_string would first statx and
    // lseek for a size hint, which cgroupfs reports as 0 anyway. Control
    // files are small; the big ones (memory.stat) take a few rounds.
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Read `dir/name`.
pub(crate) fn read_in(dir: &Path, name: &str) -> Result<String> {
    read(&dir.join(name))
}

/// Read `dir/name`, `None` when the file does not exist (optional kernel
/// features such as memory.peak or cpu.max.burst).
pub(crate) fn read_opt(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    match read_io(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Write `value` to `dir/name` with a single write(2): cgroupfs parses each
/// write on its own, so the value must not be split.
pub(crate) fn write(controller: &'static str, dir: &Path, name: &str, value: &str) -> Result<()> {
    let path = dir.join(name);
    write_io(&path, value).map_err(|source| Error::Write {
        controller,
        path,
        value: value.to_string(),
        source,
    })
}

/// Like [`write`], returning the raw io::Error for callers that retry.
pub(crate) fn write_io(path: &Path, value: &str) -> io::Result<()> {
    // O_TRUNC is meaningless to cgroupfs but makes plain files (tests)
    // behave like control files: the last write is the value.
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

/// Open `dir/name` for writing once, for files that take one rule per write
/// (devices.allow).
pub(crate) fn open_for_writes(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    let path = dir.join(name);
    match OpenOptions::new().write(true).open(&path) {
        Ok(f) => Ok((f, path)),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Parse a single unsigned number, allowing the trailing newline; `max`
/// (v2) maps to `u64::MAX`.
pub(crate) fn parse_u64_or_max(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Parse a single number from a file's content, or a Parse error naming it.
pub(crate) fn parse_u64_file(path: &Path, content: &str) -> Result<u64> {
    parse_u64_or_max(content).ok_or_else(|| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a number, found {:?}", content.trim()),
    })
}

/// Read `dir/name` as one number (`max` = u64::MAX).
pub(crate) fn read_u64(dir: &Path, name: &str) -> Result<u64> {
    let path = dir.join(name);
    let s = read(&path)?;
    parse_u64_file(&path, &s)
}

/// Read `dir/name` as one number, `None` if the file is absent.
pub(crate) fn read_u64_opt(dir: &Path, name: &str) -> Result<Option<u64>> {
    let path = dir.join(name);
    match read_io(&path) {
        Ok(s) => parse_u64_file(&path, &s).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_max() {
        assert_eq!(parse_u64_or_max("42\n"), Some(42));
        assert_eq!(parse_u64_or_max("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64_or_max("-1"), None);
        assert_eq!(parse_u64_or_max(""), None);
    }

    #[test]
    fn write_then_read_round_trips_and_names_file_on_error() {
        let dir = std::env::temp_dir().join(format!("berth-cg-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), "").unwrap();
        write("memory", &dir, "f", "123").unwrap();
        assert_eq!(read_u64(&dir, "f").unwrap(), 123);
        assert_eq!(read_u64_opt(&dir, "absent").unwrap(), None);
        let err = write("pids", &dir, "absent", "7").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("pids") && msg.contains("absent") && msg.contains("\"7\""),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
