//! Slow consumers: a subscriber that stops reading while a publisher floods.
//!
//! The router runs as its own process (the built `junction` binary) so that its
//! memory can be read from `/proc`. For each slow-consumer policy the test checks
//! that the router's resident memory stays within its configured queue bound although
//! far more than that is published, that a subscriber which keeps reading receives
//! every event, and that the stuck subscriber is treated as the policy says.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use test_support::{msg, raw_rawsocket_unix};
use wamp_client::Session;
use wamp_proto::{Dict, Message, Serializer, Value};

/// Published in all: 20,000 events of 4 KiB, 80 MB, to each subscriber.
const EVENTS: u64 = 20_000;
const EVENT_SIZE: usize = 4096;
/// The outbox bound configured for the router.
const OUTBOX_BYTES: u64 = 2 * 1024 * 1024;

struct RouterProcess {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RouterProcess {
    fn start(policy: &str) -> RouterProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("junction.sock");
        let config = dir.path().join("junction.toml");
        let log = dir.path().join("junction.log");
        std::fs::write(
            &config,
            format!(
                "[[listener]]\ntype = \"unix\"\npath = \"{}\"\n\n[limits]\nmax_message_size = 1048576\noutbox_max_messages = 100000\noutbox_max_bytes = {OUTBOX_BYTES}\nslow_consumer = \"{policy}\"\n",
                socket.display()
            ),
        )
        .expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
            .args(["serve", "--log-level", "warn", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start junction");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!(
                    "router did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        RouterProcess {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn rss_bytes(&self) -> u64 {
        rss_of(self.child.id())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

struct Flood {
    rss_growth: u64,
    good_received: u64,
    stuck: test_support::RawPeer,
}

/// Subscribes a reading and a stuck subscriber, publishes `EVENTS` events paced by
/// the reading one, and reports the router's memory growth.
async fn flood(router: &RouterProcess, socket: &Path) -> Flood {
    let topic = "bench.flood";
    let mut stuck = raw_rawsocket_unix(socket, Serializer::Json)
        .await
        .expect("stuck subscriber connects");
    stuck.join("realm1").await;
    stuck
        .send(msg::subscribe(1, topic))
        .await
        .expect("subscribe");
    assert!(
        matches!(stuck.recv().await, Some(Message::Subscribed { .. })),
        "stuck subscriber is subscribed"
    );

    let good = Session::connect(&router.url(), "realm1")
        .await
        .expect("good subscriber connects");
    let mut subscription = good.subscribe(topic).await.expect("subscribe");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        while subscription.next().await.is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    let publisher = Session::connect(&router.url(), "realm1")
        .await
        .expect("publisher connects");
    let before = router.rss_bytes();
    let filler = "x".repeat(EVENT_SIZE);
    let mut peak = before;
    for sent in 1..=EVENTS {
        publisher
            .publish(topic, vec![Value::from(filler.as_str())], Dict::new())
            .await
            .expect("publish");
        if sent % 500 == 0 {
            // Pace the flood by the subscriber that reads, so it is never the slow one.
            let deadline = Instant::now() + Duration::from_secs(60);
            while received.load(Ordering::Relaxed) < sent {
                assert!(
                    Instant::now() < deadline,
                    "the reading subscriber stalled at {} of {sent}",
                    received.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            peak = peak.max(router.rss_bytes());
        }
    }
    let good_received = received.load(Ordering::Relaxed);
    reader.abort();
    Flood {
        rss_growth: peak.saturating_sub(before),
        good_received,
        stuck,
    }
}

/// What the stuck subscriber finds when it finally reads: the number of EVENTs
/// waiting for it, and whether the connection was closed.
async fn read_backlog(stuck: &mut test_support::RawPeer) -> (u64, bool) {
    let mut events = 0;
    loop {
        match stuck.recv_timeout(Duration::from_secs(2)).await {
            Some(Message::Event { .. }) => events += 1,
            Some(other) => panic!("unexpected message for the stuck subscriber: {other:?}"),
            None => return (events, stuck.is_closed()),
        }
    }
}

/// The queue bound plus generous room for the allocator and the kernel-facing
/// buffers; far below the 80 MB an unbounded queue would hold.
fn memory_bound() -> u64 {
    2 * OUTBOX_BYTES + 24 * 1024 * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_keeps_memory_bounded_and_the_session_alive() {
    let router = RouterProcess::start("drop");
    let mut flood = flood(&router, &router.socket).await;
    assert_eq!(
        flood.good_received, EVENTS,
        "the reading subscriber got every event"
    );
    assert!(
        flood.rss_growth < memory_bound(),
        "router memory grew by {} bytes while flooding a stuck subscriber",
        flood.rss_growth
    );

    let (backlog, closed) = read_backlog(&mut flood.stuck).await;
    assert!(!closed, "with slow_consumer = \"drop\" the session stays");
    assert!(
        backlog > 0,
        "the stuck subscriber gets what fit in its queue"
    );
    assert!(
        backlog < EVENTS,
        "events that did not fit were dropped ({backlog} of {EVENTS} arrived)"
    );
    // The session still works.
    flood
        .stuck
        .send(msg::publish(
            2,
            "after.flood",
            vec![],
            wamp_proto::dict! { "acknowledge" => true },
        ))
        .await
        .expect("publish");
    assert!(
        matches!(
            flood.stuck.recv().await,
            Some(Message::Published { request: 2, .. })
        ),
        "the slow subscriber's session answers after the flood"
    );
    assert!(
        router.log().contains("EVENTs are being dropped"),
        "the router logs that it drops events: {}",
        router.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_policy_keeps_memory_bounded_and_closes_the_stuck_session() {
    let router = RouterProcess::start("disconnect");
    let mut flood = flood(&router, &router.socket).await;
    assert_eq!(
        flood.good_received, EVENTS,
        "the reading subscriber got every event"
    );
    assert!(
        flood.rss_growth < memory_bound(),
        "router memory grew by {} bytes while flooding a stuck subscriber",
        flood.rss_growth
    );
    let (backlog, closed) = read_backlog(&mut flood.stuck).await;
    assert!(
        closed,
        "with slow_consumer = \"disconnect\" the stuck session is closed"
    );
    assert!(backlog < EVENTS, "{backlog} of {EVENTS} events arrived");
    assert!(
        router.log().contains("disconnected"),
        "the router logs why it disconnected the session: {}",
        router.log()
    );
}
