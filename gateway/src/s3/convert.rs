//! Conversions between s3s wire types and tessera's domain types.

use std::collections::BTreeMap;

use metastore::{ContentHeaders, ObjectRecord};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::{ETag, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use objects::ObjectMeta;

pub const MAX_KEY_LEN: usize = 1024;

pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            "Your key is too long",
        ));
    }
    if key.contains('\0') {
        return Err(s3_error!(
            InvalidArgument,
            "Object keys may not contain NUL characters"
        ));
    }
    Ok(())
}

pub fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

pub fn timestamp(ms: i64) -> Timestamp {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(Timestamp::from)
        .unwrap_or_default()
}

pub fn http_date(ts: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    ts.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

pub fn content_md5(header: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(h) = header else { return Ok(None) };
    let invalid = || s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid.");
    let bytes = base64_simd::STANDARD
        .decode_to_vec(h.trim())
        .map_err(|_| invalid())?;
    Ok(Some(bytes.try_into().map_err(|_| invalid())?))
}

/// The [`ObjectMeta`] of a new object from an s3s input with the standard content fields
/// (PutObject, PostObject, CreateMultipartUpload): those DTOs share field names but no trait.
/// Evaluates to `S3Result<ObjectMeta>`.
macro_rules! new_object_meta {
    ($i:expr) => {
        (|| -> s3s::S3Result<objects::ObjectMeta> {
            let mut meta = $crate::s3::convert::object_meta($crate::s3::convert::ContentInput {
                content_type: $i.content_type,
                content_encoding: $i.content_encoding,
                content_disposition: $i.content_disposition,
                content_language: $i.content_language,
                cache_control: $i.cache_control,
                expires: $i.expires,
                metadata: $i.metadata,
                storage_class: $crate::s3::convert::storage_class(
                    $i.storage_class.as_ref().map(|c| c.as_str()),
                )?,
            });
            meta.tags =
                $crate::s3::IntoS3::s3($crate::s3::tagging::parse_header($i.tagging.as_deref()))?;
            $crate::s3::acl::refuse_grant_headers(
                $i.grant_full_control.is_some()
                    || $i.grant_read.is_some()
                    || $i.grant_read_acp.is_some()
                    || $i.grant_write_acp.is_some(),
            )?;
            meta.acl = $crate::s3::acl::canned_acl($i.acl.as_ref().map(|a| a.as_str()))?;
            meta.encrypt = $crate::s3::sse::requested_encryption!($i)?;
            meta.lock = $crate::s3::object_lock::asked_lock!($i)?;
            Ok(meta)
        })()
    };
}
pub(crate) use new_object_meta;

pub struct ContentInput {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub metadata: Option<s3s::dto::Metadata>,
    pub storage_class: Option<String>,
}

pub fn object_meta(c: ContentInput) -> ObjectMeta {
    ObjectMeta {
        content: ContentHeaders {
            // What S3 records when the client sends no Content-Type.
            content_type: c
                .content_type
                .or_else(|| Some("binary/octet-stream".to_owned())),
            content_encoding: c.content_encoding.and_then(strip_aws_chunked),
            content_disposition: c.content_disposition,
            content_language: c.content_language,
            cache_control: c.cache_control,
            expires: c.expires.as_ref().and_then(http_date),
        },
        user_metadata: c
            .metadata
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>())
            .unwrap_or_default(),
        storage_class: c.storage_class.filter(|s| s != "STANDARD"),
        tags: Vec::new(),
        acl: None,
        encrypt: Default::default(),
        lock: None,
        integrity_declared: false,
    }
}

/// `aws-chunked` describes the upload framing, not the object: S3 does not store it. The
/// other values are kept as the client wrote them, spacing included.
fn strip_aws_chunked(encoding: String) -> Option<String> {
    let kept: Vec<&str> = encoding
        .split(',')
        .filter(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("aws-chunked"))
        .collect();
    let kept = kept.join(",");
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_string())
}

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// Storage classes are accepted and reported (every object gets the same durability here).
pub fn storage_class(class: Option<&str>) -> S3Result<Option<String>> {
    match class {
        None => Ok(None),
        Some(c) if STORAGE_CLASSES.contains(&c) => Ok(Some(c.to_owned())),
        Some(c) => Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            format!("The storage class you specified ({c}) is not valid"),
        )),
    }
}

