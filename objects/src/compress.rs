//! Transparent compression of chunks: zstd, per chunk, before sealing.
//!
//! A chunk is compressed only when it pays: objects whose name or content type says they are
//! compressed already (MinIO's exclusion list) are not tried at all, and a chunk whose first
//! [`TRIAL`] bytes do not shrink below [`TRIAL_RATIO`] is stored as it is, so random data costs
//! one small trial per chunk. A compressed chunk lives at its own address (derived from the
//! plaintext's hash, [`address`]): the same bytes stored compressed by one upload and as they
//! are by another (an excluded name) never share a chunk whose form they disagree on. ETags and
//! checksums are of the original bytes; the manifest keeps each chunk's data length
//! (`ChunkRef::plain_len`), so a range read decompresses only the chunks it touches.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// zstd's fastest regular level: compression must keep up with the erasure-coded write.
const LEVEL: i32 = 1;
/// The size of the trial compression of a chunk's head.
const TRIAL: usize = 16 * 1024;
/// A trial that saves less than this share of its input means "store as it is".
const TRIAL_RATIO: f64 = 0.9;
/// A whole chunk must save at least this share, or it is stored as it is.
const KEEP_RATIO: f64 = 0.95;

/// Name endings of data compressed already (as MinIO's default exclusion list).
const EXCLUDED_EXTENSIONS: [&str; 22] = [
    ".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".7z", ".rar", ".lz4", ".br", ".jpg", ".jpeg",
    ".png", ".gif", ".webp", ".avif", ".heic", ".mp3", ".mp4", ".mkv", ".mov", ".webm",
];
/// Content types of data compressed already.
const EXCLUDED_TYPES: [&str; 12] = [
    "video/",
    "audio/",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-7z-compressed",
    "application/zstd",
    "application/x-xz",
];

/// Whether an object of this name and content type is worth trying to compress.
pub fn worth_trying(key: &str, content_type: Option<&str>) -> bool {
    let name = key.to_ascii_lowercase();
    let kind = content_type.unwrap_or("").to_ascii_lowercase();
    !EXCLUDED_EXTENSIONS.iter().any(|e| name.ends_with(e))
        && !EXCLUDED_TYPES.iter().any(|t| kind.starts_with(t))
}

thread_local! {
    /// One compression context per thread (they are a few hundred KiB to set up), with zstd's
    /// content checksum on: a chunk damaged past the shard checks fails to decompress instead
    /// of giving other bytes.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn zstd(data: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut new = zstd::bulk::Compressor::new(LEVEL).ok()?;
            new.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
                .ok()?;
            *c = Some(new);
        }
        c.as_mut()?.compress(data).ok()
    })
}

/// The chunk compressed, or `None` when it does not shrink enough to be worth it.
pub fn compress(chunk: &[u8]) -> Option<Vec<u8>> {
    if chunk.len() > TRIAL {
        let head = zstd(&chunk[..TRIAL])?;
        if head.len() as f64 > TRIAL as f64 * TRIAL_RATIO {
            return None;
        }
    }
    let whole = zstd(chunk)?;
    (whole.len() as f64 <= chunk.len() as f64 * KEEP_RATIO).then_some(whole)
}

/// The data of a compressed chunk, which must be `plain_len` bytes; anything else (a damaged
/// or foreign chunk) is an error, never garbage.
pub fn decompress(stored: &[u8], plain_len: u32) -> Result<Bytes> {
    let data = zstd::bulk::decompress(stored, plain_len as usize)
        .map_err(|e| Error::Internal(format!("a compressed chunk does not decompress: {e}")))?;
    if data.len() != plain_len as usize {
        return Err(Error::Internal(format!(
            "a compressed chunk holds {} bytes, {plain_len} expected",
            data.len()
        )));
    }
    Ok(Bytes::from(data))
}

/// The hash a compressed chunk is addressed by (sealed ones derive their address from it),
/// from the SHA-256 of its plaintext: apart from the plaintext's own.
pub fn address(plain_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera zstd v1");
    h.update(plain_hash);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shrinks_random_data_is_left_and_both_read_back() {
        let text = b"2026-12-06 INFO request served in 3 ms, status 200\n".repeat(20_000);
        let z = compress(&text).expect("text compresses");
        assert!(z.len() * 5 < text.len(), "{} of {}", z.len(), text.len());
        assert_eq!(
            decompress(&z, text.len() as u32).unwrap(),
            Bytes::from(text.clone())
        );
        let mut x = 1u64;
        let random: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(&random).is_none());
        // A damaged chunk or a wrong length is an error.
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        assert!(decompress(&bad, text.len() as u32).is_err());
        assert!(decompress(&z, text.len() as u32 - 1).is_err());
        assert_ne!(address(&[1; 32]), [1; 32]);
    }

    #[test]
    fn names_and_types_of_compressed_data_are_not_tried() {
        assert!(worth_trying("logs/app.log", Some("text/plain")));
        assert!(worth_trying("data.csv", None));
        assert!(!worth_trying("photos/IMG_1.JPG", None));
        assert!(!worth_trying(
            "backup.tar.gz",
            Some("application/octet-stream")
        ));
        assert!(!worth_trying("clip", Some("video/mp4")));
        assert!(!worth_trying("x", Some("application/zip")));
    }
}
