//! How the CLI reaches berthd: a unix socket, or TCP, with TLS as the docker CLI sets it up
//! (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`, `DOCKER_TLS_VERIFY`,
//! `DOCKER_CERT_PATH`). berthd's TCP listener requires client certificates (docs/daemon.md).
//!
//! The TLS settings are chosen once, from the command line and the environment, before any
//! request ([`configure`]); every connection of the process then uses them.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to berthd.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The TLS flags, as given.
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    /// `--tls`: TLS without verifying the daemon.
    pub tls: bool,
    /// `--tlsverify` (or `DOCKER_TLS_VERIFY`): TLS, the daemon verified against the CA.
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

static TLS: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();

/// Sets up TLS from `flags`, with the docker CLI's defaults: `DOCKER_TLS_VERIFY` set (to
/// anything) means `--tlsverify`, and files not named come from `DOCKER_CERT_PATH` (default
/// `~/.docker`) as `ca.pem`, `cert.pem` and `key.pem` where they exist.
pub fn configure(mut flags: TlsFlags) -> anyhow::Result<()> {
    if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
        flags.verify = true;
    }
    let config = if flags.tls || flags.verify {
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_default();
        let default = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        let ca = flags.ca.or_else(|| default("ca.pem"));
        let cert = flags.cert.or_else(|| default("cert.pem"));
        let key = flags.key.or_else(|| default("key.pem"));
        Some(Arc::new(client_config(flags.verify, ca, cert, key)?))
    } else {
        None
    };
    let _ = TLS.set(config);
    Ok(())
}

fn client_config(
    verify: bool,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if verify {
        let ca = ca.context("--tlsverify needs the CA's certificate (--tlscacert)")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in
            CertificateDer::pem_file_iter(&ca).with_context(|| format!("read {}", ca.display()))?
        {
            roots
                .add(c.with_context(|| format!("read {}", ca.display()))?)
                .with_context(|| format!("{}: not a CA certificate", ca.display()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(&cert)
                .with_context(|| format!("read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("read {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .with_context(|| format!("read {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key")?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("--tlscert and --tlskey go together"),
    })
}

/// Connects to `host` (`unix:///path` or `tcp://addr:port`).
pub async fn connect(host: &str) -> anyhow::Result<Box<dyn Stream>> {
    let refused =
        || format!("Cannot connect to the berth daemon at {host}. Is the daemon running?");
    if let Some(path) = host.strip_prefix("unix://").filter(|p| !p.is_empty()) {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .with_context(refused)?;
        return Ok(Box::new(s));
    }
    let addr = host
        .strip_prefix("tcp://")
        .filter(|a| !a.is_empty())
        .with_context(|| format!("invalid host {host:?}: want unix:///path or tcp://host:port"))?;
    let addr = addr.trim_end_matches('/');
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(refused)?;
    match TLS.get().cloned().flatten() {
        None => Ok(Box::new(tcp)),
        Some(config) => {
            let name = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let server = ServerName::try_from(name.to_string())
                .with_context(|| format!("{name}: not a host name or address"))?;
            let s = tokio_rustls::TlsConnector::from(config)
                .connect(server, tcp)
                .await
                .with_context(|| format!("TLS with the berth daemon at {host}"))?;
            Ok(Box::new(s))
        }
    }
}

/// `--tls` without `--tlsverify`: any server certificate is taken, as the docker CLI takes it
/// (the connection is encrypted, not authenticated). Signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
