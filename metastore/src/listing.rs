//! Listing the current objects of a bucket with prefix, delimiter and a resume point.

use rmp::Marker;
use rmp::decode::{
    MessageLen, read_bool, read_int, read_map_len, read_str_from_slice, read_str_len,
};

use crate::kv::Tree;
use crate::records::payload;
use crate::txn::TxnStore;
use crate::walk::{Visit, Walk, walk};
use crate::{Error, Result, keys};

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
/// inline data are stepped over, never built. Decoding whole records, then decoding them
/// through serde into this type (which still parsed every skipped field name and string), were
/// in turn the largest part of a listing's CPU (BENCHMARKS "LIST").
#[derive(Debug, Clone, PartialEq)]
pub struct ListedObject {
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub storage_class: Option<String>,
    pub delete_marker: bool,
}

impl ListedObject {
    /// Reads the five fields out of a stored object record, stopping once it has them
    /// (`storage_class` and `delete_marker` come before the chunk list and the parts).
    pub fn read(stored: &[u8]) -> Result<Self> {
        let bad = |e: &dyn std::fmt::Display| Error::Decode(format!("object record: {e}"));
        let mut rd = payload(stored)?;
        let (mut size, mut etag, mut modified_ms) = (None, None, None);
        let (mut storage_class, mut delete_marker) = (None, None);
        for _ in 0..read_map_len(&mut rd).map_err(|e| bad(&e))? {
            match read_str(&mut rd)? {
                b"size" => size = Some(read_int::<u64, _>(&mut rd).map_err(|e| bad(&e))?),
                b"etag" => etag = Some(read_string(&mut rd)?),
                b"modified_ms" => {
                    modified_ms = Some(read_int::<i64, _>(&mut rd).map_err(|e| bad(&e))?)
                }
                b"storage_class" => {
                    storage_class = Some(if rd.first() == Some(&Marker::Null.to_u8()) {
                        rd = &rd[1..];
                        None
                    } else {
                        Some(read_string(&mut rd)?)
                    })
                }
                b"delete_marker" => delete_marker = Some(read_bool(&mut rd).map_err(|e| bad(&e))?),
                _ => {
                    let n = MessageLen::len_of(rd).map_err(|e| bad(&format!("{e:?}")))?;
                    rd = &rd[n..];
                }
            }
            if size.is_some()
                && etag.is_some()
                && modified_ms.is_some()
                && storage_class.is_some()
                && delete_marker.is_some()
            {
                break;
            }
        }
        let missing = |field: &str| bad(&format!("missing field `{field}`"));
        Ok(ListedObject {
            size: size.ok_or_else(|| missing("size"))?,
            etag: etag.ok_or_else(|| missing("etag"))?,
            modified_ms: modified_ms.ok_or_else(|| missing("modified_ms"))?,
            // Records from before these fields existed: as serde's defaults.
            storage_class: storage_class.flatten(),
            delete_marker: delete_marker.unwrap_or(false),
        })
    }
}

/// A MessagePack string's bytes, borrowed (field names need no UTF-8 check to be compared).
fn read_str<'a>(rd: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = read_str_len(rd).map_err(|e| Error::Decode(format!("object record: {e}")))? as usize;
    let Some((s, rest)) = rd.split_at_checked(len) else {
        return Err(Error::Decode("object record: truncated string".into()));
    };
    *rd = rest;
    Ok(s)
}

fn read_string(rd: &mut &[u8]) -> Result<String> {
    let (s, rest) =
        read_str_from_slice(*rd).map_err(|e| Error::Decode(format!("object record: {e}")))?;
    *rd = rest;
    Ok(s.to_owned())
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
            let record = ListedObject::read(v)?;
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
        let listed = ListedObject::read(&encode(&record)).unwrap();
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
        let listed = ListedObject::read(&encode(&record)).unwrap();
        assert!(listed.delete_marker);
        assert_eq!(listed.storage_class, None);
    }

    #[test]
    fn a_listed_object_reads_records_of_any_shape_and_refuses_broken_ones() {
        // Fields in another order, and an old record without `storage_class` and
        // `delete_marker` (serde's defaults apply, as they did for the whole record).
        #[derive(serde::Serialize)]
        struct Old<'a> {
            user_metadata: std::collections::BTreeMap<String, String>,
            modified_ms: i64,
            nested: Vec<(u32, &'a [u8], Option<f64>)>,
            etag: &'a str,
            size: u64,
        }
        let old = Old {
            user_metadata: [("a".to_string(), "b".to_string())].into(),
            modified_ms: -5,
            nested: vec![(1, b"xyz", Some(1.5)), (70_000, b"", None)],
            etag: "e",
            size: u64::MAX,
        };
        let listed = ListedObject::read(&encode(&old)).unwrap();
        assert_eq!(
            listed,
            ListedObject {
                size: u64::MAX,
                etag: "e".into(),
                modified_ms: -5,
                storage_class: None,
                delete_marker: false,
            }
        );
        // Every truncation of a real record is an error, never a panic or a wrong answer
        // (cut inside the fields it reads; cuts after them may still read all five).
        let record = crate::suite::object(vec![crate::suite::chunk(1)]);
        let whole = encode(&record);
        for cut in 0..whole.len() {
            if let Ok(l) = ListedObject::read(&whole[..cut]) {
                assert_eq!((l.size, &l.etag), (record.size, &record.etag), "cut {cut}");
            }
        }
        assert!(ListedObject::read(&whole[..20]).is_err());
        assert!(ListedObject::read(&[]).is_err());
        assert!(ListedObject::read(&[9, 0x80]).is_err(), "unknown version");
        // A record missing a required field.
        #[derive(serde::Serialize)]
        struct NoEtag {
            size: u64,
            modified_ms: i64,
        }
        let e = ListedObject::read(&encode(&NoEtag {
            size: 1,
            modified_ms: 2,
        }))
        .unwrap_err();
        assert!(e.to_string().contains("etag"), "{e}");
    }
}
