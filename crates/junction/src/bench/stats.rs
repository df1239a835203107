//! Measurement helpers: process CPU time and memory from `/proc`, latency histograms,
//! and the shared clock/phase every load task consults.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Clock ticks per second of `/proc/*/stat` CPU times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// User + system CPU time of a process, in microseconds (`pid` `None`: this process).
pub fn cpu_time_us(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: fields restart after its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks())
}

/// Resident set size of a process in KiB (`VmRSS` from `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A CPU-time reading of the router (if watched) and of this process.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    at: Instant,
    router_us: Option<u64>,
    tool_us: Option<u64>,
}

impl CpuSample {
    /// Reads both counters now.
    pub fn take(router_pid: Option<u32>) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            router_us: router_pid.and_then(|p| cpu_time_us(Some(p))),
            tool_us: cpu_time_us(None),
        }
    }
}

/// CPU used between two samples.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// Wall time between the samples.
    pub wall: Duration,
    /// Router CPU microseconds (if watched and readable).
    pub router_us: Option<u64>,
    /// This process's CPU microseconds.
    pub tool_us: Option<u64>,
}

impl CpuUse {
    /// The CPU used from `start` to `end`.
    pub fn between(start: &CpuSample, end: &CpuSample) -> CpuUse {
        let diff = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        CpuUse {
            wall: end.at.saturating_duration_since(start.at),
            router_us: diff(start.router_us, end.router_us),
            tool_us: diff(start.tool_us, end.tool_us),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Number of samples.
    pub count: u64,
}

/// A latency histogram recording nanoseconds, 1 ns to 1 h, 3 significant digits.
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // 1 ns .. 1 h at 3 significant figures: valid bounds, cannot fail.
        Latency(
            Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("constant bounds are valid"),
        )
    }

    /// Records one value in nanoseconds (saturating at the top bound).
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    /// The percentiles, in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if self.0.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: us(self.0.value_at_quantile(0.50)),
            p90: us(self.0.value_at_quantile(0.90)),
            p99: us(self.0.value_at_quantile(0.99)),
            max: us(self.0.max()),
            mean: self.0.mean() / 1000.0,
            count: self.0.len(),
        }
    }
}

/// Run phase: operations run but are not counted.
pub const WARMUP: u8 = 0;
/// Operations count toward the results.
pub const MEASURE: u8 = 1;
/// Stop issuing new operations; complete the outstanding ones.
pub const STOP: u8 = 2;
/// Publishers are done and their totals final; subscribers finish once complete.
pub const DRAIN: u8 = 3;
/// Give up waiting: every task ends now.
pub const FINISH: u8 = 4;

/// The phase flag (read on every operation) plus a channel to wake waiting tasks on
/// phase changes, and the common time origin of the run.
#[derive(Debug)]
pub struct Clock {
    phase: AtomicU8,
    changes: tokio::sync::watch::Sender<u8>,
    /// Origin of all timestamps carried in payloads.
    pub epoch: Instant,
}

impl Clock {
    /// A clock in the given starting phase.
    pub fn new(phase: u8) -> Clock {
        Clock {
            phase: AtomicU8::new(phase),
            changes: tokio::sync::watch::Sender::new(phase),
            epoch: Instant::now(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    /// Moves to `phase` and wakes the tasks waiting in [`Clock::changed`].
    pub fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
        self.changes.send_replace(phase);
    }

    /// A receiver for phase changes.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u8> {
        self.changes.subscribe()
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// Waits until the watched phase is at least `phase`.
pub async fn reached(watch: &mut tokio::sync::watch::Receiver<u8>, phase: u8) {
    let _ = watch.wait_for(|p| *p >= phase).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_time_us(None).is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut h = Latency::new();
        for v in 1..=100u64 {
            h.record_ns(v * 1000);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 100);
        assert!((p.p50 - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.max - 100.0).abs() < 0.1, "{p:?}");
    }
}
