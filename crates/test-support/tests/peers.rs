//! Raw peers talking to each other: client side against server side.

use std::time::Duration;

use bytes::Bytes;
use test_support::{
    http_upgrade, msg, raw_rawsocket_tcp, raw_rawsocket_unix, raw_ws, tcp_raw, PeerFrame, RawPeer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wamp_proto::{Message, Serializer, Value};

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

/// Accepts one WebSocket peer answering with the first offered subprotocol.
fn serve_ws(l: TcpListener) -> tokio::task::JoinHandle<RawPeer> {
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        RawPeer::accept_ws(tcp, |offered| offered.first().cloned())
            .await
            .expect("accept ws")
    })
}

async fn exchange(client: &mut RawPeer, server: &mut RawPeer) {
    assert_eq!(client.serializer(), server.serializer());
    let join = client.join("realm1");
    let script = async {
        match server.recv().await {
            Some(Message::Hello { realm, details }) => {
                assert_eq!(realm, "realm1");
                assert!(details.contains_key("roles"));
            }
            other => panic!("expected HELLO, got {other:?}"),
        }
        server.send(msg::welcome(5)).await.expect("welcome");
    };
    let ((session, details), ()) = tokio::join!(join, script);
    assert_eq!(session, 5);
    assert!(details.contains_key("roles"));
    client
        .send(msg::call(1, "p", vec![Value::from("é")]))
        .await
        .expect("call");
    assert_eq!(
        server.recv().await,
        Some(msg::call(1, "p", vec![Value::from("é")]))
    );
}

#[tokio::test]
async fn websocket_peers() {
    let (l, addr) = listener().await;
    let server = serve_ws(l);
    let mut client = raw_ws(&format!("ws://{addr}/ws"), &["wamp.2.cbor", "wamp.2.json"])
        .await
        .expect("connect");
    let mut server = server.await.expect("task");
    assert_eq!(client.subprotocol(), Some("wamp.2.cbor"));
    assert_eq!(client.serializer(), Serializer::Cbor);
    exchange(&mut client, &mut server).await;
    // CBOR travels in binary frames.
    server.send(msg::result(1, vec![])).await.expect("send");
    assert!(matches!(
        client.recv_frame().await,
        Some(PeerFrame::Binary(_))
    ));
    // Nothing more: a receive times out.
    assert_eq!(client.recv_timeout(Duration::from_millis(50)).await, None);
    assert!(!client.is_closed());
    client.close().await.expect("close");
    server.expect_closed().await;
}

#[tokio::test]
async fn websocket_json_text_frames_and_invalid_utf8() {
    let (l, addr) = listener().await;
    let server = serve_ws(l);
    let mut client = raw_ws(&format!("ws://{addr}/"), &["wamp.2.json"])
        .await
        .expect("connect");
    let mut server = server.await.expect("task");
    client.send(msg::hello("r")).await.expect("send");
    match server.recv_frame().await {
        Some(PeerFrame::Text(bytes)) => assert!(bytes.starts_with(b"[1,")),
        other => panic!("expected a text frame, got {other:?}"),
    }
    client
        .send_bytes(&b"[1, \"r\", {\"x\": \"\xff\"}]"[..])
        .await
        .expect("send invalid UTF-8");
    // The receiving side fails the connection.
    assert!(server.recv_frame().await.is_none());
    assert!(server.is_closed());
    drop(server);
    assert!(client.closed_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn websocket_without_subprotocol() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        RawPeer::accept_ws(tcp, |offered| {
            assert!(offered.is_empty());
            None
        })
        .await
        .expect("accept ws")
    });
    let client = raw_ws(&format!("ws://{addr}/ws"), &[])
        .await
        .expect("connect");
    let server = server.await.expect("task");
    assert_eq!(client.subprotocol(), None);
    assert_eq!(client.serializer(), Serializer::Json);
    assert_eq!(server.subprotocol(), None);

    // Offering one that the server does not answer fails the client handshake.
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        let _ = RawPeer::accept_ws(tcp, |_| None).await;
    });
    assert!(raw_ws(&format!("ws://{addr}/ws"), &["wamp.2.json"])
        .await
        .is_err());
}

