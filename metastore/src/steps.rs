//! Changes too large for one commit (etcd: 128 operations per transaction), applied in steps
//! that stay correct with any number of writers.
//!
//! A large change is mostly reference counts (an object of 5,000 chunks changes 5,000
//! records) and, for a completed upload, part records to delete. The steps:
//! 1. an *intent* record naming every chunk whose count changes (`meta` tree,
//!    `intent/<start ms><random>`), so `check_refcounts` leaves those counts alone while the
//!    change is under way;
//! 2. the increments, a few chunks per commit, each commit guarded on the counts it read
//!    and retried alone on conflict (they are applied as changes, not as the values the
//!    transaction computed, so concurrent writers' changes to the same chunks are kept);
//! 3. the main batch (the manifest), with the transaction's own guards except those on
//!    counts (step 2 changed them): if it conflicts, the increments are taken back and the
//!    whole transaction runs again;
//! 4. the decrements (queueing chunks that reach 0 for GC), then the deletions that may
//!    follow the main batch, then the intent's removal.
//!
//! A crash between steps leaves counts too high (space, which `tessera admin check` reclaims
//! once the intent is old enough to be abandoned), never too low.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::kv::{Batch, Tree};
use crate::records::{decode, encode};
use crate::refs::RefDelta;
use crate::store::{Inner, now_ms};
use crate::txn::{
    Commit, Guard, Limits, MAX_ATTEMPTS, RefChange, Tx, TxParts, Txn, backoff, op_bytes,
};
use crate::{Error, Result};

/// Key prefix of intents in the `meta` tree.
pub(crate) const INTENT_PREFIX: &[u8] = b"intent/";

/// An intent older than this belongs to a writer that died: its chunks' counts may be
/// corrected again.
pub(crate) const INTENT_ABANDONED_MS: u64 = 3_600_000;

/// The chunks a change in steps is updating (versioned record).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct IntentRecord {
    pub started_ms: u64,
    /// The chunk hashes, 32 bytes each, one after the other.
    pub chunks: serde_bytes::ByteBuf,
}

impl IntentRecord {
    pub fn hashes(&self) -> impl Iterator<Item = [u8; 32]> + '_ {
        self.chunks
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
    }
}

/// The chunks named by intents that are not abandoned: their counts may be in flux.
pub(crate) fn chunks_in_flux(entries: &[(Vec<u8>, Vec<u8>)]) -> Result<HashSet<[u8; 32]>> {
    let now = now_ms();
    let mut out = HashSet::new();
    for (_, v) in entries {
        let intent: IntentRecord = decode(v)?;
        if now.saturating_sub(intent.started_ms) < INTENT_ABANDONED_MS {
            out.extend(intent.hashes());
        }
    }
    Ok(out)
}

fn intent_key() -> Vec<u8> {
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut key = INTENT_PREFIX.to_vec();
    key.extend_from_slice(&now_ms().to_be_bytes());
    key.extend_from_slice(&random.finish().to_be_bytes());
    key
}

fn exceeds(txn: &Txn, limits: Limits) -> bool {
    txn.guards.len() > limits.max_guards
        || txn.batch.ops.len() > limits.max_ops
        || txn.batch.ops.iter().map(op_bytes).sum::<usize>() > limits.max_bytes
}

impl Inner {
    /// Applies a transaction too large for one commit in steps (see the module docs).
    /// `Ok(false)`: its main batch conflicted; nothing of it is left applied, and the
    /// transaction must run again.
    pub(crate) fn apply_in_steps(&self, parts: TxParts) -> Result<bool> {
        let limits = self.kv.limits();
        let TxParts {
            guards,
            main,
            later,
            refs,
        } = parts;
        let guards: Vec<Guard> = guards
            .into_iter()
            .filter(|g| g.tree() != Tree::Refcounts)
            .collect();
        let main = Txn {
            guards,
            batch: main,
        };
        // The main batch is also guarded on the intent (below).
        if exceeds(&main, limits) || main.guards.len() + 1 > limits.max_guards {
            return Err(Error::TooLarge(format!(
                "the change's main part alone ({} writes, {} conditions) exceeds what the \
                 metadata store takes in one transaction",
                main.batch.ops.len(),
                main.guards.len()
            )));
        }
        let key = intent_key();
        let mut chunks = Vec::with_capacity(refs.len() * 32);
        for r in &refs {
            chunks.extend_from_slice(&r.hash);
        }
        let mut intent = Batch::default();
        intent.put(
            Tree::Meta,
            key.clone(),
            encode(&IntentRecord {
                started_ms: now_ms(),
                chunks: serde_bytes::ByteBuf::from(chunks),
            }),
        );
        self.commit(intent)?;
        let intent = Guard::Key {
            tree: Tree::Meta,
            rev: self.kv.get_rev(Tree::Meta, &key, None)?.rev,
            key: key.clone(),
        };
        let outcome = self.steps_after_intent(main, later, refs, limits, &intent);
        let mut done = Batch::default();
        done.delete(Tree::Meta, key);
        // Left behind (etcd lost just now), the intent only delays the recount of its chunks.
        if let Err(e) = self.commit(done) {
            tracing::warn!(error = %e, "could not remove a finished change's intent record");
        }
        outcome
    }

