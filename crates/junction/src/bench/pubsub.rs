//! The `pubsub` scenario: publishers send events (without acknowledgement) to one
//! topic that every subscriber session receives.
//!
//! Flow control: each publisher keeps at most `--in-flight` publications that some
//! subscriber has not received yet. Subscribers publish their per-publisher receive
//! counts in shared atomics ([`Flow`]) and wake the publisher through a `Notify`
//! after each batch of received messages.
//!
//! Event arguments: `[seq, sent_ns, publisher, padding]`, with `sent_ns` nanoseconds
//! since a shared `Instant`, so latency is publish-to-delivery across sessions in this
//! process. Subscribers read the three leading integers straight from the encoded
//! arguments ([`leading_uints`]) without decoding the padding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant as TokioInstant;
use wamp_proto::{Dict, Message, MessageType, Payload, Serializer, Value};

use super::report::{rate, Report};
use super::stats::{self, Clock, Latency};
use super::wire::{Conn, OpenOptions, Target};
use super::{
    finish_after, join_all, timed_window, unique, PubsubArgs, DRAIN_TIMEOUT, SETUP_TIMEOUT,
};

/// State shared between publishers and subscribers.
struct Flow {
    subscribers: usize,
    /// `received[p * subscribers + s]`: events from publisher `p` seen by subscriber `s`.
    received: Vec<AtomicU64>,
    /// Publications sent by each publisher so far (final once the phase is DRAIN).
    sent: Vec<AtomicU64>,
    /// One per publisher: rung by subscribers when they made progress.
    wake: Vec<Notify>,
}

