//! [`LocalTxn`]: the transactional boundary ([`TxnStore`]) over a local ordered store, with
//! revisions kept in memory (this process is the store's only writer).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use crate::Result;
use crate::kv::{Entry, KvStore, Op, SnapshotFn, Tree, Visitor};
use crate::txn::{Commit, Guard, KeyRead, Rev, Txn, TxnStore};

/// Revisions and guards over a local ordered store (RocksDB, memory, a mirror).
///
/// Revisions live in memory: this process is the store's only writer, so a commit counter and
/// the revision of each key written since the last pruning are all a guard needs. Keys not
/// written since then have the revision `floor`; pruning raises the floor, which makes guards
/// read before it fail (one retry), never pass wrongly. Commits are applied without a flush;
/// [`TxnStore::sync`] flushes (the metastore's group commit calls it).
pub struct LocalTxn<K> {
    kv: K,
    /// When false, transactions run optimistically even here (tests use it to drive the retry
    /// path the way several gateways on etcd do).
    single_writer: bool,
    state: Mutex<Revisions>,
}

#[derive(Default)]
struct Revisions {
    /// The latest commit.
    rev: Rev,
    /// The revision of every key written after `floor`, by tree.
    written: HashMap<Tree, BTreeMap<Vec<u8>, Rev>>,
    /// How many keys `written` holds.
    remembered: usize,
    floor: Rev,
}

/// Past this many remembered keys the history is dropped (about 100 bytes each).
const HISTORY_LIMIT: usize = 100_000;

impl Revisions {
    fn of(&self, tree: Tree, key: &[u8]) -> Rev {
        self.written
            .get(&tree)
            .and_then(|t| t.get(key))
            .copied()
            .unwrap_or(self.floor)
    }

    fn holds(&self, guard: &Guard) -> bool {
        match guard {
            Guard::Key { tree, key, rev } => self.of(*tree, key) == *rev,
            Guard::Range {
                tree,
                start,
                end,
                rev,
            } => {
                if self.floor > *rev {
                    return false;
                }
                if end.as_ref().is_some_and(|e| e <= start) {
                    return true;
                }
                let Some(t) = self.written.get(tree) else {
                    return true;
                };
                let upper = match end {
                    Some(e) => Bound::Excluded(e.as_slice()),
                    None => Bound::Unbounded,
                };
                !t.range::<[u8], _>((Bound::Included(start.as_slice()), upper))
                    .any(|(_, &written)| written > *rev)
            }
        }
    }
}

impl<K: KvStore> LocalTxn<K> {
    /// The store for this process alone: transactions are serialised by the caller.
    pub fn new(kv: K) -> Self {
        Self::with_mode(kv, true)
    }

    /// The store with optimistic transactions, as on a shared backend.
    pub fn optimistic(kv: K) -> Self {
        Self::with_mode(kv, false)
    }

    fn with_mode(kv: K, single_writer: bool) -> Self {
        LocalTxn {
            kv,
            single_writer,
            state: Mutex::new(Revisions::default()),
        }
    }

    fn revisions(&self) -> std::sync::MutexGuard<'_, Revisions> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inner(&self) -> &K {
        &self.kv
    }
}

impl<K: KvStore> TxnStore for LocalTxn<K> {
    fn get_rev(&self, tree: Tree, key: &[u8], _at: Option<Rev>) -> Result<KeyRead> {
        // The revision first: a commit that lands between the two reads makes the value newer
        // than the revision, so a guard on it fails (a retry), never passes on a stale value.
        let (rev, at) = {
            let revs = self.revisions();
            (revs.of(tree, key), revs.rev)
        };
        Ok(KeyRead {
            value: self.kv.get(tree, key)?,
            rev,
            at,
        })
    }

    fn scan_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        _at: Option<Rev>,
    ) -> Result<(Vec<Entry>, Rev)> {
        let rev = self.revisions().rev;
        Ok((self.kv.scan(tree, start, end, limit)?, rev))
    }

    fn commit(&self, txn: Txn) -> Result<Commit> {
        let mut revs = self.revisions();
        if !txn.guards.iter().all(|g| revs.holds(g)) {
            return Ok(Commit::Conflict);
        }
        if txn.batch.is_empty() {
            return Ok(Commit::Done);
        }
        let keys: Vec<(Tree, Vec<u8>)> = txn
            .batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(t, k, _) | Op::Delete(t, k) => (*t, k.clone()),
            })
            .collect();
        self.kv.write_unsynced(txn.batch)?;
        revs.rev += 1;
        let rev = revs.rev;
        if revs.remembered + keys.len() > HISTORY_LIMIT {
            revs.written.clear();
            revs.remembered = 0;
            revs.floor = rev;
        } else {
            for (tree, key) in keys {
                if revs
                    .written
                    .entry(tree)
                    .or_default()
                    .insert(key, rev)
                    .is_none()
                {
                    revs.remembered += 1;
                }
            }
        }
        Ok(Commit::Done)
    }

    fn sync(&self) -> Result<()> {
        self.kv.sync()
    }

    fn single_writer(&self) -> bool {
        self.single_writer
    }

    /// The local store's own snapshot: its batches are atomic, so any moment is consistent.
    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()> {
        self.kv.with_snapshot(read)
    }

    // Plain reads (GET, listings) need no revision: they skip the revisions' lock.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.kv.get(tree, key)
    }

    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.kv.scan(tree, start, end, limit)
    }

    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        self.kv.scan_each(tree, start, end, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::tests::{put, store};
    use crate::txn::{Reader, Tx};

    #[test]
    fn pruned_history_fails_older_guards_instead_of_passing_them() {
        let s = store();
        put(&s, b"a");
        let mut tx = Tx::new(&s);
        tx.get_raw(Tree::Buckets, b"zzz").unwrap();
        tx.scan(Tree::Users, b"", None, 10).unwrap();
        let txn = tx.into_txn();
        {
            let mut revs = s.revisions();
            revs.written.clear();
            revs.remembered = 0;
            revs.rev += 1;
            revs.floor = revs.rev;
        }
        assert_eq!(s.commit(txn).unwrap(), Commit::Conflict);
    }
}
