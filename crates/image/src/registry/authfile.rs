//! Registry credentials where podman and docker keep them: containers' `auth.json`
//! (`$REGISTRY_AUTH_FILE`, `/run/containers/<uid>/auth.json` for root,
//! `$XDG_RUNTIME_DIR/containers/auth.json` otherwise, then `$XDG_CONFIG_HOME/containers/auth.json`)
//! and docker's `~/.docker/config.json` (`$DOCKER_CONFIG`). All have the same shape:
//! `{"auths": {"HOST[/PATH]": {"auth": base64("user:password")}}}`.
//!
//! Any of them may instead send a registry to a docker credential helper (see
//! `credhelper`), with docker's precedence within a file: `credHelpers[HOST]`, then
//! `credsStore`, then `auths`. A helper that has nothing for the registry lets the search go
//! on to the next file, as podman does.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::credhelper::{self, Helper};
use super::error::{Error, Result};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// Reads `--creds USERNAME:PASSWORD`.
    pub fn parse(text: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(Error::BadCredentials(
                text.split(':').next().unwrap_or("").to_string(),
            )),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where `login` writes and `logout` removes: `$REGISTRY_AUTH_FILE`, or podman's per-user
/// runtime file.
pub fn default_auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let uid = user_on_the_host();
    if uid == 0 {
        return PathBuf::from("/run/containers/0/auth.json");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => Path::new(&dir).join("containers/auth.json"),
        None => PathBuf::from(format!("/run/user/{uid}/containers/auth.json")),
    }
}

/// Whose credentials these are: our uid, or in rootless berth's user namespace (where the
/// user is uid 0) the host uid that 0 maps to; the user's file is theirs, not root's
/// /run/containers/0 (which they cannot read).
fn user_on_the_host() -> u32 {
    let uid = rustix::process::getuid().as_raw();
    if !crate::overlay_xattr::in_user_namespace() {
        return uid;
    }
    std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|map| outside_id_of(&map, uid))
        .unwrap_or(uid)
}

/// The id outside a user namespace that `inside` maps to, from its uid_map text.
fn outside_id_of(map: &str, inside: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_ascii_whitespace().map(|n| n.parse::<u32>().ok());
        let (start, outside, count) = (f.next()??, f.next()??, f.next()??);
        (inside >= start && inside - start < count).then(|| outside + (inside - start))
    })
}

/// The files read for credentials, in podman's order. An explicit `--authfile` is the only
/// one read.
pub fn search_path(authfile: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = authfile {
        return vec![p.to_path_buf()];
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = vec![default_auth_file()];
    if let Some(config) =
        env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push(config.join("containers/auth.json"));
    }
    files.extend(docker_config());
    files
}

/// Docker's `config.json`: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("DOCKER_CONFIG")
        .or_else(|| env("HOME").map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"))
}

/// The helper `doc` (the contents of `file`) sends `domain` to: `credHelpers[domain]`,
/// else `credsStore`.
fn helper_for(file: &Path, doc: &Value, domain: &str) -> Result<Option<Helper>> {
    if let Some(helpers) = doc.get("credHelpers").and_then(Value::as_object)
        && let Some((_, name)) = helpers.iter().find(|(k, _)| normalize_key(k) == domain)
    {
        let name = name.as_str().ok_or_else(|| Error::AuthFile {
            path: file.to_path_buf(),
            reason: format!("credHelpers entry {domain:?}: not a string"),
        })?;
        return Helper::new(name, file, true).map(Some);
    }
    match doc.get("credsStore").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => Helper::new(name, file, false).map(Some),
        _ => Ok(None),
    }
}

