//! The client against a scripted fake router (test-support's server-side raw peer)
//! over WebSocket, RawSocket/TCP and RawSocket/Unix.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use test_support::{msg, PeerFrame, RawPeer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wamp_client::{
    dict, CloseReason, ConnectOptions, Dict, Error, Message, MessageType, Payload, Serializer,
    Session, Value,
};

const REALM: &str = "realm1";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ws,
    Rs,
    Unix,
}

/// A listening fake router.
enum Listener {
    Tcp(TcpListener),
    /// The directory is kept until the listener goes.
    Unix(
        tokio::net::UnixListener,
        #[allow(dead_code)] tempfile::TempDir,
    ),
}

async fn listen(kind: Kind) -> (String, Listener) {
    match kind {
        Kind::Ws | Kind::Rs => {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let url = match kind {
                Kind::Ws => format!("ws://{addr}/ws"),
                _ => format!("rs://{addr}"),
            };
            (url, Listener::Tcp(listener))
        }
        Kind::Unix => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("router.sock");
            let listener = tokio::net::UnixListener::bind(&path).expect("bind unix");
            (
                format!("unix://{}", path.display()),
                Listener::Unix(listener, dir),
            )
        }
    }
}

/// Accepts one connection and completes the transport handshake.
async fn accept(listener: &Listener, kind: Kind) -> RawPeer {
    match (listener, kind) {
        (Listener::Tcp(l), Kind::Ws) => {
            let (tcp, _) = l.accept().await.expect("accept");
            RawPeer::accept_ws(tcp, |offered| offered.first().cloned())
                .await
                .expect("ws accept")
        }
        (Listener::Tcp(l), _) => {
            let (tcp, _) = l.accept().await.expect("accept");
            RawPeer::accept_rawsocket(tcp, 16 << 20)
                .await
                .expect("rawsocket accept")
        }
        (Listener::Unix(l, _), _) => {
            let (stream, _) = l.accept().await.expect("accept");
            RawPeer::accept_rawsocket(stream, 16 << 20)
                .await
                .expect("rawsocket accept")
        }
    }
}

/// A client session joined to the fake router, and the router's end.
async fn establish(kind: Kind, serializer: Serializer) -> (Session, RawPeer, Listener) {
    let (url, listener) = listen(kind).await;
    let options = ConnectOptions {
        serializer,
        ..Default::default()
    };
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let mut router = accept(&listener, kind).await;
    assert_eq!(router.serializer(), serializer);
    match router.recv().await {
        Some(Message::Hello { realm, .. }) => assert_eq!(realm, REALM),
        other => panic!("expected HELLO, got {other:?}"),
    }
    router.send(msg::welcome(4242)).await.expect("send WELCOME");
    let session = client.await.expect("join").expect("connect");
    assert_eq!(session.id(), 4242);
    (session, router, listener)
}

async fn recv(router: &mut RawPeer) -> Message {
    match router.recv().await {
        Some(m) => m,
        None => panic!("the client sent nothing"),
    }
}

/// Checks a CALL and answers it with RESULT echoing the arguments.
async fn answer_call(router: &mut RawPeer, expected_request: u64) {
    match recv(router).await {
        Message::Call {
            request,
            procedure,
            payload,
            ..
        } => {
            assert_eq!(request, expected_request);
            assert_eq!(procedure, "com.example.echo");
            router
                .send(Message::Result {
                    request,
                    details: Dict::new(),
                    payload,
                })
                .await
                .expect("send RESULT");
        }
        other => panic!("expected CALL, got {other:?}"),
    }
}

async fn call_roundtrip(kind: Kind, serializer: Serializer) {
    let (session, mut router, _listener) = establish(kind, serializer).await;
    assert_eq!(session.serializer(), serializer);
    for request in 1..=3u64 {
        let call = session.call(
            "com.example.echo",
            vec![Value::from(request), Value::from("x")],
            dict! {"k" => Value::Bytes(Bytes::from_static(b"\x00\xff"))},
        );
        let (result, ()) = tokio::join!(call, answer_call(&mut router, request));
        let result = result.expect("call");
        assert_eq!(result.args, vec![Value::from(request), Value::from("x")]);
        assert_eq!(
            result.kwargs,
            dict! {"k" => Value::Bytes(Bytes::from_static(b"\x00\xff"))}
        );
    }
}

