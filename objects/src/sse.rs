//! Server-side encryption, with a key the server holds (SSE-S3) or one the client sends with
//! every request (SSE-C), keeping deduplication.
//!
//! Every chunk of an encrypted object is sealed on its own, convergently: from the SHA-256 `h`
//! of its plaintext come its address `a = HKDF-Expand(K_addr, h)` and its key
//! `k = HKDF-Expand(K_key, a)`, and it is stored as AES-256-GCM under `k` (a nonce of zero:
//! each key only ever seals one plaintext). The same plaintext under the same master key
//! gives the same sealed chunk at the same address, so identical data is stored once, while
//! plaintext and encrypted copies never share a chunk. Reading needs only the address, kept in
//! the manifest: `k` follows from it and the master key, and nothing in the metadata reveals
//! `h` (the address is keyed, so a guessed plaintext cannot be confirmed without the key).
//! Small objects kept inline are sealed the same way, stored as `a || sealed`.
//!
//! `K_addr` and `K_key` are derived (HKDF-SHA256) from the master key, which the operator
//! gives as `NAME:BASE64` (32 bytes), MinIO's `MINIO_KMS_SECRET_KEY` form; it is never stored.
//! An object records the master key's name, so a server started with another key says so
//! instead of failing to open the chunks.
//!
//! SSE-C derives `K_addr` and `K_key` the same way from the customer's 32-byte key (another
//! salt), so objects under one customer key dedup among themselves and with nothing else. The
//! key is never stored: an object records a salted keyed hash of it ([`CustomerKeyCheck`]),
//! enough to refuse a wrong key (403) before any chunk is opened.

use bytes::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What sealing adds to a chunk: the authentication tag.
pub const SEAL_OVERHEAD: u32 = 16;
/// Chunk keys derived from the master key itself (SSE-S3 before the key store) or from the
/// customer's key (SSE-C); recorded with each encrypted object.
pub const SCHEME_V1: u8 = 1;
/// Chunk keys derived from a key of the key store (`kms` module), named by the record's
/// `key_id`: SSE-KMS, and SSE-S3 since the key store (under [`crate::kms::SSE_S3_KEY`]).
pub const SCHEME_STORE_KEY: u8 = 2;

/// The keys that seal and open chunks: derived from the SSE-S3 master key, or from an SSE-C
/// customer key.
pub struct ChunkCipher {
    id: String,
    address: hkdf::Hkdf<Sha256>,
    key: hkdf::Hkdf<Sha256>,
}

impl std::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkCipher({})", self.id)
    }
}

