//! Server-side encryption headers.
//!
//! SSE-S3 (`x-amz-server-side-encryption: AES256`) asks the object service to seal the data
//! under the server's master key (which answers NotImplemented, with how to set one, when
//! there is none). SSE-C (`x-amz-server-side-encryption-customer-*`) seals it under the key the
//! client sends, validated here as S3 validates it; an SSE-C request over plain HTTP is refused
//! first, as AWS refuses it, because its key travelled in clear (`--allow-insecure-sse-c`
//! lifts that for loopback tests). SSE-KMS is refused with NotImplemented rather than stored
//! unencrypted: a client that asked for encryption must not believe it got it.

use http::HeaderMap;
use md5::{Digest, Md5};
use objects::Encrypt;
use objects::sse::CustomerKey;
use s3s::dto::ServerSideEncryption;
use s3s::{S3Result, s3_error};

const CUSTOMER_PREFIXES: [&str; 2] = [
    "x-amz-server-side-encryption-customer-",
    "x-amz-copy-source-server-side-encryption-customer-",
];
const SSE_HEADER: &str = "x-amz-server-side-encryption";
/// Asks for an S3 bucket key, which only matters with KMS: accepted and ignored.
const BUCKET_KEY_HEADER: &str = "x-amz-server-side-encryption-bucket-key-enabled";
/// The one SSE-C algorithm.
const AES256: &str = "AES256";

/// Refuses a request that carries encryption headers tessera does not serve, or SSE-C
/// headers over plain HTTP.
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
    let kms = names().any(|n| {
        n.starts_with(SSE_HEADER)
            && n != SSE_HEADER
            && n != BUCKET_KEY_HEADER
            && !n.starts_with(CUSTOMER_PREFIXES[0])
    });
    let mode = headers.get(SSE_HEADER).map(|v| v.to_str().unwrap_or(""));
    if kms || mode.is_some_and(|m| m.starts_with("aws:kms")) {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption with KMS keys (SSE-KMS) is not supported yet; nothing was stored or read"
        ));
    }
    let sse_c = names().any(|n| n.starts_with(CUSTOMER_PREFIXES[0]));
    match mode {
        None => Ok(()),
        Some(_) if sse_c => Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
        )),
        Some(AES256) => Ok(()),
        Some(m) => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {m:?}"
        )),
    }
}

/// The SSE-C key of a request (`x-amz-server-side-encryption-customer-algorithm`, `-key`,
/// `-key-MD5`, or their `x-amz-copy-source-` forms), validated as S3 does.
pub fn customer_key(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> S3Result<Option<CustomerKey>> {
    let Some(algorithm) = algorithm else {
        if key.is_some() || key_md5.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."
            ));
        }
        return Ok(None);
    };
    if algorithm != AES256 {
        return Err(s3_error!(
            InvalidEncryptionAlgorithmError,
            "The encryption request you specified is not valid. The valid value is AES256."
        ));
    }
    let key = key.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."
        )
    })?;
    let key_md5 = key_md5.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
        )
    })?;
    let secret: [u8; 32] = base64_simd::STANDARD
        .decode_to_vec(key.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The secret key was invalid for the specified algorithm."
            )
        })?;
    let md5_matches = base64_simd::STANDARD
        .decode_to_vec(key_md5.trim())
        .is_ok_and(|m| m[..] == Md5::digest(secret)[..]);
    if !md5_matches {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    Ok(Some(CustomerKey::new(secret)))
}

