//! An in-memory [`KvStore`] for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use crate::Result;
use crate::kv::{Batch, Entry, KvStore, Op, SnapshotFn, SnapshotRead, Tree};

type Trees = HashMap<Tree, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Debug, Default)]
pub struct MemoryKv {
    trees: RwLock<Trees>,
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }
}

/// For test stores that wrap a `MemoryKv` (in field `$field`) and change only `sync` or
/// other provided methods: passes the required [`KvStore`] methods on unchanged.
#[cfg(test)]
macro_rules! delegate_to_memory {
    ($field:tt) => {
        fn get(&self, t: $crate::kv::Tree, k: &[u8]) -> $crate::Result<Option<Vec<u8>>> {
            self.$field.get(t, k)
        }
        fn scan(
            &self,
            t: $crate::kv::Tree,
            s: &[u8],
            e: Option<&[u8]>,
            l: usize,
        ) -> $crate::Result<Vec<$crate::kv::Entry>> {
            self.$field.scan(t, s, e, l)
        }
        fn write(&self, b: $crate::kv::Batch) -> $crate::Result<()> {
            self.$field.write(b)
        }
        fn with_snapshot(&self, read: $crate::kv::SnapshotFn<'_>) -> $crate::Result<()> {
            self.$field.with_snapshot(read)
        }
    };
}
#[cfg(test)]
pub(crate) use delegate_to_memory;

/// A copy of every tree: the memory store is for tests, where copying is cheap enough.
struct Frozen(Trees);

impl SnapshotRead for Frozen {
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        Ok(range(&self.0, tree, start, end, limit))
    }
}

fn range(trees: &Trees, tree: Tree, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<Entry> {
    let Some(t) = trees.get(&tree) else {
        return Vec::new();
    };
    if end.is_some_and(|e| e <= start) {
        return Vec::new();
    }
    let upper = match end {
        Some(e) => Bound::Excluded(e.to_vec()),
        None => Bound::Unbounded,
    };
    t.range((Bound::Included(start.to_vec()), upper))
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl KvStore for MemoryKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let trees = self.trees.read().unwrap_or_else(|p| p.into_inner());
        Ok(trees.get(&tree).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let trees = self.trees.read().unwrap_or_else(|p| p.into_inner());
        Ok(range(&trees, tree, start, end, limit))
    }

    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()> {
        let copy = self.trees.read().unwrap_or_else(|p| p.into_inner()).clone();
        read(&Frozen(copy))
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut trees = self.trees.write().unwrap_or_else(|p| p.into_inner());
        for op in batch.ops {
            match op {
                Op::Put(t, k, v) => {
                    trees.entry(t).or_default().insert(k, v);
                }
                Op::Delete(t, k) => {
                    if let Some(tree) = trees.get_mut(&t) {
                        tree.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }
}
