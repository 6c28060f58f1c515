//! Systematic Reed-Solomon coding of one chunk into `k` data and `m` parity shards.
//!
//! Data shard `i` is bytes `[i*s, (i+1)*s)` of the chunk (zero-padded at the end), so a healthy
//! read concatenates data shards and never runs the decoder. reed-solomon-simd wants shards of
//! an even, non-zero length; the shard length is rounded up accordingly.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    data: usize,
    parity: usize,
}

impl Codec {
    pub fn new(data: usize, parity: usize) -> Result<Self> {
        if data == 0 || data + parity > 256 {
            return Err(Error::Layout(format!(
                "unsupported stripe {data}+{parity}: need 1..=256 shards and at least one data shard"
            )));
        }
        Ok(Codec { data, parity })
    }

    pub fn data_shards(&self) -> usize {
        self.data
    }

    pub fn parity_shards(&self) -> usize {
        self.parity
    }

    pub fn total_shards(&self) -> usize {
        self.data + self.parity
    }

    /// Length of every shard of a chunk of `chunk_len` bytes.
    pub fn shard_len(&self, chunk_len: usize) -> usize {
        let len = chunk_len.div_ceil(self.data).max(2);
        len + (len & 1)
    }

    /// Splits `chunk` into `k + m` shards of equal length.
    pub fn encode(&self, chunk: &Bytes) -> Result<Vec<Bytes>> {
        let shard_len = self.shard_len(chunk.len());
        let mut shards = Vec::with_capacity(self.total_shards());
        for i in 0..self.data {
            let start = (i * shard_len).min(chunk.len());
            let end = ((i + 1) * shard_len).min(chunk.len());
            if end - start == shard_len {
                // Whole data shards are zero-copy slices of the chunk.
                shards.push(chunk.slice(start..end));
            } else {
                let mut padded = BytesMut::zeroed(shard_len);
                padded[..end - start].copy_from_slice(&chunk[start..end]);
                shards.push(padded.freeze());
            }
        }
        if self.parity > 0 {
            let parity = with_encoder(self.data, self.parity, shard_len, |enc| {
                for s in &shards {
                    enc.add_original_shard(s).map_err(codec_error)?;
                }
                let result = enc.encode().map_err(codec_error)?;
                Ok(result
                    .recovery_iter()
                    .map(Bytes::copy_from_slice)
                    .collect::<Vec<_>>())
            })?;
            shards.extend(parity);
        }
        Ok(shards)
    }

    /// Rebuilds the chunk from any `k` of its shards (`None` = missing or corrupt).
    pub fn decode(&self, shards: &[Option<Bytes>], chunk_len: usize) -> Result<Bytes> {
        if shards.len() != self.total_shards() {
            return Err(Error::Codec(format!(
                "expected {} shard slots, got {}",
                self.total_shards(),
                shards.len()
            )));
        }
        let shard_len = self.shard_len(chunk_len);
        if let Some(Some(bad)) = shards
            .iter()
            .find(|s| s.as_ref().is_some_and(|s| s.len() != shard_len))
        {
            return Err(Error::Codec(format!(
                "shard of {} bytes where {shard_len} expected",
                bad.len()
            )));
        }
        if self.data == 1
            && let Some(only) = &shards[0]
        {
            return Ok(only.slice(..chunk_len));
        }
        let mut out = BytesMut::with_capacity(shard_len * self.data);
        if shards[..self.data].iter().all(Option::is_some) {
            for s in shards[..self.data].iter().flatten() {
                out.extend_from_slice(s);
            }
        } else {
            let available = shards.iter().filter(|s| s.is_some()).count();
            if available < self.data {
                return Err(Error::ReadQuorum {
                    available,
                    needed: self.data,
                    detail: "not enough shards to reconstruct".into(),
                });
            }
            with_decoder(self.data, self.parity, shard_len, |dec| {
                for (i, s) in shards[..self.data].iter().enumerate() {
                    if let Some(s) = s {
                        dec.add_original_shard(i, s).map_err(codec_error)?;
                    }
                }
                for (i, s) in shards[self.data..].iter().enumerate() {
                    if let Some(s) = s {
                        dec.add_recovery_shard(i, s).map_err(codec_error)?;
                    }
                }
                let restored = dec.decode().map_err(codec_error)?;
                for (i, s) in shards[..self.data].iter().enumerate() {
                    match s {
                        Some(s) => out.extend_from_slice(s),
                        None => out.extend_from_slice(restored.restored_original(i).ok_or_else(
                            || Error::Codec(format!("data shard {i} was not restored")),
                        )?),
                    }
                }
                Ok(())
            })?;
        }
        out.truncate(chunk_len);
        Ok(out.freeze())
    }
}

