//! One active gateway at a time, chosen by etcd: the gateway that creates the key
//! `<prefix>gateway/active`, bound to a lease it keeps alive, is the active one; the others
//! wait (standby) and take over once that key is gone, which etcd does when the lease expires
//! (a dead or cut-off gateway), within its TTL.
//!
//! Every commit of the active gateway compares the key's create revision with its own
//! (the fence): once the lease expired and another gateway took over, a write of the deposed
//! one cannot land, even if that process was only paused and does not know yet. Its next
//! commit then finds the fence broken and reports `Unavailable`, and its `lost` token is
//! cancelled, so the server stops.

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use metastore::{Error, Result};
use tokio_util::sync::CancellationToken;

use crate::{EtcdStore, from_etcd, unavailable};

/// What every commit of the active gateway is conditioned on.
pub(crate) struct Fence {
    key: Vec<u8>,
    create_rev: i64,
    lost: CancellationToken,
}

impl Fence {
    pub(crate) fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.create_rev)
    }
}

/// The active gateway's hold on its role: [`Leadership::resign`] hands it over at once (a
/// graceful stop), instead of after the lease's TTL.
pub struct Leadership {
    client: Client,
    lease: i64,
    /// Who else held the role before this gateway got it, if anyone did while it waited.
    pub took_over_from: Option<String>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    pub async fn resign(self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.client.lease_client().revoke(self.lease),
        )
        .await;
    }
}

impl EtcdStore {
    fn leader_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(b"gateway/active");
        k
    }

    /// Waits until this gateway (`who`: what other gateways see of it while they wait) is the
    /// active one, then returns the store fenced on that role. `waiting` is told who holds it
    /// whenever that changes. `lost` is cancelled when the role is lost (the lease could not
    /// be kept alive, or a commit found another gateway active).
    pub async fn lead(
        mut self,
        who: &str,
        ttl: Duration,
        lost: CancellationToken,
        mut waiting: impl FnMut(&str),
    ) -> Result<(EtcdStore, Leadership)> {
        let deadline = self.timeout;
        let mut leases = self.client.lease_client();
        let ttl_secs = ttl.as_secs().max(2) as i64;
        let lease = tokio::time::timeout(deadline, leases.grant(ttl_secs, None))
            .await
            .map_err(|_| unavailable("lease grant", "timed out"))?
            .map_err(|e| from_etcd("lease grant", e))?
            .id();
        let (mut keeper, mut answers) = tokio::time::timeout(deadline, leases.keep_alive(lease))
            .await
            .map_err(|_| unavailable("lease keep-alive", "timed out"))?
            .map_err(|e| from_etcd("lease keep-alive", e))?;
        // Renewed three times per TTL; a renewal that fails or is not answered in time ends
        // the role (the lease may expire before the next one), and the server stops.
        let every = Duration::from_secs(ttl_secs as u64) / 3;
        let keepalive_lost = lost.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = keepalive_lost.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let renewed = tokio::time::timeout(every, async {
                    keeper.keep_alive().await?;
                    answers.message().await
                })
                .await;
                match renewed {
                    Ok(Ok(Some(answer))) if answer.ttl() > 0 => {}
                    other => {
                        tracing::error!(outcome = ?other.map(|r| r.map(|a| a.map(|a| a.ttl()))), "etcd lease lost: this gateway stops being the active one");
                        keepalive_lost.cancel();
                        return;
                    }
                }
            }
        });

        let key = self.leader_key();
        let mut last_holder: Option<String> = None;
        loop {
            if lost.is_cancelled() {
                return Err(unavailable("lease", "lost while waiting to become active"));
            }
            let claim = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    who,
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            let mut kv = self.client.kv_client();
            let resp = tokio::time::timeout(deadline, kv.txn(claim))
                .await
                .map_err(|_| unavailable("txn", "timed out"))?
                .map_err(|e| from_etcd("txn", e))?;
            if resp.succeeded() {
                // The transaction's revision is the key's create revision.
                let create_rev = resp
                    .header()
                    .map(|h| h.revision())
                    .ok_or_else(|| Error::Backend("etcd answered without a header".into()))?;
                self.fence = Some(Fence {
                    key,
                    create_rev,
                    lost,
                });
                let leadership = Leadership {
                    client: self.client.clone(),
                    lease,
                    took_over_from: last_holder,
                };
                return Ok((self, leadership));
            }
            let holder = resp
                .op_responses()
                .into_iter()
                .find_map(|r| match r {
                    TxnOpResponse::Get(g) => g
                        .kvs()
                        .first()
                        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                    _ => None,
                })
                .unwrap_or_else(|| "another gateway".to_owned());
            if last_holder.as_deref() != Some(holder.as_str()) {
                waiting(&holder);
                last_holder = Some(holder);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// After a commit failed: if the role is lost, says so (and stops the server).
    pub(crate) fn check_fence(&self, fence: &Fence) -> Result<()> {
        let mut kv = self.client.kv_client();
        let key = fence.key.clone();
        let resp = self.call("get", async move { kv.get(key, None).await })?;
        let current = resp.kvs().first().map(|kv| kv.create_revision());
        if current == Some(fence.create_rev) {
            return Ok(());
        }
        fence.lost.cancel();
        Err(Error::Unavailable(
            "this gateway is no longer the active one (its etcd lease expired and another \
             gateway took over); nothing was written"
                .into(),
        ))
    }
}
