//! Advanced Profile RPC in the client against a scripted fake router (test-support's
//! server-side raw peer over RawSocket): progressive results and invocations, call
//! timeout and canceling, interrupts, caller identification, registration options
//! and revocation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use test_support::RawPeer;
use tokio::net::TcpListener;
use wamp_client::{
    dict, CallEvent, CallOptions, CancelMode, Dict, Error, InterruptMode, InvokePolicy,
    MatchPolicy, Message, MessageType, Payload, RegisterOptions, Registration, Session, Value,
};

const REALM: &str = "realm1";

/// Every dealer feature the client can use.
const DEALER_FEATURES: &[&str] = &[
    "progressive_call_results",
    "progressive_call_invocations",
    "call_timeout",
    "call_canceling",
    "caller_identification",
    "pattern_based_registration",
    "shared_registration",
    "registration_revocation",
];

/// A client session joined to a fake router whose dealer announces `features`.
async fn establish_with(features: &[&str]) -> (Session, RawPeer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("rs://{}", listener.local_addr().expect("addr"));
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let (tcp, _) = listener.accept().await.expect("accept");
    let mut router = RawPeer::accept_rawsocket(tcp, 16 << 20)
        .await
        .expect("rawsocket accept");
    assert!(matches!(recv(&mut router).await, Message::Hello { .. }));
    let dealer_features: Dict = features
        .iter()
        .map(|f| ((*f).to_owned(), Value::from(true)))
        .collect();
    let roles = dict! {
        "broker" => dict! {"features" => Dict::new()},
        "dealer" => dict! {"features" => dealer_features},
    };
    router
        .send(Message::Welcome {
            session: 4242,
            details: dict! {"roles" => roles},
        })
        .await
        .expect("send WELCOME");
    let session = client.await.expect("join").expect("connect");
    (session, router)
}

async fn establish() -> (Session, RawPeer) {
    establish_with(DEALER_FEATURES).await
}

async fn recv(router: &mut RawPeer) -> Message {
    match router.recv().await {
        Some(m) => m,
        None => panic!("the client sent nothing"),
    }
}

/// Asserts that the client sends nothing for a little while.
async fn assert_silent(router: &mut RawPeer) {
    if let Some(m) = router.recv_timeout(Duration::from_millis(150)).await {
        panic!("expected nothing, got {m:?}");
    }
}

fn args(n: i64) -> Payload {
    Payload::from_args(vec![Value::from(n)])
}

fn result_msg(request: u64, progress: bool, n: i64) -> Message {
    let details = if progress {
        dict! {"progress" => true}
    } else {
        Dict::new()
    };
    Message::Result {
        request,
        details,
        payload: args(n),
    }
}

fn canceled(request: u64) -> Message {
    Message::error(
        MessageType::Call,
        request,
        "wamp.error.canceled",
        Payload::empty(),
    )
}

/// Expects CALL and returns (request, options, procedure, payload).
async fn expect_call(router: &mut RawPeer) -> (u64, Dict, String, Payload) {
    match recv(router).await {
        Message::Call {
            request,
            options,
            procedure,
            payload,
        } => (request, options, procedure, payload),
        other => panic!("expected CALL, got {other:?}"),
    }
}

async fn expect_cancel(router: &mut RawPeer) -> (u64, Dict) {
    match recv(router).await {
        Message::Cancel { request, options } => (request, options),
        other => panic!("expected CANCEL, got {other:?}"),
    }
}

/// Answers the next CALL with RESULT echoing its payload and checks its request id.
async fn echo_call(router: &mut RawPeer, expected_request: u64) {
    let (request, _, _, payload) = expect_call(router).await;
    assert_eq!(request, expected_request);
    router
        .send(Message::Result {
            request,
            details: Dict::new(),
            payload,
        })
        .await
        .expect("send RESULT");
}

/// A plain call must still work with request id `expected` (nothing leaked, late
/// answers ignored).
async fn check_next_call(session: &Session, router: &mut RawPeer, expected: u64) {
    let call = session.call("com.example.echo", vec![Value::from(1)], Dict::new());
    let (result, ()) = tokio::join!(call, echo_call(router, expected));
    assert_eq!(result.expect("call").args, vec![Value::from(1)]);
}

