//! Throttling of failed authentication per client address: a signed request whose signature
//! or access key was refused costs its address a token; an address out of tokens gets 503
//! SlowDown for its signed requests until tokens refill. Anonymous requests are never held
//! back (they cannot be guessing a secret), and other addresses are unaffected.
//!
//! A token bucket per address: `per_minute` tokens at most, refilled at `per_minute` a
//! minute. The map forgets full buckets when it grows, so a scan from many addresses cannot
//! grow it without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Addresses tracked before full buckets are forgotten.
const PRUNE_AT: usize = 10_000;

pub struct AuthFailureLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl AuthFailureLimiter {
    /// `per_minute` failures an address may have a minute (as a burst too); 0: no limit.
    pub fn new(per_minute: u32) -> AuthFailureLimiter {
        AuthFailureLimiter {
            per_minute,
            buckets: Mutex::default(),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * rate).min(f64::from(self.per_minute)),
            at: now,
        }
    }

    /// Whether `ip` is out of tokens (its signed requests are refused for now).
    pub fn blocked(&self, ip: IpAddr) -> bool {
        self.blocked_at(ip, Instant::now())
    }

    fn blocked_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return false;
        }
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(&ip)
            .is_some_and(|b| self.refilled(*b, now).tokens < 1.0)
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        self.failed_at(ip, Instant::now());
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        let full = Bucket {
            tokens: f64::from(self.per_minute),
            at: now,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            let cap = f64::from(self.per_minute);
            buckets.retain(|_, b| self.refilled(*b, now).tokens < cap);
        }
        let bucket = buckets.entry(ip).or_insert(full);
        let mut b = self.refilled(*bucket, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
        *bucket = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_address_is_held_back_after_its_burst_and_recovers() {
        let l = AuthFailureLimiter::new(6); // one token every 10 s
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..6 {
            assert!(!l.blocked_at(a, t0), "blocked after {i} failures");
            l.failed_at(a, t0);
        }
        assert!(l.blocked_at(a, t0));
        assert!(!l.blocked_at(b, t0), "other addresses are unaffected");
        assert!(l.blocked_at(a, t0 + Duration::from_secs(9)));
        assert!(!l.blocked_at(a, t0 + Duration::from_secs(10)));
        // A failure then spends the one refilled token.
        l.failed_at(a, t0 + Duration::from_secs(10));
        assert!(l.blocked_at(a, t0 + Duration::from_secs(11)));
        // A full minute refills the whole burst.
        assert!(!l.blocked_at(a, t0 + Duration::from_secs(80)));
    }

    #[test]
    fn zero_means_no_limit_and_the_map_stays_bounded() {
        let off = AuthFailureLimiter::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            off.failed(ip);
        }
        assert!(!off.blocked(ip));
        let l = AuthFailureLimiter::new(60);
        let t0 = Instant::now();
        for i in 0..(PRUNE_AT as u32 + 10) {
            l.failed_at(IpAddr::from(i.to_be_bytes()), t0);
        }
        // A minute later every bucket is full again, and the next failure prunes them.
        l.failed_at("10.9.9.9".parse().unwrap(), t0 + Duration::from_secs(61));
        assert!(l.buckets.lock().unwrap().len() < 100);
    }
}
