//! Docker's credential helpers: `docker-credential-NAME get|store|erase` found on `$PATH`,
//! as docker-credential-helpers' client runs them. `get` and `erase` take the server URL on
//! stdin; `store` takes `{"ServerURL","Username","Secret"}`; `get` prints that JSON. A helper
//! that has nothing says so with the message "credentials not found in native keychain"
//! and a failing exit status: that is an answer, not an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::authfile::Credentials;
use super::error::{Error, Result};

/// What a helper prints when it holds nothing for the server (docker-credential-helpers'
/// `errCredentialsNotFoundMessage`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The `Username` docker's helpers use for an identity (OAuth refresh) token.
const TOKEN_USER: &str = "<token>";

/// A helper as a config file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    /// NAME in `docker-credential-NAME`.
    pub name: String,
    /// The file that named it (for errors).
    pub config: PathBuf,
    /// `credHelpers` (per registry) or `credsStore`.
    pub per_registry: bool,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The server URL a helper is asked about: docker's index URL for Docker Hub (what `docker
/// login` stores it under), else the registry's host.
pub fn server_url(domain: &str) -> String {
    if domain == crate::reference::DEFAULT_DOMAIN {
        "https://index.docker.io/v1/".to_string()
    } else {
        domain.to_string()
    }
}

impl Helper {
    pub fn new(name: &str, config: &Path, per_registry: bool) -> Result<Helper> {
        let helper = Helper {
            name: name.to_string(),
            config: config.to_path_buf(),
            per_registry,
        };
        // The name becomes part of a program name looked up on $PATH: a path is not one.
        if name.is_empty() || name.contains('/') || name.contains('\0') {
            return Err(helper.error("", "", "not a credential helper name".into()));
        }
        Ok(helper)
    }

    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credentials for `server`; None when the helper has none.
    pub fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let out = match self.run("get", server, server.as_bytes())? {
            Answer::NotFound => return Ok(None),
            Answer::Ok(out) => out,
        };
        let p: Payload = serde_json::from_slice(&out).map_err(|e| {
            self.error(
                "get",
                server,
                format!("its answer is not the credentials JSON: {e}"),
            )
        })?;
        if p.username == TOKEN_USER {
            return Err(self.error(
                "get",
                server,
                "it holds an identity token, which berth cannot use: log in with a password".into(),
            ));
        }
        if p.username.is_empty() && p.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: p.username,
            password: p.secret,
        }))
    }

    pub fn store(&self, server: &str, creds: &Credentials) -> Result<()> {
        let payload = Payload {
            server_url: server.to_string(),
            username: creds.username.clone(),
            secret: creds.password.clone(),
        };
        let input = serde_json::to_vec(&payload).expect("credentials serialize");
        match self.run("store", server, &input)? {
            Answer::Ok(_) => Ok(()),
            Answer::NotFound => Err(self.error("store", server, NOT_FOUND.into())),
        }
    }

    /// Removes the credentials for `server`; false when the helper had none.
    pub fn erase(&self, server: &str) -> Result<bool> {
        match self.run("erase", server, server.as_bytes())? {
            Answer::Ok(_) => Ok(true),
            Answer::NotFound => Ok(false),
        }
    }

    fn run(&self, action: &'static str, server: &str, input: &[u8]) -> Result<Answer> {
        let program = self.program();
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{program} is not in $PATH")
                } else {
                    format!("cannot run {program}: {e}")
                };
                self.error(action, server, reason)
            })?;
        // A helper that exits without reading its input gives EPIPE here: its exit status
        // and output then say what happened.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.error(action, server, format!("waiting for {program}: {e}")))?;
        if out.status.success() {
            return Ok(Answer::Ok(out.stdout));
        }
        let said = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        let (stdout, stderr) = (said(&out.stdout), said(&out.stderr));
        if stdout == NOT_FOUND || stderr == NOT_FOUND {
            return Ok(Answer::NotFound);
        }
        let message = [stdout, stderr]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let message: String = message.chars().take(500).collect();
        Err(self.error(action, server, format!("{}: {message}", out.status)))
    }

    fn error(&self, action: &str, server: &str, reason: String) -> Error {
        Error::CredentialHelper {
            helper: self.program(),
            config: self.config.clone(),
            key: if self.per_registry {
                "credHelpers"
            } else {
                "credsStore"
            },
            action: if action.is_empty() {
                String::new()
            } else {
                format!(" {action} {server}")
            },
            reason,
        }
    }
}

enum Answer {
    Ok(Vec<u8>),
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
        let cfg = Path::new("/c/config.json");
        assert_eq!(
            Helper::new("pass", cfg, false).unwrap().program(),
            "docker-credential-pass"
        );
        let e = Helper::new("../evil", cfg, true).unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-../evil") && e.contains("credHelpers"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_helper_is_named() {
        let h = Helper::new(
            "berth-test-surely-absent",
            Path::new("/c/config.json"),
            false,
        )
        .unwrap();
        let e = h.get("reg:1").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-berth-test-surely-absent")
                && e.contains("not in $PATH")
                && e.contains("/c/config.json")
                && e.contains("reg:1"),
            "{e}"
        );
    }
}
