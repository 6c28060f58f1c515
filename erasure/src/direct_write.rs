//! Writing a new file past the page cache (`O_DIRECT`), for shards no read is expected to want
//! soon (parity: a healthy read never touches it).
//!
//! A buffered write copies every byte into freshly allocated page-cache pages, which was 65%
//! of a large PUT's CPU on the machines we measure on (BENCHMARKS, "Large PUT"); EC 2+2 writes
//! two bytes of shards per byte stored, half of them parity. `O_DIRECT` needs the buffer, the
//! file offset and the length aligned to the device's logical block: the bytes are copied into
//! an aligned buffer (a cheap copy next to the page cache's), padded to a whole block, and the
//! file is cut back to its length after.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

/// Alignment and length granularity: 4 KiB covers devices with 512-byte and 4 KiB blocks.
const ALIGN: usize = 4096;

/// Buffers up to this size go back to the pool after a write; larger ones (a very large chunk
/// size) are freed.
const KEEP_BUFFER: usize = 4 << 20;

/// How many buffers the pool keeps. A buffer per blocking thread instead added ~35 MiB to the
/// peak RSS of 8 parallel 1 GiB PUTs (dozens of threads writing parity at once); a few kept
/// buffers serve the steady state and the rest are allocated and freed.
const POOL_SIZE: usize = 8;

/// Aligned-write buffers, shared by all threads.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// What became of a direct write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Direct {
    /// The file holds `bytes`; it still needs an fsync (or syncfs) to be durable.
    Written,
    /// The file system does not take `O_DIRECT` (tmpfs, some FUSE and network file systems):
    /// nothing was created, write it the ordinary way.
    Refused,
}

/// Creates `path` (which must not exist) holding `bytes`, written past the page cache.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> io::Result<Direct> {
    let direct = rustix::fs::OFlags::DIRECT.bits() as i32;
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(direct)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if refused(&e) => return Ok(Direct::Refused),
        Err(e) => return Err(e),
    };
    match write_aligned(&mut file, bytes) {
        Ok(()) => Ok(Direct::Written),
        Err(e) if refused(&e) => {
            // Opened, but the alignment it wants is not ours (a device with larger blocks).
            drop(file);
            std::fs::remove_file(path)?;
            Ok(Direct::Refused)
        }
        Err(e) => Err(e),
    }
}

fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

fn write_aligned(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    let padded = bytes.len().next_multiple_of(ALIGN);
    let mut buffer = POOL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    if buffer.len() < padded + ALIGN {
        buffer.resize(padded + ALIGN, 0);
    }
    let start = buffer.as_ptr().align_offset(ALIGN);
    let aligned = &mut buffer[start..start + padded];
    aligned[..bytes.len()].copy_from_slice(bytes);
    aligned[bytes.len()..].fill(0);
    let written = file.write_all(aligned);
    if buffer.len() <= KEEP_BUFFER {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_SIZE {
            pool.push(buffer);
        }
    }
    written?;
    if padded != bytes.len() {
        file.set_len(bytes.len() as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn files_hold_exactly_the_bytes_whatever_their_length() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 4095, 4096, 4097, 600_001, 5 << 20] {
            let path = dir.path().join(format!("f{len}"));
            let bytes = pattern(len);
            let outcome = write_new(&path, &bytes).unwrap();
            if outcome == Direct::Refused {
                assert!(!path.exists(), "a refused write leaves no file");
                continue;
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "length {len}");
        }
        // An existing file is never replaced.
        let path = dir.path().join("f1");
        assert!(write_new(&path, b"other").is_err());
    }

    /// tmpfs took no `O_DIRECT` before Linux 6.6: there the caller is told so and no file is
    /// left behind; where it does, the bytes are right.
    #[test]
    fn tmpfs_gives_the_same_bytes_or_refuses_cleanly() {
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("no /dev/shm here; skipped");
            return;
        };
        let path = dir.path().join("f");
        match write_new(&path, &pattern(10_000)).unwrap() {
            Direct::Refused => assert!(!path.exists()),
            Direct::Written => assert_eq!(std::fs::read(&path).unwrap(), pattern(10_000)),
        }
    }
}
