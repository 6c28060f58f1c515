//! Listing the current objects of a bucket with prefix, delimiter and a resume point.
//!
//! Keys that roll up into a common prefix are skipped with one seek past the prefix, so a
//! listing costs O(returned entries), not O(keys under the prefix).

use crate::kv::{KvStore, Tree};
use crate::records::{ObjectRecord, decode};
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

const PAGE: usize = 256;

pub(crate) fn list(kv: &dyn KvStore, bucket: &str, q: &ListQuery) -> Result<ListPage> {
    let base = keys::bucket_prefix(bucket);
    let scope_start = keys::object(bucket, &q.prefix);
    let scope_end = keys::prefix_end(&scope_start);
    let mut start = scope_start.clone();
    if let Some(after) = &q.after {
        let mut a = keys::object(bucket, after);
        a.push(0);
        start = start.max(a);
    }
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut page = ListPage::default();
    loop {
        let batch = kv.scan(Tree::Objects, &start, scope_end.as_deref(), PAGE)?;
        let exhausted = batch.len() < PAGE;
        let mut restart = None;
        for (k, v) in batch {
            // Keys are stored from valid UTF-8 strings.
            let key = String::from_utf8_lossy(&k[base.len()..]).into_owned();
            let rollup = delimiter.and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|pos| key[..q.prefix.len() + pos + d.len()].to_string())
            });
            if let Some(cp) = rollup {
                let seek = keys::prefix_end(&keys::object(bucket, &cp));
                if q.after.as_deref() != Some(cp.as_str()) {
                    if page.entries.len() == q.max {
                        page.truncated = true;
                        return Ok(page);
                    }
                    page.entries.push(ListEntry::CommonPrefix(cp));
                }
                match seek {
                    Some(s) => restart = Some(s),
                    None => return Ok(page),
                }
                break;
            }
            let record: ObjectRecord = decode(&v)?;
            start = k;
            start.push(0);
            // A key whose newest version is a delete marker is not listed.
            if record.delete_marker {
                continue;
            }
            if page.entries.len() == q.max {
                page.truncated = true;
                return Ok(page);
            }
            page.entries.push(ListEntry::Object(key, Box::new(record)));
        }
        match restart {
            Some(s) => start = s,
            None if exhausted => return Ok(page),
            None => {}
        }
    }
}
