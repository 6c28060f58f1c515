//! The gateway's storage nodes (`serve --node URL`): finding them at start, placing their disks
//! in the deployment, and following them while the server runs.
//!
//! A node disk's position is the one recorded in its format file (written through the node
//! when the deployment was formatted or the disk adopted), never the order or address the node
//! was given under. So nodes may be listed in any order, and a node that comes back on another
//! address of the list (swapped or re-leased IPs, a restarted container) is recognised by what
//! its disks say and its shards are used again. Local disks come first, at the positions they
//! are given in; node disks follow.
//!
//! The monitor asks every node for its [`NodeInfo`] each disk-check interval: a node that does
//! not answer within [`INFO_TIMEOUT`] has its disks taken offline at once (requests to them fail
//! fast, reads rebuild from parity, writes continue degraded and are queued for heal); a node
//! that answers again has its disks put back, and the caller starts heal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use erasure::disk_format::{Deployment, DiskFormat, Found};
use erasure::{DiskSlot, DiskState};
use serde::Serialize;
use tracing::{info, warn};

use crate::protocol::{NodeDiskFormat, NodeInfo};
use crate::remote::{NodeClient, RemoteNode};

/// How long a node may take to say who it is before it counts as down.
pub const INFO_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a starting gateway waits for every node to answer.
pub const START_WAIT: Duration = Duration::from_secs(10);

/// Where a disk position is served from: the node (by its index in the `--node` list) and the
/// disk's index on that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub endpoint: usize,
    pub disk: usize,
}

/// One node as `tessera admin info` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub url: String,
    pub node_id: Option<String>,
    /// `online` or `offline`.
    pub state: &'static str,
    /// Round trip of the last info request.
    pub latency_ms: Option<f64>,
    /// Why the node is offline or a disk of it cannot be used.
    pub error: Option<String>,
    /// Deployment disk positions (0-based, as `disks[].index`) the node serves.
    pub positions: Vec<usize>,
}

