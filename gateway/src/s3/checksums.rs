//! Flexible checksums (`x-amz-checksum-*`): computed while the body streams by, compared with
//! what the client declared in headers or in an aws-chunked trailer, stored with the object and
//! returned on GET/HEAD when `x-amz-checksum-mode: ENABLED` is asked for.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use metastore::ObjectRecord;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::{S3Result, TrailingHeaders, s3_error};

use objects::BodyCheck;
use objects::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    fn from_header(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(s.trim()))
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }
}

/// A body stream that feeds every frame to the checksum hasher.
pub struct Hashing<S> {
    inner: S,
    hasher: Arc<Mutex<Option<ChecksumHasher>>>,
}

/// Classifies a failure of the request body stream.
fn body_error(e: &dyn std::fmt::Display) -> Error {
    let text = e.to_string();
    // s3s does not export its aws-chunked error type; its Display names the variant.
    if text.contains("SignatureMismatch") {
        Error::BodySignature
    } else {
        Error::Body(text)
    }
}

impl<S: Stream<Item = Result<Bytes, E>> + Unpin, E: std::fmt::Display> Stream for Hashing<S> {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(h) = self
                    .hasher
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    h.update(&frame);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(body_error(&e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn well_formed(algo: Algorithm, value: &str) -> bool {
    base64_simd::STANDARD
        .decode_to_vec(value)
        .is_ok_and(|d| d.len() == algo.digest_len())
}

/// Whether a request declares its body's integrity: Content-MD5, a checksum header, a
/// checksum trailer or the SDK's checksum algorithm (object lock needs one, as on S3).
pub fn integrity_declared(headers: &HeaderMap, content_md5: bool) -> bool {
    content_md5
        || Algorithm::ALL
            .iter()
            .any(|a| header_str(headers, a.header()).is_some())
        || header_str(headers, "x-amz-trailer").is_some()
        || header_str(headers, "x-amz-sdk-checksum-algorithm").is_some()
}

/// Wraps `body` so it is hashed with every algorithm the request names (CRC64NVME when it
/// names none, as S3 does), and returns the check that compares the results with the declared
/// values once the body has been read.
pub fn verify_body<S>(
    body: S,
    headers: &HeaderMap,
    trailing: Option<TrailingHeaders>,
) -> S3Result<(Hashing<S>, BodyCheck)> {
    let mut declared = BTreeMap::new();
    for algo in Algorithm::ALL {
        if let Some(v) = header_str(headers, algo.header()) {
            if !well_formed(algo, v) {
                return Err(s3_error!(
                    InvalidRequest,
                    "Value for {} header is invalid.",
                    algo.header()
                ));
            }
            declared.insert(algo, v.to_owned());
        }
    }
    let trailer = match header_str(headers, "x-amz-trailer") {
        Some(t) => Some(Algorithm::from_header(t).ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "The trailer {t} is not a supported checksum header"
            )
        })?),
        None => None,
    };
    let requested =
        match header_str(headers, "x-amz-sdk-checksum-algorithm") {
            Some(a) => Some(Algorithm::from_name(a).ok_or_else(|| {
                s3_error!(InvalidRequest, "Checksum algorithm {a} is not supported")
            })?),
            None => None,
        };
    let mut algorithms: Vec<Algorithm> = declared
        .keys()
        .copied()
        .chain(trailer)
        .chain(requested)
        .collect();
    if algorithms.is_empty() {
        algorithms.push(Algorithm::Crc64Nvme);
    }
    let mut hasher = ChecksumHasher::default();
    for a in &algorithms {
        match a {
            Algorithm::Crc32 => hasher.crc32 = Some(s3s::crypto::Crc32::new()),
            Algorithm::Crc32c => hasher.crc32c = Some(s3s::crypto::Crc32c::new()),
            Algorithm::Crc64Nvme => hasher.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
            Algorithm::Sha1 => hasher.sha1 = Some(s3s::crypto::Sha1::new()),
            Algorithm::Sha256 => hasher.sha256 = Some(s3s::crypto::Sha256::new()),
        }
    }
    let hasher = Arc::new(Mutex::new(Some(hasher)));
    let stream = Hashing {
        inner: body,
        hasher: hasher.clone(),
    };
    let check: BodyCheck = Box::new(move || {
        let computed = hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(ChecksumHasher::finalize)
            .unwrap_or_default();
        let values = [
            (Algorithm::Crc32, computed.checksum_crc32),
            (Algorithm::Crc32c, computed.checksum_crc32c),
            (Algorithm::Crc64Nvme, computed.checksum_crc64nvme),
            (Algorithm::Sha1, computed.checksum_sha1),
            (Algorithm::Sha256, computed.checksum_sha256),
        ];
        let mut out = BTreeMap::new();
        for (algo, value) in values {
            if let Some(v) = value {
                out.insert(algo, v);
            }
        }
        if let Some(algo) = trailer {
            let sent = trailing
                .as_ref()
                .and_then(|t| t.read(|h| header_str(h, algo.header()).map(str::to_owned)))
                .flatten()
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "the trailer {} was announced but not sent",
                        algo.header()
                    ))
                })?;
            declared.insert(algo, sent);
        }
        for (algo, sent) in &declared {
            if out.get(algo) != Some(sent) {
                return Err(Error::BadChecksum(format!(
                    "The {} you specified did not match the calculated checksum.",
                    algo.name()
                )));
            }
        }
        Ok(out
            .into_iter()
            .map(|(a, v)| (a.name().to_owned(), v))
            .collect())
    });
    Ok((stream, check))
}