/// The credentials for `domain/repository` from the first file that has an entry: the most
/// specific `HOST/PATH` key first, then the host (keys may carry a scheme or `/v1/`, as
/// docker writes `https://index.docker.io/v1/`).
pub fn lookup(files: &[PathBuf], domain: &str, repository: &str) -> Result<Option<Credentials>> {
    let mut wanted: Vec<String> = Vec::new();
    let mut path = format!("{domain}/{repository}");
    loop {
        wanted.push(path.clone());
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    for file in files {
        let Some(doc) = read(file)? else { continue };
        if let Some(helper) = helper_for(file, &doc, domain)? {
            // The helper answers for this file; its `auths` (docker leaves `{}` there) are
            // not looked at.
            match helper.get(&credhelper::server_url(domain))? {
                Some(creds) => return Ok(Some(creds)),
                None => continue,
            }
        }
        let Some(auths) = doc.get("auths").and_then(Value::as_object) else {
            continue;
        };
        let entries: Vec<(String, &Value)> =
            auths.iter().map(|(k, v)| (normalize_key(k), v)).collect();
        for key in &wanted {
            if let Some((_, entry)) = entries.iter().find(|(k, _)| k == key)
                && let Some(creds) = decode(file, key, entry)?
            {
                return Ok(Some(creds));
            }
        }
    }
    Ok(None)
}

/// Where `login` keeps credentials and `logout` removes them: a helper that the auth file
/// (or, without `--authfile`, docker's config.json) names for `registry`, else the auth
/// file.
fn login_helper(authfile: Option<&Path>, registry: &str) -> Result<Option<Helper>> {
    let files: Vec<PathBuf> = match authfile {
        Some(f) => vec![f.to_path_buf()],
        None => std::iter::once(default_auth_file())
            .chain(docker_config())
            .collect(),
    };
    for file in &files {
        if let Some(doc) = read(file)?
            && let Some(helper) = helper_for(file, &doc, registry)?
        {
            return Ok(Some(helper));
        }
    }
    Ok(None)
}

/// `login`: the credentials for `registry` (a host) go to its credential helper if a config
/// names one, else into `authfile` (default: [`default_auth_file`]).
pub fn login_store(authfile: Option<&Path>, registry: &str, creds: &Credentials) -> Result<()> {
    match login_helper(authfile, registry)? {
        Some(helper) => helper.store(&credhelper::server_url(registry), creds),
        None => store(
            &authfile.map_or_else(default_auth_file, Path::to_path_buf),
            registry,
            creds,
        ),
    }
}

/// `logout`: erases `registry`'s credentials from its helper (if a config names one) and
/// from the auth file; false when neither had any.
pub fn logout_remove(authfile: Option<&Path>, registry: &str) -> Result<bool> {
    let erased = match login_helper(authfile, registry)? {
        Some(helper) => helper.erase(&credhelper::server_url(registry))?,
        None => false,
    };
    let file = authfile.map_or_else(default_auth_file, Path::to_path_buf);
    let removed = remove(&file, registry)?;
    Ok(erased || removed)
}

/// Records `creds` for `key` (a registry host) in `file`, keeping everything else the file has.
pub fn store(file: &Path, key: &str, creds: &Credentials) -> Result<()> {
    let mut doc = read(file)?.unwrap_or_else(|| Value::Object(Map::new()));
    let raw = format!("{}:{}", creds.username, creds.password);
    let auth = base64::engine::general_purpose::STANDARD.encode(raw);
    auths_mut(file, &mut doc)?.insert(key.to_string(), serde_json::json!({ "auth": auth }));
    write(file, &doc)
}

/// Removes the entry for `key`; false when there was none.
pub fn remove(file: &Path, key: &str) -> Result<bool> {
    let Some(mut doc) = read(file)? else {
        return Ok(false);
    };
    let auths = auths_mut(file, &mut doc)?;
    let before = auths.len();
    auths.retain(|k, _| normalize_key(k) != key);
    if auths.len() == before {
        return Ok(false);
    }
    write(file, &doc)?;
    Ok(true)
}

fn auths_mut<'a>(file: &Path, doc: &'a mut Value) -> Result<&'a mut Map<String, Value>> {
    let bad = || Error::AuthFile {
        path: file.to_path_buf(),
        reason: "not a JSON object with \"auths\"".into(),
    };
    let obj = doc.as_object_mut().ok_or_else(bad)?;
    obj.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(bad)
}

