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
    /// Every disk's id, by position: what a replacement disk is formatted with.
    pub disk_ids: Vec<String>,
    /// True when this start formatted the disks.
    pub freshly_formatted: bool,
    /// Disks that are missing or unusable: index and reason. The deployment runs degraded
    /// without them (reads need k shards, writes k+1 per stripe).
    pub offline: Vec<(usize, String)>,
    /// Empty replacement disks formatted at this start; heal refills them.
    pub adopted: Vec<usize>,
}

impl Deployment {
    /// The positions whose disks the caller of [`plan`] must format: every one of a new
    /// deployment, else the adopted empty ones.
    pub fn to_format(&self) -> Vec<usize> {
        if self.freshly_formatted {
            (0..self.disk_ids.len()).collect()
        } else {
            self.adopted.clone()
        }
    }

    /// The format file of the disk at position `index`.
    pub fn format_for(&self, index: usize) -> DiskFormat {
        DiskFormat {
            format_version: FORMAT_VERSION,
            deployment_id: self.deployment_id.clone(),
            disk_id: self.disk_ids[index].clone(),
            disk_index: index,
            disks: self.disk_ids.clone(),
            layout: self.layout,
            chunk_size: self.chunk_size,
        }
    }
}

/// What a disk position holds: read from a local directory by [`inspect`], or reported by a
/// storage node for one of its disks.
#[derive(Debug, Clone)]
pub enum Found {
    Formatted(DiskFormat),
    /// The directory does not exist.
    Absent,
    /// The directory exists and holds nothing (a `lost+found` aside).
    Empty,
    /// Files, but no format: not ours to take over.
    Unformatted,
    /// The directory or its format cannot be read.
    Unreadable(String),
}

fn format_path(disk: &Path) -> PathBuf {
    disk.join(FORMAT_FILE)
}

/// Reads what a local disk directory holds.
pub fn inspect(disk: &Path) -> Result<Found> {
    let path = format_path(disk);
    match fs::read(&path) {
        Ok(bytes) => {
            let f: DiskFormat = match serde_json::from_slice(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    return Ok(Found::Unreadable(format!(
                        "{} is damaged: {e}",
                        path.display()
                    )));
                }
            };
            if f.format_version != FORMAT_VERSION {
                return Err(Error::DiskFormat(format!(
                    "{} has format version {}, this tessera understands version {FORMAT_VERSION}",
                    path.display(),
                    f.format_version
                )));
            }
            Ok(Found::Formatted(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::read_dir(disk) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Absent),
            Err(e) => Ok(Found::Unreadable(format!("{}: {e}", disk.display()))),
            Ok(entries) => {
                let mut empty = true;
                for entry in entries {
                    match entry {
                        Ok(e) if e.file_name() == "lost+found" => {}
                        Ok(_) => empty = false,
                        Err(e) => return Ok(Found::Unreadable(format!("{}: {e}", disk.display()))),
                    }
                }
                Ok(if empty {
                    Found::Empty
                } else {
                    Found::Unformatted
                })
            }
        },
        Err(e) => Ok(Found::Unreadable(format!("{}: {e}", path.display()))),
    }
}

/// Writes a disk's format file durably (temporary file, fsync, rename, directory fsync).
pub fn write_format(disk: &Path, f: &DiskFormat) -> Result<()> {
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

/// What the disk monitor finds at a disk's path while the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskProbe {
    /// Formatted as this deployment's disk at this position.
    Ready,
    /// An empty directory: it can be adopted as a replacement.
    Adoptable,
    /// Absent or unusable, with the reason.
    Unusable(String),
}

/// Checks a disk directory against the deployment, for the disk at `index`.
pub fn probe_disk(disk: &Path, deployment: &Deployment, index: usize) -> DiskProbe {
    match inspect(disk) {
        Ok(Found::Formatted(f)) => {
            if f.deployment_id != deployment.deployment_id {
                DiskProbe::Unusable(format!(
                    "{} belongs to deployment {}, not {}",
                    disk.display(),
                    f.deployment_id,
                    deployment.deployment_id
                ))
            } else if f.disk_index != index || deployment.disk_ids.get(index) != Some(&f.disk_id) {
                DiskProbe::Unusable(format!(
                    "{} is disk #{} of this deployment, not #{}",
                    disk.display(),
                    f.disk_index + 1,
                    index + 1
                ))
            } else {
                DiskProbe::Ready
            }
        }
        Ok(Found::Empty) => DiskProbe::Adoptable,
        Ok(Found::Absent) => DiskProbe::Unusable(format!("{} does not exist", disk.display())),
        Ok(Found::Unformatted) => DiskProbe::Unusable(unformatted(&disk.display().to_string())),
        Ok(Found::Unreadable(why)) => DiskProbe::Unusable(why),
        Err(e) => DiskProbe::Unusable(e.to_string()),
    }
}

