//! The state metrics of lifecycle rules and event notifications (see `metrics.rs` for how
//! state metrics are collected: read from their owners at each scrape).

use std::sync::atomic::Ordering;

use objects::ObjectService;
use prometheus::{IntCounterVec, Opts};

use crate::metrics::StateMetrics;
use crate::notify::Notifier;

pub(crate) async fn collect(
    m: &StateMetrics,
    service: &ObjectService,
    notifier: &Notifier,
) -> Result<(), String> {
    let lc = service.lifecycle_counters();
    for (name, help, value) in [
        (
            "tessera_lifecycle_passes_total",
            "Lifecycle passes finished (on the leader).",
            &lc.passes,
        ),
        (
            "tessera_lifecycle_versions_scanned_total",
            "Versions the lifecycle passes looked at.",
            &lc.versions_scanned,
        ),
        (
            "tessera_lifecycle_expired_objects_total",
            "Current versions expired by lifecycle rules (removed, or hidden under a delete marker).",
            &lc.expired,
        ),
        (
            "tessera_lifecycle_noncurrent_removed_total",
            "Noncurrent versions removed by lifecycle rules.",
            &lc.noncurrent_removed,
        ),
        (
            "tessera_lifecycle_delete_markers_removed_total",
            "Delete markers left alone that lifecycle rules removed.",
            &lc.delete_markers_removed,
        ),
        (
            "tessera_lifecycle_uploads_aborted_total",
            "Incomplete multipart uploads lifecycle rules aborted.",
            &lc.uploads_aborted,
        ),
        (
            "tessera_lifecycle_locked_skipped_total",
            "Removals lifecycle rules asked for that a retention or legal hold refused.",
            &lc.skipped_locked,
        ),
    ] {
        m.counter(name, help, value.load(Ordering::Relaxed))?;
    }

    // A scan of the queue: bounded by --notify-queue-limit.
    let queued = service
        .meta()
        .events_queued()
        .await
        .map_err(|e| e.to_string())?;
    m.gauge(
        "tessera_notify_queue_events",
        "Event notifications waiting for delivery.",
        i64::try_from(queued).unwrap_or(i64::MAX),
    )?;
    m.counter(
        "tessera_notify_dropped_total",
        "Event notifications dropped: the queue was full (oldest first), or their target is no longer configured.",
        notifier.dropped(),
    )?;
    m.counter(
        "tessera_notify_lost_total",
        "Event notifications this gateway could not queue (the metadata store failed).",
        service.events_lost(),
    )?;
    let delivered = IntCounterVec::new(
        Opts::new(
            "tessera_notify_delivered_total",
            "Event notifications delivered, by target (on the leader).",
        ),
        &["target"],
    )
    .map_err(|e| e.to_string())?;
    let failed = IntCounterVec::new(
        Opts::new(
            "tessera_notify_failed_total",
            "Event notification deliveries that failed and will be retried, by target.",
        ),
        &["target"],
    )
    .map_err(|e| e.to_string())?;
    let counts = notifier.counts();
    for name in notifier.target_names() {
        let c = counts.get(&name).copied().unwrap_or_default();
        delivered.with_label_values(&[&name]).inc_by(c.delivered);
        failed.with_label_values(&[&name]).inc_by(c.failed);
    }
    m.register(delivered)?;
    m.register(failed)
}
