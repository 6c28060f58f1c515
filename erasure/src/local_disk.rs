//! A [`ShardStore`] on one local directory ("disk").
//!
//! Shards live at `<root>/shards/<h0h1>/<h2h3>/<chunk hex>.<index>`: names come from content
//! hashes only, so no object key ever becomes a path. Writes go to `<root>/.tessera/tmp`, are
//! fsynced, renamed into place and the directory is fsynced, so a crash leaves either the old
//! state or the complete new shard; whatever a crash leaves in the temp area is removed at the
//! next open. Bulk writers (`put_unsynced`) skip the fsyncs and then make everything durable
//! with one `syncfs` (`sync`) before they acknowledge; a shard torn by a crash before that
//! belongs to a write nobody was told succeeded, fails its checksum, and is healed or swept.
//! Parity shards (`put_unsynced_cold`) are written past the page cache where the file system
//! allows it ([`crate::direct_write`]). Shards that fail their checksum are moved to
//! `<root>/.tessera/quarantine`, kept for inspection. All file I/O runs on the blocking pool.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::direct_write::{self, Direct};
use crate::{ChunkHash, Error, FenceMark, Result, ShardKey, ShardStore};

pub const SHARDS_DIR: &str = "shards";
pub const TMP_DIR: &str = ".tessera/tmp";
pub const QUARANTINE_DIR: &str = ".tessera/quarantine";
/// The largest fencing token a delete carried here (see [`crate::FenceMark`]).
pub const FENCE_FILE: &str = ".tessera/fence.json";

#[derive(Debug, Clone)]
pub struct LocalDiskStore {
    root: Arc<PathBuf>,
    fence: Arc<FenceMark>,
}

