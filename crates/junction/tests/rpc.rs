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
