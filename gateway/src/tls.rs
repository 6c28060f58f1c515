//! TLS for the S3 port (and the admin API and console on it) and for storage nodes: the
//! certificates of a MinIO-style directory, chosen per connection by SNI and reloaded when
//! their files change.
//!
//! Layout of `--certs-dir DIR`:
//! - `DIR/public.crt` and `DIR/private.key`: the default certificate (PEM; the chain in
//!   `public.crt`, leaf first; the key as PKCS#8, PKCS#1 or SEC1);
//! - `DIR/NAME/public.crt` and `DIR/NAME/private.key`, any number: further certificates. A
//!   client's SNI name picks the first of them whose certificate is valid for that name
//!   (wildcards included, as a client would check); otherwise the default one answers. `NAME`
//!   is only a label (MinIO uses the domain). `DIR/CAs` is skipped: MinIO keeps trusted CAs
//!   there.
//!
//! The files are checked every [`RELOAD_EVERY`]; when any changed, all are read again and
//! swapped in at once, so new handshakes get the new certificates and open connections keep
//! theirs. A set that does not load (a key written before its certificate, a typo) is
//! reported and the previous set stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_util::sync::CancellationToken;

/// How often the certificate files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How long a client may take over its TLS handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub const CERT_FILE: &str = "public.crt";
pub const KEY_FILE: &str = "private.key";

/// The certificates of one `--certs-dir`, as rustls' certificate resolver.
pub struct CertsDir {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: RwLock<Arc<Loaded>>,
    /// The files' state when `loaded` was read (or last failed to load).
    stamp: Mutex<Vec<FileStamp>>,
}

impl std::fmt::Debug for CertsDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertsDir({})", self.dir.display())
    }
}

struct Loaded {
    default: Arc<CertifiedKey>,
    /// The further certificates, with the label (subdirectory) each came from.
    named: Vec<(String, Arc<CertifiedKey>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
}

/// A connection as accepted: plain TCP, or TLS over it.
pub type Accepted = tokio_util::either::Either<
    tokio::net::TcpStream,
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
>;

/// `socket` as served: as it is without `tls`, else after a TLS handshake (bounded by
/// [`HANDSHAKE_TIMEOUT`]); `None` when the handshake fails.
pub async fn accept(
    socket: tokio::net::TcpStream,
    tls: Option<&tokio_rustls::TlsAcceptor>,
) -> Option<Accepted> {
    use tokio_util::either::Either;
    let Some(acceptor) = tls else {
        return Some(Either::Left(socket));
    };
    let peer = socket.peer_addr().ok();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Some(Either::Right(stream)),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

impl CertsDir {
    /// Reads every certificate of `dir`; an error names the file at fault.
    pub fn open(dir: &Path) -> Result<Arc<CertsDir>, String> {
        let provider = cluster::tls::crypto_provider();
        let stamp = stamp_files(dir);
        let loaded = load(dir, &provider)?;
        Ok(Arc::new(CertsDir {
            dir: dir.to_owned(),
            provider,
            loaded: RwLock::new(Arc::new(loaded)),
            stamp: Mutex::new(stamp),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The labels of the further certificates (the default one is not listed).
    pub fn names(&self) -> Vec<String> {
        let loaded = self.current();
        loaded.named.iter().map(|(n, _)| n.clone()).collect()
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A server configuration choosing among these certificates, offering TLS 1.2 and 1.3
    /// and, by ALPN, HTTP/2 and HTTP/1.1 (`http1_only`: HTTP/1.1 alone).
    pub fn server_config(self: &Arc<Self>, http1_only: bool) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = if http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        Arc::new(config)
    }

    /// The acceptor for [`Self::server_config`].
    pub fn acceptor(self: &Arc<Self>, http1_only: bool) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config(http1_only))
    }

    /// Reads the files again if any changed since they were last read. `Ok(true)`: a new set
    /// is in service; an error leaves the old one serving.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamp_files(&self.dir);
        {
            let mut stamp = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if *stamp == now {
                return Ok(false);
            }
            // Recorded before loading: a broken set is reported once, not every tick; the
            // next write to any of its files tries again.
            *stamp = now;
        }
        let loaded = load(&self.dir, &self.provider)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    /// Checks the files every [`RELOAD_EVERY`] until `stop`, logging what happens.
    pub fn spawn_reloader(self: Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(RELOAD_EVERY) => {}
                    () = stop.cancelled() => return,
                }
                let this = self.clone();
                let outcome = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                match outcome {
                    Ok(Ok(true)) => {
                        tracing::info!(dir = %self.dir.display(), "TLS certificates reloaded")
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(
                        "TLS certificates not reloaded, the previous ones stay in service: {e}"
                    ),
                    Err(e) => tracing::error!("TLS certificate reload failed: {e}"),
                }
            }
        })
    }
}

impl ResolvesServerCert for CertsDir {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.current();
        if let Some(sni) = hello.server_name()
            && let Ok(name) = ServerName::try_from(sni)
        {
            for (_, key) in &loaded.named {
                let Some(leaf) = key.cert.first() else {
                    continue;
                };
                let valid = webpki::EndEntityCert::try_from(leaf)
                    .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok());
                if valid {
                    return Some(key.clone());
                }
            }
        }
        Some(loaded.default.clone())
    }
}

