//! Advanced Profile RPC through the router, over WebSocket (JSON) and RawSocket
//! (MessagePack), with scripted raw peers: progressive results and invocations,
//! timeouts, canceling, caller identification, pattern-based and shared
//! registrations, concurrency, revocation, and bad input that leaves everyone else
//! served.

mod common;

use std::time::{Duration, Instant};

use common::TestRouter;
use test_support::RawPeer;
use wamp_proto::message::MessageType;
use wamp_proto::{dict, Dict, Message, Payload, Serializer, Value};

#[derive(Clone, Copy, Debug)]
enum Transport {
    WebSocket,
    RawSocket,
}

const TRANSPORTS: [Transport; 2] = [Transport::WebSocket, Transport::RawSocket];

/// Everything a client can announce for RPC.
fn all_features() -> Dict {
    dict! {
        "call_canceling" => true,
        "progressive_call_results" => true,
        "progressive_call_invocations" => true,
        "caller_identification" => true,
        "pattern_based_registration" => true,
        "shared_registration" => true,
        "registration_revocation" => true,
        "call_timeout" => true,
    }
}

async fn connect(router: &TestRouter, t: Transport) -> RawPeer {
    match t {
        Transport::WebSocket => test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
            .await
            .expect("ws connect"),
        Transport::RawSocket => test_support::raw_rawsocket_tcp(router.rs, Serializer::MsgPack)
            .await
            .expect("rawsocket connect"),
    }
}

/// A joined peer announcing `features` for both caller and callee.
async fn join(router: &TestRouter, t: Transport, features: Dict) -> (RawPeer, u64) {
    let mut peer = connect(router, t).await;
    let role = dict! { "features" => features };
    peer.send(Message::Hello {
        realm: "realm1".into(),
        details: dict! {
            "roles" => dict! { "caller" => role.clone(), "callee" => role },
        },
    })
    .await
    .expect("hello");
    match peer.recv().await {
        Some(Message::Welcome { session, .. }) => (peer, session),
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

async fn next(peer: &mut RawPeer, what: &str) -> Message {
    peer.recv()
        .await
        .unwrap_or_else(|| panic!("{what}: nothing arrived"))
}

/// Asserts that nothing arrives for a while.
async fn quiet(peer: &mut RawPeer, what: &str) {
    if let Some(m) = peer.recv_timeout(Duration::from_millis(150)).await {
        panic!("{what}: unexpected {m:?}");
    }
}

async fn register(peer: &mut RawPeer, request: u64, procedure: &str, options: Dict) -> u64 {
    peer.send(Message::Register {
        request,
        options,
        procedure: procedure.into(),
    })
    .await
    .expect("send REGISTER");
    match next(peer, "REGISTERED").await {
        Message::Registered {
            request: r,
            registration,
        } if r == request => registration,
        other => panic!("expected REGISTERED for {procedure}, got {other:?}"),
    }
}

async fn register_error(
    peer: &mut RawPeer,
    request: u64,
    procedure: &str,
    options: Dict,
) -> String {
    peer.send(Message::Register {
        request,
        options,
        procedure: procedure.into(),
    })
    .await
    .expect("send REGISTER");
    match next(peer, "REGISTER error").await {
        Message::Error {
            request_type: MessageType::Register,
            request: r,
            error,
            ..
        } if r == request => error,
        other => panic!("expected ERROR for REGISTER {procedure}, got {other:?}"),
    }
}

async fn call(peer: &mut RawPeer, request: u64, procedure: &str, options: Dict, args: Vec<Value>) {
    peer.send(Message::Call {
        request,
        options,
        procedure: procedure.into(),
        payload: Payload::from_args(args),
    })
    .await
    .expect("send CALL");
}

/// The next INVOCATION: (request, registration, details, args).
async fn invocation(peer: &mut RawPeer) -> (u64, u64, Dict, Vec<Value>) {
    match next(peer, "INVOCATION").await {
        Message::Invocation {
            request,
            registration,
            details,
            payload,
        } => (
            request,
            registration,
            details,
            payload.args().expect("args"),
        ),
        other => panic!("expected INVOCATION, got {other:?}"),
    }
}

async fn yield_(peer: &mut RawPeer, request: u64, options: Dict, args: Vec<Value>) {
    peer.send(Message::Yield {
        request,
        options,
        payload: Payload::from_args(args),
    })
    .await
    .expect("send YIELD");
}

/// The next RESULT for `request`: (details, args).
async fn result(peer: &mut RawPeer, request: u64) -> (Dict, Vec<Value>) {
    match next(peer, "RESULT").await {
        Message::Result {
            request: r,
            details,
            payload,
        } if r == request => (details, payload.args().expect("args")),
        other => panic!("expected RESULT for {request}, got {other:?}"),
    }
}

/// The next message must be ERROR for CALL `request`; returns its URI.
async fn call_error(peer: &mut RawPeer, request: u64) -> String {
    match next(peer, "CALL error").await {
        Message::Error {
            request_type: MessageType::Call,
            request: r,
            error,
            ..
        } if r == request => error,
        other => panic!("expected ERROR for CALL {request}, got {other:?}"),
    }
}

fn flag(details: &Dict, key: &str) -> bool {
    details.get(key).and_then(Value::as_bool) == Some(true)
}

/// A plain round trip through a fresh pair of sessions: the router still serves.
async fn still_serving(router: &TestRouter, t: Transport) {
    let (mut callee, _) = join(router, t, Dict::new()).await;
    let procedure = format!("com.example.alive.{}", rand_suffix());
    register(&mut callee, 1, &procedure, Dict::new()).await;
    let (mut caller, _) = join(router, t, Dict::new()).await;
    call(
        &mut caller,
        1,
        &procedure,
        Dict::new(),
        vec![Value::from(1)],
    )
    .await;
    let (inv, ..) = invocation(&mut callee).await;
    yield_(&mut callee, inv, Dict::new(), vec![Value::from(2)]).await;
    assert_eq!(result(&mut caller, 1).await.1, vec![Value::from(2)]);
}

fn rand_suffix() -> u64 {
    wamp_proto::random_id()
}

#[tokio::test]
async fn welcome_announces_what_the_dealer_does() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let mut peer = connect(&router, t).await;
        peer.send(test_support::msg::hello("realm1"))
            .await
            .expect("hello");
        let Some(Message::Welcome { details, .. }) = peer.recv().await else {
            panic!("no WELCOME");
        };
        let features = details
            .get("roles")
            .and_then(Value::as_dict)
            .and_then(|r| r.get("dealer"))
            .and_then(Value::as_dict)
            .and_then(|d| d.get("features"))
            .and_then(Value::as_dict)
            .expect("dealer features")
            .clone();
        for key in [
            "progressive_call_results",
            "progressive_call_invocations",
            "call_timeout",
            "call_canceling",
            "caller_identification",
            "pattern_based_registration",
            "shared_registration",
            "registration_revocation",
        ] {
            assert!(flag(&features, key), "{t:?}: dealer feature {key}");
        }
    }
}