impl ChunkCipher {
    /// Parses `NAME:BASE64`, where BASE64 is 32 bytes (`openssl rand -base64 32`).
    pub fn parse(spec: &str) -> std::result::Result<Self, String> {
        let (id, b64) = spec.trim().split_once(':').ok_or(
            "the master key must be NAME:BASE64 (32 random bytes, e.g. `openssl rand -base64 32`)",
        )?;
        let id = id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "the master key's name {id:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        let bytes = base64_simd::STANDARD
            .decode_to_vec(b64.trim())
            .map_err(|_| "the master key after NAME: is not valid base64".to_string())?;
        let secret: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!("the master key must be 32 bytes, this one is {}", b.len())
        })?;
        Ok(Self::new(id, &secret))
    }

    /// The cipher of master key `id` (SSE-S3).
    pub fn new(id: &str, secret: &[u8; 32]) -> Self {
        Self::derive(id, b"tessera sse-s3 v1", secret)
    }

    fn derive(id: &str, salt: &[u8], secret: &[u8; 32]) -> Self {
        let derive = |purpose: &[u8]| {
            let mut okm = [0u8; 32];
            hkdf::Hkdf::<Sha256>::new(Some(salt), secret)
                .expand(purpose, &mut okm)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            hkdf::Hkdf::<Sha256>::from_prk(&okm).expect("32 bytes is a valid pseudorandom key")
        };
        ChunkCipher {
            id: id.to_owned(),
            address: derive(b"chunk address"),
            key: derive(b"chunk key"),
        }
    }

    /// The master key's name, recorded with every object it encrypts and shown in the banner
    /// ([`CUSTOMER_KEY_ID`] for a customer key).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn expand(kdf: &hkdf::Hkdf<Sha256>, info: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        kdf.expand(info, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    fn cipher(&self, address: &[u8; 32]) -> LessSafeKey {
        let key = Self::expand(&self.key, address);
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("AES-256 takes 32 bytes"))
    }

    /// The cipher of a key of the key store.
    pub(crate) fn store_key(name: &str, secret: &[u8; 32]) -> Self {
        Self::derive(name, b"tessera kms v1", secret)
    }

    /// The key that seals the key store's keys: another expansion of the chunk-key secret,
    /// with an info no chunk address can equal (addresses are 32 bytes).
    fn wrapping_key(&self) -> LessSafeKey {
        let key = Self::expand(&self.key, b"key store wrap");
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("AES-256 takes 32 bytes"))
    }

    /// Seals a key-store key named `name` (bound to it as associated data): `nonce || sealed`.
    pub(crate) fn wrap(&self, name: &str, secret: &[u8; 32]) -> Vec<u8> {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; 12];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let mut sealed = secret.to_vec();
        self.wrapping_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .expect("AES-256-GCM seals 32 bytes");
        [&nonce[..], &sealed].concat()
    }

    /// Opens what [`ChunkCipher::wrap`] sealed for `name`; `None` if it was sealed under
    /// another master key (or for another name, or damaged).
    pub(crate) fn unwrap(&self, name: &str, wrapped: &[u8]) -> Option<[u8; 32]> {
        let (nonce, sealed) = wrapped.split_first_chunk::<12>()?;
        let mut buf = sealed.to_vec();
        let plain = self
            .wrapping_key()
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .ok()?;
        plain.try_into().ok()
    }

    /// The one nonce: every chunk key seals exactly one plaintext.
    fn nonce() -> Nonce {
        Nonce::assume_unique_for_key([0; 12])
    }

    /// The address a chunk whose plaintext has SHA-256 `plain_hash` is sealed at.
    pub(crate) fn address_of(&self, plain_hash: &[u8; 32]) -> [u8; 32] {
        Self::expand(&self.address, plain_hash)
    }

    /// The address and sealed bytes of a chunk whose plaintext has SHA-256 `plain_hash`.
    pub fn seal_chunk(&self, plain_hash: &[u8; 32], plaintext: &[u8]) -> ([u8; 32], Bytes) {
        let address = self.address_of(plain_hash);
        let mut sealed = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD as usize);
        sealed.extend_from_slice(plaintext);
        self.cipher(&address)
            .seal_in_place_append_tag(Self::nonce(), Aad::empty(), &mut sealed)
            .expect("AES-256-GCM seals any chunk below 64 GiB");
        (address, Bytes::from(sealed))
    }

    /// The plaintext of the chunk at `address`; an error if it was not sealed there under
    /// this key (or was damaged past what the shard checks catch). Opened in place when
    /// `sealed` is the only handle on its buffer (a chunk just read), else on a copy.
    pub fn open_chunk(&self, address: &[u8; 32], sealed: Bytes) -> Result<Bytes> {
        let mut buf = sealed
            .try_into_mut()
            .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
        let len = self
            .cipher(address)
            .open_in_place(Self::nonce(), Aad::empty(), &mut buf[..])
            .map_err(|_| {
                Error::Internal(format!(
                    "chunk {} does not open under master key {:?}",
                    hex::encode(address),
                    self.id
                ))
            })?
            .len();
        buf.truncate(len);
        Ok(buf.freeze())
    }

    /// The bytes of a small object kept in the metadata: `address || sealed`.
    pub fn seal_inline(&self, plaintext: &[u8]) -> Vec<u8> {
        let hash: [u8; 32] = Sha256::digest(plaintext).into();
        let (address, sealed) = self.seal_chunk(&hash, plaintext);
        [&address[..], &sealed].concat()
    }

    pub fn open_inline(&self, stored: &[u8]) -> Result<Bytes> {
        let (address, sealed) = stored
            .split_first_chunk::<32>()
            .ok_or_else(|| Error::Internal("an encrypted inline object is truncated".into()))?;
        self.open_chunk(address, Bytes::copy_from_slice(sealed))
    }
}

/// What an SSE-C object records as its key id: no master key can have this name.
pub const CUSTOMER_KEY_ID: &str = "(customer key)";

/// An SSE-C key, as a request sends it (validated by the gateway: 32 bytes, MD5 checked).
#[derive(Clone)]
pub struct CustomerKey([u8; 32]);

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

impl CustomerKey {
    pub fn new(secret: [u8; 32]) -> Self {
        CustomerKey(secret)
    }

    /// The cipher this key seals and opens chunks with.
    pub fn cipher(&self) -> ChunkCipher {
        ChunkCipher::derive(CUSTOMER_KEY_ID, b"tessera sse-c v1", &self.0)
    }

    fn keyed_hash(&self, salt: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(salt), &self.0)
            .expand(b"tessera sse-c key check", &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out.to_vec()
    }

