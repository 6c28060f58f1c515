//! The streaming read path: the chunks covering a byte range are fetched a few ahead of the
//! client and sent through a small channel, so memory stays bounded and a slow client slows
//! the reads instead of filling buffers.

use bytes::Bytes;
use futures::{SinkExt, Stream, StreamExt};
use metastore::{ObjectData, ObjectRecord};
use std::ops::Range;
use std::pin::Pin;

use super::ObjectService;
use super::sse::{ChunkCipher, CustomerKey, SEAL_OVERHEAD};
use crate::error::{Error, Result};
use crate::locate::Locator;
use std::sync::Arc;

/// Chunks fetched ahead of the one being sent: enough to cover a storage node's round trip
/// (with local disks 3 already kept the client busy).
const READ_AHEAD: usize = 6;

pub type ObjectStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + Sync>>;

/// The part of each chunk that falls inside `range`: (chunk, start, end) within the chunk's
/// data. A sealed chunk holds `overhead` bytes more than its data.
fn covering(
    chunks: &[metastore::ChunkRef],
    range: &Range<u64>,
    overhead: u32,
) -> Vec<(metastore::ChunkRef, usize, usize)> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for c in chunks {
        let (start, end) = (offset, offset + c.data_len(overhead) as u64);
        offset = end;
        if end <= range.start || end == start {
            continue;
        }
        if start >= range.end {
            break;
        }
        let from = range.start.max(start) - start;
        let to = range.end.min(end) - start;
        out.push((*c, from as usize, to as usize));
    }
    out
}

impl ObjectService {
    /// Streams `range` (already validated against the object's size) of an object, opened
    /// with `customer` when it is encrypted with an SSE-C key.
    ///
    /// The first chunk is read before this returns, so an object that cannot be read at all
    /// fails with an error status instead of a 200 whose body breaks off.
    pub async fn read_object(
        &self,
        record: &ObjectRecord,
        range: Range<u64>,
        customer: Option<&CustomerKey>,
    ) -> Result<ObjectStream> {
        let key = self.sealer(record.encryption.as_ref(), customer).await?;
        let chunks = match &record.data {
            ObjectData::Inline(bytes) => {
                let data = match &key {
                    Some(key) => key.open_inline(bytes)?,
                    None => Bytes::copy_from_slice(bytes),
                };
                let slice = data
                    .get(range.start as usize..range.end as usize)
                    .map(|s| data.slice_ref(s))
                    .ok_or_else(|| {
                        Error::Internal("an inline object is shorter than its size".into())
                    })?;
                return Ok(Box::pin(futures::stream::once(async move { Ok(slice) })));
            }
            ObjectData::Chunks(chunks) => chunks,
        };
        let overhead = if key.is_some() { SEAL_OVERHEAD } else { 0 };
        let mut pieces = covering(chunks, &range, overhead).into_iter();
        let Some(first) = pieces.next() else {
            return Ok(Box::pin(futures::stream::empty()));
        };
        let store = Reader {
            locator: self.locator(),
            key,
        };
        let first = fetch(&store, first).await?;
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes>>(1);
        tokio::spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            let mut fetched = futures::stream::iter(pieces)
                .map(|piece| {
                    let store = store.clone();
                    async move { fetch(&store, piece).await }
                })
                .buffered(READ_AHEAD);
            while let Some(item) = fetched.next().await {
                let failed = item.is_err();
                if let Err(e) = &item {
                    tracing::error!(error = %e, "object read failed mid-stream");
                }
                // A send error means the client went away: stop reading.
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::pin(rx))
    }
}

/// Where chunks are read from, and the key that opens them (for an encrypted object).
#[derive(Clone)]
struct Reader {
    locator: Locator,
    key: Option<Arc<ChunkCipher>>,
}

async fn fetch(
    store: &Reader,
    (c, from, to): (metastore::ChunkRef, usize, usize),
) -> Result<Bytes> {
    let data = match &store.key {
        None if c.plain_len == 0 => store.locator.get_chunk(c.hash, c.len).await?,
        None => {
            let bytes = store.locator.get_chunk(c.hash, c.len).await?;
            tokio::task::spawn_blocking(move || super::compress::decompress(&bytes, c.plain_len))
                .await??
        }
        Some(key) => {
            // AES-GCM authenticates the sealed bytes, so the shards' own checksums are
            // skipped (a pass over every byte); if the seal does not open, the chunk is
            // read again with them, which finds, rebuilds and rewrites a damaged shard.
            let sealed = store.locator.get_chunk_authenticated(c.hash, c.len).await?;
            match open_blocking(key, c, sealed).await {
                Ok(data) => data,
                Err(_) => {
                    let checked = store.locator.get_chunk(c.hash, c.len).await?;
                    open_blocking(key, c, checked).await?
                }
            }
        }
    };
    if to > data.len() {
        return Err(Error::Internal(format!(
            "chunk {} holds {} bytes, {to} expected",
            hex::encode(c.hash),
            data.len()
        )));
    }
    Ok(data.slice(from..to))
}

/// Opens (and decompresses) a sealed chunk off the async threads.
async fn open_blocking(
    key: &Arc<ChunkCipher>,
    c: metastore::ChunkRef,
    sealed: Bytes,
) -> Result<Bytes> {
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        let opened = key.open_chunk(&c.hash, sealed)?;
        match c.plain_len {
            0 => Ok(opened),
            n => super::compress::decompress(&opened, n),
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use metastore::ChunkRef;

    #[test]
    fn covering_picks_the_right_slices() {
        let c = |n: u8, len| ChunkRef::new([n; 32], len);
        let chunks = [c(1, 10), c(2, 10), c(3, 5)];
        let got: Vec<_> = covering(&chunks, &(5..22), 0)
            .into_iter()
            .map(|(c, a, b)| (c.hash[0], a, b))
            .collect();
        assert_eq!(got, [(1, 5, 10), (2, 0, 10), (3, 0, 2)]);
        let got: Vec<_> = covering(&chunks, &(10..20), 0)
            .into_iter()
            .map(|(c, a, b)| (c.hash[0], a, b))
            .collect();
        assert_eq!(got, [(2, 0, 10)]);
        assert!(covering(&chunks, &(0..0), 0).is_empty());
    }
}