#[tokio::test]
async fn progressive_results_stream_to_a_caller_that_asked() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        let (mut caller, _) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.stream", Dict::new()).await;
        call(
            &mut caller,
            7,
            "com.example.stream",
            dict! {"receive_progress" => true},
            vec![],
        )
        .await;
        let (inv, _, details, _) = invocation(&mut callee).await;
        assert!(flag(&details, "receive_progress"), "{t:?}: {details:?}");
        for i in 0..3 {
            yield_(
                &mut callee,
                inv,
                dict! {"progress" => true},
                vec![Value::from(i)],
            )
            .await;
        }
        yield_(&mut callee, inv, Dict::new(), vec![Value::from("end")]).await;
        for i in 0..3 {
            let (details, args) = result(&mut caller, 7).await;
            assert!(flag(&details, "progress"), "{t:?}");
            assert_eq!(args, vec![Value::from(i)]);
        }
        let (details, args) = result(&mut caller, 7).await;
        assert!(!flag(&details, "progress"));
        assert_eq!(args, vec![Value::from("end")]);
        // A progressive YIELD after the end is dropped quietly.
        yield_(&mut callee, inv, dict! {"progress" => true}, vec![]).await;
        quiet(&mut caller, "after the final result").await;

        // A callee that does not announce progressive results is not asked for them.
        let (mut plain, _) = join(&router, t, Dict::new()).await;
        register(&mut plain, 1, "com.example.plain", Dict::new()).await;
        call(
            &mut caller,
            8,
            "com.example.plain",
            dict! {"receive_progress" => true},
            vec![],
        )
        .await;
        let (inv, _, details, _) = invocation(&mut plain).await;
        assert!(!details.contains_key("receive_progress"), "{details:?}");
        yield_(&mut plain, inv, Dict::new(), vec![]).await;
        result(&mut caller, 8).await;
    }
}

