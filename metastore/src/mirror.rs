//! [`MirroredKv`]: identical replicas of the metadata on several disks.
//!
//! Every batch goes to every healthy replica, together with an increasing commit sequence
//! number, so that replicas can be compared. A replica whose write or read fails is taken out
//! of service (and logged) while at least one other replica remains; the write still counts
//! because the surviving replicas hold it. At open, replicas that are behind the most recent
//! one (a disk that missed writes, or a new empty replica) are rebuilt from it. A replica can
//! also join or leave while running (the deployment's home pool being decommissioned moves
//! them to other disks).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak, mpsc};

use tracing::{error, info, warn};

use crate::kv::{Batch, Entry, KvStore, SnapshotFn, Tree, Visitor, scan_all};
use crate::{Error, Result};

const SEQ_KEY: &[u8] = b"commit_seq";

struct Replica {
    name: String,
    kv: Box<dyn KvStore>,
    healthy: AtomicBool,
    /// Asks this replica's flusher thread for a flush; the answer comes back on the channel
    /// sent. `None` when the thread could not be started (flushes then run in the caller).
    flusher: Option<mpsc::Sender<mpsc::SyncSender<Result<()>>>>,
}

impl Replica {
    /// A replica with its flusher: a thread that lives as long as the replica, so that the
    /// replicas of a group commit are flushed at once without creating threads per commit
    /// (creating them was 9% of the server's CPU during 4 KiB DELETEs, BENCHMARKS).
    fn new(name: String, kv: Box<dyn KvStore>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Replica>| {
            let (requests, incoming) = mpsc::channel::<mpsc::SyncSender<Result<()>>>();
            let me = me.clone();
            let flusher = std::thread::Builder::new()
                .name(format!("meta-flush-{name}"))
                .spawn(move || {
                    // Ends when the replica (holding the sender) is dropped.
                    for reply in incoming {
                        let Some(replica) = me.upgrade() else { return };
                        let _ = reply.send(replica.kv.sync());
                    }
                })
                .map_err(|e| warn!(replica = %name, "no flusher thread, flushing inline: {e}"))
                .ok()
                .map(|_| requests);
            Replica {
                name,
                kv,
                healthy: AtomicBool::new(true),
                flusher,
            }
        })
    }

    /// Starts a flush on the flusher thread; the receiver yields its outcome.
    fn start_flush(&self) -> mpsc::Receiver<Result<()>> {
        let (reply, outcome) = mpsc::sync_channel(1);
        let inline = match &self.flusher {
            Some(f) => f.send(reply).err().map(|e| e.0),
            None => Some(reply),
        };
        if let Some(reply) = inline {
            let _ = reply.send(self.kv.sync());
        }
        outcome
    }
}

pub struct MirroredKv {
    replicas: std::sync::RwLock<Vec<Arc<Replica>>>,
    seq: std::sync::Mutex<u64>,
}

impl std::fmt::Debug for MirroredKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.current().iter().map(|r| r.name.clone()).collect();
        f.debug_struct("MirroredKv")
            .field("replicas", &names)
            .finish()
    }
}

fn read_seq(kv: &dyn KvStore) -> Result<u64> {
    Ok(match kv.get(Tree::Meta, SEQ_KEY)? {
        Some(v) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")),
        Some(_) => return Err(Error::Decode("commit sequence is not 8 bytes".into())),
        None => 0,
    })
}

