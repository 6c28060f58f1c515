//! Server-side encryption headers.
//!
//! SSE-S3 (`x-amz-server-side-encryption: AES256`) asks the object service to seal the data
//! under the server's master key (which answers NotImplemented, with how to set one, when
//! there is none). SSE-C (`x-amz-server-side-encryption-customer-*`) seals it under the key the
//! client sends, validated here as S3 validates it; an SSE-C request over plain HTTP is refused
//! first, as AWS refuses it, because its key travelled in clear (`--allow-insecure-sse-c`
//! lifts that for loopback tests). SSE-KMS (`aws:kms`, with a key id and an encryption
//! context) seals it under a key of the built-in key store. Dual-layer SSE-KMS is refused with
//! NotImplemented rather than stored with less than was asked.

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
    refuse_insecure_customer_key(customer, secure, allow_insecure_sse_c)?;
    let mode = headers.get(SSE_HEADER).map(|v| v.to_str().unwrap_or(""));
    let sse_c = names().any(|n| n.starts_with(CUSTOMER_PREFIXES[0]));
    match mode {
        None => Ok(()),
        Some(_) if sse_c => Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
        )),
        Some(AES256 | ServerSideEncryption::AWS_KMS) => Ok(()),
        Some(ServerSideEncryption::AWS_KMS_DSSE) => Err(s3_error!(
            NotImplemented,
            "Dual-layer server-side encryption (aws:kms:dsse) is not supported; nothing was stored or read"
        )),
        Some(m) => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {m:?}"
        )),
    }
}

/// Refuses a customer key that came over plain HTTP (headers, or a POST form's fields), as
/// AWS does: it crossed the network in clear.
pub fn refuse_insecure_customer_key(
    customer: bool,
    secure: bool,
    allow_insecure_sse_c: bool,
) -> S3Result<()> {
    if customer && !secure && !allow_insecure_sse_c {
        return Err(s3_error!(
            InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
        ));
    }
    Ok(())
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

/// What a write's SSE headers ask for (after [`refuse_unsupported`]).
pub struct Requested<'a> {
    pub sse: Option<&'a ServerSideEncryption>,
    pub customer: Option<CustomerKey>,
    /// `x-amz-server-side-encryption-aws-kms-key-id`
    pub kms_key_id: Option<&'a str>,
    /// `x-amz-server-side-encryption-context`
    pub kms_context: Option<&'a str>,
    /// `x-amz-server-side-encryption-bucket-key-enabled`
    pub bucket_key: Option<bool>,
}

/// The encryption a write asks for: SSE-C when it sent a key, SSE-S3 for `AES256`, SSE-KMS
/// for `aws:kms`, else the bucket's default.
pub fn requested(r: Requested<'_>) -> S3Result<Encrypt> {
    let kms = r
        .sse
        .is_some_and(|s| s.as_str() == ServerSideEncryption::AWS_KMS);
    if !kms && (r.kms_key_id.is_some() || r.kms_context.is_some()) {
        return Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
        ));
    }
    if let Some(k) = r.customer {
        // Headers were checked on arrival (`refuse_unsupported`); a POST form's fields
        // are checked here.
        if r.sse.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
            ));
        }
        return Ok(Encrypt::CustomerKey(k));
    }
    if kms {
        if let Some(context) = r.kms_context {
            check_context(context)?;
        }
        return Ok(Encrypt::Kms {
            key: r
                .kms_key_id
                .map(|k| objects::kms::key_name_of(k.trim()).to_owned()),
            context: r.kms_context.map(str::to_owned),
            bucket_key: r.bucket_key == Some(true),
        });
    }
    match r.sse {
        Some(s) if s.as_str() == AES256 => Ok(Encrypt::ServerKey),
        Some(s) => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {:?}",
            s.as_str()
        )),
        None => Ok(Encrypt::AsBucketSays),
    }
}

/// An encryption context is base64 of a JSON object whose values are strings.
fn check_context(context: &str) -> S3Result<()> {
    let map = base64_simd::STANDARD
        .decode_to_vec(context.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok());
    match map {
        Some(serde_json::Value::Object(m)) if m.values().all(|v| v.is_string()) => Ok(()),
        _ => Err(s3_error!(
            InvalidArgument,
            "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map"
        )),
    }
}

