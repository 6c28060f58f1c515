//! The RocksDB [`KvStore`]: one column family per tree, every batch written with sync=true.

use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamily, DB, DBIteratorWithThreadMode, Direction, IteratorMode, Options, ReadOptions,
    Snapshot, WriteBatch, WriteOptions,
};

use crate::kv::{Batch, Entry, KvStore, Op, SnapshotFn, SnapshotRead, Tree, Visitor};
use crate::{Error, Result};

/// See [`RocksKv::open`].
const MEMTABLE_BUDGET: usize = 32 << 20;

pub struct RocksKv {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKv").field("path", &self.path).finish()
    }
}

impl RocksKv {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Memtables of all trees together, per database: RocksDB's default is 64 MiB per
        // tree, and a server keeps a replica on each of parity + 1 disks. Small objects' inline data sat in
        // them and made most of the resident memory a run of 4 KiB PUTs leaves behind
        // (BENCHMARKS "Memory").
        opts.set_db_write_buffer_size(MEMTABLE_BUDGET);
        let names: Vec<&str> = Tree::ALL.iter().map(|t| t.name()).collect();
        let db = DB::open_cf(&opts, &path, names).map_err(|e| {
            let e = e.into_string();
            // Builds before 2026-12-03 bundled RocksDB 11, whose table format 7.8 cannot read.
            let hint = if e.contains("format_version") {
                " (this metadata was written by a newer RocksDB than this build's 7.8: tessera \
                 builds before 2026-12-03 bundled RocksDB 11; serve it with such a build)"
            } else {
                ""
            };
            Error::Backend(format!("opening RocksDB at {}: {e}{hint}", path.display()))
        })?;
        Ok(RocksKv { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, tree: Tree) -> &ColumnFamily {
        self.db
            .cf_handle(tree.name())
            .expect("every tree's column family is created at open")
    }
}

impl RocksKv {
    fn apply(&self, batch: Batch, sync: bool) -> Result<()> {
        let mut wb = WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put(t, k, v) => wb.put_cf(self.cf(*t), k, v),
                Op::Delete(t, k) => wb.delete_cf(self.cf(*t), k),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        Ok(self.db.write_opt(wb, &wo)?)
    }
}

/// Collects `start <= key < end`, at most `limit`, from an iterator positioned at `start`.
fn collect(
    iter: DBIteratorWithThreadMode<'_, DB>,
    end: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for item in iter {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item?;
        if end.is_some_and(|e| &k[..] >= e) {
            break;
        }
        out.push((k.into_vec(), v.into_vec()));
    }
    Ok(out)
}

/// A RocksDB snapshot: reads see the database as it was when it was taken.
struct Frozen<'a> {
    kv: &'a RocksKv,
    snapshot: Snapshot<'a>,
}

impl SnapshotRead for Frozen<'_> {
    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snapshot);
        let iter = self.kv.db.iterator_cf_opt(
            self.kv.cf(tree),
            opts,
            IteratorMode::From(start, Direction::Forward),
        );
        collect(iter, end, limit)
    }
}

impl KvStore for RocksKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(tree), key)?)
    }

    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let iter = self
            .db
            .iterator_cf(self.cf(tree), IteratorMode::From(start, Direction::Forward));
        collect(iter, end, limit)
    }

    /// RocksDB's raw iterator lends each key and value from its own buffers.
    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        let mut opts = ReadOptions::default();
        if let Some(e) = end {
            // Lets RocksDB stop at the bound instead of stepping over deleted keys past it.
            opts.set_iterate_upper_bound(e.to_vec());
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(tree), opts);
        iter.seek(start);
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            if !visit(k, v)? {
                return Ok(());
            }
            iter.next();
        }
        Ok(iter.status()?)
    }

    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()> {
        read(&Frozen {
            kv: self,
            snapshot: self.db.snapshot(),
        })
    }

    fn write(&self, batch: Batch) -> Result<()> {
        self.apply(batch, true)
    }

    fn write_unsynced(&self, batch: Batch) -> Result<()> {
        self.apply(batch, false)
    }

    /// fsyncs the write-ahead log: every batch written before is durable.
    fn sync(&self) -> Result<()> {
        Ok(self.db.flush_wal(true)?)
    }
}
