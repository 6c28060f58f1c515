//! The transactional metadata boundary, [`TxnStore`]: reads that report revisions, and commits
//! that apply a batch only if what the transaction read is unchanged (optimistic concurrency).
//!
//! A metadata change is a transaction: the domain code reads through a [`Tx`], which records a
//! [`Guard`] for each read, and writes into its batch; [`TxnStore::commit`] applies the batch
//! atomically if every guard still holds, else answers [`Commit::Conflict`] and the caller
//! runs the transaction again ([`crate::MetaStore`] does, with backoff). This is the contract
//! several gateways sharing one etcd need; local stores implement it with [`LocalTxn`].
//!
//! Contract for every implementation:
//! - a revision is the number of the commit that last wrote a key (etcd's `mod_revision`);
//!   [`TxnStore::get_rev`] returns it with the value, and both reads return the store
//!   revision they read at. Given `at`, a store that keeps history (etcd) reads the state as
//!   of that revision, so all reads of one transaction see one snapshot; a local store reads
//!   its latest state (its guards see deletions too, and in production its transactions are
//!   serialised, so they need no snapshot);
//! - `commit` applies all operations or none; with guards, only when every guard holds:
//!   [`Guard::Key`] — the key's revision is unchanged (it was neither written nor deleted);
//!   [`Guard::Range`] — no key in the range was put after the read (a deletion may go unseen,
//!   as in etcd: guard the keys whose deletion matters with `Key`);
//! - [`TxnStore::sync`] makes every commit before it durable (local stores group their WAL
//!   flushes; etcd's commits are durable when they return).

use std::collections::BTreeMap;

use crate::Result;
use crate::kv::{Batch, Entry, Op, SnapshotFn, SnapshotRead, Tree, Visitor, visit_pages};
use crate::records::decode;

pub use crate::local_txn::LocalTxn;

/// The commit that last wrote a key, or the store's latest commit (see the module docs).
pub type Rev = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The key still has revision `rev`: it was not written (or deleted) since it was read.
    Key { tree: Tree, key: Vec<u8>, rev: Rev },
    /// No key in `[start, end)` was put after store revision `rev`.
    Range {
        tree: Tree,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        rev: Rev,
    },
}

impl Guard {
    pub fn tree(&self) -> Tree {
        match self {
            Guard::Key { tree, .. } | Guard::Range { tree, .. } => *tree,
        }
    }
}

/// What a transaction relied on, and what it writes.
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub guards: Vec<Guard>,
    pub batch: Batch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// A guard failed: nothing was written.
    Conflict,
}

/// How large one transaction may be (etcd: 128 operations, 1.5 MiB per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_ops: usize,
    pub max_guards: usize,
    pub max_bytes: usize,
}

impl Limits {
    pub const UNBOUNDED: Limits = Limits {
        max_ops: usize::MAX,
        max_guards: usize::MAX,
        max_bytes: usize::MAX,
    };
}

/// A key as read: its value, its revision, and the store revision of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRead {
    pub value: Option<Vec<u8>>,
    pub rev: Rev,
    pub at: Rev,
}

pub trait TxnStore: Send + Sync + 'static {
    /// A key's value and revision, as of `at` where the store keeps history. Blocking, like
    /// every method here.
    fn get_rev(&self, tree: Tree, key: &[u8], at: Option<Rev>) -> Result<KeyRead>;
    /// Up to `limit` entries with `start <= key < end`, ascending (as of `at` where the store
    /// keeps history), and the store revision of the read.
    fn scan_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        at: Option<Rev>,
    ) -> Result<(Vec<Entry>, Rev)>;
    /// Applies `txn.batch` atomically if every guard holds.
    fn commit(&self, txn: Txn) -> Result<Commit>;
    /// Makes every commit made before this call durable.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// True when this process is the store's only writer (a local store): the caller may
    /// then serialise its transactions with a lock, so that none ever conflicts (and none is
    /// ever retried). A shared store (etcd) has any number of writers.
    fn single_writer(&self) -> bool {
        false
    }
    fn limits(&self) -> Limits {
        Limits::UNBOUNDED
    }
    /// The fencing token of the role this store's commits are fenced on (the leader's), larger
    /// than any earlier holder's; 0 when they are not fenced (a local store, a gateway that
    /// does not lead). Shard deletions carry it (see `erasure::FenceMark`).
    fn fence_token(&self) -> u64 {
        0
    }
    /// A counter that grows whenever another writer may have changed a key of one of the
    /// `(tree, key prefix)` pairs, for caches that follow a shared store; `None` for a store
    /// only this process writes (its caches see their own changes).
    fn watch(&self, prefixes: &[(Tree, &[u8])]) -> Option<tokio::sync::watch::Receiver<u64>> {
        let _ = prefixes;
        None
    }
    /// Runs `read` over the store as it is now, frozen, while writers go on (see
    /// [`KvStore::with_snapshot`]). A store that keeps history implements it with
    /// [`read_at_revision`].
    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()>;

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_rev(tree, key, None)?.value)
    }
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        Ok(self.scan_rev(tree, start, end, limit, None)?.0)
    }
    /// As [`KvStore::scan_each`]: entries handed to `visit` borrowed, as they are read.
    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        visit_pages(start, |s, limit| self.scan(tree, s, end, limit), visit)
    }
}

