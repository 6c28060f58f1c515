//! The embedded metadata on the local disks: the RocksDB replicas mirrored on the first
//! parity + 1 disks (or the one copy in `--meta-dir`), opened at start, rejoined while running
//! when their disk comes back, and checked against the commit sequence the data disks record,
//! so that a start where only stale replicas are present is refused rather than served.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster::Disks;
use erasure::{DiskState, disk_format};
use metastore::{KvStore, MetaStore, MirroredKv, RocksKv};
use tracing::{error, info, warn};

const META_DIR: &str = ".tessera/meta";

/// The metadata as opened, before the object service: where it is and what checks are due.
pub(crate) struct OpenedMeta {
    pub(crate) meta: MetaStore,
    pub(crate) replicas: Vec<PathBuf>,
    pub(crate) mirror: Option<Arc<MirroredKv>>,
    /// The deployment id `--meta-dir` is marked with, checked once the home pool is known.
    pub(crate) meta_dir_marker: Option<(PathBuf, String)>,
}

/// Ties a gateway's `--meta-dir` to its deployment (`DIR/deployment`, written when the
/// deployment is formatted). The nodes' disks alone cannot tell an empty metadata directory
/// from a lost one, and serving a formatted deployment with empty metadata would show no
/// objects and let the orphan sweep delete every shard: that start is refused. Returns the
/// deployment id the directory is marked with: the caller compares it with the deployment's
/// once the metadata says which pool the disks are (pool 0's format id is the deployment's
/// only until pool 0 is decommissioned).
fn claim_meta_dir(
    dir: &std::path::Path,
    deployment: &disk_format::Deployment,
) -> Result<String, String> {
    let marker = dir.join("deployment");
    let err = |e: std::io::Error| format!("{}: {e}", marker.display());
    match std::fs::read_to_string(&marker) {
        Ok(id) => Ok(id.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !deployment.freshly_formatted {
                return Err(format!(
                    "metadata directory {} holds no metadata, but the disks already belong to deployment {}: give the --meta-dir this deployment was created with",
                    dir.display(),
                    deployment.deployment_id
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let tmp = dir.join("deployment.tmp");
            std::fs::write(&tmp, format!("{}\n", deployment.deployment_id)).map_err(err)?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(err)?;
            std::fs::rename(&tmp, &marker).map_err(err)?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok(deployment.deployment_id.clone())
        }
        Err(e) => Err(err(e)),
    }
}

/// Opens the metadata mirror and the object service over `disks`. Blocking.
/// The metadata mirror on the local disks (or in `--meta-dir`), and where its replicas are.
pub(crate) fn open_local_metadata(
    disks: &Disks,
    meta_dir: Option<PathBuf>,
    gc_grace: Duration,
    accept_stale: bool,
) -> Result<OpenedMeta, String> {
    // The metadata must survive the loss of any `parity` disks, like the data: keep a replica on
    // the first parity + 1 local disks (those of them that can be opened now). A replica that
    // missed writes while its disk was away, or a new one on a replacement disk, is rebuilt
    // from the most recent one as the mirror opens. A gateway without local disks keeps it in
    // its --meta-dir.
    let mut meta_dir_marker = None;
    let candidates = match meta_dir {
        Some(dir) => {
            meta_dir_marker = Some((dir.clone(), claim_meta_dir(&dir, &disks.deployment)?));
            vec![dir.join("meta")]
        }
        None => replica_paths(disks),
    };
    let mut meta_replicas = Vec::new();
    let mut replicas: Vec<(String, Box<dyn KvStore>)> = Vec::new();
    for path in candidates {
        match RocksKv::open(&path) {
            Ok(kv) => {
                replicas.push((path.display().to_string(), Box::new(kv)));
                meta_replicas.push(path);
            }
            Err(e) => {
                warn!(replica = %path.display(), error = %e, "METADATA REPLICA UNAVAILABLE; continuing on the others")
            }
        }
    }
    if replicas.is_empty() {
        return Err(
            "no metadata replica could be opened (they live on the first parity + 1 local disks, or in --meta-dir)"
                .into(),
        );
    }
    let mirror = Arc::new(MirroredKv::new(replicas).map_err(|e| e.to_string())?);
    // Replicas that never took a write, on disks that hold shards: these are not the disks the
    // metadata lives on (another pool's, or a reordered command line). Serving would show an
    // empty store and let the orphan sweep delete every shard.
    if meta_dir_marker.is_none()
        && mirror.sequence() == 0
        && !disks.deployment.freshly_formatted
        && disks.local.iter().any(|d| holds_shards(d))
    {
        return Err(format!(
            "the metadata replicas on {} are empty, but the disks hold shards: these are not \
             the disks this deployment's metadata lives on (give the home pool's disks, in the \
             order they were added)",
            meta_replicas
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if meta_dir_marker.is_none() {
        refuse_stale(disks, &mirror, accept_stale)?;
        write_marks(disks, &mirror);
    }
    Ok(OpenedMeta {
        meta: MetaStore::new(mirror.clone(), gc_grace),
        replicas: meta_replicas,
        mirror: meta_dir_marker.is_none().then_some(mirror),
        meta_dir_marker,
    })
}

/// Where the embedded metadata's replicas live on a pool's disks: the first parity + 1 local
/// disks, those of them online now.
pub fn replica_paths(disks: &Disks) -> Vec<PathBuf> {
    let count = (disks.deployment.layout.parity + 1).min(disks.local.len());
    (0..count)
        .filter(|i| !matches!(disks.slots[*i].state(), DiskState::Offline(_)))
        .map(|i| disks.local[i].join(META_DIR))
        .collect()
}

/// Brings metadata replicas on disks that came (back) online into the mirror while running:
/// one missing since the start, one that failed, or one whose directory was wiped (a disk
/// swapped for an empty one, adopted by the monitor). Each is rebuilt as an exact copy of a
/// healthy replica before it counts. Blocking, for as long as the copies.
pub(crate) fn rejoin_replicas(mirror: &MirroredKv, disks: &Disks) {
    for path in replica_paths(disks) {
        let name = path.display().to_string();
        // RocksDB's CURRENT file names its live manifest: without it the directory was
        // emptied under a replica that may still look healthy (writes to deleted files).
        let wiped = !path.join("CURRENT").exists();
        if mirror.is_healthy(&name) && !wiped {
            continue;
        }
        let rejoined = mirror
            .release_replica(&name)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                // The released instance closes once operations in flight let go of it; until
                // then RocksDB refuses a second open of the same directory.
                let mut tries = 0;
                loop {
                    match RocksKv::open(&path) {
                        Ok(kv) => break Ok(kv),
                        Err(e) if tries >= 10 => break Err(e.to_string()),
                        Err(_) => {
                            tries += 1;
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .and_then(|kv| {
                mirror
                    .add_replica(name.clone(), Box::new(kv))
                    .map_err(|e| e.to_string())
            });
        match rejoined {
            Ok(()) => {
                warn!(replica = %name, "metadata replica rejoined while running; rebuilt from a healthy one")
            }
            Err(e) => {
                warn!(replica = %name, error = %e, "metadata replica cannot rejoin yet; retried when a disk next comes online")
            }
        }
    }
}

/// Whether a local disk holds at least one shard file. Blocking.
fn holds_shards(disk: &std::path::Path) -> bool {
    fn any_file(dir: &std::path::Path, depth: usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| match e.file_type() {
            Ok(t) if t.is_file() => true,
            Ok(t) if t.is_dir() && depth > 0 => any_file(&e.path(), depth - 1),
            _ => false,
        })
    }
    any_file(&disk.join("shards"), 4)
}

/// Where each local data disk records how far the metadata had got.
const MARK_FILE: &str = ".tessera/meta-mark.json";
/// How often a running server records the commit sequence on the data disks (when it moved).
pub const MARK_EVERY: Duration = Duration::from_secs(10);

/// The commit sequence the metadata replicas had reached, and which replicas held it,
/// recorded on every local data disk: at start, every [`MARK_EVERY`] while it moves, and at
/// shutdown. The data disks outnumber the replicas, so a start that finds only older replicas
/// can tell that newer metadata exists (and where it was) instead of serving the old state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MetaMark {
    v: u32,
    seq: u64,
    replicas: Vec<String>,
    written_ms: i64,
}

fn read_mark(disk: &std::path::Path) -> Option<MetaMark> {
    let text = std::fs::read(disk.join(MARK_FILE)).ok()?;
    // A mark of a later format version is still read for its sequence (serde ignores new
    // fields); one that does not parse is ignored, as if never written.
    serde_json::from_slice(&text).ok()
}

/// Records the mirror's sequence on every online local disk. Blocking; a disk that cannot take
/// it is skipped (the others still tell).
pub(crate) fn write_marks(disks: &Disks, mirror: &MirroredKv) {
    let mark = MetaMark {
        v: 1,
        seq: mirror.sequence(),
        replicas: mirror.replica_names(),
        written_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let Ok(bytes) = serde_json::to_vec(&mark) else {
        return;
    };
    for (i, disk) in disks.local.iter().enumerate() {
        if matches!(disks.slots[i].state(), DiskState::Offline(_)) {
            continue;
        }
        let path = disk.join(MARK_FILE);
        let tmp = disk.join(format!("{MARK_FILE}.tmp"));
        let written = std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::debug!(disk = %disk.display(), error = %e, "cannot record the metadata sequence");
        }
    }
}

/// Records the mirror's sequence on the data disks every [`MARK_EVERY`] while it moves, until
/// `stop`.
pub(crate) fn spawn_marks(
    mirror: Arc<MirroredKv>,
    disks: Arc<Disks>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut recorded = mirror.sequence();
        loop {
            tokio::select! {
                () = tokio::time::sleep(MARK_EVERY) => {}
                () = stop.cancelled() => return,
            }
            let now = mirror.sequence();
            if now == recorded {
                continue;
            }
            let (m, d) = (mirror.clone(), disks.clone());
            let _ = tokio::task::spawn_blocking(move || write_marks(&d, &m)).await;
            recorded = now;
        }
    })
}

/// Refuses to serve when the data disks record a later commit than the replicas present
/// reach: the newer replicas are on disks that are missing, and serving would bring back
/// deleted objects and lose acknowledged writes. `accept_stale` serves anyway, loudly.
fn refuse_stale(disks: &Disks, mirror: &MirroredKv, accept_stale: bool) -> Result<(), String> {
    let seq = mirror.sequence();
    let present = mirror.replica_names();
    // Only marks about these replicas count: once the home pool is decommissioned the
    // replicas live on other disks, and the old disks' marks name those (a start on the old
    // disks is refused for that reason, by the pool check).
    let Some((disk, newest)) = disks
        .local
        .iter()
        .filter_map(|d| read_mark(d).map(|m| (d.clone(), m)))
        .filter(|(_, m)| m.replicas.iter().any(|r| present.contains(r)))
        .max_by_key(|(_, m)| m.seq)
    else {
        return Ok(());
    };
    if newest.seq <= seq {
        if seq > 0 {
            info!(
                commit = seq,
                "metadata replicas are as new as the data disks record"
            );
        }
        return Ok(());
    }
    let message = format!(
        "the metadata replicas present ({}) reach commit {seq}, but {} records commit {} \
         held by the replicas {}: the newer metadata is on one of those, on a disk that is \
         missing, was replaced or was restored from an older copy. Bring that disk back and \
         start again, or start once with --accept-stale-metadata to serve commit {seq} and \
         lose the {} commits after it (objects written or deleted then)",
        present.join(", "),
        disk.display(),
        newest.seq,
        newest.replicas.join(", "),
        newest.seq - seq
    );
    if accept_stale {
        error!("STALE METADATA ACCEPTED (--accept-stale-metadata): {message}");
        Ok(())
    } else {
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_of_another_version_or_garbage_reads_or_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".tessera")).unwrap();
        assert!(read_mark(dir.path()).is_none());
        std::fs::write(dir.path().join(MARK_FILE), b"{not json").unwrap();
        assert!(read_mark(dir.path()).is_none());
        std::fs::write(
            dir.path().join(MARK_FILE),
            br#"{"v":2,"seq":42,"replicas":["/d/.tessera/meta"],"written_ms":1,"later":true}"#,
        )
        .unwrap();
        assert_eq!(read_mark(dir.path()).unwrap().seq, 42);
    }
}
