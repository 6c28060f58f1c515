//! One leader at a time among the gateways, chosen by etcd: the gateway that creates the key
//! `<prefix>gateway/active` (its name from when only the leader served), bound to a lease it
//! keeps alive, leads: it runs the background jobs. Every gateway serves requests; the others
//! campaign and take over once that key is gone, which etcd does when the lease expires (a
//! dead or cut-off leader), within its TTL.
//!
//! Every commit of the leader compares the key's create revision with its own (the fence):
//! once the lease expired and another gateway took over, a write of the deposed leader
//! cannot land, even if that process was only paused and does not know yet. Its next commit
//! then finds the fence broken and reports `Unavailable`, and its `lost` token is cancelled,
//! so its run (and its jobs) stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use metastore::{Error, Result};
use tokio_util::sync::CancellationToken;

use crate::{EtcdStore, Retry, from_etcd, send, unavailable};

/// What every commit of the leader is conditioned on.
pub(crate) struct Fence {
    key: Vec<u8>,
    create_rev: i64,
    lost: CancellationToken,
}

impl Fence {
    pub(crate) fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.create_rev)
    }

    pub(crate) fn token(&self) -> u64 {
        self.create_rev.max(0) as u64
    }
}

/// The leader's hold on its role: [`Leadership::resign`] hands it over at once (a
/// graceful stop), instead of after the lease's TTL.
pub struct Leadership {
    client: Client,
    lease: i64,
    /// Who else held the role before this gateway got it, if anyone did while it waited.
    pub took_over_from: Option<String>,
    /// Whether the last lease renewal got through: etcd is reachable.
    reachable: Arc<AtomicBool>,
    directory: GatewayDirectory,
}

/// How a gateway shows itself to the others while it waits: its id in `<prefix>gateways/`
/// and the value there.
pub struct Member {
    pub id: String,
    pub value: String,
    /// Set by the lease's renewals: whether etcd answers, from the start of the campaign.
    pub reachable: Arc<AtomicBool>,
}

/// The gateways of a cluster as they announce themselves: `<prefix>gateways/<id>`, bound to
/// each gateway's lease, so a gateway that dies drops out within its lease's TTL.
#[derive(Clone)]
pub struct GatewayDirectory {
    client: Client,
    prefix: Vec<u8>,
    timeout: Duration,
    lease: i64,
    id: String,
}

