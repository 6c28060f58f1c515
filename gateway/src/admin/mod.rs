//! The admin API and the `tessera admin` commands that use it.
//!
//! The API lives under `/tessera-admin/v1/` on the S3 port. Requests are signed with SigV4
//! like S3 requests and verified by s3s; only the root credentials are accepted. Answers are
//! JSON; the commands print them as tables (or raw with `--json`).
//!
//! | method | path            | does                                              |
//! |--------|-----------------|---------------------------------------------------|
//! | GET    | `info`          | disks, layout, usage, counters, heal state          |
//! | GET    | `heal`          | progress of the current or last full heal pass    |
//! | POST   | `heal`          | starts a full heal pass (after one already running) |
//! | POST   | `check?repair=` | verifies manifests, refcounts and shards          |
//! | GET    | `locate?bucket=&key=[&versionId=]` | each chunk's shards: disk and state |

/// `println!` that ignores a closed stdout (`tessera admin info | head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod client;
mod locate;
mod route;
mod tables;

pub use client::{AdminCommand, run_admin};
pub use route::{ADMIN_PREFIX, AdminApi};