#[tokio::test]
async fn progressive_results_arrive_in_order_then_the_final() {
    let (session, mut router) = establish().await;
    let options = CallOptions::new()
        .timeout(Duration::from_millis(2500))
        .disclose_me(true);
    let start = session.call_progressive("com.example.count", args(3), options);
    let (call, (request, options, procedure, _)) = tokio::join!(start, expect_call(&mut router));
    let mut call = call.expect("call");
    assert_eq!(request, 1);
    assert_eq!(call.request_id(), 1);
    assert_eq!(procedure, "com.example.count");
    assert_eq!(
        options,
        dict! {"receive_progress" => true, "timeout" => 2500u64, "disclose_me" => true}
    );
    for n in 0..3 {
        router.send(result_msg(1, true, n)).await.expect("send");
    }
    router.send(result_msg(1, false, 99)).await.expect("send");
    for n in 0..3 {
        match call.next().await {
            Some(Ok(CallEvent::Progress(r))) => {
                assert_eq!(r.args, vec![Value::from(n)]);
                assert_eq!(r.details, dict! {"progress" => true});
            }
            other => panic!("expected progress {n}, got {other:?}"),
        }
    }
    match call.next().await {
        Some(Ok(event @ CallEvent::Final(_))) => {
            assert!(event.is_final());
            assert_eq!(event.result().args, vec![Value::from(99)]);
        }
        other => panic!("expected the final result, got {other:?}"),
    }
    assert!(call.next().await.is_none());
    assert!(call.is_done());

    // An ERROR after progress ends the stream too; `result` skips progress.
    let start = session.call_progressive("com.example.count", Payload::empty(), CallOptions::new());
    let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    let call = call.expect("call");
    router
        .send(result_msg(request, true, 1))
        .await
        .expect("send");
    router
        .send(Message::error(
            MessageType::Call,
            request,
            "com.example.failed",
            Payload::from_args(vec![Value::from("late")]),
        ))
        .await
        .expect("send");
    let err = call.result().await.expect_err("error");
    assert_eq!(err.uri(), Some("com.example.failed"));

    // A stream can also be read as a futures Stream.
    use futures_util::StreamExt;
    let start = session.call_progressive("com.example.count", Payload::empty(), CallOptions::new());
    let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    router
        .send(result_msg(request, true, 1))
        .await
        .expect("send");
    router
        .send(result_msg(request, false, 2))
        .await
        .expect("send");
    let items: Vec<_> = call.expect("call").collect().await;
    assert_eq!(items.len(), 2);
    check_next_call(&session, &mut router, request + 1).await;
}