#[tokio::test]
async fn progress_the_caller_did_not_ask_for_aborts_the_callee() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        let (mut caller, _) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.rogue", Dict::new()).await;
        call(&mut caller, 3, "com.example.rogue", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut callee).await;
        yield_(&mut callee, inv, dict! {"progress" => true}, vec![]).await;
        match next(&mut callee, "ABORT").await {
            Message::Abort { reason, .. } => {
                assert_eq!(reason, "wamp.error.protocol_violation");
            }
            other => panic!("expected ABORT, got {other:?}"),
        }
        callee.expect_closed().await;
        assert_eq!(call_error(&mut caller, 3).await, "wamp.error.canceled");
        still_serving(&router, t).await;
    }
    let stats = router.wait_for_stats(|s| s.pending_calls == 0).await;
    assert_eq!(stats.pending_calls, 0);
}

#[tokio::test]
async fn progressive_invocations_reach_one_callee_in_order() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut a, _) = join(&router, t, all_features()).await;
        let (mut b, _) = join(&router, t, all_features()).await;
        let shared = dict! {"invoke" => "roundrobin"};
        let reg = register(&mut a, 1, "com.example.upload", shared.clone()).await;
        assert_eq!(register(&mut b, 1, "com.example.upload", shared).await, reg);
        let (mut caller, _) = join(&router, t, all_features()).await;
        for i in 0..3 {
            call(
                &mut caller,
                11,
                "com.example.upload",
                dict! {"progress" => true, "receive_progress" => true},
                vec![Value::from(i)],
            )
            .await;
        }
        call(
            &mut caller,
            11,
            "com.example.upload",
            Dict::new(),
            vec![Value::from(3)],
        )
        .await;
        // Every chunk went to `a` (the first in the round), as one invocation.
        let (inv, _, details, args) = invocation(&mut a).await;
        assert!(flag(&details, "progress") && flag(&details, "receive_progress"));
        assert_eq!(args, vec![Value::from(0)]);
        for i in 1..4 {
            let (again, r, details, args) = invocation(&mut a).await;
            assert_eq!((again, r), (inv, reg));
            assert_eq!(flag(&details, "progress"), i < 3, "{t:?} chunk {i}");
            assert_eq!(args, vec![Value::from(i)]);
        }
        quiet(&mut b, "the other callee").await;
        yield_(&mut a, inv, Dict::new(), vec![Value::from("stored")]).await;
        assert_eq!(result(&mut caller, 11).await.1, vec![Value::from("stored")]);

        // A late chunk of the finished call is dropped, not a new call.
        call(
            &mut caller,
            11,
            "com.example.upload",
            dict! {"progress" => true},
            vec![],
        )
        .await;
        quiet(&mut a, "late chunk").await;
        quiet(&mut caller, "late chunk").await;

        // A callee without the feature cannot take a streaming call.
        let (mut plain, _) = join(&router, t, Dict::new()).await;
        register(&mut plain, 1, "com.example.plainupload", Dict::new()).await;
        call(
            &mut caller,
            12,
            "com.example.plainupload",
            dict! {"progress" => true},
            vec![],
        )
        .await;
        assert_eq!(
            call_error(&mut caller, 12).await,
            "wamp.error.feature_not_supported"
        );
        // Its further chunks disappear.
        call(
            &mut caller,
            12,
            "com.example.plainupload",
            Dict::new(),
            vec![],
        )
        .await;
        quiet(&mut plain, "chunks of a refused call").await;

        // A caller that did not announce the feature breaks the protocol.
        let (mut rude, _) = join(&router, t, Dict::new()).await;
        call(
            &mut rude,
            1,
            "com.example.upload",
            dict! {"progress" => true},
            vec![],
        )
        .await;
        assert!(matches!(
            next(&mut rude, "ABORT").await,
            Message::Abort { .. }
        ));
    }
}

