//! A node's identity, kept on its disks: `DIR/.tessera/node.json` (format version 1) names the
//! node (a UUID made at its first start), the disk's position on the node, and the deployment
//! (the gateway cluster) the node belongs to once one has claimed it. Gateways will know nodes
//! by this id, not by address, so a node that returns on a new address is recognised.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const FORMAT_VERSION: u32 = 1;
const FILE: &str = ".tessera/node.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DiskFormat {
    version: u32,
    node_id: String,
    disk: usize,
    deployment_id: Option<String>,
}

#[derive(Debug)]
pub struct NodeIdentity {
    pub node_id: String,
    deployment: Mutex<Option<String>>,
    dirs: Vec<PathBuf>,
}

fn read(dir: &Path) -> Result<Option<DiskFormat>, String> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let f: DiskFormat = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: unreadable node format: {e}", path.display()))?;
            if f.version != FORMAT_VERSION {
                return Err(format!(
                    "{}: node format version {} (this build reads {FORMAT_VERSION})",
                    path.display(),
                    f.version
                ));
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the file durably: temp file, fsync, rename, fsync of the directory.
fn write(dir: &Path, f: &DiskFormat) -> Result<(), String> {
    use std::io::Write;
    let path = dir.join(FILE);
    let parent = path.parent().expect("has a parent");
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = parent.join("node.json.tmp");
    let json = serde_json::to_vec_pretty(f).map_err(|e| e.to_string())?;
    let mut file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", parent.display()))
}

impl NodeIdentity {
    /// Reads the node's identity from its disks, or gives new disks one. Disks of another
    /// node, or in another order, are refused.
    pub fn load_or_create(dirs: &[PathBuf]) -> Result<Self, String> {
        let found: Vec<Option<DiskFormat>> =
            dirs.iter().map(|d| read(d)).collect::<Result<_, _>>()?;
        let known: Vec<&DiskFormat> = found.iter().flatten().collect();
        let node_id = known
            .first()
            .map(|f| f.node_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let deployment = known.iter().find_map(|f| f.deployment_id.clone());
        for (i, f) in found.iter().enumerate() {
            let Some(f) = f else { continue };
            if f.node_id != node_id {
                return Err(format!(
                    "{} belongs to node {}, the other disks to node {node_id}",
                    dirs[i].display(),
                    f.node_id
                ));
            }
            if f.disk != i {
                return Err(format!(
                    "{} was disk {} of this node and is now given as disk {i}: keep the order",
                    dirs[i].display(),
                    f.disk
                ));
            }
            if f.deployment_id.is_some() && f.deployment_id != deployment {
                return Err(format!(
                    "{} belongs to another deployment than the other disks",
                    dirs[i].display()
                ));
            }
        }
        for (i, f) in found.iter().enumerate() {
            if f.is_none() {
                write(
                    &dirs[i],
                    &DiskFormat {
                        version: FORMAT_VERSION,
                        node_id: node_id.clone(),
                        disk: i,
                        deployment_id: deployment.clone(),
                    },
                )?;
            }
        }
        Ok(NodeIdentity {
            node_id,
            deployment: Mutex::new(deployment),
            dirs: dirs.to_vec(),
        })
    }

    /// The node's disk directories, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn deployment(&self) -> Option<String> {
        self.deployment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Accepts a request from `deployment`: the first deployment to ask claims the node (and
    /// it is written to every disk); any other is refused.
    pub fn admit(&self, deployment: &str) -> Result<(), String> {
        let mut current = self.deployment.lock().unwrap_or_else(|p| p.into_inner());
        match current.as_deref() {
            Some(d) if d == deployment => Ok(()),
            Some(d) => Err(format!(
                "this node belongs to deployment {d}, not {deployment}"
            )),
            None => {
                for (i, dir) in self.dirs.iter().enumerate() {
                    write(
                        dir,
                        &DiskFormat {
                            version: FORMAT_VERSION,
                            node_id: self.node_id.clone(),
                            disk: i,
                            deployment_id: Some(deployment.to_owned()),
                        },
                    )?;
                }
                *current = Some(deployment.to_owned());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restarts_and_refuses_strangers() {
        let t = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..2).map(|i| t.path().join(format!("d{i}"))).collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let first = NodeIdentity::load_or_create(&dirs).unwrap();
        assert_eq!(first.deployment(), None);
        first.admit("dep-a").unwrap();
        first.admit("dep-a").unwrap();
        assert!(first.admit("dep-b").unwrap_err().contains("dep-a"));

        let again = NodeIdentity::load_or_create(&dirs).unwrap();
        assert_eq!(again.node_id, first.node_id);
        assert_eq!(again.deployment().as_deref(), Some("dep-a"));
        assert!(again.admit("dep-b").is_err());

        // Swapped disks and a disk of another node are refused.
        let swapped = vec![dirs[1].clone(), dirs[0].clone()];
        assert!(
            NodeIdentity::load_or_create(&swapped)
                .unwrap_err()
                .contains("order")
        );
        let other = t.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        NodeIdentity::load_or_create(std::slice::from_ref(&other)).unwrap();
        let mixed = vec![dirs[0].clone(), other];
        assert!(
            NodeIdentity::load_or_create(&mixed)
                .unwrap_err()
                .contains("node")
        );
    }
}
