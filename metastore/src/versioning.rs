//! Object versions: how a write becomes a version, how versions are found and removed, and
//! ListObjectVersions.
//!
//! Layout: `Versions` holds every version at `bucket 0x00 key 0x00 sort`, `Objects` holds a copy
//! of each key's latest version (possibly a delete marker) at `bucket 0x00 key`. Reference
//! counts follow `Versions` only. `sort` makes a key's versions list newest first:
//! - a real version's sort key IS its version id: 16 hex digits of `u64::MAX - seq`, where `seq`
//!   grows with time (microseconds, bumped to stay strictly increasing);
//! - the "null" version (unversioned or suspended writes) gets `<same 16 hex digits>n`, so it
//!   sits among the others by time; a key has at most one null version.

use crate::kv::Tree;
use crate::records::{ObjectRecord, Versioning, decode, encode};
use crate::refs::RefDelta;
use crate::store::Inner;
use crate::txn::{Reader, Tx};
use crate::walk::{Visit, Walk, walk};
use crate::{Error, Result, keys};

pub const NULL_VERSION: &str = "null";

/// What a DeleteObject did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version removed, or the delete marker created (`None`: the null version).
    pub version_id: Option<String>,
    /// A delete marker was created, or the version removed was one.
    pub delete_marker: bool,
}

