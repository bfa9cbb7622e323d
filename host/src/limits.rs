//! Brute-force protection: failed authentications are counted per scope (an installation, the
//! admin API) and client address. Past a threshold the address is locked out of that scope for
//! a time that doubles with every further failure; a success resets its counter. Other addresses
//! are not affected, so an attacker cannot lock the owner out.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] counters; when full, counters that have not
//! failed recently are dropped first, and if that is not enough the oldest half goes (an attacker
//! rotating addresses then loses progress on the addresses dropped, which is the safe side).
//! Counters are per process: with several processes each counts on its own.
use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Failures allowed before the first lockout.
pub const THRESHOLD: u32 = 10;
/// The first lockout; each further failure doubles it, up to [`MAX_LOCKOUT`].
pub const BASE_LOCKOUT: Duration = Duration::from_secs(2);
/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// The most counters kept.
pub const MAX_ENTRIES: usize = 100_000;
/// A counter idle this long is forgotten.
const IDLE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failure counters by (scope, address).
#[derive(Default)]
pub struct FailureLimiter {
    entries: DashMap<(String, String), Entry>,
}

impl FailureLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// If the address is locked out of the scope: how long until it may try again.
    pub fn locked(&self, scope: &str, addr: &str) -> Option<Duration> {
        let e = *self.entries.get(&(scope.to_owned(), addr.to_owned()))?;
        let until = e.locked_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Records a failed authentication. Returns the lockout it started, if this failure locked
    /// the address out (callers write it to the audit log).
    pub fn failure(&self, scope: &str, addr: &str) -> Option<Duration> {
        if self.entries.len() >= MAX_ENTRIES {
            self.evict();
        }
        let now = Instant::now();
        let mut e = self
            .entries
            .entry((scope.to_owned(), addr.to_owned()))
            .or_insert(Entry {
                failures: 0,
                locked_until: None,
                last: now,
            });
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures >= THRESHOLD {
            let doublings = (e.failures - THRESHOLD).min(16);
            let lock = BASE_LOCKOUT
                .saturating_mul(1u32 << doublings)
                .min(MAX_LOCKOUT);
            e.locked_until = Some(now + lock);
            tracing::warn!(
                scope,
                addr,
                failures = e.failures,
                lockout_secs = lock.as_secs(),
                "authentication lockout"
            );
            return Some(lock);
        }
        None
    }

    /// Records a success: the address starts afresh.
    pub fn success(&self, scope: &str, addr: &str) {
        self.entries.remove(&(scope.to_owned(), addr.to_owned()));
    }

    /// Number of counters held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no counters are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&self) {
        let now = Instant::now();
        self.entries.retain(|_, e| {
            now.duration_since(e.last) < IDLE || e.locked_until.is_some_and(|u| u > now)
        });
        if self.entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<Instant> = self.entries.iter().map(|e| e.last).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.entries.retain(|_, e| e.last > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_threshold_per_address_and_resets_on_success() {
        let l = FailureLimiter::new();
        for _ in 0..THRESHOLD - 1 {
            l.failure("i1", "10.0.0.1");
        }
        assert!(l.locked("i1", "10.0.0.1").is_none());
        l.failure("i1", "10.0.0.1");
        let first = l.locked("i1", "10.0.0.1").unwrap();
        assert!(first <= BASE_LOCKOUT);
        l.failure("i1", "10.0.0.1");
        assert!(l.locked("i1", "10.0.0.1").unwrap() > first, "lockouts grow");
        assert!(
            l.locked("i1", "10.0.0.2").is_none(),
            "other addresses are not locked"
        );
        assert!(
            l.locked("i2", "10.0.0.1").is_none(),
            "other scopes are not locked"
        );
        l.success("i1", "10.0.0.1");
        assert!(l.locked("i1", "10.0.0.1").is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailureLimiter::new();
        for i in 0..(MAX_ENTRIES + 10) {
            l.failure("i", &format!("a{i}"));
        }
        assert!(l.len() <= MAX_ENTRIES);
        assert!(!l.is_empty());
    }
}
