//! Listing the current objects of a bucket with prefix, delimiter and a resume point.
//!

use serde::Deserialize;

use crate::kv::Tree;
use crate::records::decode;
use crate::txn::TxnStore;
use crate::walk::{Visit, Walk, walk};
use crate::{Result, keys};

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Resume strictly after this key (or common prefix).
    pub after: Option<String>,
    pub max: usize,
}

/// What a listing shows of an object, read from its stored record (an `ObjectRecord`,
/// encoded with field names) without the rest: user metadata, checksums, the chunk list or
/// inline data are skipped over, never built. Decoding whole records was the largest part of
/// a listing's CPU after the copies (BENCHMARKS "LIST").
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedObject {
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    #[serde(default)]
    pub storage_class: Option<String>,
    #[serde(default)]
    pub delete_marker: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    Object(String, ListedObject),
    CommonPrefix(String),
}

impl ListEntry {
    /// The key or prefix, which is also the resume point after this entry.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(k, _) => k,
            ListEntry::CommonPrefix(p) => p,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub truncated: bool,
}

pub(crate) fn list(kv: &dyn TxnStore, bucket: &str, q: &ListQuery) -> Result<ListPage> {
    let mut start = keys::object(bucket, &q.prefix);
    if let Some(after) = &q.after {
        let mut a = keys::object(bucket, after);
        a.push(0);
        start = start.max(a);
    }
    let w = Walk {
        tree: Tree::Objects,
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        start,
        resume_prefix: q.after.as_deref(),
        max: q.max,
    };
    let (visits, truncated) = walk(
        kv,
        w,
        |rest| Some(String::from_utf8_lossy(rest).into_owned()),
        |_, key, v| {
            let record: ListedObject = decode(v)?;
            // A key whose newest version is a delete marker is not listed.
            Ok((!record.delete_marker).then_some(ListEntry::Object(key, record)))
        },
    )?;
    let entries = visits
        .into_iter()
        .map(|v| match v {
            Visit::Prefix(p) => ListEntry::CommonPrefix(p),
            Visit::Item(e) => e,
        })
        .collect();
    Ok(ListPage { entries, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ObjectData, encode};

    #[test]
    fn a_listed_object_reads_the_fields_of_a_whole_record() {
        let mut record = crate::suite::object(vec![crate::suite::chunk(1), crate::suite::chunk(2)]);
        record.etag = "\"abc\"".into();
        record.modified_ms = 1_700_000_000_123;
        record.storage_class = Some("REDUCED_REDUNDANCY".into());
        record
            .checksums
            .insert("CRC64NVME".into(), "AAAAAAAAAAA=".into());
        let listed: ListedObject = decode(&encode(&record)).unwrap();
        assert_eq!(
            listed,
            ListedObject {
                size: 200,
                etag: "\"abc\"".into(),
                modified_ms: 1_700_000_000_123,
                storage_class: Some("REDUCED_REDUNDANCY".into()),
                delete_marker: false,
            }
        );
        // Inline data and a delete marker.
        record.data = ObjectData::Inline(vec![7; 4096]);
        record.storage_class = None;
        record.delete_marker = true;
        let listed: ListedObject = decode(&encode(&record)).unwrap();
        assert!(listed.delete_marker);
        assert_eq!(listed.storage_class, None);
    }
}
