//! The container log in docker's json-file format: one JSON object a line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`, in `<id>-json.log` with
//! `--log-opt max-size=`/`max-file=` rotation (`.1`, `.2`, ... older), and the reader that
//! `logs` uses (across rotated files, `--tail`, `--since`/`--until`, `-f`).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::LogConfig;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// The log file of container `id` in its directory.
pub fn path(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Appends entries, rotating by size.
pub struct Writer {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    config: LogConfig,
}

impl Writer {
    pub fn open(path: PathBuf, config: LogConfig) -> std::io::Result<Writer> {
        let file = berth_container::state::open_for_append(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path,
            file: Some(file),
            size,
            config,
        })
    }

    /// Writes one entry (a line or part of one) of `stream`.
    pub fn write(&mut self, stream: &str, text: &[u8]) {
        let entry = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream: stream.to_string(),
            time: crate::time::now(),
        };
        let mut line = serde_json::to_vec(&entry).expect("an entry serializes");
        line.push(b'\n');
        if let Some(max) = self.config.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate();
        }
        if let Some(file) = &mut self.file
            && file.write_all(&line).is_ok()
        {
            self.size += line.len() as u64;
        }
    }

    /// `x.log` becomes `x.log.1`, `x.log.1` becomes `x.log.2`, ...; the oldest beyond
    /// max-file goes. A reader following the file notices the new inode.
    fn rotate(&mut self) {
        let keep = self.config.files();
        self.file = None;
        if keep <= 1 {
            let _ = fs::remove_file(&self.path);
        } else {
            let _ = fs::remove_file(rotated(&self.path, keep - 1));
            for n in (1..keep - 1).rev() {
                let _ = fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            let _ = fs::rename(&self.path, rotated(&self.path, 1));
        }
        self.file = berth_container::state::open_for_append(&self.path).ok();
        self.size = 0;
    }
}

/// Splits a stream into lines for the log (docker logs each line as an entry; a partial
/// line is kept until its end comes, or written when it grows past 16 KiB).
#[derive(Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            emit(&line);
        }
        if self.pending.len() > 16 * 1024 {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// What `logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

fn keep(entry: &Entry, options: &ReadOptions) -> bool {
    if options.since.is_none() && options.until.is_none() {
        return true;
    }
    let Some(t) = crate::time::parse(&entry.time) else {
        return true;
    };
    options.since.is_none_or(|s| t >= s) && options.until.is_none_or(|u| t <= u)
}

fn read_file(path: &Path, out: &mut Vec<Entry>, options: &ReadOptions) {
    let Ok(file) = File::open(path) else { return };
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if let Ok(entry) = serde_json::from_str::<Entry>(&line)
            && keep(&entry, options)
        {
            out.push(entry);
        }
    }
}

/// Every entry kept so far, oldest first, filtered.
pub fn read(path: &Path, options: &ReadOptions) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut n = 1;
    let mut older = Vec::new();
    while rotated(path, n).exists() {
        older.push(rotated(path, n));
        n += 1;
    }
    for file in older.iter().rev() {
        read_file(file, &mut out, options);
    }
    read_file(path, &mut out, options);
    if let Some(tail) = options.tail
        && out.len() > tail
    {
        out.drain(..out.len() - tail);
    }
    out
}

/// Follows the current log file from its end (`logs -f`), across rotations, calling
/// `emit` for each new entry until `done()` says the container stopped (then what is left
/// is read and it returns). `emit` returning false (the reader went away) ends it too.
pub fn follow(
    path: &Path,
    options: &ReadOptions,
    mut emit: impl FnMut(&Entry) -> bool,
    mut done: impl FnMut() -> bool,
) {
    let open = |p: &Path| -> Option<(BufReader<File>, u64)> {
        let f = File::open(p).ok()?;
        let ino = f.metadata().ok()?.ino();
        Some((BufReader::new(f), ino))
    };
    let mut current = open(path).map(|(mut r, ino)| {
        let _ = r.seek(SeekFrom::End(0));
        (r, ino)
    });
    let mut partial = String::new();
    loop {
        let finished = done();
        if let Some((reader, _)) = &mut current {
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        partial.push_str(&line);
                        if !partial.ends_with('\n') {
                            continue;
                        }
                        let full = std::mem::take(&mut partial);
                        if let Ok(entry) = serde_json::from_str::<Entry>(full.trim_end())
                            && keep(&entry, options)
                            && !emit(&entry)
                        {
                            return;
                        }
                    }
                }
            }
        }
        // Rotated: the name now has another inode; what the old one still had was read.
        // Files rotated in between (newer than ours, older than the current one) are read
        // whole, so a slow follower loses nothing that is still kept.
        let now_ino = fs::metadata(path).ok().map(|m| m.ino());
        if now_ino.is_some() && now_ino != current.as_ref().map(|c| c.1) {
            let ours = current.as_ref().map(|c| c.1);
            let mut newer = Vec::new();
            let mut n = 1;
            loop {
                let file = rotated(path, n);
                match fs::metadata(&file) {
                    Ok(m) if Some(m.ino()) == ours => break,
                    Ok(_) => newer.push(file),
                    Err(_) => break,
                }
                n += 1;
            }
            for file in newer.iter().rev() {
                let mut entries = Vec::new();
                read_file(file, &mut entries, options);
                for entry in &entries {
                    if !emit(entry) {
                        return;
                    }
                }
            }
            current = open(path);
            partial.clear();
            continue;
        }
        if finished {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_lines_and_rotates() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let config = LogConfig {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = Writer::open(p.clone(), config).unwrap();
        for i in 0..20 {
            w.write("stdout", format!("line {i}\n").as_bytes());
        }
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let all = read(&p, &ReadOptions::default());
        assert!(
            all.len() < 20 && all.last().unwrap().log == "line 19\n",
            "{all:?}"
        );
        let tail = read(
            &p,
            &ReadOptions {
                tail: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(tail.len(), 2);
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\"log\":\"line"), "{text}");
        assert!(text.contains("\"stream\":\"stdout\",\"time\":\""), "{text}");
    }

    #[test]
    fn lines_are_split() {
        let mut b = LineBuffer::default();
        let mut got = Vec::new();
        b.push(b"a\nb", |l| got.push(l.to_vec()));
        b.push(b"c\n", |l| got.push(l.to_vec()));
        b.push(b"d", |l| got.push(l.to_vec()));
        b.flush(|l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"d".to_vec()]);
    }
}
