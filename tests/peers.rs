//! Real peers for the registry tests, all on loopback: Debian's `docker-registry` (the CNCF
//! distribution server) with TLS from a test CA and htpasswd or token auth, a small bearer
//! token service, a private dockerd, and a hostile registry that misbehaves on purpose.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;

/// A free TCP port on 127.0.0.1 (bound and released: callers start their server at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A test certificate authority (openssl) and the certificates it signs.
#[derive(Debug)]
pub struct TestCa {
    pub dir: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        run(Command::new("openssl").current_dir(dir).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ]));
        TestCa {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A client certificate `<name>.cert` with its `<name>.key` (docker's certs.d names).
    pub fn client_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        self.sign(
            name,
            "berth test client",
            "extendedKeyUsage=clientAuth\n",
            "cert",
        )
    }

    /// `<name>.crt` and `<name>.key` for 127.0.0.1 and localhost, signed by the CA.
    pub fn server_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        self.sign(
            name,
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            "crt",
        )
    }

    /// A new key and a certificate for it signed by the CA: (`<name>.<cert_ext>`, `<name>.key`).
    fn sign(&self, name: &str, cn: &str, extensions: &str, cert_ext: &str) -> (PathBuf, PathBuf) {
        let d = &self.dir;
        let (key, csr, ext, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("{name}.{cert_ext}"),
        );
        std::fs::write(d.join(&ext), extensions).unwrap();
        run(Command::new("openssl").current_dir(d).args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]));
        run(Command::new("openssl").current_dir(d).args([
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]));
        (d.join(crt), d.join(key))
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (its inode in
/// /proc/net/tcp is among the process's descriptors).
pub fn listener_owned_by(pid: u32, port: u16) -> bool {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let inode = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local = f.get(1)?;
        let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
        (p == port && f.get(3) == Some(&"0A")).then(|| f.get(9).map(|s| s.to_string()))?
    });
    let Some(inode) = inode else { return false };
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want))
        })
        .unwrap_or(false)
}

/// How a docker-registry is set up.
#[derive(Debug, Default)]
pub struct RegistrySetup<'a> {
    /// Serve HTTPS with a certificate from this CA.
    pub tls: Option<&'a TestCa>,
    /// With `tls`: require client certificates signed by the CA.
    pub client_certs: bool,
    /// htpasswd basic auth with this user and password.
    pub htpasswd: Option<(&'a str, &'a str)>,
    /// Token auth: (realm URL, the token signer's certificate).
    pub token: Option<(String, PathBuf)>,
}

pub const TOKEN_SERVICE: &str = "berth-test-registry";
pub const TOKEN_ISSUER: &str = "berth-test-issuer";

