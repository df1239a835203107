//! The `rpc` and `latency` scenarios: caller sessions keep a fixed number of calls
//! outstanding to echo callees (one callee, or several sharing the registration with
//! `invoke: roundrobin`). `latency` is the special case of one caller with one call
//! in flight.
//!
//! Each session is one task on a [`Conn`]: it handles every message already received,
//! answers them all (a new CALL per RESULT, a YIELD per INVOCATION) and then writes
//! the batch with one system call.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Instant;

use tokio::time::Instant as TokioInstant;
use wamp_proto::{Dict, Message, MessageType, Payload, Serializer, Value};

use super::report::{rate, Report};
use super::stats::{self, Clock, Latency};
use super::wire::{Conn, OpenOptions, Target};
use super::{
    finish_after, join_all, timed_window, unique, CommonArgs, RpcArgs, DRAIN_TIMEOUT, SETUP_TIMEOUT,
};

/// The load shape of an `rpc` run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Caller sessions.
    pub callers: usize,
    /// Callee sessions.
    pub callees: usize,
    /// Calls outstanding per caller.
    pub in_flight: usize,
    /// String argument length.
    pub payload: usize,
    /// Procedure URI before the random suffix.
    pub procedure: String,
}

impl From<&RpcArgs> for Params {
    fn from(a: &RpcArgs) -> Params {
        Params {
            callers: a.callers,
            callees: a.callees,
            in_flight: a.in_flight,
            payload: a.payload,
            procedure: a.procedure.clone(),
        }
    }
}

/// What one caller task measured.
#[derive(Default)]
struct CallerResult {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Latency,
}

/// Runs `rpc` (or `latency`, by name) and reports.
pub async fn run(common: CommonArgs, params: Params, name: &str) -> anyhow::Result<Report> {
    anyhow::ensure!(params.callers >= 1, "--callers must be at least 1");
    anyhow::ensure!(params.callees >= 1, "--callees must be at least 1");
    anyhow::ensure!(params.in_flight >= 1, "--in-flight must be at least 1");
    let serializer = common.serializer.serializer();
    let procedure = unique(&params.procedure);
    let clock = Arc::new(Clock::new(stats::WARMUP));

    let (callees, callers) = tokio::time::timeout(SETUP_TIMEOUT, async {
        let target = Target::parse(&common.url).await?;
        let options = OpenOptions {
            bind: None,
            buffer: 64 * 1024,
        };
        let mut callees = Vec::with_capacity(params.callees);
        for _ in 0..params.callees {
            let mut conn = Conn::open(&target, &common.realm, serializer, options).await?;
            register(&mut conn, &procedure, params.callees > 1).await?;
            callees.push(conn);
        }
        let mut callers = Vec::with_capacity(params.callers);
        for _ in 0..params.callers {
            callers.push(Conn::open(&target, &common.realm, serializer, options).await?);
        }
        anyhow::Ok((callees, callers))
    })
    .await
    .map_err(|_| anyhow::anyhow!("setup did not finish within {SETUP_TIMEOUT:?}"))??;

    let payload = Payload::from_args(vec![Value::Str("x".repeat(params.payload))]);
    // Encode once; every CALL copies these bytes.
    payload
        .encoded(serializer)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let callee_tasks: Vec<_> = callees
        .into_iter()
        .map(|conn| tokio::spawn(callee(conn, clock.clone())))
        .collect();
    let caller_tasks: Vec<_> = callers
        .into_iter()
        .map(|conn| {
            tokio::spawn(caller(
                conn,
                clock.clone(),
                procedure.clone(),
                payload.clone(),
                params.in_flight,
            ))
        })
        .collect();

    let cpu = timed_window(&common, &clock, name).await;
    let finisher = finish_after(&clock, DRAIN_TIMEOUT);
    let results = join_all(caller_tasks, TokioInstant::now() + DRAIN_TIMEOUT * 2).await;
    clock.set(stats::FINISH);
    finisher.abort();
    let callee_errors = join_all(callee_tasks, TokioInstant::now() + DRAIN_TIMEOUT).await;

    let mut report = Report::new(name, &common);
    let mut latency = Latency::new();
    let mut calls = 0;
    for r in results {
        match r {
            Ok(r) => {
                calls += r.calls;
                latency.merge(&r.latency);
                report.add_errors(r.errors, r.first_error);
            }
            Err(e) => report.add_errors(1, Some(format!("caller: {e:#}"))),
        }
    }
    for r in callee_errors {
        if let Err(e) = r {
            report.add_errors(1, Some(format!("callee: {e:#}")));
        }
    }
    report.set_ops(calls, &cpu);
    report.set_router_rss();
    report.calls = Some(calls);
    report.calls_per_s = Some(rate(calls, cpu.wall.as_secs_f64()));
    report.latency_us = Some(latency.percentiles());
    report.callers = Some(params.callers);
    report.callees = Some(params.callees);
    report.in_flight = Some(params.in_flight);
    report.payload = Some(params.payload);
    Ok(report)
}