#[tokio::test]
async fn call_over_every_transport_and_serializer() {
    for kind in [Kind::Ws, Kind::Rs, Kind::Unix] {
        for serializer in Serializer::ALL {
            call_roundtrip(kind, serializer).await;
        }
    }
}

#[tokio::test]
async fn hello_announces_roles_features_and_agent() {
    let (url, listener) = listen(Kind::Rs).await;
    let options = ConnectOptions {
        authid: Some("alice".into()),
        ..Default::default()
    };
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let mut router = accept(&listener, Kind::Rs).await;
    let Message::Hello { details, .. } = recv(&mut router).await else {
        panic!("expected HELLO");
    };
    let roles = details
        .get("roles")
        .and_then(Value::as_dict)
        .expect("roles");
    let features = |role: &str| -> Vec<String> {
        let features = roles
            .get(role)
            .and_then(Value::as_dict)
            .and_then(|r| r.get("features"))
            .and_then(Value::as_dict)
            .unwrap_or_else(|| panic!("{role} features"));
        assert!(features.values().all(|v| *v == Value::from(true)), "{role}");
        features.keys().cloned().collect()
    };
    let mut caller = vec![
        "progressive_call_results",
        "progressive_call_invocations",
        "call_timeout",
        "call_canceling",
        "caller_identification",
    ];
    caller.sort_unstable();
    assert_eq!(features("caller"), caller);
    let mut callee = vec![
        "progressive_call_results",
        "progressive_call_invocations",
        "call_timeout",
        "call_canceling",
        "caller_identification",
        "pattern_based_registration",
        "shared_registration",
        "registration_revocation",
    ];
    callee.sort_unstable();
    assert_eq!(features("callee"), callee);
    let mut publisher = vec![
        "publisher_identification",
        "subscriber_blackwhite_listing",
        "publisher_exclusion",
        "payload_passthru_mode",
    ];
    publisher.sort_unstable();
    assert_eq!(features("publisher"), publisher);
    let mut subscriber = vec![
        "publisher_identification",
        "publication_trustlevels",
        "pattern_based_subscription",
        "subscription_revocation",
        "payload_passthru_mode",
    ];
    subscriber.sort_unstable();
    assert_eq!(features("subscriber"), subscriber);
    assert_eq!(wamp_client::PUBLISHER_FEATURES.len(), publisher.len());
    assert_eq!(wamp_client::SUBSCRIBER_FEATURES.len(), subscriber.len());
    assert_eq!(wamp_client::CALLER_FEATURES.len(), caller.len());
    assert_eq!(wamp_client::CALLEE_FEATURES.len(), callee.len());
    assert_eq!(roles.len(), 4);
    let agent = details.get("agent").and_then(Value::as_str).expect("agent");
    assert!(agent.starts_with("junction-client/"), "{agent}");
    assert_eq!(
        details.get("authmethods"),
        Some(&Value::List(vec![Value::from("anonymous")]))
    );
    assert_eq!(details.get("authid"), Some(&Value::from("alice")));
    let mut welcome_details = dict! {"authrole" => "anonymous"};
    welcome_details.insert(
        "roles".into(),
        Value::Dict(test_support::msg::roles(&["broker", "dealer"])),
    );
    router
        .send(Message::Welcome {
            session: 7,
            details: welcome_details,
        })
        .await
        .expect("send");
    let session = client.await.expect("join").expect("connect");
    assert_eq!(
        session.welcome_details().get("authrole"),
        Some(&Value::from("anonymous"))
    );
    assert_eq!(session.router_max_message_size(), Some(16 << 20));
}

#[tokio::test]
async fn websocket_frame_types_follow_the_serializer() {
    for serializer in Serializer::ALL {
        let (session, mut router, _l) = establish(Kind::Ws, serializer).await;
        session
            .publish("com.example.t", vec![Value::from(1)], Dict::new())
            .await
            .expect("publish");
        let frame = router.recv_frame().await.expect("frame");
        match (serializer, &frame) {
            (Serializer::Json, PeerFrame::Text(_)) => {}
            (Serializer::MsgPack | Serializer::Cbor, PeerFrame::Binary(_)) => {}
            _ => panic!("{serializer}: wrong frame {frame:?}"),
        }
        let message = wamp_client::wamp_proto::decode(serializer, frame.payload()).expect("decode");
        assert_eq!(message.message_type(), MessageType::Publish);
    }
}

