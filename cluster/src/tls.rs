//! The client side of TLS between tessera processes: which certificate authorities this
//! process trusts when it reaches a storage node, another gateway or (for `tessera admin` and
//! `tessera health`) a server over `https://`.
//!
//! Trust is process-wide, as the system's CA store is: set once at start from `--node-ca`
//! (or the admin client's `--ca-bundle`), and otherwise the system's certificates. Plain
//! `http://` endpoints keep working alongside.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

static TRUST: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Trust the certificates of the PEM file `ca` (instead of the system's) from now on. Call
/// once, before any connection is made; a later call is refused.
pub fn trust_only(ca: &Path) -> Result<(), String> {
    let bytes = std::fs::read(ca).map_err(|e| format!("TLS: cannot read {}: {e}", ca.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS: {}: not a PEM certificate file: {e}", ca.display()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "TLS: {}: no usable CA certificate in it (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            ca.display()
        ));
    }
    TRUST
        .set(config(roots))
        .map_err(|_| "TLS: the trusted CAs were already set".to_owned())
}

/// The crypto of every TLS connection, server and client side: ring. rustls prefers
/// aws-lc-rs (it has post-quantum key exchange, ring has not), but aws-lc-rs is a CMake-built C
/// library, a second long native build on every fresh machine (ARCHITECTURE.md, "TLS").
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config(roots: RootCertStore) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The client configuration: the CAs given to [`trust_only`], else the system's.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    TRUST
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            // Unreadable system certificates leave https to nodes failing with a clear
            // "unknown issuer", which --node-ca fixes; http is unaffected.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            config(roots)
        })
        .clone()
}

/// A connector for `http://` and `https://` URLs (HTTP/1.1), without Nagle's delay.
pub fn connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    // hyper-rustls refuses https URLs through a connector that enforces http.
    http.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*client_config()).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}
