//! `berth import`: a root filesystem (a tarball as `docker export` writes it, plain or
//! compressed; a directory; stdin) becomes a one-layer image, its config made from
//! `--change` instructions as docker and podman read them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::unpack::Compression;

/// Where the root filesystem comes from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// A tar file, plain, gzip or zstd.
    Tar(PathBuf),
    /// A directory, tarred in-process.
    Dir(PathBuf),
    /// A tar stream on standard input.
    Stdin,
}

impl ImportSource {
    /// `-` is stdin; a directory is a directory; anything else a tar file.
    pub fn from_arg(arg: &str) -> ImportSource {
        if arg == "-" {
            ImportSource::Stdin
        } else if Path::new(arg).is_dir() {
            ImportSource::Dir(PathBuf::from(arg))
        } else {
            ImportSource::Tar(PathBuf::from(arg))
        }
    }
}

/// Imports with podman's default comment.
pub fn import(
    store: &Store,
    source: ImportSource,
    name: Option<&Reference>,
    changes: &[String],
) -> Result<Image> {
    import_with_message(store, source, name, changes, None)
}

/// Imports; `message` is the history comment (`-m`).
pub fn import_with_message(
    store: &Store,
    source: ImportSource,
    name: Option<&Reference>,
    changes: &[String],
    message: Option<&str>,
) -> Result<Image> {
    // Changes first: a bad one must not cost an unpack.
    let mut run_config = Map::new();
    for change in changes {
        apply_change(&mut run_config, change)?;
    }
    let layer = match &source {
        ImportSource::Tar(path) => {
            let mut file = File::open(path).map_err(Error::path("open", path))?;
            store
                .put_layer_stream(&mut file, &|_| {})
                .map_err(|e| name_input(e, path))?
        }
        ImportSource::Stdin => store.put_layer_stream(&mut io::stdin().lock(), &|_| {})?,
        ImportSource::Dir(dir) => {
            let mut reader = tar_dir(dir)?;
            store.put_layer_stream(&mut reader, &|_| {})?
        }
    };
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let comment = message.unwrap_or("imported from tarball");
    let config = json!({
        "created": created,
        "architecture": host_architecture(),
        "os": "linux",
        "config": Value::Object(run_config),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        "history": [{
            "created": created,
            "created_by": format!("/bin/sh -c #(nop) ADD file:{} in /", layer.diff_id.hex()),
            "comment": comment,
        }],
    });
    let config_bytes = serde_json::to_vec(&config).map_err(Error::json("image config"))?;
    let config_digest = store.put_blob_bytes(&config_bytes)?;
    let layer_type = match layer.compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": [{"mediaType": layer_type, "digest": layer.blob.to_string(), "size": layer.size}],
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(Error::json("image manifest"))?;
    let names: Vec<Reference> = name.into_iter().cloned().collect();
    store.add_image(&manifest_bytes, &names)
}

/// An unreadable or non-tar input is named by its path. A full store is not the input's
/// fault: the layer is written while the input is read, so its write errors come back
/// through the reader, and they are said as what they are.
fn name_input(e: Error, path: &Path) -> Error {
    match e {
        Error::Read { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) =>
        {
            Error::Read {
                what: format!(
                    "{} into the store (the store's disk is full)",
                    path.display()
                ),
                source,
            }
        }
        Error::Read { source, .. } => Error::Read {
            what: format!("{}: not a (gzip/zstd) tar archive", path.display()),
            source,
        },
        other => other,
    }
}

/// GOARCH names, as image configs use them.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A directory as a tar stream, written by a thread and handed over in chunks.
fn tar_dir(dir: &Path) -> Result<impl Read> {
    if !dir.is_dir() {
        return Err(Error::Path {
            op: "open",
            path: dir.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotADirectory),
        });
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let writer = ChunkWriter {
            sender: sender.clone(),
        };
        // Chunks of 256 KiB, not the builder's 512-byte headers and 8 KiB copies.
        let mut builder = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, writer));
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        let result = builder
            .append_dir_all(".", &dir)
            .and_then(|()| builder.into_inner())
            .and_then(|mut buffered| io::Write::flush(&mut buffered));
        if let Err(e) = result {
            // The reader sees the error instead of a tar that merely ends early.
            let _ = sender.send(Err(io::Error::new(
                e.kind(),
                format!("tar {}: {e}", dir.display()),
            )));
        }
    });
    Ok(ChunkReader {
        receiver,
        chunk: Vec::new(),
        at: 0,
    })
}