#[tokio::test]
async fn websocket_subprotocol_mismatch_is_a_handshake_error() {
    for pick in [Some("wamp.2.cbor"), None] {
        let (url, listener) = listen(Kind::Ws).await;
        let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
        let Listener::Tcp(l) = &listener else {
            panic!("tcp listener expected");
        };
        let (tcp, _) = l.accept().await.expect("accept");
        let _ = RawPeer::accept_ws(tcp, move |offered| {
            assert_eq!(offered, ["wamp.2.json"]);
            pick.map(str::to_owned)
        })
        .await;
        match client.await.expect("join") {
            Err(Error::Handshake(_)) => {}
            other => panic!("expected a handshake error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn rawsocket_handshake_bytes_and_refusal() {
    let (url, listener) = listen(Kind::Rs).await;
    let options = ConnectOptions {
        serializer: Serializer::Cbor,
        max_message_size: 1 << 20,
        ..Default::default()
    };
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let Listener::Tcp(l) = &listener else {
        panic!("tcp listener expected");
    };
    let (mut tcp, _) = l.accept().await.expect("accept");
    let mut request = [0u8; 4];
    tcp.read_exact(&mut request).await.expect("handshake");
    // 1 MiB = 2^(9+11); CBOR = 3.
    assert_eq!(request, [0x7F, 0xB3, 0, 0]);
    tcp.write_all(&[0x7F, 0x10, 0, 0]).await.expect("refuse");
    match client.await.expect("join") {
        Err(Error::Handshake(text)) => assert!(text.contains("serializer"), "{text}"),
        other => panic!("expected a handshake error, got {other:?}"),
    }

    // A reply echoing another serializer is refused by the client too.
    let (url, listener) = listen(Kind::Rs).await;
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let Listener::Tcp(l) = &listener else {
        panic!("tcp listener expected");
    };
    let (mut tcp, _) = l.accept().await.expect("accept");
    tcp.read_exact(&mut request).await.expect("handshake");
    assert_eq!(request, [0x7F, 0xF1, 0, 0]);
    tcp.write_all(&[0x7F, 0xF2, 0, 0]).await.expect("reply");
    assert!(matches!(
        client.await.expect("join"),
        Err(Error::Handshake(_))
    ));
}

#[tokio::test]
async fn abort_and_challenge_while_joining() {
    let (url, listener) = listen(Kind::Rs).await;
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let mut router = accept(&listener, Kind::Rs).await;
    recv(&mut router).await;
    router
        .send(Message::abort("wamp.error.no_such_realm", "no realm"))
        .await
        .expect("send");
    match client.await.expect("join") {
        Err(e @ Error::Abort { .. }) => {
            assert_eq!(e.uri(), Some("wamp.error.no_such_realm"));
            assert!(matches!(e, Error::Abort { message: Some(m), .. } if m == "no realm"));
        }
        other => panic!("expected ABORT, got {other:?}"),
    }

    let (url, listener) = listen(Kind::Ws).await;
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let mut router = accept(&listener, Kind::Ws).await;
    recv(&mut router).await;
    router
        .send(Message::Challenge {
            method: "ticket".into(),
            extra: Dict::new(),
        })
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.cannot_authenticate"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    let err = client.await.expect("join").expect_err("refused");
    assert_eq!(err.uri(), Some("wamp.error.cannot_authenticate"));
    router.expect_closed().await;

    // Anything else before WELCOME is a protocol violation.
    let (url, listener) = listen(Kind::Rs).await;
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let mut router = accept(&listener, Kind::Rs).await;
    recv(&mut router).await;
    router.send(msg::result(1, vec![])).await.expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(matches!(
        client.await.expect("join"),
        Err(Error::Protocol(_))
    ));
}

#[tokio::test]
async fn connect_errors() {
    assert!(matches!(
        Session::connect("http://127.0.0.1:1/", REALM).await,
        Err(Error::InvalidUrl(_))
    ));
    // Nobody listens on a port we just closed.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    assert!(matches!(
        Session::connect(&format!("rs://127.0.0.1:{port}"), REALM).await,
        Err(Error::Io(_))
    ));
    // A router that never answers HELLO.
    let (url, listener) = listen(Kind::Rs).await;
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let _router = accept(&listener, Kind::Rs).await;
    assert!(matches!(client.await.expect("join"), Err(Error::Timeout)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_sequential_ids_and_their_own_results() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::MsgPack).await;
    const N: u64 = 300;
    let mut calls = Vec::new();
    for i in 0..N {
        let session = session.clone();
        calls.push(tokio::spawn(async move {
            let result = session
                .call("com.example.echo", vec![Value::from(i)], Dict::new())
                .await
                .expect("call");
            (i, result)
        }));
    }
    let mut received = Vec::new();
    for _ in 0..N {
        match recv(&mut router).await {
            Message::Call {
                request, payload, ..
            } => received.push((request, payload)),
            other => panic!("expected CALL, got {other:?}"),
        }
    }
    let ids: Vec<u64> = received.iter().map(|(r, _)| *r).collect();
    assert_eq!(ids, (1..=N).collect::<Vec<_>>(), "ids in sequence");
    // Answer in reverse order.
    for (request, payload) in received.into_iter().rev() {
        router
            .send(Message::Result {
                request,
                details: dict! {"n" => request},
                payload,
            })
            .await
            .expect("send");
    }
    for call in calls {
        let (i, result) = call.await.expect("task");
        assert_eq!(result.args, vec![Value::from(i)]);
        assert!(result.details.contains_key("n"));
    }
}

#[tokio::test]
async fn call_errors_and_publish_acknowledgement() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Cbor).await;
    let call = session.call("com.example.missing", vec![], Dict::new());
    let script = async {
        let Message::Call { request, .. } = recv(&mut router).await else {
            panic!("expected CALL");
        };
        router
            .send(Message::error(
                MessageType::Call,
                request,
                "wamp.error.no_such_procedure",
                Payload::new(vec![Value::from("nope")], dict! {"a" => 1}),
            ))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(call, script);
    match result {
        Err(Error::Wamp { uri, args, kwargs }) => {
            assert_eq!(uri, "wamp.error.no_such_procedure");
            assert_eq!(args, vec![Value::from("nope")]);
            assert_eq!(kwargs, dict! {"a" => 1});
        }
        other => panic!("expected ERROR, got {other:?}"),
    }

    let publish = session.publish_with(
        "com.example.topic",
        Payload::from_args(vec![Value::from(1)]),
        dict! {"acknowledge" => true},
    );
    let script = async {
        let Message::Publish {
            request, options, ..
        } = recv(&mut router).await
        else {
            panic!("expected PUBLISH");
        };
        assert_eq!(options, dict! {"acknowledge" => true});
        router
            .send(Message::Published {
                request,
                publication: 99,
            })
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(publish, script);
    assert_eq!(result.expect("published"), Some(99));

    let publish = session.publish_with(
        "wamp.reserved",
        Payload::empty(),
        dict! {"acknowledge" => true},
    );
    let script = async {
        let Message::Publish { request, .. } = recv(&mut router).await else {
            panic!("expected PUBLISH");
        };
        router
            .send(Message::error(
                MessageType::Publish,
                request,
                "wamp.error.invalid_uri",
                Payload::empty(),
            ))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(publish, script);
    assert_eq!(
        result.expect_err("refused").uri(),
        Some("wamp.error.invalid_uri")
    );

    // Without acknowledge nothing waits.
    assert_eq!(
        session
            .publish_with("com.example.topic", Payload::empty(), Dict::new())
            .await
            .expect("publish"),
        None
    );
    assert_eq!(recv(&mut router).await.message_type(), MessageType::Publish);
}

#[tokio::test]
async fn subscriptions_share_events_and_unsubscribe_last() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    let mut subs = Vec::new();
    for _ in 0..2 {
        let subscribe = session.subscribe("com.example.topic");
        let script = async {
            let Message::Subscribe { request, topic, .. } = recv(&mut router).await else {
                panic!("expected SUBSCRIBE");
            };
            assert_eq!(topic, "com.example.topic");
            router
                .send(Message::Subscribed {
                    request,
                    subscription: 555,
                })
                .await
                .expect("send");
        };
        let (sub, ()) = tokio::join!(subscribe, script);
        subs.push(sub.expect("subscribed"));
    }
    assert!(subs.iter().all(|s| s.id() == 555));
    router
        .send(Message::Event {
            subscription: 555,
            publication: 1,
            details: dict! {"publisher" => 3u64},
            payload: Payload::new(vec![Value::from("hi")], dict! {"x" => 1}),
        })
        .await
        .expect("send");
    // An event for an unknown subscription is ignored.
    router
        .send(Message::Event {
            subscription: 556,
            publication: 2,
            details: Dict::new(),
            payload: Payload::empty(),
        })
        .await
        .expect("send");
    for sub in &mut subs {
        let event = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("in time")
            .expect("event");
        assert_eq!(event.subscription, 555);
        assert_eq!(event.publication, 1);
        assert_eq!(event.args, vec![Value::from("hi")]);
        assert_eq!(event.kwargs, dict! {"x" => 1});
        assert_eq!(event.details, dict! {"publisher" => 3u64});
    }
    let second = subs.pop().expect("two");
    let first = subs.pop().expect("one");
    // The first unsubscribe keeps the router subscription for the other one.
    first.unsubscribe().await.expect("local unsubscribe");
    let mut second = second;
    router
        .send(Message::Event {
            subscription: 555,
            publication: 3,
            details: Dict::new(),
            payload: Payload::empty(),
        })
        .await
        .expect("send");
    // The Stream impl works too.
    let event = tokio::time::timeout(Duration::from_secs(5), StreamExt::next(&mut second))
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(event.publication, 3);
    let unsubscribe = second.unsubscribe();
    let script = async {
        match recv(&mut router).await {
            Message::Unsubscribe {
                request,
                subscription,
                ..
            } => {
                assert_eq!(subscription, 555);
                router
                    .send(Message::Unsubscribed {
                        request,
                        details: None,
                    })
                    .await
                    .expect("send");
            }
            other => panic!("expected UNSUBSCRIBE, got {other:?}"),
        }
    };
    let (result, ()) = tokio::join!(unsubscribe, script);
    result.expect("unsubscribed");
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Json).await;
    let subscribe = session.subscribe("t");
    let script = async {
        let Message::Subscribe { request, .. } = recv(&mut router).await else {
            panic!("expected SUBSCRIBE");
        };
        router
            .send(Message::Subscribed {
                request,
                subscription: 8,
            })
            .await
            .expect("send");
    };
    let (sub, ()) = tokio::join!(subscribe, script);
    drop(sub.expect("subscribed"));
    match recv(&mut router).await {
        Message::Unsubscribe {
            request,
            subscription,
            ..
        } => {
            assert_eq!((request, subscription), (2, 8));
        }
        other => panic!("expected UNSUBSCRIBE, got {other:?}"),
    }
}

#[tokio::test]
async fn invocations_are_answered() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Cbor).await;
    let register = session.register_with("com.example.proc", dict! {"invoke" => "roundrobin"});
    let script = async {
        let Message::Register {
            request,
            options,
            procedure,
        } = recv(&mut router).await
        else {
            panic!("expected REGISTER");
        };
        assert_eq!(procedure, "com.example.proc");
        assert_eq!(options, dict! {"invoke" => "roundrobin"});
        router
            .send(Message::Registered {
                request,
                registration: 31,
            })
            .await
            .expect("send");
    };
    let (registration, ()) = tokio::join!(register, script);
    let mut registration = registration.expect("registered");
    assert_eq!(registration.id(), 31);

    // Invocation ids from the router need not be sequential.
    for (request, fail) in [(900u64, false), (17, true)] {
        router
            .send(Message::Invocation {
                request,
                registration: 31,
                details: dict! {"caller" => 5u64},
                payload: Payload::new(vec![Value::from(2), Value::from(3)], Dict::new()),
            })
            .await
            .expect("send");
        let invocation = registration.next().await.expect("invocation");
        assert_eq!(invocation.request, request);
        assert_eq!(invocation.args, vec![Value::from(2), Value::from(3)]);
        assert_eq!(invocation.details, dict! {"caller" => 5u64});
        if fail {
            invocation
                .error("com.example.oops", vec![Value::from("bad")], Dict::new())
                .await
                .expect("error");
            match recv(&mut router).await {
                Message::Error {
                    request_type,
                    request: r,
                    error,
                    payload,
                    ..
                } => {
                    assert_eq!(request_type, MessageType::Invocation);
                    assert_eq!(r, request);
                    assert_eq!(error, "com.example.oops");
                    assert_eq!(payload.args().expect("args"), vec![Value::from("bad")]);
                }
                other => panic!("expected ERROR, got {other:?}"),
            }
        } else {
            invocation
                .yield_result(vec![Value::from(5)], Dict::new())
                .await
                .expect("yield");
            match recv(&mut router).await {
                Message::Yield {
                    request: r,
                    payload,
                    ..
                } => {
                    assert_eq!(r, request);
                    assert_eq!(payload.args().expect("args"), vec![Value::from(5)]);
                }
                other => panic!("expected YIELD, got {other:?}"),
            }
        }
    }

    // An INVOCATION for an unknown registration is refused.
    router
        .send(Message::Invocation {
            request: 1000,
            registration: 32,
            details: Dict::new(),
            payload: Payload::empty(),
        })
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Error {
            request_type,
            request,
            error,
            ..
        } => {
            assert_eq!((request_type, request), (MessageType::Invocation, 1000));
            assert_eq!(error, "wamp.error.no_such_registration");
        }
        other => panic!("expected ERROR, got {other:?}"),
    }

    let unregister = registration.unregister();
    let script = async {
        let Message::Unregister {
            request,
            registration,
            ..
        } = recv(&mut router).await
        else {
            panic!("expected UNREGISTER");
        };
        assert_eq!(registration, 31);
        router
            .send(Message::error(
                MessageType::Unregister,
                request,
                "wamp.error.no_such_registration",
                Payload::empty(),
            ))
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(unregister, script);
    assert_eq!(
        result.expect_err("error").uri(),
        Some("wamp.error.no_such_registration")
    );
}