/// The certificate and key files of `dir` and of its subdirectories, with their state.
fn stamp_files(dir: &Path) -> Vec<FileStamp> {
    let mut paths = vec![dir.join(CERT_FILE), dir.join(KEY_FILE)];
    for sub in subdirectories(dir) {
        paths.push(sub.join(CERT_FILE));
        paths.push(sub.join(KEY_FILE));
    }
    paths
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            FileStamp {
                modified: meta.as_ref().and_then(|m| m.modified().ok()),
                len: meta.map_or(0, |m| m.len()),
                path,
            }
        })
        .collect()
}

/// The subdirectories that hold a certificate, sorted by name (the order SNI tries them in).
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut subs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "CAs"))
        .filter(|p| p.join(CERT_FILE).exists() || p.join(KEY_FILE).exists())
        .collect();
    subs.sort();
    subs
}

fn load(dir: &Path, provider: &CryptoProvider) -> Result<Loaded, String> {
    if !dir.is_dir() {
        return Err(format!(
            "TLS: certificate directory {} does not exist",
            dir.display()
        ));
    }
    let default = load_pair(dir, provider)?;
    let mut named = Vec::new();
    for sub in subdirectories(dir) {
        let label = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        named.push((label, load_pair(&sub, provider)?));
    }
    Ok(Loaded { default, named })
}

/// `public.crt` and `private.key` of `dir`, checked to belong together.
fn load_pair(dir: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let chain = load_chain(&cert_path)?;
    let key = load_key(&key_path)?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "TLS: {} is not the key of the certificate in {}",
            key_path.display(),
            cert_path.display()
        ),
        e => format!("TLS: {}: unusable private key: {e}", key_path.display()),
    })?;
    Ok(Arc::new(key))
}

/// The PEM certificates of `path`, leaf first.
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS: {}: not a PEM certificate file: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS: {}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            path.display()
        ));
    }
    for cert in &chain {
        webpki::EndEntityCert::try_from(cert).map_err(|e| {
            format!(
                "TLS: {}: a certificate that does not parse: {e}",
                path.display()
            )
        })?;
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "TLS: {}: no private key in it (expected PEM PKCS#8, RSA or EC key): {e}",
            path.display()
        )
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("TLS: cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = CertsDir::open(&dir.path().join("nope")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = CertsDir::open(dir.path()).unwrap_err();
        assert!(e.contains("public.crt"), "{e}");
        std::fs::write(dir.path().join(CERT_FILE), "hello").unwrap();
        let e = CertsDir::open(dir.path()).unwrap_err();
        assert!(
            e.contains("public.crt") && e.contains("no certificate"),
            "{e}"
        );
        std::fs::write(
            dir.path().join(CERT_FILE),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = CertsDir::open(dir.path()).unwrap_err();
        assert!(e.contains("public.crt"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Any bytes in the certificate file: a clear error naming the file, never a panic.
        #[test]
        fn arbitrary_certificate_files(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), pem in proptest::prelude::any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(CERT_FILE);
            let mut content = Vec::new();
            if pem {
                content.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            }
            content.extend_from_slice(&bytes);
            if pem {
                content.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
            }
            std::fs::write(&path, &content).unwrap();
            if let Err(e) = load_chain(&path) {
                proptest::prop_assert!(e.contains("public.crt"), "{}", e);
            }
        }
    }
}
