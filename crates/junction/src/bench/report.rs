//! The result of a run: one flat record, printed as an aligned table or as one JSON
//! object (`--json`). Fields that do not apply to a scenario are left out of the JSON.

use serde::Serialize;

use super::stats::{CpuUse, Percentiles};
use super::CommonArgs;

/// Everything a run reports. See `docs/bench.md` for each field.
#[derive(Clone, Debug, Default, Serialize)]
#[allow(missing_docs)]
pub struct Report {
    pub scenario: String,
    pub url: String,
    pub realm: String,
    pub serializer: String,
    pub threads: usize,
    pub warmup_s: f64,
    /// Measured wall time (the measured window; for `connections` the opening time).
    pub duration_s: f64,
    /// Operations completed in the measured window (calls, delivered events, sessions).
    pub ops: u64,
    pub ops_per_s: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Percentiles>,

    // rpc / latency
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callees: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls_per_s: Option<f64>,

    // pubsub
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_order: Option<u64>,

    // connections
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_opened: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_addresses: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_time_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_rss_before_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_rss_after_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_bytes_per_session: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_rss_kib: Option<u64>,

    // CPU and memory
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_cpu_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_cpu_us_per_op: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_cpu_us_per_1k_ops: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_rss_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_cpu_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_cpu_us_per_op: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_cpu_percent: Option<f64>,
    pub clock_ticks_per_s: u64,
}

impl Report {
    /// A report with the common fields filled in.
    pub fn new(scenario: &str, common: &CommonArgs) -> Report {
        Report {
            scenario: scenario.to_owned(),
            url: common.url.clone(),
            realm: common.realm.clone(),
            serializer: common.serializer.serializer().name().to_owned(),
            threads: common.threads,
            warmup_s: common.warmup,
            router_pid: common.router_pid,
            clock_ticks_per_s: super::stats::clock_ticks(),
            ..Report::default()
        }
    }

    /// Fills the operation count, rate and CPU figures for a measured window.
    pub fn set_ops(&mut self, ops: u64, cpu: &CpuUse) {
        let wall = cpu.wall.as_secs_f64();
        self.duration_s = round3(wall);
        self.ops = ops;
        self.ops_per_s = rate(ops, wall);
        let per_op = |us: u64| (ops > 0).then(|| round3(us as f64 / ops as f64));
        let percent = |us: u64| (wall > 0.0).then(|| round3(us as f64 / 1e4 / wall));
        if let Some(us) = cpu.router_us {
            self.router_cpu_us = Some(us);
            self.router_cpu_us_per_op = per_op(us);
            self.router_cpu_us_per_1k_ops = self.router_cpu_us_per_op.map(|v| round3(v * 1000.0));
            self.router_cpu_percent = percent(us);
        }
        if let Some(us) = cpu.tool_us {
            self.tool_cpu_us = Some(us);
            self.tool_cpu_us_per_op = per_op(us);
            self.tool_cpu_percent = percent(us);
        }
    }

    /// Records the router's current memory (if watched).
    pub fn set_router_rss(&mut self) {
        self.router_rss_kib = self.router_pid.and_then(super::stats::rss_kib);
    }

    /// Counts errors, keeping the first text seen.
    pub fn add_errors(&mut self, count: u64, first: Option<String>) {
        self.errors += count;
        if self.first_error.is_none() {
            self.first_error = first;
        }
    }

