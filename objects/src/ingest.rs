//! The streaming write path: body -> MD5 (on its own thread) + fixed-size chunks -> SHA-256 ->
//! compression and sealing where asked -> dedup check -> erasure-coded write, with a few chunks in flight so memory stays bounded
//! whatever the object size.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use erasure::ChunkHash;
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use metastore::{ChunkRef, ObjectData};

use super::chunk_locks::Pin;
use super::md5_stream::Md5Stream;
use super::sse::ChunkCipher;
use super::{MAX_OBJECT_SIZE, ObjectService};
use crate::error::{Error, Result};

/// How a request's chunks are stored: compressed where it pays (`compress`), then sealed
/// under `seal` (an encrypted object).
#[derive(Clone, Default)]
pub(crate) struct ChunkForm {
    pub seal: Option<Arc<ChunkCipher>>,
    pub compress: bool,
}

/// Chunks being hashed, encoded and written at once per request.
const CHUNKS_IN_FLIGHT: usize = 4;

pub(crate) struct Ingested {
    pub size: u64,
    pub md5: [u8; 16],
    pub data: ObjectData,
    /// Keeps GC off the chunks until the caller's commit is done.
    pub _pins: Vec<Pin>,
    /// Chunks this request stored itself (not dedup hits): to commit as its own, and to
    /// discard if it does not commit.
    pub written: Vec<WrittenChunk>,
}

/// A chunk a request stored itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenChunk {
    pub hash: [u8; 32],
    pub pool: u32,
    /// The metadata revision at which the chunk was found not stored.
    pub checked_at: metastore::Rev,
}

struct StoredChunk {
    chunk: ChunkRef,
    pin: Pin,
    /// Disks of its pool that took a shard of it (not yet flushed); empty for a chunk already
    /// stored.
    disks: Vec<usize>,
    /// For a chunk this request stored: the revision at which it was found not stored
    /// (`None`: found stored, or stored earlier by this request).
    checked_at: Option<metastore::Rev>,
}

#[derive(Default)]
struct Progress {
    chunks: Vec<ChunkRef>,
    pins: Vec<Pin>,
    written: Vec<WrittenChunk>,
    /// Chunks this request wrote, with the disks (of the pool in `stored_in`) holding their
    /// unflushed shards.
    unflushed: Vec<(ChunkRef, Vec<usize>)>,
}

impl Progress {
    fn take(&mut self, r: Result<StoredChunk>) -> Result<()> {
        let s = r?;
        self.chunks.push(s.chunk);
        self.pins.push(s.pin);
        if let Some(checked_at) = s.checked_at {
            self.written.push(WrittenChunk {
                hash: s.chunk.hash,
                pool: s.chunk.stored_in,
                checked_at,
            });
            self.unflushed.push((s.chunk, s.disks));
        }
        Ok(())
    }
}

impl Ingested {
    /// The chunks this request stored itself (the others it found stored), each with the
    /// revision at which it found it not stored.
    pub fn new_chunks(&self) -> Vec<([u8; 32], metastore::Rev)> {
        self.written
            .iter()
            .map(|w| (w.hash, w.checked_at))
            .collect()
    }
}

