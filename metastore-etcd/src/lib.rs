//! Tessera's metadata on etcd: [`EtcdStore`] implements the metastore's transactional boundary
//! ([`metastore::TxnStore`]) on an etcd cluster, so that several gateways share one metadata
//! store without a home-made consensus.
//!
//! - A tree is a key prefix: `<prefix><tree name>/<key bytes>` (`prefix` is per cluster, for
//!   example `/tessera/default/`), so byte order within a tree is the metastore's order.
//! - A revision is etcd's `mod_revision` (0 for a key that does not exist). Every read reports
//!   the store revision it read at and can read at a given one, so all reads of a transaction
//!   see one snapshot (and long scans page at one revision).
//! - A commit is one etcd transaction: guards become `mod_revision` compares (a key's equal to
//!   what was read; every key of a range older than the read), the batch its success branch.
//!   etcd answers with `succeeded`, so a conflict writes nothing.
//! - etcd's limits are respected, not discovered: a transaction over 128 compares or
//!   operations, or 1.5 MiB, is refused here with [`metastore::Error::TooLarge`].
//! - Every call has a deadline; an unreachable cluster is [`metastore::Error::Unavailable`]
//!   (the S3 layer answers 503), never a hang.
//!
//! The trait is blocking (the metastore calls it on tokio's blocking pool), and the client is
//! async: each call runs on the runtime the store was connected on (`Handle::block_on`, which
//! is allowed on blocking-pool threads).
//!
//! Depends on `metastore` and `etcd-client` only.

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};
use metastore::{
    Batch, Commit, Entry, Error, Guard, KeyRead, Limits, Op, Result, Rev, Tree, TxnStore,
};
use tokio::runtime::Handle;

/// etcd's defaults: `--max-txn-ops` 128 and `--max-request-bytes` 1.5 MiB (with a margin for
/// the request's framing).
mod leader;
mod watch;

pub use leader::{GatewayDirectory, Leadership, Member};

pub const ETCD_LIMITS: Limits = Limits {
    max_ops: 128,
    max_guards: 128,
    max_bytes: 1_500_000,
};

/// Entries fetched per range request when a scan wants more (tonic decodes up to 4 MiB).
const PAGE: usize = 512;

pub struct EtcdStore {
    client: Client,
    prefix: Vec<u8>,
    runtime: Handle,
    timeout: Duration,
    /// Set once this gateway leads ([`EtcdStore::lead`]): every commit requires it still to.
    fence: Option<leader::Fence>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("etcd {what}: {e}"))
}

/// Which failed requests [`send`] makes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Only those that never reached etcd.
    Unsent,
    /// Also any that a retry may cure: for requests that change nothing.
    Reads,
}

/// True for errors a retry may cure (etcd electing a leader, a member going away).
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// An etcd error as the metastore's: what a retry later may cure is `Unavailable`.
pub(crate) fn from_etcd(what: &str, e: etcd_client::Error) -> Error {
    use tonic::Code;
    if transient(&e) {
        return match &e {
            etcd_client::Error::GRpcStatus(status) => unavailable(what, status.message()),
            _ => unavailable(what, e),
        };
    }
    match &e {
        etcd_client::Error::GRpcStatus(status) => match status.code() {
            // The snapshot a transaction read at was compacted away: it runs again.
            Code::OutOfRange if status.message().contains("compacted") => Error::Changed,
            Code::ResourceExhausted if status.message().contains("space exceeded") => {
                Error::MetadataFull(format!(
                    "etcd is out of space ({}): compact and defragment it, or raise \
                     --quota-backend-bytes, then `etcdctl alarm disarm`",
                    status.message()
                ))
            }
            _ => Error::Backend(format!("etcd {what}: {}", status.message())),
        },
        _ => Error::Backend(format!("etcd {what}: {e}")),
    }
}

/// True when the request failed before it reached any etcd member: the client could not
/// connect to the one it picked.
pub(crate) fn never_sent(e: &etcd_client::Error) -> bool {
    let text = match e {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::Unavailable => {
            status.message().to_owned()
        }
        etcd_client::Error::TransportError(t) => format!("{t:?}"),
        _ => return false,
    };
    text.contains("connect error") || text.contains("Connection refused")
}

/// Sends one etcd request made by `make`, within `timeout`. A request that never left,
/// because the connection to the member it went to could not be made (a dead member of
/// several), is made again: it goes to another member, and it cannot have been applied, so
/// repeating it is safe even for a transaction.
///
/// A read (`Retry::Reads`) is also made again after any error a retry may cure (a leader
/// election under way, a member going away): it changes nothing. A transaction is not: etcd
/// may have applied it before the error, and the caller's conflict check must decide.
pub(crate) async fn send<T, F>(
    what: &'static str,
    timeout: Duration,
    retry: Retry,
    make: impl Fn() -> F,
) -> Result<T>
where
    F: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let attempts = async {
        loop {
            match make().await {
                Err(e) if never_sent(&e) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) if retry == Retry::Reads && transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    };
    match tokio::time::timeout(timeout, attempts).await {
        Ok(result) => result.map_err(|e| from_etcd(what, e)),
        Err(_) => Err(unavailable(what, format!("no answer within {timeout:?}"))),
    }
}

