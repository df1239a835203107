//! Router-initiated calls end in every way a call can end, and leave nothing
//! behind: a callee's YIELD or ERROR, no such procedure, the timer, the callee
//! leaving, and the waiting side giving up (dropping the call), with or without a
//! late answer from the callee afterwards.

use std::future::Future as _;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wamp_proto::message::MessageType;
use wamp_proto::{decode, dict, Dict, Message, Payload, Serializer, Value};
use wamp_router::internal_call::{Answer, InternalCall};
use wamp_router::{Connection, Drained, Outbox, Router, RouterConfig};

const PROCEDURE: &str = "com.example.decide";

fn drain(outbox: &Outbox) -> Vec<Message> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        match outbox.poll_drain(&mut cx, &mut batch) {
            Poll::Ready(Drained::Frames) => {
                for frame in batch {
                    out.push(decode(Serializer::Json, &frame).expect("router frames decode"));
                }
            }
            _ => return out,
        }
    }
}

/// The answer if it is there already.
fn poll(call: &mut InternalCall) -> Option<Answer> {
    let mut cx = Context::from_waker(Waker::noop());
    let fut = std::pin::pin!(call.answer());
    match fut.poll(&mut cx) {
        Poll::Ready(a) => Some(a),
        Poll::Pending => None,
    }
}

struct Callee {
    conn: Connection,
    outbox: Arc<Outbox>,
}

fn callee(router: &Arc<Router>, canceling: bool) -> Callee {
    let outbox = router.new_outbox();
    let mut conn = router.connect(
        Serializer::Json,
        1 << 20,
        outbox.clone(),
        Default::default(),
    );
    conn.handle(Message::Hello {
        realm: "realm1".into(),
        details: dict! {
            "roles" => dict! { "callee" => dict! {
                "features" => dict! { "call_canceling" => canceling },
            } },
        },
    });
    conn.handle(Message::Register {
        request: 1,
        options: Dict::new(),
        procedure: PROCEDURE.into(),
    });
    let registered = drain(&outbox);
    assert!(
        matches!(registered.last(), Some(Message::Registered { .. })),
        "{registered:?}"
    );
    Callee { conn, outbox }
}