/// `https://index.docker.io/v1/` = `docker.io`; `http://host:5000` = `host:5000`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        k => k.to_string(),
    }
}

/// An entry's credentials; None for an empty one (`{}`, as docker leaves next to a helper).
fn decode(file: &Path, key: &str, entry: &Value) -> Result<Option<Credentials>> {
    let bad = |reason: &str| Error::AuthFile {
        path: file.to_path_buf(),
        reason: format!("entry {key:?}: {reason}"),
    };
    if let (Some(u), Some(p)) = (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        return Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        }));
    }
    let auth = match entry.get("auth") {
        None => return Ok(None),
        Some(Value::String(a)) if a.is_empty() => return Ok(None),
        Some(a) => a.as_str().ok_or_else(|| bad("\"auth\" is not a string"))?,
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad("\"auth\" is not base64"))?;
    let raw = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
    let (u, p) = raw
        .split_once(':')
        .ok_or_else(|| bad("\"auth\" is not user:password"))?;
    Ok(Some(Credentials {
        username: u.into(),
        password: p.into(),
    }))
}

fn read(file: &Path) -> Result<Option<Value>> {
    match fs::read(file) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::AuthFile {
                path: file.to_path_buf(),
                reason: format!("invalid JSON: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::AuthFile {
            path: file.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Written next to the file and renamed over it, mode 0600 (it holds passwords).
fn write(file: &Path, doc: &Value) -> Result<()> {
    let err = |e: std::io::Error| Error::AuthFile {
        path: file.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let mut bytes = serde_json::to_vec_pretty(doc).expect("a JSON value serializes");
    bytes.push(b'\n');
    let result = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()))
        .and_then(|_| fs::rename(&tmp, file));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_namespaces_root_is_the_user_it_maps_to() {
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(outside_id_of(map, 0), Some(1000));
        assert_eq!(outside_id_of(map, 1), Some(100000));
        assert_eq!(outside_id_of(map, 65536), Some(165535));
        assert_eq!(outside_id_of(map, 65537), None);
    }

    use super::*;

    #[test]
    fn store_lookup_remove() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/auth.json");
        let creds = Credentials::parse("u:p:w").unwrap();
        assert_eq!(creds.password, "p:w");
        store(&file, "127.0.0.1:5000", &creds).unwrap();
        store(&file, "quay.io", &Credentials::parse("q:q").unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let files = [file.clone()];
        assert_eq!(
            lookup(&files, "127.0.0.1:5000", "a/b").unwrap(),
            Some(creds)
        );
        assert_eq!(lookup(&files, "other:1", "a").unwrap(), None);
        assert!(remove(&file, "127.0.0.1:5000").unwrap());
        assert!(!remove(&file, "127.0.0.1:5000").unwrap());
        assert_eq!(lookup(&files, "127.0.0.1:5000", "a/b").unwrap(), None);
        assert!(lookup(&files, "quay.io", "x").unwrap().is_some());
    }

    #[test]
    fn docker_keys_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        fs::write(
            &file,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},
                "reg:1/team":{"auth":"dGVhbTpwdw=="},"reg:1":{"username":"all","password":"pw"},
                "empty:1":{}}}"#,
        )
        .unwrap();
        let files = [file];
        assert_eq!(
            lookup(&files, "docker.io", "library/x")
                .unwrap()
                .unwrap()
                .username,
            "hub"
        );
        assert_eq!(
            lookup(&files, "reg:1", "team/app")
                .unwrap()
                .unwrap()
                .username,
            "team"
        );
        assert_eq!(
            lookup(&files, "reg:1", "other/app")
                .unwrap()
                .unwrap()
                .username,
            "all"
        );
        assert_eq!(lookup(&files, "empty:1", "x").unwrap(), None);
        fs::write(&files[0], "{").unwrap();
        let e = lookup(&files, "reg:1", "x").unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("invalid JSON"),
            "{e}"
        );
        assert!(matches!(
            Credentials::parse("nocolon"),
            Err(Error::BadCredentials(_))
        ));
    }
}