/// The smallest key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // etcd's "to the end of the key space"
}

impl EtcdStore {
    /// The same store without the leader's fence: for the requests of a gateway, which
    /// any number of gateways serve at once.
    pub fn unfenced(&self) -> EtcdStore {
        EtcdStore {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            runtime: self.runtime.clone(),
            timeout: self.timeout,
            fence: None,
        }
    }

    /// Connects to the cluster at `endpoints` and checks that it answers within `timeout`
    /// (the client itself dials lazily, so an unreachable cluster would only show later).
    /// Tessera's keys live under `prefix`, which one cluster of gateways shares.
    pub async fn connect(endpoints: &[String], prefix: &str, timeout: Duration) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            // etcd refuses HTTP/2 pings more often than every 5 s (--grpc-keepalive-min-time).
            .with_keep_alive(Duration::from_secs(10), timeout);
        let mut client = tokio::time::timeout(timeout, Client::connect(endpoints, Some(options)))
            .await
            .map_err(|_| unavailable("connect", "timed out"))?
            .map_err(|e| from_etcd("connect", e))?;
        let probe = tokio::time::timeout(timeout, client.status()).await;
        match probe {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(from_etcd("status", e)),
            Err(_) => {
                return Err(unavailable(
                    "status",
                    format!("no answer from {} within {timeout:?}", endpoints.join(",")),
                ));
            }
        }
        Ok(EtcdStore {
            client,
            prefix: prefix.as_bytes().to_vec(),
            runtime: Handle::current(),
            timeout,
            fence: None,
        })
    }

    fn tree_prefix(&self, tree: Tree) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(tree.name().as_bytes());
        k.push(b'/');
        k
    }

    fn key(&self, tree: Tree, key: &[u8]) -> Vec<u8> {
        let mut k = self.tree_prefix(tree);
        k.extend_from_slice(key);
        k
    }

    /// The etcd range end of `end` within `tree` (`None`: the end of the tree).
    fn range_end(&self, tree: Tree, end: Option<&[u8]>) -> Vec<u8> {
        match end {
            Some(e) => self.key(tree, e),
            None => prefix_end(&self.tree_prefix(tree)),
        }
    }

    /// Runs `f` with the deadline on the store's runtime and waits for it on this (blocking)
    /// thread: the I/O is driven by the runtime's workers.
    /// Runs one etcd request made by `make` on the runtime, within the timeout ([`send`]).
    fn call<T, F>(
        &self,
        what: &'static str,
        retry: Retry,
        make: impl Fn() -> F + Send + Sync + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = std::result::Result<T, etcd_client::Error>> + Send,
    {
        let timeout = self.timeout;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(send(what, timeout, retry, make).await);
        });
        rx.blocking_recv()
            .map_err(|_| unavailable(what, "the runtime stopped"))?
    }

    fn check_limits(&self, guards: usize, ops: usize, bytes: usize) -> Result<()> {
        let l = ETCD_LIMITS;
        if guards > l.max_guards || ops > l.max_ops || bytes > l.max_bytes {
            return Err(Error::TooLarge(format!(
                "a metadata transaction of {guards} conditions, {ops} writes and {bytes} bytes \
                 exceeds etcd's limits ({} conditions, {} writes, {} bytes)",
                l.max_guards, l.max_ops, l.max_bytes
            )));
        }
        Ok(())
    }
}

impl TxnStore for EtcdStore {
    /// The create revision of the leader key this store's commits are fenced on: etcd
    /// revisions only grow, so each leadership's is larger than every earlier one's.
    fn fence_token(&self) -> u64 {
        self.fence.as_ref().map_or(0, |f| f.token())
    }

    /// One etcd watch per prefix, on the store's runtime, until the receiver is dropped.
    fn watch(&self, prefixes: &[(Tree, &[u8])]) -> Option<tokio::sync::watch::Receiver<u64>> {
        let (changed, receiver) = tokio::sync::watch::channel(0);
        let changed = std::sync::Arc::new(changed);
        for (tree, prefix) in prefixes {
            let key = self.key(*tree, prefix);
            self.runtime
                .spawn(watch::follow(self.client.clone(), key, changed.clone()));
        }
        Some(receiver)
    }

    fn with_snapshot(&self, read: metastore::SnapshotFn<'_>) -> Result<()> {
        metastore::read_at_revision(self, read)
    }

