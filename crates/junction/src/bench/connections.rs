//! The `connections` scenario: open many sessions (HELLO/WELCOME complete) with a
//! bounded number of handshakes in flight, keep them all open, measure the rate and
//! the router's memory per session, then close them.
//!
//! Each open session costs the tool only its socket: buffers are released after
//! WELCOME ([`Conn::shrink`]) and no task reads from idle sessions. The soft
//! `RLIMIT_NOFILE` is raised to the hard limit, and beyond
//! [`PORTS_PER_SOURCE`] sessions to a loopback router the source addresses are spread
//! over 127.0.0.1, 127.0.0.2, … so the ephemeral ports of one address do not run out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{rate, round3, Report};
use super::stats::{self, CpuSample, CpuUse};
use super::wire::{Conn, OpenOptions, Target};
use super::{progress_bar, secs, ConnectionsArgs};

/// Sessions per loopback source address before spreading over more.
pub const PORTS_PER_SOURCE: usize = 10_000;

/// Raises the soft open-files limit to the hard limit, and the hard limit too (up to
/// `/proc/sys/fs/nr_open`) when `wanted` needs more and the process may (root).
/// Returns the soft limit in force.
pub fn raise_fd_limit(wanted: u64) -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if wanted > hard {
        let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(hard);
        let target = wanted.min(ceiling).max(hard);
        if rlimit::Resource::NOFILE.set(target, target).is_ok() {
            return Some(target);
        }
    }
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Runs `connections` and reports.
pub async fn run(args: &ConnectionsArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    anyhow::ensure!(args.sessions >= 1, "--sessions must be at least 1");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let timeout = secs(args.timeout);
    anyhow::ensure!(!timeout.is_zero(), "--timeout must be positive");
    let deadline = tokio::time::Instant::now() + timeout;
    let fd_limit = raise_fd_limit(args.sessions as u64 + 1024);
    if let Some(limit) = fd_limit {
        anyhow::ensure!(
            (args.sessions as u64) < limit.saturating_sub(32),
            "--sessions {} exceeds the open-files limit ({limit}); raise `ulimit -Hn`",
            args.sessions
        );
    }
    let serializer = common.serializer.serializer();
    let target = Arc::new(Target::parse(&common.url).await?);
    let sources = source_addresses(&target, args.sessions, args.source_addresses);

    let rss_before = common.router_pid.and_then(stats::rss_kib);
    let bar = progress_bar(
        common,
        args.sessions as u64,
        "sessions [{bar:40}] {pos}/{len} {per_sec}",
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start_cpu = CpuSample::take(common.router_pid);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.min(args.sessions))
        .map(|_| {
            let next = next.clone();
            let target = target.clone();
            let realm = common.realm.clone();
            let sources = sources.clone();
            let bar = bar.clone();
            let total = args.sessions;
            tokio::spawn(async move {
                let mut open = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let bind = (!sources.is_empty()).then(|| sources[i % sources.len()]);
                    let options = OpenOptions { bind, buffer: 512 };
                    match Conn::open(&target, &realm, serializer, options).await {
                        Ok(mut conn) => {
                            conn.shrink();
                            open.push(conn);
                            bar.inc(1);
                        }
                        Err(e) => {
                            // Stop the other workers too: the first failure is the story.
                            next.store(total, Ordering::Relaxed);
                            return (open, Some(format!("session {}: {e:#}", i + 1)));
                        }
                    }
                }
                (open, None)
            })
        })
        .collect();

    let mut sessions: Vec<Conn> = Vec::with_capacity(args.sessions);
    let mut first_error = None;
    let mut errors = 0u64;
    for worker in workers {
        match tokio::time::timeout_at(deadline, worker).await {
            Ok(Ok((open, error))) => {
                sessions.extend(open);
                if let Some(e) = error {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(format!("worker failed: {e}"));
            }
            Err(_) => {
                next.store(args.sessions, Ordering::Relaxed);
                errors += 1;
                first_error.get_or_insert(format!("timed out after {}s", args.timeout));
            }
        }
    }
    let open_time = started.elapsed();
    let cpu = CpuUse::between(&start_cpu, &CpuSample::take(common.router_pid));
    bar.finish_and_clear();
    if sessions.is_empty() {
        anyhow::bail!(
            "{}",
            first_error.unwrap_or_else(|| "no session could be opened".into())
        );
    }
    // Let the router settle (allocations after WELCOME) before reading its memory.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = common.router_pid.and_then(stats::rss_kib);
    let opened = sessions.len() as u64;

    let mut report = Report::new("connections", common);
    report.warmup_s = 0.0;
    report.set_ops(opened, &cpu);
    report.duration_s = round3(open_time.as_secs_f64());
    report.add_errors(errors, first_error);
    report.sessions = Some(args.sessions);
    report.sessions_opened = Some(opened);
    report.sessions_per_s = Some(rate(opened, open_time.as_secs_f64()));
    report.ops_per_s = rate(opened, open_time.as_secs_f64());
    report.open_time_s = Some(round3(open_time.as_secs_f64()));
    report.concurrency = Some(args.concurrency);
    report.source_addresses = Some(sources.len().max(1));
    report.hold_s = Some(args.hold);
    report.router_rss_before_kib = rss_before;
    report.router_rss_after_kib = rss_after;
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let per = (after.saturating_sub(before) * 1024) as f64 / opened as f64;
        report.router_bytes_per_session = Some(round3(per));
    }
    report.tool_rss_kib = stats::rss_kib(std::process::id());
    report.router_rss_kib = rss_after;

    let hold_until = tokio::time::Instant::now() + secs(args.hold);
    tokio::time::sleep_until(hold_until.min(deadline)).await;
    let closed = sessions.iter().filter(|c| c.is_closed()).count();
    if closed > 0 && report.first_error.is_none() {
        report.first_error = Some(format!("{closed} session(s) closed by the router"));
    }
    // Closing: drop the sockets; the router sees EOF on each.
    drop(sessions);
    Ok(report)
}

/// Local addresses to spread sessions over (empty: let the OS choose).
fn source_addresses(target: &Target, sessions: usize, forced: usize) -> Vec<IpAddr> {
    let Some(addr) = target.tcp_addr() else {
        return Vec::new();
    };
    let IpAddr::V4(v4) = addr.ip() else {
        return Vec::new();
    };
    let count = match forced {
        0 if sessions <= PORTS_PER_SOURCE => return Vec::new(),
        0 => sessions.div_ceil(PORTS_PER_SOURCE),
        n => n,
    };
    if !v4.is_loopback() {
        return Vec::new();
    }
    let count = count.min(250);
    (1..=count as u8)
        .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .collect()
}