#[tokio::test]
async fn call_timeout_ends_the_call_and_interrupts_the_callee() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        let (mut caller, _) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.sleepy", Dict::new()).await;
        let started = Instant::now();
        call(
            &mut caller,
            5,
            "com.example.sleepy",
            dict! {"timeout" => 150u64},
            vec![],
        )
        .await;
        let (inv, _, details, _) = invocation(&mut callee).await;
        assert!(
            !details.contains_key("timeout"),
            "the router runs the timer"
        );
        assert_eq!(call_error(&mut caller, 5).await, "wamp.error.timeout");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(140) && waited < Duration::from_secs(3),
            "{t:?}: {waited:?}"
        );
        match next(&mut callee, "INTERRUPT").await {
            Message::Interrupt { request, options } => {
                assert_eq!(request, inv);
                assert_eq!(options.get("mode"), Some(&Value::from("killnowait")));
                assert_eq!(
                    options.get("reason"),
                    Some(&Value::from("wamp.error.timeout"))
                );
            }
            other => panic!("expected INTERRUPT, got {other:?}"),
        }
        // The late answer is dropped quietly; the callee stays.
        yield_(&mut callee, inv, Dict::new(), vec![]).await;
        quiet(&mut caller, "late YIELD").await;

        // A call that answers in time is not touched by its timer.
        call(
            &mut caller,
            6,
            "com.example.sleepy",
            dict! {"timeout" => 100u64},
            vec![],
        )
        .await;
        let (inv, ..) = invocation(&mut callee).await;
        yield_(&mut callee, inv, Dict::new(), vec![]).await;
        result(&mut caller, 6).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        quiet(&mut caller, "after a timely answer").await;
        quiet(&mut callee, "after a timely answer").await;

        // forward_timeout: the callee gets the timeout and runs it itself.
        let (mut own, _) = join(&router, t, all_features()).await;
        register(
            &mut own,
            1,
            "com.example.owntimer",
            dict! {"forward_timeout" => true},
        )
        .await;
        call(
            &mut caller,
            7,
            "com.example.owntimer",
            dict! {"timeout" => 50u64},
            vec![],
        )
        .await;
        let (inv, _, details, _) = invocation(&mut own).await;
        assert_eq!(details.get("timeout").and_then(Value::as_u64), Some(50));
        tokio::time::sleep(Duration::from_millis(150)).await;
        quiet(&mut caller, "no router timer").await;
        own.send(Message::error(
            MessageType::Invocation,
            inv,
            "wamp.error.timeout",
            Payload::empty(),
        ))
        .await
        .expect("send");
        assert_eq!(call_error(&mut caller, 7).await, "wamp.error.timeout");
    }
    let stats = router.stats();
    assert_eq!(stats.pending_calls, 0);
}

