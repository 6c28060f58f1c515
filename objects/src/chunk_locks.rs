//! Coordination between writers that reuse or create chunks and the deleters (GC, cleanup of
//! failed uploads) that remove shards.
//!
//! A writer *pins* every chunk hash it touches from the moment it decides "already stored" or
//! "write it" until its metadata commit is done. A deleter may only claim a hash nobody has
//! pinned, and writers that arrive while a deletion runs wait for it to finish, then find the
//! chunk gone and write it again. Without this, GC could delete the shards of a chunk that a
//! concurrent upload has just decided to reuse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

type Hash = [u8; 32];

enum Slot {
    Pinned(usize),
    Deleting,
}

#[derive(Default)]
pub struct ChunkLocks {
    slots: Mutex<HashMap<Hash, Slot>>,
    released: Notify,
}

impl std::fmt::Debug for ChunkLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkLocks").finish_non_exhaustive()
    }
}

/// Keeps a chunk from being deleted while held.
#[derive(Debug)]
pub struct Pin {
    locks: Arc<ChunkLocks>,
    hash: Hash,
}

/// Exclusive right to delete a chunk's shards while held.
#[derive(Debug)]
pub struct DeleteClaim {
    locks: Arc<ChunkLocks>,
    hash: Hash,
}

impl ChunkLocks {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn pin(self: &Arc<Self>, hash: Hash) -> Pin {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Register for the wake-up before looking, so a release in between is not lost.
            released.as_mut().enable();
            {
                let mut slots = self.slots();
                match slots.get_mut(&hash) {
                    None => {
                        slots.insert(hash, Slot::Pinned(1));
                        break;
                    }
                    Some(Slot::Pinned(n)) => {
                        *n += 1;
                        break;
                    }
                    Some(Slot::Deleting) => {}
                }
            }
            released.await;
        }
        Pin {
            locks: self.clone(),
            hash,
        }
    }

    /// Claims a chunk for deletion unless someone has it pinned or is deleting it already.
    pub fn try_claim_delete(self: &Arc<Self>, hash: Hash) -> Option<DeleteClaim> {
        let mut slots = self.slots();
        if slots.contains_key(&hash) {
            return None;
        }
        slots.insert(hash, Slot::Deleting);
        Some(DeleteClaim {
            locks: self.clone(),
            hash,
        })
    }

    #[cfg(test)]
    fn is_idle(&self) -> bool {
        self.slots().is_empty()
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut slots = self.locks.slots();
        if let Some(Slot::Pinned(n)) = slots.get_mut(&self.hash) {
            *n -= 1;
            if *n == 0 {
                slots.remove(&self.hash);
            }
        }
    }
}

impl Drop for DeleteClaim {
    fn drop(&mut self) {
        self.locks.slots().remove(&self.hash);
        self.locks.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn pins_block_deletion_and_deletion_delays_pins() {
        let locks = Arc::new(ChunkLocks::default());
        let p1 = locks.pin([1; 32]).await;
        let p2 = locks.pin([1; 32]).await;
        assert!(locks.try_claim_delete([1; 32]).is_none());
        drop(p1);
        assert!(locks.try_claim_delete([1; 32]).is_none());
        drop(p2);
        let claim = locks
            .try_claim_delete([1; 32])
            .expect("unpinned chunk can be claimed");
        assert!(locks.try_claim_delete([1; 32]).is_none());

        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move { locks.pin([1; 32]).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "a pin waits while the chunk is being deleted"
        );
        drop(claim);
        let pin = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        drop(pin);
        assert!(locks.is_idle());
    }
}