#[tokio::test]
async fn register_fn_serves_invocations() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::MsgPack).await;
    let register = session.register_fn(
        "com.example.add",
        |args: Vec<Value>, kwargs: Dict| async move {
            if kwargs.contains_key("panic") {
                panic!("asked to");
            }
            match (
                args.first().and_then(Value::as_i64),
                args.get(1).and_then(Value::as_i64),
            ) {
                (Some(a), Some(b)) => Ok((vec![Value::from(a + b)], Dict::new())),
                _ => Err((
                    "wamp.error.invalid_argument".to_owned(),
                    vec![Value::from("two integers")],
                    Dict::new(),
                )),
            }
        },
    );
    let script = async {
        let Message::Register { request, .. } = recv(&mut router).await else {
            panic!("expected REGISTER");
        };
        router
            .send(Message::Registered {
                request,
                registration: 5,
            })
            .await
            .expect("send");
    };
    let (handle, ()) = tokio::join!(register, script);
    let handle = handle.expect("registered");
    assert_eq!(handle.id(), 5);
    let cases = [
        (
            10u64,
            Payload::from_args(vec![Value::from(2), Value::from(40)]),
            Ok(vec![Value::from(42)]),
        ),
        (
            11,
            Payload::from_args(vec![Value::from("x")]),
            Err("wamp.error.invalid_argument"),
        ),
        (
            12,
            Payload::new(vec![], dict! {"panic" => true}),
            Err("wamp.error.runtime_error"),
        ),
    ];
    for (request, payload, expected) in cases {
        router
            .send(Message::Invocation {
                request,
                registration: 5,
                details: Dict::new(),
                payload,
            })
            .await
            .expect("send");
        match (recv(&mut router).await, expected) {
            (
                Message::Yield {
                    request: r,
                    payload,
                    ..
                },
                Ok(args),
            ) => {
                assert_eq!(r, request);
                assert_eq!(payload.args().expect("args"), args);
            }
            (
                Message::Error {
                    request: r, error, ..
                },
                Err(uri),
            ) => {
                assert_eq!(r, request);
                assert_eq!(error, uri);
            }
            (other, expected) => panic!("unexpected {other:?}, wanted {expected:?}"),
        }
    }
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
async fn router_goodbye_is_answered_and_fails_pending_calls() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Json).await;
    let pending = {
        let session = session.clone();
        tokio::spawn(async move { session.call("com.example.slow", vec![], Dict::new()).await })
    };
    assert_eq!(recv(&mut router).await.message_type(), MessageType::Call);
    router
        .send(Message::Goodbye {
            details: dict! {"message" => "bye"},
            reason: "wamp.close.system_shutdown".into(),
        })
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.goodbye_and_out"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    assert_eq!(
        session.closed().await,
        CloseReason::Goodbye {
            reason: "wamp.close.system_shutdown".into(),
            message: Some("bye".into())
        }
    );
    assert!(session.is_closed());
    assert!(matches!(pending.await.expect("task"), Err(Error::Closed)));
    assert!(matches!(
        session.call("x", vec![], Dict::new()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(session.leave().await, Err(Error::Closed)));
    router.expect_closed().await;
}

#[tokio::test]
async fn leave_says_goodbye_and_closes() {
    for kind in [Kind::Ws, Kind::Rs] {
        let (session, mut router, _l) = establish(kind, Serializer::Json).await;
        let leave = session.leave();
        let script = async {
            match recv(&mut router).await {
                Message::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.normal"),
                other => panic!("expected GOODBYE, got {other:?}"),
            }
            router
                .send(Message::goodbye("wamp.close.goodbye_and_out"))
                .await
                .expect("send");
        };
        let (result, ()) = tokio::join!(leave, script);
        result.expect("left");
        assert_eq!(session.closed().await, CloseReason::Left);
        let frames = router.expect_closed().await;
        assert!(
            frames
                .iter()
                .all(|f| !matches!(f, PeerFrame::Text(_) | PeerFrame::Binary(_))),
            "nothing after GOODBYE: {frames:?}"
        );
    }
}

#[tokio::test]
async fn abort_and_transport_loss_end_the_session() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    let pending = {
        let session = session.clone();
        tokio::spawn(async move { session.call("p", vec![], Dict::new()).await })
    };
    recv(&mut router).await;
    router
        .send(Message::abort("wamp.error.system_shutdown", "going"))
        .await
        .expect("send");
    let err = pending.await.expect("task").expect_err("aborted");
    assert_eq!(err.uri(), Some("wamp.error.system_shutdown"));
    assert_eq!(
        session.closed().await.uri(),
        Some("wamp.error.system_shutdown")
    );

    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Cbor).await;
    let pending = {
        let session = session.clone();
        tokio::spawn(async move { session.call("p", vec![], Dict::new()).await })
    };
    recv(&mut router).await;
    drop(router);
    assert_eq!(session.closed().await, CloseReason::TransportLost);
    assert!(matches!(pending.await.expect("task"), Err(Error::Closed)));
}

