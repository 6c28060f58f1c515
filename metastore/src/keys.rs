//! Key encodings. Byte order of encoded keys equals S3 listing order (UTF-8 byte order of keys
//! within a bucket); bucket names cannot contain 0x00, so `bucket 0x00 key` never collides.

pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `bucket 0x00 key 0x00`: every version of one key. Since keys never contain 0x00 (the
/// smallest byte), versions sort by key first, like objects.
pub fn version_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.push(0);
    k
}

/// `bucket 0x00 key 0x00 sort`: `sort` orders a key's versions newest first (see
/// `store::versioning`).
pub fn version(bucket: &str, key: &str, sort: &str) -> Vec<u8> {
    let mut k = version_prefix(bucket, key);
    k.extend_from_slice(sort.as_bytes());
    k
}

/// `bucket 0x00 key 0x00 upload_id`: uploads list in S3 order (by key, then upload id, which
/// tessera generates in time order). Object keys never contain 0x00 (the gateway refuses them)
/// and upload ids are generated, so the last 0x00 separates the two.
pub fn upload(bucket: &str, upload_id: &str, key: &str) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Splits the part of an upload key after the bucket prefix into (key, upload id).
pub fn split_upload(rest: &[u8]) -> Option<(String, String)> {
    let at = rest.iter().rposition(|&b| b == 0)?;
    Some((
        String::from_utf8_lossy(&rest[..at]).into_owned(),
        String::from_utf8_lossy(&rest[at + 1..]).into_owned(),
    ))
}

pub fn part_prefix(upload_id: &str) -> Vec<u8> {
    let mut k = upload_id.as_bytes().to_vec();
    k.push(0);
    k
}

pub fn part(upload_id: &str, number: u32) -> Vec<u8> {
    let mut k = part_prefix(upload_id);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

pub fn gc(due_ms: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut k = due_ms.to_be_bytes().to_vec();
    k.extend_from_slice(hash);
    k
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// no such string exists (the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upload_keys_split_back() {
        let k = upload("bkt", "0001abc", "dir/file");
        let rest = &k[bucket_prefix("bkt").len()..];
        assert_eq!(
            split_upload(rest),
            Some(("dir/file".into(), "0001abc".into()))
        );
        assert!(
            upload("bkt", "z", "a") < upload("bkt", "a", "b"),
            "uploads sort by key first"
        );
    }

    proptest! {
        /// Encoded object keys sort like the S3 keys they encode, and never leak across buckets.
        #[test]
        fn object_key_order_matches_key_order(a in "\\PC{0,20}", b in "\\PC{0,20}") {
            let (ea, eb) = (object("bkt", &a), object("bkt", &b));
            prop_assert_eq!(ea.cmp(&eb), a.as_bytes().cmp(b.as_bytes()));
            prop_assert!(ea.starts_with(&bucket_prefix("bkt")));
            prop_assert!(!object("bkt-2", &a).starts_with(&bucket_prefix("bkt")));
        }

        #[test]
        fn prefix_end_bounds_the_prefix(p in proptest::collection::vec(any::<u8>(), 0..8), s in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut with = p.clone();
            with.extend_from_slice(&s);
            if let Some(end) = prefix_end(&p) {
                prop_assert!(with < end);
                prop_assert!(p < end);
            } else {
                prop_assert!(p.iter().all(|&b| b == 0xFF));
            }
        }
    }
}
