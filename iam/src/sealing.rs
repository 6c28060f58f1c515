//! Access-key secrets at rest.
//!
//! SigV4 needs each secret in plaintext to compute signatures, so secrets are encrypted, not
//! hashed. One random data key seals every secret with XChaCha20-Poly1305 (random 24-byte
//! nonces, the access key as associated data so sealed secrets cannot be swapped between
//! keys). The data key itself is stored sealed under a key derived (HKDF-SHA256) from the
//! root password and the deployment id: copies of the metadata alone reveal no secret, and
//! changing the root password re-seals one record instead of every secret.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use metastore::MetaStore;

/// Version byte in front of every sealed value.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Where the sealed data key is kept (a metastore setting).
const DATA_KEY_SETTING: &str = "users-data-key";
const DATA_KEY_CONTEXT: &str = "tessera users data key";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed value failed to open: wrong key, or damaged")]
pub struct OpenError;

/// Seals and opens values under one key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(&Key::from(*key)),
        }
    }

    /// The key derived from the root password for this deployment.
    fn from_root_password(password: &str, deployment_id: &str) -> Self {
        let kdf =
            hkdf::Hkdf::<sha2::Sha256>::new(Some(deployment_id.as_bytes()), password.as_bytes());
        let mut key = [0u8; 32];
        kdf.expand(b"tessera users key-encryption key v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Sealer::new(&key)
    }

    /// `context` names what the value is (the access key for a secret): opening needs the same.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), payload)
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        [&[SEALED_V1][..], &nonce, &sealed].concat()
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (&version, rest) = sealed.split_first().ok_or(OpenError)?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let payload = Payload {
            msg: body,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| OpenError)
    }
}

/// Loads the data key that seals user secrets, creating it on first use. With
/// `previous_password`, a data key sealed under the old root password is re-sealed under the
/// current one. An error means the users are locked: the server still runs for root.
pub async fn load_data_key(
    meta: &MetaStore,
    deployment_id: &str,
    root_password: &str,
    previous_password: Option<&str>,
) -> Result<Sealer, String> {
    let current = Sealer::from_root_password(root_password, deployment_id);
    let store_err = |e: metastore::Error| format!("cannot read the users' data key: {e}");
    let stored = match meta.setting(DATA_KEY_SETTING).await.map_err(store_err)? {
        Some(stored) => stored,
        None => {
            let fresh = current.seal(DATA_KEY_CONTEXT, &random_bytes::<32>());
            // Without `replace`: what is stored wins, should two starts race.
            meta.put_setting(DATA_KEY_SETTING, fresh, false)
                .await
                .map_err(store_err)?
        }
    };
    let key = match current.open(DATA_KEY_CONTEXT, &stored) {
        Ok(key) => key,
        Err(_) => {
            let Some(old) = previous_password else {
                return Err(
                    "the users' data key does not open with the root password: was the \
                     root password changed? Start once with TESSERA_PREVIOUS_ROOT_PASSWORD set \
                     to the old one to re-seal it"
                        .into(),
                );
            };
            let key = Sealer::from_root_password(old, deployment_id)
                .open(DATA_KEY_CONTEXT, &stored)
                .map_err(|_| {
                    "the users' data key opens with neither the root password nor \
                     TESSERA_PREVIOUS_ROOT_PASSWORD"
                        .to_owned()
                })?;
            meta.put_setting(DATA_KEY_SETTING, current.seal(DATA_KEY_CONTEXT, &key), true)
                .await
                .map_err(store_err)?;
            tracing::info!("re-sealed the users' data key under the new root password");
            key
        }
    };
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| "the users' data key has the wrong length".to_owned())?;
    Ok(Sealer::new(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let s = Sealer::new(&[7; 32]);
        let sealed = s.seal("AKIA1", b"secret");
        assert_eq!(s.open("AKIA1", &sealed).unwrap(), b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        // Another context (a sealed secret moved to another key) does not open.
        assert!(s.open("AKIA2", &sealed).is_err());
        assert!(Sealer::new(&[8; 32]).open("AKIA1", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert!(
                s.open("AKIA1", &flipped).is_err(),
                "bit flip at {i} went unnoticed"
            );
        }
        assert!(s.open("AKIA1", &sealed[..10]).is_err());
        // Random nonces: the same secret seals differently each time.
        assert_ne!(s.seal("AKIA1", b"secret"), sealed);
    }

    #[tokio::test]
    async fn data_key_survives_restarts_and_root_password_changes() {
        let meta = MetaStore::memory();
        let a = load_data_key(&meta, "dep", "pw-one", None).await.unwrap();
        let sealed = a.seal("k", b"v");
        let again = load_data_key(&meta, "dep", "pw-one", None).await.unwrap();
        assert_eq!(again.open("k", &sealed).unwrap(), b"v");
        // A new root password alone locks the users; with the old one given, it re-seals.
        assert!(load_data_key(&meta, "dep", "pw-two", None).await.is_err());
        assert!(
            load_data_key(&meta, "dep", "pw-two", Some("wrong"))
                .await
                .is_err()
        );
        let moved = load_data_key(&meta, "dep", "pw-two", Some("pw-one"))
            .await
            .unwrap();
        assert_eq!(moved.open("k", &sealed).unwrap(), b"v");
        let after = load_data_key(&meta, "dep", "pw-two", None).await.unwrap();
        assert_eq!(after.open("k", &sealed).unwrap(), b"v");
        // The key is bound to the deployment too.
        assert!(load_data_key(&meta, "other", "pw-two", None).await.is_err());
    }
}
