//! The server's configuration, read once from the command line and environment into typed
//! structs, plus MinIO-style disk ellipsis expansion (`/data{1...4}`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Development credentials used when `TESSERA_ROOT_USER` / `TESSERA_ROOT_PASSWORD` are unset.
pub const DEV_ACCESS_KEY: &str = "tesseraadmin";
pub const DEV_SECRET_KEY: &str = "tesseraadmin";
pub const CHUNK_SIZE: usize = 1 << 20;
pub const INLINE_MAX: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Environment,
    Development,
}

#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub source: CredentialSource,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Root credentials from the environment, or the development pair when both are unset.
    pub fn from_env_values(user: Option<String>, password: Option<String>) -> Result<Self, String> {
        match (user, password) {
            (Some(u), Some(p)) => {
                if u.len() < 3 {
                    return Err("TESSERA_ROOT_USER must be at least 3 characters".into());
                }
                if p.len() < 8 {
                    return Err("TESSERA_ROOT_PASSWORD must be at least 8 characters".into());
                }
                Ok(Credentials {
                    access_key: u,
                    secret_key: p,
                    source: CredentialSource::Environment,
                })
            }
            (None, None) => Ok(Credentials {
                access_key: DEV_ACCESS_KEY.into(),
                secret_key: DEV_SECRET_KEY.into(),
                source: CredentialSource::Development,
            }),
            _ => Err("set both TESSERA_ROOT_USER and TESSERA_ROOT_PASSWORD, or neither".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub address: SocketAddr,
    pub disks: Vec<PathBuf>,
    pub parity: Option<usize>,
    pub credentials: Credentials,
    /// How long an unreferenced chunk is kept before its shards are deleted.
    pub gc_grace: Duration,
    /// Multipart uploads older than this are aborted.
    pub multipart_expiry: Duration,
    pub region: String,
    /// Domains under which `bucket.<domain>` addresses a bucket (virtual-host style).
    pub domains: Vec<String>,
    /// The background scanner's schedule and bandwidth.
    pub scan: crate::storage::ScanSchedule,
    /// How often the disk monitor probes every disk.
    pub disk_check_interval: Duration,
}

/// Expands every `{a...b}` range in `arg` (numbers, optionally zero-padded) into the list of
/// paths it names; arguments without a range come back unchanged.
pub fn expand_ellipsis(arg: &str) -> Result<Vec<String>, String> {
    let Some(open) = arg.find('{') else {
        return Ok(vec![arg.to_string()]);
    };
    let close = arg[open..]
        .find('}')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed '{{' in {arg:?}"))?;
    let inner = &arg[open + 1..close];
    let (from, to) = inner
        .split_once("...")
        .ok_or_else(|| format!("expected {{N...M}} in {arg:?}"))?;
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{s:?} in {arg:?} is not a number"))
    };
    let (a, b) = (parse(from)?, parse(to)?);
    if a > b {
        return Err(format!("range {{{inner}}} in {arg:?} counts down"));
    }
    if b - a >= 4096 {
        return Err(format!("range {{{inner}}} in {arg:?} is too large"));
    }
    let width = if from.len() > 1 && from.starts_with('0') {
        from.len()
    } else {
        0
    };
    let mut out = Vec::new();
    for n in a..=b {
        let head = format!("{}{:0width$}", &arg[..open], n, width = width);
        for tail in expand_ellipsis(&arg[close + 1..])? {
            out.push(format!("{head}{tail}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis() {
        assert_eq!(expand_ellipsis("/data").unwrap(), ["/data"]);
        assert_eq!(expand_ellipsis("/d{1...3}").unwrap(), ["/d1", "/d2", "/d3"]);
        assert_eq!(
            expand_ellipsis("/d{08...10}").unwrap(),
            ["/d08", "/d09", "/d10"]
        );
        assert_eq!(
            expand_ellipsis("/m{1...2}/d{1...2}").unwrap(),
            ["/m1/d1", "/m1/d2", "/m2/d1", "/m2/d2"]
        );
        assert!(expand_ellipsis("/d{3...1}").is_err());
        assert!(expand_ellipsis("/d{1..3}").is_err());
        assert!(expand_ellipsis("/d{1...3").is_err());
        assert!(expand_ellipsis("/d{a...c}").is_err());
    }

    #[test]
    fn credentials() {
        let dev = Credentials::from_env_values(None, None).unwrap();
        assert_eq!(dev.source, CredentialSource::Development);
        let env =
            Credentials::from_env_values(Some("admin".into()), Some("secret-key".into())).unwrap();
        assert_eq!(env.source, CredentialSource::Environment);
        assert!(Credentials::from_env_values(Some("admin".into()), None).is_err());
        assert!(Credentials::from_env_values(Some("admin".into()), Some("short".into())).is_err());
    }
}