/// Formats an empty replacement directory as the deployment's disk at `index`.
pub fn adopt_disk(disk: &Path, deployment: &Deployment, index: usize) -> Result<()> {
    format_disk(disk, deployment, index)
}

/// Formats the local directory `disk` (created if missing) as the deployment's disk at `index`.
pub fn format_disk(disk: &Path, deployment: &Deployment, index: usize) -> Result<()> {
    fs::create_dir_all(disk).map_err(|e| Error::io(disk, e))?;
    write_format(disk, &deployment.format_for(index))
}

fn unformatted(disk: &str) -> String {
    format!(
        "{disk} holds files but no tessera format; empty it to have it adopted as a replacement disk"
    )
}

/// Formats fresh disks or verifies that `disks` are exactly the deployment's disks, in order.
/// Missing or unusable disks are reported offline (within parity); empty directories standing
/// in for lost disks are adopted.
pub fn prepare_disks(
    disks: &[PathBuf],
    parity: Option<usize>,
    chunk_size: usize,
) -> Result<Deployment> {
    let found = disks
        .iter()
        .map(|d| inspect(d))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = disks.iter().map(|d| d.display().to_string()).collect();
    let deployment = plan(&found, &names, parity, chunk_size)?;
    for i in deployment.to_format() {
        format_disk(&disks[i], &deployment, i)?;
        if !deployment.freshly_formatted {
            tracing::warn!(disk = %names[i], position = i + 1, "adopted an empty directory as replacement disk; heal will refill it");
        }
    }
    Ok(deployment)
}