#[tokio::test]
async fn cancel_modes_and_callees_that_cannot_cancel() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        let (mut plain, _) = join(&router, t, Dict::new()).await;
        let (mut caller, _) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.long", Dict::new()).await;
        register(&mut plain, 1, "com.example.plainlong", Dict::new()).await;

        // skip: no INTERRUPT, the caller is answered at once, the result is dropped.
        call(&mut caller, 1, "com.example.long", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut callee).await;
        caller
            .send(Message::Cancel {
                request: 1,
                options: dict! {"mode" => "skip"},
            })
            .await
            .expect("cancel");
        assert_eq!(call_error(&mut caller, 1).await, "wamp.error.canceled");
        quiet(&mut callee, "skip sends no INTERRUPT").await;
        yield_(&mut callee, inv, Dict::new(), vec![]).await;
        quiet(&mut caller, "skipped result").await;

        // killnowait (and the default): INTERRUPT and an answer at once.
        for (request, options) in [(2, dict! {"mode" => "killnowait"}), (3, Dict::new())] {
            call(
                &mut caller,
                request,
                "com.example.long",
                Dict::new(),
                vec![],
            )
            .await;
            let (inv, ..) = invocation(&mut callee).await;
            caller
                .send(Message::Cancel { request, options })
                .await
                .expect("cancel");
            assert_eq!(
                call_error(&mut caller, request).await,
                "wamp.error.canceled"
            );
            match next(&mut callee, "INTERRUPT").await {
                Message::Interrupt {
                    request: r,
                    options,
                } => {
                    assert_eq!(r, inv);
                    assert_eq!(options.get("mode"), Some(&Value::from("killnowait")));
                }
                other => panic!("expected INTERRUPT, got {other:?}"),
            }
            // A second CANCEL, and the late ERROR, change nothing.
            caller
                .send(Message::Cancel {
                    request,
                    options: Dict::new(),
                })
                .await
                .expect("cancel");
            callee
                .send(Message::error(
                    MessageType::Invocation,
                    inv,
                    "wamp.error.canceled",
                    Payload::empty(),
                ))
                .await
                .expect("error");
            quiet(&mut caller, "after killnowait").await;
        }

        // kill: INTERRUPT, and the caller's answer waits for the callee's.
        for answer_with_error in [true, false] {
            let request = if answer_with_error { 4 } else { 5 };
            call(
                &mut caller,
                request,
                "com.example.long",
                Dict::new(),
                vec![],
            )
            .await;
            let (inv, ..) = invocation(&mut callee).await;
            caller
                .send(Message::Cancel {
                    request,
                    options: dict! {"mode" => "kill"},
                })
                .await
                .expect("cancel");
            match next(&mut callee, "INTERRUPT").await {
                Message::Interrupt { options, .. } => {
                    assert_eq!(options.get("mode"), Some(&Value::from("kill")));
                }
                other => panic!("expected INTERRUPT, got {other:?}"),
            }
            quiet(&mut caller, "kill waits for the callee").await;
            if answer_with_error {
                callee
                    .send(Message::error(
                        MessageType::Invocation,
                        inv,
                        "wamp.error.canceled",
                        Payload::empty(),
                    ))
                    .await
                    .expect("error");
            } else {
                // A result that comes anyway still ends the call as canceled.
                yield_(&mut callee, inv, Dict::new(), vec![]).await;
            }
            assert_eq!(
                call_error(&mut caller, request).await,
                "wamp.error.canceled"
            );
            quiet(&mut caller, "exactly one answer").await;
        }

        // A callee that cannot cancel: always skip, never INTERRUPT.
        call(&mut caller, 6, "com.example.plainlong", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut plain).await;
        caller
            .send(Message::Cancel {
                request: 6,
                options: dict! {"mode" => "kill"},
            })
            .await
            .expect("cancel");
        assert_eq!(call_error(&mut caller, 6).await, "wamp.error.canceled");
        quiet(&mut plain, "no INTERRUPT for a callee that cannot cancel").await;
        yield_(&mut plain, inv, Dict::new(), vec![]).await;
        quiet(&mut caller, "skipped result").await;

        // CANCEL of an unknown request is ignored.
        caller
            .send(Message::Cancel {
                request: 999,
                options: Dict::new(),
            })
            .await
            .expect("cancel");
        quiet(&mut caller, "unknown CANCEL").await;
        call(&mut caller, 7, "com.example.long", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut callee).await;
        yield_(&mut callee, inv, Dict::new(), vec![]).await;
        result(&mut caller, 7).await;

        // A caller that leaves mid-call: the callee that can cancel is interrupted.
        call(&mut caller, 8, "com.example.long", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut callee).await;
        caller.close().await.expect("close");
        match next(&mut callee, "INTERRUPT").await {
            Message::Interrupt { request, options } => {
                assert_eq!(request, inv);
                assert_eq!(options.get("mode"), Some(&Value::from("killnowait")));
            }
            other => panic!("expected INTERRUPT, got {other:?}"),
        }
    }
    let stats = router.wait_for_stats(|s| s.pending_calls == 0).await;
    assert_eq!(stats.pending_calls, 0);
}

#[tokio::test]
async fn caller_identity_is_disclosed_on_request() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        let (mut curious, _) = join(&router, t, all_features()).await;
        let (mut caller, caller_id) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.who", Dict::new()).await;
        register(
            &mut curious,
            1,
            "com.example.whoalways",
            dict! {"disclose_caller" => true},
        )
        .await;
        let cases = [
            (1, "com.example.who", Dict::new(), false),
            (2, "com.example.who", dict! {"disclose_me" => true}, true),
            (3, "com.example.whoalways", Dict::new(), true),
        ];
        for (request, procedure, options, disclosed) in cases {
            call(&mut caller, request, procedure, options, vec![]).await;
            let peer = if procedure == "com.example.who" {
                &mut callee
            } else {
                &mut curious
            };
            let (inv, _, details, _) = invocation(peer).await;
            if disclosed {
                assert_eq!(
                    details.get("caller").and_then(Value::as_u64),
                    Some(caller_id)
                );
                assert_eq!(
                    details.get("caller_authid").and_then(Value::as_str),
                    Some(format!("anonymous-{caller_id}").as_str())
                );
                assert_eq!(
                    details.get("caller_authrole").and_then(Value::as_str),
                    Some("anonymous")
                );
            } else {
                for key in ["caller", "caller_authid", "caller_authrole"] {
                    assert!(!details.contains_key(key), "{t:?}: {details:?}");
                }
            }
            yield_(peer, inv, Dict::new(), vec![]).await;
            result(&mut caller, request).await;
        }
    }

    // A realm configured to disclose always.
    let router = TestRouter::start_with(|c| c.realms[0].disclose_caller = true).await;
    let (mut callee, _) = join(&router, Transport::RawSocket, Dict::new()).await;
    let (mut caller, caller_id) = join(&router, Transport::WebSocket, Dict::new()).await;
    register(&mut callee, 1, "com.example.who", Dict::new()).await;
    call(&mut caller, 1, "com.example.who", Dict::new(), vec![]).await;
    let (_, _, details, _) = invocation(&mut callee).await;
    assert_eq!(
        details.get("caller").and_then(Value::as_u64),
        Some(caller_id)
    );
}