fn digest(algo: Algorithm, data: &[u8]) -> Vec<u8> {
    use s3s::crypto::{Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
    match algo {
        Algorithm::Crc32 => Crc32::checksum(data).as_ref().to_vec(),
        Algorithm::Crc32c => Crc32c::checksum(data).as_ref().to_vec(),
        Algorithm::Crc64Nvme => Crc64Nvme::checksum(data).as_ref().to_vec(),
        Algorithm::Sha1 => Sha1::checksum(data).as_ref().to_vec(),
        Algorithm::Sha256 => Sha256::checksum(data).as_ref().to_vec(),
    }
}

/// S3's composite checksum of a multipart object: the checksum of the concatenated binary
/// part checksums, with `-<part count>`. `None` when a part lacks a checksum.
pub fn composite(algo: Algorithm, part_checksums: &[Option<&String>]) -> Option<String> {
    let mut joined = Vec::new();
    for c in part_checksums {
        joined.extend(base64_simd::STANDARD.decode_to_vec(c.as_ref()?).ok()?);
    }
    let sum = base64_simd::STANDARD.encode_to_string(digest(algo, &joined));
    Some(format!("{sum}-{}", part_checksums.len()))
}

/// The CRC of a whole multipart object (`FULL_OBJECT`) from its parts' CRCs and sizes, in
/// order, by CRC combination: no byte is read again. `None` for a hash (SHA-1, SHA-256 cannot
/// be combined) or when a part lacks its checksum.
pub fn full_object(algo: Algorithm, parts: &[(Option<&String>, u64)]) -> Option<String> {
    use crc_fast::CrcAlgorithm;
    let (crc, width) = match algo {
        Algorithm::Crc32 => (CrcAlgorithm::Crc32IsoHdlc, 4),
        Algorithm::Crc32c => (CrcAlgorithm::Crc32Iscsi, 4),
        Algorithm::Crc64Nvme => (CrcAlgorithm::Crc64Nvme, 8),
        Algorithm::Sha1 | Algorithm::Sha256 => return None,
    };
    let mut combined: Option<u64> = None;
    for (sum, size) in parts {
        let bytes = base64_simd::STANDARD.decode_to_vec(sum.as_ref()?).ok()?;
        if bytes.len() != width {
            return None;
        }
        let value = bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        combined = Some(match combined {
            None => value,
            Some(before) => crc_fast::checksum_combine(crc, before, value, *size),
        });
    }
    let value = combined?;
    let be = value.to_be_bytes();
    Some(base64_simd::STANDARD.encode_to_string(&be[8 - width..]))
}

/// The stored checksums of an object in s3s' output shape.
pub fn stored(record: &ObjectRecord) -> s3s::dto::Checksum {
    let get = |a: Algorithm| record.checksums.get(a.name()).cloned();
    s3s::dto::Checksum {
        checksum_crc32: get(Algorithm::Crc32),
        checksum_crc32c: get(Algorithm::Crc32c),
        checksum_crc64nvme: get(Algorithm::Crc64Nvme),
        checksum_sha1: get(Algorithm::Sha1),
        checksum_sha256: get(Algorithm::Sha256),
        checksum_type: (!record.checksums.is_empty()).then(|| {
            let composite = record.checksums.values().any(|v| v.contains('-'));
            s3s::dto::ChecksumType::from_static(if composite {
                s3s::dto::ChecksumType::COMPOSITE
            } else {
                s3s::dto::ChecksumType::FULL_OBJECT
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    async fn run(h: &HeaderMap, body: &'static [u8]) -> Result<BTreeMap<String, String>, Error> {
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(body))]);
        let (mut s, check) = verify_body(stream, h, None).unwrap();
        while s.next().await.is_some() {}
        check()
    }

    #[test]
    fn full_object_crc_combines_the_parts() {
        let parts: [&[u8]; 3] = [b"first part, ", b"the second one, ", b"and 3"];
        let whole: Vec<u8> = parts.concat();
        for algo in [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64Nvme] {
            let sums: Vec<String> = parts
                .iter()
                .map(|p| base64_simd::STANDARD.encode_to_string(digest(algo, p)))
                .collect();
            let sized: Vec<_> = sums
                .iter()
                .zip(parts)
                .map(|(s, p)| (Some(s), p.len() as u64))
                .collect();
            let want = base64_simd::STANDARD.encode_to_string(digest(algo, &whole));
            assert_eq!(full_object(algo, &sized), Some(want), "{algo:?}");
        }
        let one = String::from("AAAA");
        assert_eq!(full_object(Algorithm::Sha256, &[(Some(&one), 1)]), None);
        assert_eq!(full_object(Algorithm::Crc32, &[(None, 1)]), None);
    }

    #[tokio::test]
    async fn verifies_declared_checksums() {
        // CRC32 of "hello" is 0x3610a686.
        let ok = run(&headers(&[("x-amz-checksum-crc32", "NhCmhg==")]), b"hello")
            .await
            .unwrap();
        assert_eq!(ok.get("CRC32").map(String::as_str), Some("NhCmhg=="));
        let bad = run(&headers(&[("x-amz-checksum-crc32", "AAAAAA==")]), b"hello").await;
        assert!(matches!(bad, Err(Error::BadChecksum(_))));
    }

    #[tokio::test]
    async fn defaults_to_crc64nvme_and_rejects_malformed_values() {
        let out = run(&HeaderMap::new(), b"hello").await.unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["CRC64NVME"]);
        let stream = futures::stream::empty::<Result<Bytes, std::io::Error>>();
        assert!(
            verify_body(
                stream,
                &headers(&[("x-amz-checksum-sha256", "short")]),
                None
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn announced_trailer_must_arrive() {
        let h = headers(&[("x-amz-trailer", "x-amz-checksum-crc32c")]);
        assert!(matches!(
            run(&h, b"x").await,
            Err(Error::InvalidArgument(_))
        ));
    }
}
