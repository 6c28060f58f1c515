//! Bucket versioning configuration and ListObjectVersions.

use metastore::{VersionEntry, VersionQuery, Versioning};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::convert::{etag, listing_max, maybe_url_encode, timestamp, wants_url};
use crate::s3::IntoS3;

/// A version id from a request: `null` or one tessera handed out.
pub fn version_param(v: Option<&str>) -> S3Result<Option<&str>> {
    match v {
        None => Ok(None),
        Some(id) if metastore::valid_version_id(id) => Ok(Some(id)),
        Some(_) => Err(s3_error!(InvalidArgument, "Invalid version id specified")),
    }
}

/// The version id to report for a stored record (`null` for the null version).
pub fn reported(version_id: &Option<String>) -> String {
    version_id
        .clone()
        .unwrap_or_else(|| metastore::NULL_VERSION.to_owned())
}

pub async fn put_versioning(
    s: &TesseraS3,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let i = req.input;
    let state = match i
        .versioning_configuration
        .status
        .as_ref()
        .map(|s| s.as_str())
    {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "The versioning Status must be Enabled or Suspended"
            ));
        }
    };
    s.service.set_versioning(&i.bucket, state).await.s3()?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

pub async fn get_versioning(
    s: &TesseraS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let status = match s.service.bucket(&req.input.bucket).await.s3()?.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::ENABLED,
        )),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::SUSPENDED,
        )),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        ..Default::default()
    }))
}

pub async fn list_versions(
    s: &TesseraS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = req.input;
    let url = wants_url(&i.encoding_type)?;
    let max = listing_max(i.max_keys, "max-keys")?;
    let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
    let version_id_marker = match key_marker {
        Some(_) => version_param(i.version_id_marker.as_deref().filter(|v| !v.is_empty()))?
            .map(str::to_owned),
        None => None,
    };
    let query = VersionQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone(),
        key_marker,
        version_id_marker,
        max: max as usize,
    };
    let page = if max == 0 {
        s.service.bucket(&i.bucket).await.s3()?;
        Default::default()
    } else {
        s.service.list_versions(&i.bucket, query).await.s3()?
    };
    let owner = s.bucket_owner(&i.bucket).await?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut order = Vec::new();
    let mut prefixes = Vec::new();
    let (mut next_key, mut next_version) = (None, None);
    for e in page.entries {
        match e {
            VersionEntry::Version {
                key,
                record,
                is_latest,
            } => {
                next_key = Some(key.clone());
                next_version = Some(reported(&record.version_id));
                order.push(record.delete_marker);
                if record.delete_marker {
                    markers.push(DeleteMarkerEntry {
                        key: Some(maybe_url_encode(key, url)),
                        version_id: Some(reported(&record.version_id)),
                        is_latest: Some(is_latest),
                        last_modified: Some(timestamp(record.modified_ms)),
                        owner: Some(owner.clone()),
                    });
                } else {
                    versions.push(ObjectVersion {
                        key: Some(maybe_url_encode(key, url)),
                        version_id: Some(reported(&record.version_id)),
                        is_latest: Some(is_latest),
                        last_modified: Some(timestamp(record.modified_ms)),
                        e_tag: Some(etag(&record.etag)),
                        size: Some(record.size as i64),
                        storage_class: Some(ObjectVersionStorageClass::from(
                            record
                                .storage_class
                                .clone()
                                .unwrap_or_else(|| "STANDARD".into()),
                        )),
                        owner: Some(owner.clone()),
                        ..Default::default()
                    });
                }
            }
            VersionEntry::CommonPrefix(p) => {
                next_key = Some(p.clone());
                next_version = None;
                prefixes.push(CommonPrefix {
                    prefix: Some(maybe_url_encode(p, url)),
                });
            }
        }
    }
    let enc = |v: Option<String>| v.map(|v| maybe_url_encode(v, url));
    let mut resp = S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(i.prefix).unwrap_or_default()),
        delimiter: enc(i.delimiter),
        key_marker: Some(enc(i.key_marker).unwrap_or_default()),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        max_keys: Some(max),
        is_truncated: Some(page.truncated),
        next_key_marker: if page.truncated { enc(next_key) } else { None },
        next_version_id_marker: if page.truncated { next_version } else { None },
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    });
    // s3s writes all <Version>s, then all <DeleteMarker>s; S3 interleaves them in listing
    // order, which the HTTP layer restores from this.
    resp.extensions.insert(crate::http::EntryOrder(order));
    Ok(resp)
}
