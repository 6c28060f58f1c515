//! The server's disks, local and on storage nodes, and the monitor that watches them.
//!
//! Every few seconds each local disk directory is probed: a missing disk that is back is brought
//! online, an empty directory in place of a lost disk is adopted (formatted as that disk, with a
//! log line saying so), a disk whose directory vanished goes offline, and a disk that fails its
//! write probe (read-only, I/O errors) is marked faulty. Whenever a disk comes (back) online the
//! monitor tells its caller (the server retries the heal queue and starts a full heal pass).
//! Node disks are followed by [`NodeSet::check_once`] in the same round.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use erasure::disk_format::{self, Deployment, DiskProbe};
use erasure::{DiskSlot, DiskSpace, DiskState, LocalDiskStore, ShardStore};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::nodes::{NodeSet, NodeStatus, Placement};

#[derive(Debug)]
pub struct Disks {
    pub deployment: Deployment,
    /// The local disk directories: positions `0..local.len()`; node disks follow.
    pub local: Vec<PathBuf>,
    /// Each position's name at start (a path, or a node disk's URL).
    names: Vec<String>,
    pub slots: Vec<Arc<DiskSlot>>,
    pub nodes: Option<NodeSet>,
}

/// One disk as `tessera admin info` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DiskInfo {
    pub index: usize,
    pub path: String,
    pub set: usize,
    #[serde(flatten)]
    pub state: DiskState,
    pub space: Option<DiskSpace>,
}