/// Reads of a store that keeps history, all at one revision.
struct AtRevision<'a, S: ?Sized> {
    store: &'a S,
    rev: Rev,
}

impl<S: TxnStore + ?Sized> SnapshotRead for AtRevision<'_, S> {
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        Ok(self
            .store
            .scan_rev(tree, start, end, limit, Some(self.rev))?
            .0)
    }
}

/// [`TxnStore::with_snapshot`] for a store whose reads can name a past revision (etcd): every
/// read is made at the revision current when it starts. If the store compacts that revision
/// away meanwhile, the reads fail with [`crate::Error::Changed`].
pub fn read_at_revision<S: TxnStore + ?Sized>(store: &S, read: SnapshotFn<'_>) -> Result<()> {
    // An empty range answers with the store's current revision.
    let (_, rev) = store.scan_rev(Tree::Meta, &[], Some(&[]), 0, None)?;
    read(&AtRevision { store, rev })
}

/// Reads for the domain code, inside a transaction ([`Tx`], recording guards) or outside
/// ([`Plain`]), so that lookups such as "find the null version" are written once.
pub(crate) trait Reader {
    fn get_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn scan(
        &mut self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    fn get<T: serde::de::DeserializeOwned>(&mut self, tree: Tree, key: &[u8]) -> Result<Option<T>> {
        self.get_raw(tree, key)?.map(|v| decode(&v)).transpose()
    }
}

/// Reads outside any transaction.
pub(crate) struct Plain<'a>(pub &'a dyn TxnStore);

impl Reader for Plain<'_> {
    fn get_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(tree, key)
    }
    fn scan(
        &mut self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.0.scan(tree, start, end, limit)
    }
}

/// One attempt of a transaction: reads record guards, writes go to the batch. Every read
/// after the first is made at the first one's revision (one snapshot, on stores with history).
///
/// Reference-count changes are kept twice: as the records they produce (`first`: increments,
/// `last`: decrements and GC queue entries), which a transaction that fits one commit writes
/// with the rest, and as changes (`refs`), which a transaction too large for one commit
/// applies in steps of their own ([`crate::steps`]). `later` holds deletions that may follow
/// the main batch in separate commits (the part records of a completed upload).
pub(crate) struct Tx<'a> {
    kv: &'a dyn TxnStore,
    at: Option<Rev>,
    guards: Vec<Guard>,
    first: Batch,
    pub batch: Batch,
    last: Batch,
    later: Batch,
    refs: Vec<RefChange>,
}

/// One chunk's reference-count change, as a transaction made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefChange {
    pub hash: [u8; 32],
    pub change: i64,
    pub len: u32,
    /// The pool a record this change creates names.
    pub pool: u32,
    /// The chunk must still be stored (a reference to existing data, not a chunk this
    /// request wrote): an increment that finds no record, or one being deleted, fails.
    pub must_exist: bool,
    /// For a chunk the writer stored itself: the revision at which it found it not stored.
    pub stored_after: Option<Rev>,
}

/// A transaction taken apart for applying in steps.
pub(crate) struct TxParts {
    pub guards: Vec<Guard>,
    pub main: Batch,
    pub later: Batch,
    pub refs: Vec<RefChange>,
}

impl<'a> Tx<'a> {
    pub fn new(kv: &'a dyn TxnStore) -> Self {
        Tx {
            kv,
            at: None,
            guards: Vec::new(),
            first: Batch::default(),
            batch: Batch::default(),
            last: Batch::default(),
            later: Batch::default(),
            refs: Vec::new(),
        }
    }

    /// Records a reference-count change (see the type's docs).
    pub fn record_ref(&mut self, change: RefChange) {
        self.refs.push(change);
    }

    /// A deletion that may be applied after the main batch, in a commit of its own, when the
    /// transaction is too large for one (see the type's docs).
    pub fn delete_later(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.later.delete(tree, key);
    }

    /// A write of the first phase (see the type's docs).
    pub fn put_first(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.first.put(tree, key, value);
    }