/// Registers `procedure` (shared round-robin if `shared`), waiting for the answer.
async fn register(conn: &mut Conn, procedure: &str, shared: bool) -> anyhow::Result<()> {
    let mut options = Dict::new();
    if shared {
        options.insert("invoke".into(), Value::from("roundrobin"));
    }
    conn.send(&Message::Register {
        request: 1,
        options,
        procedure: procedure.to_owned(),
    })?;
    match conn.recv().await? {
        Some(Message::Registered { .. }) => Ok(()),
        Some(Message::Error { error, payload, .. }) => {
            let detail = payload
                .args()
                .ok()
                .and_then(|a| a.first().and_then(|v| v.as_str().map(str::to_owned)))
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let how = if shared {
                " with invoke=roundrobin"
            } else {
                ""
            };
            anyhow::bail!("router refused to register {procedure}{how}: {error}{detail}")
        }
        Some(other) => anyhow::bail!(
            "router answered REGISTER with {}",
            other.message_type().name()
        ),
        None => anyhow::bail!("router closed the connection after REGISTER"),
    }
}

/// Echo callee: answers every INVOCATION with its own arguments until FINISH.
async fn callee(mut conn: Conn, clock: Arc<Clock>) -> anyhow::Result<()> {
    let mut phase = clock.watch();
    loop {
        while let Some(frame) = conn.next_frame()? {
            match conn.decode(&frame)? {
                Message::Invocation {
                    request, payload, ..
                } => conn.send(&Message::Yield {
                    request,
                    options: Dict::new(),
                    payload,
                })?,
                Message::Goodbye { reason, .. } | Message::Abort { reason, .. } => {
                    anyhow::bail!("router closed the callee session: {reason}")
                }
                _ => {}
            }
        }
        conn.flush().await?;
        if conn.is_closed() {
            anyhow::bail!("router closed the callee connection");
        }
        tokio::select! {
            more = conn.fill() => if !more? {
                anyhow::bail!("router closed the callee connection");
            },
            _ = stats::reached(&mut phase, stats::FINISH) => break,
        }
    }
    conn.close().await;
    Ok(())
}

/// Identity-like hasher for sequential request IDs (Fibonacci hashing).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Outstanding = HashMap<u64, Instant, BuildHasherDefault<IdHasher>>;

/// Caller: keeps `in_flight` calls outstanding until STOP, then waits for the rest.
async fn caller(
    mut conn: Conn,
    clock: Arc<Clock>,
    procedure: String,
    payload: Payload,
    in_flight: usize,
) -> anyhow::Result<CallerResult> {
    let mut result = CallerResult::default();
    let mut outstanding = Outstanding::default();
    outstanding.reserve(in_flight * 2);
    let mut next_id: u64 = 1;
    let mut phase = clock.watch();
    let serializer = conn.serializer();
    let mut issue = |conn: &mut Conn, outstanding: &mut Outstanding| -> anyhow::Result<()> {
        let request = next_id;
        next_id += 1;
        conn.send(&Message::Call {
            request,
            options: Dict::new(),
            procedure: procedure.clone(),
            payload: payload.clone(),
        })?;
        outstanding.insert(request, Instant::now());
        Ok(())
    };
    for _ in 0..in_flight {
        issue(&mut conn, &mut outstanding)?;
    }
    loop {
        while let Some(frame) = conn.next_frame()? {
            let (request, error) = match conn.decode(&frame)? {
                Message::Result { request, .. } => (request, None),
                Message::Error {
                    request_type: MessageType::Call,
                    request,
                    error,
                    payload,
                    ..
                } => (request, Some(error_text(&error, &payload, serializer))),
                Message::Goodbye { reason, .. } | Message::Abort { reason, .. } => {
                    anyhow::bail!("router closed the caller session: {reason}")
                }
                _ => continue,
            };
            let Some(sent) = outstanding.remove(&request) else {
                continue;
            };
            let current = clock.phase();
            if current == stats::MEASURE {
                match error {
                    None => {
                        result.calls += 1;
                        result.latency.record_ns(sent.elapsed().as_nanos() as u64);
                    }
                    Some(text) => {
                        result.errors += 1;
                        result.first_error.get_or_insert(text);
                    }
                }
            } else if let Some(text) = error {
                // Errors outside the window still tell why a run went wrong.
                result.first_error.get_or_insert(text);
            }
            if current < stats::STOP {
                issue(&mut conn, &mut outstanding)?;
            }
        }
        conn.flush().await?;
        if clock.phase() >= stats::STOP && outstanding.is_empty() {
            break;
        }
        if conn.is_closed() {
            anyhow::bail!("router closed the caller connection");
        }
        tokio::select! {
            more = conn.fill() => if !more? {
                anyhow::bail!("router closed the caller connection");
            },
            _ = stats::reached(&mut phase, stats::FINISH) => {
                if !outstanding.is_empty() {
                    result.errors += outstanding.len() as u64;
                    result.first_error.get_or_insert_with(|| {
                        format!("{} call(s) unanswered at the end", outstanding.len())
                    });
                }
                break;
            }
        }
    }
    conn.close().await;
    Ok(result)
}

/// `error_uri` plus the first argument when it is a string (the usual message).
pub(crate) fn error_text(error: &str, payload: &Payload, _serializer: Serializer) -> String {
    match payload
        .args()
        .ok()
        .and_then(|a| a.first().and_then(|v| v.as_str().map(str::to_owned)))
    {
        Some(message) => format!("{error}: {message}"),
        None => error.to_owned(),
    }
}
