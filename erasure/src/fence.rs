//! Fencing tokens for shard deletions.
//!
//! With several gateways on etcd, the leader deletes the shards of collected chunks. A leader
//! paused between marking a chunk and deleting its shards may wake after another gateway took
//! over, finished that collection, and a client stored the chunk again: its late deletes must
//! not remove the new shards. Every leadership has a token larger than any before it (the etcd
//! revision that created its leader key); the leader's deletes carry it, and a store that has
//! seen a token refuses deletes carrying a smaller one ([`crate::Error::Fenced`]). Token 0 is
//! "unfenced" (a single gateway, the only writer): always allowed, never recorded.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The largest token a store has seen, kept in a file for a disk (so a restart does not let
/// a stale leader through) or in memory.
#[derive(Debug)]
pub struct FenceMark {
    path: Option<PathBuf>,
    /// `None` until read from the file.
    highest: Mutex<Option<u64>>,
}

/// The file's contents.
#[derive(Serialize, Deserialize)]
struct FenceFile {
    version: u32,
    highest: u64,
}

const FORMAT_VERSION: u32 = 1;

impl Default for FenceMark {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl FenceMark {
    pub fn in_memory() -> Self {
        FenceMark {
            path: None,
            highest: Mutex::new(Some(0)),
        }
    }

    /// A mark kept in `path` (read on first use).
    pub fn in_file(path: PathBuf) -> Self {
        FenceMark {
            path: Some(path),
            highest: Mutex::new(None),
        }
    }

    /// Runs `delete` (blocking) unless `token` is older than one seen; a newer token is
    /// recorded, durably, first. The check and the delete hold the mark together, so a newer
    /// leader's delete, and anything it lets happen afterwards, waits for an older one under
    /// way.
    pub fn guard<T>(&self, token: u64, delete: impl FnOnce() -> Result<T>) -> Result<T> {
        if token == 0 {
            return delete();
        }
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        let seen = match *highest {
            Some(h) => h,
            None => {
                let h = self.read()?;
                *highest = Some(h);
                h
            }
        };
        if token < seen {
            return Err(Error::Fenced(format!(
                "delete refused: fencing token {token} is older than {seen}, which a later \
                 leader already used here"
            )));
        }
        if token > seen {
            self.write(token)?;
            *highest = Some(token);
        }
        delete()
    }

    fn read(&self) -> Result<u64> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let file: FenceFile = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::DiskFormat(format!("{}: {e}", path.display())))?;
                Ok(file.highest)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Replaces the file through a temp file, fsynced, renamed, and the directory fsynced.
    fn write(&self, highest: u64) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::to_vec(&FenceFile {
            version: FORMAT_VERSION,
            highest,
        })
        .map_err(|e| Error::Codec(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&json).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_tokens_are_refused_newer_ones_recorded_and_zero_always_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fence.json");
        let mark = FenceMark::in_file(path.clone());
        let mut deleted = 0;
        let mut delete = || {
            deleted += 1;
            Ok(())
        };
        mark.guard(7, &mut delete).unwrap();
        mark.guard(7, &mut delete).unwrap();
        assert!(matches!(mark.guard(6, &mut delete), Err(Error::Fenced(_))));
        mark.guard(0, &mut delete).unwrap();
        mark.guard(9, &mut delete).unwrap();
        assert_eq!(deleted, 4, "the refused delete did not run");

        // The mark outlives the process: a store opened again refuses the old token.
        let again = FenceMark::in_file(path);
        assert!(matches!(again.guard(8, || Ok(())), Err(Error::Fenced(_))));
        again.guard(9, || Ok(())).unwrap();
        let raw = std::fs::read_to_string(dir.path().join("fence.json")).unwrap();
        assert!(
            raw.contains("\"version\":1") && raw.contains("\"highest\":9"),
            "{raw}"
        );
    }
}
