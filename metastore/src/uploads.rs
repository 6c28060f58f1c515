//! Listing multipart uploads in S3 order (key, then upload id), with prefix, delimiter and
//! the key-marker / upload-id-marker resume point.

use crate::kv::{KvStore, Tree};
use crate::records::{UploadRecord, decode};
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

const PAGE: usize = 256;

pub(crate) fn list(kv: &dyn KvStore, bucket: &str, q: &UploadQuery) -> Result<UploadPage> {
    let base = keys::bucket_prefix(bucket);
    let scope_start = keys::object(bucket, &q.prefix);
    let scope_end = keys::prefix_end(&scope_start);
    let mut start = scope_start.clone();
    if let Some(marker) = &q.key_marker {
        let resume = match &q.upload_id_marker {
            Some(id) => {
                let mut k = keys::upload(bucket, id, marker);
                k.push(0);
                Some(k)
            }
            None => {
                let mut k = keys::object(bucket, marker);
                k.push(0);
                keys::prefix_end(&k)
            }
        };
        match resume {
            Some(r) => start = start.max(r),
            None => return Ok(UploadPage::default()),
        }
    }
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut page = UploadPage::default();
    loop {
        let batch = kv.scan(Tree::Uploads, &start, scope_end.as_deref(), PAGE)?;
        let exhausted = batch.len() < PAGE;
        let mut restart = None;
        for (k, v) in batch {
            let Some((key, upload_id)) = keys::split_upload(&k[base.len()..]) else {
                continue;
            };
            let rollup = delimiter.and_then(|d| {
                key.get(q.prefix.len()..)
                    .and_then(|rest| rest.find(d))
                    .map(|pos| key[..q.prefix.len() + pos + d.len()].to_string())
            });
            if let Some(cp) = rollup {
                if page.entries.len() == q.max {
                    page.truncated = true;
                    return Ok(page);
                }
                let seek = keys::prefix_end(&keys::object(bucket, &cp));
                if q.key_marker.as_deref() != Some(cp.as_str()) {
                    page.entries.push(UploadEntry::CommonPrefix(cp));
                }
                match seek {
                    Some(s) => restart = Some(s),
                    None => return Ok(page),
                }
                break;
            }
            if page.entries.len() == q.max {
                page.truncated = true;
                return Ok(page);
            }
            page.entries.push(UploadEntry::Upload {
                key,
                upload_id,
                record: Box::new(decode(&v)?),
            });
            start = k;
            start.push(0);
        }
        match restart {
            Some(s) => start = s,
            None if exhausted => return Ok(page),
            None => {}
        }
    }
}

/// Every upload initiated before `cutoff_ms`: (key, upload id), for expiry.
pub(crate) fn initiated_before(
    kv: &dyn KvStore,
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