impl Flow {
    /// Fewest events of publisher `p` received by any subscriber.
    fn min_received(&self, p: usize) -> u64 {
        self.received[p * self.subscribers..(p + 1) * self.subscribers]
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

#[derive(Default)]
struct PublisherResult {
    published: u64,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Default)]
struct SubscriberResult {
    delivered: u64,
    received_total: u64,
    out_of_order: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Latency,
}

/// Runs `pubsub` and reports.
pub async fn run(args: &PubsubArgs) -> anyhow::Result<Report> {
    let common = &args.common;
    anyhow::ensure!(args.publishers >= 1, "--publishers must be at least 1");
    anyhow::ensure!(args.subscribers >= 1, "--subscribers must be at least 1");
    anyhow::ensure!(args.in_flight >= 1, "--in-flight must be at least 1");
    let serializer = common.serializer.serializer();
    let topic = unique(&args.topic);
    let clock = Arc::new(Clock::new(stats::WARMUP));

    let (subscribers, publishers) = tokio::time::timeout(SETUP_TIMEOUT, async {
        let target = Target::parse(&common.url).await?;
        let options = OpenOptions {
            bind: None,
            buffer: 64 * 1024,
        };
        let mut subscribers = Vec::with_capacity(args.subscribers);
        for _ in 0..args.subscribers {
            let mut conn = Conn::open(&target, &common.realm, serializer, options).await?;
            subscribe(&mut conn, &topic).await?;
            subscribers.push(conn);
        }
        let mut publishers = Vec::with_capacity(args.publishers);
        for _ in 0..args.publishers {
            publishers.push(Conn::open(&target, &common.realm, serializer, options).await?);
        }
        anyhow::Ok((subscribers, publishers))
    })
    .await
    .map_err(|_| anyhow::anyhow!("setup did not finish within {SETUP_TIMEOUT:?}"))??;

    let flow = Arc::new(Flow {
        subscribers: args.subscribers,
        received: (0..args.publishers * args.subscribers)
            .map(|_| AtomicU64::new(0))
            .collect(),
        sent: (0..args.publishers).map(|_| AtomicU64::new(0)).collect(),
        wake: (0..args.publishers).map(|_| Notify::new()).collect(),
    });
    // Three integers take up to ~30 bytes; pad the rest.
    let padding = "x".repeat(args.payload.saturating_sub(30));

    let sub_tasks: Vec<_> = subscribers
        .into_iter()
        .enumerate()
        .map(|(s, conn)| tokio::spawn(subscriber(conn, s, clock.clone(), flow.clone())))
        .collect();
    let pub_tasks: Vec<_> = publishers
        .into_iter()
        .enumerate()
        .map(|(p, conn)| {
            tokio::spawn(publisher(
                conn,
                p,
                clock.clone(),
                flow.clone(),
                topic.clone(),
                padding.clone(),
                args.in_flight as u64,
            ))
        })
        .collect();

    let cpu = timed_window(common, &clock, "pubsub").await;
    let finisher = finish_after(&clock, DRAIN_TIMEOUT);
    let pub_results = join_all(pub_tasks, TokioInstant::now() + DRAIN_TIMEOUT * 2).await;
    // Publishers are done: their `sent` counts are final.
    clock.set(stats::DRAIN);
    let sub_results = join_all(sub_tasks, TokioInstant::now() + DRAIN_TIMEOUT * 2).await;
    clock.set(stats::FINISH);
    finisher.abort();

    let mut report = Report::new("pubsub", common);
    let mut published = 0;
    for r in pub_results {
        match r {
            Ok(r) => {
                published += r.published;
                report.add_errors(r.errors, r.first_error);
            }
            Err(e) => report.add_errors(1, Some(format!("publisher: {e:#}"))),
        }
    }
    let mut latency = Latency::new();
    let (mut delivered, mut received_total, mut out_of_order) = (0, 0, 0);
    for r in sub_results {
        match r {
            Ok(r) => {
                delivered += r.delivered;
                received_total += r.received_total;
                out_of_order += r.out_of_order;
                latency.merge(&r.latency);
                report.add_errors(r.errors, r.first_error);
            }
            Err(e) => report.add_errors(1, Some(format!("subscriber: {e:#}"))),
        }
    }
    let published_total: u64 = flow.sent.iter().map(|c| c.load(Ordering::Acquire)).sum();
    let expected_total = published_total * args.subscribers as u64;
    let wall = cpu.wall.as_secs_f64();
    report.set_ops(delivered, &cpu);
    report.set_router_rss();
    report.published = Some(published);
    report.published_per_s = Some(rate(published, wall));
    report.delivered = Some(delivered);
    report.delivered_per_s = Some(rate(delivered, wall));
    report.published_total = Some(published_total);
    report.expected_total = Some(expected_total);
    report.received_total = Some(received_total);
    report.lost = Some(expected_total.saturating_sub(received_total));
    report.out_of_order = Some(out_of_order);
    report.latency_us = Some(latency.percentiles());
    report.publishers = Some(args.publishers);
    report.subscribers = Some(args.subscribers);
    report.in_flight = Some(args.in_flight);
    report.payload = Some(args.payload);
    Ok(report)
}

async fn subscribe(conn: &mut Conn, topic: &str) -> anyhow::Result<()> {
    conn.send(&Message::Subscribe {
        request: 1,
        options: Dict::new(),
        topic: topic.to_owned(),
    })?;
    match conn.recv().await? {
        Some(Message::Subscribed { .. }) => Ok(()),
        Some(Message::Error { error, payload, .. }) => {
            let text = super::rpc::error_text(&error, &payload, conn.serializer());
            anyhow::bail!("router refused to subscribe to {topic}: {text}")
        }
        Some(other) => anyhow::bail!(
            "router answered SUBSCRIBE with {}",
            other.message_type().name()
        ),
        None => anyhow::bail!("router closed the connection after SUBSCRIBE"),
    }
}

async fn publisher(
    mut conn: Conn,
    index: usize,
    clock: Arc<Clock>,
    flow: Arc<Flow>,
    topic: String,
    padding: String,
    window: u64,
) -> anyhow::Result<PublisherResult> {
    let mut result = PublisherResult::default();
    let mut phase = clock.watch();
    let mut seq: u64 = 0;
    let serializer = conn.serializer();
    'run: while clock.phase() < stats::STOP {
        let mut min = flow.min_received(index);
        while seq - min < window {
            let payload = Payload::from_args(vec![
                Value::from_u64(seq),
                Value::from_u64(clock.now_ns()),
                Value::from_u64(index as u64),
                Value::Str(padding.clone()),
            ]);
            conn.send(&Message::Publish {
                request: seq + 1,
                options: Dict::new(),
                topic: topic.clone(),
                payload,
            })?;
            seq += 1;
            if clock.phase() == stats::MEASURE {
                result.published += 1;
            }
            if seq - min >= window {
                min = flow.min_received(index);
            }
        }
        conn.flush().await?;
        flow.sent[index].store(seq, Ordering::Release);
        // Window full: wait for subscribers (or an ERROR from the router).
        while seq - flow.min_received(index) >= window {
            let readable = tokio::select! {
                _ = flow.wake[index].notified() => false,
                more = conn.fill() => {
                    if !more? {
                        anyhow::bail!("router closed the publisher connection");
                    }
                    true
                }
                _ = stats::reached(&mut phase, stats::STOP) => break 'run,
            };
            if readable {
                while let Some(frame) = conn.next_frame()? {
                    if let Message::Error {
                        request_type: MessageType::Publish,
                        error,
                        payload,
                        ..
                    } = conn.decode(&frame)?
                    {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| {
                            super::rpc::error_text(&error, &payload, serializer)
                        });
                    }
                }
                conn.flush().await?;
            }
        }
    }
    flow.sent[index].store(seq, Ordering::Release);
    conn.close().await;
    Ok(result)
}

