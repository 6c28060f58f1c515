//! Stored records and their versioned encoding.
//!
//! Every value starts with a one-byte record version followed by MessagePack with named fields,
//! so fields can be added (with `#[serde(default)]`) without a migration, and a future
//! incompatible change bumps the version byte and gets an explicit upgrade path.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const RECORD_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    rmp_serde::encode::write_named(&mut out, value).expect("in-memory encoding cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(payload(bytes)?).map_err(|e| Error::Decode(e.to_string()))
}

/// The MessagePack of a stored value, after its version byte.
pub(crate) fn payload(bytes: &[u8]) -> Result<&[u8]> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, rest)) => Ok(rest),
        Some((v, _)) => Err(Error::Decode(format!("unknown record version {v}"))),
        None => Err(Error::Decode("empty record".into())),
    }
}

/// A bucket's versioning state. Once enabled it can be suspended but never turned off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ms: i64,
    #[serde(default)]
    pub versioning: Versioning,
    /// The id of the user that created the bucket; `None` is the root user (and every bucket
    /// made before users existed).
    #[serde(default)]
    pub owner: Option<String>,
    /// The bucket policy as the client sent it (JSON), validated before it is stored.
    #[serde(default)]
    pub policy: Option<String>,
    /// The canned ACL (`public-read`, ...); `None` is `private`.
    #[serde(default)]
    pub acl: Option<String>,
    /// The region the bucket was created in (GetBucketLocation); `None`: made before regions
    /// were recorded, in the server's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Bucket tags (PutBucketTagging).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Ownership controls: `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`;
    /// `None`: none set (ACLs work, objects owned by their writer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// The bucket's public access block, when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    /// CORS rules (PutBucketCors), in the order given; empty: no CORS configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<CorsRule>,
    /// ACL grants to users, besides the owner's FULL_CONTROL and the canned `acl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<AclGrant>,
    /// Default encryption (PutBucketEncryption): new objects are encrypted (SSE-S3) even when
    /// their request does not ask.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypt_by_default: bool,
    /// With `encrypt_by_default`: SSE-KMS under this key of the key store, not SSE-S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_kms_key: Option<String>,
    /// With `default_kms_key`: the default rule enables S3 Bucket Keys (`BucketKeyEnabled`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_bucket_key: bool,
    /// Object lock is enabled (for good: versioning cannot be suspended), with the default
    /// retention new versions get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockConfig>,
    /// Lifecycle rules (PutBucketLifecycleConfiguration), in the order given; empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<LifecycleRule>,
    /// Event notification rules (PutBucketNotificationConfiguration); empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotifyRule>,
}

/// One event notification rule: events of these kinds, on keys with this prefix and suffix,
/// go to the operator's target `target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRule {
    pub id: String,
    /// The target's name (`--notify-webhook NAME=URL`).
    pub target: String,
    /// Event kinds as S3 names them: `s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, ...
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

/// An event waiting in the persistent queue for delivery to one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Without the `s3:` prefix: `ObjectCreated:Put`, `LifecycleExpiration:Delete`, ...
    pub name: String,
    pub bucket: String,
    pub key: String,
    /// The object's size and ETag (created events; 0 and empty for removals).
    pub size: u64,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub time_ms: i64,
    /// The notification rule that matched (S3's `configurationId`).
    pub rule_id: String,
    pub target: String,
    /// Who made the request (an access key's user, `root`), and from where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Delivery attempts that failed so far, and when the next may be made.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub next_attempt_ms: i64,
}

/// One lifecycle rule: which versions it selects and what it does to them. Lengths are in
/// lifecycle days (a real day outside tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    pub filter: LifecycleFilter,
    /// Current versions expire this many days after they were written...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// ... or on this date (midnight UTC, in ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_ms: Option<i64>,
    /// A delete marker left with no other version of its key is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired_object_delete_marker: bool,
    /// Noncurrent versions are removed this many days after they became noncurrent...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// ... except the newest this many of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
    /// Multipart uploads are aborted this many days after they were started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_days: Option<u32>,
}