/// Decides the deployment from what each disk position holds, writing nothing: a new one when
/// no disk is formatted (the caller then formats every disk), else the existing one, checked
/// against every disk, with the offline disks and the empty ones to adopt (the caller formats
/// those). `names` name the positions in messages.
pub fn plan(
    found: &[Found],
    names: &[String],
    parity: Option<usize>,
    chunk_size: usize,
) -> Result<Deployment> {
    let reference = found.iter().enumerate().find_map(|(i, f)| match f {
        Found::Formatted(f) => Some((i, f.clone())),
        _ => None,
    });
    let Some((first_idx, reference)) = reference else {
        if let Some(why) = found.iter().find_map(|f| match f {
            Found::Unreadable(why) => Some(why),
            _ => None,
        }) {
            return Err(Error::DiskFormat(format!(
                "cannot format a new deployment: {why}"
            )));
        }
        return Ok(Deployment {
            deployment_id: uuid::Uuid::new_v4().to_string(),
            layout: Layout::new(found.len(), parity)?,
            chunk_size,
            disk_ids: found
                .iter()
                .map(|_| uuid::Uuid::new_v4().to_string())
                .collect(),
            freshly_formatted: true,
            offline: Vec::new(),
            adopted: Vec::new(),
        });
    };
    let name = |i: usize| names[i].clone();

    for (i, f) in found.iter().enumerate() {
        if let Found::Formatted(f) = f
            && f.deployment_id != reference.deployment_id
        {
            return Err(Error::DiskFormat(format!(
                "{} belongs to deployment {} but {} belongs to deployment {}: these disks come \
                 from different tessera deployments.",
                name(i),
                f.deployment_id,
                name(first_idx),
                reference.deployment_id
            )));
        }
    }
    if reference.disks.len() != found.len() {
        return Err(Error::DiskFormat(format!(
            "deployment {} was formatted with {} disks but {} were given; changing the number of \
             disks is not supported.",
            reference.deployment_id,
            reference.disks.len(),
            found.len()
        )));
    }
    let mut offline = Vec::new();
    let mut adopt = Vec::new();
    for (i, f) in found.iter().enumerate() {
        match f {
            Found::Formatted(f) => {
                if f.disk_index != i || reference.disks.get(i) != Some(&f.disk_id) {
                    return Err(Error::DiskFormat(format!(
                        "{} is disk #{} of deployment {} but was given as disk #{}: give the disks \
                         in their original order.",
                        name(i),
                        f.disk_index + 1,
                        reference.deployment_id,
                        i + 1
                    )));
                }
            }
            Found::Absent => offline.push((i, format!("{} does not exist", name(i)))),
            Found::Empty => adopt.push(i),
            Found::Unformatted => offline.push((i, unformatted(&name(i)))),
            Found::Unreadable(why) => offline.push((i, why.clone())),
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
    // Every erasure set must keep at least k disks that still hold their shards, or some
    // chunks cannot be read at all: an adopted empty disk holds none yet.
    let layout = reference.layout;
    for set in 0..layout.sets() {
        let in_set = |i: &usize| i / layout.set_size == set;
        let lost = offline.iter().filter(|(i, _)| in_set(i)).count()
            + adopt.iter().filter(|i| in_set(i)).count();
        if lost > layout.parity {
            let mut names: Vec<_> = offline.iter().map(|(_, why)| why.clone()).collect();
            names.extend(adopt.iter().map(|&i| format!("{} is empty", name(i))));
            return Err(Error::DiskFormat(format!(
                "{lost} disks of erasure set {} are unavailable or empty but it survives at most \
                 {}: {}",
                set + 1,
                layout.parity,
                names.join("; ")
            )));
        }
    }
    let deployment = Deployment {
        deployment_id: reference.deployment_id.clone(),
        layout,
        chunk_size: reference.chunk_size,
        disk_ids: reference.disks.clone(),
        freshly_formatted: false,
        offline,
        adopted: adopt,
    };
    Ok(deployment)
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
    fn missing_disks_within_parity_run_degraded_and_empty_ones_are_adopted() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path(), 4);
        let first = prepare_disks(&d, None, 1 << 20).unwrap();
        std::fs::remove_dir_all(&d[1]).unwrap();
        let mut disks = d.clone();
        disks[3] = t.path().join("empty");
        std::fs::create_dir_all(disks[3].join("lost+found")).unwrap();
        let dep = prepare_disks(&disks, None, 1 << 20).unwrap();
        assert_eq!(dep.offline.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        assert_eq!(dep.adopted, [3]);
        assert!(!d[1].exists(), "a missing disk is not created");
        assert_eq!(probe_disk(&disks[3], &dep, 3), DiskProbe::Ready);
        assert_eq!(dep.disk_ids, first.disk_ids);

        // Adopted now, so only disk 2 is missing: still within parity.
        let again = prepare_disks(&disks, None, 1 << 20).unwrap();
        assert!(again.adopted.is_empty());

        // A directory with foreign files is never taken over; a damaged format is offline.
        std::fs::create_dir_all(&d[1]).unwrap();
        std::fs::write(d[1].join("notes.txt"), b"mine").unwrap();
        std::fs::write(disks[2].join(FORMAT_FILE), b"{not json").unwrap();
        let dep = prepare_disks(&disks, None, 1 << 20).unwrap();
        assert_eq!(
            dep.offline.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(dep.offline[1].1.contains("is damaged"), "{:?}", dep.offline);
        std::fs::write(
            disks[2].join(FORMAT_FILE),
            serde_json::to_vec(&again.format_for(2)).unwrap(),
        )
        .unwrap();
        let dep = prepare_disks(&disks, None, 1 << 20).unwrap();
        assert!(
            dep.offline[0]
                .1
                .contains("holds files but no tessera format")
        );
        assert!(matches!(probe_disk(&d[1], &dep, 1), DiskProbe::Unusable(_)));

        // Three of four disks empty or missing: more than parity 2, refused before adopting.
        std::fs::remove_dir_all(&d[1]).unwrap();
        let mut three = disks.clone();
        three[0] = t.path().join("e0");
        three[2] = t.path().join("e2");
        std::fs::create_dir_all(&three[0]).unwrap();
        std::fs::create_dir_all(&three[2]).unwrap();
        let e = prepare_disks(&three, None, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3 disks of erasure set 1 are unavailable or empty"),
            "{e}"
        );
        assert_eq!(probe_disk(&three[0], &dep, 0), DiskProbe::Adoptable);

        let e = prepare_disks(&disks, Some(1), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot change"), "{e}");
    }
}
