//! Registry credentials in docker's client configuration: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), so `berth login` and `docker login` share them.
//!
//! - `auths.<server>.auth` is base64 of `user:password` (and `identitytoken` a refresh token);
//! - `credHelpers.<server>` names a helper for one registry, `credsStore` one for all; a helper
//!   is the program `docker-credential-<name>` speaking docker's protocol (`get`, `store`,
//!   `erase`, with the server URL or a JSON document on stdin).
//!
//! Unknown keys in the file are kept as they are when berth rewrites it (written to a
//! temporary file and renamed, mode 0600).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// docker.io's key in the file.
pub const DOCKER_IO_KEY: &str = "https://index.docker.io/v1/";

/// One registry's credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Auth {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// docker's `X-Registry-Auth` header value: base64url of the AuthConfig JSON.
    pub fn header(&self, server: &str) -> String {
        let mut v =
            json!({"username": self.username, "password": self.password, "serveraddress": server});
        if !self.identity_token.is_empty() {
            v["identitytoken"] = json!(self.identity_token);
        }
        base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
    }
}

/// The registry host of a reference as docker names it: `busybox` → docker.io,
/// `localhost:5000/app` → `localhost:5000`.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "index.docker.io" || first == "registry-1.docker.io" {
                "docker.io".into()
            } else {
                first.to_string()
            }
        }
        _ => "docker.io".into(),
    }
}

/// The registry host a `login`/`logout` argument names: `https://reg:5000/v1/` → `reg:5000`;
/// none, or one of docker.io's names, → `docker.io`.
pub fn server_host(server: Option<&str>) -> String {
    match server.map(bare).filter(|h| !h.is_empty()) {
        None | Some("index.docker.io" | "registry-1.docker.io" | "docker.io") => "docker.io".into(),
        Some(h) => h.to_string(),
    }
}

/// The key a registry host has in the file.
pub fn key_for(host: &str) -> String {
    if host == "docker.io" {
        DOCKER_IO_KEY.into()
    } else {
        host.to_string()
    }
}

/// `https://host:5000/v1/` → `host:5000`.
fn bare(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The client configuration file.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    doc: Map<String, Value>,
}

