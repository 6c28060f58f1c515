//! The persistent queue of event notifications waiting for delivery.
//!
//! Gateways append to it as they answer writes; the leader delivers from it, oldest first, and
//! removes what was delivered, so an event outlives a restart or a change of leader until a
//! target took it. A key is the time the event was queued (ms, big-endian) and 8 bytes unique
//! to the gateway and event: keys sort oldest first and never collide between gateways.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;
use crate::kv::{Batch, Tree, scan_all};
use crate::records::{EventRecord, decode, encode};
use crate::store::MetaStore;
use crate::txn::Reader;

/// Queue entries removed per commit when the queue is trimmed (etcd takes 128 per transaction).
const TRIM_STEP: usize = 100;

/// A queued event's key.
fn event_key(time_ms: i64) -> Vec<u8> {
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Random per process (std's hasher keys are), then counted: unique across gateways.
    let seed = *SEED.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let unique = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
    let mut key = (time_ms.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(&unique.to_be_bytes());
    key
}

impl MetaStore {
    /// Appends `events` to the queue in one commit.
    pub async fn enqueue_events(&self, events: Vec<EventRecord>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.run(move |s| {
            let mut b = Batch::default();
            for e in &events {
                b.put(Tree::Events, event_key(e.time_ms), encode(e));
            }
            s.commit(b)
        })
        .await
    }

    /// Up to `limit` queued events after the one with key `after` (from the oldest without
    /// it), oldest first, with their keys.
    pub async fn queued_events(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, EventRecord)>> {
        self.run(move |s| {
            let start = after
                .as_ref()
                .map_or_else(Vec::new, |a| [a.as_slice(), &[0]].concat());
            s.kv.scan(Tree::Events, &start, None, limit)?
                .into_iter()
                .map(|(k, v)| Ok((k, decode(&v)?)))
                .collect()
        })
        .await
    }

    /// Removes a delivered event.
    pub async fn event_delivered(&self, key: Vec<u8>) -> Result<()> {
        self.run(move |s| {
            let mut b = Batch::default();
            b.delete(Tree::Events, key.clone());
            s.commit(b)
        })
        .await
    }

    /// Records a failed delivery attempt (`record` with its new count and next time), unless
    /// the event left the queue meanwhile (trimmed).
    pub async fn event_failed(&self, key: Vec<u8>, record: EventRecord) -> Result<()> {
        self.txn(move |_, tx| {
            if tx.get_raw(Tree::Events, &key)?.is_some() {
                tx.put(Tree::Events, key.clone(), encode(&record));
            }
            Ok(())
        })
        .await
    }

    /// How many events wait.
    pub async fn events_queued(&self) -> Result<u64> {
        self.run(|s| {
            let mut n = 0;
            scan_all(s.kv.as_ref(), Tree::Events, |_| {
                n += 1;
                Ok(())
            })?;
            Ok(n)
        })
        .await
    }

    /// Removes the oldest events beyond the newest `max`; returns how many were removed.
    pub async fn trim_events(&self, max: u64) -> Result<u64> {
        let queued = self.events_queued().await?;
        let mut excess = queued.saturating_sub(max);
        let mut removed = 0;
        while excess > 0 {
            let step = excess.min(TRIM_STEP as u64) as usize;
            let n = self
                .run(move |s| {
                    let oldest = s.kv.scan(Tree::Events, &[], None, step)?;
                    let mut b = Batch::default();
                    for (k, _) in &oldest {
                        b.delete(Tree::Events, k.clone());
                    }
                    s.commit(b)?;
                    Ok(oldest.len() as u64)
                })
                .await?;
            if n == 0 {
                break;
            }
            removed += n;
            excess -= n.min(excess);
        }
        Ok(removed)
    }
}
