//! `tessera admin ...`: commands that call a running server's admin API
//! (`/tessera-admin/v1/`, served by `gateway::admin`), signed with the root credentials, and
//! print the JSON answers as tables (or raw with `--json`).

/// `println!` that ignores a closed stdout (`tessera admin info | head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod client;
mod groups;
mod kms;
mod pools;
mod tables;
mod users;

pub(crate) use client::exchange;
pub use client::{AdminCommand, run_admin};
