//! Listing multipart uploads in S3 order (key, then upload id), with prefix, delimiter and
//! the key-marker / upload-id-marker resume point.

use crate::kv::Tree;
use crate::records::{UploadRecord, decode};
use crate::txn::TxnStore;
use crate::walk::{Visit, Walk, walk};
use crate::{Result, keys};

#[derive(Debug, Clone, Default)]
pub struct UploadQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only with `key_marker`: resume after this upload of that key (else after all of them).
    pub upload_id_marker: Option<String>,
    pub max: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UploadEntry {
    Upload {
        key: String,
        upload_id: String,
        record: Box<UploadRecord>,
    },
    CommonPrefix(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    pub truncated: bool,
}

pub(crate) fn list(kv: &dyn TxnStore, bucket: &str, q: &UploadQuery) -> Result<UploadPage> {
    let mut start = keys::object(bucket, &q.prefix);
    if let Some(marker) = &q.key_marker {
        let resume = match &q.upload_id_marker {
            Some(id) => {
                let mut k = keys::upload(bucket, id, marker);
                k.push(0);
                Some(k)
            }
            None => keys::prefix_end(&keys::version_prefix(bucket, marker)),
        };
        match resume {
            Some(r) => start = start.max(r),
            None => return Ok(UploadPage::default()),
        }
    }
    let base = keys::bucket_prefix(bucket).len();
    let w = Walk {
        tree: Tree::Uploads,
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        start,
        resume_prefix: q.key_marker.as_deref(),
        max: q.max,
    };
    let (visits, truncated) = walk(
        kv,
        w,
        |rest| keys::split_upload(rest).map(|(key, _)| key),
        |k, key, v| {
            let Some((_, upload_id)) = keys::split_upload(&k[base..]) else {
                return Ok(None);
            };
            Ok(Some(UploadEntry::Upload {
                key,
                upload_id,
                record: Box::new(decode(v)?),
            }))
        },
    )?;
    let entries = visits
        .into_iter()
        .map(|v| match v {
            Visit::Prefix(p) => UploadEntry::CommonPrefix(p),
            Visit::Item(e) => e,
        })
        .collect();
    Ok(UploadPage { entries, truncated })
}

/// Every upload initiated before `cutoff_ms`: (key, upload id), for expiry.
pub(crate) fn initiated_before(
    kv: &dyn TxnStore,
    cutoff_ms: i64,
) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    crate::kv::scan_all(kv, Tree::Uploads, |(k, v)| {
        let Some(sep) = k.iter().position(|&b| b == 0) else {
            return Ok(());
        };
        let record: UploadRecord = decode(&v)?;
        if record.initiated_ms < cutoff_ms
            && let Some((key, upload_id)) = keys::split_upload(&k[sep + 1..])
        {
            out.push((
                String::from_utf8_lossy(&k[..sep]).into_owned(),
                key,
                upload_id,
            ));
        }
        Ok(())
    })?;
    Ok(out)
}