/// Asks every node who it is, retrying those that do not answer until all have or `wait` has
/// passed (nodes and gateway are often started together).
pub async fn discover(
    urls: &[String],
    secret: &str,
    wait: Duration,
) -> Result<Vec<Result<NodeInfo, String>>, String> {
    let clients = urls
        .iter()
        .map(|u| NodeClient::new(u, secret, None).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = Instant::now() + wait;
    let mut answers: Vec<Result<NodeInfo, String>> =
        vec![Err("not asked yet".to_owned()); urls.len()];
    // A node that answers, even with a refusal (wrong secret, another deployment), is not
    // asked again; only nodes that cannot be reached are.
    let mut settled = vec![false; urls.len()];
    loop {
        let pending: Vec<usize> = (0..urls.len()).filter(|&i| !settled[i]).collect();
        let asked =
            futures::future::join_all(pending.iter().map(|&i| clients[i].info(INFO_TIMEOUT))).await;
        for (i, answer) in pending.into_iter().zip(asked) {
            settled[i] = !matches!(&answer, Err(e) if unreachable(e));
            answers[i] = answer.map_err(|e| e.to_string());
        }
        if settled.iter().all(|s| *s) || Instant::now() >= deadline {
            return Ok(answers);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn unreachable(e: &erasure::Error) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, TimedOut};
    matches!(e, erasure::Error::Io { source, .. } if matches!(source.kind(), ConnectionRefused | TimedOut))
}

/// The disk positions as found at start: what each holds (for [`erasure::disk_format::plan`]),
/// its name in messages, and where each node disk is served from.
#[derive(Debug)]
pub struct Placement {
    pub found: Vec<Found>,
    pub names: Vec<String>,
    pub bindings: Vec<Option<Binding>>,
}

fn node_found(f: &NodeDiskFormat) -> Found {
    match f {
        NodeDiskFormat::Formatted { format } => Found::Formatted(format.clone()),
        NodeDiskFormat::Unformatted => Found::Empty,
        NodeDiskFormat::Unreadable { reason } => Found::Unreadable(reason.clone()),
    }
}

/// Puts the node disks after the local ones: for a new deployment in the order given (every
/// node must have answered), else each formatted disk at its recorded position, empty disks
/// in the positions no reachable node holds (adopted as replacements), and the rest offline.
pub fn place(
    local: Vec<Found>,
    local_names: Vec<String>,
    urls: &[String],
    infos: &[Result<NodeInfo, String>],
) -> Result<Placement, String> {
    if urls.is_empty() {
        // Local disks only: their order is checked by `plan`, as always.
        return Ok(Placement {
            bindings: vec![None; local.len()],
            found: local,
            names: local_names,
        });
    }
    let mut remote: Vec<(Binding, Found)> = Vec::new();
    for (e, info) in infos.iter().enumerate() {
        if let Ok(info) = info {
            for (d, f) in info.disks.iter().enumerate() {
                remote.push((
                    Binding {
                        endpoint: e,
                        disk: d,
                    },
                    node_found(f),
                ));
            }
        }
    }
    let disk_name = |b: &Binding| format!("{}/disk{}", urls[b.endpoint], b.disk);
    let reference: Option<DiskFormat> =
        local
            .iter()
            .chain(remote.iter().map(|(_, f)| f))
            .find_map(|f| match f {
                Found::Formatted(f) => Some(f.clone()),
                _ => None,
            });
    let first_remote = local.len();
    let mut found = local;
    let mut names = local_names;
    let mut bindings = vec![None; found.len()];
    let Some(reference) = reference else {
        // A new deployment: every node must be there, so its disks get their positions now.
        if let Some((e, Err(why))) = infos.iter().enumerate().find(|(_, i)| i.is_err()) {
            return Err(format!(
                "node {} does not answer ({why}): a new deployment needs every node",
                urls[e]
            ));
        }
        for (b, f) in remote {
            names.push(disk_name(&b));
            found.push(f);
            bindings.push(Some(b));
        }
        return Ok(Placement {
            found,
            names,
            bindings,
        });
    };
    let total = reference.disks.len();
    if total < first_remote {
        return Err(format!(
            "deployment {} was formatted with {total} disks but {first_remote} local disks \
             were given before the nodes' disks; changing the number of disks is not supported.",
            reference.deployment_id
        ));
    }
    let mut slots: Vec<Option<(Binding, Found)>> = vec![None; total - first_remote];
    let mut empty = Vec::new();
    for (b, f) in remote {
        match &f {
            Found::Formatted(fmt) if fmt.deployment_id != reference.deployment_id => {
                return Err(format!(
                    "{} belongs to deployment {}, not {}: these disks come from different \
                     tessera deployments",
                    disk_name(&b),
                    fmt.deployment_id,
                    reference.deployment_id
                ));
            }
            Found::Formatted(fmt) => {
                let p = fmt.disk_index;
                if p < first_remote || p >= total {
                    return Err(format!(
                        "{} is disk #{} of the deployment, which is not a node disk position \
                         here ({} local disks, {total} in all)",
                        disk_name(&b),
                        p + 1,
                        first_remote
                    ));
                }
                if let Some((other, _)) = &slots[p - first_remote] {
                    return Err(format!(
                        "{} and {} both claim disk #{}",
                        disk_name(other),
                        disk_name(&b),
                        p + 1
                    ));
                }
                slots[p - first_remote] = Some((b, f));
            }
            Found::Empty => empty.push((b, f)),
            _ => warn!(disk = %disk_name(&b), "node disk unusable: {f:?}"),
        }
    }
    let mut empty = empty.into_iter();
    for (i, slot) in slots.into_iter().enumerate() {
        let p = first_remote + i;
        match slot.or_else(|| empty.next()) {
            Some((b, f)) => {
                names.push(disk_name(&b));
                found.push(f);
                bindings.push(Some(b));
            }
            None => {
                let why = format!("no reachable node holds disk #{}", p + 1);
                names.push(format!("node disk #{}", p + 1));
                found.push(Found::Unreadable(why));
                bindings.push(None);
            }
        }
    }
    if let Some((b, _)) = empty.next() {
        return Err(format!(
            "{} is one node disk more than deployment {} has ({total} disks); changing the \
             number of disks is not supported",
            disk_name(&b),
            reference.deployment_id
        ));
    }
    Ok(Placement {
        found,
        names,
        bindings,
    })
}

struct Endpoint {
    url: String,
    client: Arc<NodeClient>,
}

/// What the monitor last saw: each node's status and which node disk serves each position.
/// One lock, changed in one step, so that `admin info` never shows a node's new identity
/// with its disks still at their old addresses.
struct Seen {
    statuses: Vec<NodeStatus>,
    bindings: Vec<Option<Binding>>,
}

/// The nodes of a running gateway and which of them serves each node disk position.
pub struct NodeSet {
    deployment_id: String,
    disk_ids: Vec<String>,
    /// Writes the format of an empty node disk adopted while running.
    deployment: Deployment,
    first_remote: usize,
    endpoints: Vec<Endpoint>,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSet")
            .field("nodes", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NodeSet {
    /// The nodes at `urls`, whose disks take the positions from `first_remote` on.
    pub fn new(
        urls: &[String],
        secret: &str,
        deployment: &Deployment,
        first_remote: usize,
        placement: &Placement,
        infos: &[Result<NodeInfo, String>],
    ) -> Result<Self, String> {
        let mut endpoints = Vec::new();
        let mut statuses = Vec::new();
        for (e, url) in urls.iter().enumerate() {
            let client = NodeClient::new(url, secret, Some(&deployment.deployment_id))
                .map_err(|e| e.to_string())?;
            let positions = placement
                .bindings
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_some_and(|b| b.endpoint == e))
                .map(|(p, _)| p)
                .collect();
            let (node_id, error) = match &infos[e] {
                Ok(i) => (Some(i.node_id.clone()), None),
                Err(why) => (None, Some(why.clone())),
            };
            endpoints.push(Endpoint {
                url: url.clone(),
                client: Arc::new(client),
            });
            statuses.push(NodeStatus {
                url: url.clone(),
                state: if node_id.is_some() {
                    "online"
                } else {
                    "offline"
                },
                node_id,
                latency_ms: None,
                error,
                positions,
            });
        }
        Ok(NodeSet {
            deployment_id: deployment.deployment_id.clone(),
            disk_ids: deployment.disk_ids.clone(),
            deployment: deployment.clone(),
            first_remote,
            endpoints,
            seen: Mutex::new(Seen {
                statuses,
                bindings: placement.bindings.clone(),
            }),
        })
    }

    /// The store serving position `p` at `binding`; the node refuses its requests if that
    /// node disk is not position `p`'s disk.
    pub fn store(&self, p: usize, b: Binding) -> Arc<RemoteNode> {
        let store = RemoteNode::on(self.endpoints[b.endpoint].client.clone(), b.disk);
        Arc::new(match self.disk_ids.get(p) {
            Some(id) => store.expecting(id),
            None => store,
        })
    }

    /// Writes the deployment format of node disk `b`.
    pub async fn put_format(&self, b: Binding, format: &DiskFormat) -> Result<(), String> {
        self.endpoints[b.endpoint]
            .client
            .put_format(b.disk, format)
            .await
            .map_err(|e| e.to_string())
    }

    /// Where position `p` is served from now, as a URL, when a node serves it.
    pub fn location(&self, p: usize) -> Option<String> {
        lock(&self.seen)
            .bindings
            .get(p)
            .copied()
            .flatten()
            .map(|b| format!("{}/disk{}", self.endpoints[b.endpoint].url, b.disk))
    }

    pub fn is_remote(&self, p: usize) -> bool {
        p >= self.first_remote
    }

    pub fn status(&self) -> Vec<NodeStatus> {
        lock(&self.seen).statuses.clone()
    }

    /// Asks every node who it is and rebinds the node disk positions to match: disks of nodes
    /// that are gone go offline, disks that turned up (again, or at another address) come
    /// online. Returns true when a disk came online.
    pub async fn check_once(&self, slots: &[Arc<DiskSlot>]) -> bool {
        let mut asked = futures::future::join_all(self.endpoints.iter().map(|e| async {
            let start = Instant::now();
            let info = e.client.info(INFO_TIMEOUT).await;
            (info, start.elapsed())
        }))
        .await;
        self.adopt_empty_disks(&mut asked, slots.len()).await;
        let mut wanted: Vec<Option<Binding>> = vec![None; slots.len()];
        let mut why_missing: Vec<Option<String>> = vec![None; self.endpoints.len()];
        let mut seen = lock(&self.seen);
        for (e, (info, took)) in asked.into_iter().enumerate() {
            let endpoint = &self.endpoints[e];
            let status = &mut seen.statuses[e];
            status.positions.clear();
            status.error = None;
            match info {
                Ok(info) => {
                    status.state = "online";
                    status.latency_ms = Some(took.as_secs_f64() * 1000.0);
                    if status
                        .node_id
                        .as_ref()
                        .is_some_and(|id| *id != info.node_id)
                    {
                        info!(node = %endpoint.url, was = ?status.node_id, now = %info.node_id, "another node answers at this address; placing its disks by their formats");
                    }
                    status.node_id = Some(info.node_id.clone());
                    for (d, f) in info.disks.iter().enumerate() {
                        let Some(p) = self.holds(f) else {
                            status.error = Some(format!("disk {d}: {}", describe(f)));
                            continue;
                        };
                        if wanted[p].is_none() {
                            wanted[p] = Some(Binding {
                                endpoint: e,
                                disk: d,
                            });
                            status.positions.push(p);
                        }
                    }
                }
                Err(err) => {
                    if status.state == "online" {
                        warn!(node = %endpoint.url, error = %err, "NODE OFFLINE: its disks are offline; reads rebuild from parity, writes continue degraded and are queued for heal");
                    }
                    status.state = "offline";
                    status.latency_ms = None;
                    status.error = Some(err.to_string());
                    why_missing[e] = Some(err.to_string());
                }
            }
        }
        let mut came_online = false;
        let bindings = &mut seen.bindings;
        for p in self.first_remote..slots.len() {
            let slot = &slots[p];
            let offline = matches!(slot.state(), DiskState::Offline(_));
            match wanted[p] {
                Some(b) if bindings[p] == Some(b) && !offline => {}
                Some(b) => {
                    slot.bring_online(self.store(p, b));
                    bindings[p] = Some(b);
                    info!(disk = p + 1, node = %self.endpoints[b.endpoint].url, node_disk = b.disk, "node disk online; healing what it missed");
                    came_online = true;
                }
                None if offline => {}
                None => {
                    let why = match bindings[p] {
                        Some(b) => why_missing[b.endpoint].clone().map_or_else(
                            || {
                                format!(
                                    "{} no longer holds this disk",
                                    self.endpoints[b.endpoint].url
                                )
                            },
                            |e| format!("node {} unreachable: {e}", self.endpoints[b.endpoint].url),
                        ),
                        None => format!("no reachable node holds disk #{}", p + 1),
                    };
                    slot.take_offline(why);
                }
            }
        }
        came_online
    }
}

impl NodeSet {
    /// Whether a node's disk answer is this deployment's disk at node position `p`.
    fn holds(&self, f: &NodeDiskFormat) -> Option<usize> {
        match f {
            NodeDiskFormat::Formatted { format }
                if format.deployment_id == self.deployment_id
                    && self.disk_ids.get(format.disk_index) == Some(&format.disk_id)
                    && self.is_remote(format.disk_index) =>
            {
                Some(format.disk_index)
            }
            _ => None,
        }
    }

    /// Adopts empty node disks (a node replaced, or its disk swapped, while the gateway runs)
    /// in the node positions no node holds now: each gets that position's format, and its
    /// answer in `asked` is updated so the caller binds it as any returning disk. A node's
    /// empty disks go first to the positions that node served before.
    async fn adopt_empty_disks(
        &self,
        asked: &mut [(Result<NodeInfo, erasure::Error>, Duration)],
        positions: usize,
    ) {
        let mut held = vec![false; positions];
        let mut empties = Vec::new();
        for (e, (info, _)) in asked.iter().enumerate() {
            let Ok(info) = info else { continue };
            for (d, f) in info.disks.iter().enumerate() {
                match (self.holds(f), f) {
                    (Some(p), _) if p < positions => held[p] = true,
                    (None, NodeDiskFormat::Unformatted) => empties.push(Binding {
                        endpoint: e,
                        disk: d,
                    }),
                    _ => {}
                }
            }
        }
        if empties.is_empty() {
            return;
        }
        let before = lock(&self.seen).bindings.clone();
        let mut free: Vec<usize> = (self.first_remote..positions)
            .filter(|&p| !held[p])
            .collect();
        for b in empties {
            // The positions this node served before, else any free one.
            let pick = free
                .iter()
                .position(|&p| {
                    before
                        .get(p)
                        .copied()
                        .flatten()
                        .is_some_and(|old| old.endpoint == b.endpoint)
                })
                .or(if free.is_empty() { None } else { Some(0) });
            let Some(i) = pick else { return };
            let p = free.remove(i);
            let format = self.deployment.format_for(p);
            let url = &self.endpoints[b.endpoint].url;
            match self.endpoints[b.endpoint]
                .client
                .put_format(b.disk, &format)
                .await
            {
                Ok(()) => {
                    warn!(node = %url, node_disk = b.disk, position = p + 1, "adopted an empty node disk as replacement disk; heal will refill it");
                    if let (Ok(info), _) = &mut asked[b.endpoint]
                        && let Some(slot) = info.disks.get_mut(b.disk)
                    {
                        *slot = NodeDiskFormat::Formatted { format };
                    }
                }
                Err(e) => {
                    warn!(node = %url, node_disk = b.disk, error = %e, "cannot adopt the empty node disk");
                    free.insert(i, p);
                }
            }
        }
    }
}

fn describe(f: &NodeDiskFormat) -> String {
    match f {
        NodeDiskFormat::Formatted { format } => format!(
            "disk #{} of deployment {}, not one of this gateway's node disks",
            format.disk_index + 1,
            format.deployment_id
        ),
        NodeDiskFormat::Unformatted => {
            "empty, and no lost disk position is left for it to replace".into()
        }
        NodeDiskFormat::Unreadable { reason } => reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erasure::Layout;

    fn format(dep: &str, ids: &[String], index: usize) -> DiskFormat {
        DiskFormat {
            format_version: erasure::disk_format::FORMAT_VERSION,
            deployment_id: dep.into(),
            disk_id: ids[index].clone(),
            disk_index: index,
            disks: ids.to_vec(),
            layout: Layout::new(ids.len(), None).unwrap(),
            chunk_size: 1 << 20,
        }
    }

    fn node(id: &str, disks: Vec<NodeDiskFormat>) -> Result<NodeInfo, String> {
        Ok(NodeInfo {
            node_id: id.into(),
            deployment_id: Some("dep".into()),
            disks,
        })
    }

    #[test]
    fn node_disks_are_placed_by_their_recorded_positions() {
        let urls: Vec<String> = (1..=3).map(|i| format!("http://n{i}:9100")).collect();
        let ids: Vec<String> = (0..4).map(|i| format!("disk-{i}")).collect();
        let f = |i| NodeDiskFormat::Formatted {
            format: format("dep", &ids, i),
        };
        // One local disk, then nodes listed out of order: n1 holds #4, n2 #2, n3 #3.
        let local = vec![Found::Formatted(format("dep", &ids, 0))];
        let infos = vec![
            node("a", vec![f(3)]),
            node("b", vec![f(1)]),
            node("c", vec![f(2)]),
        ];
        let p = place(local.clone(), vec!["/d0".into()], &urls, &infos).unwrap();
        assert_eq!(
            p.bindings,
            [
                None,
                Some(Binding {
                    endpoint: 1,
                    disk: 0
                }),
                Some(Binding {
                    endpoint: 2,
                    disk: 0
                }),
                Some(Binding {
                    endpoint: 0,
                    disk: 0
                }),
            ]
        );
        assert_eq!(p.names[3], "http://n1:9100/disk0");

        // n2 is down and n3 came back with an empty disk: the empty disk is adopted at the
        // first position no reachable node holds (#2), and #3 is offline.
        let infos = vec![
            node("a", vec![f(3)]),
            Err("refused".into()),
            node("c", vec![NodeDiskFormat::Unformatted]),
        ];
        let p = place(local.clone(), vec!["/d0".into()], &urls, &infos).unwrap();
        assert!(matches!(p.found[1], Found::Empty));
        assert_eq!(
            p.bindings[1],
            Some(Binding {
                endpoint: 2,
                disk: 0
            })
        );
        assert!(matches!(&p.found[2], Found::Unreadable(w) if w.contains("#3")));
        assert_eq!(p.bindings[2], None);

        // Two nodes claiming one position, a foreign disk, and one disk too many are refused.
        let infos = vec![
            node("a", vec![f(3)]),
            node("b", vec![f(3)]),
            node("c", vec![f(2)]),
        ];
        let e = place(local.clone(), vec!["/d0".into()], &urls, &infos).unwrap_err();
        assert!(e.contains("both claim disk #4"), "{e}");
        let foreign = NodeDiskFormat::Formatted {
            format: format("other", &ids, 1),
        };
        let infos = vec![
            node("a", vec![f(3)]),
            node("b", vec![foreign]),
            node("c", vec![f(2)]),
        ];
        let e = place(local.clone(), vec!["/d0".into()], &urls, &infos).unwrap_err();
        assert!(e.contains("different tessera deployments"), "{e}");
        let infos = vec![
            node("a", vec![f(3), NodeDiskFormat::Unformatted]),
            node("b", vec![f(1)]),
            node("c", vec![f(2)]),
        ];
        let e = place(local.clone(), vec!["/d0".into()], &urls, &infos).unwrap_err();
        assert!(e.contains("one node disk more"), "{e}");
        // A node disk cannot take a local disk's position.
        let infos = vec![
            node("a", vec![f(0)]),
            node("b", vec![f(1)]),
            node("c", vec![f(2)]),
        ];
        let e = place(local, vec!["/d0".into()], &urls, &infos).unwrap_err();
        assert!(e.contains("not a node disk position"), "{e}");
    }

    #[test]
    fn a_new_deployment_needs_every_node() {
        let urls: Vec<String> = (1..=2).map(|i| format!("http://n{i}:9100")).collect();
        let infos = vec![
            node("a", vec![NodeDiskFormat::Unformatted; 2]),
            Err("connection refused".into()),
        ];
        let e = place(Vec::new(), Vec::new(), &urls, &infos).unwrap_err();
        assert!(e.contains("http://n2:9100 does not answer"), "{e}");
        let infos = vec![
            node("a", vec![NodeDiskFormat::Unformatted; 2]),
            node("b", vec![NodeDiskFormat::Unformatted]),
        ];
        let p = place(Vec::new(), Vec::new(), &urls, &infos).unwrap();
        assert_eq!(p.found.len(), 3);
        assert_eq!(
            p.bindings[2],
            Some(Binding {
                endpoint: 1,
                disk: 0
            })
        );
    }
}