/// A well-formed version id: `null` or 16 lowercase hex digits.
pub fn valid_version_id(id: &str) -> bool {
    id == NULL_VERSION
        || (id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The sequence number a version's sort key encodes (see the module docs).
fn seq_of_version_key(version_key: &[u8], prefix_len: usize) -> Option<u64> {
    let hex = std::str::from_utf8(version_key.get(prefix_len..prefix_len + 16)?).ok()?;
    u64::from_str_radix(hex, 16)
        .ok()
        .map(|inverted| u64::MAX - inverted)
}

impl Inner {
    /// A sequence number above `newest` (the key's newest version's): versions made by
    /// several gateways, whose clocks differ, still list in the order they were written.
    fn next_seq(&self, newest: Option<u64>) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut last = self
            .last_version_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *last = now.max(*last + 1).max(newest.map_or(0, |n| n + 1));
        *last
    }

    pub(crate) fn versioning(&self, r: &mut impl Reader, bucket: &str) -> Result<Versioning> {
        r.get::<crate::BucketRecord>(Tree::Buckets, bucket.as_bytes())?
            .map(|b| b.versioning)
            .ok_or(Error::NoSuchBucket)
    }

    /// The `Versions` entry of a version of an object: `None` asks for the null version.
    pub(crate) fn find_version(
        &self,
        r: &mut impl Reader,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<(Vec<u8>, ObjectRecord)>> {
        match version {
            Some(id) if id != NULL_VERSION => {
                let k = keys::version(bucket, key, id);
                Ok(r.get::<ObjectRecord>(Tree::Versions, &k)?.map(|r| (k, r)))
            }
            _ => {
                let prefix = keys::version_prefix(bucket, key);
                let end = keys::prefix_end(&prefix);
                for (k, v) in r.scan(Tree::Versions, &prefix, end.as_deref(), usize::MAX)? {
                    let record: ObjectRecord = decode(&v)?;
                    if record.version_id.is_none() {
                        // Read again by key: its removal by another writer must fail this
                        // transaction (a range read does not see deletions on every store),
                        // and what is acted on is what that guard covers.
                        return match r.get_raw(Tree::Versions, &k)? {
                            Some(now) => Ok(Some((k, decode(&now)?))),
                            None => Err(Error::Changed),
                        };
                    }
                }
                Ok(None)
            }
        }
    }

    /// Adds `record` as the key's newest version under the bucket's versioning mode: a new
    /// version id when enabled, else it replaces the null version. Returns the stored record.
    pub(crate) fn write_version(
        &self,
        tx: &mut Tx<'_>,
        delta: &mut RefDelta,
        bucket: &str,
        key: &str,
        mut record: ObjectRecord,
        mode: Versioning,
    ) -> Result<ObjectRecord> {
        let prefix = keys::version_prefix(bucket, key);
        let end = keys::prefix_end(&prefix);
        let newest = tx
            .scan(Tree::Versions, &prefix, end.as_deref(), 1)?
            .first()
            .and_then(|(k, _)| seq_of_version_key(k, prefix.len()));
        let inverted = u64::MAX - self.next_seq(newest);
        let sort = if mode == Versioning::Enabled {
            let id = format!("{inverted:016x}");
            record.version_id = Some(id.clone());
            id
        } else {
            record.version_id = None;
            if let Some((k, old)) = self.find_version(tx, bucket, key, None)? {
                delta.add(old.data.chunks(), -1);
                tx.delete(Tree::Versions, k);
            }
            format!("{inverted:016x}n")
        };
        delta.add(record.data.chunks(), 1);
        let encoded = encode(&record);
        tx.put(
            Tree::Versions,
            keys::version(bucket, key, &sort),
            encoded.clone(),
        );
        tx.put(Tree::Objects, keys::object(bucket, key), encoded);
        Ok(record)
    }

    /// Removes one version for good; when it was the newest, the next one becomes current.
    pub(crate) fn remove_version(
        &self,
        tx: &mut Tx<'_>,
        delta: &mut RefDelta,
        bucket: &str,
        key: &str,
        version_key: Vec<u8>,
        record: &ObjectRecord,
    ) -> Result<()> {
        delta.add(record.data.chunks(), -1);
        let prefix = keys::version_prefix(bucket, key);
        let end = keys::prefix_end(&prefix);
        let newest = tx.scan(Tree::Versions, &prefix, end.as_deref(), 2)?;
        if newest.first().map(|(k, _)| k) == Some(&version_key) {
            match newest.get(1) {
                Some((next_key, next)) => {
                    // The version that becomes current must still exist when this commits.
                    if tx.get_raw(Tree::Versions, next_key)?.as_ref() != Some(next) {
                        return Err(Error::Changed);
                    }
                    tx.put(Tree::Objects, keys::object(bucket, key), next.clone())
                }
                None => tx.delete(Tree::Objects, keys::object(bucket, key)),
            }
        }
        tx.delete(Tree::Versions, version_key);
        Ok(())
    }

    /// DeleteObject: with a version id, that version goes for good; without, a delete marker is
    /// added (versioned buckets) or the object goes (unversioned buckets).
    pub(crate) fn delete(
        &self,
        tx: &mut Tx<'_>,
        delta: &mut RefDelta,
        (bucket, key, version): (&str, &str, Option<&str>),
        now_ms: i64,
        guard: &(dyn Fn(&ObjectRecord) -> Result<()> + Send + Sync),
    ) -> Result<DeleteOutcome> {
        let mode = self.versioning(tx, bucket)?;
        match version {
            None if mode == Versioning::Unversioned => {
                if let Some((k, old)) = self.find_version(tx, bucket, key, None)? {
                    self.remove_version(tx, delta, bucket, key, k, &old)?;
                }
                Ok(DeleteOutcome {
                    version_id: None,
                    delete_marker: false,
                })
            }
            None => {
                let marker = self.write_version(
                    tx,
                    delta,
                    bucket,
                    key,
                    ObjectRecord::delete_marker(now_ms),
                    mode,
                )?;
                Ok(DeleteOutcome {
                    version_id: marker.version_id,
                    delete_marker: true,
                })
            }
            Some(id) => {
                let found = self.find_version(tx, bucket, key, Some(id))?;
                let delete_marker = found.as_ref().is_some_and(|(_, r)| r.delete_marker);
                if let Some((k, old)) = found {
                    // Checked in the transaction that removes the version: no lock set
                    // meanwhile is missed.
                    guard(&old)?;
                    self.remove_version(tx, delta, bucket, key, k, &old)?;
                }
                Ok(DeleteOutcome {
                    version_id: Some(id.to_owned()),
                    delete_marker,
                })
            }
        }
    }
}

// ---- ListObjectVersions ----

#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only with `key_marker`: resume after this version of that key (else after all of them).
    pub version_id_marker: Option<String>,
    pub max: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VersionEntry {
    Version {
        key: String,
        record: Box<ObjectRecord>,
        is_latest: bool,
    },
    CommonPrefix(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub truncated: bool,
}

pub(crate) fn list(s: &Inner, bucket: &str, q: &VersionQuery) -> Result<VersionPage> {
    let mut start = keys::object(bucket, &q.prefix);
    if let Some(marker) = &q.key_marker {
        let after_key = keys::prefix_end(&keys::version_prefix(bucket, marker));
        let resume = match q.version_id_marker.as_deref() {
            Some(id) => match s.find_version(&mut s.plain(), bucket, marker, Some(id))? {
                Some((mut k, _)) => {
                    k.push(0);
                    Some(k)
                }
                None => after_key,
            },
            None => after_key,
        };
        match resume {
            Some(r) => start = start.max(r),
            None => return Ok(VersionPage::default()),
        }
    }
    let w = Walk {
        tree: Tree::Versions,
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        start,
        resume_prefix: q.key_marker.as_deref(),
        max: q.max,
    };
    // The newest version's store key of the key being listed, to mark IsLatest.
    let mut latest: Option<(String, Vec<u8>)> = None;
    let (visits, truncated) = walk(
        s.kv.as_ref(),
        w,
        |rest| keys::split_upload(rest).map(|(key, _)| key),
        |k, key, v| {
            if latest.as_ref().map(|(lk, _)| lk) != Some(&key) {
                let prefix = keys::version_prefix(bucket, &key);
                let end = keys::prefix_end(&prefix);
                let first = s.kv.scan(Tree::Versions, &prefix, end.as_deref(), 1)?;
                latest = first.into_iter().next().map(|(fk, _)| (key.clone(), fk));
            }
            let is_latest = latest.as_ref().is_some_and(|(_, fk)| fk.as_slice() == k);
            Ok(Some(VersionEntry::Version {
                key,
                record: Box::new(decode(v)?),
                is_latest,
            }))
        },
    )?;
    let entries = visits
        .into_iter()
        .map(|v| match v {
            Visit::Prefix(p) => VersionEntry::CommonPrefix(p),
            Visit::Item(e) => e,
        })
        .collect();
    Ok(VersionPage { entries, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids() {
        assert!(valid_version_id("null"));
        assert!(valid_version_id("fffe0123456789ab"));
        assert!(!valid_version_id("FFFE0123456789AB"));
        assert!(!valid_version_id("short"));
        assert!(!valid_version_id("../../etc/passwd"));
    }
}