#[tokio::test]
async fn call_with_skips_progress_and_reports_timeout() {
    let (session, mut router) = establish().await;
    // `call_with` with receive_progress set: progress is skipped.
    let call = session.call_with(
        "com.example.p",
        Payload::empty(),
        CallOptions::new().receive_progress(true),
    );
    let script = async {
        let (request, options, ..) = expect_call(&mut router).await;
        assert_eq!(options, dict! {"receive_progress" => true});
        router
            .send(result_msg(request, true, 1))
            .await
            .expect("send");
        router
            .send(result_msg(request, false, 2))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(call, script);
    assert_eq!(result.expect("call").args, vec![Value::from(2)]);

    // Timeout in milliseconds; the dealer's wamp.error.timeout is Error::Wamp.
    let call = session.call_with(
        "com.example.slow",
        Payload::empty(),
        CallOptions::new().timeout(Duration::from_micros(100_500)),
    );
    let script = async {
        let (request, options, ..) = expect_call(&mut router).await;
        assert_eq!(
            options,
            dict! {"timeout" => 101u64},
            "rounded up to whole ms"
        );
        router
            .send(Message::error(
                MessageType::Call,
                request,
                "wamp.error.timeout",
                Payload::empty(),
            ))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(call, script);
    let err = result.expect_err("timeout");
    assert!(matches!(&err, Error::Wamp { uri, .. } if uri == "wamp.error.timeout"));
    assert!(err.is_timeout());
    assert!(!err.is_canceled());
    // A zero timeout sends no option; Dict options keep working.
    assert!(CallOptions::new()
        .timeout(Duration::ZERO)
        .as_dict()
        .is_empty());
    let call = session.call_with(
        "com.example.echo",
        Payload::empty(),
        dict! {"x_custom" => 1},
    );
    let script = async {
        let (request, options, ..) = expect_call(&mut router).await;
        assert_eq!(options, dict! {"x_custom" => 1});
        router
            .send(result_msg(request, false, 0))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(call, script);
    result.expect("call");
}

#[tokio::test]
async fn progressive_result_for_a_plain_call_aborts_the_session() {
    let (session, mut router) = establish().await;
    let call = session.call("com.example.p", vec![], Dict::new());
    let script = async {
        let (request, ..) = expect_call(&mut router).await;
        router
            .send(result_msg(request, true, 1))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(call, script);
    match result {
        Err(Error::Abort { reason, message }) => {
            assert_eq!(reason, "wamp.error.protocol_violation");
            assert!(message.unwrap_or_default().contains("progressive"));
        }
        other => panic!("expected the protocol violation, got {other:?}"),
    }
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(session.is_closed());
}

#[tokio::test]
async fn cancel_sends_each_mode_and_ends_the_call() {
    let (session, mut router) = establish().await;
    let mut next_request = 1;
    for mode in [CancelMode::Skip, CancelMode::KillNoWait, CancelMode::Kill] {
        let start =
            session.call_progressive("com.example.slow", Payload::empty(), CallOptions::new());
        let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
        let mut call = call.expect("call");
        assert_eq!(request, next_request);
        router
            .send(result_msg(request, true, 1))
            .await
            .expect("send");
        assert!(matches!(
            call.next().await,
            Some(Ok(CallEvent::Progress(_)))
        ));
        call.cancel(mode).await.expect("cancel");
        let (cancel_request, options) = expect_cancel(&mut router).await;
        assert_eq!(cancel_request, request);
        assert_eq!(options, dict! {"mode" => mode.as_str()});
        match mode {
            CancelMode::Kill => {
                // The call waits for the callee's answer, passed on by the dealer.
                router
                    .send(result_msg(request, true, 2))
                    .await
                    .expect("send");
                assert!(matches!(
                    call.next().await,
                    Some(Ok(CallEvent::Progress(_)))
                ));
                router.send(canceled(request)).await.expect("send");
                let err = call.next().await.expect("item").expect_err("canceled");
                assert!(err.is_canceled());
            }
            _ => {
                // Over at once; the dealer's ERROR comes later and is ignored.
                let err = call.next().await.expect("item").expect_err("canceled");
                assert!(err.is_canceled());
                router.send(canceled(request)).await.expect("send");
            }
        }
        assert!(call.next().await.is_none());
        // A second cancel and dropping the ended call send nothing.
        call.cancel(CancelMode::Kill).await.expect("cancel again");
        drop(call);
        check_next_call(&session, &mut router, request + 1).await;
        next_request = request + 2;
    }
    assert_silent(&mut router).await;
}

#[tokio::test]
async fn dropping_an_unfinished_call_sends_cancel_killnowait() {
    let (session, mut router) = establish().await;
    // A `call` future given up on.
    let timed_out = tokio::time::timeout(
        Duration::from_millis(100),
        session.call("com.example.slow", vec![], Dict::new()),
    )
    .await;
    assert!(timed_out.is_err());
    let (request, ..) = expect_call(&mut router).await;
    assert_eq!(
        expect_cancel(&mut router).await,
        (1, dict! {"mode" => "killnowait"})
    );
    // The dealer's answer to the cancel is ignored.
    router.send(canceled(request)).await.expect("send");

    // A progressive stream dropped after some progress.
    let start = session.call_progressive("com.example.slow", Payload::empty(), CallOptions::new());
    let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    let mut call = call.expect("call");
    assert_eq!(request, 2);
    router
        .send(result_msg(request, true, 1))
        .await
        .expect("send");
    assert!(call.next().await.is_some());
    drop(call);
    assert_eq!(
        expect_cancel(&mut router).await,
        (2, dict! {"mode" => "killnowait"})
    );
    router
        .send(result_msg(request, true, 2))
        .await
        .expect("send");
    router.send(canceled(request)).await.expect("send");

    // A Kill cancel already sent: dropping sends no second CANCEL.
    let start = session.start_call("com.example.slow", Payload::empty(), CallOptions::new());
    let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    let mut call = call.expect("call");
    call.cancel(CancelMode::Kill).await.expect("cancel");
    assert_eq!(
        expect_cancel(&mut router).await,
        (request, dict! {"mode" => "kill"})
    );
    drop(call);
    check_next_call(&session, &mut router, request + 1).await;
    assert_silent(&mut router).await;
}

#[tokio::test]
async fn without_call_canceling_nothing_is_canceled_on_the_wire() {
    let (session, mut router) = establish_with(&[]).await;
    assert!(!session.dealer_supports("call_canceling"));
    let start = session.start_call("com.example.slow", Payload::empty(), CallOptions::new());
    let (call, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    let mut call = call.expect("call");
    assert!(matches!(
        call.cancel(CancelMode::Kill).await,
        Err(Error::Unsupported(_))
    ));
    drop(call);
    // Forgotten locally only: the next message is the next CALL.
    router
        .send(result_msg(request, false, 0))
        .await
        .expect("send");
    check_next_call(&session, &mut router, request + 1).await;
    // Progressive call invocations need the dealer's feature too.
    assert!(matches!(
        session
            .start_progressive_call("com.example.upload", Payload::empty(), CallOptions::new())
            .await,
        Err(Error::Unsupported(_))
    ));
    assert_silent(&mut router).await;
}

#[tokio::test]
async fn progressive_call_invocations_reuse_the_request_id() {
    let (session, mut router) = establish().await;
    assert!(session.dealer_supports("progressive_call_invocations"));
    let start = session.start_progressive_call(
        "com.example.upload",
        args(0),
        CallOptions::new().receive_progress(true).disclose_me(true),
    );
    let (upload, (request, options, procedure, payload)) =
        tokio::join!(start, expect_call(&mut router));
    let mut upload = upload.expect("start");
    assert_eq!(request, 1);
    assert_eq!(upload.request_id(), 1);
    assert_eq!(procedure, "com.example.upload");
    assert_eq!(
        options,
        dict! {"progress" => true, "receive_progress" => true, "disclose_me" => true}
    );
    assert_eq!(payload.args().expect("args"), vec![Value::from(0)]);
    // Two-way streaming: a progressive result arrives while chunks go out.
    router.send(result_msg(1, true, 10)).await.expect("send");
    match upload.next().await {
        Some(Ok(CallEvent::Progress(r))) => assert_eq!(r.args, vec![Value::from(10)]),
        other => panic!("expected progress, got {other:?}"),
    }
    for n in 1..3 {
        upload
            .send(vec![Value::from(n)], Dict::new())
            .await
            .expect("send chunk");
        let (request, options, procedure, payload) = expect_call(&mut router).await;
        assert_eq!((request, procedure.as_str()), (1, "com.example.upload"));
        assert_eq!(options, dict! {"progress" => true});
        assert_eq!(payload.args().expect("args"), vec![Value::from(n)]);
    }
    let mut results = upload
        .finish(vec![Value::from(3)], Dict::new())
        .await
        .expect("finish");
    let (request, options, _, payload) = expect_call(&mut router).await;
    assert_eq!(request, 1);
    assert!(
        options.is_empty(),
        "the last chunk has no progress: {options:?}"
    );
    assert_eq!(payload.args().expect("args"), vec![Value::from(3)]);
    router.send(result_msg(1, false, 6)).await.expect("send");
    match results.next().await {
        Some(Ok(CallEvent::Final(r))) => assert_eq!(r.args, vec![Value::from(6)]),
        other => panic!("expected the final result, got {other:?}"),
    }
    // The next new call gets the next id.
    check_next_call(&session, &mut router, 2).await;

    // A progressive call that fails early: further chunks are not sent.
    let start = session.start_progressive_call("com.example.upload", args(0), CallOptions::new());
    let (upload, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    let mut upload = upload.expect("start");
    router
        .send(Message::error(
            MessageType::Call,
            request,
            "wamp.error.feature_not_supported",
            Payload::empty(),
        ))
        .await
        .expect("send");
    let err = upload.next().await.expect("item").expect_err("error");
    assert_eq!(err.uri(), Some("wamp.error.feature_not_supported"));
    upload
        .send(vec![], Dict::new())
        .await
        .expect("dropped chunk");
    assert_silent(&mut router).await;

    // Dropped before finishing: CANCEL killnowait.
    let start = session.start_progressive_call("com.example.upload", args(0), CallOptions::new());
    let (upload, (request, ..)) = tokio::join!(start, expect_call(&mut router));
    drop(upload.expect("start"));
    assert_eq!(
        expect_cancel(&mut router).await,
        (request, dict! {"mode" => "killnowait"})
    );
}

/// Registers `procedure` with `options`; returns the registration and the REGISTER
/// options seen on the wire.
async fn register(
    session: &Session,
    router: &mut RawPeer,
    procedure: &str,
    options: impl Into<RegisterOptions>,
    id: u64,
) -> (Registration, Dict) {
    let register = session.register_with(procedure, options);
    let script = async {
        let Message::Register {
            request,
            options,
            procedure: p,
        } = recv(router).await
        else {
            panic!("expected REGISTER");
        };
        assert_eq!(p, procedure);
        router
            .send(Message::Registered {
                request,
                registration: id,
            })
            .await
            .expect("send");
        options
    };
    let (registration, options) = tokio::join!(register, script);
    (registration.expect("registered"), options)
}

fn invocation(request: u64, registration: u64, details: Dict, payload: Payload) -> Message {
    Message::Invocation {
        request,
        registration,
        details,
        payload,
    }
}

async fn expect_yield(router: &mut RawPeer) -> (u64, Dict, Payload) {
    match recv(router).await {
        Message::Yield {
            request,
            options,
            payload,
        } => (request, options, payload),
        other => panic!("expected YIELD, got {other:?}"),
    }
}

async fn expect_invocation_error(router: &mut RawPeer) -> (u64, String) {
    match recv(router).await {
        Message::Error {
            request_type,
            request,
            error,
            ..
        } => {
            assert_eq!(request_type, MessageType::Invocation);
            (request, error)
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn register_options_go_on_the_wire() {
    let (session, mut router) = establish().await;
    let options = RegisterOptions::new()
        .match_policy(MatchPolicy::Wildcard)
        .invoke(InvokePolicy::RoundRobin)
        .concurrency(2)
        .disclose_caller(true)
        .force_reregister(true)
        .forward_timeout(true)
        .option("x_custom", "v");
    let (_registration, wire) = register(&session, &mut router, "com..get", options, 1).await;
    assert_eq!(
        wire,
        dict! {
            "match" => "wildcard",
            "invoke" => "roundrobin",
            "concurrency" => 2u64,
            "disclose_caller" => true,
            "force_reregister" => true,
            "forward_timeout" => true,
            "x_custom" => "v",
        }
    );
    for (policy, name) in [
        (InvokePolicy::Single, "single"),
        (InvokePolicy::Random, "random"),
        (InvokePolicy::First, "first"),
        (InvokePolicy::Last, "last"),
    ] {
        assert_eq!(
            RegisterOptions::new().invoke(policy).into_dict(),
            dict! {"invoke" => name}
        );
    }
    assert_eq!(
        Dict::from(RegisterOptions::new().match_policy(MatchPolicy::Prefix)),
        dict! {"match" => "prefix"}
    );
    assert_eq!(MatchPolicy::Exact.as_str(), "exact");
    // A plain Dict still works.
    let (_registration, wire) = register(
        &session,
        &mut router,
        "com.x",
        dict! {"invoke" => "last"},
        2,
    )
    .await;
    assert_eq!(wire, dict! {"invoke" => "last"});
}

#[tokio::test]
async fn invocation_exposes_caller_identity_and_procedure() {
    let (session, mut router) = establish().await;
    let (mut registration, _) = register(
        &session,
        &mut router,
        "com.example.",
        RegisterOptions::new().match_policy(MatchPolicy::Prefix),
        7,
    )
    .await;
    let details = dict! {
        "caller" => 99u64,
        "caller_authid" => "alice",
        "caller_authrole" => "admin",
        "procedure" => "com.example.thing.get",
        "timeout" => 1500u64,
    };
    router
        .send(invocation(1, 7, details, Payload::empty()))
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    assert_eq!(inv.caller(), Some(99));
    assert_eq!(inv.caller_authid(), Some("alice"));
    assert_eq!(inv.caller_authrole(), Some("admin"));
    assert_eq!(inv.procedure(), Some("com.example.thing.get"));
    assert_eq!(inv.timeout(), Some(Duration::from_millis(1500)));
    assert!(!inv.receive_progress());
    assert!(!inv.is_progressive());
    assert_eq!(inv.interrupt(), None);
    inv.yield_result(vec![], Dict::new()).await.expect("yield");
    expect_yield(&mut router).await;
    // Without disclosure there is nothing to read.
    router
        .send(invocation(2, 7, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    assert_eq!(
        (inv.caller(), inv.caller_authid(), inv.caller_authrole()),
        (None, None, None)
    );
    assert_eq!((inv.procedure(), inv.timeout()), (None, None));
}

#[tokio::test]
async fn callee_progressive_results_only_when_the_caller_asked() {
    let (session, mut router) = establish().await;
    let (mut registration, _) = register(
        &session,
        &mut router,
        "com.example.count",
        RegisterOptions::new(),
        3,
    )
    .await;
    router
        .send(invocation(
            10,
            3,
            dict! {"receive_progress" => true},
            Payload::empty(),
        ))
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    assert!(inv.receive_progress());
    for n in 0..2 {
        inv.progress(vec![Value::from(n)], Dict::new())
            .await
            .expect("progress");
        let (request, options, payload) = expect_yield(&mut router).await;
        assert_eq!(request, 10);
        assert_eq!(options, dict! {"progress" => true});
        assert_eq!(payload.args().expect("args"), vec![Value::from(n)]);
    }
    inv.yield_result(vec![Value::from(2)], Dict::new())
        .await
        .expect("yield");
    let (request, options, _) = expect_yield(&mut router).await;
    assert_eq!(request, 10);
    assert!(options.is_empty());

    // The caller did not ask: progress fails and sends nothing.
    router
        .send(invocation(11, 3, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    assert!(matches!(
        inv.progress(vec![], Dict::new()).await,
        Err(Error::Unsupported(_))
    ));
    inv.yield_result(vec![], Dict::new()).await.expect("yield");
    let (request, options, _) = expect_yield(&mut router).await;
    assert_eq!((request, options), (11, Dict::new()));
}

#[tokio::test]
async fn progressive_invocation_chunks_are_routed_by_request_id() {
    let (session, mut router) = establish().await;
    let (mut registration, _) = register(
        &session,
        &mut router,
        "com.example.upload",
        RegisterOptions::new(),
        5,
    )
    .await;
    let progress = || dict! {"progress" => true, "caller" => 9u64};
    router
        .send(invocation(100, 5, progress(), args(0)))
        .await
        .expect("send");
    router
        .send(invocation(200, 5, progress(), args(50)))
        .await
        .expect("send");
    // Chunks of both calls interleaved, then a plain invocation.
    router
        .send(invocation(100, 5, progress(), args(1)))
        .await
        .expect("send");
    router
        .send(invocation(200, 5, progress(), args(51)))
        .await
        .expect("send");
    router
        .send(invocation(100, 5, dict! {"caller" => 9u64}, args(2)))
        .await
        .expect("send");
    router
        .send(invocation(300, 5, Dict::new(), args(7)))
        .await
        .expect("send");

    let mut first = registration.next().await.expect("invocation 100");
    let mut second = registration.next().await.expect("invocation 200");
    let mut third = registration.next().await.expect("invocation 300");
    assert_eq!(
        (first.request, second.request, third.request),
        (100, 200, 300)
    );
    assert!(first.is_progressive() && second.is_progressive() && !third.is_progressive());
    assert_eq!(first.args, vec![Value::from(0)]);
    assert_eq!(third.args, vec![Value::from(7)]);

    let mut got = Vec::new();
    while let Some(chunk) = first.next_chunk().await {
        assert_eq!(chunk.details.get("caller"), Some(&Value::from(9u64)));
        got.push((chunk.args, chunk.last));
    }
    assert_eq!(
        got,
        vec![(vec![Value::from(1)], false), (vec![Value::from(2)], true)]
    );
    assert!(first.next_chunk().await.is_none());
    let chunk = second.next_chunk().await.expect("chunk of 200");
    assert_eq!((chunk.args, chunk.last), (vec![Value::from(51)], false));

    first
        .yield_result(vec![Value::from(3)], Dict::new())
        .await
        .expect("yield");
    assert_eq!(expect_yield(&mut router).await.0, 100);
    // 200 is answered before its last chunk: later chunks are dropped silently,
    // not taken for a new invocation.
    second
        .yield_result(vec![], Dict::new())
        .await
        .expect("yield");
    assert_eq!(expect_yield(&mut router).await.0, 200);
    router
        .send(invocation(200, 5, progress(), args(52)))
        .await
        .expect("send");
    router
        .send(invocation(200, 5, Dict::new(), args(53)))
        .await
        .expect("send");
    router
        .send(invocation(400, 5, Dict::new(), args(8)))
        .await
        .expect("send");
    let next = registration.next().await.expect("invocation 400");
    assert_eq!(next.request, 400);
    assert!(third.next_chunk().await.is_none(), "not progressive");
    drop((next, third));
    assert_silent(&mut router).await;

    // A plain invocation's ID reused while it is active is a protocol violation.
    router
        .send(invocation(500, 5, Dict::new(), args(0)))
        .await
        .expect("send");
    let _held = registration.next().await.expect("invocation 500");
    router
        .send(invocation(500, 5, Dict::new(), args(1)))
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[tokio::test]
async fn interrupt_reaches_a_held_invocation() {
    let (session, mut router) = establish().await;
    let (mut registration, _) = register(
        &session,
        &mut router,
        "com.example.slow",
        RegisterOptions::new(),
        4,
    )
    .await;

    // kill: the invocation learns it; dropping it answers wamp.error.canceled.
    router
        .send(invocation(1, 4, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    router
        .send(Message::Interrupt {
            request: 1,
            options: dict! {"mode" => "kill"},
        })
        .await
        .expect("send");
    assert_eq!(inv.interrupted().await, InterruptMode::Kill);
    assert_eq!(inv.interrupt(), Some(InterruptMode::Kill));
    drop(inv);
    assert_eq!(
        expect_invocation_error(&mut router).await,
        (1, "wamp.error.canceled".to_owned())
    );

    // kill, answered explicitly (here with a result, which the spec allows).
    router
        .send(invocation(2, 4, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    router
        .send(Message::Interrupt {
            request: 2,
            options: dict! {"mode" => "kill"},
        })
        .await
        .expect("send");
    let inv = registration.next().await.expect("invocation");
    assert_eq!(inv.interrupted().await, InterruptMode::Kill);
    inv.yield_result(vec![Value::from("done anyway")], Dict::new())
        .await
        .expect("yield");
    assert_eq!(expect_yield(&mut router).await.0, 2);

    // killnowait (and INTERRUPT without a mode): no answer goes out.
    for (request, options) in [(3, dict! {"mode" => "killnowait"}), (4, Dict::new())] {
        router
            .send(invocation(request, 4, Dict::new(), Payload::empty()))
            .await
            .expect("send");
        let inv = registration.next().await.expect("invocation");
        router
            .send(Message::Interrupt { request, options })
            .await
            .expect("send");
        assert_eq!(inv.interrupted().await, InterruptMode::KillNoWait);
        inv.error("wamp.error.canceled", vec![], Dict::new())
            .await
            .expect("nothing to send");
    }
    // An INTERRUPT for an invocation already answered is ignored.
    router
        .send(Message::Interrupt {
            request: 2,
            options: dict! {"mode" => "kill"},
        })
        .await
        .expect("send");
    assert_silent(&mut router).await;
    assert!(!session.is_closed());
}

#[tokio::test]
async fn register_fn_handlers_are_aborted_by_interrupt_and_timeout() {
    let (session, mut router) = establish().await;
    let started = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let register = session.register_fn_with(
        "com.example.slow",
        RegisterOptions::new().forward_timeout(true),
        {
            let started = started.clone();
            let dropped = dropped.clone();
            move |args: Vec<Value>, _kwargs: Dict| {
                let started = started.clone();
                let guard = CountDrop(dropped.clone());
                async move {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    if args.is_empty() {
                        std::future::pending::<()>().await;
                    }
                    Ok((args, Dict::new()))
                }
            }
        },
    );
    let script = async {
        let Message::Register {
            request, options, ..
        } = recv(&mut router).await
        else {
            panic!("expected REGISTER");
        };
        assert_eq!(options, dict! {"forward_timeout" => true});
        router
            .send(Message::Registered {
                request,
                registration: 6,
            })
            .await
            .expect("send");
    };
    let (handle, ()) = tokio::join!(register, script);
    let handle = handle.expect("registered");

    async fn wait_for(counter: &AtomicUsize, n: usize) {
        for _ in 0..200 {
            if counter.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("counter stayed at {}", counter.load(Ordering::SeqCst));
    }

    // kill: the handler future is dropped and wamp.error.canceled answered.
    router
        .send(invocation(1, 6, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    wait_for(&started, 1).await;
    router
        .send(Message::Interrupt {
            request: 1,
            options: dict! {"mode" => "kill"},
        })
        .await
        .expect("send");
    assert_eq!(
        expect_invocation_error(&mut router).await,
        (1, "wamp.error.canceled".to_owned())
    );
    wait_for(&dropped, 1).await;

    // killnowait: dropped, nothing sent.
    router
        .send(invocation(2, 6, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    wait_for(&started, 2).await;
    router
        .send(Message::Interrupt {
            request: 2,
            options: dict! {"mode" => "killnowait"},
        })
        .await
        .expect("send");
    wait_for(&dropped, 2).await;
    assert_silent(&mut router).await;

    // A forwarded timeout that runs out: wamp.error.timeout.
    router
        .send(invocation(
            3,
            6,
            dict! {"timeout" => 50u64},
            Payload::empty(),
        ))
        .await
        .expect("send");
    assert_eq!(
        expect_invocation_error(&mut router).await,
        (3, "wamp.error.timeout".to_owned())
    );
    wait_for(&dropped, 3).await;

    // A handler that finishes in time still answers normally.
    router
        .send(invocation(4, 6, dict! {"timeout" => 5000u64}, args(1)))
        .await
        .expect("send");
    let (request, _, payload) = expect_yield(&mut router).await;
    assert_eq!(request, 4);
    assert_eq!(payload.args().expect("args"), vec![Value::from(1)]);

    let unregister = handle.unregister();
    let script = async {
        let Message::Unregister { request, .. } = recv(&mut router).await else {
            panic!("expected UNREGISTER");
        };
        router
            .send(Message::Unregistered {
                request,
                details: None,
            })
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(unregister, script);
    result.expect("unregistered");
}

#[tokio::test]
async fn revocation_ends_the_registration_with_its_reason() {
    let (session, mut router) = establish().await;
    let (mut registration, _) = register(
        &session,
        &mut router,
        "com.example.a",
        RegisterOptions::new(),
        8,
    )
    .await;
    // An invocation queued before the revocation is still delivered.
    router
        .send(invocation(1, 8, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    router
        .send(Message::Unregistered {
            request: 0,
            details: Some(dict! {"registration" => 8u64, "reason" => "wamp.error.unregistered"}),
        })
        .await
        .expect("send");
    let inv = registration.next().await.expect("queued invocation");
    assert!(registration.next().await.is_none());
    assert!(registration.is_revoked());
    assert_eq!(
        registration.revocation_reason(),
        Some("wamp.error.unregistered")
    );
    inv.yield_result(vec![], Dict::new()).await.expect("yield");
    assert_eq!(expect_yield(&mut router).await.0, 1);
    // Unregistering a revoked registration sends nothing.
    registration.unregister().await.expect("unregister");

    // A handler-served registration stops too; unregister then succeeds quietly.
    let register = session.register_fn("com.example.b", |a: Vec<Value>, k: Dict| async move {
        Ok((a, k))
    });
    let script = async {
        let Message::Register { request, .. } = recv(&mut router).await else {
            panic!("expected REGISTER");
        };
        router
            .send(Message::Registered {
                request,
                registration: 9,
            })
            .await
            .expect("send");
    };
    let (handle, ()) = tokio::join!(register, script);
    let handle = handle.expect("registered");
    router
        .send(Message::Unregistered {
            request: 0,
            details: Some(dict! {"registration" => 9u64}),
        })
        .await
        .expect("send");
    // A later INVOCATION for it is refused.
    router
        .send(invocation(2, 9, Dict::new(), Payload::empty()))
        .await
        .expect("send");
    assert_eq!(
        expect_invocation_error(&mut router).await,
        (2, "wamp.error.no_such_registration".to_owned())
    );
    handle.unregister().await.expect("unregister");
    assert_silent(&mut router).await;
    // The session carries on (the two REGISTERs used request ids 1 and 2).
    let call = session.call("com.example.echo", vec![], Dict::new());
    let (result, ()) = tokio::join!(call, echo_call(&mut router, 3));
    result.expect("call");
}

#[tokio::test]
async fn nonsense_revocation_closes_the_session() {
    let (session, mut router) = establish().await;
    router
        .send(Message::Unregistered {
            request: 0,
            details: None,
        })
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    let reason = session.closed().await;
    assert_eq!(reason.uri(), Some("wamp.error.protocol_violation"));
}

#[test]
fn new_handles_are_send() {
    fn send<T: Send + 'static>() {}
    send::<wamp_client::CallStream>();
    send::<wamp_client::ProgressiveCall>();
    send::<wamp_client::InvocationChunk>();
    send::<CallOptions>();
    send::<RegisterOptions>();
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    fn futures_are_send(session: Session) {
        spawnable(async move {
            let mut call = session
                .call_progressive("p", Payload::empty(), CallOptions::new())
                .await
                .expect("call");
            let _ = call.next().await;
            let _ = call.cancel(CancelMode::Kill).await;
            let mut up = session
                .start_progressive_call("p", Payload::empty(), CallOptions::new())
                .await
                .expect("call");
            let _ = up.send(vec![], Dict::new()).await;
            let _ = up.finish(vec![], Dict::new()).await;
            let mut reg = session.register("p").await.expect("reg");
            if let Some(mut inv) = reg.next().await {
                let _ = inv.next_chunk().await;
                let _ = inv.progress(vec![], Dict::new()).await;
                let _ = inv.interrupted().await;
            }
        });
    }
    let _ = futures_are_send as fn(Session);
}