#[tokio::test]
async fn pattern_registrations_follow_the_spec_precedence() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut exact, _) = join(&router, t, all_features()).await;
        let (mut short, _) = join(&router, t, all_features()).await;
        let (mut long, _) = join(&router, t, all_features()).await;
        let (mut wild_early, _) = join(&router, t, all_features()).await;
        let (mut wild_late, _) = join(&router, t, all_features()).await;
        let r_exact = register(&mut exact, 1, "com.app.obj1.get", Dict::new()).await;
        let r_short = register(&mut short, 1, "com.app.", dict! {"match" => "prefix"}).await;
        let r_long = register(&mut long, 1, "com.app.obj1", dict! {"match" => "prefix"}).await;
        let r_early = register(
            &mut wild_early,
            1,
            "org.a.b..e",
            dict! {"match" => "wildcard"},
        )
        .await;
        let r_late = register(
            &mut wild_late,
            1,
            "org.a..d.e",
            dict! {"match" => "wildcard"},
        )
        .await;

        let (mut caller, _) = join(&router, t, Dict::new()).await;
        let table: [(&str, usize, u64, bool); 7] = [
            ("com.app.obj1.get", 0, r_exact, false),
            ("com.app.obj1.set", 2, r_long, true),
            ("com.app.obj1-sub.get", 2, r_long, true),
            ("com.app.obj2.get", 1, r_short, true),
            ("org.a.b.d.e", 3, r_early, true),
            ("org.a.x.d.e", 4, r_late, true),
            ("org.a.b.d.e.f", 9, 0, false),
        ];
        let peers = [
            &mut exact,
            &mut short,
            &mut long,
            &mut wild_early,
            &mut wild_late,
        ];
        for (i, (procedure, who, registration, pattern)) in table.into_iter().enumerate() {
            let request = i as u64 + 1;
            call(&mut caller, request, procedure, Dict::new(), vec![]).await;
            if who == 9 {
                assert_eq!(
                    call_error(&mut caller, request).await,
                    "wamp.error.no_such_procedure"
                );
                continue;
            }
            let peer = &mut *peers[who];
            let (inv, reg, details, _) = invocation(peer).await;
            assert_eq!(reg, registration, "{t:?}: {procedure}");
            if pattern {
                assert_eq!(
                    details.get("procedure").and_then(Value::as_str),
                    Some(procedure)
                );
            } else {
                assert!(!details.contains_key("procedure"));
            }
            yield_(peer, inv, Dict::new(), vec![]).await;
            result(&mut caller, request).await;
        }

        // Unknown policy → invalid_argument; a bad pattern → invalid_uri; the same
        // pattern under another policy is another registration.
        assert_eq!(
            register_error(&mut caller, 10, "com.app", dict! {"match" => "regex"}).await,
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            register_error(&mut caller, 11, "com..app", dict! {"match" => "prefix"}).await,
            "wamp.error.invalid_uri"
        );
        assert_eq!(
            register_error(&mut caller, 12, "com.app.", dict! {"match" => "prefix"}).await,
            "wamp.error.procedure_already_exists"
        );
        register(&mut caller, 13, "com.app.obj1", Dict::new()).await;
    }
    drop(router);
}

