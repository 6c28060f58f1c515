//! The metastore's shared suite on a real etcd (Debian's `etcd-server`, which the test command
//! installs): the whole `MetaStore` API, its transactions under chaos and under 16 concurrent
//! writers, then the faults: limits, and a cluster that goes away and comes back.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use metastore::suite::{self, chunk, object};
use metastore::suite_concurrency::{Chaos, concurrent_writers};
use metastore::{BucketRecord, Error, MetaStore, ObjectData, ObjectRecord, TxnStore};
use metastore_etcd::EtcdStore;

/// One etcd member on 127.0.0.1 with free ports and a temporary data directory; killed when
/// dropped, panics included.
struct Etcd {
    child: Option<Child>,
    url: String,
    peer_port: u16,
    client_port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    fn start() -> Etcd {
        let mut etcd = Etcd {
            child: None,
            url: String::new(),
            peer_port: free_port(),
            client_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        etcd.url = format!("http://127.0.0.1:{}", etcd.client_port);
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url])
            .args(["--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start `etcd`: install etcd-server (scripts/test does)");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A prefix of its own, so the parts of these tests do not see each other's keys.
fn new_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("/tessera-test/{}/", N.fetch_add(1, Ordering::SeqCst))
}

/// A store on a prefix of its own.
async fn store(etcd: &Etcd) -> EtcdStore {
    store_at(etcd, &new_prefix()).await
}

async fn store_at(etcd: &Etcd, prefix: &str) -> EtcdStore {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match EtcdStore::connect(
            std::slice::from_ref(&etcd.url),
            prefix,
            Duration::from_secs(2),
        )
        .await
        {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("etcd at {} never answered: {e}", etcd.url),
        }
    }
}