impl ConfigFile {
    pub fn default_path() -> PathBuf {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("config.json");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".docker/config.json")
    }

    pub fn load() -> anyhow::Result<Self> {
        let path = Self::default_path();
        let doc = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b)
                .with_context(|| format!("{}: not valid JSON", path.display()))?
            {
                Value::Object(m) => m,
                _ => anyhow::bail!("{}: not a JSON object", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Ok(ConfigFile { path, doc })
    }

    /// Rewrites the file crash-safely (temporary file, fsync, rename, directory fsync); a new
    /// file is private to the user (0600), an existing one keeps its mode.
    fn save(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().context("config path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let write = || -> std::io::Result<()> {
            let mut f = atomic_write_file::OpenOptions::new()
                .mode(0o600)
                .open(&self.path)?;
            f.write_all(&serde_json::to_vec_pretty(&Value::Object(
                self.doc.clone(),
            ))?)?;
            f.commit()
        };
        write().with_context(|| format!("write {}", self.path.display()))
    }

    /// The helper for `host`, if one is configured.
    fn helper(&self, host: &str) -> Option<String> {
        let key = key_for(host);
        if let Some(h) = self.doc.get("credHelpers").and_then(|h| {
            h.as_object()?
                .iter()
                .find(|(k, _)| bare(k) == bare(&key))
                .and_then(|(_, v)| v.as_str().map(str::to_string))
        }) {
            return Some(h);
        }
        self.doc
            .get("credsStore")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for `host`.
    pub fn get(&self, host: &str) -> anyhow::Result<Option<Auth>> {
        let key = key_for(host);
        if let Some(h) = self.helper(host) {
            return helper_get(&h, &key);
        }
        let Some(auths) = self.doc.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        let Some((_, entry)) = auths.iter().find(|(k, _)| bare(k) == bare(&key)) else {
            return Ok(None);
        };
        let mut a = Auth::default();
        if let Some(enc) = entry["auth"].as_str().filter(|s| !s.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(enc)
                .with_context(|| {
                    format!("{}: auths.{key}.auth is not base64", self.path.display())
                })?;
            let raw = String::from_utf8_lossy(&raw).to_string();
            let (u, p) = raw.split_once(':').with_context(|| {
                format!(
                    "{}: auths.{key}.auth is not user:password",
                    self.path.display()
                )
            })?;
            a.username = u.to_string();
            a.password = p.to_string();
        }
        if let Some(t) = entry["identitytoken"].as_str() {
            a.identity_token = t.to_string();
        }
        Ok((a != Auth::default()).then_some(a))
    }

    /// Stores credentials for `host` (in its helper when one is configured).
    pub fn store(&mut self, host: &str, a: &Auth) -> anyhow::Result<()> {
        let key = key_for(host);
        if let Some(h) = self.helper(host) {
            return helper_store(&h, &key, a);
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .context("auths is not an object")?;
        let mut entry = json!({
            "auth": base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", a.username, a.password)),
        });
        if !a.identity_token.is_empty() {
            entry["identitytoken"] = json!(a.identity_token);
        }
        auths.insert(key, entry);
        self.save()
    }

    /// Removes the credentials for `host`; whether there were any.
    pub fn erase(&mut self, host: &str) -> anyhow::Result<bool> {
        let key = key_for(host);
        if let Some(h) = self.helper(host) {
            return helper_erase(&h, &key);
        }
        let Some(auths) = self.doc.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            return Ok(false);
        };
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| bare(k) == bare(&key))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        if keys.is_empty() {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }
}

fn helper_run(helper: &str, verb: &str, input: &str) -> anyhow::Result<(bool, String)> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run the credential helper {prog}"))?;
    child
        .stdin
        .take()
        .context("helper stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success(), text))
}

fn helper_get(helper: &str, key: &str) -> anyhow::Result<Option<Auth>> {
    let (ok, out) = helper_run(helper, "get", key)?;
    if !ok {
        // The protocol's "not found" answer.
        if out.contains("credentials not found") {
            return Ok(None);
        }
        anyhow::bail!("docker-credential-{helper} get: {out}");
    }
    let v: Value = serde_json::from_str(&out)
        .with_context(|| format!("docker-credential-{helper} get: not JSON"))?;
    let user = v["Username"].as_str().unwrap_or_default().to_string();
    let secret = v["Secret"].as_str().unwrap_or_default().to_string();
    // docker's convention: the user name <token> marks an identity token.
    Ok(Some(if user == "<token>" {
        Auth {
            identity_token: secret,
            ..Auth::default()
        }
    } else {
        Auth {
            username: user,
            password: secret,
            identity_token: String::new(),
        }
    }))
}

fn helper_store(helper: &str, key: &str, a: &Auth) -> anyhow::Result<()> {
    let (user, secret) = if a.identity_token.is_empty() {
        (a.username.as_str(), a.password.as_str())
    } else {
        ("<token>", a.identity_token.as_str())
    };
    let doc = json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string();
    let (ok, out) = helper_run(helper, "store", &doc)?;
    if !ok {
        anyhow::bail!("docker-credential-{helper} store: {out}");
    }
    Ok(())
}

fn helper_erase(helper: &str, key: &str) -> anyhow::Result<bool> {
    let (ok, out) = helper_run(helper, "erase", key)?;
    if !ok {
        if out.contains("credentials not found") {
            return Ok(false);
        }
        anyhow::bail!("docker-credential-{helper} erase: {out}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_of_references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("user/app:1"), "docker.io");
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("reg.example/a/b@sha256:00"), "reg.example");
        assert_eq!(key_for("docker.io"), DOCKER_IO_KEY);
        assert_eq!(bare("https://reg:5000/v1/"), "reg:5000");
        assert_eq!(server_host(Some("https://reg:5000/v1/")), "reg:5000");
        assert_eq!(server_host(Some("myhost")), "myhost");
        assert_eq!(server_host(Some(DOCKER_IO_KEY)), "docker.io");
        assert_eq!(server_host(None), "docker.io");
    }

    #[test]
    fn header_is_base64url_json() {
        let a = Auth {
            username: "u".into(),
            password: "p?>".into(),
            identity_token: String::new(),
        };
        let h = a.header("reg:5000");
        let raw = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["username"], "u");
        assert_eq!(v["password"], "p?>");
        assert_eq!(v["serveraddress"], "reg:5000");
        assert!(!format!("{a:?}").contains("p?>"));
    }
}