    fn get_rev(&self, tree: Tree, key: &[u8], at: Option<Rev>) -> Result<KeyRead> {
        let kv = self.client.kv_client();
        let k = self.key(tree, key);
        let options = at.map(|rev| GetOptions::new().with_revision(rev as i64));
        let resp = self.call("get", Retry::Reads, move || {
            let (mut kv, k, options) = (kv.clone(), k.clone(), options.clone());
            async move { kv.get(k, options).await }
        })?;
        let read_at = at.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision()) as Rev);
        Ok(match resp.kvs().first() {
            Some(found) => KeyRead {
                value: Some(found.value().to_vec()),
                rev: found.mod_revision() as Rev,
                at: read_at,
            },
            None => KeyRead {
                value: None,
                rev: 0,
                at: read_at,
            },
        })
    }

    fn scan_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        at: Option<Rev>,
    ) -> Result<(Vec<Entry>, Rev)> {
        let base = self.tree_prefix(tree).len();
        let range_end = self.range_end(tree, end);
        let mut from = self.key(tree, start);
        let mut out = Vec::new();
        // Every page reads at the first page's revision: one snapshot, however long.
        let mut at: Option<i64> = at.map(|rev| rev as i64);
        if end.is_some_and(|e| e <= start) || limit == 0 {
            if let Some(rev) = at {
                return Ok((out, rev as Rev));
            }
            let kv = self.client.kv_client();
            let k = self.key(tree, start);
            let resp = self.call("get", Retry::Reads, move || {
                let (mut kv, k) = (kv.clone(), k.clone());
                async move { kv.get(k, None).await }
            })?;
            let rev = resp.header().map_or(0, |h| h.revision()) as Rev;
            return Ok((out, rev));
        }
        loop {
            let want = (limit - out.len()).min(PAGE);
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(want as i64);
            if let Some(rev) = at {
                options = options.with_revision(rev);
            }
            let kv = self.client.kv_client();
            let key = from.clone();
            let mut resp = self.call("range", Retry::Reads, move || {
                let (mut kv, key, options) = (kv.clone(), key.clone(), options.clone());
                async move { kv.get(key, Some(options)).await }
            })?;
            let rev = resp.header().map_or(0, |h| h.revision());
            let at = *at.get_or_insert(rev);
            let more = resp.more();
            let kvs = resp.take_kvs();
            let got = kvs.len();
            for kv in kvs {
                let (k, v) = kv.into_key_value();
                from = k.clone();
                from.push(0);
                out.push((k[base..].to_vec(), v));
            }
            if out.len() >= limit || !more || got == 0 {
                return Ok((out, at as Rev));
            }
        }
    }

    fn commit(&self, txn: metastore::Txn) -> Result<Commit> {
        if txn.guards.is_empty() && txn.batch.is_empty() {
            return Ok(Commit::Done);
        }
        let bytes: usize = txn
            .batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(_, k, v) => k.len() + v.len() + self.prefix.len() + 16,
                Op::Delete(_, k) => k.len() + self.prefix.len() + 16,
            })
            .sum();
        self.check_limits(
            txn.guards.len() + usize::from(self.fence.is_some()),
            txn.batch.ops.len(),
            bytes,
        )?;
        let mut compares: Vec<Compare> = txn
            .guards
            .iter()
            .map(|g| match g {
                Guard::Key { tree, key, rev } => {
                    Compare::mod_revision(self.key(*tree, key), CompareOp::Equal, *rev as i64)
                }
                Guard::Range {
                    tree,
                    start,
                    end,
                    rev,
                } => {
                    Compare::mod_revision(self.key(*tree, start), CompareOp::Less, *rev as i64 + 1)
                        .with_range(self.range_end(*tree, end.as_deref()))
                }
            })
            .collect();
        if let Some(fence) = &self.fence {
            compares.push(fence.compare());
        }
        let ops: Vec<TxnOp> = batch_ops(self, txn.batch);
        let request = Txn::new().when(compares).and_then(ops);
        let kv = self.client.kv_client();
        let resp = self.call("txn", Retry::Unsent, move || {
            let (mut kv, request) = (kv.clone(), request.clone());
            async move { kv.txn(request).await }
        })?;
        if resp.succeeded() {
            return Ok(Commit::Done);
        }
        if let Some(fence) = &self.fence {
            self.check_fence(fence)?;
        }
        Ok(Commit::Conflict)
    }

    fn limits(&self) -> Limits {
        match self.fence {
            // The fence is one more compare in every transaction.
            Some(_) => Limits {
                max_guards: ETCD_LIMITS.max_guards - 1,
                ..ETCD_LIMITS
            },
            None => ETCD_LIMITS,
        }
    }
}

fn batch_ops(store: &EtcdStore, batch: Batch) -> Vec<TxnOp> {
    batch
        .ops
        .into_iter()
        .map(|op| match op {
            Op::Put(t, k, v) => TxnOp::put(store.key(t, &k), v, None),
            Op::Delete(t, k) => TxnOp::delete(store.key(t, &k), None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"/t/objects/"), b"/t/objects0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