/// Makes `to` an exact copy of `from`.
fn copy_replica(from: &dyn KvStore, to: &dyn KvStore) -> Result<()> {
    for tree in Tree::ALL {
        let mut stale = Batch::default();
        scan_all(to, tree, |(k, _)| {
            stale.delete(tree, k);
            Ok(())
        })?;
        to.write(stale)?;
        let mut batch = Batch::default();
        scan_all(from, tree, |(k, v)| {
            batch.put(tree, k, v);
            if batch.ops.len() >= 1024 {
                to.write(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        to.write(batch)?;
    }
    Ok(())
}

impl MirroredKv {
    /// Opens the mirror over named replicas, bringing lagging replicas up to date.
    pub fn new(replicas: Vec<(String, Box<dyn KvStore>)>) -> Result<Self> {
        if replicas.is_empty() {
            return Err(Error::Backend("a mirror needs at least one replica".into()));
        }
        let seqs = replicas
            .iter()
            .map(|(_, kv)| read_seq(kv.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let (best, &best_seq) = seqs
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| **s)
            .expect("non-empty");
        for (i, &s) in seqs.iter().enumerate() {
            if s < best_seq {
                info!(
                    replica = %replicas[i].0,
                    behind = best_seq - s,
                    source = %replicas[best].0,
                    "metadata replica is behind; rebuilding it"
                );
                copy_replica(replicas[best].1.as_ref(), replicas[i].1.as_ref())?;
            }
        }
        Ok(MirroredKv {
            replicas: std::sync::RwLock::new(
                replicas
                    .into_iter()
                    .map(|(name, kv)| Replica::new(name, kv))
                    .collect(),
            ),
            seq: std::sync::Mutex::new(best_seq),
        })
    }

    /// The replicas now in the mirror (a few: cloning the list is cheap).
    fn current(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Names of the replicas now in the mirror.
    pub fn replica_names(&self) -> Vec<String> {
        self.current().iter().map(|r| r.name.clone()).collect()
    }

    /// Adds a replica while running: made an exact copy of a healthy one while writes wait
    /// (the sequence lock is held), so it misses nothing. Blocking, for as long as the copy.
    pub fn add_replica(&self, name: String, kv: Box<dyn KvStore>) -> Result<()> {
        let seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(present) = self.current().into_iter().find(|r| r.name == name) {
            return if present.healthy.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err(Error::Backend(format!(
                    "metadata replica {name} failed earlier in this run; restart the server to reopen it"
                )))
            };
        }
        let source = self
            .current()
            .into_iter()
            .find(|r| r.healthy.load(Ordering::Relaxed))
            .ok_or_else(|| Error::Backend("no healthy metadata replica to copy".into()))?;
        copy_replica(source.kv.as_ref(), kv.as_ref())?;
        kv.sync()?;
        if read_seq(kv.as_ref())? != *seq {
            return Err(Error::Backend(format!(
                "metadata replica {name} did not take the copy's sequence"
            )));
        }
        info!(replica = %name, source = %source.name, seq = *seq, "metadata replica added");
        self.replicas
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Replica::new(name, kv));
        Ok(())
    }

    /// Whether the replica `name` is in the mirror and healthy.
    pub fn is_healthy(&self, name: &str) -> bool {
        self.current()
            .iter()
            .any(|r| r.name == name && r.healthy.load(Ordering::Relaxed))
    }

    /// Drops the replica `name` if it is in the mirror, healthy or not (it is closed once no
    /// operation uses it), so that its directory can be opened again and rejoin through
    /// [`Self::add_replica`]. At least one other healthy replica must remain.
    pub fn release_replica(&self, name: &str) -> Result<()> {
        if !self.current().iter().any(|r| r.name == name) {
            return Ok(());
        }
        self.remove_replicas(&[name.to_owned()])
    }

    /// Takes replicas out of the mirror (they are closed once no operation uses them); a
    /// healthy one must stay.
    pub fn remove_replicas(&self, names: &[String]) -> Result<()> {
        let _writes_wait = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let mut replicas = self.replicas.write().unwrap_or_else(|p| p.into_inner());
        if !replicas
            .iter()
            .any(|r| !names.contains(&r.name) && r.healthy.load(Ordering::Relaxed))
        {
            return Err(Error::Backend(
                "no healthy metadata replica would remain: none removed".into(),
            ));
        }
        replicas.retain(|r| {
            let gone = names.contains(&r.name);
            if gone {
                info!(replica = %r.name, "metadata replica removed");
            }
            !gone
        });
        Ok(())
    }

    /// The commit sequence of the newest batch (0: nothing was ever written).
    pub fn sequence(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn healthy_replicas(&self) -> usize {
        self.current()
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
            .count()
    }

    fn fail(&self, r: &Replica, e: &Error) {
        if r.healthy.swap(false, Ordering::Relaxed) {
            error!(replica = %r.name, error = %e, "metadata replica failed; continuing on the others");
        }
    }

    /// Takes replicas whose operation failed out of service. Returns how many succeeded, or
    /// the last error when none did.
    fn tally<'a>(
        &self,
        outcomes: impl IntoIterator<Item = (&'a Replica, Result<()>)>,
    ) -> Result<usize> {
        let mut ok = 0;
        let mut last = None;
        for (r, outcome) in outcomes {
            match outcome {
                Ok(()) => ok += 1,
                Err(e) => {
                    self.fail(r, &e);
                    last = Some(e);
                }
            }
        }
        if ok == 0 {
            return Err(
                last.unwrap_or_else(|| Error::Backend("no healthy metadata replica left".into()))
            );
        }
        Ok(ok)
    }

    fn read<T>(&self, f: impl Fn(&dyn KvStore) -> Result<T>) -> Result<T> {
        let mut last = None;
        for r in self
            .current()
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
        {
            match f(r.kv.as_ref()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.fail(r, &e);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Backend("no healthy metadata replica left".into())))
    }
}

impl KvStore for MirroredKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(|kv| kv.get(tree, key))
    }

    fn scan(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.read(|kv| kv.scan(tree, start, end, limit))
    }

    /// As [`MirroredKv::read`], but a replica failing part-way hands over to the next, which
    /// resumes after the last key visited (no entry is seen twice). An error of the visitor's
    /// own ends the scan without blaming the replica.
    fn scan_each(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> Result<()> {
        let (mut last_key, mut visited) = (Vec::new(), false);
        let mut last = None;
        for r in self
            .current()
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
        {
            let from = if visited {
                let mut f = last_key.clone();
                f.push(0);
                f
            } else {
                start.to_vec()
            };
            let mut own = None;
            let outcome =
                r.kv.scan_each(tree, &from, end, &mut |k, v| match visit(k, v) {
                    Ok(more) => {
                        last_key.clear();
                        last_key.extend_from_slice(k);
                        visited = true;
                        Ok(more)
                    }
                    Err(e) => {
                        own = Some(e);
                        Err(Error::Backend("the scan's visitor failed".into()))
                    }
                });
            match (outcome, own) {
                (_, Some(e)) => return Err(e),
                (Ok(()), None) => return Ok(()),
                (Err(e), None) => {
                    self.fail(r, &e);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Backend("no healthy metadata replica left".into())))
    }

    /// A snapshot of the first healthy replica (they hold the same batches). A replica
    /// failing during the read fails the read; the caller may run it again.
    fn with_snapshot(&self, read: SnapshotFn<'_>) -> Result<()> {
        let replicas = self.current();
        let replica = replicas
            .iter()
            .find(|r| r.healthy.load(Ordering::Relaxed))
            .ok_or_else(|| Error::Backend("no healthy metadata replica left".into()))?;
        replica.kv.with_snapshot(read)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        self.apply(batch, true)
    }

    fn write_unsynced(&self, batch: Batch) -> Result<()> {
        self.apply(batch, false)
    }

    /// Flushes every healthy replica, all at once (one flush's latency, not one per replica).
    fn sync(&self) -> Result<()> {
        let current = self.current();
        let healthy: Vec<&Replica> = current
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
            .map(|r| r.as_ref())
            .collect();
        // The first replica is flushed on this thread, the others by their flushers alongside.
        let others: Vec<_> = healthy.iter().skip(1).map(|r| r.start_flush()).collect();
        let first = healthy.first().map(|r| r.kv.sync());
        let results: Vec<Result<()>> = first
            .into_iter()
            .chain(others.into_iter().map(|outcome| {
                outcome
                    .recv()
                    .unwrap_or_else(|_| Err(Error::Backend("replica flusher stopped".into())))
            }))
            .collect();
        self.tally(healthy.into_iter().zip(results)).map(drop)
    }
}

impl MirroredKv {
    fn apply(&self, mut batch: Batch, sync: bool) -> Result<()> {
        // The sequence lock orders batches identically on every replica.
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let next = *seq + 1;
        batch.put(Tree::Meta, SEQ_KEY, next.to_be_bytes());
        let current = self.current();
        let writes = current
            .iter()
            .filter(|r| r.healthy.load(Ordering::Relaxed))
            .map(|r| {
                let r = r.as_ref();
                let written = if sync {
                    r.kv.write(batch.clone())
                } else {
                    r.kv.write_unsynced(batch.clone())
                };
                (r, written)
            });
        let ok = self.tally(writes)?;
        if ok < current.len() {
            warn!(
                healthy = ok,
                total = current.len(),
                "metadata written to fewer replicas than configured"
            );
        }
        *seq = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;
    use std::sync::Arc;

    use crate::memory::delegate_to_memory;

    struct Shared(Arc<MemoryKv>);
    impl KvStore for Shared {
        delegate_to_memory!(0);
    }

    #[test]
    fn lagging_replica_is_rebuilt_at_open() {
        let a = Arc::new(MemoryKv::new());
        let b = Arc::new(MemoryKv::new());
        {
            let m = MirroredKv::new(vec![("a".into(), Box::new(Shared(a.clone())))]).unwrap();
            let mut batch = Batch::default();
            batch.put(Tree::Buckets, b"x".to_vec(), b"1".to_vec());
            m.write(batch).unwrap();
        }
        // b holds a stale key that must disappear.
        let mut stale = Batch::default();
        stale.put(Tree::Buckets, b"stale".to_vec(), b"0".to_vec());
        b.write(stale).unwrap();
        let m = MirroredKv::new(vec![
            ("b".into(), Box::new(Shared(b.clone()))),
            ("a".into(), Box::new(Shared(a.clone()))),
        ])
        .unwrap();
        assert_eq!(b.get(Tree::Buckets, b"x").unwrap(), Some(b"1".to_vec()));
        assert_eq!(b.get(Tree::Buckets, b"stale").unwrap(), None);
        let mut batch = Batch::default();
        batch.put(Tree::Buckets, b"y".to_vec(), b"2".to_vec());
        m.write(batch).unwrap();
        assert_eq!(read_seq(a.as_ref()).unwrap(), 2);
        assert_eq!(read_seq(b.as_ref()).unwrap(), 2);
    }

    #[test]
    fn replicas_join_and_leave_while_running() {
        let a = Arc::new(MemoryKv::new());
        let b = Arc::new(MemoryKv::new());
        let m = MirroredKv::new(vec![("a".into(), Box::new(Shared(a.clone())))]).unwrap();
        let put = |k: &[u8]| {
            let mut batch = Batch::default();
            batch.put(Tree::Buckets, k.to_vec(), b"v".to_vec());
            m.write(batch).unwrap();
        };
        put(b"before");
        m.add_replica("b".into(), Box::new(Shared(b.clone())))
            .unwrap();
        assert_eq!(
            b.get(Tree::Buckets, b"before").unwrap(),
            Some(b"v".to_vec())
        );
        put(b"after");
        assert_eq!(read_seq(b.as_ref()).unwrap(), 2);
        assert!(m.remove_replicas(&["a".into(), "b".into()]).is_err());
        m.remove_replicas(&["a".into()]).unwrap();
        assert_eq!(m.replica_names(), vec!["b".to_string()]);
        put(b"only-b");
        assert_eq!(a.get(Tree::Buckets, b"only-b").unwrap(), None);
        assert_eq!(
            m.get(Tree::Buckets, b"only-b").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(read_seq(b.as_ref()).unwrap(), 3);
    }

    #[test]
    fn a_replica_replaced_by_an_empty_one_rejoins_with_everything() {
        let a = Arc::new(MemoryKv::new());
        let b = Arc::new(MemoryKv::new());
        let m = MirroredKv::new(vec![
            ("a".into(), Box::new(Shared(a.clone())) as Box<dyn KvStore>),
            ("b".into(), Box::new(Shared(b.clone()))),
        ])
        .unwrap();
        let mut batch = Batch::default();
        batch.put(Tree::Buckets, b"k".to_vec(), b"v".to_vec());
        m.write(batch).unwrap();
        assert!(m.is_healthy("b"));
        // b's disk is swapped for an empty one: the replica is released and a fresh one joins.
        let fresh = Arc::new(MemoryKv::new());
        m.release_replica("b").unwrap();
        assert!(!m.is_healthy("b"));
        m.add_replica("b".into(), Box::new(Shared(fresh.clone())))
            .unwrap();
        assert!(m.is_healthy("b"));
        assert_eq!(fresh.get(Tree::Buckets, b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(read_seq(fresh.as_ref()).unwrap(), 1);
        // The last healthy replica is never released.
        m.release_replica("a").unwrap();
        assert!(m.release_replica("b").is_err());
        assert!(m.release_replica("nope").is_ok());
    }

    /// A replica whose scans fail after `after` entries (a disk failing mid-listing).
    struct FailsMidScan(Arc<MemoryKv>, usize);
    impl KvStore for FailsMidScan {
        delegate_to_memory!(0);
        fn scan_each(&self, t: Tree, s: &[u8], e: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
            for (k, v) in self.0.scan(t, s, e, self.1)? {
                if !visit(&k, &v)? {
                    return Ok(());
                }
            }
            Err(Error::Backend("read error".into()))
        }
    }

    #[test]
    fn a_scan_resumes_on_the_next_replica_without_repeating_entries() {
        let (a, b) = (Arc::new(MemoryKv::new()), Arc::new(MemoryKv::new()));
        let m = MirroredKv::new(vec![
            ("a".into(), Box::new(FailsMidScan(a, 3)) as Box<dyn KvStore>),
            ("b".into(), Box::new(Shared(b))),
        ])
        .unwrap();
        for i in 0..10u8 {
            let mut batch = Batch::default();
            batch.put(Tree::Buckets, vec![b'k', i], vec![i]);
            m.write(batch).unwrap();
        }
        let mut seen = Vec::new();
        m.scan_each(Tree::Buckets, b"k", None, &mut |k, v| {
            assert_eq!(k[1], v[0]);
            seen.push(v[0]);
            Ok(true)
        })
        .unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<u8>>());
        assert!(!m.is_healthy("a"));
        assert!(m.is_healthy("b"));

        // The visitor's own error ends the scan and blames no replica.
        let mut visits = 0;
        let outcome = m.scan_each(Tree::Buckets, b"k", Some(b"k\x05"), &mut |_, _| {
            visits += 1;
            Err(Error::Decode("bad record".into()))
        });
        assert!(matches!(outcome, Err(Error::Decode(_))), "{outcome:?}");
        assert_eq!(visits, 1);
        assert!(m.is_healthy("b"));
        // Stopping early is not an error, and the end bound holds.
        let mut seen = Vec::new();
        m.scan_each(Tree::Buckets, b"k\x02", Some(b"k\x08"), &mut |_, v| {
            seen.push(v[0]);
            Ok(v[0] < 5)
        })
        .unwrap();
        assert_eq!(seen, vec![2, 3, 4, 5]);
    }

    /// Records the thread each flush ran on.
    struct FlushLog(Arc<MemoryKv>, Arc<std::sync::Mutex<Vec<String>>>);
    impl KvStore for FlushLog {
        delegate_to_memory!(0);
        fn sync(&self) -> Result<()> {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            self.1.lock().unwrap().push(thread);
            Ok(())
        }
    }

    #[test]
    fn replicas_are_flushed_together_by_their_own_threads() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let replica = |name: &str| -> (String, Box<dyn KvStore>) {
            let kv = FlushLog(Arc::new(MemoryKv::new()), log.clone());
            (name.into(), Box::new(kv))
        };
        let m = MirroredKv::new(vec![replica("a"), replica("b"), replica("c")]).unwrap();
        for _ in 0..3 {
            m.sync().unwrap();
        }
        let mut threads = log.lock().unwrap().clone();
        threads.sort();
        let caller = std::thread::current().name().unwrap_or("").to_string();
        let mut expected = vec![caller; 3];
        expected.extend(
            ["meta-flush-b", "meta-flush-c"]
                .repeat(3)
                .into_iter()
                .map(String::from),
        );
        expected.sort();
        assert_eq!(threads, expected);
        // A released replica's flusher ends with it; the others still flush.
        m.release_replica("c").unwrap();
        log.lock().unwrap().clear();
        m.sync().unwrap();
        assert_eq!(log.lock().unwrap().len(), 2);
    }
}