async fn subscriber(
    mut conn: Conn,
    index: usize,
    clock: Arc<Clock>,
    flow: Arc<Flow>,
) -> anyhow::Result<SubscriberResult> {
    let publishers = flow.sent.len();
    let mut result = SubscriberResult::default();
    let mut counts = vec![0u64; publishers];
    let mut next_seq = vec![0u64; publishers];
    let mut touched = vec![false; publishers];
    let mut phase = clock.watch();
    let serializer = conn.serializer();
    loop {
        while let Some(frame) = conn.next_frame()? {
            let payload = match conn.decode(&frame)? {
                Message::Event { payload, .. } => payload,
                Message::Goodbye { reason, .. } | Message::Abort { reason, .. } => {
                    anyhow::bail!("router closed the subscriber session: {reason}")
                }
                _ => continue,
            };
            let Some([seq, sent_ns, p]) = event_fields(&payload, serializer) else {
                result.errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| "event with unexpected arguments".into());
                continue;
            };
            let Some(p) = usize::try_from(p).ok().filter(|&p| p < publishers) else {
                result.errors += 1;
                continue;
            };
            result.received_total += 1;
            counts[p] += 1;
            touched[p] = true;
            if seq < next_seq[p] {
                result.out_of_order += 1;
            } else {
                next_seq[p] = seq + 1;
            }
            if clock.phase() == stats::MEASURE {
                result.delivered += 1;
                result
                    .latency
                    .record_ns(clock.now_ns().saturating_sub(sent_ns));
            }
        }
        for p in 0..publishers {
            if std::mem::take(&mut touched[p]) {
                flow.received[p * flow.subscribers + index].store(counts[p], Ordering::Release);
                flow.wake[p].notify_one();
            }
        }
        conn.flush().await?;
        let current = clock.phase();
        if current >= stats::FINISH
            || (current == stats::DRAIN
                && (0..publishers).all(|p| counts[p] >= flow.sent[p].load(Ordering::Acquire)))
        {
            break;
        }
        if conn.is_closed() {
            anyhow::bail!("router closed the subscriber connection");
        }
        tokio::select! {
            more = conn.fill() => if !more? {
                anyhow::bail!("router closed the subscriber connection");
            },
            _ = phase.changed() => {}
        }
    }
    conn.close().await;
    Ok(result)
}

/// `[seq, sent_ns, publisher]` from an event's arguments.
fn event_fields(payload: &Payload, serializer: Serializer) -> Option<[u64; 3]> {
    if let Ok((raw, _)) = payload.encoded(serializer) {
        if let Some(fields) = leading_uints(serializer, &raw) {
            return Some(fields);
        }
    }
    let args = payload.args().ok()?;
    let get = |i: usize| args.get(i).and_then(Value::as_u64);
    Some([get(0)?, get(1)?, get(2)?])
}