    /// A write of the last phase (see the type's docs).
    pub fn put_last(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.last.put(tree, key, value);
    }

    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.batch.put(tree, key, value);
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.batch.delete(tree, key);
    }

    pub fn has_guards(&self) -> bool {
        !self.guards.is_empty()
    }

    /// The transaction to commit: guards without repeats, and one operation per key (the
    /// last), since etcd refuses a transaction that writes a key twice.
    /// The revision of the key read last (by key), if that was a key read.
    pub(crate) fn last_key_rev(&self) -> Option<Rev> {
        match self.guards.last()? {
            Guard::Key { rev, .. } => Some(*rev),
            Guard::Range { .. } => None,
        }
    }

    pub fn into_txn(self) -> Txn {
        let mut guards: Vec<Guard> = Vec::with_capacity(self.guards.len());
        for g in self.guards {
            if !guards.contains(&g) {
                guards.push(g);
            }
        }
        let [first, main, last, later] =
            last_write_per_key([self.first, self.batch, self.last, self.later]);
        let mut ops = first.ops;
        ops.extend(main.ops);
        ops.extend(last.ops);
        ops.extend(later.ops);
        Txn {
            guards,
            batch: Batch { ops },
        }
    }

    /// Whether the transaction is larger than `limits` allow in one commit.
    pub fn exceeds(&self, limits: Limits) -> bool {
        let phases = [&self.first, &self.batch, &self.last, &self.later];
        let ops: usize = phases.iter().map(|b| b.ops.len()).sum();
        let bytes: usize = phases.iter().flat_map(|b| &b.ops).map(op_bytes).sum();
        ops > limits.max_ops || bytes > limits.max_bytes || self.guards.len() > limits.max_guards
    }

    /// The transaction taken apart for [`crate::steps`]: its guards, its main batch, the
    /// deletions that may follow it, and its reference changes (the records `first` and
    /// `last` hold are dropped: the steps compute them again from the changes).
    pub fn into_parts(self) -> TxParts {
        let [main, later] = last_write_per_key([self.batch, self.later]);
        let mut guards: Vec<Guard> = Vec::with_capacity(self.guards.len());
        for g in self.guards {
            if !guards.contains(&g) {
                guards.push(g);
            }
        }
        TxParts {
            guards,
            main,
            later,
            refs: self.refs,
        }
    }

    /// Only the guards: to confirm that reads an error answer rests on still hold.
    pub fn guards_only(self) -> Txn {
        Txn {
            guards: self.guards,
            batch: Batch::default(),
        }
    }
}

impl Reader for Tx<'_> {
    fn get_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let read = self.kv.get_rev(tree, key, self.at)?;
        self.at.get_or_insert(read.at);
        self.guards.push(Guard::Key {
            tree,
            key: key.to_vec(),
            rev: read.rev,
        });
        Ok(read.value)
    }

    fn scan(
        &mut self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let (entries, rev) = self.kv.scan_rev(tree, start, end, limit, self.at)?;
        self.at.get_or_insert(rev);
        // A page cut short by the limit covers only up to its last key.
        let end = match entries.last() {
            Some((last, _)) if entries.len() == limit => {
                let mut e = last.clone();
                e.push(0);
                Some(e)
            }
            _ => end.map(<[u8]>::to_vec),
        };
        self.guards.push(Guard::Range {
            tree,
            start: start.to_vec(),
            end,
            rev,
        });
        Ok(entries)
    }
}

pub(crate) fn op_bytes(op: &Op) -> usize {
    match op {
        Op::Put(_, k, v) => k.len() + v.len() + 32,
        Op::Delete(_, k) => k.len() + 32,
    }
}

/// Each key written once, by its last write across the phases (etcd refuses a transaction
/// that writes a key twice); the order of what is kept does not change.
fn last_write_per_key<const N: usize>(phases: [Batch; N]) -> [Batch; N] {
    let mut last: BTreeMap<(Tree, &[u8]), (usize, usize)> = BTreeMap::new();
    for (p, batch) in phases.iter().enumerate() {
        for (i, op) in batch.ops.iter().enumerate() {
            let (Op::Put(t, k, _) | Op::Delete(t, k)) = op;
            last.insert((*t, k.as_slice()), (p, i));
        }
    }
    let keep: std::collections::HashSet<(usize, usize)> = last.into_values().collect();
    let mut p = 0;
    phases.map(|batch| {
        let kept = batch
            .ops
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(&(p, *i)))
            .map(|(_, op)| op)
            .collect();
        p += 1;
        Batch { ops: kept }
    })
}

/// How often a transaction is tried before the store is declared too busy.
pub(crate) const MAX_ATTEMPTS: u32 = 64;