/// [`requested`] of an input type's SSE fields (PutObject, PostObject, CopyObject,
/// CreateMultipartUpload).
macro_rules! requested_encryption {
    ($i:expr) => {
        $crate::s3::sse::requested($crate::s3::sse::Requested {
            sse: $i.server_side_encryption.as_ref(),
            customer: $crate::s3::sse::sse_customer_key!($i)?,
            kms_key_id: $i.ssekms_key_id.as_deref(),
            kms_context: $i.ssekms_encryption_context.as_deref(),
            bucket_key: $i.bucket_key_enabled,
        })
    };
}
pub(crate) use requested_encryption;

/// The `x-amz-server-side-encryption` answer for an object stored with `encryption` (none
/// for SSE-C, whose answer is [`customer_answer`]).
pub fn answer(encryption: Option<&metastore::Encryption>) -> Option<ServerSideEncryption> {
    let e = encryption.filter(|e| e.customer.is_none())?;
    Some(ServerSideEncryption::from_static(if e.kms.is_some() {
        ServerSideEncryption::AWS_KMS
    } else {
        ServerSideEncryption::AES256
    }))
}

/// The `x-amz-server-side-encryption-aws-kms-key-id` answer: the key's name (SSE-KMS only).
pub fn kms_key_answer(encryption: Option<&metastore::Encryption>) -> Option<String> {
    encryption
        .filter(|e| e.kms.is_some())
        .map(|e| e.key_id.clone())
}

/// The `x-amz-server-side-encryption-bucket-key-enabled` answer: `true` for an SSE-KMS object
/// written with a bucket key asked for (by the request or the bucket's default), else none.
pub fn bucket_key_answer(encryption: Option<&metastore::Encryption>) -> Option<bool> {
    encryption
        .and_then(|e| e.kms.as_ref())
        .filter(|k| k.bucket_key)
        .map(|_| true)
}

/// The `x-amz-server-side-encryption-context` answer, as the client gave it.
pub fn kms_context_answer(encryption: Option<&metastore::Encryption>) -> Option<String> {
    encryption
        .and_then(|e| e.kms.as_ref())
        .and_then(|k| k.context.clone())
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
        let dsse = headers(&[("x-amz-server-side-encryption", "aws:kms:dsse")]);
        assert_eq!(code(&dsse, true, false), NotImplemented);
        let bogus = headers(&[("x-amz-server-side-encryption", "ROT13")]);
        assert_eq!(code(&bogus, true, false), InvalidArgument);
        for ok in [
            headers(&[("x-amz-server-side-encryption", "AES256")]),
            headers(&[
                ("x-amz-server-side-encryption", "AES256"),
                ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
            ]),
            headers(&[("x-amz-meta-encryption", "x")]),
            headers(&[
                ("x-amz-server-side-encryption", "aws:kms"),
                ("x-amz-server-side-encryption-aws-kms-key-id", "k"),
            ]),
        ] {
            assert!(refuse_unsupported(&ok, false, false).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn writes_ask_for_sse_s3_sse_kms_or_the_bucket_default() {
        let aes = ServerSideEncryption::from_static(ServerSideEncryption::AES256);
        let kms = ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS);
        let ask = |sse, key, context| {
            requested(Requested {
                sse,
                customer: None,
                kms_key_id: key,
                kms_context: context,
                bucket_key: None,
            })
        };
        assert!(matches!(
            ask(Some(&aes), None, None),
            Ok(Encrypt::ServerKey)
        ));
        assert!(matches!(ask(None, None, None), Ok(Encrypt::AsBucketSays)));
        let context = base64_simd::STANDARD.encode_to_string(br#"{"team":"a"}"#);
        match ask(
            Some(&kms),
            Some("arn:aws:kms:us-east-1:1:key/backups"),
            Some(&context),
        ) {
            Ok(Encrypt::Kms {
                key,
                context: c,
                bucket_key: false,
            }) => {
                assert_eq!(key.as_deref(), Some("backups"));
                assert_eq!(c.as_deref(), Some(context.as_str()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ask(Some(&kms), None, None),
            Ok(Encrypt::Kms { key: None, .. })
        ));
        let not_a_map = base64_simd::STANDARD.encode_to_string(br#"{"n":1}"#);
        for (sse, key, context) in [
            (Some(&aes), Some("k"), None),
            (None, Some("k"), None),
            (Some(&kms), None, Some(not_a_map.as_str())),
            (Some(&kms), None, Some("not base64!")),
        ] {
            let e = ask(sse, key, context).unwrap_err();
            assert_eq!(*e.code(), s3s::S3ErrorCode::InvalidArgument);
        }
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