/// The first three elements of the encoded `Arguments` list when they are unsigned
/// integers, read without decoding the rest.
pub(crate) fn leading_uints(serializer: Serializer, raw: &[u8]) -> Option<[u64; 3]> {
    let mut out = [0u64; 3];
    match serializer {
        Serializer::Json => {
            let mut rest = raw.trim_ascii_start().strip_prefix(b"[")?;
            for (i, slot) in out.iter_mut().enumerate() {
                rest = rest.trim_ascii_start();
                if i > 0 {
                    rest = rest.strip_prefix(b",")?.trim_ascii_start();
                }
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits == 0 || digits > 19 {
                    return None;
                }
                let mut v: u64 = 0;
                for d in &rest[..digits] {
                    v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                }
                // A fraction or exponent means this is not a plain integer.
                if matches!(rest.get(digits), Some(b'.' | b'e' | b'E')) {
                    return None;
                }
                *slot = v;
                rest = &rest[digits..];
            }
        }
        Serializer::MsgPack => {
            let (&head, mut rest) = raw.split_first()?;
            rest = match head {
                0x90..=0x9f if head - 0x90 >= 3 => rest,
                0xdc => rest.get(2..)?,
                0xdd => rest.get(4..)?,
                _ => return None,
            };
            for slot in out.iter_mut() {
                let (&b, tail) = rest.split_first()?;
                let (v, used) = match b {
                    0x00..=0x7f => (u64::from(b), 0),
                    0xcc => (u64::from(*tail.first()?), 1),
                    0xcd => (
                        u64::from(u16::from_be_bytes(tail.get(..2)?.try_into().ok()?)),
                        2,
                    ),
                    0xce => (
                        u64::from(u32::from_be_bytes(tail.get(..4)?.try_into().ok()?)),
                        4,
                    ),
                    0xcf => (u64::from_be_bytes(tail.get(..8)?.try_into().ok()?), 8),
                    _ => return None,
                };
                *slot = v;
                rest = &tail[used..];
            }
        }
        Serializer::Cbor => {
            let (&head, mut rest) = raw.split_first()?;
            if head >> 5 != 4 {
                return None;
            }
            rest = match head & 0x1f {
                3..=23 => rest,
                24 => rest.get(1..)?,
                25 => rest.get(2..)?,
                26 => rest.get(4..)?,
                27 => rest.get(8..)?,
                31 => rest,
                _ => return None,
            };
            for slot in out.iter_mut() {
                let (&b, tail) = rest.split_first()?;
                if b >> 5 != 0 {
                    return None;
                }
                let (v, used) = match b & 0x1f {
                    n @ 0..=23 => (u64::from(n), 0),
                    24 => (u64::from(*tail.first()?), 1),
                    25 => (
                        u64::from(u16::from_be_bytes(tail.get(..2)?.try_into().ok()?)),
                        2,
                    ),
                    26 => (
                        u64::from(u32::from_be_bytes(tail.get(..4)?.try_into().ok()?)),
                        4,
                    ),
                    27 => (u64::from_be_bytes(tail.get(..8)?.try_into().ok()?), 8),
                    _ => return None,
                };
                *slot = v;
                rest = &tail[used..];
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_integers_in_every_serializer() {
        for ser in Serializer::ALL {
            for (a, b, c) in [(0, 1, 2), (23, 24, 255), (65_535, 1 << 40, u64::MAX >> 12)] {
                let payload = Payload::from_args(vec![
                    Value::from_u64(a),
                    Value::from_u64(b),
                    Value::from_u64(c),
                    Value::from("padding"),
                ]);
                let (raw, _) = payload.encoded(ser).expect("encode");
                assert_eq!(leading_uints(ser, &raw), Some([a, b, c]), "{ser}");
                assert_eq!(event_fields(&payload, ser), Some([a, b, c]), "{ser}");
            }
            let wrong = Payload::from_args(vec![Value::from("a"), Value::from(1)]);
            let (raw, _) = wrong.encoded(ser).expect("encode");
            assert_eq!(leading_uints(ser, &raw), None, "{ser}");
        }
    }
}