#[tokio::test]
async fn http_upgrade_shows_the_response_head() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        let _ = RawPeer::accept_ws(tcp, |offered| offered.get(1).cloned()).await;
    });
    let response = http_upgrade(addr, "/ws", &["wamp.2.cbor", "wamp.2.msgpack"])
        .await
        .expect("upgrade");
    assert_eq!(response.status, 101);
    assert_eq!(
        response.header("sec-websocket-protocol"),
        Some("wamp.2.msgpack")
    );
    assert_eq!(response.header("Upgrade"), Some("websocket"));
}

#[tokio::test]
async fn rawsocket_peers_over_tcp() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        RawPeer::accept_rawsocket(tcp, 1 << 20)
            .await
            .expect("accept rawsocket")
    });
    let mut client = raw_rawsocket_tcp(addr, Serializer::MsgPack)
        .await
        .expect("connect");
    let mut server = server.await.expect("task");
    assert_eq!(client.remote_max_len(), Some(1 << 20));
    assert_eq!(server.remote_max_len(), Some(16 << 20));
    exchange(&mut client, &mut server).await;

    // PING: recv_frame shows it; recv_raw answers it.
    client
        .send_frame(PeerFrame::Ping(Bytes::from_static(b"p1")))
        .await
        .expect("ping");
    assert_eq!(
        server.recv_frame().await,
        Some(PeerFrame::Ping(Bytes::from_static(b"p1")))
    );
    client
        .send_frame(PeerFrame::Ping(Bytes::from_static(b"p2")))
        .await
        .expect("ping");
    assert_eq!(server.recv_timeout(Duration::from_millis(100)).await, None);
    assert_eq!(
        client.recv_frame().await,
        Some(PeerFrame::Pong(Bytes::from_static(b"p2")))
    );

    // Bytes below the framing.
    client
        .send_wire(&[0, 0, 0, 2, b'[', b']'])
        .await
        .expect("wire");
    assert_eq!(server.recv_raw().await, Some(Bytes::from_static(b"[]")));

    drop(client);
    let frames = server.expect_closed().await;
    assert!(frames.is_empty());
    assert_eq!(server.recv().await, None);
}

#[cfg(unix)]
#[tokio::test]
async fn rawsocket_peers_over_unix_sockets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let l = tokio::net::UnixListener::bind(&path).expect("bind");
    let server = tokio::spawn(async move {
        let (stream, _) = l.accept().await.expect("accept");
        RawPeer::accept_rawsocket(stream, 16 << 20)
            .await
            .expect("accept rawsocket")
    });
    let mut client = raw_rawsocket_unix(&path, Serializer::Json)
        .await
        .expect("connect");
    let mut server = server.await.expect("task");
    exchange(&mut client, &mut server).await;
}

#[tokio::test]
async fn rawsocket_handshake_byte_by_byte() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        RawPeer::accept_rawsocket(tcp, 1 << 20).await
    });
    let mut tcp = tcp_raw(addr).await;
    assert!(tcp.nodelay().expect("nodelay"));
    // Serializer 9 does not exist.
    tcp.write_all(&[0x7F, 0xF9, 0, 0]).await.expect("write");
    let mut reply = [0u8; 4];
    tcp.read_exact(&mut reply).await.expect("reply");
    assert_eq!(reply, [0x7F, 0x10, 0, 0]);
    assert!(server.await.expect("task").is_err());

    // A client peer sees a refusal as ConnectionRefused.
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.expect("accept");
        let mut request = [0u8; 4];
        tcp.read_exact(&mut request).await.expect("request");
        tcp.write_all(&[0x7F, 0x40, 0, 0]).await.expect("refuse");
    });
    let err = raw_rawsocket_tcp(addr, Serializer::Json)
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn hello_builder_announces_all_client_roles() {
    let Message::Hello { realm, details } = msg::hello("r1") else {
        panic!("not a HELLO");
    };
    assert_eq!(realm, "r1");
    let roles = details
        .get("roles")
        .and_then(Value::as_dict)
        .expect("roles");
    let names: Vec<&str> = roles.keys().map(String::as_str).collect();
    assert_eq!(names, ["callee", "caller", "publisher", "subscriber"]);
}