impl LocalDiskStore {
    /// Opens the store, creating its directories if needed and removing the temp files of
    /// writes a crash interrupted (one process owns a disk, so none of them is in progress).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [SHARDS_DIR, TMP_DIR] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let tmp = root.join(TMP_DIR);
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let path = entry.map_err(|e| Error::io(&tmp, e))?.path();
            if fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(disk = %root.display(), files = removed, "removed temp files of interrupted writes");
        }
        Ok(LocalDiskStore {
            fence: Arc::new(FenceMark::in_file(root.join(FENCE_FILE))),
            root: Arc::new(root),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard_path(&self, key: &ShardKey) -> PathBuf {
        let hex = key.chunk.to_hex();
        self.root
            .join(SHARDS_DIR)
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(format!("{hex}.{}", key.index))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalDiskStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me)).await?
    }

    /// Writes a shard through a temp file and a rename; a durable write fsyncs the file and
    /// its directory too (else [`ShardStore::sync`] makes it durable later).
    fn write_shard(&self, key: &ShardKey, file: &[u8], how: ShardWrite) -> Result<()> {
        let durable = how == ShardWrite::Durable;
        let dest = self.shard_path(key);
        let dir = dest.parent().expect("shard path has a parent");
        if !dir.exists() {
            // Only the two fan-out levels are created: a disk whose directory vanished (pulled,
            // wiped) fails the write instead of growing a stray tree the monitor would then
            // refuse to adopt.
            let top = dir.parent().expect("fan-out dir has a parent");
            for d in [top, dir] {
                match fs::create_dir(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(d, e)),
                }
            }
            if durable {
                // Make the new directory entries themselves durable.
                sync_dir(top)?;
                sync_dir(&self.root.join(SHARDS_DIR))?;
            }
        }
        // An unflushed shard must not replace an identical one already there: that may be
        // the flushed shard of a committed chunk, and a crash before our flush could leave it
        // torn. (A different one, torn or rotten, is replaced.)
        if !durable && fs::read(&dest).is_ok_and(|existing| existing == file) {
            return Ok(());
        }
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(format!("{}.{}", uuid::Uuid::new_v4(), key.index));
        let result = (|| {
            let direct = match how {
                ShardWrite::Cold => {
                    direct_write::write_new(&tmp, file).map_err(|e| Error::io(&tmp, e))?
                }
                _ => Direct::Refused,
            };
            if direct == Direct::Refused {
                let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                f.write_all(file).map_err(|e| Error::io(&tmp, e))?;
                if durable {
                    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
                }
            }
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
            if !durable {
                return Ok(());
            }
            // The fan-out directories may have been made by an unsynced write whose flush
            // never came (a failed upload): make their entries durable too. Durable single
            // writes are rare (heal), so the extra fsyncs cost little.
            sync_dir(dir)?;
            sync_dir(dir.parent().expect("fan-out dir has a parent"))?;
            sync_dir(&self.root.join(SHARDS_DIR))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// How [`LocalDiskStore::write_shard`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardWrite {
    /// Fsynced with its directory before the write returns.
    Durable,
    /// Durable after the next [`ShardStore::sync`].
    Unsynced,
    /// As `Unsynced`, past the page cache where the file system allows it.
    Cold,
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn parse_shard_name(name: &str) -> Option<ShardKey> {
    let (hex, index) = name.split_once('.')?;
    Some(ShardKey {
        chunk: ChunkHash::from_hex(hex)?,
        index: index.parse().ok()?,
    })
}

#[async_trait]
impl ShardStore for LocalDiskStore {
    fn name(&self) -> String {
        self.root.display().to_string()
    }

    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.blocking(move |me| me.write_shard(&key, &file, ShardWrite::Durable))
            .await
    }

    async fn put_unsynced(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.blocking(move |me| me.write_shard(&key, &file, ShardWrite::Unsynced))
            .await
    }

    async fn put_unsynced_cold(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.blocking(move |me| me.write_shard(&key, &file, ShardWrite::Cold))
            .await
    }

    /// One `syncfs` of the disk's file system: every file and directory written since is
    /// durable afterwards (and concurrent writers' flushes coalesce in the kernel).
    async fn sync(&self) -> Result<()> {
        self.blocking(|me| {
            let root: &Path = &me.root;
            let dir = File::open(root).map_err(|e| Error::io(root, e))?;
            rustix::fs::syncfs(&dir).map_err(|e| Error::io(root, e.into()))
        })
        .await
    }

    async fn get(&self, key: ShardKey) -> Result<Bytes> {
        self.blocking(move |me| {
            let path = me.shard_path(&key);
            match fs::read(&path) {
                Ok(data) => Ok(Bytes::from(data)),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NotFound),
                Err(e) => Err(Error::io(path, e)),
            }
        })
        .await
    }

    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()> {
        self.blocking(move |me| {
            let path = me.shard_path(&key);
            me.fence.guard(fence, || match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(&path, e)),
            })
        })
        .await
    }

    async fn list(&self) -> Result<Vec<ShardKey>> {
        self.blocking(|me| {
            let mut out = Vec::new();
            let top = me.root.join(SHARDS_DIR);
            let read = |p: &Path| fs::read_dir(p).map_err(|e| Error::io(p, e));
            for a in read(&top)? {
                let a = a.map_err(|e| Error::io(&top, e))?.path();
                if !a.is_dir() {
                    continue;
                }
                for b in read(&a)? {
                    let b = b.map_err(|e| Error::io(&a, e))?.path();
                    if !b.is_dir() {
                        continue;
                    }
                    for f in read(&b)? {
                        let f = f.map_err(|e| Error::io(&b, e))?;
                        if let Some(key) = f.file_name().to_str().and_then(parse_shard_name) {
                            out.push(key);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn quarantine(&self, key: ShardKey) -> Result<()> {
        self.blocking(move |me| {
            let from = me.shard_path(&key);
            let dir = me.root.join(QUARANTINE_DIR);
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let to = dir.join(format!("{}.{}.{stamp}", key.chunk.to_hex(), key.index));
            match fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NotFound),
                Err(e) => return Err(Error::io(from, e)),
            }
            sync_dir(&dir)?;
            sync_dir(from.parent().expect("shard path has a parent"))
        })
        .await
    }

    async fn space(&self) -> Result<Option<crate::DiskSpace>> {
        self.blocking(|me| {
            let st = rustix::fs::statvfs(me.root.as_path())
                .map_err(|e| Error::io(me.root.as_path(), e.into()))?;
            Ok(Some(crate::DiskSpace {
                total: st.f_blocks.saturating_mul(st.f_frsize),
                free: st.f_bavail.saturating_mul(st.f_frsize),
            }))
        })
        .await
    }

    async fn health(&self) -> Result<()> {
        self.blocking(|me| {
            let probe = me
                .root
                .join(TMP_DIR)
                .join(format!("health-{}", uuid::Uuid::new_v4()));
            fs::write(&probe, b"ok").map_err(|e| Error::io(&probe, e))?;
            fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_shard_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::open(dir.path()).unwrap();
        crate::store_suite::run(&store).await;
        // Nothing is left behind in the temp area.
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn quarantine_keeps_the_file_and_open_clears_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::open(dir.path()).unwrap();
        let key = ShardKey {
            chunk: ChunkHash::of(b"q"),
            index: 2,
        };
        store.put(key, Bytes::from_static(b"bad")).await.unwrap();
        store.quarantine(key).await.unwrap();
        let kept: Vec<_> = fs::read_dir(dir.path().join(QUARANTINE_DIR))
            .unwrap()
            .map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(kept, vec![b"bad".to_vec()]);

        fs::write(dir.path().join(TMP_DIR).join("torn.0"), b"half").unwrap();
        LocalDiskStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
        let space = store.space().await.unwrap().unwrap();
        assert!(space.total >= space.free && space.total > 0);
    }

    #[tokio::test]
    async fn missing_root_fails_health() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDiskStore::open(dir.path().join("d")).unwrap();
        fs::remove_dir_all(dir.path().join("d")).unwrap();
        assert!(store.health().await.is_err());
    }
}