/// A docker-registry 2.8 on 127.0.0.1, its storage in a private folder; killed on drop.
#[derive(Debug)]
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Registry {
    pub fn start(s: RegistrySetup<'_>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-reg-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  redirect:\n    disable: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            d.join("data").display()
        );
        if let Some(ca) = s.tls {
            let (crt, key) = ca.server_cert(&format!("registry-{port}"));
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                crt.display(),
                key.display()
            ));
            if s.client_certs {
                cfg.push_str(&format!("    clientcas:\n      - {}\n", ca.ca().display()));
            }
        }
        if let Some((user, pass)) = s.htpasswd {
            let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
            std::fs::write(d.join("htpasswd"), line.trim()).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        } else if let Some((realm, cert)) = &s.token {
            cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        std::fs::write(d.join("config.yml"), cfg).unwrap();
        // REGISTRY_* variables would override the file: a clean environment.
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdout(std::fs::File::create(d.join("log")).unwrap())
            .stderr(std::fs::File::create(d.join("log.err")).unwrap())
            .spawn()
            .expect("docker-registry is missing: install Debian's docker-registry (.ci/run does)");
        let mut r = Registry { dir, port, child };
        r.wait_listening();
        r
    }

    fn wait_listening(&mut self) {
        for _ in 0..200 {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({st}): {}",
                    std::fs::read_to_string(self.dir.path().join("log.err")).unwrap_or_default()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // The listener must be our child, not someone else's server on a reused port.
                assert!(
                    listener_owned_by(self.child.id(), self.port),
                    "the listener on port {} is not our docker-registry",
                    self.port
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("docker-registry did not listen on {}", self.port);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bearer token service for docker-registry's token auth: checks basic credentials and
/// answers with an RS256 JWT (signed with openssl) granting the scopes asked for.
#[derive(Debug)]
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    /// Token requests answered, and refused.
    pub issued: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    /// Every scope asked for.
    pub scopes: Arc<Mutex<Vec<String>>>,
    /// Tokens given for the refresh token [`REFRESH_TOKEN`] (OAuth2 `grant_type=refresh_token`).
    pub refresh_grants: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// The identity (refresh) token the test token service accepts.
pub const REFRESH_TOKEN: &str = "berth-test-refresh-token";

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    pub fn start(user: &str, pass: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        run(Command::new("openssl").current_dir(&d).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "signer.key",
            "-out",
            "signer.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth token signer",
        ]));
        let der = run(Command::new("openssl").current_dir(&d).args([
            "x509",
            "-in",
            "signer.crt",
            "-outform",
            "DER",
            "-out",
            "signer.der",
        ]));
        let _ = der;
        let x5c = base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(d.join("signer.der")).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let refresh_grants = Arc::new(AtomicUsize::new(0));
        let (i2, r2, s2, d2) = (issued.clone(), refused.clone(), scopes.clone(), d.clone());
        let g2 = refresh_grants.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (issued, refused, scopes, d, x5c, expected, grants) = (
                    i2.clone(),
                    r2.clone(),
                    s2.clone(),
                    d2.clone(),
                    x5c.clone(),
                    expected.clone(),
                    g2.clone(),
                );
                std::thread::spawn(move || {
                    let Some(req) = read_request(&conn) else {
                        return;
                    };
                    let query = req.path.split_once('?').map(|x| x.1).unwrap_or("");
                    let post = req.method == "POST";
                    let form = if post {
                        form_pairs(&String::from_utf8_lossy(&req.body))
                    } else {
                        form_pairs(query)
                    };
                    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                    let mut access = Vec::new();
                    let asked: Vec<String> = form
                        .iter()
                        .filter(|(k, _)| k == "scope")
                        // A POST carries the scopes space-separated in one field.
                        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
                        .filter(|v| !v.is_empty())
                        .collect();
                    for v in asked {
                        {
                            scopes.lock().unwrap().push(v.clone());
                            // repository:<name>:<actions>
                            let parts: Vec<&str> = v.splitn(3, ':').collect();
                            if parts.len() == 3 {
                                access.push(serde_json::json!({
                                    "type": parts[0], "name": parts[1],
                                    "actions": parts[2].split(',').collect::<Vec<_>>(),
                                }));
                            }
                        }
                    }
                    let auth = req.header("authorization").unwrap_or_default();
                    let granted = if post {
                        let ok = field("grant_type").as_deref() == Some("refresh_token")
                            && field("refresh_token").as_deref() == Some(REFRESH_TOKEN);
                        if ok {
                            grants.fetch_add(1, Ordering::SeqCst);
                        }
                        ok
                    } else {
                        auth == expected
                    };
                    if !granted {
                        refused.fetch_add(1, Ordering::SeqCst);
                        respond(
                            &conn,
                            401,
                            &[],
                            b"{\"details\":\"incorrect username or password\"}",
                        );
                        return;
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
                    let n = issued.fetch_add(1, Ordering::SeqCst);
                    let claims = serde_json::json!({
                        "iss": TOKEN_ISSUER, "sub": "tester", "aud": TOKEN_SERVICE,
                        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{n}-{now}"),
                        "access": access,
                    });
                    let signing_input = format!(
                        "{}.{}",
                        b64url(header.to_string().as_bytes()),
                        b64url(claims.to_string().as_bytes())
                    );
                    let mut child = Command::new("openssl")
                        .args(["dgst", "-sha256", "-sign"])
                        .arg(d.join("signer.key"))
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap();
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(signing_input.as_bytes())
                        .unwrap();
                    let sig = child.wait_with_output().unwrap().stdout;
                    let token = format!("{signing_input}.{}", b64url(&sig));
                    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                    respond(
                        &conn,
                        200,
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    );
                });
            }
        });
        TokenServer {
            port,
            cert: d.join("signer.crt"),
            issued,
            refused,
            scopes,
            refresh_grants,
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// One parsed HTTP request head.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn read_request(conn: &TcpStream) -> Option<Req> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(conn);
    let mut first = String::new();
    r.read_line(&mut first).ok()?;
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    std::io::Read::read_exact(&mut r, &mut body).ok()?;
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

fn respond(mut conn: &TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// A request the hostile registry saw: method, path, Range header.
pub type Seen = (String, String, Option<String>);

/// How the hostile registry misbehaves when serving the layer blob (or the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Serves everything correctly.
    Honest,
    /// The layer's bytes do not match its digest.
    BadDigest,
    /// The manifest says the layer is larger than it is.
    SizeTooLarge,
    /// The manifest says the layer is smaller than it is.
    SizeTooSmall,
    /// The layer never ends (no Content-Length, bytes forever).
    EndlessBlob,
    /// The manifest never ends.
    EndlessManifest,
    /// The layer redirects to itself.
    RedirectLoop,
    /// The layer redirects once, to a blob store path on the same server.
    Redirect,
    /// The first layer request breaks half-way, the next answers 500, then it works (with a
    /// range request for the rest).
    BreaksThenRecovers,
    /// Every layer request sends a little, slowly, then stalls until released.
    Slow,
}

/// A registry serving one image (`hostile/app:1`) from memory, misbehaving as told. It speaks
/// plain HTTP on loopback, as dockerd allows for 127.0.0.0/8.
#[derive(Debug)]
pub struct HostileRegistry {
    pub port: u16,
    /// Every request seen (method and path, and the Range header).
    pub log: Arc<Mutex<Vec<Seen>>>,
    pub layer_digest: String,
    pub config_digest: String,
    /// Lets `Slow` downloads finish.
    pub release: Arc<std::sync::atomic::AtomicBool>,
}

impl HostileRegistry {
    /// `layer` is the (gzip) layer blob, `config` the image config naming its diff id.
    pub fn start(mode: Hostile, layer: Vec<u8>, config: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let layer_digest = format!("sha256:{}", sha256_hex(&layer));
        let config_digest = format!("sha256:{}", sha256_hex(&config));
        let declared = match mode {
            Hostile::SizeTooLarge => layer.len() + 100,
            Hostile::SizeTooSmall => layer.len() - 100,
            _ => layer.len(),
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": declared}],
        })
        .to_string()
        .into_bytes();
        let log = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let layer_hits = Arc::new(AtomicUsize::new(0));
        let (log2, rel2) = (log.clone(), release.clone());
        let (ld, cd) = (layer_digest.clone(), config_digest.clone());
        let layer = Arc::new(layer);
        let config = Arc::new(config);
        let manifest = Arc::new(manifest);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (log, release, hits) = (log2.clone(), rel2.clone(), layer_hits.clone());
                let (ld, cd, layer, config, manifest) = (
                    ld.clone(),
                    cd.clone(),
                    layer.clone(),
                    config.clone(),
                    manifest.clone(),
                );
                std::thread::spawn(move || {
                    // A TLS hello on this plain port is not HTTP: read_request gives None.
                    let Some(req) = read_request(&conn) else {
                        return;
                    };
                    log.lock().unwrap().push((
                        req.method.clone(),
                        req.path.clone(),
                        req.header("range"),
                    ));
                    let p = req.path.as_str();
                    let mut c = &conn;
                    if p == "/v2/" {
                        return respond(&conn, 200, &[], b"{}");
                    }
                    if p.starts_with("/v2/hostile/app/manifests/") {
                        if mode == Hostile::EndlessManifest {
                            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n{\"schemaVersion\":2,\"x\":\"");
                            let chunk = vec![b'a'; 1 << 16];
                            for _ in 0..2048 {
                                if c.write_all(&chunk).is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        let dg = format!("sha256:{}", sha256_hex(&manifest));
                        return respond(
                            &conn,
                            200,
                            &[
                                (
                                    "Content-Type",
                                    "application/vnd.docker.distribution.manifest.v2+json",
                                ),
                                ("Docker-Content-Digest", &dg),
                            ],
                            &manifest,
                        );
                    }
                    if p == format!("/store/{ld}") {
                        return respond(&conn, 200, &[], &layer);
                    }
                    if p == format!("/v2/hostile/app/blobs/{cd}") {
                        return respond(&conn, 200, &[], &config);
                    }
                    if p != format!("/v2/hostile/app/blobs/{ld}") {
                        return respond(&conn, 404, &[], b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown to registry\"}]}");
                    }
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    let start: usize = req
                        .header("range")
                        .and_then(|r| {
                            r.strip_prefix("bytes=")
                                .and_then(|r| r.split('-').next().map(str::to_string))
                        })
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    match mode {
                        Hostile::BadDigest => {
                            let mut bad = layer.to_vec();
                            let mid = bad.len() / 2;
                            bad[mid] ^= 0xff;
                            respond(&conn, 200, &[], &bad)
                        }
                        Hostile::EndlessBlob => {
                            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                            let chunk = vec![0u8; 1 << 16];
                            for _ in 0..4096 {
                                if c.write_all(&chunk).is_err() {
                                    return;
                                }
                            }
                        }
                        Hostile::Redirect => {
                            let loc = format!("http://127.0.0.1:{port}/store/{ld}");
                            respond(&conn, 307, &[("Location", &loc)], b"")
                        }
                        Hostile::RedirectLoop => {
                            let loc = format!("http://127.0.0.1:{port}{p}");
                            respond(&conn, 307, &[("Location", &loc)], b"")
                        }
                        Hostile::BreaksThenRecovers if n == 0 => {
                            // Promise everything, send half, then break the connection.
                            let half = layer.len() / 2;
                            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", layer.len()).as_bytes());
                            let _ = c.write_all(&layer[..half]);
                            let _ = conn.shutdown(std::net::Shutdown::Both);
                        }
                        Hostile::BreaksThenRecovers if n == 1 => respond(&conn, 500, &[], b"{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"injected failure\"}]}"),
                        Hostile::Slow if start == 0 => {
                            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", layer.len()).as_bytes());
                            let part = layer.len() / 3;
                            let _ = c.write_all(&layer[..part]);
                            while !release.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            let _ = c.write_all(&layer[part..]);
                        }
                        _ => {
                            if start > 0 {
                                let end = layer.len() - 1;
                                let cr = format!("bytes {start}-{end}/{}", layer.len());
                                respond(&conn, 206, &[("Content-Range", &cr)], &layer[start..])
                            } else {
                                respond(&conn, 200, &[], &layer)
                            }
                        }
                    }
                });
            }
        });
        HostileRegistry {
            port,
            log,
            layer_digest,
            config_digest,
            release,
        }
    }

    pub fn reference(&self) -> String {
        format!("127.0.0.1:{}/hostile/app:1", self.port)
    }
}