/// What a lifecycle rule applies to: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFilter {
    /// The rule was written with the old rule-level `<Prefix>`, not a `<Filter>` (answered
    /// back the same way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_prefix: bool,
    /// The conditions were written inside `<And>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub and: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
}

/// A bucket's object lock configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retention: Option<DefaultRetention>,
}

/// The retention a new version gets when its request names none: `mode` (GOVERNANCE or
/// COMPLIANCE) for `days` or `years` (one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<u32>,
}

/// A version's lock: a retention (`mode` until `retain_until_ms`) and a legal hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// An ACL grant to a user: `READ`, `WRITE`, `READ_ACP`, `WRITE_ACP` or `FULL_CONTROL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrant {
    /// The user's id (not its name: a user re-created under an old name gets nothing).
    pub user: String,
    pub permission: String,
}

/// One CORS rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age_seconds: Option<i32>,
}

/// S3's four public access block settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse requests that set an ACL granting public access.
    pub block_public_acls: bool,
    /// Grant nothing through public ACLs.
    pub ignore_public_acls: bool,
    /// Refuse a bucket policy that grants public access.
    pub block_public_policy: bool,
    /// A public bucket policy grants nothing to anonymous callers.
    pub restrict_public_buckets: bool,
}

impl BucketRecord {
    pub fn new(created_ms: i64) -> Self {
        BucketRecord {
            created_ms,
            versioning: Versioning::Unversioned,
            owner: None,
            policy: None,
            acl: None,
            region: None,
            tags: Vec::new(),
            ownership: None,
            public_access_block: None,
            cors: Vec::new(),
            grants: Vec::new(),
            encrypt_by_default: false,
            default_kms_key: None,
            default_bucket_key: false,
            object_lock: None,
            lifecycle: Vec::new(),
            notifications: Vec::new(),
        }
    }
}

/// A reference from a manifest to one content-addressed chunk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ChunkRef {
    pub hash: [u8; 32],
    pub len: u32,
    /// The pool the request that made this reference has just stored the chunk in: where the
    /// chunk's refcount record says it lives if this reference creates that record. Never
    /// stored in a manifest: where a chunk lives is recorded once, in its refcount record, so
    /// moving it between pools rewrites no manifest. Not part of equality.
    #[serde(skip)]
    pub stored_in: u32,
    /// The length of the data the chunk holds when it is stored compressed (zstd, before any
    /// sealing); 0: stored as it is.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub plain_len: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl ChunkRef {
    pub fn new(hash: [u8; 32], len: u32) -> Self {
        ChunkRef {
            hash,
            len,
            stored_in: 0,
            plain_len: 0,
        }
    }

    /// How many bytes of object data the chunk holds: `plain_len` when it is compressed,
    /// else its stored length less `overhead` (the seal of an encrypted chunk).
    pub fn data_len(&self, overhead: u32) -> u32 {
        if self.plain_len > 0 {
            self.plain_len
        } else {
            self.len.saturating_sub(overhead)
        }
    }
}

impl PartialEq for ChunkRef {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.len == other.len
    }
}

impl Eq for ChunkRef {}

impl std::hash::Hash for ChunkRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
        self.len.hash(state);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// Small objects live in the metastore itself.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The object's bytes are these chunks, in order.
    Chunks(Vec<ChunkRef>),
}

