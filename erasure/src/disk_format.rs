//! The per-disk format file `<disk>/.tessera/format.json`, written on first start.
//!
//! It ties a directory to one deployment and one position in the disk list, so a later start
//! with a foreign disk, a missing format or a reordered or resized disk list is refused with an
//! explanation instead of silently scattering or misreading shards.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Layout, Result};

pub const FORMAT_FILE: &str = ".tessera/format.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFormat {
    pub format_version: u32,
    pub deployment_id: String,
    /// This disk's own id; `disks[disk_index]` equals it.
    pub disk_id: String,
    pub disk_index: usize,
    /// Every disk id of the deployment, in the order the disks were given.
    pub disks: Vec<String>,
    pub layout: Layout,
    pub chunk_size: usize,
}

/// The outcome of checking (or creating) the formats of all disks.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub deployment_id: String,
    pub layout: Layout,
    pub chunk_size: usize,
    /// True when this start formatted the disks.
    pub freshly_formatted: bool,
    /// Disks that are missing or unformatted: index and reason. The deployment runs degraded
    /// without them (reads need k shards, writes k+1 per stripe).
    pub offline: Vec<(usize, String)>,
}

fn format_path(disk: &Path) -> PathBuf {
    disk.join(FORMAT_FILE)
}

fn read_format(disk: &Path) -> Result<Option<DiskFormat>> {
    let path = format_path(disk);
    match fs::read(&path) {
        Ok(bytes) => {
            let f: DiskFormat = serde_json::from_slice(&bytes).map_err(|e| {
                Error::DiskFormat(format!(
                    "{} is not a valid tessera format file: {e}",
                    path.display()
                ))
            })?;
            if f.format_version != FORMAT_VERSION {
                return Err(Error::DiskFormat(format!(
                    "{} has format version {}, this tessera understands version {FORMAT_VERSION}",
                    path.display(),
                    f.format_version
                )));
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_format(disk: &Path, f: &DiskFormat) -> Result<()> {
    let path = format_path(disk);
    let dir = path.parent().expect("format file has a parent");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join("format.json.tmp");
    let body = serde_json::to_vec_pretty(f).expect("format serializes");
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(&body).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Formats fresh disks or verifies that `disks` are exactly the deployment's disks, in order.
pub fn prepare_disks(
    disks: &[PathBuf],
    parity: Option<usize>,
    chunk_size: usize,
) -> Result<Deployment> {
    let mut formats = Vec::with_capacity(disks.len());
    for d in disks {
        formats.push(if d.exists() { read_format(d)? } else { None });
    }

    if formats.iter().all(Option::is_none) {
        for d in disks {
            fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let layout = Layout::new(disks.len(), parity)?;
        let deployment_id = uuid::Uuid::new_v4().to_string();
        let ids: Vec<String> = disks
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        for (i, d) in disks.iter().enumerate() {
            write_format(
                d,
                &DiskFormat {
                    format_version: FORMAT_VERSION,
                    deployment_id: deployment_id.clone(),
                    disk_id: ids[i].clone(),
                    disk_index: i,
                    disks: ids.clone(),
                    layout,
                    chunk_size,
                },
            )?;
        }
        return Ok(Deployment {
            deployment_id,
            layout,
            chunk_size,
            freshly_formatted: true,
            offline: Vec::new(),
        });
    }

    let (first_idx, reference) = formats
        .iter()
        .enumerate()
        .find_map(|(i, f)| f.as_ref().map(|f| (i, f.clone())))
        .expect("at least one disk is formatted");
    let name = |i: usize| disks[i].display().to_string();

    let mut offline = Vec::new();
    for (i, f) in formats.iter().enumerate() {
        match f {
            None => {
                let why = if disks[i].exists() {
                    "has no tessera format (empty or replaced disk)"
                } else {
                    "does not exist"
                };
                offline.push((i, format!("{} {why}", name(i))));
            }
            Some(f) if f.deployment_id != reference.deployment_id => {
                return Err(Error::DiskFormat(format!(
                    "{} belongs to deployment {} but {} belongs to deployment {}: these disks come \
                     from different tessera deployments.",
                    name(i),
                    f.deployment_id,
                    name(first_idx),
                    reference.deployment_id
                )));
            }
            Some(_) => {}
        }
    }
    if reference.disks.len() != disks.len() {
        return Err(Error::DiskFormat(format!(
            "deployment {} was formatted with {} disks but {} were given; changing the number of \
             disks is not supported.",
            reference.deployment_id,
            reference.disks.len(),
            disks.len()
        )));
    }
    for (i, f) in formats.iter().enumerate() {
        let Some(f) = f else { continue };
        if f.disk_index != i || reference.disks.get(i) != Some(&f.disk_id) {
            return Err(Error::DiskFormat(format!(
                "{} is disk #{} of deployment {} but was given as disk #{}: give the disks in their \
                 original order.",
                name(i),
                f.disk_index + 1,
                reference.deployment_id,
                i + 1
            )));
        }
    }
    if let Some(p) = parity
        && p != reference.layout.parity
    {
        return Err(Error::DiskFormat(format!(
            "deployment {} was formatted with parity {}, --parity {p} cannot change it.",
            reference.deployment_id, reference.layout.parity
        )));
    }
    // Every erasure set must keep at least k disks, or some chunks cannot be read at all.
    let layout = reference.layout;
    for set in 0..layout.sets() {
        let lost = offline
            .iter()
            .filter(|(i, _)| i / layout.set_size == set)
            .count();
        if lost > layout.parity {
            let names: Vec<_> = offline.iter().map(|(_, why)| why.as_str()).collect();
            return Err(Error::DiskFormat(format!(
                "{lost} disks of erasure set {} are unavailable but it survives at most {}: {}",
                set + 1,
                layout.parity,
                names.join("; ")
            )));
        }
    }
    Ok(Deployment {
        deployment_id: reference.deployment_id,
        layout,
        chunk_size: reference.chunk_size,
        freshly_formatted: false,
        offline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path, n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| root.join(format!("d{i}"))).collect()
    }

    #[test]
    fn formats_then_accepts_same_disks() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path(), 4);
        let first = prepare_disks(&d, None, 1 << 20).unwrap();
        assert!(first.freshly_formatted);
        assert_eq!(first.layout.parity, 2);
        let again = prepare_disks(&d, None, 1 << 20).unwrap();
        assert!(!again.freshly_formatted);
        assert_eq!(again.deployment_id, first.deployment_id);
    }

    #[test]
    fn refuses_reordered_foreign_missing_and_resized() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path(), 4);
        prepare_disks(&d, None, 1 << 20).unwrap();

        let mut swapped = d.clone();
        swapped.swap(0, 1);
        let e = prepare_disks(&swapped, None, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("original order"), "{e}");

        let e = prepare_disks(&d[..3], None, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("formatted with 4 disks but 3"), "{e}");

        let other = dirs(&t.path().join("other"), 2);
        prepare_disks(&other, None, 1 << 20).unwrap();
        let mixed = vec![d[0].clone(), other[1].clone()];
        let e = prepare_disks(&mixed, None, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("different tessera deployments"), "{e}");

        let e = prepare_disks(&d, Some(1), 1 << 20).unwrap_err().to_string();
        assert!(e.contains("cannot change"), "{e}");
    }

    #[test]
    fn missing_disks_within_parity_run_degraded() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path(), 4);
        prepare_disks(&d, None, 1 << 20).unwrap();
        std::fs::remove_dir_all(&d[1]).unwrap();
        let mut with_empty = d.clone();
        with_empty[3] = t.path().join("empty");
        std::fs::create_dir(&with_empty[3]).unwrap();
        let dep = prepare_disks(&with_empty, None, 1 << 20).unwrap();
        assert_eq!(
            dep.offline.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 3]
        );
        assert!(!d[1].exists(), "a missing disk is not created");
        assert!(
            !with_empty[3].join(FORMAT_FILE).exists(),
            "an empty disk is not formatted"
        );

        std::fs::remove_dir_all(&d[2]).unwrap();
        let e = prepare_disks(&with_empty, None, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3 disks of erasure set 1 are unavailable"),
            "{e}"
        );

        let e = prepare_disks(&d, Some(1), 1 << 20).unwrap_err().to_string();
        assert!(e.contains("cannot change"), "{e}");
    }
}