/// The INVOCATION the callee got, with its arguments.
fn invocation(c: &Callee) -> (u64, Vec<Value>) {
    let got = drain(&c.outbox);
    match got.as_slice() {
        [Message::Invocation {
            request, payload, ..
        }] => (*request, payload.args().expect("args")),
        other => panic!("expected one INVOCATION, got {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    Yield,
    Error,
    CalleeLeaves,
    Timeout,
    Dropped,
    DroppedThenLateYield,
}

#[test]
fn every_ending_is_an_answer_and_nothing_leaks() {
    use Ending::*;
    for ending in [
        Yield,
        Error,
        CalleeLeaves,
        Timeout,
        Dropped,
        DroppedThenLateYield,
    ] {
        for canceling in [false, true] {
            let router = Router::new(RouterConfig::default());
            let mut c = callee(&router, canceling);
            let timeout = Duration::from_secs(30);
            let mut call = InternalCall::start(
                &router,
                "realm1",
                PROCEDURE,
                vec![Value::from("x")],
                timeout,
            );
            let (request, args) = invocation(&c);
            assert_eq!(args, vec![Value::from("x")]);
            assert_eq!(poll(&mut call), None, "{ending:?}: waits");
            let realm = router.realm("realm1").expect("realm");
            assert_eq!(realm.stats().pending_calls, 1);
            let expected = match ending {
                Yield => {
                    c.conn.handle(Message::Yield {
                        request,
                        options: Dict::new(),
                        payload: Payload::from_args(vec![Value::Bool(true)]),
                    });
                    Some(Answer::Result(Payload::from_args(vec![Value::Bool(true)])))
                }
                Error => {
                    c.conn.handle(Message::Error {
                        request_type: MessageType::Invocation,
                        request,
                        details: Dict::new(),
                        error: "wamp.error.not_authorized".into(),
                        payload: Payload::empty(),
                    });
                    Some(Answer::Error {
                        uri: "wamp.error.not_authorized".into(),
                        payload: Payload::empty(),
                    })
                }
                CalleeLeaves => {
                    c.conn.transport_closed();
                    Some(Answer::CalleeGone)
                }
                Timeout => {
                    assert!(router.next_deadline().is_some());
                    router.expire(Instant::now() + timeout + Duration::from_secs(1));
                    let interrupted = drain(&c.outbox)
                        .iter()
                        .any(|m| matches!(m, Message::Interrupt { .. }));
                    assert_eq!(interrupted, canceling, "INTERRUPT only if it can cancel");
                    Some(Answer::Timeout)
                }
                Dropped | DroppedThenLateYield => {
                    drop(call);
                    let interrupted = drain(&c.outbox)
                        .iter()
                        .any(|m| matches!(m, Message::Interrupt { .. }));
                    assert_eq!(interrupted, canceling, "INTERRUPT only if it can cancel");
                    if matches!(ending, DroppedThenLateYield) {
                        c.conn.handle(Message::Yield {
                            request,
                            options: Dict::new(),
                            payload: Payload::empty(),
                        });
                    }
                    // Recreated only so the checks below have something to poll.
                    call =
                        InternalCall::start(&router, "realm1", "com.example.none", vec![], timeout);
                    assert_eq!(poll(&mut call), Some(Answer::NoSuchProcedure));
                    None
                }
            };
            if let Some(expected) = expected {
                let got = poll(&mut call).expect("answered");
                match (&got, &expected) {
                    (Answer::Result(a), Answer::Result(b)) => {
                        assert_eq!(a.args().ok(), b.args().ok())
                    }
                    (Answer::Error { uri: a, .. }, Answer::Error { uri: b, .. }) => {
                        assert_eq!(a, b)
                    }
                    _ => assert_eq!(got, expected, "{ending:?}"),
                }
            }
            drop(call);
            assert_eq!(realm.stats().pending_calls, 0, "{ending:?}");
            assert_eq!(realm.call_state_len(), 0, "{ending:?}: call state left");
            // The callee still works as callee and as session (unless it left).
            c.conn.transport_closed();
            assert_eq!(realm.stats().sessions, 0);
            assert_eq!(router.next_deadline(), None, "{ending:?}");
        }
    }
}

#[test]
fn refused_calls_answer_at_once() {
    let router = Router::new(RouterConfig::default());
    let mut none =
        InternalCall::start(&router, "realm1", PROCEDURE, vec![], Duration::from_secs(1));
    assert_eq!(poll(&mut none), Some(Answer::NoSuchProcedure));
    let mut no_realm = InternalCall::start(
        &router,
        "nowhere",
        PROCEDURE,
        vec![],
        Duration::from_secs(1),
    );
    assert_eq!(poll(&mut no_realm), Some(Answer::NoSuchProcedure));
}

/// A session whose role has a dynamic authorizer (on realm `auth`): messages that
/// arrive while it waits for the authorizer are handled afterwards, in order.
#[test]
fn a_waiting_connection_keeps_order() {
    use std::collections::HashMap;
    use wamp_router::auth::{RealmAuth, Role};
    use wamp_router::authorizer::DynamicAuthorizer;
    use wamp_router::RealmConfig;

    let authorizer = DynamicAuthorizer::new(
        PROCEDURE,
        Some("auth".into()),
        Duration::from_secs(30),
        Duration::from_secs(60),
        100,
    );
    let mut roles = HashMap::new();
    roles.insert(
        "anonymous".to_owned(),
        Arc::new(Role::dynamic("anonymous", authorizer)),
    );
    let mut realm1 = RealmConfig::new("realm1");
    realm1.auth = RealmAuth {
        roles: Some(roles),
        ..RealmAuth::default()
    };
    let router = Router::new(RouterConfig {
        realms: vec![realm1, RealmConfig::new("auth")],
        ..RouterConfig::default()
    });
    // The authorizer component on `auth`.
    let c_outbox = router.new_outbox();
    let mut c_conn = router.connect(
        Serializer::Json,
        1 << 20,
        c_outbox.clone(),
        Default::default(),
    );
    c_conn.handle(Message::Hello {
        realm: "auth".into(),
        details: dict! { "roles" => dict! { "callee" => Dict::new() } },
    });
    c_conn.handle(Message::Register {
        request: 1,
        options: Dict::new(),
        procedure: PROCEDURE.into(),
    });
    drain(&c_outbox);
    let c = Callee {
        conn: c_conn,
        outbox: c_outbox,
    };

    let outbox = router.new_outbox();
    let mut user = router.connect(
        Serializer::Json,
        1 << 20,
        outbox.clone(),
        Default::default(),
    );
    user.handle(Message::Hello {
        realm: "realm1".into(),
        details: dict! { "roles" => dict! { "caller" => Dict::new(), "subscriber" => Dict::new() } },
    });
    assert!(matches!(
        drain(&outbox).as_slice(),
        [Message::Welcome { .. }]
    ));
    let call = |request: u64| Message::Call {
        request,
        options: Dict::new(),
        procedure: "com.example.a".into(),
        payload: Payload::empty(),
    };
    user.handle(call(1));
    assert!(user.is_waiting());
    user.handle(call(2));
    user.handle(Message::Subscribe {
        request: 3,
        options: Dict::new(),
        topic: "com.example.t".into(),
    });
    assert!(drain(&outbox).is_empty(), "nothing answered while waiting");
    let mut c = c;
    for (expect_uri, expect_action, verdict) in [
        ("com.example.a", "call", Value::Bool(true)),
        (
            "com.example.t",
            "subscribe",
            Value::Dict(dict! { "allow" => false }),
        ),
    ] {
        let mut wait = user.take_wait().expect("a call to wait for");
        let (request, args) = invocation(&c);
        assert_eq!(args.get(1).and_then(Value::as_str), Some(expect_uri));
        assert_eq!(args.get(2).and_then(Value::as_str), Some(expect_action));
        let session = args
            .first()
            .and_then(Value::as_dict)
            .expect("session details");
        assert_eq!(session.get("realm").and_then(Value::as_str), Some("realm1"));
        c.conn.handle(Message::Yield {
            request,
            options: Dict::new(),
            payload: Payload::from_args(vec![verdict]),
        });
        let answer = poll(&mut wait).expect("answered");
        user.resume(answer);
    }
    assert!(!user.is_waiting());
    let replies: Vec<(u64, String)> = drain(&outbox)
        .into_iter()
        .map(|m| match m {
            Message::Error { request, error, .. } => (request, error),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        replies,
        vec![
            (1, "wamp.error.no_such_procedure".to_owned()),
            (2, "wamp.error.no_such_procedure".to_owned()),
            (3, "wamp.error.not_authorized".to_owned()),
        ]
    );
    user.transport_closed();
    let auth = router.realm("auth").expect("auth");
    assert_eq!(auth.call_state_len(), 0);
}