struct ChunkWriter {
    sender: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
}

impl io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sender
            .send(Ok(buf.to_vec()))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct ChunkReader {
    receiver: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                // The writer is done (and dropped): the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Applies one `--change` (`CMD=...`, `CMD ...`, `ENV K=V`, ...) to the run config.
fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadChange {
        change: change.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = change.trim();
    let split = trimmed
        .find(|c: char| c == '=' || c.is_whitespace())
        .ok_or_else(|| bad("expected INSTRUCTION=VALUE or INSTRUCTION VALUE"))?;
    let (key, value) = (
        trimmed[..split].to_ascii_uppercase(),
        trimmed[split + 1..].trim(),
    );
    match key.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let field = if key == "CMD" { "Cmd" } else { "Entrypoint" };
            config.insert(field.into(), json!(command(value).map_err(|r| bad(&r))?));
        }
        "ENV" => {
            let (k, v) = value
                .split_once('=')
                .or_else(|| value.split_once(char::is_whitespace))
                .ok_or_else(|| bad("ENV needs NAME=VALUE"))?;
            let (k, v) = (k.trim(), unquote(v.trim()));
            let env = config.entry("Env").or_insert_with(|| json!([]));
            if let Value::Array(list) = env {
                list.retain(|e| {
                    e.as_str().and_then(|e| e.split_once('=')).map(|(n, _)| n) != Some(k)
                });
                list.push(json!(format!("{k}={v}")));
            }
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(value));
        }
        "USER" => {
            config.insert("User".into(), json!(value));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(value));
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in pairs(value).map_err(|r| bad(&r))? {
                labels[k] = json!(v);
            }
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for port in value.split_whitespace() {
                let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                let ok = !number.is_empty()
                    && number.split('-').all(|n| n.parse::<u16>().is_ok())
                    && matches!(proto, "tcp" | "udp" | "sctp");
                if !ok {
                    return Err(bad(&format!("{port:?} is not a port (80, 80/tcp, 53/udp)")));
                }
                ports[format!("{number}/{proto}")] = json!({});
            }
        }
        "VOLUME" => {
            let paths: Vec<String> = if value.starts_with('[') {
                serde_json::from_str(value)
                    .map_err(|e| bad(&format!("not a JSON array of strings: {e}")))?
            } else {
                value.split_whitespace().map(str::to_string).collect()
            };
            let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
            for path in paths {
                if !path.starts_with('/') {
                    return Err(bad(&format!("volume {path:?} is not an absolute path")));
                }
                volumes[path] = json!({});
            }
        }
        other => {
            return Err(bad(&format!(
                "{other} cannot be changed on import (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            )));
        }
    }
    Ok(())
}

/// docker's exec form (a JSON array) or shell form (`/bin/sh -c VALUE`).
fn command(value: &str) -> std::result::Result<Vec<String>, String> {
    if value.starts_with('[') {
        serde_json::from_str(value).map_err(|e| format!("not a JSON array of strings: {e}"))
    } else if value.is_empty() {
        Err("empty command".to_string())
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), value.into()])
    }
}

/// `k=v k2="v 2"` of LABEL.
fn pairs(value: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("{rest:?} is not KEY=VALUE"))?;
        let key = unquote(rest[..eq].trim()).to_string();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or("unterminated quote")?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        if key.is_empty() {
            return Err("empty label key".to_string());
        }
        out.insert(key, val);
        rest = next.trim_start();
    }
    Ok(out)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Value {
        let mut config = Map::new();
        for c in changes {
            apply_change(&mut config, c).unwrap();
        }
        Value::Object(config)
    }

    #[test]
    fn changes_read_like_docker() {
        let c = changed(&[
            "CMD=echo hi",
            r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
            "ENV=A=1",
            "ENV B 2",
            "ENV A=3",
            "WORKDIR=/w",
            "USER=1000:1000",
            "LABEL=a=b c=\"d e\"",
            "EXPOSE=80 53/udp",
            "VOLUME=/data /logs",
            "STOPSIGNAL=SIGINT",
        ]);
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]));
        assert_eq!(c["Env"], json!(["B=2", "A=3"]));
        assert_eq!(c["WorkingDir"], "/w");
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["Labels"], json!({"a": "b", "c": "d e"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn bad_changes_name_themselves() {
        for bad in [
            "ONBUILD=x",
            "CMD=[1,",
            "EXPOSE=http",
            "VOLUME=rel",
            "nothing",
            "ENV=X",
        ] {
            let err = apply_change(&mut Map::new(), bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
