//! Slowing down peers that keep failing authentication.
//!
//! Each peer address has a count of recent authentication failures. The first
//! [`ThrottleConfig::free_failures`] cost nothing; after that, connections from
//! that address are admitted one at a time, each waiting a delay that doubles with
//! every further failure up to [`ThrottleConfig::max_delay`]. Slots are handed out
//! in turn, so opening many connections in parallel does not buy more attempts.
//! Other addresses are unaffected, and a successful authentication clears the
//! address's record.
//!
//! The table is bounded: records older than [`ThrottleConfig::forget_after`] are
//! swept, and when it is still full the stalest record makes room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How repeated authentication failures are slowed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures from one address that cost nothing.
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones; doubles with each more.
    /// Zero turns throttling off.
    pub base_delay: Duration,
    /// Most a connection waits.
    pub max_delay: Duration,
    /// A record with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Most addresses tracked at once.
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            forget_after: Duration::from_secs(600),
            max_tracked: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// When the next admitted connection from this address may start.
    next_slot: Instant,
}

/// Per-address failure records (see the module docs).
#[derive(Debug)]
pub struct AuthThrottle {
    config: ThrottleConfig,
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl AuthThrottle {
    /// An empty table.
    pub fn new(config: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// How long a new connection from `peer` must wait before it is served; takes
    /// a slot, so the next connection from there waits longer.
    pub fn admit(&self, peer: IpAddr, now: Instant) -> Duration {
        if self.config.base_delay.is_zero() {
            return Duration::ZERO;
        }
        let mut records = self.records.lock();
        let Some(record) = records.get_mut(&peer) else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(record.last_failure) >= self.config.forget_after {
            records.remove(&peer);
            return Duration::ZERO;
        }
        let Some(delay) = self.delay_for(record.failures) else {
            return Duration::ZERO;
        };
        let slot = record.next_slot.max(now);
        record.next_slot = slot + delay;
        // The first connection after a failure already waits `delay`.
        (slot + delay).saturating_duration_since(now)
    }

    /// An authentication from `peer` failed.
    pub fn failed(&self, peer: IpAddr, now: Instant) {
        if self.config.base_delay.is_zero() {
            return;
        }
        let mut records = self.records.lock();
        if !records.contains_key(&peer) && records.len() >= self.config.max_tracked {
            let forget = self.config.forget_after;
            records.retain(|_, r| now.saturating_duration_since(r.last_failure) < forget);
            if records.len() >= self.config.max_tracked {
                if let Some(stalest) = records
                    .iter()
                    .min_by_key(|(_, r)| r.last_failure)
                    .map(|(ip, _)| *ip)
                {
                    records.remove(&stalest);
                }
            }
        }
        let record = records.entry(peer).or_insert(Record {
            failures: 0,
            last_failure: now,
            next_slot: now,
        });
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
    }

    /// An authentication from `peer` succeeded: its record is cleared.
    pub fn succeeded(&self, peer: IpAddr) {
        if self.config.base_delay.is_zero() {
            return;
        }
        self.records.lock().remove(&peer);
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.records.lock().len()
    }

    /// The wait after `failures` failures; `None` while they are free.
    fn delay_for(&self, failures: u32) -> Option<Duration> {
        let over = failures
            .checked_sub(self.config.free_failures)?
            .checked_sub(1)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(
            self.config
                .base_delay
                .saturating_mul(factor)
                .min(self.config.max_delay),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(ThrottleConfig {
            free_failures: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            forget_after: Duration::from_secs(60),
            max_tracked: 3,
        })
    }

    #[test]
    fn free_failures_cost_nothing_then_delays_double_up_to_the_cap() {
        let t = throttle();
        let now = Instant::now();
        assert_eq!(t.admit(ip(1), now), Duration::ZERO);
        t.failed(ip(1), now);
        t.failed(ip(1), now);
        assert_eq!(t.admit(ip(1), now), Duration::ZERO);
        let mut waits = Vec::new();
        for _ in 0..4 {
            t.failed(ip(1), now);
            // A fresh record of slots for each step: measure from a later time.
            let later = now + Duration::from_secs(10) * (waits.len() as u32 + 1);
            waits.push(t.admit(ip(1), later));
        }
        assert_eq!(
            waits,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn parallel_connections_get_consecutive_slots() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            t.failed(ip(1), now);
        }
        let waits: Vec<_> = (0..3).map(|_| t.admit(ip(1), now)).collect();
        assert_eq!(waits, [100, 200, 300].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn other_addresses_and_success_are_unaffected() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..5 {
            t.failed(ip(1), now);
        }
        assert_eq!(t.admit(ip(2), now), Duration::ZERO);
        assert!(t.admit(ip(1), now) > Duration::ZERO);
        t.succeeded(ip(1));
        assert_eq!(t.admit(ip(1), now), Duration::ZERO);
    }

    #[test]
    fn records_are_forgotten_and_the_table_stays_bounded() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..5 {
            t.failed(ip(1), now);
        }
        assert_eq!(
            t.admit(ip(1), now + Duration::from_secs(61)),
            Duration::ZERO
        );
        assert_eq!(t.tracked(), 0);
        for n in 0..10 {
            t.failed(ip(n), now + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(t.tracked(), 3);
        // The newest addresses are the ones kept.
        for _ in 0..3 {
            t.failed(ip(9), now);
        }
        assert!(t.admit(ip(9), now) > Duration::ZERO);
    }

    #[test]
    fn zero_base_delay_turns_it_off() {
        let t = AuthThrottle::new(ThrottleConfig {
            base_delay: Duration::ZERO,
            ..ThrottleConfig::default()
        });
        let now = Instant::now();
        for _ in 0..100 {
            t.failed(ip(1), now);
        }
        assert_eq!(t.admit(ip(1), now), Duration::ZERO);
        assert_eq!(t.tracked(), 0);
    }
}
