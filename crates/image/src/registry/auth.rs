//! Registry authentication: the `WWW-Authenticate` challenge of a 401 (RFC 7235), the
//! Bearer token flow of the Distribution token spec (GET realm?service=..&scope=.. with the
//! user's Basic credentials, if any), and Basic.

use std::collections::HashMap;

use base64::Engine as _;

use super::authfile::Credentials;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The challenge to answer from the `WWW-Authenticate` values of a 401. Bearer is preferred
/// when a registry offers both.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for value in values {
        let (scheme, params) = split_scheme(value);
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                let params = parse_params(params);
                if let Some(realm) = params.get("realm") {
                    return Some(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                    });
                }
            }
            "basic" => basic = true,
            _ => {}
        }
    }
    basic.then_some(Challenge::Basic)
}

fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim();
    match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    }
}

/// `key=value` or `key="quoted \"value\""` pairs separated by commas.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

pub fn basic_header(creds: &Credentials) -> String {
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The URL that asks `realm` for a token: `service` and each `scope` as query parameters.
pub fn token_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    account: Option<&str>,
) -> String {
    let mut url = realm.to_string();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    let mut add = |k: &str, v: &str| {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&percent_encode(v));
        sep = '&';
    };
    if let Some(account) = account {
        add("account", account);
    }
    if let Some(service) = service {
        add("service", service);
    }
    for scope in scopes {
        add("scope", scope);
    }
    url
}

/// The token from a token service's answer (`token`, or OAuth2's `access_token`).
pub fn token_from_response(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ]);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="Registry Realm""#]),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenges([
                r#"Basic realm="x""#,
                r#"bearer realm="http://a/\"t\"", service=s"#
            ]),
            Some(Challenge::Bearer {
                realm: "http://a/\"t\"".into(),
                service: Some("s".into())
            })
        );
        assert_eq!(parse_challenges(["Negotiate"]), None);
        assert_eq!(parse_challenges(["Bearer service=x"]), None);
    }

    #[test]
    fn token_urls_and_answers() {
        let url = token_url(
            "http://127.0.0.1:1/token",
            Some("reg"),
            &["repository:a/b:pull,push".into()],
            Some("u"),
        );
        assert_eq!(
            url,
            "http://127.0.0.1:1/token?account=u&service=reg&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            token_url("http://x/t?a=1", None, &[], None),
            "http://x/t?a=1"
        );
        assert_eq!(
            token_from_response(br#"{"token":"abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from_response(br#"{"access_token":"xyz","token":""}"#).as_deref(),
            Some("xyz")
        );
        assert_eq!(token_from_response(b"{}"), None);
        let creds = Credentials {
            username: "user".into(),
            password: "pa:ss".into(),
        };
        assert_eq!(basic_header(&creds), "Basic dXNlcjpwYTpzcw==");
    }
}
