//! ListObjects (v1) and ListObjectsV2.

use metastore::{ListEntry, ListPage, ListQuery};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::TesseraS3;
use super::convert::{
    decode_token, encode_token, etag, listing_max, maybe_url_encode, timestamp, wants_url,
};
use crate::s3::IntoS3;

struct Converted {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    count: i32,
}

fn convert(page: &ListPage, url: bool, owner: Option<&Owner>) -> Converted {
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            ListEntry::Object(key, r) => contents.push(Object {
                key: Some(maybe_url_encode(key.clone(), url)),
                size: Some(r.size as i64),
                e_tag: Some(etag(&r.etag)),
                last_modified: Some(timestamp(r.modified_ms)),
                storage_class: Some(ObjectStorageClass::from(
                    r.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
                )),
                owner: owner.cloned(),
                ..Default::default()
            }),
            ListEntry::CommonPrefix(p) => prefixes.push(CommonPrefix {
                prefix: Some(maybe_url_encode(p.clone(), url)),
            }),
        }
    }
    Converted {
        count: page.entries.len() as i32,
        contents,
        prefixes,
    }
}

async fn page(
    s: &TesseraS3,
    bucket: &str,
    prefix: &Option<String>,
    delimiter: &Option<String>,
    after: Option<String>,
    max: i32,
) -> S3Result<ListPage> {
    let query = ListQuery {
        prefix: prefix.clone().unwrap_or_default(),
        delimiter: delimiter.clone(),
        after,
        max: max as usize,
    };
    if max == 0 {
        // Still reports a missing bucket.
        s.service.bucket(bucket).await.s3()?;
        return Ok(ListPage::default());
    }
    s.service.list_objects(bucket, query).await.s3()
}

pub async fn list_objects_v2(
    s: &TesseraS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = req.input;
    let url = wants_url(&i.encoding_type)?;
    let max = listing_max(i.max_keys, "max-keys")?;
    let after = match &i.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => i.start_after.clone().filter(|s| !s.is_empty()),
    };
    let page = page(s, &i.bucket, &i.prefix, &i.delimiter, after, max).await?;
    let next = page
        .truncated
        .then(|| page.entries.last().map(|e| encode_token(e.name())))
        .flatten();
    let owner = match i.fetch_owner {
        Some(true) => Some(s.bucket_owner(&i.bucket).await?),
        _ => None,
    };
    let c = convert(&page, url, owner.as_ref());
    let enc = |s: Option<String>| s.map(|s| maybe_url_encode(s, url));
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc(i.prefix).unwrap_or_default()),
        delimiter: enc(i.delimiter),
        start_after: enc(i.start_after),
        max_keys: Some(max),
        key_count: Some(c.count),
        is_truncated: Some(page.truncated),
        continuation_token: i.continuation_token,
        next_continuation_token: next,
        contents: Some(c.contents),
        common_prefixes: Some(c.prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub async fn list_objects(
    s: &TesseraS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = req.input;
    let url = wants_url(&i.encoding_type)?;
    let max = listing_max(i.max_keys, "max-keys")?;
    let after = i.marker.clone().filter(|m| !m.is_empty());
    let page = page(s, &i.bucket, &i.prefix, &i.delimiter, after, max).await?;
    let next_marker = page
        .truncated
        .then(|| {
            page.entries
                .last()
                .map(|e| maybe_url_encode(e.name().to_owned(), url))
        })
        .flatten();
    let owner = s.bucket_owner(&i.bucket).await?;
    let c = convert(&page, url, Some(&owner));
    let enc = |s: Option<String>| s.map(|s| maybe_url_encode(s, url));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(i.prefix).unwrap_or_default()),
        delimiter: enc(i.delimiter),
        marker: Some(enc(i.marker).unwrap_or_default()),
        next_marker,
        max_keys: Some(max),
        is_truncated: Some(page.truncated),
        contents: Some(c.contents),
        common_prefixes: Some(c.prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}