    /// The JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A readable, aligned table.
    pub fn table(&self) -> String {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| out.push((k.to_owned(), v));
        let f = format_number;
        let i = |v: u64| v.to_string();
        put("scenario", self.scenario.clone());
        put(
            "router",
            format!("{} realm {} ({})", self.url, self.realm, self.serializer),
        );
        let load = match self.scenario.as_str() {
            "rpc" | "latency" => format!(
                "{} caller(s) x {} in flight, {} callee(s), {} B payload",
                self.callers.unwrap_or(0),
                self.in_flight.unwrap_or(0),
                self.callees.unwrap_or(0),
                self.payload.unwrap_or(0)
            ),
            "pubsub" => format!(
                "{} publisher(s) x {} in flight, {} subscriber(s), {} B payload",
                self.publishers.unwrap_or(0),
                self.in_flight.unwrap_or(0),
                self.subscribers.unwrap_or(0),
                self.payload.unwrap_or(0)
            ),
            _ => format!(
                "{} sessions, {} handshakes in flight, {} source address(es)",
                self.sessions.unwrap_or(0),
                self.concurrency.unwrap_or(0),
                self.source_addresses.unwrap_or(1)
            ),
        };
        put("load", load);
        put(
            "window",
            format!(
                "{} s measured after {} s warmup, {} thread(s)",
                f(self.duration_s),
                f(self.warmup_s),
                self.threads
            ),
        );
        if let (Some(n), Some(r)) = (self.calls, self.calls_per_s) {
            put("calls", format!("{} ({}/s)", i(n), f(r)));
        }
        if let (Some(n), Some(r)) = (self.published, self.published_per_s) {
            put("published", format!("{} ({}/s)", i(n), f(r)));
        }
        if let (Some(n), Some(r)) = (self.delivered, self.delivered_per_s) {
            put("delivered", format!("{} ({}/s)", i(n), f(r)));
        }
        if let (Some(exp), Some(got)) = (self.expected_total, self.received_total) {
            put(
                "deliveries",
                format!(
                    "{} expected, {} received, {} lost, {} out of order",
                    i(exp),
                    i(got),
                    i(self.lost.unwrap_or(0)),
                    i(self.out_of_order.unwrap_or(0))
                ),
            );
        }
        if let (Some(n), Some(r)) = (self.sessions_opened, self.sessions_per_s) {
            put(
                "sessions",
                format!(
                    "{} opened in {} s ({}/s)",
                    i(n),
                    f(self.open_time_s.unwrap_or(0.0)),
                    f(r)
                ),
            );
        }
        if let Some(l) = &self.latency_us {
            put(
                "latency (µs)",
                format!(
                    "p50 {}  p90 {}  p99 {}  max {}  mean {}",
                    f(l.p50),
                    f(l.p90),
                    f(l.p99),
                    f(l.max),
                    f(l.mean)
                ),
            );
        }
        put("errors", i(self.errors));
        if let Some(e) = &self.first_error {
            put("first error", e.clone());
        }
        if let Some(cpu) = self.router_cpu_us {
            put(
                "router CPU",
                format!(
                    "{} µs/op, {} µs/1000 ops ({} % of a core; {} µs total)",
                    f(self.router_cpu_us_per_op.unwrap_or(0.0)),
                    f(self.router_cpu_us_per_1k_ops.unwrap_or(0.0)),
                    f(self.router_cpu_percent.unwrap_or(0.0)),
                    i(cpu)
                ),
            );
        }
        if let (Some(before), Some(after)) = (self.router_rss_before_kib, self.router_rss_after_kib)
        {
            put(
                "router memory",
                format!(
                    "{} KiB before, {} KiB with all open, {} B/session",
                    i(before),
                    i(after),
                    f(self.router_bytes_per_session.unwrap_or(0.0))
                ),
            );
        }
        if let Some(rss) = self.router_rss_kib {
            put("router RSS at end", format!("{} KiB", i(rss)));
        }
        if let Some(cpu) = self.tool_cpu_us {
            put(
                "bench tool CPU",
                format!(
                    "{} µs/op ({} % of a core; {} µs total)",
                    f(self.tool_cpu_us_per_op.unwrap_or(0.0)),
                    f(self.tool_cpu_percent.unwrap_or(0.0)),
                    i(cpu)
                ),
            );
        }
        if let Some(rss) = self.tool_rss_kib {
            put("bench tool RSS", format!("{} KiB", i(rss)));
        }
        let width = out
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        for (k, v) in out {
            let pad = width - k.chars().count();
            text.push_str(&format!("{k}{}  {v}\n", " ".repeat(pad)));
        }
        text
    }
}

/// Operations per second.
pub fn rate(ops: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round3(ops as f64 / secs)
    } else {
        0.0
    }
}

/// Rounds to 3 decimals (keeps the JSON short).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Human formatting: integers for large values, up to 3 decimals for small ones.
fn format_number(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