#[tokio::test]
async fn shared_registrations_pick_callees_by_policy() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let mut callees = Vec::new();
        for _ in 0..3 {
            callees.push(join(&router, t, all_features()).await.0);
        }
        let rr = dict! {"invoke" => "roundrobin"};
        let mut reg = 0;
        for c in &mut callees {
            reg = register(c, 1, "com.example.rr", rr.clone()).await;
        }
        let (mut caller, _) = join(&router, t, Dict::new()).await;
        for i in 0..6u64 {
            call(&mut caller, i + 1, "com.example.rr", Dict::new(), vec![]).await;
            let c = &mut callees[(i % 3) as usize];
            let (inv, r, ..) = invocation(c).await;
            assert_eq!(r, reg);
            yield_(c, inv, Dict::new(), vec![]).await;
            result(&mut caller, i + 1).await;
        }
        // Refusals.
        let (mut other, _) = join(&router, t, Dict::new()).await;
        assert_eq!(
            register_error(
                &mut other,
                1,
                "com.example.rr",
                dict! {"invoke" => "random"}
            )
            .await,
            "wamp.error.procedure_exists_with_different_invocation_policy"
        );
        // `single` (the default) against a shared registration is a policy conflict.
        assert_eq!(
            register_error(&mut other, 2, "com.example.rr", Dict::new()).await,
            "wamp.error.procedure_exists_with_different_invocation_policy"
        );
        assert_eq!(
            register_error(
                &mut other,
                3,
                "com.example.x",
                dict! {"invoke" => "sometimes"}
            )
            .await,
            "wamp.error.invalid_argument"
        );
        register(&mut other, 4, "com.example.single", Dict::new()).await;
        assert_eq!(
            register_error(
                &mut callees[0],
                5,
                "com.example.single",
                dict! {"invoke" => "roundrobin"}
            )
            .await,
            "wamp.error.procedure_already_exists"
        );

        // first / last: the earliest / latest callee still registered.
        for (policy, expect) in [("first", 0usize), ("last", 2usize)] {
            let procedure = format!("com.example.{policy}");
            for c in &mut callees {
                register(c, 9, &procedure, dict! {"invoke" => policy}).await;
            }
            for request in [20, 21] {
                call(&mut caller, request, &procedure, Dict::new(), vec![]).await;
                let c = &mut callees[expect];
                let (inv, ..) = invocation(c).await;
                yield_(c, inv, Dict::new(), vec![]).await;
                result(&mut caller, request).await;
            }
        }

        // random: every call reaches one of them.
        for c in &mut callees {
            register(c, 10, "com.example.random", dict! {"invoke" => "random"}).await;
        }
        call(&mut caller, 30, "com.example.random", Dict::new(), vec![]).await;
        let mut answered = false;
        for c in &mut callees {
            if let Some(Message::Invocation { request, .. }) =
                c.recv_timeout(Duration::from_millis(200)).await
            {
                yield_(c, request, Dict::new(), vec![]).await;
                answered = true;
            }
        }
        assert!(answered);
        result(&mut caller, 30).await;

        // A callee leaving mid-call ends only its own calls.
        call(&mut caller, 40, "com.example.rr", Dict::new(), vec![]).await;
        call(&mut caller, 41, "com.example.rr", Dict::new(), vec![]).await;
        let (inv0, ..) = invocation(&mut callees[0]).await;
        let (_inv1, ..) = invocation(&mut callees[1]).await;
        let mut leaving = callees.remove(1);
        leaving.close().await.expect("close");
        assert_eq!(call_error(&mut caller, 41).await, "wamp.error.canceled");
        yield_(&mut callees[0], inv0, Dict::new(), vec![]).await;
        result(&mut caller, 40).await;
        // The registration lives on with the others, and goes with the last.
        call(&mut caller, 42, "com.example.rr", Dict::new(), vec![]).await;
        let mut served = false;
        for c in &mut callees {
            if let Some(Message::Invocation { request, .. }) =
                c.recv_timeout(Duration::from_millis(200)).await
            {
                yield_(c, request, Dict::new(), vec![]).await;
                served = true;
            }
        }
        assert!(served);
        result(&mut caller, 42).await;
        for mut c in callees {
            c.close().await.expect("close");
        }
        other.close().await.expect("close");
    }
    let stats = router
        .wait_for_stats(|s| s.registrations == 0 && s.pending_calls == 0)
        .await;
    assert_eq!((stats.registrations, stats.pending_calls), (0, 0));
}

#[tokio::test]
async fn concurrency_bounds_each_callee_of_a_shared_registration() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut a, _) = join(&router, t, Dict::new()).await;
        let (mut b, _) = join(&router, t, Dict::new()).await;
        let options = dict! {"invoke" => "roundrobin", "concurrency" => 1u64};
        register(&mut a, 1, "com.example.narrow", options.clone()).await;
        register(&mut b, 1, "com.example.narrow", options).await;
        let (mut caller, _) = join(&router, t, Dict::new()).await;
        call(&mut caller, 1, "com.example.narrow", Dict::new(), vec![]).await;
        call(&mut caller, 2, "com.example.narrow", Dict::new(), vec![]).await;
        let (ia, ..) = invocation(&mut a).await;
        let (ib, ..) = invocation(&mut b).await;
        call(&mut caller, 3, "com.example.narrow", Dict::new(), vec![]).await;
        assert_eq!(
            call_error(&mut caller, 3).await,
            "crossbar.error.max_concurrency_reached"
        );
        yield_(&mut b, ib, Dict::new(), vec![]).await;
        result(&mut caller, 2).await;
        // b has room again; a is still busy.
        call(&mut caller, 4, "com.example.narrow", Dict::new(), vec![]).await;
        let (ib, ..) = invocation(&mut b).await;
        yield_(&mut b, ib, Dict::new(), vec![]).await;
        result(&mut caller, 4).await;
        yield_(&mut a, ia, Dict::new(), vec![]).await;
        result(&mut caller, 1).await;
    }
}