/// The pause before attempt `n` (from 1): jittered, doubling from 1 ms to 100 ms.
pub(crate) fn backoff(n: u32) -> std::time::Duration {
    let cap_us = (1000u64 << n.min(7)).min(100_000);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        % cap_us.max(1);
    std::time::Duration::from_micros(cap_us / 2 + jitter / 2)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::MemoryKv;

    /// A local store whose transactions run optimistically (as on etcd).
    pub(crate) fn store() -> LocalTxn<MemoryKv> {
        LocalTxn::optimistic(MemoryKv::new())
    }

    /// Puts `key` in the buckets tree, unguarded.
    pub(crate) fn put(s: &LocalTxn<MemoryKv>, key: &[u8]) {
        let mut b = Batch::default();
        b.put(Tree::Buckets, key.to_vec(), b"v".to_vec());
        assert_eq!(
            s.commit(Txn {
                guards: vec![],
                batch: b
            })
            .unwrap(),
            Commit::Done
        );
    }

    #[test]
    fn key_guards_fail_after_a_write_or_delete_of_that_key_only() {
        let s = store();
        put(&s, b"a");
        let mut tx = Tx::new(&s);
        tx.get_raw(Tree::Buckets, b"a").unwrap();
        tx.get_raw(Tree::Buckets, b"missing").unwrap();
        tx.put(Tree::Buckets, b"c".to_vec(), b"1".to_vec());
        let txn = tx.into_txn();
        put(&s, b"b"); // unrelated
        assert_eq!(s.commit(txn.clone()).unwrap(), Commit::Done);

        let mut tx = Tx::new(&s);
        tx.get_raw(Tree::Buckets, b"missing").unwrap();
        let txn = tx.into_txn();
        put(&s, b"missing");
        assert_eq!(s.commit(txn).unwrap(), Commit::Conflict);

        let mut tx = Tx::new(&s);
        tx.get_raw(Tree::Buckets, b"a").unwrap();
        let txn = tx.into_txn();
        let mut b = Batch::default();
        b.delete(Tree::Buckets, b"a".to_vec());
        s.commit(Txn {
            guards: vec![],
            batch: b,
        })
        .unwrap();
        assert_eq!(s.commit(txn).unwrap(), Commit::Conflict);
    }

    #[test]
    fn range_guards_see_puts_inside_the_range_read() {
        let s = store();
        for k in [b"k1", b"k2", b"k3", b"k4"] {
            put(&s, k);
        }
        let mut tx = Tx::new(&s);
        // Cut short by its limit, the read covers k1..=k2 only.
        assert_eq!(tx.scan(Tree::Buckets, b"k", None, 2).unwrap().len(), 2);
        let txn = tx.into_txn();
        put(&s, b"k3"); // past the page read
        put(&s, b"j"); // before it
        assert_eq!(s.commit(txn.clone()).unwrap(), Commit::Done);
        put(&s, b"k15"); // inside it
        assert_eq!(s.commit(txn).unwrap(), Commit::Conflict);
    }

    #[test]
    fn parts_keep_the_main_batch_apart_from_later_deletions_and_references() {
        let s = store();
        let mut tx = Tx::new(&s);
        tx.get_raw(Tree::Objects, b"o").unwrap();
        tx.get_raw(Tree::Objects, b"o").unwrap();
        tx.delete_later(Tree::Parts, b"p1".to_vec());
        tx.put(Tree::Versions, b"v".to_vec(), b"1".to_vec());
        tx.put_first(Tree::Refcounts, vec![1], b"1".to_vec());
        tx.put_last(Tree::Refcounts, vec![2], b"0".to_vec());
        let change = RefChange {
            hash: [1; 32],
            change: 1,
            len: 5,
            pool: 0,
            must_exist: false,
            stored_after: None,
        };
        tx.record_ref(change.clone());
        let limits = Limits {
            max_ops: 3,
            max_guards: 3,
            max_bytes: 1 << 20,
        };
        assert!(tx.exceeds(limits));
        let parts = tx.into_parts();
        assert_eq!(parts.guards.len(), 1, "a guard read twice is kept once");
        assert_eq!(
            parts.main.ops,
            vec![Op::Put(Tree::Versions, b"v".to_vec(), b"1".to_vec())]
        );
        assert_eq!(
            parts.later.ops,
            vec![Op::Delete(Tree::Parts, b"p1".to_vec())]
        );
        assert_eq!(parts.refs, vec![change]);
    }

    #[test]
    fn a_transaction_writes_each_key_once_its_last_write() {
        let s = store();
        let mut tx = Tx::new(&s);
        tx.put(Tree::Buckets, b"x".to_vec(), b"1".to_vec());
        tx.put(Tree::Buckets, b"y".to_vec(), b"1".to_vec());
        tx.delete(Tree::Buckets, b"x".to_vec());
        let txn = tx.into_txn();
        assert_eq!(
            txn.batch.ops,
            vec![
                Op::Put(Tree::Buckets, b"y".to_vec(), b"1".to_vec()),
                Op::Delete(Tree::Buckets, b"x".to_vec())
            ]
        );
    }
}
