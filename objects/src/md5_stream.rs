//! The MD5 of a body as it streams by (the ETag S3 clients check).
//!
//! MD5 is the slowest stage of an upload (~0.65 GB/s per core), so for a large body it runs
//! on a thread of its own, in parallel with chunking, SHA-256 and the shard writes. That
//! thread is a dedicated one, not one of tokio's blocking pool: it lives as long as the upload,
//! and uploads waiting on slow clients must never be able to occupy the whole pool that every
//! file and metadata operation needs. Small bodies (most requests) are hashed in place, with
//! no thread at all.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Bytes hashed in place before the hashing moves to its own thread (0.4 ms of CPU).
const INLINE_LIMIT: usize = 256 * 1024;

pub(crate) struct Md5Stream {
    inline: Option<Md5>,
    hashed: usize,
    worker: Option<(mpsc::Sender<Bytes>, oneshot::Receiver<[u8; 16]>)>,
}

impl Md5Stream {
    pub fn new() -> Self {
        Md5Stream {
            inline: Some(Md5::new()),
            hashed: 0,
            worker: None,
        }
    }

    pub async fn feed(&mut self, piece: Bytes) -> Result<()> {
        if self.worker.is_none() && self.hashed + piece.len() > INLINE_LIMIT {
            self.start_worker()?;
        }
        match (&self.worker, &mut self.inline) {
            (Some((tx, _)), _) => tx
                .send(piece)
                .await
                .map_err(|_| Error::Internal("MD5 worker stopped".into())),
            (None, Some(h)) => {
                h.update(&piece);
                self.hashed += piece.len();
                Ok(())
            }
            (None, None) => Err(Error::Internal("MD5 state lost".into())),
        }
    }

    fn start_worker(&mut self) -> Result<()> {
        let mut hasher = self.inline.take().unwrap_or_default();
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("md5".into())
            .spawn(move || {
                while let Some(b) = rx.blocking_recv() {
                    hasher.update(&b);
                }
                let _ = done_tx.send(<[u8; 16]>::from(hasher.finalize()));
            })
            .map_err(|e| Error::Internal(format!("cannot start the MD5 thread: {e}")))?;
        self.worker = Some((tx, done_rx));
        Ok(())
    }

    pub async fn finish(self) -> Result<[u8; 16]> {
        match (self.worker, self.inline) {
            (Some((tx, done)), _) => {
                drop(tx);
                done.await
                    .map_err(|_| Error::Internal("MD5 worker stopped".into()))
            }
            (None, Some(h)) => Ok(<[u8; 16]>::from(h.finalize())),
            (None, None) => Err(Error::Internal("MD5 state lost".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inline_and_threaded_hashing_agree_with_md5() {
        for len in [
            0usize,
            10,
            INLINE_LIMIT,
            INLINE_LIMIT + 1,
            3 * INLINE_LIMIT + 17,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut s = Md5Stream::new();
            for piece in data.chunks(100_000) {
                s.feed(Bytes::copy_from_slice(piece)).await.unwrap();
            }
            let expected: [u8; 16] = Md5::digest(&data).into();
            assert_eq!(s.finish().await.unwrap(), expected, "length {len}");
        }
    }
}
