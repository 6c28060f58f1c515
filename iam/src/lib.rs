//! Identities: users and their access keys, the admin operations that change them, the
//! in-memory directory the request path reads (no metastore read per request), and the
//! sealing of secrets at rest.
//!
//! Main types: [`Users`] (the directory and its changes), [`UserEntry`] (a user as the request
//! path sees it, with its parsed identity policy), [`Sealer`] (XChaCha20-Poly1305 under the
//! users' data key), [`Error`].
//!
//! Every change is one metastore commit followed by a rebuild of the directory before the
//! admin call answers, so a disabled user or a removed key is refused from the next request on.
//!
//! It depends on `metastore` and `policy` only: no HTTP, no S3 types. Signature checks and the
//! access decision are the gateway's; this crate answers "who holds this key, with which
//! secret and policy".

mod error;
mod groups;
mod sealing;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use metastore::{AccessKeyRecord, MetaStore, UserRecord};
use policy::{Builtin, Policy};
use serde::Serialize;

pub use error::Error;

type UserResult<T> = Result<T, Error>;

pub use sealing::{Sealer, load_data_key};

/// One user as the request path sees it.
#[derive(Debug)]
pub struct UserEntry {
    pub name: String,
    pub id: String,
    pub enabled: bool,
    pub policy: Policy,
    /// The `owner` policy: full access to the buckets this user owns.
    pub owns_buckets: bool,
}

/// An access key's secret: redacted in `Debug` output, zeroized when dropped.
#[derive(Clone, Debug)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

#[derive(Default)]
struct Directory {
    /// Access key -> (user name, secret).
    keys: HashMap<String, (String, Secret)>,
    users: HashMap<String, Arc<UserEntry>>,
    names_by_id: HashMap<String, String>,
}

/// Why a key is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    Unknown,
    Disabled,
}

/// What `user add` and `user key add` answer: the only place a secret leaves the server.
#[derive(Serialize)]
pub struct NewKey {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub policy: String,
    pub buckets: Vec<String>,
}

/// A user as `user list` shows it: no secrets.
#[derive(Serialize)]
pub struct UserSummary {
    pub name: String,
    pub policy: String,
    pub buckets: Vec<String>,
    /// Named policies attached to the user itself.
    pub policies: Vec<String>,
    /// Groups the user is a member of.
    pub groups: Vec<String>,
    pub enabled: bool,
    pub access_keys: Vec<String>,
    /// RFC 3339.
    pub created: String,
}

pub struct Users {
    meta: MetaStore,
    /// `Err` while the data key cannot be opened: users are locked, root still works.
    sealer: Result<Sealer, String>,
    root_access_key: String,
    directory: RwLock<Arc<Directory>>,
    /// Serialises changes so the directory is rebuilt in commit order; holds the records
    /// the directory was last built from.
    changes: tokio::sync::Mutex<Loaded>,
}

/// The records a directory is built from: the users, and the named policies and groups.
#[derive(Debug, Default, PartialEq)]
struct Loaded {
    users: Vec<(String, metastore::UserRecord)>,
    iam: metastore::IamRecord,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("locked", &self.sealer.as_ref().err())
            .finish_non_exhaustive()
    }
}

const ACCESS_KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `len` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
fn random_string(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in sealing::random_bytes::<64>() {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// IAM's user-name rule.
fn check_name(name: &str) -> UserResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid user name {name:?}: 1-64 characters of A-Z a-z 0-9 + = , . @ _ -"
        )))
    }
}

/// `BUCKET` or `BUCKET/prefix`, without wildcards (they would widen the scope unseen).
fn check_scope(scope: &str) -> UserResult<()> {
    let bucket = scope.split('/').next().unwrap_or("");
    if bucket.is_empty() || scope.contains(['*', '?']) {
        return Err(Error::InvalidArgument(format!(
            "invalid --bucket {scope:?}: give BUCKET or BUCKET/prefix, without wildcards"
        )));
    }
    Ok(())
}

