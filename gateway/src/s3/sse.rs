//! Server-side encryption headers.
//!
//! SSE-S3 (`x-amz-server-side-encryption: AES256`) is served: the operations ask the object
//! service to seal the data under the server's master key (which answers NotImplemented, with
//! how to set one, when there is none). SSE-KMS and SSE-C are refused with NotImplemented
//! rather than stored unencrypted: a client that asked for encryption must not believe it got
//! it. An SSE-C request over plain HTTP is refused first, as AWS refuses it, because its key
//! travelled in clear (`--allow-insecure-sse-c` lifts that for loopback tests).

use http::HeaderMap;
use s3s::dto::ServerSideEncryption;
use s3s::{S3Result, s3_error};

const CUSTOMER_PREFIXES: [&str; 2] = [
    "x-amz-server-side-encryption-customer-",
    "x-amz-copy-source-server-side-encryption-customer-",
];
const SSE_HEADER: &str = "x-amz-server-side-encryption";
/// Asks for an S3 bucket key, which only matters with KMS: accepted and ignored.
const BUCKET_KEY_HEADER: &str = "x-amz-server-side-encryption-bucket-key-enabled";

/// Refuses a request that carries encryption headers tessera does not serve yet.
pub fn refuse_unsupported(
    headers: &HeaderMap,
    secure: bool,
    allow_insecure_sse_c: bool,
) -> S3Result<()> {
    let names = || headers.keys().map(|n| n.as_str());
    let customer = names().any(|n| CUSTOMER_PREFIXES.iter().any(|p| n.starts_with(p)));
    if customer && !secure && !allow_insecure_sse_c {
        return Err(s3_error!(
            InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
        ));
    }
    if customer {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption with customer keys (SSE-C) is not supported yet; nothing was stored or read"
        ));
    }
    let kms =
        names().any(|n| n.starts_with(SSE_HEADER) && n != SSE_HEADER && n != BUCKET_KEY_HEADER);
    let mode = headers.get(SSE_HEADER).map(|v| v.to_str().unwrap_or(""));
    if kms || mode.is_some_and(|m| m.starts_with("aws:kms")) {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption with KMS keys (SSE-KMS) is not supported yet; nothing was stored or read"
        ));
    }
    match mode {
        None => Ok(()),
        Some(m) if m == ServerSideEncryption::AES256 => Ok(()),
        Some(m) => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {m:?}"
        )),
    }
}

/// Whether a write asks for SSE-S3 (the only mode left after [`refuse_unsupported`]).
pub fn wants_encryption(sse: Option<&ServerSideEncryption>) -> bool {
    sse.is_some_and(|s| s.as_str() == ServerSideEncryption::AES256)
}

/// The `x-amz-server-side-encryption` answer for an object stored with `encryption`.
pub fn answer(encryption: Option<&metastore::Encryption>) -> Option<ServerSideEncryption> {
    encryption.map(|_| ServerSideEncryption::from_static(ServerSideEncryption::AES256))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn customer_keys_need_tls_kms_is_refused_and_sse_s3_passes() {
        use s3s::S3ErrorCode::{InvalidArgument, InvalidRequest, NotImplemented};
        let ssec = headers(&[("x-amz-server-side-encryption-customer-algorithm", "AES256")]);
        let code = |h: &HeaderMap, secure, allow| {
            refuse_unsupported(h, secure, allow)
                .unwrap_err()
                .code()
                .clone()
        };
        assert_eq!(code(&ssec, false, false), InvalidRequest);
        assert_eq!(code(&ssec, true, false), NotImplemented);
        assert_eq!(code(&ssec, false, true), NotImplemented);
        let copy = headers(&[(
            "x-amz-copy-source-server-side-encryption-customer-key",
            "a2V5",
        )]);
        assert_eq!(code(&copy, false, false), InvalidRequest);
        let kms = headers(&[("x-amz-server-side-encryption-aws-kms-key-id", "k")]);
        assert_eq!(code(&kms, true, false), NotImplemented);
        let kms_mode = headers(&[("x-amz-server-side-encryption", "aws:kms")]);
        assert_eq!(code(&kms_mode, true, false), NotImplemented);
        let bogus = headers(&[("x-amz-server-side-encryption", "ROT13")]);
        assert_eq!(code(&bogus, true, false), InvalidArgument);
        for ok in [
            headers(&[("x-amz-server-side-encryption", "AES256")]),
            headers(&[
                ("x-amz-server-side-encryption", "AES256"),
                ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
            ]),
            headers(&[("x-amz-meta-encryption", "x")]),
        ] {
            assert!(refuse_unsupported(&ok, false, false).is_ok(), "{ok:?}");
        }
        assert!(wants_encryption(Some(&ServerSideEncryption::from_static(
            ServerSideEncryption::AES256
        ))));
        assert!(!wants_encryption(None));
    }
}