fn codec_error(e: reed_solomon_simd::Error) -> Error {
    Error::Codec(e.to_string())
}

thread_local! {
    // The coders keep large work buffers: reusing them per thread saves an allocation,
    // zeroing and page faults per chunk (they showed as ~10% of a degraded GET's profile).
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

fn with_encoder<T>(
    k: usize,
    m: usize,
    shard_len: usize,
    f: impl FnOnce(&mut ReedSolomonEncoder) -> Result<T>,
) -> Result<T> {
    ENCODER.with_borrow_mut(|slot| {
        let enc = match slot {
            Some(enc) => {
                enc.reset(k, m, shard_len).map_err(codec_error)?;
                enc
            }
            None => slot.insert(ReedSolomonEncoder::new(k, m, shard_len).map_err(codec_error)?),
        };
        f(enc)
    })
}

fn with_decoder<T>(
    k: usize,
    m: usize,
    shard_len: usize,
    f: impl FnOnce(&mut ReedSolomonDecoder) -> Result<T>,
) -> Result<T> {
    DECODER.with_borrow_mut(|slot| {
        let dec = match slot {
            Some(dec) => {
                dec.reset(k, m, shard_len).map_err(codec_error)?;
                dec
            }
            None => slot.insert(ReedSolomonDecoder::new(k, m, shard_len).map_err(codec_error)?),
        };
        f(dec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn healthy_round_trip_all_layouts() {
        for (k, m) in [(1, 0), (1, 1), (2, 1), (2, 2), (3, 3), (12, 4)] {
            let codec = Codec::new(k, m).unwrap();
            for len in [0, 1, 2, 3, 1000, 65_537, 1 << 20] {
                let c = chunk(len, 7);
                let shards = codec.encode(&c).unwrap();
                assert_eq!(shards.len(), k + m);
                let slots: Vec<_> = shards.into_iter().map(Some).collect();
                assert_eq!(
                    codec.decode(&slots, len).unwrap(),
                    c,
                    "k={k} m={m} len={len}"
                );
            }
        }
    }

    #[test]
    fn too_many_losses_is_an_error() {
        let codec = Codec::new(2, 2).unwrap();
        let c = chunk(5000, 1);
        let mut slots: Vec<_> = codec.encode(&c).unwrap().into_iter().map(Some).collect();
        slots[0] = None;
        slots[2] = None;
        slots[3] = None;
        assert!(matches!(
            codec.decode(&slots, c.len()),
            Err(Error::ReadQuorum {
                available: 1,
                needed: 2,
                ..
            })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any combination of up to m lost shards gives back the exact chunk.
        #[test]
        fn any_m_losses_recover(
            k in 1usize..8,
            m in 0usize..5,
            len in 0usize..20_000,
            seed in any::<u8>(),
            lost_bits in any::<u64>(),
        ) {
            let codec = Codec::new(k, m).unwrap();
            let c = chunk(len, seed);
            let mut slots: Vec<_> = codec.encode(&c).unwrap().into_iter().map(Some).collect();
            let mut lost = 0;
            for (i, slot) in slots.iter_mut().enumerate() {
                if lost < m && lost_bits >> i & 1 == 1 {
                    *slot = None;
                    lost += 1;
                }
            }
            prop_assert_eq!(codec.decode(&slots, len).unwrap(), c);
        }
    }
}