#[tokio::test]
async fn protocol_violation_by_the_router_is_aborted() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::MsgPack).await;
    router.send(msg::welcome(1)).await.expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert_eq!(
        session.closed().await.uri(),
        Some("wamp.error.protocol_violation")
    );
    router.expect_closed().await;

    // Undecodable bytes too.
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Json).await;
    router.send_bytes(&b"[50, \"x\"]"[..]).await.expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(matches!(session.closed().await, CloseReason::Abort { .. }));
}

#[tokio::test]
async fn rawsocket_ping_is_answered_and_oversized_frames_refused() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    router
        .send_frame(PeerFrame::Ping(Bytes::from_static(b"are you there")))
        .await
        .expect("ping");
    assert_eq!(
        router.recv_frame().await,
        Some(PeerFrame::Pong(Bytes::from_static(b"are you there")))
    );
    drop(session);

    // The client advertised 1 KiB: a longer frame fails the connection.
    let (url, listener) = listen(Kind::Rs).await;
    let options = ConnectOptions {
        max_message_size: 1024,
        ..Default::default()
    };
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let mut router = accept(&listener, Kind::Rs).await;
    assert_eq!(router.remote_max_len(), Some(1024));
    recv(&mut router).await;
    router.send(msg::welcome(1)).await.expect("send");
    let session = client.await.expect("join").expect("connect");
    router
        .send(msg::result(1, vec![Value::from("x".repeat(2000))]))
        .await
        .expect("send");
    assert_eq!(session.closed().await, CloseReason::TransportLost);
    router.expect_closed().await;
}

