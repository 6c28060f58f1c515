//! Object tagging: the `x-amz-tagging` header, the tagging sub-resource, and S3's limits.

use std::collections::HashSet;

use objects::Error;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::TesseraS3;
use super::convert::check_key;
use super::versions::version_param;
use crate::s3::IntoS3;

/// Tags an object may carry.
const MAX_TAGS: usize = 10;
/// Tags a bucket may carry.
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

pub type Tags = Vec<(String, String)>;

/// Checks S3's rules for a tag set of at most `max` tags (objects: 10, buckets: 50).
pub fn validate(tags: &Tags, max: usize) -> Result<(), Error> {
    if tags.len() > max {
        let what = if max == MAX_BUCKET_TAGS {
            "Bucket"
        } else {
            "Object"
        };
        return Err(Error::InvalidTag(format!(
            "{what} tags cannot be greater than {max}"
        )));
    }
    let mut seen = HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
            return Err(Error::InvalidTag(format!(
                "The TagKey you have provided is invalid (1 to {MAX_KEY_CHARS} characters)"
            )));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(Error::InvalidTag(format!(
                "The TagValue you have provided is invalid (at most {MAX_VALUE_CHARS} characters)"
            )));
        }
        if !seen.insert(k) {
            return Err(Error::InvalidTag(
                "Cannot provide multiple Tags with the same key".into(),
            ));
        }
    }
    Ok(())
}

/// Parses the URL-encoded `x-amz-tagging` header (`k1=v1&k2=v2`).
pub fn parse_header(header: Option<&str>) -> Result<Tags, Error> {
    let tags: Tags = match header {
        None => Vec::new(),
        Some(h) => form_urlencoded::parse(h.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    };
    validate(&tags, MAX_TAGS)?;
    Ok(tags)
}

/// A request's tag set as stored.
pub fn from_tag_set(set: TagSet) -> Tags {
    set.into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

/// Stored tags as an answer's tag set.
pub fn tag_set(tags: &Tags) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub async fn put(
    s: &TesseraS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let tags = from_tag_set(i.tagging.tag_set);
    validate(&tags, MAX_TAGS).s3()?;
    let version = version_param(i.version_id.as_deref())?;
    let record = s
        .service
        .set_tags(&i.bucket, &i.key, version, tags)
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectTaggingOutput {
        version_id: record.version_id,
    }))
}

pub async fn get(
    s: &TesseraS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let version = version_param(i.version_id.as_deref())?;
    let record = s
        .service
        .head_object_version(&i.bucket, &i.key, version)
        .await
        .s3()?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(&record.tags),
        version_id: record.version_id,
    }))
}

pub async fn delete(
    s: &TesseraS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let version = version_param(i.version_id.as_deref())?;
    let record = s
        .service
        .set_tags(&i.bucket, &i.key, version, Vec::new())
        .await
        .s3()?;
    Ok(S3Response::new(DeleteObjectTaggingOutput {
        version_id: record.version_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_and_limits() {
        assert_eq!(
            parse_header(Some("a=1&b=two+words&c=%25")).unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two words".into()),
                ("c".into(), "%".into())
            ]
        );
        assert!(parse_header(None).unwrap().is_empty());
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_header(Some(&eleven.join("&"))).is_err());
        assert!(parse_header(Some("a=1&a=2")).is_err());
        assert!(parse_header(Some(&format!("{}=v", "k".repeat(129)))).is_err());
        assert!(parse_header(Some(&format!("k={}", "v".repeat(257)))).is_err());
        assert!(parse_header(Some(&format!("{}={}", "k".repeat(128), "v".repeat(256)))).is_ok());
    }
}