    /// What a new object records to recognise this key later: a keyed hash under a fresh
    /// random salt (the key itself is never stored).
    pub fn new_check(&self) -> CustomerKeyCheck {
        use ring::rand::SecureRandom;
        let mut salt = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .expect("the system's random source works");
        CustomerKeyCheck {
            hash: self.keyed_hash(&salt),
            salt: salt.to_vec(),
        }
    }

    /// Whether this is the key `check` was made from.
    pub fn matches(&self, check: &CustomerKeyCheck) -> bool {
        let hash = self.keyed_hash(&check.salt);
        // Compared in constant time: the hashes are secrets' images.
        hash.len() == check.hash.len()
            && hash
                .iter()
                .zip(&check.hash)
                .fold(0u8, |d, (a, b)| d | (a ^ b))
                == 0
    }
}

pub use metastore::CustomerKeyCheck;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> ChunkCipher {
        ChunkCipher::new(id, &[byte; 32])
    }

    #[test]
    fn equal_plaintexts_seal_alike_and_open_only_under_their_key() {
        let k = key("one", 1);
        let plain = b"the same chunk twice".repeat(100);
        let h: [u8; 32] = Sha256::digest(&plain).into();
        let (a1, s1) = k.seal_chunk(&h, &plain);
        let (a2, s2) = k.seal_chunk(&h, &plain);
        assert_eq!((a1, &s1), (a2, &s2), "convergent: dedup keeps working");
        assert_ne!(a1, h, "the address is not the plaintext's hash");
        assert_eq!(s1.len(), plain.len() + SEAL_OVERHEAD as usize);
        assert!(
            !s1.windows(20).any(|w| w == &plain[..20]),
            "no plaintext in the sealed chunk"
        );
        assert_eq!(
            k.open_chunk(&a1, s1.clone()).unwrap(),
            Bytes::from(plain.clone())
        );

        let other = key("two", 2);
        let (b, _) = other.seal_chunk(&h, &plain);
        assert_ne!(a1, b, "another master key puts the chunk elsewhere");
        assert!(other.open_chunk(&a1, s1.clone()).is_err());
        let mut flipped = s1.to_vec();
        flipped[5] ^= 1;
        assert!(k.open_chunk(&a1, Bytes::from(flipped)).is_err());

        let inline = k.seal_inline(b"small");
        assert_eq!(
            k.open_inline(&inline).unwrap(),
            Bytes::from_static(b"small")
        );
        assert!(other.open_inline(&inline).is_err());
        assert!(k.open_inline(&inline[..10]).is_err());
    }

    #[test]
    fn customer_keys_seal_apart_from_master_keys_and_are_recognised_only_by_their_hash() {
        let customer = CustomerKey::new([1; 32]);
        let master = key("one", 1);
        let plain = b"customer data".repeat(50);
        let h: [u8; 32] = Sha256::digest(&plain).into();
        let (a, sealed) = customer.cipher().seal_chunk(&h, &plain);
        let (b, _) = master.seal_chunk(&h, &plain);
        assert_ne!(a, b, "the same secret as a master key seals elsewhere");
        assert_eq!(customer.cipher().seal_chunk(&h, &plain).0, a, "convergent");
        assert_eq!(
            CustomerKey::new([1; 32])
                .cipher()
                .open_chunk(&a, sealed.clone())
                .unwrap(),
            Bytes::from(plain)
        );
        assert!(
            CustomerKey::new([2; 32])
                .cipher()
                .open_chunk(&a, sealed)
                .is_err()
        );

        let (c1, c2) = (customer.new_check(), customer.new_check());
        assert_ne!(
            c1, c2,
            "salted: two objects' checks do not match each other"
        );
        assert!(customer.matches(&c1) && customer.matches(&c2));
        assert!(!CustomerKey::new([2; 32]).matches(&c1));
        assert!(
            !c1.hash.windows(8).any(|w| w == [1u8; 8]),
            "no key bytes in the check"
        );
        assert!(!format!("{customer:?}").contains('1'));
    }

    #[test]
    fn the_master_key_is_name_colon_32_bytes_of_base64() {
        let b64 = base64_simd::STANDARD.encode_to_string([7u8; 32]);
        let k = ChunkCipher::parse(&format!("my-key:{b64}")).unwrap();
        assert_eq!(k.id(), "my-key");
        assert!(!format!("{k:?}").contains(&b64));
        for bad in [
            b64.clone(),
            format!(":{b64}"),
            "k:not base64!".to_string(),
            format!("k:{}", base64_simd::STANDARD.encode_to_string([7u8; 16])),
            format!("bad name:{b64}"),
        ] {
            assert!(ChunkCipher::parse(&bad).is_err(), "{bad}");
        }
    }
}