#[tokio::test]
async fn messages_over_the_routers_limit_are_not_sent() {
    let (url, listener) = listen(Kind::Rs).await;
    let client = tokio::spawn(async move { Session::connect(&url, REALM).await });
    let Listener::Tcp(l) = &listener else {
        panic!("tcp listener expected");
    };
    let (tcp, _) = l.accept().await.expect("accept");
    // (The HELLO with its feature announcements needs more than the minimum 512.)
    let mut router = RawPeer::accept_rawsocket(tcp, 1024).await.expect("accept");
    recv(&mut router).await;
    router.send(msg::welcome(1)).await.expect("send");
    let session = client.await.expect("join").expect("connect");
    assert_eq!(session.router_max_message_size(), Some(1024));
    match session
        .call("p", vec![Value::from("x".repeat(1100))], Dict::new())
        .await
    {
        Err(Error::TooLarge { limit, .. }) => assert_eq!(limit, 1024),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The refused call did not use up a request id.
    let call = session.call("com.example.echo", vec![], Dict::new());
    let (result, ()) = tokio::join!(call, answer_call(&mut router, 1));
    result.expect("call");
}

#[tokio::test]
async fn dropping_the_last_handle_says_goodbye_and_closes() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Json).await;
    let clone = session.clone();
    drop(session);
    assert!(router
        .recv_timeout(Duration::from_millis(200))
        .await
        .is_none());
    drop(clone);
    match recv(&mut router).await {
        Message::Goodbye { reason, .. } => assert_eq!(reason, "wamp.close.normal"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    router
        .send(Message::goodbye("wamp.close.goodbye_and_out"))
        .await
        .expect("send");
    router.expect_closed().await;

    // Without an answer the connection is closed after the grace time.
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    drop(session);
    assert_eq!(recv(&mut router).await.message_type(), MessageType::Goodbye);
    router.set_timeout(Duration::from_secs(10));
    router.expect_closed().await;
}

#[tokio::test]
async fn disconnect_drops_the_connection_without_goodbye() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    session.disconnect().await;
    assert_eq!(session.close_reason(), Some(CloseReason::TransportLost));
    let frames = router.expect_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
}

