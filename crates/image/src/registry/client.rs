//! A Distribution v2 client for one registry: finds how to talk to it (https, or http for
//! localhost and `--tls-verify=false`, as docker and podman allow), authenticates as its
//! `/v2/` challenge asks, and offers the endpoints pull and push use.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ureq::http::Method;

use super::auth::{self, Challenge};
use super::authfile::{self, Credentials};
use super::certs;
use super::error::{Error, Result};
use super::manifest;
use super::tlsprobe;
use super::transport::{self, Body, Response, Transport};

/// The most a manifest may weigh (containerd's limit): a registry cannot make us buffer more.
const MAX_MANIFEST: u64 = 4 << 20;
/// An error body is read for its message up to this size.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// How to reach and authenticate to a registry, as pull/push/login take it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--tls-verify`: None is the default (verify, except plain http allowed for localhost).
    pub tls_verify: Option<bool>,
    /// `--creds`: used instead of any auth file.
    pub creds: Option<Credentials>,
    /// `--authfile`: the only auth file read.
    pub authfile: Option<PathBuf>,
    /// `--cert-dir`: the registry's CAs and client certificate are read from here instead
    /// of its certs.d directory.
    pub cert_dir: Option<PathBuf>,
}

/// A manifest as the registry sent it.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

pub struct Client {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    domain: String,
    /// Where its API is (Docker Hub's is not at docker.io).
    host: String,
    transport: Transport,
    /// Plain http may be tried after https failed.
    allow_http: bool,
    creds: Option<Credentials>,
    /// A client certificate is presented (for the hint when the registry refuses one).
    client_cert: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `https://host` or `http://host`, once /v2/ answered.
    base: Option<String>,
    challenge: Option<Challenge>,
    /// Bearer tokens by scope set.
    tokens: HashMap<String, String>,
}

impl Client {
    /// A client for `domain`; `repository` picks namespaced credentials (`host/team`) when an
    /// auth file has them.
    pub fn new(domain: &str, repository: Option<&str>, options: &Options) -> Result<Client> {
        let creds = match &options.creds {
            Some(c) => Some(c.clone()),
            None => authfile::lookup(
                &authfile::search_path(options.authfile.as_deref()),
                domain,
                repository.unwrap_or(""),
            )?,
        };
        let host = if domain == crate::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            domain
        };
        // Read even with --tls-verify=false: a client certificate may still be needed.
        let certs = certs::for_registry(domain, options.cert_dir.as_deref())?;
        let tls = certs::tls_config(options.tls_verify.unwrap_or(true), &certs)?;
        Ok(Client {
            domain: domain.to_string(),
            host: host.to_string(),
            transport: Transport::new(tls),
            allow_http: options.tls_verify == Some(false) || is_local(domain),
            creds,
            client_cert: certs.client.is_some(),
            state: Mutex::new(State::default()),
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// GET /v2/: finds the scheme and the challenge. Cached.
    pub fn ping(&self) -> Result<String> {
        if let Some(base) = &self.lock().base {
            return Ok(base.clone());
        }
        let schemes: &[&str] = if self.allow_http {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut reasons = Vec::new();
        for scheme in schemes {
            let base = format!("{scheme}://{}", self.host);
            match self
                .transport
                .send(&Method::GET, &format!("{base}/v2/"), &[], &Body::Empty)
            {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status != 200 && status != 401 {
                        let what = format!("pinging container registry {}", self.domain);
                        let e = status_error(what, resp);
                        if reasons.is_empty() {
                            return Err(e);
                        }
                        // The plain-http fallback met a server that is not a plain-http
                        // registry (typically TLS with a certificate we refused): both
                        // reasons say more than the second alone.
                        reasons.push(format!("{base}/v2/: status {status}"));
                        continue;
                    }
                    let mut state = self.lock();
                    state.challenge = challenge_of(&resp);
                    state.base = Some(base.clone());
                    return Ok(base);
                }
                Err(e) if tlsprobe::is_unknown_issuer(&e) => reasons.push(format!(
                    "{base}/v2/: {} (to trust it, put its CA in {}/ca.crt or in a --cert-dir, \
                     or use --tls-verify=false)",
                    tlsprobe::describe_unknown_issuer(&self.host),
                    certs::suggested_dir(&self.domain).display()
                )),
                Err(e) if tlsprobe::is_client_cert_refused(&e) => reasons.push(format!(
                    "{base}/v2/: {}: the registry refused our client certificate{} \
                     (a NAME.cert with its NAME.key in {} or in a --cert-dir)",
                    describe_transport(&e),
                    if self.client_cert {
                        ""
                    } else {
                        " (none was sent)"
                    },
                    certs::suggested_dir(&self.domain).display()
                )),
                Err(e) => reasons.push(format!("{base}/v2/: {}", describe_transport(&e))),
            }
        }
        Err(Error::Unreachable {
            registry: self.domain.clone(),
            reason: reasons.join("; "),
        })
    }

    /// Checks the credentials as `login` does: a token for no scope, or /v2/ with Basic.
    pub fn check_login(&self) -> Result<()> {
        let base = self.ping()?;
        let what = format!("logging in to {}", self.domain);
        let challenge = self.lock().challenge.clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Bearer { realm, service }) => self
                .fetch_token(&realm, service.as_deref(), &[])
                .map(|_| ()),
            Some(Challenge::Basic) => {
                let auth = self.creds.as_ref().map(auth::basic_header);
                let (resp, _) = self
                    .transport
                    .fetch(&Method::GET, &format!("{base}/v2/"), &[], auth.as_deref())
                    .map_err(self.transport_err(&what))?;
                match resp.status().as_u16() {
                    200 => Ok(()),
                    _ => Err(status_error(what, resp)),
                }
            }
        }
    }

