//! Routed RPC through the router: results, errors, and pending calls that always end.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, TestRouter, Via, ALL_VIAS};
use wamp_proto::{dict, Dict, Serializer, Value};

#[tokio::test]
async fn calls_round_trip_over_every_transport_and_serializer_pair() {
    let router = TestRouter::start().await;
    let callee = router.join_via(Via::RawSocket, Serializer::Cbor).await;
    let mut reg = callee.register("com.example.echo").await.expect("register");
    let serve = tokio::spawn(async move {
        while let Some(inv) = reg.next().await {
            let (args, kwargs) = (inv.args.clone(), inv.kwargs.clone());
            inv.yield_result(args, kwargs).await.expect("yield");
        }
    });
    for via in ALL_VIAS {
        for ser in Serializer::ALL {
            let caller = router.join_via(via, ser).await;
            let args = vec![
                Value::from(ser.name()),
                Value::Bytes(Bytes::from_static(b"\x00\xff")),
                Value::Float(-0.5),
            ];
            let kwargs = dict! {"nested" => Value::List(vec![Value::Null, Value::Bool(true)])};
            let result = within(
                "call",
                caller.call("com.example.echo", args.clone(), kwargs.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("{via:?}/{ser}: {e}"));
            assert_eq!(result.args, args, "{via:?}/{ser}");
            assert_eq!(result.kwargs, kwargs, "{via:?}/{ser}");
            caller.leave().await.expect("leave");
        }
    }
    serve.abort();
}

#[tokio::test]
async fn application_errors_reach_the_caller_unchanged() {
    let router = TestRouter::start().await;
    let callee = router.join_via(Via::WebSocket, Serializer::MsgPack).await;
    let mut reg = callee.register("com.example.fail").await.expect("register");
    tokio::spawn(async move {
        while let Some(inv) = reg.next().await {
            inv.error(
                "com.example.error.out_of_stock",
                vec![Value::from("no more"), Value::from(42)],
                dict! {"item" => "widget"},
            )
            .await
            .expect("error");
        }
    });
    let caller = router.join().await;
    let err = within("call", caller.call("com.example.fail", vec![], Dict::new()))
        .await
        .expect_err("application error");
    match err {
        wamp_client::Error::Wamp { uri, args, kwargs } => {
            assert_eq!(uri, "com.example.error.out_of_stock");
            assert_eq!(args, vec![Value::from("no more"), Value::from(42)]);
            assert_eq!(kwargs, dict! {"item" => "widget"});
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn registration_errors_use_the_spec_uris() {
    let router = TestRouter::start().await;
    let a = router.join().await;
    let b = router.join().await;
    let reg = a.register("com.example.once").await.expect("register");
    let err = b.register("com.example.once").await.expect_err("taken");
    assert_eq!(err.uri(), Some("wamp.error.procedure_already_exists"));
    let err = a
        .register("com.example.once")
        .await
        .expect_err("taken by itself too");
    assert_eq!(err.uri(), Some("wamp.error.procedure_already_exists"));
    let err = b
        .call("com.example.none", vec![], Dict::new())
        .await
        .expect_err("none");
    assert_eq!(err.uri(), Some("wamp.error.no_such_procedure"));
    let err = b.register("not a uri").await.expect_err("bad uri");
    assert_eq!(err.uri(), Some("wamp.error.invalid_uri"));
    let err = b
        .register("wamp.session.count")
        .await
        .expect_err("reserved");
    assert_eq!(err.uri(), Some("wamp.error.invalid_uri"));
    let err = b
        .call("bad..uri", vec![], Dict::new())
        .await
        .expect_err("bad uri");
    assert_eq!(err.uri(), Some("wamp.error.invalid_uri"));

    reg.unregister().await.expect("unregister");
    let err = b
        .call("com.example.once", vec![], Dict::new())
        .await
        .expect_err("gone");
    assert_eq!(err.uri(), Some("wamp.error.no_such_procedure"));
    // Now someone else may register it.
    let _again = b.register("com.example.once").await.expect("free again");
}

#[tokio::test]
async fn a_callee_leaving_mid_call_ends_the_call_with_canceled() {
    let router = TestRouter::start().await;
    let callee = router.join_via(Via::RawSocket, Serializer::Json).await;
    let mut reg = callee.register("com.example.slow").await.expect("register");
    let caller = router.join().await;
    let call = tokio::spawn({
        let caller = caller.clone();
        async move { caller.call("com.example.slow", vec![], Dict::new()).await }
    });
    let _invocation = within("invocation", reg.next())
        .await
        .expect("invocation arrives");
    // The callee drops its transport without answering.
    drop(reg);
    callee.leave().await.expect("leave");
    let err = within("caller told", call)
        .await
        .expect("join")
        .expect_err("canceled");
    assert_eq!(err.uri(), Some("wamp.error.canceled"));
    let stats = router
        .wait_for_stats(|s| s.pending_calls == 0 && s.registrations == 0)
        .await;
    assert_eq!((stats.pending_calls, stats.registrations), (0, 0));
}

#[tokio::test]
async fn a_late_yield_after_the_caller_left_is_dropped_quietly() {
    let router = TestRouter::start().await;
    let callee = router.join().await;
    let mut reg = callee.register("com.example.late").await.expect("register");
    let caller = router.join_via(Via::Unix, Serializer::MsgPack).await;
    tokio::spawn({
        let caller = caller.clone();
        async move {
            let _ = caller.call("com.example.late", vec![], Dict::new()).await;
        }
    });
    let invocation = within("invocation", reg.next()).await.expect("invocation");
    caller.leave().await.expect("caller leaves");
    router.wait_for_stats(|s| s.pending_calls == 0).await;
    invocation
        .yield_result(vec![Value::from("too late")], Dict::new())
        .await
        .expect("yield is sent");
    // The callee is still in good standing and serves the next caller.
    let next = router.join().await;
    let answer = tokio::spawn({
        let next = next.clone();
        async move {
            next.call("com.example.late", vec![Value::from(7)], Dict::new())
                .await
        }
    });
    let inv = within("second invocation", reg.next())
        .await
        .expect("invocation");
    assert_eq!(inv.args, vec![Value::from(7)]);
    inv.yield_result(vec![Value::from("ok")], Dict::new())
        .await
        .expect("yield");
    let result = within("result", answer)
        .await
        .expect("join")
        .expect("result");
    assert_eq!(result.args, vec![Value::from("ok")]);
    assert!(!callee.is_closed());
}

#[tokio::test]
async fn tables_are_empty_once_everyone_has_left() {
    let router = TestRouter::start().await;
    let mut sessions = Vec::new();
    for (i, via) in ALL_VIAS.into_iter().enumerate() {
        let s = router.join_via(via, Serializer::ALL[i % 3]).await;
        let reg = s
            .register(&format!("com.example.p{i}"))
            .await
            .expect("register");
        let sub = s.subscribe("com.example.shared").await.expect("subscribe");
        sessions.push((s, reg, sub));
    }
    let stats = router.stats();
    assert_eq!(
        (stats.sessions, stats.registrations, stats.subscriptions),
        (4, 4, 1)
    );
    // Half leave politely, half just drop their transport.
    for (i, (s, reg, sub)) in sessions.into_iter().enumerate() {
        if i % 2 == 0 {
            s.leave().await.expect("leave");
        } else {
            s.disconnect().await;
        }
        drop((reg, sub));
    }
    let stats = router
        .wait_for_stats(|s| *s == wamp_router::RealmStats::default())
        .await;
    assert_eq!(stats, wamp_router::RealmStats::default());
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Calls started against a callee that never answers, each spawned so they stay in
/// flight; returns once the router has `expected` calls pending.
async fn fill_with_unanswered_calls(
    router: &TestRouter,
    caller: &wamp_client::Session,
    procedure: &str,
    expected: usize,
) -> Vec<tokio::task::JoinHandle<Result<wamp_client::CallResult, wamp_client::Error>>> {
    let mut pending = Vec::new();
    for _ in 0..expected {
        let caller = caller.clone();
        let procedure = procedure.to_owned();
        pending.push(tokio::spawn(async move {
            caller.call(&procedure, vec![], Dict::new()).await
        }));
    }
    router.wait_for_stats(|s| s.pending_calls == expected).await;
    pending
}

fn error_uri(result: Result<wamp_client::CallResult, wamp_client::Error>) -> String {
    match result {
        Err(e) => e.uri().unwrap_or_default().to_owned(),
        Ok(r) => panic!("expected an error, got {r:?}"),
    }
}

#[tokio::test]
async fn register_concurrency_bounds_the_calls_a_silent_callee_holds() {
    let router = TestRouter::start().await;
    let callee = router.join().await;
    // A callee that takes invocations and never answers.
    let _reg = callee
        .register_with("com.example.silent", dict! {"concurrency" => 2})
        .await
        .expect("register");
    let caller = router.join().await;
    let pending = fill_with_unanswered_calls(&router, &caller, "com.example.silent", 2).await;
    let refused = within(
        "call over the limit",
        caller.call("com.example.silent", vec![], Dict::new()),
    )
    .await;
    assert_eq!(error_uri(refused), "crossbar.error.max_concurrency_reached");
    // The held calls end when the callee goes, and nothing stays behind.
    callee.disconnect().await;
    for call in pending {
        let outcome = within("held call ends", call).await.expect("task");
        assert_eq!(error_uri(outcome), "wamp.error.canceled");
    }
    router
        .wait_for_stats(|s| s.pending_calls == 0 && s.registrations == 0)
        .await;
}

#[tokio::test]
async fn invalid_register_concurrency_is_a_protocol_violation() {
    // A known option of the wrong type or range is a malformed message: the session
    // ends with `protocol_violation`, the router carries on.
    let router = TestRouter::start().await;
    for bad in [Value::from(0), Value::from("two"), Value::from(-1)] {
        let callee = router.join().await;
        let err = callee
            .register_with("com.example.bad", dict! {"concurrency" => bad.clone()})
            .await
            .expect_err("refused");
        assert_eq!(err.uri(), Some("wamp.error.protocol_violation"), "{bad:?}");
    }
    let fine = router.join().await;
    fine.register_with("com.example.ok", dict! {"concurrency" => 1})
        .await
        .expect("a valid concurrency is accepted");
}

#[tokio::test]
async fn router_bounds_calls_per_callee_and_per_caller() {
    let router = TestRouter::start_with(|c| {
        c.limits.calls_per_callee = 3;
        c.limits.calls_per_caller = 5;
    })
    .await;
    let silent = router.join().await;
    let _a = silent
        .register("com.example.silent.a")
        .await
        .expect("register");
    let _b = silent
        .register("com.example.silent.b")
        .await
        .expect("register");
    let other = router.join().await;
    let _c = other
        .register("com.example.silent.c")
        .await
        .expect("register");

    let caller = router.join().await;
    let mut held = fill_with_unanswered_calls(&router, &caller, "com.example.silent.a", 3).await;
    // The callee holds 3 invocations, across its registrations.
    let refused = within(
        "call to a busy callee",
        caller.call("com.example.silent.b", vec![], Dict::new()),
    )
    .await;
    assert_eq!(error_uri(refused), "crossbar.error.max_concurrency_reached");
    // The caller may hold 5 in all; the other callee takes 2 more, then no more.
    held.extend(fill_with_unanswered_calls(&router, &caller, "com.example.silent.c", 5).await);
    let refused = within(
        "call over the caller's limit",
        caller.call("com.example.silent.c", vec![], Dict::new()),
    )
    .await;
    assert_eq!(error_uri(refused), "junction.error.too_many_calls");
    // Another caller is not affected by the first one's limit.
    let second = router.join().await;
    let mut answering = other
        .register("com.example.answer")
        .await
        .expect("register");
    tokio::spawn(async move {
        while let Some(inv) = answering.next().await {
            inv.yield_result(vec![Value::from("ok")], Dict::new())
                .await
                .expect("yield");
        }
    });
    let ok = within(
        "unrelated call",
        second.call("com.example.answer", vec![], Dict::new()),
    )
    .await
    .expect("answered");
    assert_eq!(ok.args, vec![Value::from("ok")]);
    // When the caller leaves, its calls stop counting against the callees.
    caller.disconnect().await;
    for call in held {
        call.abort();
    }
    router.wait_for_stats(|s| s.pending_calls == 0).await;
    let third = router.join().await;
    let again = fill_with_unanswered_calls(&router, &third, "com.example.silent.a", 3).await;
    assert_eq!(again.len(), 3);
}

#[tokio::test]
async fn large_payloads_cross_every_transport() {
    // Several MiB per message: the transports read such frames in many steps.
    let router = TestRouter::start().await;
    let callee = router.join_via(Via::Unix, Serializer::MsgPack).await;
    let mut reg = callee.register("com.example.big").await.expect("register");
    tokio::spawn(async move {
        while let Some(inv) = reg.next().await {
            let (args, kwargs) = (inv.args.clone(), inv.kwargs.clone());
            inv.yield_result(args, kwargs).await.expect("yield");
        }
    });
    let big = "z".repeat(3 * 1024 * 1024 + 17);
    for via in ALL_VIAS {
        let caller = router.join_via(via, Serializer::Json).await;
        let result = within(
            "big call",
            caller.call(
                "com.example.big",
                vec![Value::from(big.as_str())],
                Dict::new(),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{via:?}: {e}"));
        assert_eq!(result.args, vec![Value::from(big.as_str())], "{via:?}");
    }
}
