//! The self-describing encoding of one shard, as stored by every [`crate::ShardStore`].
//!
//! A scrub or an inventory of a disk needs no metadata: each shard names its chunk, its position
//! in the stripe, the stripe geometry and carries a bitrot checksum of its payload.
//!
//! Layout (little-endian), format version 1:
//! ```text
//! 0..4    magic "TSHD"
//! 4       format version (1)
//! 5       shard index in the stripe
//! 6       k (data shards)
//! 7       m (parity shards)
//! 8..40   chunk SHA-256
//! 40..48  chunk length in bytes
//! 48..52  payload length in bytes
//! 52..68  XXH3-128 of the payload (bitrot check)
//! 68..76  XXH3-64 of bytes 0..68 (header check)
//! 76..    payload
//! ```
//! XXH3 runs at tens of GB/s per core, so verifying every shard read costs far less than the
//! read itself; it detects corruption, it is not a cryptographic seal (SHA-256 names the chunk).

use bytes::{BufMut, Bytes, BytesMut};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::{ChunkHash, Error, Result};

pub const MAGIC: &[u8; 4] = b"TSHD";
pub const FORMAT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 76;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardHeader {
    pub index: u8,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub chunk: ChunkHash,
    pub chunk_len: u64,
    pub payload_len: u32,
}

/// Encodes a shard file: header followed by the payload.
pub fn encode(header: &ShardHeader, payload: &[u8]) -> Bytes {
    debug_assert_eq!(header.payload_len as usize, payload.len());
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_slice(MAGIC);
    buf.put_u8(FORMAT_VERSION);
    buf.put_u8(header.index);
    buf.put_u8(header.data_shards);
    buf.put_u8(header.parity_shards);
    buf.put_slice(&header.chunk.0);
    buf.put_u64_le(header.chunk_len);
    buf.put_u32_le(payload.len() as u32);
    buf.put_u128_le(xxh3_128(payload));
    let header_check = xxh3_64(&buf[..68]);
    buf.put_u64_le(header_check);
    buf.put_slice(payload);
    buf.freeze()
}

/// Parses and verifies a shard file; returns its header and payload (a zero-copy slice).
pub fn decode(file: &Bytes) -> Result<(ShardHeader, Bytes)> {
    decode_checked(file, true)
}

/// As [`decode`], with the payload's checksum verified only if `check_payload`: for readers
/// that authenticate the chunk's bytes themselves (AES-GCM) and fall back to a checked read
/// when that fails. The header is always verified.
pub fn decode_checked(file: &Bytes, check_payload: bool) -> Result<(ShardHeader, Bytes)> {
    if file.len() < HEADER_LEN {
        return Err(Error::Corrupt(format!(
            "shard of {} bytes is shorter than its header",
            file.len()
        )));
    }
    if &file[0..4] != MAGIC {
        return Err(Error::Corrupt("bad magic".into()));
    }
    if file[4] != FORMAT_VERSION {
        return Err(Error::Corrupt(format!(
            "unknown shard format version {}",
            file[4]
        )));
    }
    let header_check = u64::from_le_bytes(file[68..76].try_into().expect("8 bytes"));
    if xxh3_64(&file[..68]) != header_check {
        return Err(Error::Corrupt("header checksum mismatch".into()));
    }
    let mut chunk = [0u8; 32];
    chunk.copy_from_slice(&file[8..40]);
    let header = ShardHeader {
        index: file[5],
        data_shards: file[6],
        parity_shards: file[7],
        chunk: ChunkHash(chunk),
        chunk_len: u64::from_le_bytes(file[40..48].try_into().expect("8 bytes")),
        payload_len: u32::from_le_bytes(file[48..52].try_into().expect("4 bytes")),
    };
    let payload = file.slice(HEADER_LEN..);
    if payload.len() != header.payload_len as usize {
        return Err(Error::Corrupt(format!(
            "payload is {} bytes, header says {}",
            payload.len(),
            header.payload_len
        )));
    }
    let expected = u128::from_le_bytes(file[52..68].try_into().expect("16 bytes"));
    if check_payload && xxh3_128(&payload) != expected {
        return Err(Error::Corrupt("payload checksum mismatch (bitrot)".into()));
    }
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (ShardHeader, Vec<u8>) {
        let payload = vec![7u8; 1000];
        let header = ShardHeader {
            index: 3,
            data_shards: 2,
            parity_shards: 2,
            chunk: ChunkHash::of(b"x"),
            chunk_len: 2000,
            payload_len: 1000,
        };
        (header, payload)
    }

    #[test]
    fn round_trip() {
        let (h, p) = sample();
        let file = encode(&h, &p);
        let (h2, p2) = decode(&file).unwrap();
        assert_eq!(h, h2);
        assert_eq!(&p2[..], &p[..]);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (h, p) = sample();
        let file = encode(&h, &p).to_vec();
        for pos in (0..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[pos] ^= 0x40;
            assert!(
                decode(&Bytes::from(bad)).is_err(),
                "flip at {pos} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_is_detected() {
        let (h, p) = sample();
        let file = encode(&h, &p);
        assert!(decode(&file.slice(..file.len() - 1)).is_err());
        assert!(decode(&file.slice(..10)).is_err());
    }
}
