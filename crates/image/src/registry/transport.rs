//! HTTP for the registry client: one ureq agent (keep-alive pool shared by the layer
//! threads), bounded retries with backoff on transient failures, and redirects followed by
//! hand so that credentials never go to another origin (blob storage on a CDN gets no
//! `Authorization` header).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use ureq::http::{Method, Request};

pub type Response = ureq::http::Response<ureq::Body>;

/// At most this many tries of one request (the first and three retries).
const ATTEMPTS: u32 = 4;
/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// A `Retry-After` longer than this is cut to it: a pull should fail rather than hang.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 10;

pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Re-opened for each attempt, so a retried upload starts from the beginning.
    File(&'a Path),
}

pub struct Transport {
    agent: ureq::Agent,
}

impl Transport {
    pub fn new(tls: ureq::tls::TlsConfig) -> Transport {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            // A stalled transfer fails (and is retried) instead of hanging forever.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .build();
        Transport {
            agent: config.into(),
        }
    }

    /// Sends one request, retrying connection resets, timeouts, 429 and 5xx a bounded number
    /// of times. Returns the last response (whatever its status) or the last error.
    pub fn send(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<Response, ureq::Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method, url, headers, body);
            let last = attempt >= ATTEMPTS;
            let wait = match &result {
                Ok(resp) if is_transient_status(resp.status().as_u16()) && !last => {
                    retry_after(resp)
                }
                Err(e) if is_transient_error(e) && !last => None,
                _ => return result,
            };
            let backoff = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            let wait = wait.unwrap_or(backoff).min(MAX_RETRY_AFTER);
            log::debug!(
                "{method} {url}: {}; retrying in {wait:?}",
                describe(&result)
            );
            std::thread::sleep(wait);
        }
    }

    fn send_once(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<Response, ureq::Error> {
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        match body {
            Body::Empty if method == Method::POST || method == Method::PUT => self
                .agent
                .run(builder.header("Content-Length", "0").body(&[][..])?),
            Body::Empty => self.agent.run(builder.body(())?),
            Body::Bytes(b) => self.agent.run(builder.body(*b)?),
            Body::File(p) => self.agent.run(builder.body(File::open(p)?)?),
        }
    }

    /// GET or HEAD, following redirects. `auth` is sent to the origin of `url` and to
    /// redirect targets on that same origin only (scheme, host and port).
    pub fn fetch(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&str>,
    ) -> Result<(Response, String), ureq::Error> {
        let first_origin = origin(url).to_string();
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            if let Some(auth) = auth.filter(|_| origin(&url) == first_origin) {
                all.push(("Authorization", auth));
            }
            let resp = self.send(method, &url, &all, &Body::Empty)?;
            if !resp.status().is_redirection() {
                return Ok((resp, url));
            }
            let Some(location) = resp.headers().get("location").and_then(|v| v.to_str().ok())
            else {
                return Ok((resp, url));
            };
            url = join(&url, location);
        }
        Err(ureq::Error::TooManyRedirects)
    }
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

pub fn is_transient_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(e) => is_transient_io(e.kind()),
        ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

pub fn is_transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | Interrupted
    )
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe(result: &Result<Response, ureq::Error>) -> String {
    match result {
        Ok(r) => format!("status {}", r.status()),
        Err(e) => e.to_string(),
    }
}

/// `scheme://authority` of an absolute URL.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Resolves a `Location` against the URL it came with (absolute, `//host/..`, `/path`, or
/// relative to the current directory of the path).
pub fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    let origin = origin(base);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &base[origin.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_joins() {
        assert_eq!(
            origin("http://127.0.0.1:5000/v2/x?y"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(origin("https://h"), "https://h");
        assert_ne!(
            origin("http://127.0.0.1:5000/a"),
            origin("http://localhost:5000/a")
        );
        assert_ne!(origin("https://h/a"), origin("http://h/a"));
        let base = "http://h:1/v2/r/blobs/uploads/?x=1";
        assert_eq!(
            join(base, "/v2/r/blobs/uploads/u?s=2"),
            "http://h:1/v2/r/blobs/uploads/u?s=2"
        );
        assert_eq!(join(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(join(base, "//cdn/x"), "http://cdn/x");
        assert_eq!(join("http://h/a/b", "c"), "http://h/a/c");
    }

    #[test]
    fn transient() {
        assert!(is_transient_status(503) && is_transient_status(429) && !is_transient_status(404));
        let refused = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_transient_error(&refused));
        let reset = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_transient_error(&reset));
    }
}