impl ObjectData {
    pub fn chunks(&self) -> &[ChunkRef] {
        match self {
            ObjectData::Inline(_) => &[],
            ObjectData::Chunks(c) => c,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header as an HTTP date.
    pub expires: Option<String>,
}

/// One part of an object assembled by a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    /// How many of the object's chunks belong to this part.
    pub chunks: u32,
    /// The part's checksum in the upload's algorithm (name, base64), as GetObjectAttributes
    /// lists it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// `None` is the S3 "null" version.
    pub version_id: Option<String>,
    pub size: u64,
    /// ETag without quotes: MD5 hex, or `<md5 of md5s>-<parts>` for multipart objects.
    pub etag: String,
    pub modified_ms: i64,
    pub content: ContentHeaders,
    pub user_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub storage_class: Option<String>,
    #[serde(default)]
    pub delete_marker: bool,
    pub data: ObjectData,
    #[serde(default)]
    pub parts: Vec<PartInfo>,
    /// The canned ACL (`public-read`, ...); `None` is `private`.
    #[serde(default)]
    pub acl: Option<String>,
    /// The multipart upload this version was completed from: a CompleteMultipartUpload
    /// retried after it succeeded is answered with this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// ACL grants to users, besides the owner's FULL_CONTROL and the canned `acl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<AclGrant>,
    /// How the data is encrypted at rest (`None`: in clear).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Object lock: retention and legal hold (`None`: neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<ObjectLock>,
}

/// Server-side encryption of an object's data: its chunks (or inline bytes) are sealed under
/// keys derived from the named master key (SSE-S3) or from the client's key (SSE-C, with
/// `customer` set), by the numbered scheme (see the object service's `sse` module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub key_id: String,
    pub scheme: u8,
    /// SSE-C: recognises the client's key, which is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerKeyCheck>,
    /// SSE-KMS (`key_id` names a key of the key store), with the client's encryption context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsUse>,
}

impl Encryption {
    /// What `admin check` counts this version under: its master key's name (scheme 1, SSE-C
    /// under `(customer key)`), or `kms:NAME` for a key of the key store (scheme 2).
    pub fn key_label(&self) -> String {
        if self.scheme >= 2 {
            format!("kms:{}", self.key_id)
        } else {
            self.key_id.clone()
        }
    }
}

/// How an SSE-KMS object was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsUse {
    /// `x-amz-server-side-encryption-context` as the client sent it (base64 of a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The client asked for an S3 Bucket Key (`x-amz-server-side-encryption-bucket-key-enabled`,
    /// or the bucket's default). Tessera's chunk keys always come from a key opened once and
    /// cached, which is what a bucket key is for; the flag is kept to be answered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
}

/// The keys of the built-in key store (SSE-KMS, and the data key of SSE-S3), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeys {
    pub keys: BTreeMap<String, KmsKeyRecord>,
}

/// One key of the key store: 32 random bytes, sealed under the master key named here (the
/// store never holds a key in clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeyRecord {
    pub created_ms: i64,
    pub enabled: bool,
    pub master_key_id: String,
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// A salted keyed hash of an SSE-C key: a wrong key is refused without storing the right one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerKeyCheck {
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
}

impl ObjectRecord {
    /// A delete marker: a version that says "deleted" and holds no data.
    pub fn delete_marker(modified_ms: i64) -> Self {
        ObjectRecord {
            version_id: None,
            size: 0,
            etag: String::new(),
            modified_ms,
            content: ContentHeaders::default(),
            user_metadata: BTreeMap::new(),
            checksums: BTreeMap::new(),
            tags: Vec::new(),
            storage_class: None,
            delete_marker: true,
            data: ObjectData::Inline(Vec::new()),
            parts: Vec::new(),
            acl: None,
            upload_id: None,
            grants: Vec::new(),
            encryption: None,
            lock: None,
        }
    }
}

