//! Registry authentication: credentials, `WWW-Authenticate` challenges (RFC 7235, with the
//! distribution spec's `Bearer realm=,service=,scope=`), bearer tokens from the realm (with
//! basic credentials, or an identity token as an OAuth2 refresh token) and their cache.
//! Credentials themselves come from the caller (the daemon gets them in `X-Registry-Auth`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Credentials for one registry, as docker's `AuthConfig`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// A refresh token from an earlier login (OAuth2).
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    /// A bearer token to send as is.
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// `Basic base64(user:password)`.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// Decodes docker's `X-Registry-Auth` header (base64url JSON of an AuthConfig; padded or
    /// not, and plain base64 as old clients send it).
    pub fn from_header(value: &str) -> Result<Option<Credentials>> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(None);
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let raw = engines
            .iter()
            .find_map(|e| e.decode(v).ok())
            .ok_or_else(|| Error::Config("X-Registry-Auth: not base64".into()))?;
        if raw.iter().all(u8::is_ascii_whitespace) || raw == b"{}" || raw == b"null" {
            return Ok(None);
        }
        let c: Credentials = serde_json::from_slice(&raw)
            .map_err(|e| Error::Config(format!("X-Registry-Auth: {e}")))?;
        Ok((!c.is_empty()).then_some(c))
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lower-cased.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://a/token",service="reg",scope="repository:x:pull"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = rest[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = rest[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            params.insert(key, val);
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// Tokens by scope, with their expiry.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    /// The challenge the registry answered with, once seen.
    pub challenge: Option<Challenge>,
    tokens: BTreeMap<String, (String, Instant)>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<String> {
        self.tokens
            .get(scope)
            .filter(|(_, exp)| Instant::now() < *exp)
            .map(|(t, _)| t.clone())
    }

    /// Drops the token for `scope` (the registry refused it).
    pub fn forget(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }

    pub fn put(&mut self, scope: &str, token: String, lifetime: Duration) {
        // Renew a little before the registry would refuse it.
        let lifetime = lifetime.saturating_sub(Duration::from_secs(5));
        self.tokens
            .insert(scope.to_string(), (token, Instant::now() + lifetime));
    }
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks the challenge's realm for a token covering `scopes` (space-separated in the cache key).
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    challenge: &Challenge,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<(String, Duration)> {
    let realm = challenge
        .params
        .get("realm")
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"))
        .ok_or_else(|| {
            Error::Protocol(format!(
                "bearer challenge without a usable realm: {:?}",
                challenge.params
            ))
        })?;
    let service = challenge.params.get("service").cloned().unwrap_or_default();
    let resp = match creds.filter(|c| !c.identity_token.is_empty()) {
        Some(c) => {
            // OAuth2 refresh-token grant, as docker does with an identity token.
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", &c.identity_token)
                .append_pair("service", &service)
                .append_pair("client_id", "berth");
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            agent
                .post(realm.as_str())
                .content_type("application/x-www-form-urlencoded")
                .send(form.finish())
        }
        None => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if !service.is_empty() {
                q.append_pair("service", &service);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            let sep = if realm.contains('?') { '&' } else { '?' };
            let url = format!("{realm}{sep}{}", q.finish());
            let mut req = agent.get(&url);
            if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                req = req.header("Authorization", c.basic());
            }
            req.call()
        }
    };
    let mut resp = resp.map_err(|e| Error::Transport {
        what: format!("get token from {realm}"),
        message: e.to_string(),
    })?;
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        return Err(Error::Unauthorized(if creds.is_some() {
            "unauthorized: incorrect username or password".into()
        } else {
            "unauthorized: authentication required".into()
        }));
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| Error::Transport {
            what: format!("read token from {realm}"),
            message: e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        return Err(Error::Status {
            what: format!("get token from {realm}"),
            status,
            message: String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(300)
                .collect(),
        });
    }
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| Error::Protocol(format!("token from {realm}: {e}")))?;
    let token = if t.token.is_empty() {
        t.access_token
    } else {
        t.token
    };
    if token.is_empty() {
        return Err(Error::Protocol(format!(
            "token from {realm}: no token in the answer"
        )));
    }
    // The distribution spec's default lifetime is 60 s.
    let lifetime = Duration::from_secs(t.expires_in.unwrap_or(60).max(10));
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
        let unq = parse_challenge("Bearer realm=https://a/t, service=x").unwrap();
        assert_eq!(unq.params["realm"], "https://a/t");
        assert_eq!(unq.params["service"], "x");
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn decodes_x_registry_auth() {
        let json = r#"{"username":"u","password":"p+/?","serveraddress":"r"}"#;
        for e in [
            base64::engine::general_purpose::URL_SAFE.encode(json),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
            base64::engine::general_purpose::STANDARD.encode(json),
        ] {
            let c = Credentials::from_header(&e).unwrap().unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p+/?"));
        }
        assert!(Credentials::from_header("").unwrap().is_none());
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(Credentials::from_header(&empty).unwrap().is_none());
        assert!(Credentials::from_header("!!!").is_err());
        assert!(!format!(
            "{:?}",
            Credentials::from_header(&base64::engine::general_purpose::URL_SAFE.encode(json))
                .unwrap()
                .unwrap()
        )
        .contains("p+/?"));
    }

    #[test]
    fn tokens_expire() {
        let mut t = TokenCache::default();
        t.put("s", "tok".into(), Duration::from_secs(60));
        assert_eq!(t.get("s").as_deref(), Some("tok"));
        t.put("s", "tok".into(), Duration::from_secs(1));
        assert!(t.get("s").is_none(), "a token about to expire is not used");
    }
}
