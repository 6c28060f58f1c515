//! Watches for the caches other gateways' writes make stale (users, policies and groups): a
//! counter that grows whenever etcd reports a change under a key prefix, so a cache reloads
//! at once instead of polling.

use std::time::Duration;

use etcd_client::{Client, WatchOptions};
use tokio::sync::watch;

/// How long after a broken watch stream a new one is opened.
const REOPEN_AFTER: Duration = Duration::from_millis(500);

/// Follows every key under `prefix` until every receiver of `changed` is gone. Each event
/// bumps the counter; so does every (re)opened stream, since changes made while none was
/// open were not seen.
pub(crate) async fn follow(
    mut client: Client,
    prefix: Vec<u8>,
    changed: std::sync::Arc<watch::Sender<u64>>,
) {
    let bump = |changed: &watch::Sender<u64>| changed.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let opened = tokio::select! {
            opened = client.watch(prefix.clone(), Some(WatchOptions::new().with_prefix())) => opened,
            () = changed.closed() => return,
        };
        match opened {
            Ok(mut stream) => {
                bump(&changed);
                loop {
                    let message = tokio::select! {
                        message = stream.message() => message,
                        () = changed.closed() => return,
                    };
                    match message {
                        Ok(Some(resp)) if resp.canceled() => {
                            tracing::debug!(
                                reason = resp.cancel_reason(),
                                "etcd cancelled a watch"
                            );
                            break;
                        }
                        Ok(Some(resp)) => {
                            if !resp.events().is_empty() {
                                bump(&changed);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "an etcd watch stream broke");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot open an etcd watch"),
        }
        tokio::select! {
            () = tokio::time::sleep(REOPEN_AFTER) => {}
            () = changed.closed() => return,
        }
    }
}
