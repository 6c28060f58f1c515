//! Listing the current objects of a bucket with prefix, delimiter and a resume point.
//!

use crate::kv::Tree;
use crate::records::{ObjectRecord, decode};
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

#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    Object(String, Box<ObjectRecord>),
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
            let record: ObjectRecord = decode(v)?;
            // A key whose newest version is a delete marker is not listed.
            Ok((!record.delete_marker).then(|| ListEntry::Object(key, Box::new(record))))
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
