//! Image references (`busybox`, `quay.io/x/y:1.2`, `name@sha256:...`), parsed and normalized as
//! docker/distribution's `reference` package does (`ParseNormalizedNamed` + `TagNameOnly`):
//!
//! - the first `/`-separated component is a registry domain when it contains `.` or `:`, is
//!   `localhost`, or has an upper-case letter (docker's rule); otherwise the domain is `docker.io`;
//! - on `docker.io` a single-component name gets `library/` (`busybox` = `docker.io/library/busybox`);
//!   `index.docker.io` is `docker.io`;
//! - the tag defaults to `latest` unless a digest is given; `name:tag@sha256:...` keeps both
//!   (the digest is what is pulled, the tag is what the image is named);
//! - repository components are lower-case `[a-z0-9]+` joined by `.`, `_`, `__` or `-`s; the whole
//!   name is at most 255 characters; a bare 64-hex string is refused as a name (it is an image id).

use std::fmt;
use std::str::FromStr;

/// The registry docker uses when a name has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old name, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Where docker puts single-component names on Docker Hub.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The domain podman gives images that came from no registry (import, build).
pub const LOCAL_DOMAIN: &str = "localhost";
/// docker's limit on `domain/repository`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The tag docker adds when none is given.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference; the message names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: &'static str,
}

/// A normalized image reference: always a domain and a repository, a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    repository: String,
    tag: Option<String>,
    /// `algorithm:hex`, checked (sha256 needs 64 lower-case hex digits).
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `input` as docker does (`busybox` = `docker.io/library/busybox:latest`).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        parse_with_default(input, DEFAULT_DOMAIN)
    }

    /// A name for an image that came from no registry, as podman names imports: a name
    /// without a domain goes under `localhost/` (`foo` = `localhost/foo:latest`); a name with
    /// a domain is kept.
    pub fn local(name: &str) -> Result<Reference, ReferenceError> {
        parse_with_default(name, LOCAL_DOMAIN)
    }

    /// The registry: `docker.io`, `localhost`, `quay.io`, `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path in the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `domain/repository`, without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The tag; `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<64 hex>`) when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one (it is
    /// what a `name:tag@digest` reference means), else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError {
                input: tag.to_string(),
                reason: "invalid tag",
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest` (the tag is kept, as `name:tag@digest`).
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ReferenceError> {
        check_digest(digest).map_err(|reason| ReferenceError {
            input: digest.to_string(),
            reason,
        })?;
        Ok(Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        })
    }

    /// The same repository and tag without the digest (how a pulled image is named).
    pub fn without_digest(&self) -> Reference {
        Reference {
            tag: Some(self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string())),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_with_default(input: &str, default_domain: &str) -> Result<Reference, ReferenceError> {
    let err = |reason| ReferenceError {
        input: input.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(err("empty name"));
    }
    // The digest is everything after the first '@'; the tag is after the last ':' of what
    // remains, when that ':' comes after the last '/' (else it is a port).
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest).map_err(err)?;
            (rest, Some(digest.to_string()))
        }
        None => (input, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(err("invalid tag"));
    }
    if name.is_empty() {
        return Err(err("empty name"));
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(err("repository name must not be more than 255 characters"));
    }
    if is_hex64(name) {
        return Err(err(
            "cannot specify 64-byte hexadecimal strings as a repository name",
        ));
    }
    let (mut domain, mut repository) = split_domain(name, default_domain);
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !repository.contains('/') {
        repository = format!("{OFFICIAL_REPO_PREFIX}{repository}");
    }
    if !is_domain(&domain) {
        return Err(err("invalid domain"));
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(err("repository name must be lowercase"));
    }
    if !repository.split('/').all(is_path_component) {
        return Err(err("invalid repository name"));
    }
    // docker counts the normalized name against the limit too.
    if domain.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(err("repository name must not be more than 255 characters"));
    }
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        domain,
        repository,
        tag,
        digest,
    })
}

/// docker's `splitDockerDomain`: the first component is a domain when it looks like a host
/// (has `.` or `:`), is `localhost`, or is not all lower-case (repositories must be).
fn split_domain(name: &str, default_domain: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == LOCAL_DOMAIN
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (default_domain.to_string(), name.to_string()),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels
/// or a bracketed IPv6 address.
fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// `algorithm:encoded`; sha256 (the only algorithm registries and the store use) must be 64
/// lower-case hex digits, as the OCI image spec requires.
fn check_digest(digest: &str) -> Result<(), &'static str> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err("invalid digest: no algorithm");
    };
    match algorithm {
        "sha256" if is_hex64(encoded) => Ok(()),
        "sha256" => Err("invalid digest: sha256 needs 64 lower-case hex digits"),
        "sha384" | "sha512" => Err("unsupported digest algorithm"),
        _ => Err("invalid digest: unknown algorithm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("a/b/c"), "docker.io/a/b/c:latest");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "docker.io/library/busybox");
    }

    #[test]
    fn domains() {
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(full("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        assert_eq!(
            full("quay.io/podman/stable"),
            "quay.io/podman/stable:latest"
        );
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        // A port-like suffix on a one-component name is a tag, not a port.
        assert_eq!(full("localhost:5000"), "docker.io/library/localhost:5000");
        // docker treats an upper-case first component as a domain.
        assert_eq!(full("Example/x"), "Example/x:latest");
        let r = Reference::parse("127.0.0.1:5000/a/b:t").unwrap();
        assert_eq!(
            (r.domain(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "a/b", Some("t"))
        );
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
        let r = Reference::parse(&format!("localhost:5000/x:1.0@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(r.without_digest().to_string(), "localhost:5000/x:1.0");
        assert_eq!(r.to_string(), format!("localhost:5000/x:1.0@sha256:{HEX}"));
    }

    #[test]
    fn local_names() {
        assert_eq!(
            Reference::local("foo").unwrap().to_string(),
            "localhost/foo:latest"
        );
        assert_eq!(
            Reference::local("a/b:2").unwrap().to_string(),
            "localhost/a/b:2"
        );
        assert_eq!(
            Reference::local("quay.io/x").unwrap().to_string(),
            "quay.io/x:latest"
        );
        assert_eq!(
            Reference::local("docker.io/foo").unwrap().to_string(),
            "docker.io/library/foo:latest"
        );
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            ":tag",
            "Busybox",
            "busybox:",
            "busybox@",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            &format!("busybox@sha256:{}", HEX.to_uppercase()),
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "bad host/x",
            "host:port:1/x",
            "x:bad/tag",
            "busybox:-tag",
            &format!("busybox:{}", "t".repeat(129)),
            &"a".repeat(256),
            HEX,
            "example.com:/x",
            "[::1/x",
        ] {
            let e = Reference::parse(bad).expect_err(bad);
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let e = Reference::parse("Busybox").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid reference format \"Busybox\": repository name must be lowercase"
        );
    }

    #[test]
    fn separators() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1.b2_c3__d4-e5"] {
            Reference::parse(ok).expect(ok);
        }
        assert_eq!(
            full("busybox:v1.2_3-rc"),
            "docker.io/library/busybox:v1.2_3-rc"
        );
    }

    #[test]
    fn with_tag_and_serde() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            r.with_tag("x").unwrap().to_string(),
            "docker.io/library/busybox:x"
        );
        assert!(r.with_tag("-x").is_err());
        assert!(r.with_digest("sha256:x").is_err());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!("busybox".parse::<Reference>().unwrap(), r);
    }
}
