//! The built-in key store: SSE-KMS keys, and the data key of SSE-S3.
//!
//! A key is 32 random bytes, kept in the metadata only sealed under the master key
//! (`KmsKeyRecord::sealed`, bound to its name). Objects encrypted under a store key
//! (scheme 2) derive their chunk keys from it, so rotating the master key re-seals the store's
//! keys and rewrites no data. New SSE-S3 objects use the store key [`SSE_S3_KEY`], made the
//! first time it is needed; SSE-KMS ones the key the client names (or [`DEFAULT_KEY`]).
//!
//! Opened keys are cached for [`CACHE_FOR`]: a key disabled on this gateway stops serving at
//! once, one disabled through another gateway (shared etcd) within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metastore::{KmsKeyRecord, KmsKeys};
use serde::Serialize;

use super::ObjectService;
use super::sse::ChunkCipher;
use crate::error::{Error, Result};

/// The store key new SSE-S3 objects are sealed under; no name a user gives can be this one.
pub const SSE_S3_KEY: &str = "(sse-s3)";
/// The key SSE-KMS uses when the request names none (AWS would use its managed `aws/s3`
/// key); made the first time it is needed.
pub const DEFAULT_KEY: &str = "default";
/// How long an opened key is used before its record is read again.
const CACHE_FOR: Duration = Duration::from_secs(5);

/// A key as `admin kms key list` shows it (never its bytes).
#[derive(Debug, Clone, Serialize)]
pub struct KmsKeyInfo {
    pub name: String,
    pub enabled: bool,
    pub created_ms: i64,
    /// The master key it is sealed under.
    pub master_key_id: String,
}

/// What `admin kms rotate-master` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    pub master_key_id: String,
    /// Keys re-sealed from the previous master key to the current one.
    pub resealed: Vec<String>,
    /// Keys already sealed under the current one.
    pub unchanged: Vec<String>,
    /// Keys sealed under a master key this server has neither as current nor as previous.
    pub unopenable: Vec<String>,
}

/// An opened key, or `None` for a disabled one, and when its record was read.
type Cached = (Option<Arc<ChunkCipher>>, Instant);

/// Opened keys by name.
#[derive(Debug, Default)]
pub(crate) struct KeyCache(Mutex<HashMap<String, Cached>>);

impl KeyCache {
    fn get(&self, name: &str) -> Option<Option<Arc<ChunkCipher>>> {
        let cache = self.0.lock().unwrap();
        let (cipher, at) = cache.get(name)?;
        (at.elapsed() < CACHE_FOR).then(|| cipher.clone())
    }

    fn put(&self, name: &str, cipher: Option<Arc<ChunkCipher>>) {
        self.0
            .lock()
            .unwrap()
            .insert(name.to_owned(), (cipher, Instant::now()));
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// A name users may give a key: what AWS allows in an alias, and not too long.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !name.starts_with("aws/");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid key name {name:?}: 1 to 64 letters, digits, '-', '_', '.' or '/', not starting with aws/"
        )))
    }
}

/// The key name in what a request gives as `x-amz-server-side-encryption-aws-kms-key-id`:
/// the name itself, `alias/NAME`, or an ARN ending in `key/NAME` or `alias/NAME`.
pub fn key_name_of(key_id: &str) -> &str {
    let tail = key_id
        .strip_prefix("arn:")
        .and_then(|arn| arn.rsplit_once(':'))
        .map_or(key_id, |(_, resource)| resource);
    tail.strip_prefix("key/")
        .or_else(|| tail.strip_prefix("alias/"))
        .unwrap_or(tail)
}

fn info(name: &str, r: &KmsKeyRecord) -> KmsKeyInfo {
    KmsKeyInfo {
        name: name.to_owned(),
        enabled: r.enabled,
        created_ms: r.created_ms,
        master_key_id: r.master_key_id.clone(),
    }
}

impl ObjectService {
    fn current_master(&self) -> Result<&Arc<ChunkCipher>> {
        self.master_key
            .as_ref()
            .ok_or(Error::EncryptionNotConfigured)
    }

    /// The master key (current or previous) named `id`.
    pub(crate) fn master_named(&self, id: &str) -> Option<&Arc<ChunkCipher>> {
        [&self.master_key, &self.previous_master_key]
            .into_iter()
            .flatten()
            .find(|k| k.id() == id)
    }

