//! The console's live charts: this gateway's request counters sampled every
//! [`INTERVAL`] for the last [`WINDOW`], kept in memory (no Prometheus server needed).
//!
//! Each sample is the cumulative [`Totals`] at that moment; the answer turns consecutive
//! samples into rates (requests and bytes per second) and latencies (mean, and the 95th
//! percentile as the upper bound of the histogram bucket it falls in).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::metrics::{LATENCY_BOUNDS, Metrics, Totals};

pub const INTERVAL: Duration = Duration::from_secs(10);
pub const WINDOW: Duration = Duration::from_secs(3600);

struct Sample {
    at_ms: u64,
    totals: Totals,
}

/// One interval of the charts.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// The interval's end, in milliseconds since the epoch.
    pub at_ms: u64,
    pub requests_per_sec: f64,
    pub received_per_sec: f64,
    pub sent_per_sec: f64,
    /// Over the requests answered in the interval; null without any.
    pub latency_mean_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl History {
    fn record(&self, totals: Totals, at_ms: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(Sample { at_ms, totals });
        let keep = (WINDOW.as_secs() / INTERVAL.as_secs()) as usize + 1;
        while samples.len() > keep {
            samples.pop_front();
        }
    }

    /// Samples `metrics` every [`INTERVAL`] until the gateway's front end (the owner of
    /// `history`) is gone.
    pub fn spawn_sampler(history: Weak<History>, metrics: Arc<Metrics>) {
        tokio::spawn(async move {
            loop {
                let Some(h) = history.upgrade() else { return };
                h.record(metrics.totals(), now_ms());
                drop(h);
                tokio::time::sleep(INTERVAL).await;
            }
        });
    }

    /// The charts' points: every interval sampled, and the one running now.
    pub fn points(&self, now: Totals) -> Vec<Point> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let live = Sample {
            at_ms: now_ms(),
            totals: now,
        };
        samples
            .iter()
            .chain(std::iter::once(&live))
            .collect::<Vec<_>>()
            .windows(2)
            .filter_map(|w| point(w[0], w[1]))
            .collect()
    }
}

fn point(a: &Sample, b: &Sample) -> Option<Point> {
    let secs = b.at_ms.checked_sub(a.at_ms)? as f64 / 1000.0;
    if secs <= 0.0 {
        return None;
    }
    let (x, y) = (&a.totals, &b.totals);
    let rate = |from: u64, to: u64| to.saturating_sub(from) as f64 / secs;
    let answered = y.latency_count.saturating_sub(x.latency_count);
    let p95 = (answered > 0).then(|| {
        let wanted = (answered as f64 * 0.95).ceil() as u64;
        let bound = y
            .latency_buckets
            .iter()
            .zip(&x.latency_buckets)
            .zip(LATENCY_BOUNDS)
            .find(|((to, from), _)| to.saturating_sub(**from) >= wanted)
            .map(|(_, bound)| *bound)
            // Slower than the last bucket's bound.
            .unwrap_or(*LATENCY_BOUNDS.last().unwrap_or(&60.0));
        bound * 1000.0
    });
    Some(Point {
        at_ms: b.at_ms,
        requests_per_sec: rate(x.requests, y.requests),
        received_per_sec: rate(x.received, y.received),
        sent_per_sec: rate(x.sent, y.sent),
        latency_mean_ms: (answered > 0)
            .then(|| (y.latency_sum_secs - x.latency_sum_secs) / answered as f64 * 1000.0),
        latency_p95_ms: p95,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(requests: u64, sum: f64, fast: u64) -> Totals {
        // `fast` requests within 1 ms, the rest within 100 ms.
        let mut buckets = vec![requests; LATENCY_BOUNDS.len()];
        for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
            if *bound < 0.1 {
                buckets[i] = fast;
            }
        }
        Totals {
            requests,
            received: requests * 100,
            sent: requests * 1000,
            latency_count: requests,
            latency_sum_secs: sum,
            latency_buckets: buckets,
        }
    }

    #[test]
    fn rates_and_latencies_come_from_the_interval_alone() {
        let h = History::default();
        h.record(totals(1000, 50.0, 1000), 0);
        h.record(totals(1100, 51.0, 1090), 10_000);
        let mut points = h.points(totals(1100, 51.0, 1090));
        // The live interval ends now (far from 10 s); only the sampled one is checked.
        points.truncate(1);
        let p = &points[0];
        assert_eq!(p.at_ms, 10_000);
        assert_eq!(p.requests_per_sec, 10.0);
        assert_eq!(p.received_per_sec, 1000.0);
        assert_eq!(p.sent_per_sec, 10_000.0);
        assert!((p.latency_mean_ms.unwrap() - 10.0).abs() < 1e-9);
        // 90 of 100 within 1 ms, the other 10 within 100 ms: the 95th is in the 100 ms bucket.
        assert_eq!(p.latency_p95_ms, Some(100.0));
    }

    #[test]
    fn an_idle_interval_has_no_latency() {
        let h = History::default();
        h.record(totals(5, 0.5, 5), 0);
        h.record(totals(5, 0.5, 5), 10_000);
        let p = &h.points(totals(5, 0.5, 5))[0];
        assert_eq!(p.requests_per_sec, 0.0);
        assert_eq!(p.latency_mean_ms, None);
        assert_eq!(p.latency_p95_ms, None);
    }

    #[test]
    fn the_window_keeps_one_hour() {
        let h = History::default();
        for i in 0..1000 {
            h.record(totals(i, 0.0, i), i * 10_000);
        }
        let kept = h.samples.lock().unwrap().len();
        assert_eq!(kept, 361);
    }
}