/// A private dockerd (no bridge, no iptables), stopped on drop.
#[derive(Debug)]
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}/docker.sock", d.display()))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["--bridge=none", "--iptables=false"])
            .stdout(std::fs::File::create(d.join("log")).unwrap())
            .stderr(std::fs::File::create(d.join("log.err")).unwrap())
            .spawn()
            .expect("dockerd is missing: install Debian's docker.io (.ci/run does)");
        let dd = Dockerd { dir, child };
        for _ in 0..200 {
            if dd
                .docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return dd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dockerd did not come up: {}",
            std::fs::read_to_string(dd.dir.path().join("log.err")).unwrap_or_default()
        );
    }

    /// Loads `image` from `berthd` (saved there, loaded here), for scenarios run on both.
    pub fn load_from(&self, berthd: &crate::Berthd, image: &str) {
        let saved = self.dir.path().join("from-berthd.tar");
        crate::ok(berthd.berth(&["save", "-o", saved.to_str().unwrap(), image]));
        let load = self
            .docker()
            .args(["load", "-i", saved.to_str().unwrap()])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&saved);
        assert!(load.status.success(), "docker load: {load:?}");
    }

    pub fn docker(&self) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H")
            .arg(format!("unix://{}/docker.sock", self.dir.path().display()));
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root"))
            .output();
    }
}