    fn new_record(&self) -> Result<(KmsKeyRecord, [u8; 32])> {
        use ring::rand::SecureRandom;
        let master = self.current_master()?;
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| Error::Internal("the system's random source failed".into()))?;
        Ok((
            KmsKeyRecord {
                created_ms: super::now_ms(),
                enabled: true,
                master_key_id: master.id().to_owned(),
                sealed: Vec::new(),
            },
            secret,
        ))
    }

    /// Makes a key named `name`; an error if one exists.
    pub async fn kms_create_key(&self, name: &str) -> Result<KmsKeyInfo> {
        check_name(name)?;
        self.create_store_key(name, false).await
    }

    /// Makes `name` unless it exists (`existing_ok`); returns it as stored.
    async fn create_store_key(&self, name: &str, existing_ok: bool) -> Result<KmsKeyInfo> {
        let (mut record, secret) = self.new_record()?;
        record.sealed = self.current_master()?.wrap(name, &secret);
        let owned = name.to_owned();
        let stored = self
            .meta
            .update_kms_keys(move |keys| {
                if keys.keys.contains_key(&owned) {
                    return if existing_ok {
                        Ok(())
                    } else {
                        Err(metastore::Error::Refused)
                    };
                }
                keys.keys.insert(owned.clone(), record.clone());
                Ok(())
            })
            .await
            .map_err(|e| match e {
                metastore::Error::Refused => Error::KmsKeyExists(name.to_owned()),
                e => e.into(),
            })?;
        Ok(info(name, &stored.keys[name]))
    }

    pub async fn kms_list_keys(&self) -> Result<Vec<KmsKeyInfo>> {
        let keys = self.meta.kms_keys().await?;
        Ok(keys.keys.iter().map(|(n, r)| info(n, r)).collect())
    }

    /// Enables or disables a key: objects under a disabled key can be neither written nor read.
    pub async fn kms_enable_key(&self, name: &str, enabled: bool) -> Result<KmsKeyInfo> {
        let owned = name.to_owned();
        let stored = self
            .meta
            .update_kms_keys(move |keys| match keys.keys.get_mut(&owned) {
                Some(r) => {
                    r.enabled = enabled;
                    Ok(())
                }
                None => Err(metastore::Error::Refused),
            })
            .await
            .map_err(|e| match e {
                metastore::Error::Refused => Error::KmsKeyNotFound(name.to_owned()),
                e => e.into(),
            })?;
        self.kms_cache.clear();
        Ok(info(name, &stored.keys[name]))
    }

    /// Re-seals every key sealed under the previous master key under the current one. No
    /// object data is read or written.
    pub async fn kms_rotate_master(&self) -> Result<RotationReport> {
        let current = self.current_master()?.clone();
        let keys = self.meta.kms_keys().await?;
        let mut report = RotationReport {
            master_key_id: current.id().to_owned(),
            ..Default::default()
        };
        let mut resealed: HashMap<String, (String, Vec<u8>)> = HashMap::new();
        for (name, r) in &keys.keys {
            if r.master_key_id == current.id() {
                report.unchanged.push(name.clone());
                continue;
            }
            let secret = self
                .master_named(&r.master_key_id)
                .and_then(|m| m.unwrap(name, &r.sealed));
            match secret {
                Some(secret) => {
                    let sealed = current.wrap(name, &secret);
                    resealed.insert(name.clone(), (r.master_key_id.clone(), sealed));
                    report.resealed.push(name.clone());
                }
                None => report.unopenable.push(name.clone()),
            }
        }
        let new_id = current.id().to_owned();
        self.meta
            .update_kms_keys(move |keys| {
                for (name, (old_id, sealed)) in &resealed {
                    // Only a key still sealed as it was read: a concurrent rotation's work
                    // is kept.
                    if let Some(r) = keys.keys.get_mut(name)
                        && r.master_key_id == *old_id
                    {
                        r.master_key_id = new_id.clone();
                        r.sealed = sealed.clone();
                    }
                }
                Ok(())
            })
            .await?;
        self.kms_cache.clear();
        Ok(report)
    }

    /// The cipher of store key `name`, made first when it is one of the keys made on demand.
    pub(crate) async fn store_key_cipher(&self, name: &str) -> Result<Arc<ChunkCipher>> {
        if let Some(cached) = self.kms_cache.get(name) {
            return cached.ok_or_else(|| Error::KmsKeyDisabled(name.to_owned()));
        }
        let mut keys: KmsKeys = self.meta.kms_keys().await?;
        if !keys.keys.contains_key(name) && (name == SSE_S3_KEY || name == DEFAULT_KEY) {
            self.create_store_key(name, true).await?;
            keys = self.meta.kms_keys().await?;
        }
        let record = keys
            .keys
            .get(name)
            .ok_or_else(|| Error::KmsKeyNotFound(name.to_owned()))?;
        if !record.enabled {
            self.kms_cache.put(name, None);
            return Err(Error::KmsKeyDisabled(name.to_owned()));
        }
        let master = self.master_named(&record.master_key_id).ok_or_else(|| {
            Error::MasterKeyMissing(format!(
                "key {name:?} of the key store is sealed under master key {:?}, which this server does not have",
                record.master_key_id
            ))
        })?;
        let secret = master.unwrap(name, &record.sealed).ok_or_else(|| {
            Error::Internal(format!(
                "key {name:?} does not open under master key {:?}",
                record.master_key_id
            ))
        })?;
        let cipher = Arc::new(ChunkCipher::store_key(name, &secret));
        self.kms_cache.put(name, Some(cipher.clone()));
        Ok(cipher)
    }

    /// Which of the store's keys this server cannot open (for `admin check`).
    pub(crate) async fn unopenable_store_keys(&self) -> Result<Vec<String>> {
        let keys = self.meta.kms_keys().await?;
        Ok(keys
            .keys
            .iter()
            .filter(|(name, r)| {
                self.master_named(&r.master_key_id)
                    .and_then(|m| m.unwrap(name, &r.sealed))
                    .is_none()
            })
            .map(|(name, _)| name.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_name_the_key_in_every_form_aws_clients_send() {
        for given in [
            "backups",
            "alias/backups",
            "key/backups",
            "arn:aws:kms:us-east-1:123456789012:key/backups",
            "arn:aws:kms:us-east-1:123456789012:alias/backups",
        ] {
            assert_eq!(key_name_of(given), "backups", "{given}");
        }
        assert!(check_name("team-a/backups_2026.v1").is_ok());
        for bad in ["", "aws/s3", "a b", "(sse-s3)", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    fn service(
        meta: &metastore::MetaStore,
        current: Option<(&str, u8)>,
        previous: Option<(&str, u8)>,
    ) -> ObjectService {
        let disks: Vec<Arc<dyn erasure::ShardStore>> =
            vec![Arc::new(erasure::MemoryShardStore::new("d0"))];
        let chunks = erasure::ChunkStore::new(erasure::Layout::new(1, None).unwrap(), disks);
        let mut s = ObjectService::new(
            meta.clone(),
            Arc::new(erasure::Pools::new(Arc::new(chunks.unwrap()))),
            1 << 16,
            1024,
        );
        if let Some((id, b)) = current {
            s = s.with_master_key(Arc::new(ChunkCipher::new(id, &[b; 32])));
        }
        if let Some((id, b)) = previous {
            s = s.with_previous_master_key(Arc::new(ChunkCipher::new(id, &[b; 32])));
        }
        s
    }

    async fn open(
        s: &ObjectService,
        e: &metastore::Encryption,
        sealed: &[u8],
    ) -> Result<bytes::Bytes> {
        let cipher = s.sealer(Some(e), None).await?.unwrap();
        cipher.open_inline(sealed)
    }

    fn kms(key: &str) -> crate::Encrypt {
        crate::Encrypt::Kms {
            key: Some(key.into()),
            context: None,
            bucket_key: false,
        }
    }

    #[tokio::test]
    async fn keys_are_made_disabled_and_survive_a_master_key_rotation() {
        let meta = metastore::MetaStore::memory();
        let bucket = metastore::BucketRecord::new(0);
        let old = service(&meta, Some(("old", 1)), None);
        old.kms_create_key("backups").await.unwrap();
        assert!(matches!(
            old.kms_create_key("backups").await,
            Err(Error::KmsKeyExists(_))
        ));
        let e = old.encryption_for(&kms("backups"), &bucket).await.unwrap();
        let e = e.unwrap();
        assert_eq!((e.key_id.as_str(), e.scheme), ("backups", 2));
        let sse_s3 = old
            .encryption_for(&crate::Encrypt::ServerKey, &bucket)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sse_s3.key_id, SSE_S3_KEY, "made on first use");
        assert!(matches!(
            old.encryption_for(&kms("nope"), &bucket).await,
            Err(Error::KmsKeyNotFound(_))
        ));
        let sealed = old
            .sealer(Some(&e), None)
            .await
            .unwrap()
            .unwrap()
            .seal_inline(b"data");

        // Disabled: neither new writes nor reads, until enabled again.
        old.kms_enable_key("backups", false).await.unwrap();
        assert!(matches!(
            old.encryption_for(&kms("backups"), &bucket).await,
            Err(Error::KmsKeyDisabled(_))
        ));
        assert!(matches!(
            old.sealer(Some(&e), None).await,
            Err(Error::KmsKeyDisabled(_))
        ));
        old.kms_enable_key("backups", true).await.unwrap();

        // A new master key alone cannot open the keys; with the old one as previous it can,
        // and after the rotation it no longer needs it.
        let new_only = service(&meta, Some(("new", 2)), None);
        assert!(matches!(
            new_only.sealer(Some(&e), None).await,
            Err(Error::MasterKeyMissing(_))
        ));
        assert_eq!(new_only.unopenable_store_keys().await.unwrap().len(), 2);
        let rotating = service(&meta, Some(("new", 2)), Some(("old", 1)));
        assert_eq!(&open(&rotating, &e, &sealed).await.unwrap()[..], b"data");
        let report = rotating.kms_rotate_master().await.unwrap();
        assert_eq!(
            report.resealed,
            vec![SSE_S3_KEY.to_owned(), "backups".into()]
        );
        assert!(report.unopenable.is_empty());
        let new_only = service(&meta, Some(("new", 2)), None);
        assert_eq!(&open(&new_only, &e, &sealed).await.unwrap()[..], b"data");
        assert!(new_only.unopenable_store_keys().await.unwrap().is_empty());
        let listed = new_only.kms_list_keys().await.unwrap();
        assert!(listed.iter().all(|k| k.master_key_id == "new"));
        let report = new_only.kms_rotate_master().await.unwrap();
        assert_eq!(report.unchanged.len(), 2);
        assert!(report.resealed.is_empty());
    }

    #[tokio::test]
    async fn objects_from_before_the_key_store_read_with_the_master_key_current_or_previous() {
        let meta = metastore::MetaStore::memory();
        let scheme1 = metastore::Encryption {
            key_id: "old".into(),
            scheme: crate::sse::SCHEME_V1,
            customer: None,
            kms: None,
        };
        let sealed = ChunkCipher::new("old", &[1; 32]).seal_inline(b"early");
        for s in [
            service(&meta, Some(("old", 1)), None),
            service(&meta, Some(("new", 2)), Some(("old", 1))),
        ] {
            let cipher = s.sealer(Some(&scheme1), None).await.unwrap().unwrap();
            assert_eq!(&cipher.open_inline(&sealed).unwrap()[..], b"early");
        }
        let new_only = service(&meta, Some(("new", 2)), None);
        assert!(matches!(
            new_only.sealer(Some(&scheme1), None).await,
            Err(Error::MasterKeyMissing(_))
        ));
    }

    #[test]
    fn a_store_key_opens_only_under_its_master_key_and_name() {
        let master = ChunkCipher::new("m1", &[1; 32]);
        let sealed = master.wrap("k", &[7; 32]);
        assert_eq!(master.unwrap("k", &sealed), Some([7; 32]));
        assert_eq!(master.unwrap("other", &sealed), None, "bound to its name");
        assert_eq!(ChunkCipher::new("m2", &[2; 32]).unwrap("k", &sealed), None);
        assert_ne!(
            master.wrap("k", &[7; 32]),
            sealed,
            "a fresh nonce each time"
        );
        assert!(!sealed.windows(8).any(|w| w == [7u8; 8]));
    }
}