    /// Every commit here is guarded on the intent as well: `tessera admin check --repair`
    /// deletes an intent it judges abandoned (an hour old) and settles its chunks' counts from
    /// the manifests itself, so a writer that was only stalled that long must touch none of
    /// them afterwards (its increments would be counted twice, its decrements too).
    fn steps_after_intent(
        &self,
        mut main: Txn,
        later: Batch,
        refs: Vec<RefChange>,
        limits: Limits,
        intent: &Guard,
    ) -> Result<bool> {
        let (increments, decrements): (Vec<RefChange>, Vec<RefChange>) =
            refs.into_iter().partition(|r| r.change > 0);
        let per_step = ((limits.max_guards - 1).min(limits.max_ops / 2)).max(1);
        let mut applied = 0;
        for group in increments.chunks(per_step) {
            match self.ref_step(group, intent) {
                Ok(true) => applied += group.len(),
                Ok(false) => return Err(Error::Busy),
                Err(e) => {
                    self.take_back(&increments[..applied], per_step, intent);
                    return Err(e);
                }
            }
        }
        main.guards.push(intent.clone());
        let outcome = self.stats.commit(self.kv.as_ref(), main);
        match outcome {
            Ok(Commit::Done) => self.group.committed(),
            Ok(Commit::Conflict) => {
                self.take_back(&increments, per_step, intent);
                return Ok(false);
            }
            Err(e) => {
                // Unknown whether it landed (etcd unreachable): the increments stay, which
                // errs on the side of keeping data.
                return Err(e);
            }
        }
        // The change is made and acknowledged from here on: what is left only lowers counts
        // and removes records nothing reads, so a failure costs space (which `admin check`
        // reclaims), never the answer.
        for group in decrements.chunks(per_step) {
            match self.ref_step(group, intent) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not release the references a change let go; `tessera admin check` reclaims them");
                    break;
                }
            }
        }
        let mut step = Batch::default();
        let mut steps = Vec::new();
        for op in later.ops {
            if step.ops.len() + 1 > limits.max_ops {
                steps.push(std::mem::take(&mut step));
            }
            step.ops.push(op);
        }
        steps.push(step);
        for step in steps.into_iter().filter(|s| !s.is_empty()) {
            if let Err(e) = self.commit(step) {
                tracing::warn!(error = %e, "could not delete the records a change left behind; `tessera admin check --repair` does");
                break;
            }
        }
        Ok(true)
    }

    /// Undoes increments already applied (the change did not happen).
    fn take_back(&self, increments: &[RefChange], per_step: usize, intent: &Guard) {
        for group in increments.chunks(per_step) {
            let undo: Vec<RefChange> = group
                .iter()
                .map(|r| RefChange {
                    change: -r.change,
                    must_exist: false,
                    stored_after: None,
                    ..r.clone()
                })
                .collect();
            if let Err(e) = self.ref_step(&undo, intent) {
                tracing::warn!(error = %e, "could not take back the references of a change that did not happen; `tessera admin check` corrects them");
            }
        }
    }

    /// Whether the intent `intent` guards on is still there, unchanged.
    fn intent_stands(&self, intent: &Guard) -> Result<bool> {
        let Guard::Key { tree, key, rev } = intent else {
            return Ok(true);
        };
        let now = self.kv.get_rev(*tree, key, None)?;
        Ok(now.value.is_some() && now.rev == *rev)
    }

    /// Applies a few reference changes in one guarded commit, again until it holds.
    /// `Ok(false)`: the intent is gone (see `steps_after_intent`), and nothing was applied.
    fn ref_step(&self, group: &[RefChange], intent: &Guard) -> Result<bool> {
        let new_chunks: crate::refs::NewChunks = group
            .iter()
            .filter_map(|r| Some((r.hash, r.stored_after?)))
            .collect();
        let checked = group.iter().any(|r| r.must_exist);
        let new_chunks = checked.then(|| Arc::new(new_chunks));
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                self.stats.rerun();
                std::thread::sleep(backoff(attempt));
            }
            let mut delta = RefDelta::checked(new_chunks.clone());
            for r in group {
                delta.add_one(r.hash, r.change, r.len, r.pool);
            }
            let mut tx = Tx::new(self.kv.as_ref());
            self.apply_refs(&mut tx, delta)?;
            let mut txn = tx.into_txn();
            txn.guards.push(intent.clone());
            if self.stats.commit(self.kv.as_ref(), txn)? == Commit::Done {
                self.group.committed();
                return Ok(true);
            }
            if !self.intent_stands(intent)? {
                return Ok(false);
            }
        }
        Err(Error::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::LocalTxn;
    use crate::{MemoryKv, MetaStore};

    /// A step of a change whose intent `admin check --repair` already removed (and whose
    /// counts it settled) applies nothing; one whose intent stands applies.
    #[tokio::test]
    async fn steps_apply_only_while_their_intent_stands() {
        let store = MetaStore::with_store(
            LocalTxn::optimistic(MemoryKv::new()),
            std::time::Duration::ZERO,
        );
        let applied = store
            .run(|s| {
                let change = RefChange {
                    hash: [9; 32],
                    change: 1,
                    len: 10,
                    pool: 0,
                    must_exist: false,
                    stored_after: None,
                };
                let key = intent_key();
                let mut b = Batch::default();
                b.put(Tree::Meta, key.clone(), b"{}".to_vec());
                s.commit(b)?;
                let intent = Guard::Key {
                    tree: Tree::Meta,
                    rev: s.kv.get_rev(Tree::Meta, &key, None)?.rev,
                    key: key.clone(),
                };
                let first = s.ref_step(std::slice::from_ref(&change), &intent)?;
                let mut b = Batch::default();
                b.delete(Tree::Meta, key);
                s.commit(b)?;
                let second = s.ref_step(&[change], &intent)?;
                Ok((first, second))
            })
            .await
            .unwrap();
        assert_eq!(applied, (true, false));
        assert_eq!(store.chunk_refcount([9; 32]).await.unwrap(), Some(1));
    }
}