/// A DNS server on a loopback address (`127.0.53.<n>:53`) that answers `A` queries for the
/// names it is given and NXDOMAIN for anything else: the upstream resolver of the network
/// tests, so that forwarding is tested without any outside address. Each query's name is
/// recorded.
#[derive(Debug)]
pub struct UpstreamDns {
    pub addr: std::net::Ipv4Addr,
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl UpstreamDns {
    pub fn start(names: &[(&str, std::net::Ipv4Addr)]) -> UpstreamDns {
        use simple_dns::rdata::{RData, A};
        use simple_dns::{Name, Packet, ResourceRecord, CLASS, RCODE};
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let (sock, addr) = loop {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let pid = std::process::id();
            let addr = std::net::Ipv4Addr::new(127, 53, (pid % 250) as u8, (n % 250) as u8 + 1);
            if let Ok(s) = std::net::UdpSocket::bind((addr, 53)) {
                break (s, addr);
            }
            assert!(n < 1000, "no free loopback address for a DNS server");
        };
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let names: Vec<(String, std::net::Ipv4Addr)> =
            names.iter().map(|(n, ip)| (n.to_string(), *ip)).collect();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a2, s2) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s2.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                let mut r = Packet::new_reply(q.id());
                let Some(question) = q.questions.first() else {
                    continue;
                };
                r.questions.push(question.clone());
                let qname = question.qname.to_string();
                a2.lock().unwrap().push(qname.clone());
                let is_a = question.qtype == simple_dns::QTYPE::TYPE(simple_dns::TYPE::A);
                match names.iter().find(|(n, _)| *n == qname) {
                    // The name exists; only A records.
                    Some(_) if !is_a => {}
                    Some((_, ip)) => r.answers.push(ResourceRecord::new(
                        Name::new_unchecked(&qname),
                        CLASS::IN,
                        60,
                        RData::A(A::from(*ip)),
                    )),
                    None => *r.rcode_mut() = RCODE::NameError,
                }
                if let Ok(b) = r.build_bytes_vec() {
                    let _ = sock.send_to(&b, from);
                }
            }
        });
        UpstreamDns { addr, asked, stop }
    }

    pub fn was_asked(&self, name: &str) -> bool {
        self.asked.lock().unwrap().iter().any(|n| n == name)
    }
}

impl Drop for UpstreamDns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