/// Reference count of one chunk; a count of 0 means "queued for garbage collection".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    pub count: u64,
    pub len: u32,
    /// The pool holding the chunk's shards. Records written before pools existed have none:
    /// pool 0, the disks the deployment was created with.
    #[serde(default)]
    pub pool: u32,
    /// Garbage collection is deleting the shards (count 0): a writer must neither reuse the
    /// chunk nor write it again until the record is gone. Absent in older records: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// A tombstone (shared stores only): garbage collection or the orphan sweep deleted the
    /// shards. Read as "not stored"; kept for a while (`TOMBSTONE_KEEP_MS`) so that a write
    /// which stored the chunk itself before the deletion, and commits after it, is refused
    /// instead of referencing deleted shards (its key revision dates the deletion).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub collected: bool,
    /// A tombstone's end (ms since the epoch): garbage collection removes it then.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kept_until_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RefRecord {
    /// The record as a chunk's state: `None` for a tombstone.
    pub fn live(self) -> Option<RefRecord> {
        (!self.collected).then_some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub initiated_ms: i64,
    /// The checksum algorithm named at creation (parts carry it, completion composes it).
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`: how completion combines the parts' checksums (absent:
    /// composite, as every upload made before the type was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Metadata the completed object will carry (its data and size are filled at completion).
    pub template: ObjectRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub chunks: Vec<ChunkRef>,
    /// Checksums of the part's bytes by algorithm name (base64), as for objects.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
}

/// A user: its built-in policy, the buckets (and key prefixes) it is limited to, and its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Random and never reused, so a user re-created under an old name owns nothing of the
    /// old one's.
    pub id: String,
    pub policy: String,
    /// `BUCKET` or `BUCKET/prefix`; empty means every bucket.
    pub scopes: Vec<String>,
    pub enabled: bool,
    pub created_ms: i64,
    pub keys: Vec<AccessKeyRecord>,
    /// Named identity policies attached to the user (see [`IamRecord`]), besides `policy`.
    #[serde(default)]
    pub policies: Vec<String>,
}

/// The named identity policies and the groups, one store-wide record (they are few and
/// change rarely; one record keeps every change one guarded transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamRecord {
    /// Policy name -> the JSON document as the administrator gave it (validated before).
    pub policies: BTreeMap<String, String>,
    pub groups: BTreeMap<String, GroupRecord>,
}

/// A group: its members (user names) and the named policies it gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub members: Vec<String>,
    pub policies: Vec<String>,
    pub created_ms: i64,
}

/// One access key. The secret is sealed by the gateway before it gets here: the metastore
/// never holds it in plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key: String,
    #[serde(with = "serde_bytes")]
    pub sealed_secret: Vec<u8>,
    pub created_ms: i64,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key", &self.access_key)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_byte_is_checked() {
        let r = BucketRecord::new(5);
        let mut bytes = encode(&r);
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(decode::<BucketRecord>(&bytes).unwrap(), r);
        bytes[0] = 99;
        assert!(decode::<BucketRecord>(&bytes).is_err());
        assert!(decode::<BucketRecord>(&[]).is_err());
    }

    #[test]
    fn records_from_before_compression_and_the_key_store_read() {
        #[derive(serde::Serialize)]
        struct OldChunk {
            hash: [u8; 32],
            len: u32,
        }
        #[derive(serde::Serialize)]
        struct OldEncryption {
            key_id: String,
            scheme: u8,
        }
        let chunk: ChunkRef = decode(&encode(&OldChunk {
            hash: [3; 32],
            len: 77,
        }))
        .unwrap();
        assert_eq!((chunk.len, chunk.plain_len, chunk.data_len(0)), (77, 0, 77));
        let e: Encryption = decode(&encode(&OldEncryption {
            key_id: "main".into(),
            scheme: 1,
        }))
        .unwrap();
        assert_eq!(e.key_label(), "main");
        assert_eq!((e.customer, e.kms), (None, None));
        // And what is new is written only where it is set.
        let plain = encode(&ChunkRef::new([3; 32], 77));
        let compressed = encode(&ChunkRef {
            plain_len: 1 << 20,
            ..ChunkRef::new([3; 32], 77)
        });
        assert!(compressed.len() > plain.len());
        assert_eq!(
            decode::<ChunkRef>(&compressed).unwrap().data_len(16),
            1 << 20
        );
        assert_eq!(decode::<ChunkRef>(&plain).unwrap().data_len(16), 61);
    }

    #[test]
    fn inline_data_is_stored_compactly() {
        let rec = ObjectData::Inline(vec![200u8; 1000]);
        assert!(encode(&rec).len() < 1100);
    }
}