#[tokio::test]
async fn send_raw_sends_exactly_that() {
    let (session, mut router, _l) = establish(Kind::Ws, Serializer::Json).await;
    session
        .send_raw(msg::hello("other"))
        .await
        .expect("send raw");
    assert_eq!(recv(&mut router).await, msg::hello("other"));
    session
        .send_raw(msg::call(77, "p", vec![]))
        .await
        .expect("send raw");
    assert_eq!(recv(&mut router).await, msg::call(77, "p", vec![]));
    // A reply to it is ignored; the client's own ids are untouched.
    router.send(msg::result(77, vec![])).await.expect("send");
    let call = session.call("com.example.echo", vec![], Dict::new());
    let (result, ()) = tokio::join!(call, answer_call(&mut router, 1));
    result.expect("call");
}

#[tokio::test]
async fn abandoned_calls_are_forgotten() {
    let (session, mut router, _l) = establish(Kind::Rs, Serializer::Json).await;
    let timed_out = tokio::time::timeout(
        Duration::from_millis(100),
        session.call("com.example.echo", vec![], Dict::new()),
    )
    .await;
    assert!(timed_out.is_err());
    let Message::Call { request, .. } = recv(&mut router).await else {
        panic!("expected CALL");
    };
    // A late RESULT is ignored; the session carries on.
    router
        .send(msg::result(request, vec![]))
        .await
        .expect("send");
    let call = session.call("com.example.echo", vec![], Dict::new());
    let (result, ()) = tokio::join!(call, answer_call(&mut router, 2));
    result.expect("call");
}