fn meta(s: impl TxnStore) -> MetaStore {
    MetaStore::with_store(s, Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_metastore_suite_on_etcd() {
    let mut etcd = Etcd::start();

    // The whole API, as on every other backend.
    suite::run(meta(store(&etcd).await)).await;

    // Every operation's retry path, with half its commits refused.
    let chaos = Chaos::conflicting(store(&etcd).await);
    let conflicts = chaos.conflicts.clone();
    suite::run(meta(chaos)).await;
    assert!(conflicts.load(Ordering::SeqCst) > 50);

    // Concurrent writers: exact refcounts, one winner of racing conditional writes. etcd's
    // round trips give real overlaps between the transactions.
    concurrent_writers(meta(store(&etcd).await)).await;

    // As the leader runs it: fenced on its role, its transactions running concurrently.
    let (fenced, leadership) = store(&etcd)
        .await
        .lead(
            "suite",
            Duration::from_secs(5),
            tokio_util::sync::CancellationToken::new(),
            None,
            |_| {},
        )
        .await
        .unwrap();
    let sole = meta(fenced);
    suite::run(sole.clone()).await;
    concurrent_writers(sole.clone()).await;
    let counts = sole.commit_counts();
    assert_eq!((counts.unavailable, counts.failed), (0, 0));
    leadership.resign().await;

    // A change whose main part alone is larger than etcd takes (here a 1.6 MB record) is
    // refused with a clear error, and nothing of it is written. (Many references are no such
    // change: they are applied in steps, see `large_changes` in the suite.)
    let m = meta(store(&etcd).await);
    m.create_bucket("big", BucketRecord::new(0)).await.unwrap();
    let mut record = object(vec![chunk(3)]);
    record
        .user_metadata
        .insert("huge".into(), "x".repeat(1_600_000));
    match m.put_object("big", "k", record, None).await {
        Err(Error::TooLarge(msg)) => assert!(msg.contains("one transaction"), "{msg}"),
        other => panic!("expected TooLarge, got {:?}", other.map(|r| r.size)),
    }
    assert!(m.get_object("big", "k").await.unwrap().is_none());

    // etcd goes away: calls fail fast as Unavailable (503 for S3), nothing half-written;
    // it comes back and the same store works again.
    m.put_object("big", "before", object(vec![chunk(1)]), None)
        .await
        .unwrap();
    etcd.kill();
    let started = Instant::now();
    match m
        .put_object("big", "during", object(vec![chunk(2)]), None)
        .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    etcd.spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match m.get_object("big", "before").await {
            Ok(found) => {
                assert!(found.is_some());
                break;
            }
            Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await
            }
            Err(e) => panic!("etcd did not come back: {e}"),
        }
    }
    assert!(m.get_object("big", "during").await.unwrap().is_none());
    m.put_object("big", "after", object(vec![chunk(3)]), None)
        .await
        .unwrap();
    let check = m.check_refcounts(false).await.unwrap();
    assert!(check.mismatched.is_empty(), "{:?}", check.mismatched);
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_clear_error_at_connect() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let err = EtcdStore::connect(&[url], "/t/", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_leader_and_a_deposed_one_cannot_write() {
    let etcd = Etcd::start();
    let prefix = new_prefix();
    let lost_a = tokio_util::sync::CancellationToken::new();
    let (a, lead_a) = store_at(&etcd, &prefix)
        .await
        .lead(
            "gateway-a",
            Duration::from_secs(3),
            lost_a.clone(),
            None,
            |_| {},
        )
        .await
        .unwrap();
    let a = meta(a);
    a.create_bucket("shared", BucketRecord::new(0))
        .await
        .unwrap();

    // B waits while A holds the role.
    let b_store = store_at(&etcd, &prefix).await;
    let lost_b = tokio_util::sync::CancellationToken::new();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let b_task = tokio::spawn(async move {
        b_store
            .lead(
                "gateway-b",
                Duration::from_secs(3),
                lost_b,
                None,
                move |holder| {
                    let _ = seen_tx.send(holder.to_owned());
                },
            )
            .await
    });
    assert_eq!(seen_rx.recv().await.as_deref(), Some("gateway-a"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !b_task.is_finished(),
        "B became the leader while A held the role"
    );

    // A's role ends (here by revoking its lease, as a dead gateway's lease expires) while A's
    // store lives on, as in a gateway that was paused: B takes over, and A cannot write.
    lead_a.resign().await;
    let (b, lead_b) = tokio::time::timeout(Duration::from_secs(10), b_task)
        .await
        .expect("B took over within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(lead_b.took_over_from.as_deref(), Some("gateway-a"));
    let b = meta(b);
    // The fencing tokens shard deletions carry: each leadership's is larger than the one
    // before, and requests' unfenced stores carry none.
    assert!(a.fence_token() > 0);
    assert!(
        b.fence_token() > a.fence_token(),
        "B's token {} is not above A's {}",
        b.fence_token(),
        a.fence_token()
    );
    assert_eq!(store(&etcd).await.fence_token(), 0);
    match a
        .put_object("shared", "from-a", object(vec![chunk(1)]), None)
        .await
    {
        Err(Error::Unavailable(msg)) => assert!(msg.contains("no longer the leader"), "{msg}"),
        other => panic!("the deposed gateway wrote: {other:?}"),
    }
    assert!(lost_a.is_cancelled());
    assert!(b.get_object("shared", "from-a").await.unwrap().is_none());
    b.put_object("shared", "from-b", object(vec![chunk(2)]), None)
        .await
        .unwrap();
    assert!(a.get_object("shared", "from-b").await.unwrap().is_some());

    // A change too large for one etcd transaction (a 300-chunk manifest: 300 references) is
    // applied in steps, fenced too.
    let big: Vec<_> = (0..300u16)
        .map(|i| metastore::ChunkRef {
            hash: {
                let mut h = [7u8; 32];
                h[..2].copy_from_slice(&i.to_be_bytes());
                h
            },
            len: 1 << 20,
            stored_in: 0,
            plain_len: 0,
        })
        .collect();
    let mut record = object(vec![]);
    record.data = ObjectData::Chunks(big.clone());
    b.put_object("shared", "big", record.clone(), None)
        .await
        .unwrap();
    // Overwritten by a copy of itself (counts go to 2, then back to 1), then deleted.
    b.put_object("shared", "big-copy", record, None)
        .await
        .unwrap();
    b.delete_object("shared", "big", None).await.unwrap();
    assert_eq!(b.chunk_refcount(big[123].hash).await.unwrap(), Some(1));
    let check = b.check_refcounts(false).await.unwrap();
    assert!(check.mismatched.is_empty(), "{:?}", check.mismatched);
    b.delete_object("shared", "big-copy", None).await.unwrap();
    assert_eq!(b.chunk_refcount(big[299].hash).await.unwrap(), Some(0));
}

/// What an object costs in etcd, by kind, measured as etcd's own "in use" database size after
/// compacting away superseded revisions (BENCHMARKS.md quotes the figures this prints).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_per_object_in_etcd() {
    let etcd = Etcd::start();
    let mut client = etcd_client::Client::connect([etcd.url.as_str()], None)
        .await
        .unwrap();
    let m = meta(store(&etcd).await);
    m.create_bucket("sizes", BucketRecord::new(0))
        .await
        .unwrap();
    const N: usize = 500;
    let in_use = |client: &mut etcd_client::Client| {
        let mut client = client.clone();
        async move {
            let rev = client
                .get("x", None)
                .await
                .unwrap()
                .header()
                .unwrap()
                .revision();
            // Nothing written since the last compaction: it is refused, and not needed.
            let _ = client.compact(rev, None).await;
            // The in-use size settles once the compaction's freed pages are committed.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            client.status().await.unwrap().raft_used_db_size()
        }
    };
    let mut figures = Vec::new();
    type MakeRecord = fn(usize) -> ObjectRecord;
    let kinds: [(&str, MakeRecord); 4] = [
        ("512 B inline object", |_| {
            let mut r = object(vec![]);
            r.size = 512;
            r.data = ObjectData::Inline(vec![7; 512]);
            r
        }),
        ("4 KiB inline object", |_| {
            let mut r = object(vec![]);
            r.size = 4096;
            r.data = ObjectData::Inline(vec![7; 4096]);
            r
        }),
        ("1-chunk object", |i| {
            object(vec![metastore::ChunkRef::new(id(i, 1), 1 << 20)])
        }),
        ("10-chunk object", |i| {
            object(
                (0..10)
                    .map(|c| metastore::ChunkRef::new(id(i, 100 + c), 1 << 20))
                    .collect(),
            )
        }),
    ];
    for (kind, record) in kinds {
        let before = in_use(&mut client).await;
        for i in 0..N {
            m.put_object("sizes", &format!("{kind}/{i:06}"), record(i), None)
                .await
                .unwrap();
        }
        let after = in_use(&mut client).await;
        let per_object = (after - before) as f64 / N as f64;
        println!("etcd bytes per {kind}: {per_object:.0}");
        figures.push((kind, per_object));
    }
    // A regression guard, not a target: a default 2 GiB etcd should hold a million 1-chunk
    // objects' metadata.
    let one_chunk = figures[2].1;
    assert!(one_chunk < 2048.0, "{figures:?}");
}

/// A chunk hash unique to (object, chunk).
fn id(object: usize, chunk: usize) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&(object as u64).to_be_bytes());
    h[8..16].copy_from_slice(&(chunk as u64).to_be_bytes());
    h
}

/// A gateway's watch on the users and the IAM setting reports a change made through another
/// gateway's store at once, and stays quiet for changes elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_reports_user_changes_made_through_another_gateway() {
    let etcd = Etcd::start();
    let prefix = new_prefix();
    let a = meta(store_at(&etcd, &prefix).await);
    let b = meta(store_at(&etcd, &prefix).await);
    let mut changes = a.users_changed().expect("etcd is watched");
    // Opening each of its two streams counts as a change (nothing before it was seen): wait
    // for the first, then until they have been quiet for a second.
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("the watch opened")
        .unwrap();
    while tokio::time::timeout(Duration::from_secs(1), changes.changed())
        .await
        .is_ok()
    {}

    b.create_bucket("elsewhere", BucketRecord::new(0))
        .await
        .unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
    assert!(quiet.is_err(), "a bucket is not a user change");

    b.put_setting("iam", b"policies".to_vec(), true)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), changes.changed())
        .await
        .expect("the IAM setting's change was reported")
        .unwrap();
    assert!(MetaStore::memory().users_changed().is_none());
}
