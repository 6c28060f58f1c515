//! A lean S3 client for benchmarking: SigV4 (aws-sigv4) with `UNSIGNED-PAYLOAD`, a pooled
//! hyper connection set, bodies generated on the fly. It does as little work per byte as it
//! can, because on one machine every cycle the client spends is one the server does not get.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// Bytes per generated body piece: the servers' chunk size, so every chunk of a generated
/// object carries its own unique header.
pub const PIECE: usize = 1 << 20;

/// TLS 1.2/1.3 with ring (as the server), trusting `ca_bundle` or the system's CAs.
#[allow(deprecated)] // ring lacks post-quantum key exchange; aws-lc-rs would be a C build
fn tls_config(ca_bundle: Option<&std::path::Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[derive(Clone)]
pub struct S3 {
    http: Client<HttpsConnector<HttpConnector>, BoxBody>,
    /// (endpoint, its authority): requests take them in turn (several gateways of one
    /// cluster driven together).
    endpoints: std::sync::Arc<[(String, String)]>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    identity: Identity,
}

/// Object contents: pseudo-random pieces, each stamped with (seed, piece index) so that no
/// two pieces of different seeds or positions are equal (dedup finds nothing unless the
/// same seed is uploaded twice).
#[derive(Clone)]
pub struct Pattern {
    pool: Bytes,
}

impl Pattern {
    pub fn new() -> Self {
        // xorshift64*: fast, and incompressible enough for storage that does not compress.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut pool = BytesMut::with_capacity(PIECE);
        while pool.len() < PIECE {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            pool.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        Pattern {
            pool: pool.freeze(),
        }
    }

    /// Log-like text instead: lines of a fixed shape with varying ids and numbers, which
    /// compress about as well as real logs (for the compression benchmark).
    pub fn text() -> Self {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut pool = BytesMut::with_capacity(PIECE + 256);
        while pool.len() < PIECE {
            let (a, b, c) = (next(), next(), next());
            let line = format!(
                "2026-12-06T10:{:02}:{:02}Z INFO request id={:08x} path=/api/v1/items/{} status={} ms={}\n",
                a % 60,
                b % 60,
                c as u32,
                a % 100_000,
                [200, 200, 200, 204, 404][(b % 5) as usize],
                c % 500
            );
            pool.extend_from_slice(line.as_bytes());
        }
        pool.truncate(PIECE);
        Pattern {
            pool: pool.freeze(),
        }
    }

    /// Piece `index` of the object with `seed`, `len` bytes (at most [`PIECE`]).
    pub fn piece(&self, seed: u64, index: u64, len: usize) -> Bytes {
        let mut b = BytesMut::from(&self.pool[..len]);
        let stamp = [seed.to_le_bytes(), index.to_le_bytes()].concat();
        let n = stamp.len().min(len);
        b[..n].copy_from_slice(&stamp[..n]);
        // A second stamp mid-piece keeps sub-piece chunkers from matching, too.
        if len >= 2 * stamp.len() {
            let mid = len / 2;
            b[mid..mid + stamp.len()].copy_from_slice(&stamp);
        }
        b.freeze()
    }

    pub fn body(&self, seed: u64, size: u64) -> BoxBody {
        let this = self.clone();
        let pieces = size.div_ceil(PIECE as u64);
        let stream = futures::stream::iter(0..pieces).map(move |i| {
            let len = (size - i * PIECE as u64).min(PIECE as u64) as usize;
            Ok::<_, std::io::Error>(http_body::Frame::data(this.piece(seed, i, len)))
        });
        BodyExt::boxed_unsync(StreamBody::new(stream))
    }
}

fn empty() -> BoxBody {
    BodyExt::boxed_unsync(Full::new(Bytes::new()).map_err(|never| match never {}))
}

pub type Result<T> = std::result::Result<T, String>;

impl S3 {
    /// `endpoints`: one URL, or several separated by commas (taken in turn, request by
    /// request).
    /// A client for `http://` or `https://` endpoints; https trusts the CAs of `ca_bundle`
    /// (PEM), else the system's.
    pub fn new(
        endpoints: &str,
        access_key: &str,
        secret_key: &str,
        ca_bundle: Option<&std::path::Path>,
    ) -> Result<Self> {
        let endpoints = endpoints
            .split(',')
            .map(|endpoint| {
                let uri: http::Uri = endpoint
                    .parse()
                    .map_err(|e| format!("bad endpoint {endpoint}: {e}"))?;
                let authority = uri
                    .authority()
                    .ok_or_else(|| format!("endpoint {endpoint} has no host"))?
                    .to_string();
                Ok((endpoint.trim_end_matches('/').to_owned(), authority))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(ca_bundle)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        let identity = aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "tessera-bench",
        )
        .into();
        Ok(S3 {
            http,
            endpoints: endpoints.into(),
            next: Default::default(),
            identity,
        })
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: BoxBody,
        content_length: Option<u64>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (endpoint, authority) = &self.endpoints[turn % self.endpoints.len()];
        let url = format!("{endpoint}{path_and_query}");
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            &url,
            [("host", authority.as_str())].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(http::header::HOST, authority);
        if let Some(n) = content_length {
            req = req.header(http::header::CONTENT_LENGTH, n);
        }
        let mut req = req.body(body).map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut req);
        self.http
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: BoxBody,
        len: Option<u64>,
        ok: &[StatusCode],
    ) -> Result<(hyper::body::Incoming, StatusCode)> {
        let resp = self.send(method.clone(), path, body, len).await?;
        let status = resp.status();
        let body = resp.into_body();
        if !ok.contains(&status) {
            let text = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(format!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&text)
            ));
        }
        Ok((body, status))
    }

    /// Reads a body to its end, returning its length.
    async fn drain(mut body: hyper::body::Incoming) -> Result<u64> {
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame.map_err(|e| e.to_string())?.data_ref() {
                n += d.len() as u64;
            }
        }
        Ok(n)
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let (body, _) = self
            .expect(
                Method::PUT,
                &format!("/{bucket}"),
                empty(),
                Some(0),
                &[StatusCode::OK, StatusCode::CONFLICT],
            )
            .await?;
        Self::drain(body).await.map(drop)
    }

    /// PutBucketEncryption with an AES256 rule: every object written to `bucket` afterwards
    /// is encrypted (SSE-S3) by the server.
    pub async fn encrypt_by_default(&self, bucket: &str) -> Result<()> {
        let xml = Bytes::from_static(
            b"<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
              <Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>\
              </ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
        );
        let len = xml.len() as u64;
        let body = BodyExt::boxed_unsync(Full::new(xml).map_err(|never| match never {}));
        let (body, _) = self
            .expect(
                Method::PUT,
                &format!("/{bucket}?encryption"),
                body,
                Some(len),
                &[StatusCode::OK],
            )
            .await?;
        Self::drain(body).await.map(drop)
    }

    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        pattern: &Pattern,
        seed: u64,
        size: u64,
    ) -> Result<()> {
        let (body, _) = self
            .expect(
                Method::PUT,
                &format!("/{bucket}/{key}"),
                pattern.body(seed, size),
                Some(size),
                &[StatusCode::OK],
            )
            .await?;
        Self::drain(body).await.map(drop)
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<u64> {
        let (body, _) = self
            .expect(
                Method::GET,
                &format!("/{bucket}/{key}"),
                empty(),
                None,
                &[StatusCode::OK],
            )
            .await?;
        Self::drain(body).await
    }

    pub async fn head(&self, bucket: &str, key: &str) -> Result<()> {
        let (body, _) = self
            .expect(
                Method::HEAD,
                &format!("/{bucket}/{key}"),
                empty(),
                None,
                &[StatusCode::OK],
            )
            .await?;
        Self::drain(body).await.map(drop)
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let (body, _) = self
            .expect(
                Method::DELETE,
                &format!("/{bucket}/{key}"),
                empty(),
                None,
                &[StatusCode::NO_CONTENT, StatusCode::OK],
            )
            .await?;
        Self::drain(body).await.map(drop)
    }

    /// One ListObjectsV2 page of up to 1000 keys: (keys on it, the next continuation token).
    pub async fn list_page(
        &self,
        bucket: &str,
        token: Option<&str>,
    ) -> Result<(usize, Option<String>)> {
        let mut path = format!("/{bucket}?list-type=2&max-keys=1000");
        if let Some(t) = token {
            path.push_str("&continuation-token=");
            path.push_str(&encode_query(t));
        }
        let (body, _) = self
            .expect(Method::GET, &path, empty(), None, &[StatusCode::OK])
            .await?;
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let keys = text.matches("<Key>").count();
        let next = text
            .split_once("<NextContinuationToken>")
            .and_then(|(_, rest)| rest.split_once("</NextContinuationToken>"))
            .map(|(t, _)| t.replace("&amp;", "&"));
        Ok((keys, next))
    }
}

fn encode_query(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