#[tokio::test]
async fn force_reregister_revokes_and_tells_callees_that_asked() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut told, _) = join(&router, t, all_features()).await;
        let (mut untold, _) = join(&router, t, Dict::new()).await;
        let rr = dict! {"invoke" => "roundrobin"};
        let old = register(&mut told, 1, "com.example.takeover", rr.clone()).await;
        register(&mut untold, 1, "com.example.takeover", rr).await;
        // A call in flight on the old registration survives the takeover.
        let (mut caller, _) = join(&router, t, Dict::new()).await;
        call(&mut caller, 1, "com.example.takeover", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut told).await;

        let (mut usurper, _) = join(&router, t, Dict::new()).await;
        let new = register(
            &mut usurper,
            1,
            "com.example.takeover",
            dict! {"force_reregister" => true},
        )
        .await;
        assert_ne!(new, old);
        match next(&mut told, "revocation").await {
            Message::Unregistered {
                request: 0,
                details: Some(details),
            } => {
                assert_eq!(
                    details.get("registration").and_then(Value::as_u64),
                    Some(old)
                );
                assert_eq!(
                    details.get("reason").and_then(Value::as_str),
                    Some("wamp.error.unregistered")
                );
            }
            other => panic!("expected UNREGISTERED, got {other:?}"),
        }
        quiet(&mut untold, "no revocation without the feature").await;
        yield_(&mut told, inv, Dict::new(), vec![]).await;
        result(&mut caller, 1).await;
        // New calls go to the new registrant; the old one cannot unregister any more.
        call(&mut caller, 2, "com.example.takeover", Dict::new(), vec![]).await;
        let (inv, reg, ..) = invocation(&mut usurper).await;
        assert_eq!(reg, new);
        yield_(&mut usurper, inv, Dict::new(), vec![]).await;
        result(&mut caller, 2).await;
        told.send(Message::Unregister {
            request: 2,
            registration: old,
            options: Dict::new(),
        })
        .await
        .expect("send");
        match next(&mut told, "UNREGISTER error").await {
            Message::Error { error, .. } => assert_eq!(error, "wamp.error.no_such_registration"),
            other => panic!("expected ERROR, got {other:?}"),
        }
        usurper.close().await.expect("close");
    }
    // The realm-level API the meta API will use.
    let (mut callee, session) = join(&router, Transport::WebSocket, all_features()).await;
    let reg = register(&mut callee, 1, "com.example.removed", Dict::new()).await;
    let realm = router.server.router().realm("realm1").expect("realm");
    assert_eq!(
        realm.revoke_registration(reg, Some(session), "wamp.error.removed"),
        1
    );
    match next(&mut callee, "revocation").await {
        Message::Unregistered {
            request: 0,
            details: Some(d),
        } => {
            assert_eq!(
                d.get("reason").and_then(Value::as_str),
                Some("wamp.error.removed")
            );
        }
        other => panic!("expected UNREGISTERED, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_answers_are_dropped_and_everyone_else_is_served() {
    let router = TestRouter::start().await;
    for t in TRANSPORTS {
        let (mut callee, _) = join(&router, t, all_features()).await;
        register(&mut callee, 1, "com.example.fine", Dict::new()).await;
        // Answers to invocations that never existed.
        yield_(&mut callee, 12345, Dict::new(), vec![]).await;
        yield_(&mut callee, 12346, dict! {"progress" => true}, vec![]).await;
        callee
            .send(Message::error(
                MessageType::Invocation,
                12347,
                "com.example.error",
                Payload::empty(),
            ))
            .await
            .expect("send");
        quiet(&mut callee, "bogus answers are dropped").await;
        let (mut caller, _) = join(&router, t, Dict::new()).await;
        call(&mut caller, 1, "com.example.fine", Dict::new(), vec![]).await;
        let (inv, ..) = invocation(&mut callee).await;
        yield_(&mut callee, inv, Dict::new(), vec![Value::from("ok")]).await;
        assert_eq!(result(&mut caller, 1).await.1, vec![Value::from("ok")]);
        still_serving(&router, t).await;
    }
}
