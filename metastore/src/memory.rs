//! An in-memory [`KvStore`] for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use crate::Result;
use crate::kv::{Batch, Entry, KvStore, Op, Tree};

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
        let Some(t) = trees.get(&tree) else {
            return Ok(Vec::new());
        };
        let upper = match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => Bound::Unbounded,
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        Ok(t.range((Bound::Included(start.to_vec()), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
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
