//! Server-side encryption headers, until tessera encrypts (issue: encryption at rest).
//!
//! A request asking for SSE-S3, SSE-KMS or SSE-C is refused with NotImplemented rather than
//! stored unencrypted: a client that asked for encryption must not believe it got it. An SSE-C
//! request over plain HTTP is refused first, as AWS refuses it, because its key travelled in
//! clear (`--allow-insecure-sse-c` lifts that for loopback tests).

use http::HeaderMap;
use s3s::{S3Result, s3_error};

const CUSTOMER_PREFIXES: [&str; 2] = [
    "x-amz-server-side-encryption-customer-",
    "x-amz-copy-source-server-side-encryption-customer-",
];
const SSE_PREFIX: &str = "x-amz-server-side-encryption";

/// Refuses a request that carries server-side encryption headers.
pub fn refuse_encryption(
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
    if customer || names().any(|n| n.starts_with(SSE_PREFIX)) {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption (SSE-S3, SSE-KMS, SSE-C) is not supported yet; nothing was stored or read"
        ));
    }
    Ok(())
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
    fn customer_keys_need_tls_and_every_sse_is_refused() {
        use s3s::S3ErrorCode::{InvalidRequest, NotImplemented};
        let ssec = headers(&[("x-amz-server-side-encryption-customer-algorithm", "AES256")]);
        let code = |h: &HeaderMap, secure, allow| {
            refuse_encryption(h, secure, allow)
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
        let s3 = headers(&[("x-amz-server-side-encryption", "AES256")]);
        assert_eq!(code(&s3, false, false), NotImplemented);
        let kms = headers(&[("x-amz-server-side-encryption-aws-kms-key-id", "k")]);
        assert_eq!(code(&kms, true, false), NotImplemented);
        assert!(
            refuse_encryption(&headers(&[("x-amz-meta-encryption", "x")]), false, false).is_ok()
        );
    }
}
