//! Session lifecycle and bad input, driven by a scripted raw peer: every violation
//! ends that session with ABORT `wamp.error.protocol_violation`, and everyone else
//! carries on.

mod common;

use bytes::Bytes;
use common::{within, TestRouter};
use test_support::RawPeer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wamp_proto::{dict, Dict, Message, Payload, Serializer, Value};

fn hello() -> Message {
    Message::Hello {
        realm: "realm1".into(),
        details: dict! {"roles" => dict! {"caller" => Dict::new(), "subscriber" => Dict::new()}},
    }
}

async fn joined_peer(router: &TestRouter) -> RawPeer {
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    peer.send(hello()).await.expect("hello");
    match peer.recv().await {
        Some(Message::Welcome { session, details }) => {
            assert!((1..=1u64 << 53).contains(&session));
            let roles = details
                .get("roles")
                .and_then(Value::as_dict)
                .expect("roles");
            assert!(roles.contains_key("broker") && roles.contains_key("dealer"));
            assert_eq!(details.get("authmethod"), Some(&Value::from("anonymous")));
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
    peer
}

async fn expect_violation(mut peer: RawPeer, what: &str) {
    match peer.recv().await {
        Some(Message::Abort {
            reason, details, ..
        }) => {
            assert_eq!(reason, "wamp.error.protocol_violation", "{what}");
            assert!(
                details.get("message").and_then(Value::as_str).is_some(),
                "{what}: says why"
            );
        }
        other => panic!("{what}: expected ABORT, got {other:?}"),
    }
    peer.expect_closed().await;
}

/// A bystander session that must keep working through all of it.
async fn bystander_still_works(router: &TestRouter) {
    let s = router.join().await;
    let r = s
        .publish_with(
            "com.example.alive",
            Payload::empty(),
            dict! {"acknowledge" => true},
        )
        .await
        .expect("bystander publishes");
    assert!(r.is_some());
}

#[tokio::test]
async fn messages_before_hello_are_violations() {
    let router = TestRouter::start().await;
    let bystander = router.join().await;
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    peer.send(Message::Subscribe {
        request: 1,
        options: Dict::new(),
        topic: "a.b".into(),
    })
    .await
    .expect("send");
    expect_violation(peer, "SUBSCRIBE before HELLO").await;
    assert!(!bystander.is_closed());
    bystander_still_works(&router).await;
}

#[tokio::test]
async fn second_hello_unknown_type_wrong_types_and_garbage_are_violations() {
    let router = TestRouter::start().await;
    let cases: Vec<(&str, Bytes)> = vec![
        (
            "second HELLO",
            Bytes::from(r#"[1,"realm1",{"roles":{"caller":{}}}]"#),
        ),
        ("unknown type", Bytes::from("[99, 1, {}]")),
        ("string request id", Bytes::from(r#"[32,"one",{},"a.b"]"#)),
        ("options not a dict", Bytes::from(r#"[48,1,[],"a.b"]"#)),
        ("too few elements", Bytes::from("[48,1]")),
        ("not JSON", Bytes::from("this is not json")),
        ("not a list", Bytes::from(r#"{"type": 48}"#)),
        ("empty list", Bytes::from("[]")),
        (
            "bad option type",
            Bytes::from(r#"[16,1,{"acknowledge":"yes"},"a.b"]"#),
        ),
        ("router-only message", Bytes::from("[36,1,2,{}]")),
        (
            "ERROR for a CALL from a client",
            Bytes::from(r#"[8,48,1,{},"x.y"]"#),
        ),
    ];
    for (what, bytes) in cases {
        let mut peer = joined_peer(&router).await;
        peer.send_bytes(bytes).await.expect("send");
        expect_violation(peer, what).await;
    }
    bystander_still_works(&router).await;
    let stats = router.wait_for_stats(|s| s.sessions == 0).await;
    assert_eq!(stats.sessions, 0);
}

#[tokio::test]
async fn binary_garbage_on_msgpack_and_cbor_is_a_violation() {
    let router = TestRouter::start().await;
    for (proto, ser) in [
        ("wamp.2.msgpack", Serializer::MsgPack),
        ("wamp.2.cbor", Serializer::Cbor),
    ] {
        let mut peer = test_support::raw_ws(&router.ws_url(), &[proto])
            .await
            .expect("connect");
        let hello = wamp_proto::encode(&hello(), ser).expect("encode");
        peer.send_bytes(hello).await.expect("hello");
        assert!(matches!(peer.recv().await, Some(Message::Welcome { .. })));
        peer.send_bytes(Bytes::from_static(&[0xc1, 0xff, 0x00]))
            .await
            .expect("garbage");
        expect_violation(peer, proto).await;
    }
}

#[tokio::test]
async fn unknown_realm_is_aborted_with_no_such_realm() {
    let router = TestRouter::start().await;
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    peer.send(Message::Hello {
        realm: "nowhere".into(),
        details: dict! {"roles" => dict! {"caller" => Dict::new()}},
    })
    .await
    .expect("hello");
    match peer.recv().await {
        Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.no_such_realm"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    let err = wamp_client::Session::connect(&router.ws_url(), "nowhere")
        .await
        .expect_err("abort");
    assert_eq!(err.uri(), Some("wamp.error.no_such_realm"));
}

#[tokio::test]
async fn goodbye_is_answered_with_goodbye_and_out_and_a_new_session_can_follow() {
    let router = TestRouter::start().await;
    let mut peer = joined_peer(&router).await;
    peer.send(Message::goodbye("wamp.close.normal"))
        .await
        .expect("goodbye");
    match peer.recv().await {
        Some(Message::Goodbye { reason, .. }) => assert_eq!(reason, "wamp.close.goodbye_and_out"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    assert_eq!(router.wait_for_stats(|s| s.sessions == 0).await.sessions, 0);
    peer.send(hello()).await.expect("hello again");
    assert!(matches!(peer.recv().await, Some(Message::Welcome { .. })));
}

#[tokio::test]
async fn unsubscribe_and_unregister_of_unknown_ids_get_errors() {
    let router = TestRouter::start().await;
    let mut peer = joined_peer(&router).await;
    peer.send(Message::Unsubscribe {
        request: 1,
        subscription: 12345,
        options: Dict::new(),
    })
    .await
    .expect("send");
    match peer.recv().await {
        Some(Message::Error { error, request, .. }) => {
            assert_eq!(error, "wamp.error.no_such_subscription");
            assert_eq!(request, 1);
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    peer.send(Message::Unregister {
        request: 2,
        registration: 777,
        options: Dict::new(),
    })
    .await
    .expect("send");
    match peer.recv().await {
        Some(Message::Error { error, request, .. }) => {
            assert_eq!(error, "wamp.error.no_such_registration");
            assert_eq!(request, 2);
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_without_a_wamp_subprotocol_is_refused_with_http_400() {
    let router = TestRouter::start().await;
    let mut tcp = tokio::net::TcpStream::connect(router.ws)
        .await
        .expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: chat\r\n\r\n",
        router.ws
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = within("response", tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("wamp.2.json"), "{text}");
}

async fn rawsocket_reply(addr: std::net::SocketAddr, request: [u8; 4]) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(&request).await.expect("write");
    let mut reply = Vec::new();
    let _ = within("reply", tcp.read_to_end(&mut reply)).await;
    reply
}

#[tokio::test]
async fn rawsocket_handshake_errors_and_negotiation() {
    let router = TestRouter::start().await;
    for addr in [router.rs, router.ws] {
        assert_eq!(
            rawsocket_reply(addr, [0x7f, 0xf9, 0, 0]).await,
            vec![0x7f, 0x10, 0, 0],
            "serializer 9"
        );
        assert_eq!(
            rawsocket_reply(addr, [0x7f, 0xf1, 0, 1]).await,
            vec![0x7f, 0x30, 0, 0],
            "reserved bits"
        );
    }
    let mut tcp = tokio::net::TcpStream::connect(router.rs)
        .await
        .expect("connect");
    tcp.write_all(&[0x7f, 0x02, 0, 0])
        .await
        .expect("msgpack, 512 bytes");
    let mut reply = [0u8; 4];
    within("reply", tcp.read_exact(&mut reply))
        .await
        .expect("read");
    assert_eq!(reply[0], 0x7f);
    assert_eq!(reply[1] & 0x0f, 0x02, "serializer echoed");
    assert_eq!(reply[1] >> 4, 15, "router accepts 16 MiB by default");
}

#[tokio::test]
async fn rawsocket_ping_is_answered_with_an_identical_pong() {
    let router = TestRouter::start().await;
    let mut tcp = tokio::net::TcpStream::connect(router.rs)
        .await
        .expect("connect");
    tcp.write_all(&[0x7f, 0xf1, 0, 0]).await.expect("handshake");
    let mut reply = [0u8; 4];
    within("handshake", tcp.read_exact(&mut reply))
        .await
        .expect("read");
    tcp.write_all(&[0x01, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .await
        .expect("ping");
    let mut pong = [0u8; 9];
    within("pong", tcp.read_exact(&mut pong))
        .await
        .expect("read");
    assert_eq!(pong, [0x02, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
}

#[tokio::test]
async fn messages_over_the_limit_end_only_that_session() {
    let router = TestRouter::start_with(|c| c.limits.max_message_size = 4096).await;
    let bystander = router.join().await;

    // RawSocket: a frame header announcing more than the negotiated maximum.
    let mut peer = test_support::raw_rawsocket_tcp(router.rs, Serializer::Json)
        .await
        .expect("connect");
    peer.send(hello()).await.expect("hello");
    assert!(matches!(peer.recv().await, Some(Message::Welcome { .. })));
    let big = format!(r#"[16,1,{{}},"a.b",["{}"]]"#, "x".repeat(10_000));
    peer.send_bytes(Bytes::from(big.clone()))
        .await
        .expect("send");
    expect_violation(peer, "oversized RawSocket frame").await;

    // WebSocket: a message over max_message_size.
    let mut peer = joined_peer(&router).await;
    peer.send_bytes(Bytes::from(big)).await.expect("send");
    match peer.recv().await {
        Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    peer.expect_closed().await;
    assert!(!bystander.is_closed());
    bystander_still_works(&router).await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_disconnected_and_others_keep_their_events() {
    let router = TestRouter::start_with(|c| {
        c.limits.outbox_max_messages = 64;
        c.limits.outbox_max_bytes = 256 * 1024;
        c.limits.max_message_size = 64 * 1024;
    })
    .await;
    // The slow subscriber subscribes, then never reads again.
    let mut slow = test_support::raw_rawsocket_tcp(router.rs, Serializer::Json)
        .await
        .expect("connect");
    slow.send(hello()).await.expect("hello");
    assert!(matches!(slow.recv().await, Some(Message::Welcome { .. })));
    slow.send(Message::Subscribe {
        request: 1,
        options: Dict::new(),
        topic: "com.example.flood".into(),
    })
    .await
    .expect("subscribe");
    assert!(matches!(
        slow.recv().await,
        Some(Message::Subscribed { .. })
    ));

    let fast = router.join().await;
    let mut events = fast
        .subscribe("com.example.flood")
        .await
        .expect("subscribe");
    let publisher = router.join().await;
    let chunk = Value::from("y".repeat(8000));
    let total = 3000usize;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = tokio::spawn({
        let received = received.clone();
        async move {
            while received.load(std::sync::atomic::Ordering::SeqCst) < total {
                match tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await
                {
                    Ok(Some(_)) => {
                        received.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        }
    });
    for i in 0..total {
        publisher
            .publish(
                "com.example.flood",
                vec![Value::from(i), chunk.clone()],
                Dict::new(),
            )
            .await
            .expect("publish");
        // Pace the publisher by the fast subscriber, so only the slow one falls behind.
        if i % 16 == 15 {
            within("fast subscriber keeps up", async {
                while received.load(std::sync::atomic::Ordering::SeqCst) + 16 < i {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            })
            .await;
        }
    }
    // 24 MB were published; the slow session's queue bound is 256 KiB: it is cut off.
    let stats = router.wait_for_stats(|s| s.sessions == 2).await;
    assert_eq!(stats.sessions, 2, "the slow subscriber was disconnected");
    within("fast reader", reader).await.expect("join");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), total);
    assert!(!fast.is_closed() && !publisher.is_closed());
}

#[tokio::test]
async fn shutdown_says_goodbye_to_every_session() {
    let router = TestRouter::start().await;
    let a = router.join().await;
    let b = router.join_via(common::Via::Unix, Serializer::Cbor).await;
    let TestRouter { server, .. } = router;
    server.shutdown(std::time::Duration::from_secs(2)).await;
    for s in [a, b] {
        match within("closed", s.closed()).await {
            wamp_client::CloseReason::Goodbye { reason, .. } => {
                assert_eq!(reason, "wamp.close.system_shutdown")
            }
            other => panic!("expected GOODBYE, got {other:?}"),
        }
    }
}