/// [`customer_key`] of an input type's `sse_customer_*` fields.
macro_rules! sse_customer_key {
    ($i:expr) => {
        $crate::s3::sse::customer_key(
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
    };
}
pub(crate) use sse_customer_key;

/// [`customer_key`] of a copy's `copy_source_sse_customer_*` fields: the source's key.
macro_rules! copy_source_customer_key {
    ($i:expr) => {
        $crate::s3::sse::customer_key(
            $i.copy_source_sse_customer_algorithm.as_deref(),
            $i.copy_source_sse_customer_key.as_deref(),
            $i.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}
pub(crate) use copy_source_customer_key;

/// The encryption a write asks for: SSE-C when it sent a key, SSE-S3 when it asked for
/// `AES256` (the only mode left after [`refuse_unsupported`]), else the bucket's default.
pub fn requested(sse: Option<&ServerSideEncryption>, customer: Option<CustomerKey>) -> Encrypt {
    match customer {
        Some(k) => Encrypt::CustomerKey(k),
        None if sse.is_some_and(|s| s.as_str() == AES256) => Encrypt::ServerKey,
        None => Encrypt::AsBucketSays,
    }
}

/// The `x-amz-server-side-encryption` answer for an object stored with `encryption` (none
/// for SSE-C, whose answer is [`customer_answer`]).
pub fn answer(encryption: Option<&metastore::Encryption>) -> Option<ServerSideEncryption> {
    encryption
        .filter(|e| e.customer.is_none())
        .map(|_| ServerSideEncryption::from_static(ServerSideEncryption::AES256))
}

/// The `x-amz-server-side-encryption-customer-algorithm` and `-key-MD5` answers for an object
/// stored with `encryption`: the key's MD5 is the request's (the key's hash is not stored).
pub fn customer_answer(
    encryption: Option<&metastore::Encryption>,
    request_key_md5: Option<&str>,
) -> (Option<String>, Option<String>) {
    match encryption {
        Some(e) if e.customer.is_some() => {
            (Some(AES256.to_owned()), request_key_md5.map(str::to_owned))
        }
        _ => (None, None),
    }
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
        assert!(refuse_unsupported(&ssec, true, false).is_ok());
        assert!(refuse_unsupported(&ssec, false, true).is_ok());
        let copy = headers(&[(
            "x-amz-copy-source-server-side-encryption-customer-key",
            "a2V5",
        )]);
        assert_eq!(code(&copy, false, false), InvalidRequest);
        let both = headers(&[
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
        ]);
        assert_eq!(code(&both, true, false), InvalidArgument);
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
        let aes = ServerSideEncryption::from_static(ServerSideEncryption::AES256);
        assert!(matches!(requested(Some(&aes), None), Encrypt::ServerKey));
        assert!(matches!(requested(None, None), Encrypt::AsBucketSays));
    }

    #[test]
    fn customer_keys_are_checked_as_s3_checks_them() {
        use s3s::S3ErrorCode::{InvalidArgument, InvalidEncryptionAlgorithmError};
        let secret = [9u8; 32];
        let key = base64_simd::STANDARD.encode_to_string(secret);
        let md5 = base64_simd::STANDARD.encode_to_string(Md5::digest(secret));
        let short = base64_simd::STANDARD.encode_to_string([9u8; 16]);
        let short_md5 = base64_simd::STANDARD.encode_to_string(Md5::digest([9u8; 16]));
        let wrong_md5 = base64_simd::STANDARD.encode_to_string(Md5::digest(b"x"));
        let got = customer_key(Some("AES256"), Some(&key), Some(&md5)).unwrap();
        assert!(got.is_some_and(|k| k.matches(&CustomerKey::new(secret).new_check())));
        assert!(customer_key(None, None, None).unwrap().is_none());
        let code = |a: Option<&str>, k: Option<&str>, m: Option<&str>| {
            customer_key(a, k, m).unwrap_err().code().clone()
        };
        assert_eq!(
            code(Some("AES128"), Some(&key), Some(&md5)),
            InvalidEncryptionAlgorithmError
        );
        for (a, k, m) in [
            (None, Some(key.as_str()), Some(md5.as_str())),
            (Some("AES256"), None, Some(&md5)),
            (Some("AES256"), Some(&key), None),
            (Some("AES256"), Some(&short), Some(&short_md5)),
            (Some("AES256"), Some("not base64!"), Some(&md5)),
            (Some("AES256"), Some(&key), Some(&wrong_md5)),
            (Some("AES256"), Some(&key), Some("not base64!")),
        ] {
            assert_eq!(code(a, k, m), InvalidArgument, "{a:?} {k:?} {m:?}");
        }
    }
}
