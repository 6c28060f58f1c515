//! [`KvStore`], a local ordered store (RocksDB, memory, a mirror of several): a few ordered
//! trees with atomic, durable write batches. The metastore reaches it through
//! [`crate::txn::LocalTxn`], which adds the revisions and guards of the transactional boundary.
//!
//! Contract for every implementation:
//! - `get` returns the last committed value;
//! - `scan` returns entries with `start <= key < end` in ascending byte order, at most `limit`;
//! - `write` applies all operations of a batch or none, and they are durable (survive a crash
//!   or power loss) when it returns;
//! - `with_snapshot` reads the store as it was at one moment, every batch applied or not,
//!   while writers go on. Implementations are blocking: callers run them on the
//!   blocking pool, never on async worker threads.

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// Store-wide values: schema version, commit sequence.
    Meta,
    Buckets,
    /// The current version of each key (possibly a delete marker): what listings read.
    Objects,
    /// Every version of every key, newest first per key; refcounts follow this tree.
    Versions,
    Uploads,
    Parts,
    Refcounts,
    Gc,
    /// Chunks whose stripes are known to lack shards (degraded writes), to heal.
    Heal,
    /// Users by name, each with its access keys (secrets sealed by the gateway).
    Users,
    /// Event notifications waiting for delivery, oldest first.
    Events,
}

impl Tree {
    pub const ALL: [Tree; 11] = [
        Tree::Meta,
        Tree::Buckets,
        Tree::Objects,
        Tree::Versions,
        Tree::Uploads,
        Tree::Parts,
        Tree::Refcounts,
        Tree::Gc,
        Tree::Heal,
        Tree::Users,
        Tree::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Buckets => "buckets",
            Tree::Objects => "objects",
            Tree::Versions => "versions",
            Tree::Uploads => "uploads",
            Tree::Parts => "parts",
            Tree::Refcounts => "refcounts",
            Tree::Gc => "gc",
            Tree::Heal => "heal",
            Tree::Users => "users",
            Tree::Events => "events",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

pub type Entry = (Vec<u8>, Vec<u8>);

/// The callback of the `scan_each` methods: sees each entry's key and value, borrowed, and
/// returns `false` to stop the scan.
pub type Visitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool>;

/// Reads `start..` page by page through `page(start, limit)`, handing each page to `each`
/// until it returns `false` or a page comes back short (the end bound is `page`'s).
fn pages(
    start: &[u8],
    limit: usize,
    mut page: impl FnMut(&[u8], usize) -> Result<Vec<Entry>>,
    mut each: impl FnMut(Vec<Entry>) -> Result<bool>,
) -> Result<()> {
    let mut start = start.to_vec();
    loop {
        let entries = page(&start, limit)?;
        let full = entries.len() == limit;
        if let Some((last, _)) = entries.last() {
            start.clone_from(last);
            start.push(0);
        }
        if !each(entries)? || !full {
            return Ok(());
        }
    }
}

/// `scan_each` for a store that reads in pages: `page(start, limit)` returns up to `limit`
/// entries from `start` on (the end bound is the caller's).
pub(crate) fn visit_pages(
    start: &[u8],
    page: impl FnMut(&[u8], usize) -> Result<Vec<Entry>>,
    visit: Visitor<'_>,
) -> Result<()> {
    pages(start, 256, page, |entries| {
        for (k, v) in &entries {
            if !visit(k, v)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// Reads of a store frozen at one moment (see [`KvStore::with_snapshot`]).
pub trait SnapshotRead {
    /// As [`KvStore::scan`], as of the snapshot.
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>>;
}

/// The callback of [`KvStore::with_snapshot`].
pub type SnapshotFn<'a> = &'a mut dyn FnMut(&dyn SnapshotRead) -> Result<()>;

pub trait KvStore: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>>;
    /// Hands `visit` the entries with `start <= key < end`, ascending and borrowed, until it
    /// returns `false` or the range ends. A listing keeps a few fields of each entry: this
    /// saves it copying every key and value into owned buffers first (BENCHMARKS "LIST").
    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        visit_pages(start, |s, limit| self.scan(tree, s, end, limit), visit)
    }
    /// Applies a batch atomically and durably.
    fn write(&self, batch: Batch) -> Result<()>;
    /// Applies a batch atomically; readers see it at once, but it is durable only after a
    /// later [`KvStore::sync`]. Lets concurrent writers share one flush (group commit).
    fn write_unsynced(&self, batch: Batch) -> Result<()> {
        self.write(batch)
    }
    /// Makes every batch written before this call durable.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Runs `read` over a snapshot of the store taken now: a long read (the reference
    /// recount) sees one consistent state without holding up writers.
    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()>;
}

/// A store shared with its opener (the server keeps a handle on its metadata mirror to move
/// replicas while running).
impl<T: KvStore + ?Sized> KvStore for std::sync::Arc<T> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(tree, key)
    }
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        (**self).scan(tree, start, end, limit)
    }
    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        (**self).scan_each(tree, start, end, visit)
    }
    fn write(&self, batch: Batch) -> Result<()> {
        (**self).write(batch)
    }
    fn write_unsynced(&self, batch: Batch) -> Result<()> {
        (**self).write_unsynced(batch)
    }
    fn sync(&self) -> Result<()> {
        (**self).sync()
    }
    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()> {
        (**self).with_snapshot(read)
    }
}

/// A store that can be read page by page: the local ones and the transactional boundary.
pub(crate) trait ScanPages {
    fn page(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>>;
}

impl ScanPages for dyn KvStore {
    fn page(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>> {
        self.scan(tree, start, None, limit)
    }
}

impl ScanPages for dyn SnapshotRead + '_ {
    fn page(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>> {
        self.scan(tree, start, None, limit)
    }
}

impl ScanPages for dyn crate::txn::TxnStore {
    fn page(&self, tree: Tree, start: &[u8], limit: usize) -> Result<Vec<Entry>> {
        self.scan(tree, start, None, limit)
    }
}

/// Every entry of a tree, page by page.
pub(crate) fn scan_all<S: ScanPages + ?Sized>(
    kv: &S,
    tree: Tree,
    mut visit: impl FnMut(Entry) -> Result<()>,
) -> Result<()> {
    pages(
        b"",
        1024,
        |s, limit| kv.page(tree, s, limit),
        |entries| {
            entries.into_iter().try_for_each(&mut visit)?;
            Ok(true)
        },
    )
}
