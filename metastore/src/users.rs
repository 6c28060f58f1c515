//! Users, bucket access settings (owner, policy, ACL) and store-wide settings.
//!
//! Secrets reach this crate already sealed by the gateway; policies are stored as the text the
//! client sent, after the gateway validated them. This module only keeps them consistent.

use crate::kv::Tree;
use crate::records::{BucketRecord, IamRecord, KmsKeys, UserRecord, decode, encode};
use crate::store::MetaStore;
use crate::txn::Reader;
use crate::{Error, Result};

/// Store-wide settings live in `Tree::Meta` under this prefix, apart from the store's own keys.
const SETTING_PREFIX: &[u8] = b"setting/";

/// The setting that holds the [`IamRecord`].
const IAM_SETTING: &str = "iam";

/// The setting that holds the key store ([`KmsKeys`]).
const KMS_SETTING: &str = "kms-keys";

fn setting_key(name: &str) -> Vec<u8> {
    [SETTING_PREFIX, name.as_bytes()].concat()
}

impl MetaStore {
    pub async fn list_users(&self) -> Result<Vec<(String, UserRecord)>> {
        self.run(|s| {
            let mut out = Vec::new();
            crate::kv::scan_all(s.kv.as_ref(), Tree::Users, |(k, v)| {
                out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    pub async fn create_user(&self, name: &str, record: UserRecord) -> Result<()> {
        let name = name.to_owned();
        self.txn(move |_, tx| {
            if tx.get_raw(Tree::Users, name.as_bytes())?.is_some() {
                return Err(Error::UserExists);
            }
            tx.put(Tree::Users, name.as_bytes(), encode(&record));
            Ok(())
        })
        .await
    }

    /// Changes a user under the write lock and returns the stored result. `change` may refuse
    /// with an error, and then nothing is written.
    pub async fn update_user(
        &self,
        name: &str,
        change: impl Fn(&mut UserRecord) -> Result<()> + Send + 'static,
    ) -> Result<UserRecord> {
        let name = name.to_owned();
        self.txn(move |_, tx| {
            let mut record: UserRecord = tx
                .get(Tree::Users, name.as_bytes())?
                .ok_or(Error::NoSuchUser)?;
            change(&mut record)?;
            tx.put(Tree::Users, name.as_bytes(), encode(&record));
            Ok(record)
        })
        .await
    }

    /// Removes a user; the buckets it owned pass to the root user in the same batch, so no
    /// bucket is ever left with an owner that does not exist.
    pub async fn remove_user(&self, name: &str) -> Result<UserRecord> {
        let name = name.to_owned();
        self.txn(move |_, tx| {
            let record: UserRecord = tx
                .get(Tree::Users, name.as_bytes())?
                .ok_or(Error::NoSuchUser)?;
            for (k, v) in tx.scan(Tree::Buckets, &[], None, usize::MAX)? {
                let bucket: BucketRecord = decode(&v)?;
                if bucket.owner.as_deref() == Some(record.id.as_str()) {
                    // Read again by key: a bucket deleted meanwhile must not come back as a
                    // re-owned one.
                    let Some(mut bucket) = tx.get::<BucketRecord>(Tree::Buckets, &k)? else {
                        continue;
                    };
                    bucket.owner = None;
                    tx.put(Tree::Buckets, k, encode(&bucket));
                }
            }
            tx.delete(Tree::Users, name.as_bytes());
            Ok(record)
        })
        .await
    }

    /// Changes a bucket's record (policy, ACL) in one transaction; returns the result.
    pub async fn update_bucket(
        &self,
        name: &str,
        change: impl Fn(&mut BucketRecord) + Send + 'static,
    ) -> Result<BucketRecord> {
        let name = name.to_owned();
        self.txn(move |_, tx| {
            let mut record: BucketRecord = tx
                .get(Tree::Buckets, name.as_bytes())?
                .ok_or(Error::NoSuchBucket)?;
            change(&mut record);
            tx.put(Tree::Buckets, name.as_bytes(), encode(&record));
            Ok(record)
        })
        .await
    }

    /// A counter that grows whenever another gateway may have changed the users, policies or
    /// groups (a watch on etcd); `None` when no other process writes them.
    pub fn users_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        let iam = setting_key(IAM_SETTING);
        self.inner
            .kv
            .watch(&[(Tree::Users, &[]), (Tree::Meta, iam.as_slice())])
    }

    /// The named policies and groups (empty before the first is added).
    pub async fn iam_record(&self) -> Result<IamRecord> {
        match self.setting(IAM_SETTING).await? {
            Some(bytes) => decode(&bytes),
            None => Ok(IamRecord::default()),
        }
    }

    /// Changes the named policies and groups in one transaction, with the users as they are
    /// now (a change may check them, as a group member must exist); returns the result.
    /// `change` may refuse with an error, and then nothing is written.
    pub async fn update_iam(
        &self,
        change: impl Fn(&mut IamRecord, &[(String, UserRecord)]) -> Result<()> + Send + 'static,
    ) -> Result<IamRecord> {
        let key = setting_key(IAM_SETTING);
        self.txn(move |_, tx| {
            let mut record: IamRecord = tx.get(Tree::Meta, &key)?.unwrap_or_default();
            let mut users = Vec::new();
            for (k, v) in tx.scan(Tree::Users, &[], None, usize::MAX)? {
                users.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
            }
            change(&mut record, &users)?;
            tx.put(Tree::Meta, key.clone(), encode(&record));
            Ok(record)
        })
        .await
    }

    /// The keys of the built-in key store (empty before the first is made).
    pub async fn kms_keys(&self) -> Result<KmsKeys> {
        match self.setting(KMS_SETTING).await? {
            Some(bytes) => decode(&bytes),
            None => Ok(KmsKeys::default()),
        }
    }

    /// Changes the key store in one transaction; returns the result. `change` may refuse with
    /// an error, and then nothing is written.
    pub async fn update_kms_keys(
        &self,
        change: impl Fn(&mut KmsKeys) -> Result<()> + Send + 'static,
    ) -> Result<KmsKeys> {
        let key = setting_key(KMS_SETTING);
        self.txn(move |_, tx| {
            let mut record: KmsKeys = tx.get(Tree::Meta, &key)?.unwrap_or_default();
            change(&mut record)?;
            tx.put(Tree::Meta, key.clone(), encode(&record));
            Ok(record)
        })
        .await
    }

    pub async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let key = setting_key(name);
        self.run(move |s| s.kv.get(Tree::Meta, &key)).await
    }

    /// Stores a setting unless one exists and `replace` is false; returns the value now stored.
    pub async fn put_setting(&self, name: &str, value: Vec<u8>, replace: bool) -> Result<Vec<u8>> {
        let key = setting_key(name);
        self.txn(move |_, tx| {
            if !replace && let Some(existing) = tx.get_raw(Tree::Meta, &key)? {
                return Ok(existing);
            }
            tx.put(Tree::Meta, key.clone(), value.clone());
            Ok(value.clone())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::AccessKeyRecord;

    fn user(id: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            policy: "readonly".into(),
            scopes: vec!["b".into()],
            enabled: true,
            created_ms: 1,
            keys: vec![AccessKeyRecord {
                access_key: "AK1".into(),
                sealed_secret: vec![1, 2, 3],
                created_ms: 1,
            }],
            policies: Vec::new(),
        }
    }

    #[tokio::test]
    async fn policies_and_groups_change_in_one_record() {
        let m = MetaStore::memory();
        assert_eq!(m.iam_record().await.unwrap(), IamRecord::default());
        m.create_user("alice", user("id-a")).await.unwrap();
        let after = m
            .update_iam(|r, users| {
                assert_eq!(users.len(), 1);
                r.policies.insert("p".into(), "{}".into());
                r.groups
                    .entry("g".into())
                    .or_default()
                    .members
                    .push("alice".into());
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(m.iam_record().await.unwrap(), after);
        // A refused change writes nothing.
        assert!(
            m.update_iam(|r, _| {
                r.policies.clear();
                Err(Error::NoSuchUser)
            })
            .await
            .is_err()
        );
        assert_eq!(m.iam_record().await.unwrap().policies.len(), 1);
    }

    #[test]
    fn a_user_record_from_before_named_policies_reads() {
        #[derive(serde::Serialize)]
        struct OldUser {
            id: String,
            policy: String,
            scopes: Vec<String>,
            enabled: bool,
            created_ms: i64,
            keys: Vec<AccessKeyRecord>,
        }
        let old = encode(&OldUser {
            id: "id-o".into(),
            policy: "readonly".into(),
            scopes: vec![],
            enabled: true,
            created_ms: 5,
            keys: vec![],
        });
        let read: UserRecord = decode(&old).unwrap();
        assert_eq!(read.id, "id-o");
        assert!(read.policies.is_empty());
    }

    #[tokio::test]
    async fn users_are_created_once_updated_and_removed() {
        let m = MetaStore::memory();
        m.create_user("alice", user("id-a")).await.unwrap();
        assert!(matches!(
            m.create_user("alice", user("id-x")).await,
            Err(Error::UserExists)
        ));
        let after = m
            .update_user("alice", |u| {
                u.enabled = false;
                Ok(())
            })
            .await
            .unwrap();
        assert!(!after.enabled);
        // A refused change writes nothing.
        assert!(
            m.update_user("alice", |u| {
                u.keys.clear();
                Err(Error::NoSuchUser)
            })
            .await
            .is_err()
        );
        let users = m.list_users().await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].1.keys.len(), 1);
        assert!(!users[0].1.enabled);
        assert!(matches!(
            m.update_user("bob", |_| Ok(())).await,
            Err(Error::NoSuchUser)
        ));
        m.remove_user("alice").await.unwrap();
        assert!(m.list_users().await.unwrap().is_empty());
        assert!(matches!(
            m.remove_user("alice").await,
            Err(Error::NoSuchUser)
        ));
    }

    #[tokio::test]
    async fn removing_a_user_hands_its_buckets_to_root() {
        let m = MetaStore::memory();
        m.create_user("alice", user("id-a")).await.unwrap();
        for (name, owner) in [
            ("mine", Some("id-a")),
            ("other", Some("id-b")),
            ("root", None),
        ] {
            let mut rec = BucketRecord::new(1);
            rec.owner = owner.map(str::to_owned);
            m.create_bucket(name, rec).await.unwrap();
        }
        m.remove_user("alice").await.unwrap();
        let owners: Vec<_> = m
            .list_buckets()
            .await
            .unwrap()
            .into_iter()
            .map(|(n, r)| (n, r.owner))
            .collect();
        assert_eq!(
            owners,
            vec![
                ("mine".to_owned(), None),
                ("other".to_owned(), Some("id-b".to_owned())),
                ("root".to_owned(), None)
            ]
        );
    }

    #[tokio::test]
    async fn bucket_settings_and_store_settings_persist() {
        let m = MetaStore::memory();
        assert!(matches!(
            m.update_bucket("b", |_| ()).await,
            Err(Error::NoSuchBucket)
        ));
        m.create_bucket("b", BucketRecord::new(1)).await.unwrap();
        m.update_bucket("b", |r| r.policy = Some("{}".into()))
            .await
            .unwrap();
        let rec = m.get_bucket("b").await.unwrap().unwrap();
        assert_eq!(rec.policy.as_deref(), Some("{}"));
        assert_eq!(m.setting("k").await.unwrap(), None);
        assert_eq!(m.put_setting("k", vec![1], false).await.unwrap(), vec![1]);
        // Without `replace`, the first value wins (two starts racing to create a key).
        assert_eq!(m.put_setting("k", vec![2], false).await.unwrap(), vec![1]);
        assert_eq!(m.put_setting("k", vec![3], true).await.unwrap(), vec![3]);
        assert_eq!(m.setting("k").await.unwrap(), Some(vec![3]));
    }
}