impl GatewayDirectory {
    fn key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(self.id.as_bytes());
        k
    }

    /// Replaces this gateway's entry (bound to its lease).
    pub async fn announce(&self, value: &str) -> Result<()> {
        let (kv, key, value) = (self.client.kv_client(), self.key(), value.to_owned());
        send("put", self.timeout, Retry::Reads, || {
            // Repeating a put of the same value is harmless.
            let (mut kv, key, value) = (kv.clone(), key.clone(), value.clone());
            let lease = self.lease;
            async move {
                kv.put(key, value, Some(PutOptions::new().with_lease(lease)))
                    .await
            }
        })
        .await
        .map(|_| ())
    }

    /// Every live gateway: (id, value), by id.
    pub async fn list(&self) -> Result<Vec<(String, String)>> {
        let (kv, prefix) = (self.client.kv_client(), self.prefix.clone());
        let mut resp = send("range", self.timeout, Retry::Reads, || {
            let (mut kv, prefix) = (kv.clone(), prefix.clone());
            async move {
                kv.get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
                    .await
            }
        })
        .await?;
        let base = self.prefix.len();
        Ok(resp
            .take_kvs()
            .into_iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(&kv.key()[base..]).into_owned(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                )
            })
            .collect())
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// True while lease renewals get through to etcd.
    pub fn etcd_reachable(&self) -> Arc<AtomicBool> {
        self.reachable.clone()
    }

    /// The cluster's gateways, and this one's entry among them.
    pub fn directory(&self) -> GatewayDirectory {
        self.directory.clone()
    }

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

    /// Waits until this gateway (`who`: what other gateways see of it while they wait) leads,
    /// then returns the store fenced on that role. `waiting` is told who holds it
    /// whenever that changes. `lost` is cancelled when the role is lost (the lease could not
    /// be kept alive, or a commit found another gateway leading).
    ///
    /// `member`, if given, is this gateway's entry in the [`GatewayDirectory`] from the start
    /// (while it waits, too).
    pub async fn lead(
        mut self,
        who: &str,
        ttl: Duration,
        lost: CancellationToken,
        member: Option<Member>,
        mut waiting: impl FnMut(&str),
    ) -> Result<(EtcdStore, Leadership)> {
        let deadline = self.timeout;
        let mut leases = self.client.lease_client();
        let ttl_secs = ttl.as_secs().max(2) as i64;
        // A repeated grant only leaves a stray lease, which expires: safe to repeat.
        let lease = send("lease grant", deadline, Retry::Reads, || {
            let mut leases = leases.clone();
            async move { leases.grant(ttl_secs, None).await }
        })
        .await?
        .id();
        let (keeper, answers) = send("lease keep-alive", deadline, Retry::Reads, || {
            let mut leases = leases.clone();
            async move { leases.keep_alive(lease).await }
        })
        .await?;
        // Renewed three times per TTL. A renewal that fails (the member it went to died, say)
        // opens the keep-alive stream again, through another member; only when no renewal
        // got through for nearly a whole TTL is the role given up (the lease may be gone),
        // and the server stops. Commits are fenced regardless: this only stops it promptly.
        let every = Duration::from_secs(ttl_secs as u64) / 3;
        let give_up = Duration::from_secs(ttl_secs as u64) - every / 2;
        let keepalive_lost = lost.clone();
        let reachable = member
            .as_ref()
            .map_or_else(|| Arc::new(AtomicBool::new(true)), |m| m.reachable.clone());
        let keepalive_reachable = reachable.clone();
        let mut stream = Some((keeper, answers));
        tokio::spawn(async move {
            let mut renewed_at = tokio::time::Instant::now();
            let mut wait = every;
            loop {
                tokio::select! {
                    () = keepalive_lost.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                let renewed = tokio::time::timeout(every, async {
                    if stream.is_none() {
                        stream = Some(leases.keep_alive(lease).await?);
                    }
                    let (keeper, answers) = stream.as_mut().expect("opened above");
                    keeper.keep_alive().await?;
                    answers.message().await
                })
                .await;
                match renewed {
                    Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                        renewed_at = tokio::time::Instant::now();
                        wait = every;
                        keepalive_reachable.store(true, Ordering::Relaxed);
                    }
                    Ok(Ok(Some(_))) => {
                        tracing::error!("etcd lease expired: this gateway stops leading");
                        keepalive_lost.cancel();
                        return;
                    }
                    other => {
                        stream = None;
                        keepalive_reachable.store(false, Ordering::Relaxed);
                        if renewed_at.elapsed() >= give_up {
                            tracing::error!(outcome = ?other.map(|r| r.map(|a| a.map(|a| a.ttl()))), "etcd lease not renewed for {give_up:?}: this gateway stops leading");
                            keepalive_lost.cancel();
                            return;
                        }
                        tracing::warn!(outcome = ?other.map(|r| r.map(|a| a.map(|a| a.ttl()))), "etcd lease renewal failed; trying another member");
                        wait = Duration::from_millis(200);
                    }
                }
            }
        });

        let mut directory_prefix = self.prefix.clone();
        directory_prefix.extend_from_slice(b"gateways/");
        let directory = GatewayDirectory {
            client: self.client.clone(),
            prefix: directory_prefix,
            timeout: self.timeout,
            lease,
            id: member
                .as_ref()
                .map_or_else(|| lease.to_string(), |m| m.id.clone()),
        };
        if let Some(member) = &member {
            directory.announce(&member.value).await?;
        }
        let key = self.leader_key();
        let mut last_holder: Option<String> = None;
        loop {
            if lost.is_cancelled() {
                return Err(unavailable(
                    "lease",
                    "lost while campaigning for the leadership",
                ));
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
            let resp = match tokio::time::timeout(deadline, kv.txn(claim)).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => match from_etcd("txn", e) {
                    // Waiting survives an etcd member's loss: try again (through another).
                    Error::Unavailable(why) => {
                        tracing::debug!(error = %why, "etcd unavailable while standing by");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    other => return Err(other),
                },
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            // The holder's key, when the claim did not succeed. It may be this gateway's own
            // (the lease): a claim that succeeded but whose answer was lost, then retried.
            let held = resp.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().cloned(),
                _ => None,
            });
            let ours = held
                .as_ref()
                .filter(|kv| kv.lease() == lease)
                .map(|kv| kv.create_revision());
            if resp.succeeded() || ours.is_some() {
                // The transaction's revision is the key's create revision.
                let create_rev = match ours {
                    Some(rev) => rev,
                    None => resp
                        .header()
                        .map(|h| h.revision())
                        .ok_or_else(|| Error::Backend("etcd answered without a header".into()))?,
                };
                self.fence = Some(Fence {
                    key,
                    create_rev,
                    lost,
                });
                let leadership = Leadership {
                    client: self.client.clone(),
                    lease,
                    took_over_from: last_holder,
                    reachable,
                    directory,
                };
                return Ok((self, leadership));
            }
            let holder = held
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
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
        let kv = self.client.kv_client();
        let key = fence.key.clone();
        let resp = self.call("get", Retry::Reads, move || {
            let (mut kv, key) = (kv.clone(), key.clone());
            async move { kv.get(key, None).await }
        })?;
        let current = resp.kvs().first().map(|kv| kv.create_revision());
        if current == Some(fence.create_rev) {
            return Ok(());
        }
        fence.lost.cancel();
        Err(Error::Unavailable(
            "this gateway is no longer the leader (its etcd lease expired and another \
             gateway took over); nothing was written"
                .into(),
        ))
    }
}