    /// The manifest `reference` (a tag or a digest) of `repository`, at most 4 MiB.
    pub fn get_manifest(&self, repository: &str, reference: &str, what: &str) -> Result<Fetched> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.ping()?);
        let resp = self.get(
            repository,
            &url,
            &[("Accept", manifest::ACCEPT)],
            what,
            false,
        )?;
        let content_type = header(&resp, "content-type");
        let mut bytes = Vec::new();
        let read = resp
            .into_body()
            .into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes);
        read.map_err(|source| Error::Read {
            what: what.to_string(),
            source,
        })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(Error::Manifest {
                what: what.to_string(),
                reason: "larger than 4 MiB".into(),
            });
        }
        Ok(Fetched {
            bytes,
            content_type,
        })
    }

    /// A reader of blob `digest` (following redirects to blob storage) and its length when
    /// the registry said.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.ping()?);
        let what = format!("fetching blob {digest}");
        let resp = self.get(repository, &url, &[], &what, false)?;
        let len = header(&resp, "content-length").and_then(|v| v.parse().ok());
        Ok((Box::new(resp.into_body().into_reader()), len))
    }

    /// HEAD of a blob in `repository`: whether a push can skip it.
    pub fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.ping()?);
        let what = format!("checking blob {digest}");
        let scopes = [push_scope(repository)];
        let resp = self.with_auth(&scopes, &what, |auth| {
            self.transport
                .fetch(&Method::HEAD, &url, &[], auth)
                .map(|r| r.0)
        })?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(what, resp)),
        }
    }

    /// Uploads blob `digest` from `path` to `repository`: a cross-repository mount from
    /// `mount_from` when given (the registry may refuse and start an upload instead), else a
    /// monolithic POST + PUT. Returns true when mounted.
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &str,
        path: &Path,
        mount_from: Option<&str>,
    ) -> Result<bool> {
        let base = self.ping()?;
        let what = format!("uploading blob {digest}");
        let mut scopes = vec![push_scope(repository)];
        let mut url = format!("{base}/v2/{repository}/blobs/uploads/");
        if let Some(from) = mount_from {
            scopes.push(format!("repository:{from}:pull"));
            url.push_str(&format!(
                "?mount={digest}&from={}",
                auth::percent_encode(from)
            ));
        }
        let resp = self.with_auth(&scopes, &what, |auth| {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            self.transport
                .send(&Method::POST, &url, &headers, &Body::Empty)
        })?;
        match resp.status().as_u16() {
            201 if mount_from.is_some() => return Ok(true),
            202 => {}
            _ => return Err(status_error(what, resp)),
        }
        let location = header(&resp, "location")
            .ok_or_else(|| Error::Other(format!("{what}: the registry gave no upload location")))?;
        let mut put = transport::join(&format!("{base}/v2/"), &location);
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str(&format!("digest={}", auth::percent_encode(digest)));
        // The upload URL belongs to the registry: it gets the credentials only if it is on the
        // registry's origin.
        let same_origin = transport::origin(&put) == transport::origin(&base);
        let resp = self.with_auth(&scopes, &what, |auth| {
            let mut headers = vec![("Content-Type", "application/octet-stream")];
            if let Some(a) = auth.filter(|_| same_origin) {
                headers.push(("Authorization", a));
            }
            self.transport
                .send(&Method::PUT, &put, &headers, &Body::File(path))
        })?;
        match resp.status().as_u16() {
            201 | 204 => Ok(false),
            _ => Err(status_error(what, resp)),
        }
    }

    /// PUT of a manifest's bytes, exactly as stored, under `reference` (a tag or its digest).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.ping()?);
        let what = format!(
            "writing manifest {reference} to {}/{repository}",
            self.domain
        );
        let scopes = [push_scope(repository)];
        let resp = self.with_auth(&scopes, &what, |auth| {
            let mut headers = vec![("Content-Type", media_type)];
            headers.extend(auth.map(|a| ("Authorization", a)));
            self.transport
                .send(&Method::PUT, &url, &headers, &Body::Bytes(bytes))
        })?;
        match resp.status().as_u16() {
            200..=202 => Ok(()),
            _ => Err(status_error(what, resp)),
        }
    }

    /// A GET with pull (or push) authorization; statuses other than 2xx are errors.
    fn get(
        &self,
        repository: &str,
        url: &str,
        headers: &[(&str, &str)],
        what: &str,
        push: bool,
    ) -> Result<Response> {
        let scopes = [if push {
            push_scope(repository)
        } else {
            format!("repository:{repository}:pull")
        }];
        let resp = self.with_auth(&scopes, what, |auth| {
            self.transport
                .fetch(&Method::GET, url, headers, auth)
                .map(|r| r.0)
        })?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(status_error(what.to_string(), resp))
        }
    }

    /// Runs `send` with the Authorization header for `scopes`. On a 401 the token may have
    /// expired or the registry may challenge only here: once, learn and try again.
    fn with_auth(
        &self,
        scopes: &[String],
        what: &str,
        send: impl Fn(Option<&str>) -> Result<Response, ureq::Error>,
    ) -> Result<Response> {
        let auth = self.authorization(scopes)?;
        let resp = send(auth.as_deref()).map_err(self.transport_err(what))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let fresh = challenge_of(&resp);
        {
            let mut state = self.lock();
            let known = state.challenge.clone();
            match (&known, &fresh) {
                // Bearer we answered with a cached token: drop it and ask again.
                (Some(Challenge::Bearer { .. }), _) if auth.is_some() => state.tokens.clear(),
                (None, Some(_)) => state.challenge = fresh.clone(),
                _ => return Ok(resp),
            }
        }
        let auth = self.authorization(scopes)?;
        send(auth.as_deref()).map_err(self.transport_err(what))
    }

    fn authorization(&self, scopes: &[String]) -> Result<Option<String>> {
        self.ping()?;
        let challenge = self.lock().challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(auth::basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                let key = scopes.join(" ");
                if let Some(token) = self.lock().tokens.get(&key) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                self.lock().tokens.insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        let account = self.creds.as_ref().map(|c| c.username.as_str());
        let url = auth::token_url(realm, service, scopes, account);
        let basic = self.creds.as_ref().map(auth::basic_header);
        let token_err = |reason: String| Error::Token {
            realm: realm.to_string(),
            reason,
        };
        // The token service gets the user's password: never over a redirect to elsewhere.
        let (resp, _) = self
            .transport
            .fetch(&Method::GET, &url, &[], basic.as_deref())
            .map_err(|e| token_err(describe_transport(&e)))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(MAX_MANIFEST)
            .read_to_end(&mut body);
        match status {
            200 => auth::token_from_response(&body)
                .ok_or_else(|| token_err("the answer has no token".into())),
            401 | 403 => Err(Error::Unauthorized {
                what: format!("getting a token from {realm} for {}", self.domain),
                message: error_message(&body)
                    .unwrap_or_else(|| "invalid username or password".into()),
            }),
            _ => Err(token_err(format!(
                "status {status}: {}",
                error_message(&body).unwrap_or_default()
            ))),
        }
    }

    fn transport_err<'a>(&'a self, what: &'a str) -> impl Fn(ureq::Error) -> Error + 'a {
        move |source| Error::Transport {
            what: what.to_string(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Docker and podman talk plain http to these without being told.
fn is_local(domain: &str) -> bool {
    let host = match domain.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => domain.split(':').next().unwrap_or(""),
    };
    host == "localhost" || host.ends_with(".localhost") || host == "::1" || host.starts_with("127.")
}

fn challenge_of(resp: &Response) -> Option<Challenge> {
    auth::parse_challenges(
        resp.headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The error for an unexpected status, with the registry's message from its errors body.
fn status_error(what: String, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let reason = resp
        .status()
        .canonical_reason()
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut body);
    let message = error_message(&body);
    match status {
        401 => Error::Unauthorized {
            what,
            message: message.unwrap_or_else(|| "authentication required".into()),
        },
        404 => Error::NotFound {
            what,
            message: message.unwrap_or_else(|| "not found".into()),
        },
        _ => Error::Status {
            what,
            status,
            message: message.unwrap_or_else(|| {
                let text: String = String::from_utf8_lossy(&body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect();
                if text.is_empty() { reason } else { text }
            }),
        },
    }
}

/// `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` → "manifest unknown";
/// a token service's `{"details": ...}` or `{"error": ...}` too.
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
        let msgs: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                e.get("message")
                    .and_then(|m| m.as_str())
                    .or_else(|| e.get("code").and_then(|c| c.as_str()))
            })
            .map(str::to_string)
            .collect();
        if !msgs.is_empty() {
            return Some(msgs.join("; "));
        }
    }
    ["details", "error", "message"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|m| m.as_str()).map(str::to_string))
}

fn describe_transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::HostNotFound => "host not found".into(),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts() {
        for l in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "x.localhost",
        ] {
            assert!(is_local(l), "{l}");
        }
        for r in [
            "docker.io",
            "quay.io:443",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhostx",
        ] {
            assert!(!is_local(r), "{r}");
        }
    }

    #[test]
    fn registry_messages() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_message(body).as_deref(), Some("manifest unknown"));
        assert_eq!(
            error_message(br#"{"details":"incorrect username or password"}"#).as_deref(),
            Some("incorrect username or password")
        );
        assert_eq!(error_message(b"<html>"), None);
    }
}