pub fn user_metadata(r: &ObjectRecord) -> Option<s3s::dto::Metadata> {
    (!r.user_metadata.is_empty()).then(|| r.user_metadata.clone().into_iter().collect())
}

/// What S3 does for `encoding-type=url`: percent-encode everything but unreserved characters
/// and '/'.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub fn maybe_url_encode(s: String, encode: bool) -> String {
    if encode {
        utf8_percent_encode(&s, KEY_ENCODE).to_string()
    } else {
        s
    }
}

/// Listings return at most this many entries per page, whatever the client asks for.
pub const MAX_LIST_ENTRIES: i32 = 1000;

/// A listing's page size (`max-keys`, `max-uploads`, ...): capped, never negative.
pub fn listing_max(requested: Option<i32>, name: &str) -> S3Result<i32> {
    match requested {
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "{name} must not be negative")),
        Some(n) => Ok(n.min(MAX_LIST_ENTRIES)),
        None => Ok(MAX_LIST_ENTRIES),
    }
}

/// Whether a listing must URL-encode its keys (`encoding-type=url`, the only valid value).
pub fn wants_url(e: &Option<s3s::dto::EncodingType>) -> S3Result<bool> {
    match e {
        None => Ok(false),
        Some(e) if e.as_str() == s3s::dto::EncodingType::URL => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

const TOKEN_PREFIX: &str = "t1:";

/// Continuation tokens are opaque to clients: a versioned, base64-wrapped resume key.
pub fn encode_token(after: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(format!("{TOKEN_PREFIX}{after}"))
}

pub fn decode_token(token: &str) -> S3Result<String> {
    let invalid = || {
        s3_error!(
            InvalidArgument,
            "The continuation token provided is incorrect"
        )
    };
    let raw = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(token)
        .map_err(|_| invalid())?;
    let s = String::from_utf8(raw).map_err(|_| invalid())?;
    s.strip_prefix(TOKEN_PREFIX)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for k in ["", "a/b", "ünï cödé %+", "x".repeat(1024).as_str()] {
            assert_eq!(decode_token(&encode_token(k)).unwrap(), k);
        }
        assert!(decode_token("not a token").is_err());
        assert!(decode_token(&base64_simd::URL_SAFE_NO_PAD.encode_to_string("x")).is_err());
    }

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(
            maybe_url_encode("a b+c%/d~é".into(), true),
            "a%20b%2Bc%25/d~%C3%A9"
        );
        assert_eq!(maybe_url_encode("a b".into(), false), "a b");
    }

    #[test]
    fn aws_chunked_is_not_a_content_encoding() {
        assert_eq!(strip_aws_chunked("aws-chunked".into()), None);
        assert_eq!(
            strip_aws_chunked("gzip,aws-chunked".into()).as_deref(),
            Some("gzip")
        );
        assert_eq!(strip_aws_chunked("br".into()).as_deref(), Some("br"));
        assert_eq!(
            strip_aws_chunked("aws-chunked, deflate, gzip".into()).as_deref(),
            Some("deflate, gzip")
        );
        assert_eq!(
            strip_aws_chunked("deflate, aws-chunked, gzip".into()).as_deref(),
            Some("deflate, gzip")
        );
        assert!(storage_class(Some("GLACIER")).is_ok());
        assert!(storage_class(Some("FAST")).is_err());
    }

    #[test]
    fn key_rules() {
        assert!(check_key(&"k".repeat(1024)).is_ok());
        assert_eq!(
            check_key(&"k".repeat(1025)).unwrap_err().code(),
            &S3ErrorCode::KeyTooLongError
        );
        assert!(check_key("../../etc/passwd").is_ok());
        assert!(check_key("a\0b").is_err());
    }

    #[test]
    fn content_md5_parsing() {
        assert_eq!(
            content_md5(Some("1B2M2Y8AsgTpgAmY7PhCfg=="))
                .unwrap()
                .unwrap()[0],
            0xd4
        );
        assert!(content_md5(Some("nope")).is_err());
        assert!(content_md5(Some("AAAA")).is_err());
        assert_eq!(content_md5(None).unwrap(), None);
    }
}
