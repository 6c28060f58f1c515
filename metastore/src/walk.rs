//! The one listing loop behind ListObjects, ListMultipartUploads and ListObjectVersions:
//! ordered entries under `bucket/prefix`, with keys that contain the delimiter after the prefix
//! rolled up into common prefixes. Each common prefix costs one seek past it, so a listing is
//! O(returned entries), not O(keys under the prefix).

use crate::kv::Tree;
use crate::txn::TxnStore;
use crate::{Result, keys};

pub(crate) enum Visit<T> {
    Prefix(String),
    Item(T),
}

pub(crate) struct Walk<'a> {
    pub tree: Tree,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// First stored key to look at (already past any resume point).
    pub start: Vec<u8>,
    /// Resuming after this common prefix: it is not reported again.
    pub resume_prefix: Option<&'a str>,
    pub max: usize,
}

/// `key_of` maps a stored key (after the bucket prefix) to its object key; `item` turns an
/// entry (stored key, object key, value) into a result, or `None` to skip it. Returns the
/// visits and whether more remain.
pub(crate) fn walk<T>(
    kv: &dyn TxnStore,
    w: Walk<'_>,
    key_of: impl Fn(&[u8]) -> Option<String>,
    mut item: impl FnMut(&[u8], String, &[u8]) -> Result<Option<T>>,
) -> Result<(Vec<Visit<T>>, bool)> {
    let base = keys::bucket_prefix(w.bucket);
    let scope_end = keys::prefix_end(&keys::object(w.bucket, w.prefix));
    let delimiter = w.delimiter.filter(|d| !d.is_empty());
    let mut start = w.start;
    let mut out = Vec::new();
    loop {
        // Set by the visitor: where to seek past a common prefix, or the walk's answer.
        let mut restart = None;
        let mut finished = None;
        kv.scan_each(w.tree, &start, scope_end.as_deref(), &mut |k, v| {
            let Some(key) = key_of(&k[base.len()..]) else {
                return Ok(true);
            };
            let rollup = delimiter.and_then(|d| {
                key.get(w.prefix.len()..)
                    .and_then(|rest| rest.find(d))
                    .map(|pos| key[..w.prefix.len() + pos + d.len()].to_string())
            });
            if let Some(cp) = rollup {
                let seek = keys::prefix_end(&keys::object(w.bucket, &cp));
                if w.resume_prefix != Some(cp.as_str()) {
                    if out.len() == w.max {
                        finished = Some(true);
                        return Ok(false);
                    }
                    out.push(Visit::Prefix(cp));
                }
                match seek {
                    Some(s) => restart = Some(s),
                    None => finished = Some(false),
                }
                return Ok(false);
            }
            let Some(found) = item(k, key, v)? else {
                return Ok(true);
            };
            if out.len() == w.max {
                finished = Some(true);
                return Ok(false);
            }
            out.push(Visit::Item(found));
            Ok(true)
        })?;
        match (finished, restart) {
            (Some(truncated), _) => return Ok((out, truncated)),
            (None, Some(s)) => start = s,
            (None, None) => return Ok((out, false)),
        }
    }
}
