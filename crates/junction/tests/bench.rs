//! `junction bench` scenarios, run briefly in-process against an in-process router;
//! the JSON report is parsed and checked for behaviour (never for speed).

mod common;

use common::{TestRouter, Via};
use serde_json::Value as Json;

/// Runs `junction bench <args>` in-process and returns the parsed JSON report.
async fn bench(args: &[&str]) -> anyhow::Result<Json> {
    let mut argv = vec!["junction-bench"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--json", "--warmup", "0"]);
    let parsed = junction::bench::parse_args(&argv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        junction::bench::run(&parsed),
    )
    .await
    .map_err(|_| anyhow::anyhow!("bench run did not finish"))??;
    Ok(serde_json::from_str(&report.to_json())?)
}

fn uint(report: &Json, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[tokio::test]
async fn rpc_over_websocket_rawsocket_and_unix() {
    let router = TestRouter::start().await;
    for (via, serializer) in [
        (Via::WebSocket, "json"),
        (Via::WebSocket, "msgpack"),
        (Via::RawSocket, "cbor"),
        (Via::RawSocketShared, "json"),
        (Via::Unix, "msgpack"),
    ] {
        let url = router.url(via);
        let report = bench(&[
            "rpc",
            "--url",
            &url,
            "--serializer",
            serializer,
            "--duration",
            "0.5",
            "--callers",
            "2",
            "--in-flight",
            "4",
            "--payload",
            "100",
        ])
        .await
        .unwrap_or_else(|e| panic!("rpc via {via:?}/{serializer}: {e:#}"));
        assert_eq!(report["scenario"], "rpc");
        assert_eq!(report["serializer"], serializer);
        let calls = uint(&report, "calls");
        assert!(calls > 0, "{report}");
        assert_eq!(uint(&report, "ops"), calls);
        assert_eq!(uint(&report, "errors"), 0, "{report}");
        assert_eq!(report["latency_us"]["count"].as_u64(), Some(calls));
        assert!(report["latency_us"]["p50"]
            .as_f64()
            .is_some_and(|v| v > 0.0));
        assert!(report.get("published").is_none());
    }
    // Every session was closed again, and no call is left pending.
    let stats = router
        .wait_for_stats(|s| s.sessions == 0 && s.registrations == 0)
        .await;
    assert_eq!((stats.sessions, stats.pending_calls), (0, 0));
}

#[tokio::test]
async fn latency_runs_one_call_at_a_time() {
    let router = TestRouter::start().await;
    let report = bench(&["latency", "--url", &router.ws_url(), "--duration", "0.5"])
        .await
        .expect("latency");
    assert_eq!(report["scenario"], "latency");
    assert_eq!(uint(&report, "in_flight"), 1);
    assert_eq!(uint(&report, "callers"), 1);
    assert!(uint(&report, "calls") > 0);
    assert_eq!(uint(&report, "errors"), 0, "{report}");
}

#[tokio::test]
async fn pubsub_delivers_every_event_in_order() {
    let router = TestRouter::start().await;
    for (via, serializer) in [(Via::WebSocket, "json"), (Via::RawSocket, "msgpack")] {
        let url = router.url(via);
        let report = bench(&[
            "pubsub",
            "--url",
            &url,
            "--serializer",
            serializer,
            "--duration",
            "0.5",
            "--publishers",
            "2",
            "--subscribers",
            "3",
            "--in-flight",
            "8",
        ])
        .await
        .unwrap_or_else(|e| panic!("pubsub via {via:?}: {e:#}"));
        assert!(uint(&report, "published") > 0, "{report}");
        assert!(uint(&report, "delivered") > 0, "{report}");
        assert_eq!(uint(&report, "errors"), 0, "{report}");
        assert_eq!(uint(&report, "lost"), 0, "{report}");
        assert_eq!(uint(&report, "out_of_order"), 0, "{report}");
        let total = uint(&report, "published_total");
        assert_eq!(uint(&report, "expected_total"), total * 3);
        assert_eq!(uint(&report, "received_total"), total * 3);
        assert_eq!(
            report["latency_us"]["count"].as_u64(),
            Some(uint(&report, "delivered"))
        );
    }
}

#[tokio::test]
async fn connections_are_all_open_at_once() {
    let router = TestRouter::start().await;
    let url = router.ws_url();
    let run = tokio::spawn(async move {
        bench(&[
            "connections",
            "--url",
            &url,
            "--sessions",
            "60",
            "--concurrency",
            "7",
            "--hold",
            "1",
            "--source-addresses",
            "3",
        ])
        .await
    });
    // While the run holds them, the router sees all 60 sessions joined.
    let during = router.wait_for_stats(|s| s.sessions == 60).await;
    assert_eq!(during.sessions, 60);
    let report = run.await.expect("task").expect("connections");
    assert_eq!(uint(&report, "sessions"), 60);
    assert_eq!(uint(&report, "sessions_opened"), 60);
    assert_eq!(uint(&report, "errors"), 0, "{report}");
    assert_eq!(uint(&report, "source_addresses"), 3);
    assert!(report["sessions_per_s"].as_f64().is_some_and(|v| v > 0.0));
    // Closed after the hold.
    let after = router.wait_for_stats(|s| s.sessions == 0).await;
    assert_eq!(after.sessions, 0);
}

#[tokio::test]
async fn router_cpu_and_memory_are_reported_for_a_pid() {
    let router = TestRouter::start().await;
    // The router runs in this process, so this process's id is the router's.
    let pid = std::process::id().to_string();
    let report = bench(&[
        "rpc",
        "--url",
        &router.url(Via::RawSocket),
        "--duration",
        "0.5",
        "--router-pid",
        &pid,
    ])
    .await
    .expect("rpc");
    assert!(
        report["router_cpu_us_per_op"].as_f64().is_some(),
        "{report}"
    );
    let per_op = report["router_cpu_us_per_op"].as_f64().unwrap_or(-1.0);
    let per_1k = report["router_cpu_us_per_1k_ops"].as_f64().unwrap_or(-1.0);
    assert!((per_1k - per_op * 1000.0).abs() < 1.0, "{report}");
    assert!(uint(&report, "router_rss_kib") > 0);
    assert!(report["tool_cpu_us_per_op"].as_f64().is_some(), "{report}");

    let report = bench(&[
        "connections",
        "--url",
        &router.url(Via::Unix),
        "--sessions",
        "20",
        "--router-pid",
        &pid,
    ])
    .await
    .expect("connections");
    assert_eq!(uint(&report, "sessions_opened"), 20);
    assert!(uint(&report, "router_rss_before_kib") > 0);
    assert!(uint(&report, "router_rss_after_kib") > 0);
    assert!(report["router_bytes_per_session"].as_f64().is_some());
}

#[tokio::test]
async fn failures_are_errors() {
    let router = TestRouter::start().await;
    let refused = bench(&[
        "rpc",
        "--url",
        &router.ws_url(),
        "--realm",
        "no.such.realm",
        "--duration",
        "0.5",
    ])
    .await
    .expect_err("unknown realm");
    assert!(
        format!("{refused:#}").contains("no_such_realm"),
        "{refused:#}"
    );

    // Port 1 is outside the ephemeral range (a released ephemeral port could be
    // picked as the source port and connect to itself).
    let url = "rs://127.0.0.1:1".to_owned();
    let unreachable = bench(&["pubsub", "--url", &url, "--duration", "0.5"])
        .await
        .expect_err("unreachable");
    assert!(
        format!("{unreachable:#}").contains("cannot connect"),
        "{unreachable:#}"
    );

    // Several callees share one registration (roundrobin), which Junction supports.
    let report = bench(&[
        "rpc",
        "--url",
        &router.ws_url(),
        "--callees",
        "2",
        "--duration",
        "0.5",
    ])
    .await
    .expect("shared registration");
    assert_eq!(uint(&report, "errors"), 0, "{report}");
    assert!(uint(&report, "calls") > 0, "{report}");
}

#[test]
fn flags_have_the_documented_names_and_defaults() {
    let args = junction::bench::parse_args(["b", "rpc"]).expect("parse");
    let junction::bench::Scenario::Rpc(rpc) = args.scenario else {
        panic!("not rpc");
    };
    assert_eq!(rpc.common.url, "ws://127.0.0.1:8080/ws");
    assert_eq!(rpc.common.realm, "realm1");
    assert_eq!((rpc.common.duration, rpc.common.warmup), (5.0, 1.0));
    assert_eq!(rpc.common.threads, 1);
    assert_eq!(
        (rpc.callees, rpc.callers, rpc.in_flight, rpc.payload),
        (1, 4, 16, 64)
    );
    assert_eq!(rpc.procedure, "bench.rpc.echo");

    let args = junction::bench::parse_args([
        "b",
        "pubsub",
        "--publishers",
        "2",
        "--subscribers",
        "5",
        "--in-flight",
        "3",
        "--payload",
        "10",
        "--topic",
        "t",
        "--serializer",
        "cbor",
        "--router-pid",
        "1",
        "--threads",
        "2",
    ])
    .expect("parse");
    let junction::bench::Scenario::Pubsub(p) = args.scenario else {
        panic!("not pubsub");
    };
    assert_eq!(
        (p.publishers, p.subscribers, p.in_flight, p.payload),
        (2, 5, 3, 10)
    );
    assert_eq!(p.common.router_pid, Some(1));

    let args = junction::bench::parse_args(["b", "connections"]).expect("parse");
    let junction::bench::Scenario::Connections(c) = args.scenario else {
        panic!("not connections");
    };
    assert_eq!((c.sessions, c.concurrency), (1000, 50));
    assert_eq!((c.hold, c.timeout, c.source_addresses), (0.0, 120.0, 0));
    assert!(junction::bench::parse_args(["b", "rpc", "--serializer", "xml"]).is_err());
}