fn parse_builtin(name: &str) -> UserResult<Builtin> {
    Builtin::parse(name).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "unknown policy {name:?}: use readwrite, readonly, writeonly or owner"
        ))
    })
}

/// RFC 3339 with milliseconds, as S3 writes its timestamps.
fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

impl Users {
    pub async fn load(
        meta: MetaStore,
        sealer: Result<Sealer, String>,
        root_access_key: String,
    ) -> UserResult<Users> {
        let users = Users {
            meta,
            sealer,
            root_access_key,
            directory: RwLock::default(),
            changes: tokio::sync::Mutex::new(Loaded::default()),
        };
        let mut loaded = users.changes.lock().await;
        users.reload_into(&mut loaded).await?;
        drop(loaded);
        Ok(users)
    }

    /// Rebuilds the directory when the stored users changed since it was built (through
    /// another gateway sharing the metadata). True when they had.
    pub async fn refresh(&self) -> UserResult<bool> {
        let mut loaded = self.changes.lock().await;
        let now = self.read_records().await?;
        if *loaded == now {
            return Ok(false);
        }
        self.rebuild(&now);
        *loaded = now;
        Ok(true)
    }

    /// Rebuilds the directory while it lives whenever `changes` says the records changed
    /// (an etcd watch: at once), and every `every` besides, so changes made through other
    /// gateways reach this one at once, or within `every` if the watch missed them.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        every: std::time::Duration,
        mut changes: Option<tokio::sync::watch::Receiver<u64>>,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match changes.as_mut() {
                    Some(rx) => {
                        tokio::select! {
                            changed = rx.changed() => if changed.is_err() {
                                changes = None;
                            },
                            () = tokio::time::sleep(every) => {}
                        }
                    }
                    None => tokio::time::sleep(every).await,
                }
                let Some(users) = weak.upgrade() else {
                    return;
                };
                match users.refresh().await {
                    Ok(true) => tracing::info!("users changed through another gateway; reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot refresh the users"),
                }
            }
        })
    }

    pub fn locked(&self) -> Option<&str> {
        self.sealer.as_ref().err().map(String::as_str)
    }

    fn sealer(&self) -> UserResult<&Sealer> {
        self.sealer
            .as_ref()
            .map_err(|e| Error::UsersLocked(e.clone()))
    }

    fn snapshot(&self) -> Arc<Directory> {
        self.directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rebuilds the directory from the store; `loaded` is what `changes` holds.
    async fn reload_into(&self, loaded: &mut Loaded) -> UserResult<()> {
        let now = self.read_records().await?;
        self.rebuild(&now);
        *loaded = now;
        Ok(())
    }

    async fn read_records(&self) -> UserResult<Loaded> {
        Ok(Loaded {
            users: self.meta.list_users().await?,
            iam: self.meta.iam_record().await?,
        })
    }

    fn rebuild(&self, loaded: &Loaded) {
        let mut dir = Directory::default();
        let named = groups::parse_named(&loaded.iam);
        for (name, record) in loaded.users.iter().cloned() {
            // A policy this version does not know grants nothing: the user is refused.
            let builtin = Builtin::parse(&record.policy);
            if builtin.is_none() {
                tracing::error!(user = %name, policy = %record.policy, "unknown policy; user refused");
            }
            if let Ok(sealer) = &self.sealer {
                for key in &record.keys {
                    match sealer.open(&key.access_key, &key.sealed_secret) {
                        Ok(secret) => {
                            let secret = String::from_utf8_lossy(&secret).into_owned();
                            dir.keys.insert(
                                key.access_key.clone(),
                                (name.clone(), Secret(secret.into())),
                            );
                        }
                        Err(e) => {
                            tracing::error!(user = %name, access_key = %key.access_key, "{e}")
                        }
                    }
                }
            }
            dir.names_by_id.insert(record.id.clone(), name.clone());
            let entry = UserEntry {
                name: name.clone(),
                id: record.id.clone(),
                enabled: record.enabled && builtin.is_some(),
                policy: groups::effective_policy(
                    policy::identity_policy(builtin.unwrap_or(Builtin::ReadOnly), &record.scopes),
                    &record,
                    &loaded.iam,
                    &named,
                ),
                owns_buckets: builtin == Some(Builtin::Owner),
            };
            dir.users.insert(name, Arc::new(entry));
        }
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(dir);
    }

    /// The user and secret of an access key, for signature checks.
    pub fn secret(&self, access_key: &str) -> Result<(Arc<UserEntry>, Secret), KeyRefusal> {
        let dir = self.snapshot();
        let (name, secret) = dir.keys.get(access_key).ok_or(KeyRefusal::Unknown)?;
        let user = dir.users.get(name).ok_or(KeyRefusal::Unknown)?;
        if !user.enabled {
            return Err(KeyRefusal::Disabled);
        }
        Ok((user.clone(), secret.clone()))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.snapshot().users.contains_key(name)
    }

    /// Every user's id (ACL grants name users by a canonical id derived from it).
    pub fn ids(&self) -> Vec<String> {
        self.snapshot().names_by_id.keys().cloned().collect()
    }

    /// The name of the user with this id (bucket owners are stored by id).
    pub fn name_of(&self, id: &str) -> Option<String> {
        self.snapshot().names_by_id.get(id).cloned()
    }

    fn new_key(&self, dir: &Directory) -> UserResult<(AccessKeyRecord, String)> {
        let sealer = self.sealer()?;
        let access_key = loop {
            let candidate = random_string(ACCESS_KEY_CHARS, 20);
            if candidate != self.root_access_key && !dir.keys.contains_key(&candidate) {
                break candidate;
            }
        };
        let secret = random_string(SECRET_CHARS, 40);
        let record = AccessKeyRecord {
            sealed_secret: sealer.seal(&access_key, secret.as_bytes()),
            access_key,
            created_ms: now_ms(),
        };
        Ok((record, secret))
    }

    pub async fn add(&self, name: &str, policy: &str, scopes: Vec<String>) -> UserResult<NewKey> {
        check_name(name)?;
        let builtin = parse_builtin(policy)?;
        scopes.iter().try_for_each(|s| check_scope(s))?;
        if builtin == Builtin::Owner && !scopes.is_empty() {
            return Err(Error::InvalidArgument(
                "the owner policy reaches the buckets the user owns: it takes no --bucket".into(),
            ));
        }
        let mut loaded = self.changes.lock().await;
        self.refuse_if_policies_name(name).await?;
        let (key, secret) = self.new_key(&self.snapshot())?;
        let access_key = key.access_key.clone();
        let record = UserRecord {
            id: hex::encode(sealing::random_bytes::<16>()),
            policy: builtin.as_str().to_owned(),
            scopes: scopes.clone(),
            enabled: true,
            created_ms: now_ms(),
            keys: vec![key],
            policies: Vec::new(),
        };
        self.meta
            .create_user(name, record)
            .await
            .map_err(|e| match e {
                metastore::Error::UserExists => Error::UserExists(name.to_owned()),
                e => e.into(),
            })?;
        self.reload_into(&mut loaded).await?;
        tracing::info!(user = %name, access_key = %access_key, policy = builtin.as_str(), "user added");
        Ok(NewKey {
            name: name.to_owned(),
            access_key,
            secret_key: secret,
            policy: builtin.as_str().to_owned(),
            buckets: scopes,
        })
    }

    /// Bucket policies name users by name: a new user must not inherit what a policy grants
    /// a removed user of the same name.
    async fn refuse_if_policies_name(&self, name: &str) -> UserResult<()> {
        for (bucket, record) in self.meta.list_buckets().await? {
            let Some(text) = record.policy else { continue };
            let names = Policy::parse_bucket_policy(&text, &bucket, &|_| true)
                .is_ok_and(|p| p.names_user(name));
            if names {
                return Err(Error::InvalidArgument(format!(
                    "the policy of bucket {bucket} still names user {name:?} (a removed user?); \
                     edit or delete that policy first, so the new user does not inherit its grants"
                )));
            }
        }
        Ok(())
    }

    pub async fn list(&self) -> UserResult<Vec<UserSummary>> {
        let records = self.meta.list_users().await?;
        let iam = self.meta.iam_record().await?;
        Ok(records
            .into_iter()
            .map(|(name, r)| UserSummary {
                name,
                policy: r.policy,
                buckets: r.scopes,
                groups: groups::groups_of(&iam, &r.id),
                policies: r.policies,
                enabled: r.enabled,
                access_keys: r.keys.into_iter().map(|k| k.access_key).collect(),
                created: rfc3339(r.created_ms),
            })
            .collect())
    }

    async fn update(
        &self,
        name: &str,
        change: impl Fn(&mut UserRecord) -> metastore::Result<()> + Send + 'static,
    ) -> UserResult<UserRecord> {
        let mut loaded = self.changes.lock().await;
        let record = self
            .meta
            .update_user(name, change)
            .await
            .map_err(|e| match e {
                metastore::Error::NoSuchUser => Error::NoSuchUser(name.to_owned()),
                e => e.into(),
            })?;
        self.reload_into(&mut loaded).await?;
        Ok(record)
    }

    pub async fn set_enabled(&self, name: &str, enabled: bool) -> UserResult<()> {
        self.update(name, move |u| {
            u.enabled = enabled;
            Ok(())
        })
        .await?;
        tracing::info!(user = %name, enabled, "user changed");
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> UserResult<()> {
        let mut loaded = self.changes.lock().await;
        let removed = self.meta.remove_user(name).await.map_err(|e| match e {
            metastore::Error::NoSuchUser => Error::NoSuchUser(name.to_owned()),
            e => e.into(),
        })?;
        // Tidiness only: groups name members by id, which no later user gets.
        let id = removed.id;
        if let Err(e) = self
            .meta
            .update_iam(move |iam, _| {
                for g in iam.groups.values_mut() {
                    g.members.retain(|m| m != &id);
                }
                Ok(())
            })
            .await
        {
            tracing::warn!(user = %name, error = %e, "user removed, but not from its groups");
        }
        self.reload_into(&mut loaded).await?;
        tracing::info!(user = %name, "user removed; its buckets now belong to root");
        Ok(())
    }

    pub async fn add_key(&self, name: &str) -> UserResult<NewKey> {
        let (key, secret) = self.new_key(&self.snapshot())?;
        let access_key = key.access_key.clone();
        let record = self
            .update(name, move |u| {
                u.keys.push(key.clone());
                Ok(())
            })
            .await?;
        tracing::info!(user = %name, access_key = %access_key, "access key added");
        Ok(NewKey {
            name: name.to_owned(),
            access_key,
            secret_key: secret,
            policy: record.policy,
            buckets: record.scopes,
        })
    }

    pub async fn remove_key(&self, name: &str, access_key: &str) -> UserResult<()> {
        let owned = self
            .meta
            .list_users()
            .await?
            .into_iter()
            .any(|(n, u)| n == name && u.keys.iter().any(|k| k.access_key == access_key));
        if !owned {
            if !self.exists(name) {
                return Err(Error::NoSuchUser(name.to_owned()));
            }
            return Err(Error::NoSuchAccessKey {
                user: name.to_owned(),
                key: access_key.to_owned(),
            });
        }
        let key = access_key.to_owned();
        self.update(name, move |u| {
            u.keys.retain(|k| k.access_key != key);
            Ok(())
        })
        .await?;
        tracing::info!(user = %name, access_key = %access_key, "access key removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn users() -> Users {
        Users::load(
            MetaStore::memory(),
            Ok(Sealer::new(&[3; 32])),
            "ROOTKEY".into(),
        )
        .await
        .unwrap()
    }

    #[test]
    fn creation_times_are_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_733_234_567_089), "2024-12-03T14:02:47.089Z");
    }

    #[tokio::test]
    async fn keys_follow_every_change_at_once() {
        let u = users().await;
        let alice = u.add("alice", "readonly", vec!["b".into()]).await.unwrap();
        assert_eq!(alice.access_key.len(), 20);
        assert_eq!(alice.secret_key.len(), 40);
        let (entry, secret) = u.secret(&alice.access_key).unwrap();
        assert_eq!(entry.name, "alice");
        assert_eq!(secret.expose(), alice.secret_key);
        assert!(matches!(
            u.add("alice", "readonly", vec![]).await,
            Err(Error::UserExists(_))
        ));

        let second = u.add_key("alice").await.unwrap();
        assert!(u.secret(&second.access_key).is_ok());
        u.set_enabled("alice", false).await.unwrap();
        assert_eq!(
            u.secret(&alice.access_key).err(),
            Some(KeyRefusal::Disabled)
        );
        assert_eq!(
            u.secret(&second.access_key).err(),
            Some(KeyRefusal::Disabled)
        );
        u.set_enabled("alice", true).await.unwrap();
        u.remove_key("alice", &alice.access_key).await.unwrap();
        assert_eq!(u.secret(&alice.access_key).err(), Some(KeyRefusal::Unknown));
        assert!(u.secret(&second.access_key).is_ok());
        assert!(matches!(
            u.remove_key("alice", &alice.access_key).await,
            Err(Error::NoSuchAccessKey { .. })
        ));

        let listed = u.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].access_keys, vec![second.access_key.clone()]);
        assert_eq!(listed[0].buckets, vec!["b".to_owned()]);
        u.remove("alice").await.unwrap();
        assert_eq!(
            u.secret(&second.access_key).err(),
            Some(KeyRefusal::Unknown)
        );
        assert!(!u.exists("alice"));
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_secrets_are_sealed() {
        let u = users().await;
        for (name, policy, scope) in [
            ("", "readonly", "b"),
            ("a b", "readonly", "b"),
            ("ok", "admin", "b"),
            ("ok", "readonly", "b*"),
            ("ok", "readonly", "/p"),
        ] {
            assert!(
                matches!(
                    u.add(name, policy, vec![scope.into()]).await,
                    Err(Error::InvalidArgument(_))
                ),
                "{name:?} {policy:?} {scope:?} was accepted"
            );
        }
        let bob = u.add("bob", "writeonly", vec![]).await.unwrap();
        let stored = u.meta.list_users().await.unwrap();
        let sealed = &stored[0].1.keys[0].sealed_secret;
        assert!(
            !sealed
                .windows(bob.secret_key.len())
                .any(|w| w == bob.secret_key.as_bytes())
        );
        let locked = Users::load(u.meta.clone(), Err("locked".into()), "ROOTKEY".into())
            .await
            .unwrap();
        assert_eq!(
            locked.secret(&bob.access_key).err(),
            Some(KeyRefusal::Unknown)
        );
        assert!(matches!(
            locked.add("carol", "readonly", vec![]).await,
            Err(Error::UsersLocked(_))
        ));
    }

    #[test]
    fn random_strings_use_their_alphabet() {
        let s = random_string(ACCESS_KEY_CHARS, 1000);
        assert_eq!(s.len(), 1000);
        assert!(s.bytes().all(|b| ACCESS_KEY_CHARS.contains(&b)));
        assert_ne!(
            random_string(SECRET_CHARS, 40),
            random_string(SECRET_CHARS, 40)
        );
    }
}
