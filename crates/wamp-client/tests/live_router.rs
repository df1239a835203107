//! The client against a running router (Junction, or Crossbar.io for comparison).
//!
//! Ignored by default. Run with, e.g.:
//!
//! ```text
//! WAMP_WS_URL=ws://127.0.0.1:8080/ws WAMP_RS_URL=rs://127.0.0.1:8081 WAMP_REALM=realm1 \
//!     cargo test -p wamp-client --test live_router -- --ignored
//! ```

use std::time::Duration;

use wamp_client::{dict, CloseReason, ConnectOptions, Dict, Payload, Serializer, Session, Value};

fn urls() -> Vec<String> {
    let urls: Vec<String> = ["WAMP_WS_URL", "WAMP_RS_URL"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok())
        .collect();
    assert!(!urls.is_empty(), "set WAMP_WS_URL and/or WAMP_RS_URL");
    urls
}

fn realm() -> String {
    std::env::var("WAMP_REALM").unwrap_or_else(|_| "realm1".into())
}

async fn connect(url: &str, serializer: Serializer) -> Session {
    let options = ConnectOptions {
        serializer,
        ..Default::default()
    };
    Session::connect_with(url, &realm(), options)
        .await
        .unwrap_or_else(|e| panic!("connect {url} ({serializer}): {e}"))
}

#[tokio::test]
#[ignore = "needs a running router: set WAMP_WS_URL / WAMP_RS_URL"]
async fn rpc_and_pubsub_against_a_router() {
    for url in urls() {
        for serializer in Serializer::ALL {
            let callee = connect(&url, serializer).await;
            // The caller uses another serializer, so the router transcodes.
            let other = Serializer::ALL[(serializer.index() + 1) % 3];
            let caller = connect(&url, other).await;
            let procedure = format!("com.example.echo.{}", callee.id());
            let handle = callee
                .register_fn(&procedure, |args: Vec<Value>, kwargs: Dict| async move {
                    if args.is_empty() {
                        Err(("com.example.empty".to_owned(), vec![], Dict::new()))
                    } else {
                        Ok((args, kwargs))
                    }
                })
                .await
                .expect("register");
            let err = callee
                .register(&procedure)
                .await
                .expect_err("second registration");
            assert_eq!(err.uri(), Some("wamp.error.procedure_already_exists"));

            let bin = Value::Bytes(bytes::Bytes::from_static(b"\x00\x01\xfe"));
            let result = caller
                .call(
                    &procedure,
                    vec![Value::from(1), Value::from("two"), bin.clone()],
                    dict! {"k" => 3.5},
                )
                .await
                .expect("call");
            assert_eq!(
                result.args,
                vec![Value::from(1), Value::from("two"), bin.clone()]
            );
            assert_eq!(result.kwargs, dict! {"k" => 3.5});
            let err = caller
                .call(&procedure, vec![], Dict::new())
                .await
                .expect_err("application error");
            assert_eq!(err.uri(), Some("com.example.empty"));
            let err = caller
                .call("com.example.nobody", vec![], Dict::new())
                .await
                .expect_err("no callee");
            assert_eq!(err.uri(), Some("wamp.error.no_such_procedure"));
            handle.unregister().await.expect("unregister");

            let topic = format!("com.example.topic.{}", callee.id());
            let mut sub = callee.subscribe(&topic).await.expect("subscribe");
            let mut sub2 = callee.subscribe(&topic).await.expect("subscribe again");
            assert_eq!(sub.id(), sub2.id());
            let publication = caller
                .publish_with(
                    &topic,
                    Payload::new(vec![bin.clone()], dict! {"n" => 1}),
                    dict! {"acknowledge" => true},
                )
                .await
                .expect("publish")
                .expect("publication id");
            for s in [&mut sub, &mut sub2] {
                let event = tokio::time::timeout(Duration::from_secs(5), s.next())
                    .await
                    .expect("event in time")
                    .expect("event");
                assert_eq!(event.publication, publication);
                assert_eq!(event.args, vec![bin.clone()]);
                assert_eq!(event.kwargs, dict! {"n" => 1});
            }
            sub.unsubscribe().await.expect("unsubscribe one");
            sub2.unsubscribe().await.expect("unsubscribe last");

            caller.leave().await.expect("leave");
            assert_eq!(caller.closed().await, CloseReason::Left);
            callee.leave().await.expect("leave");
        }
    }
}

#[tokio::test]
#[ignore = "needs a running router: set WAMP_WS_URL / WAMP_RS_URL"]
async fn unknown_realm_is_refused() {
    for url in urls() {
        match Session::connect(&url, "com.example.no.such.realm").await {
            Err(e) => assert!(e.uri().is_some(), "{url}: {e}"),
            Ok(_) => panic!("{url}: joined a realm that does not exist"),
        }
    }
}