/// How long a write waits for another gateway's garbage collection to finish deleting a
/// chunk it is about to store again.
const COLLECTION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl ObjectService {
    /// Whether a chunk is stored (`None`), or else the metadata revision at which it was
    /// found not stored, waiting while garbage collection deletes it (its shards may vanish
    /// under a new write until then).
    async fn absent_after_collection(&self, hash: [u8; 32]) -> Result<Option<metastore::Rev>> {
        let started = tokio::time::Instant::now();
        loop {
            match self.meta.chunk_check(hash).await? {
                (metastore::ChunkState::Stored, _) => return Ok(None),
                (metastore::ChunkState::Absent, at) => return Ok(Some(at)),
                (metastore::ChunkState::Deleting, _) if started.elapsed() < COLLECTION_WAIT => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                (metastore::ChunkState::Deleting, _) => {
                    return Err(Error::Meta(metastore::Error::ChunkGone(hash)));
                }
            }
        }
    }

    /// Cuts `body` into chunks and stores them in `form`, or keeps a small body inline
    /// (sealed, for an encrypted object; never compressed).
    pub(crate) async fn ingest<S, E>(
        &self,
        body: S,
        expected_len: Option<u64>,
        allow_inline: bool,
        form: ChunkForm,
    ) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send,
        E: Into<Error>,
    {
        let mut md5 = Md5Stream::new();
        let mut progress = Progress::default();
        let mut outcome = self
            .chunk_body(
                body,
                expected_len,
                allow_inline,
                form,
                &mut md5,
                &mut progress,
            )
            .await;
        if outcome.is_ok()
            && let Err(e) = self.flush_chunks(&progress.unflushed).await
        {
            outcome = Err(e);
        }
        let md5 = match md5.finish().await {
            Ok(digest) => digest,
            Err(e) => {
                outcome = outcome.and(Err(e));
                [0; 16]
            }
        };
        match outcome {
            Ok((size, inline)) => Ok(Ingested {
                size,
                md5,
                data: match inline {
                    Some(bytes) => ObjectData::Inline(bytes),
                    None => ObjectData::Chunks(progress.chunks),
                },
                _pins: progress.pins,
                written: progress.written,
            }),
            Err(e) => {
                self.discard(Ingested {
                    size: 0,
                    md5,
                    data: ObjectData::Chunks(Vec::new()),
                    _pins: progress.pins,
                    written: progress.written,
                })
                .await;
                Err(e)
            }
        }
    }

    /// Returns the size and, for small objects, the bytes to store inline.
    async fn chunk_body<S, E>(
        &self,
        mut body: S,
        expected_len: Option<u64>,
        allow_inline: bool,
        form: ChunkForm,
        md5: &mut Md5Stream,
        progress: &mut Progress,
    ) -> Result<(u64, Option<Vec<u8>>)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send,
        E: Into<Error>,
    {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let mut in_flight = FuturesOrdered::new();
        let mut buf = BytesMut::new();
        let mut size: u64 = 0;
        let mut failure = None;
        loop {
            // Chunk work is polled while the body is read (it progresses, and frees its
            // shared slot, even while this client is slow to send); the body is read only
            // while fewer than CHUNKS_IN_FLIGHT chunks are under way.
            let frame = tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(e) = progress.take(done) {
                        failure = Some(e);
                        break;
                    }
                    continue;
                }
                frame = body.next(), if in_flight.len() < CHUNKS_IN_FLIGHT => frame,
            };
            let frame = match frame {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    failure = Some(e.into());
                    break;
                }
            };
            size += frame.len() as u64;
            if size > MAX_OBJECT_SIZE {
                failure = Some(Error::EntityTooLarge {
                    max: MAX_OBJECT_SIZE,
                });
                break;
            }
            if expected_len.is_some_and(|n| size > n) {
                failure = Some(Error::InvalidArgument(format!(
                    "the body is longer than the declared {} bytes",
                    expected_len.unwrap_or_default()
                )));
                break;
            }
            if let Err(e) = md5.feed(frame.clone()).await {
                failure = Some(e);
                break;
            }
            buf.extend_from_slice(&frame);
            while buf.len() >= self.chunk_size {
                let chunk = buf.split_to(self.chunk_size).freeze();
                in_flight.push_back(self.store_chunk(chunk, form.clone(), seen.clone()));
            }
        }
        if failure.is_none()
            && let Some(n) = expected_len
            && size < n
        {
            failure = Some(Error::IncompleteBody {
                got: size,
                expected: n,
            });
        }
        let inline = failure.is_none() && allow_inline && size <= self.inline_max as u64;
        if failure.is_none() && !inline && !buf.is_empty() {
            let rest = std::mem::take(&mut buf).freeze();
            in_flight.push_back(self.store_chunk(rest, form.clone(), seen.clone()));
        }
        // Always drain: shard writes already under way finish, so a cleanup sees them.
        while let Some(done) = in_flight.next().await {
            if let Err(e) = progress.take(done) {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None if inline => Ok((
                size,
                Some(match &form.seal {
                    Some(key) => key.seal_inline(&buf),
                    None => buf.to_vec(),
                }),
            )),
            None => Ok((size, None)),
        }
    }

    async fn store_chunk(
        &self,
        chunk: Bytes,
        form: ChunkForm,
        seen: Arc<Mutex<HashMap<[u8; 32], u32>>>,
    ) -> Result<StoredChunk> {
        let _slot = self
            .chunk_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("chunk slots closed".into()))?;
        let _foreground = self.foreground.enter();
        let (plain_hash, chunk) = tokio::task::spawn_blocking(move || {
            let hash = ChunkHash::of(&chunk);
            (hash, chunk)
        })
        .await?;
        if form.compress
            && let Some(found) = self.stored_compressed(&plain_hash, &chunk, &form).await?
        {
            return Ok(found);
        }
        // A compressed chunk is stored at an address of its own, an encrypted one sealed at
        // the address its (compressed form's) hash gives.
        let (hash, chunk, plain_len) = tokio::task::spawn_blocking(move || {
            let hash = plain_hash;
            let compressed = form
                .compress
                .then(|| super::compress::compress(&chunk))
                .flatten();
            let (hash, data, plain_len) = match compressed {
                Some(z) => (
                    ChunkHash(super::compress::address(&hash.0)),
                    Bytes::from(z),
                    chunk.len() as u32,
                ),
                None => (hash, chunk, 0),
            };
            match form.seal {
                Some(key) => {
                    let (address, sealed) = key.seal_chunk(&hash.0, &data);
                    (ChunkHash(address), sealed, plain_len)
                }
                None => (hash, data, plain_len),
            }
        })
        .await?;
        let pin = self.locks.pin(hash.0).await;
        let len = chunk.len() as u32;
        // Stored earlier by this request (not committed yet, so not recorded): in that pool.
        let already_here = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash.0)
            .copied();
        let checked_at = match already_here {
            Some(_) => None,
            None => self.absent_after_collection(hash.0).await?,
        };
        let (disks, pool) = if let Some(pool) = already_here {
            (Vec::new(), pool)
        } else if checked_at.is_none() {
            (Vec::new(), 0)
        } else {
            let pool = self.pools.choose(&hash)?;
            let report = match pool.store.put_chunk(hash, chunk).await {
                Ok(r) => r,
                Err(e) => {
                    // Shards that landed without a quorum are of no use: remove them now
                    // rather than leave them to the orphan sweep.
                    drop(pin);
                    self.discard_chunks(&[(hash.0, pool.id)]).await;
                    return Err(e.into());
                }
            };
            if !report.failed_positions.is_empty() {
                // Durable with a quorum, but short of full redundancy until healed.
                self.queue_heal(hash, len).await;
            }
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(hash.0, pool.id);
            (report.disks_written, pool.id)
        };
        Ok(StoredChunk {
            chunk: ChunkRef {
                hash: hash.0,
                len,
                stored_in: pool,
                plain_len,
            },
            pin,
            disks,
            checked_at,
        })
    }

    /// The chunk's compressed form when it is stored already: a dedup hit found without
    /// compressing the chunk again (which costs more than the lookup).
    async fn stored_compressed(
        &self,
        plain_hash: &ChunkHash,
        chunk: &Bytes,
        form: &ChunkForm,
    ) -> Result<Option<StoredChunk>> {
        let compressed = super::compress::address(&plain_hash.0);
        let address = match &form.seal {
            Some(key) => key.address_of(&compressed),
            None => compressed,
        };
        // Pinned before the lookup, as every stored chunk a request relies on: GC here cannot
        // take it between the two.
        let pin = self.locks.pin(address).await;
        let Some(len) = self.meta.chunk_stored_len(address).await? else {
            return Ok(None);
        };
        Ok(Some(StoredChunk {
            chunk: ChunkRef {
                hash: address,
                len,
                stored_in: 0,
                plain_len: chunk.len() as u32,
            },
            pin,
            disks: Vec::new(),
            checked_at: None,
        }))
    }

    /// Makes the shards this request wrote durable before anything refers to them: one flush
    /// per disk touched, instead of two fsyncs per shard. A chunk left with fewer durable
    /// shards than the write quorum fails the request; one short of full redundancy is queued
    /// for heal, as for a shard write that failed.
    async fn flush_chunks(&self, unflushed: &[(ChunkRef, Vec<usize>)]) -> Result<()> {
        let mut by_pool: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
        for (chunk, disks) in unflushed {
            by_pool
                .entry(chunk.stored_in)
                .or_default()
                .extend(disks.iter().copied());
        }
        let mut failed: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
        for (pool, disks) in by_pool {
            let store = self.pools.store(pool)?;
            let lost = store.sync_disks(&disks).await;
            if !lost.is_empty() {
                failed.insert(pool, lost);
            }
        }
        for (chunk, disks) in unflushed {
            let Some(failed) = failed.get(&chunk.stored_in) else {
                continue;
            };
            let layout = *self.pools.store(chunk.stored_in)?.layout();
            let durable = disks.iter().filter(|d| !failed.contains(d)).count();
            if durable < layout.write_quorum() {
                return Err(erasure::Error::WriteQuorum {
                    written: durable,
                    needed: layout.write_quorum(),
                    detail: format!("flushing shards failed on disk(s) {failed:?}"),
                }
                .into());
            }
            if durable < layout.set_size {
                self.queue_heal(ChunkHash(chunk.hash), chunk.len).await;
            }
        }
        Ok(())
    }
}