#[test]
fn handles_and_futures_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Session>();
    send_sync::<Error>();
    send_sync::<CloseReason>();
    send::<wamp_client::Subscription>();
    send::<wamp_client::Registration>();
    send::<wamp_client::Invocation>();
    send::<wamp_client::RegistrationHandle>();
    send::<wamp_client::Event>();
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    fn futures_are_send(session: Session) {
        spawnable(async move {
            let _ = session.call("p", vec![], Dict::new()).await;
            let _ = session.publish("t", vec![], Dict::new()).await;
            let mut sub = session.subscribe("t").await.expect("sub");
            let _ = sub.next().await;
            let _ = sub.unsubscribe().await;
            let mut reg = session.register("p").await.expect("reg");
            if let Some(invocation) = reg.next().await {
                let _ = invocation.yield_result(vec![], Dict::new()).await;
            }
            let _ = reg.unregister().await;
            let handle = session
                .register_fn("q", |args, kwargs| async move { Ok((args, kwargs)) })
                .await
                .expect("register_fn");
            let _ = handle.unregister().await;
            let _ = session.send_raw(msg::hello("r")).await;
            let _ = session.leave().await;
            let _ = session.closed().await;
            session.disconnect().await;
        });
    }
    let _ = futures_are_send as fn(Session);
}