impl Disks {
    /// Opens a slot per disk position: the local or node disk store, or an offline
    /// placeholder with the reason. Blocking.
    pub fn open(
        deployment: Deployment,
        local: Vec<PathBuf>,
        placement: &Placement,
        nodes: Option<NodeSet>,
    ) -> Self {
        let slots = placement
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if let Some((_, why)) = deployment.offline.iter().find(|(o, _)| *o == i) {
                    warn!(disk = %name, "DISK OFFLINE: {why}; running degraded (reads rebuild its shards from parity, writes go to the others and are queued for heal)");
                    return Arc::new(DiskSlot::offline(name.clone(), why.clone()));
                }
                if let (Some(nodes), Some(b)) = (&nodes, placement.bindings[i]) {
                    return Arc::new(DiskSlot::online(name.clone(), nodes.store(i, b)));
                }
                let Some(dir) = local.get(i) else {
                    return Arc::new(DiskSlot::offline(name.clone(), "no node serves this disk"));
                };
                match LocalDiskStore::open(dir) {
                    Ok(store) => Arc::new(DiskSlot::online(name.clone(), Arc::new(store))),
                    Err(e) => {
                        warn!(disk = %name, error = %e, "DISK OFFLINE: cannot open it; running degraded");
                        Arc::new(DiskSlot::offline(name.clone(), e.to_string()))
                    }
                }
            })
            .collect();
        Disks {
            deployment,
            local,
            names: placement.names.clone(),
            slots,
            nodes,
        }
    }

    /// Where position `i` is now: a local path, or the node disk serving it.
    pub fn location(&self, i: usize) -> String {
        self.nodes
            .as_ref()
            .and_then(|n| n.location(i))
            .unwrap_or_else(|| self.names[i].clone())
    }

    /// The nodes, as `tessera admin info` reports them.
    pub fn node_status(&self) -> Vec<NodeStatus> {
        self.nodes.as_ref().map(NodeSet::status).unwrap_or_default()
    }

    pub fn stores(&self) -> Vec<Arc<dyn ShardStore>> {
        self.slots
            .iter()
            .map(|s| s.clone() as Arc<dyn ShardStore>)
            .collect()
    }

    pub async fn info(&self) -> Vec<DiskInfo> {
        let mut out = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            out.push(DiskInfo {
                index: i,
                path: self.location(i),
                set: i / self.deployment.layout.set_size,
                state: slot.state(),
                space: slot.space().await.ok().flatten(),
            });
        }
        out
    }

    /// Probes every disk once; returns true when a disk came (back) online.
    pub async fn check_once(self: &Arc<Self>) -> bool {
        let mut came_online = false;
        for i in 0..self.local.len() {
            let me = self.clone();
            let step = tokio::task::spawn_blocking(move || me.probe_and_fix(i)).await;
            match step {
                Ok(Some(true)) => came_online = true,
                Ok(_) => {}
                Err(e) => error!(error = %e, "disk probe task failed"),
            }
        }
        if let Some(nodes) = &self.nodes {
            came_online |= nodes.check_once(&self.slots).await;
        }
        for slot in &self.slots {
            if matches!(slot.state(), DiskState::Offline(_)) {
                continue;
            }
            match slot.health().await {
                Ok(()) => {
                    if let DiskState::Faulty(_) = slot.state() {
                        info!(disk = %slot.name(), "disk passes its health probe again");
                    }
                    slot.set_faulty(None);
                }
                Err(e) => {
                    if slot.state().is_online() {
                        warn!(disk = %slot.name(), error = %e, "DISK FAULTY: health probe failed; reads still try it, failed writes are queued for heal");
                    }
                    slot.set_faulty(Some(e.to_string()));
                }
            }
        }
        came_online
    }

    /// Blocking: probes disk `i` and brings it online, adopts it or takes it offline.
    /// `Some(true)` when it came online.
    fn probe_and_fix(&self, i: usize) -> Option<bool> {
        let path = &self.local[i];
        let slot = &self.slots[i];
        let probe = disk_format::probe_disk(path, &self.deployment, i);
        let offline = matches!(slot.state(), DiskState::Offline(_));
        match probe {
            DiskProbe::Ready if offline => match LocalDiskStore::open(path) {
                Ok(store) => {
                    slot.bring_online(Arc::new(store));
                    info!(disk = %path.display(), "disk is back online; healing what it missed");
                    Some(true)
                }
                Err(e) => {
                    warn!(disk = %path.display(), error = %e, "disk is back but cannot be opened");
                    None
                }
            },
            DiskProbe::Ready => None,
            DiskProbe::Adoptable => {
                let adopted = disk_format::adopt_disk(path, &self.deployment, i)
                    .and_then(|()| LocalDiskStore::open(path));
                match adopted {
                    Ok(store) => {
                        slot.bring_online(Arc::new(store));
                        warn!(disk = %path.display(), position = i + 1, "adopted an empty directory as replacement disk; heal will refill it");
                        Some(true)
                    }
                    Err(e) => {
                        warn!(disk = %path.display(), error = %e, "cannot adopt the empty replacement disk");
                        None
                    }
                }
            }
            DiskProbe::Unusable(why) => {
                if !offline {
                    error!(disk = %path.display(), "DISK OFFLINE: {why}; running degraded");
                    slot.take_offline(why);
                }
                None
            }
        }
    }

    /// Probes the disks every `every` until `shutdown` is cancelled; `on_online` runs after
    /// every round in which a disk came (back) online.
    pub fn spawn_monitor(
        self: &Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
        on_online: impl Fn() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let disks = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = shutdown.cancelled() => return,
                }
                if disks.check_once().await {
                    on_online();
                }
            }
        })
    }

    /// Ok when every erasure set has enough online disks to take writes (and so reads).
    pub fn readiness(&self) -> Result<(), String> {
        let layout = self.deployment.layout;
        let mut short = Vec::new();
        for set in 0..layout.sets() {
            let slots = &self.slots[set * layout.set_size..(set + 1) * layout.set_size];
            let online = slots.iter().filter(|s| s.state().is_online()).count();
            if online < layout.write_quorum() {
                short.push(format!(
                    "erasure set {} has {online} of {} disks online, writes need {}",
                    set + 1,
                    layout.set_size,
                    layout.write_quorum()
                ));
            }
        }
        if short.is_empty() {
            Ok(())
        } else {
            Err(short.join("; "))
        }
    }
}
