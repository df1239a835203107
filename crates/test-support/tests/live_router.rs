//! Raw peers against a running router. Ignored by default; run with
//! `WAMP_WS_URL=ws://127.0.0.1:8080/ws WAMP_RS_ADDR=127.0.0.1:8081 cargo test -p test-support --test live_router -- --ignored`.

use test_support::{raw_rawsocket_tcp, raw_ws, RawPeer};
use wamp_proto::{Message, Serializer};

async fn join_and_leave(mut peer: RawPeer) {
    let (session, _) = peer.join("realm1").await;
    assert!(session > 0);
    peer.send(Message::goodbye("wamp.close.normal"))
        .await
        .expect("send GOODBYE");
    match peer.recv().await {
        Some(Message::Goodbye { .. }) => {}
        other => panic!("expected GOODBYE, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a running router: set WAMP_WS_URL and WAMP_RS_ADDR"]
async fn raw_peers_join_a_router() {
    let ws = std::env::var("WAMP_WS_URL").expect("WAMP_WS_URL");
    let rs = std::env::var("WAMP_RS_ADDR").expect("WAMP_RS_ADDR");
    for serializer in Serializer::ALL {
        let peer = raw_ws(&ws, &[serializer.subprotocol()])
            .await
            .expect("ws connect");
        assert_eq!(peer.serializer(), serializer);
        join_and_leave(peer).await;
        let peer = raw_rawsocket_tcp(rs.as_str(), serializer)
            .await
            .expect("rawsocket connect");
        join_and_leave(peer).await;
    }
    // Invalid JSON gets the connection closed.
    let mut peer = raw_ws(&ws, &["wamp.2.json"]).await.expect("ws connect");
    peer.join("realm1").await;
    peer.send_bytes(&b"[48, 1, {}"[..]).await.expect("send");
    peer.expect_closed().await;
}
