//! Advanced Profile publish and subscribe in the client against a scripted fake
//! router (test-support's server-side raw peer over RawSocket): publication and
//! subscription options on the wire, event details, overlapping and shared
//! subscriptions, revocation, event history and testament call shapes, slow
//! subscribers, and the HELLO feature announcement.

use std::time::{Duration, Instant};

use bytes::Bytes;
use test_support::RawPeer;
use tokio::net::TcpListener;
use wamp_client::{
    dict, ConnectOptions, Dict, Error, Event, EventHistoryQuery, MatchPolicy, Message, MessageType,
    Payload, PublishOptions, Session, SubscribeOptions, Subscription, TestamentOptions,
    TestamentScope, Value,
};

const REALM: &str = "realm1";

/// Every broker feature the client can use.
const BROKER_FEATURES: &[&str] = &[
    "publisher_identification",
    "subscriber_blackwhite_listing",
    "publisher_exclusion",
    "pattern_based_subscription",
    "subscription_revocation",
    "event_retention",
    "payload_passthru_mode",
];

fn features(names: &[&str]) -> Dict {
    let features: Dict = names
        .iter()
        .map(|f| ((*f).to_owned(), Value::from(true)))
        .collect();
    dict! {"features" => features}
}

/// A client session joined to a fake router whose broker announces `broker`;
/// also returns the client's HELLO details.
async fn establish_full(broker: &[&str], options: ConnectOptions) -> (Session, RawPeer, Dict) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("rs://{}", listener.local_addr().expect("addr"));
    let client = tokio::spawn(async move { Session::connect_with(&url, REALM, options).await });
    let (tcp, _) = listener.accept().await.expect("accept");
    let mut router = RawPeer::accept_rawsocket(tcp, 16 << 20)
        .await
        .expect("rawsocket accept");
    let Message::Hello { details: hello, .. } = recv(&mut router).await else {
        panic!("expected HELLO");
    };
    let roles = dict! {
        "broker" => features(broker),
        "dealer" => features(&[]),
    };
    router
        .send(Message::Welcome {
            session: 4242,
            details: dict! {"roles" => roles},
        })
        .await
        .expect("send WELCOME");
    let session = client.await.expect("join").expect("connect");
    (session, router, hello)
}

async fn establish() -> (Session, RawPeer) {
    let (session, router, _) = establish_full(BROKER_FEATURES, ConnectOptions::default()).await;
    (session, router)
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

/// Expects SUBSCRIBE and returns (request, options, topic).
async fn expect_subscribe(router: &mut RawPeer) -> (u64, Dict, String) {
    match recv(router).await {
        Message::Subscribe {
            request,
            options,
            topic,
        } => (request, options, topic),
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    }
}

/// Subscribes to `topic` with `options`; the router answers with `id`. Returns the
/// subscription and the SUBSCRIBE's options as sent.
async fn subscribe(
    session: &Session,
    router: &mut RawPeer,
    topic: &str,
    options: impl Into<SubscribeOptions>,
    id: u64,
) -> (Subscription, Dict) {
    let subscribe = session.subscribe_with(topic, options);
    let script = async {
        let (request, options, sent_topic) = expect_subscribe(router).await;
        assert_eq!(sent_topic, topic);
        router
            .send(Message::Subscribed {
                request,
                subscription: id,
            })
            .await
            .expect("send SUBSCRIBED");
        options
    };
    let (sub, options) = tokio::join!(subscribe, script);
    (sub.expect("subscribed"), options)
}

fn event(subscription: u64, publication: u64, details: Dict, n: i64) -> Message {
    Message::Event {
        subscription,
        publication,
        details,
        payload: Payload::from_args(vec![Value::from(n)]),
    }
}

async fn next(sub: &mut Subscription) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event or the end in time")
}

/// Expects no event on `sub` for a little while.
async fn no_event(sub: &mut Subscription) {
    if let Ok(e) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
        panic!("expected no event, got {e:?}");
    }
}

/// Expects PUBLISH and returns (request, options, topic, payload).
async fn expect_publish(router: &mut RawPeer) -> (u64, Dict, String, Payload) {
    match recv(router).await {
        Message::Publish {
            request,
            options,
            topic,
            payload,
        } => (request, options, topic, payload),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// Expects CALL and returns (request, procedure, args, kwargs).
async fn expect_call(router: &mut RawPeer) -> (u64, String, Vec<Value>, Dict) {
    match recv(router).await {
        Message::Call {
            request,
            procedure,
            payload,
            options,
        } => {
            assert!(options.is_empty(), "{options:?}");
            let args = payload.args().expect("args");
            let kwargs = payload.kwargs().expect("kwargs");
            (request, procedure, args, kwargs)
        }
        other => panic!("expected CALL, got {other:?}"),
    }
}

fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

#[tokio::test]
async fn hello_announces_the_implemented_pubsub_features() {
    let (_session, _router, hello) =
        establish_full(BROKER_FEATURES, ConnectOptions::default()).await;
    let roles = hello.get("roles").and_then(Value::as_dict).expect("roles");
    let announced = |role: &str| -> Vec<&str> {
        let features = roles
            .get(role)
            .and_then(Value::as_dict)
            .and_then(|r| r.get("features"))
            .and_then(Value::as_dict)
            .unwrap_or_else(|| panic!("{role} features"));
        assert!(features.values().all(|v| *v == Value::from(true)));
        let mut names: Vec<&str> = features.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    };
    let sorted = |names: &[&'static str]| {
        let mut names = names.to_vec();
        names.sort_unstable();
        names
    };
    assert_eq!(
        announced("publisher"),
        sorted(&[
            "payload_passthru_mode",
            "publisher_exclusion",
            "publisher_identification",
            "subscriber_blackwhite_listing",
        ])
    );
    assert_eq!(
        announced("subscriber"),
        sorted(&[
            "pattern_based_subscription",
            "payload_passthru_mode",
            "publication_trustlevels",
            "publisher_identification",
            "subscription_revocation",
        ])
    );
    assert_eq!(
        announced("publisher"),
        sorted(wamp_client::PUBLISHER_FEATURES)
    );
    assert_eq!(
        announced("subscriber"),
        sorted(wamp_client::SUBSCRIBER_FEATURES)
    );
}

#[tokio::test]
async fn publish_options_go_on_the_wire() {
    let (session, mut router) = establish().await;
    let options = PublishOptions::new()
        .acknowledge(true)
        .exclude_me(false)
        .exclude([11u64, 12])
        .exclude_authid(["mallory"])
        .exclude_authrole(vec!["guest".to_owned()])
        .eligible([13u64])
        .eligible_authid(["alice", "bob"])
        .eligible_authrole(["user"])
        .disclose_me(true)
        .retain(true)
        .option("rkey", "sensor-1");
    let publish = session.publish_with(
        "com.example.topic",
        Payload::new(vec![Value::from(1)], dict! {"k" => "v"}),
        options,
    );
    let script = async {
        let (request, options, topic, payload) = expect_publish(&mut router).await;
        assert_eq!(topic, "com.example.topic");
        let mut expected = dict! {
            "acknowledge" => true,
            "exclude_me" => false,
            "exclude" => vec![Value::from(11u64), Value::from(12u64)],
            "eligible" => vec![Value::from(13u64)],
            "disclose_me" => true,
            "retain" => true,
            "rkey" => "sensor-1",
        };
        expected.insert("exclude_authid".into(), strings(&["mallory"]));
        expected.insert("exclude_authrole".into(), strings(&["guest"]));
        expected.insert("eligible_authid".into(), strings(&["alice", "bob"]));
        expected.insert("eligible_authrole".into(), strings(&["user"]));
        assert_eq!(options, expected);
        assert_eq!(payload.args().expect("args"), vec![Value::from(1)]);
        assert_eq!(payload.kwargs().expect("kwargs"), dict! {"k" => "v"});
        router
            .send(Message::Published {
                request,
                publication: 777,
            })
            .await
            .expect("send PUBLISHED");
    };
    let (result, ()) = tokio::join!(publish, script);
    assert_eq!(result.expect("published"), Some(777));

    // A Dict still works; without acknowledge nothing waits.
    let sent = session
        .publish_with(
            "com.example.topic",
            Payload::empty(),
            dict! {"exclude_me" => false},
        )
        .await
        .expect("publish");
    assert_eq!(sent, None);
    let (_, options, _, payload) = expect_publish(&mut router).await;
    assert_eq!(options, dict! {"exclude_me" => false});
    assert!(payload.is_empty());

    // An acknowledged refusal is the router's ERROR.
    let publish = session.publish_with(
        "com.example.topic",
        Payload::empty(),
        PublishOptions::new().acknowledge(true).disclose_me(true),
    );
    let script = async {
        let (request, ..) = expect_publish(&mut router).await;
        router
            .send(Message::error(
                MessageType::Publish,
                request,
                "wamp.error.option_disallowed.disclose_me",
                Payload::empty(),
            ))
            .await
            .expect("send ERROR");
    };
    let (result, ()) = tokio::join!(publish, script);
    assert_eq!(
        result.expect_err("refused").uri(),
        Some("wamp.error.option_disallowed.disclose_me")
    );
}

#[tokio::test]
async fn passthru_payloads_are_published_opaque() {
    let (session, mut router) = establish().await;
    assert!(session.broker_supports("payload_passthru_mode"));
    let data = Bytes::from_static(b"\x00\x01binary\xff");
    let options = PublishOptions::new()
        .ppt_serializer("cbor")
        .ppt_cipher("xsalsa20poly1305")
        .ppt_keyid("0xabc");
    session
        .publish_passthru("com.example.ppt", "x_custom", data.clone(), options)
        .await
        .expect("publish");
    let (_, options, topic, payload) = expect_publish(&mut router).await;
    assert_eq!(topic, "com.example.ppt");
    assert_eq!(
        options,
        dict! {"ppt_scheme" => "x_custom", "ppt_serializer" => "cbor",
        "ppt_cipher" => "xsalsa20poly1305", "ppt_keyid" => "0xabc"}
    );
    // The specification's shape: the binary as the only element of Arguments.
    let elements = payload.elements().expect("elements");
    assert_eq!(
        elements.args,
        Some(Value::List(vec![Value::Bytes(data.clone())]))
    );
    assert_eq!(elements.kwargs, None);

    // Autobahn's shape: the binary in place of Arguments, through publish_with.
    session
        .publish_with(
            "com.example.ppt",
            Payload::opaque(data.clone()),
            dict! {"enc_algo" => "cryptobox"},
        )
        .await
        .expect("publish");
    let (_, options, _, payload) = expect_publish(&mut router).await;
    assert_eq!(options, dict! {"enc_algo" => "cryptobox"});
    assert_eq!(
        payload.elements().expect("elements").args,
        Some(Value::Bytes(data.clone()))
    );

    // Without the broker feature nothing is sent.
    let (session, mut router, _) = establish_full(&[], ConnectOptions::default()).await;
    let err = session
        .publish_passthru("t", "mqtt", data.clone(), PublishOptions::new())
        .await
        .expect_err("unsupported");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    let err = session
        .publish_with(
            "t",
            Payload::empty(),
            PublishOptions::new().ppt_scheme("mqtt"),
        )
        .await
        .expect_err("unsupported");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert_silent(&mut router).await;
}

#[tokio::test]
async fn subscribe_options_go_on_the_wire() {
    let (session, mut router) = establish().await;
    let (sub, options) = subscribe(
        &session,
        &mut router,
        "com.example.",
        SubscribeOptions::new()
            .match_policy(MatchPolicy::Prefix)
            .get_retained(true),
        1,
    )
    .await;
    assert_eq!(options, dict! {"match" => "prefix", "get_retained" => true});
    assert_eq!(sub.topic(), "com.example.");
    let (_wild, options) = subscribe(
        &session,
        &mut router,
        "com..topic",
        SubscribeOptions::new().match_policy(MatchPolicy::Wildcard),
        2,
    )
    .await;
    assert_eq!(options, dict! {"match" => "wildcard"});
    // A Dict still works, and a plain subscribe sends no options.
    let (_d, options) = subscribe(
        &session,
        &mut router,
        "com.example.x",
        dict! {"match" => "exact", "nkey" => "node1"},
        3,
    )
    .await;
    assert_eq!(options, dict! {"match" => "exact", "nkey" => "node1"});
    let (_e, options) = subscribe(&session, &mut router, "com.x", Dict::new(), 4).await;
    assert!(options.is_empty());
}

#[tokio::test]
async fn event_details_are_readable() {
    let (session, mut router) = establish().await;
    let (mut sub, _) = subscribe(
        &session,
        &mut router,
        "com.example.",
        SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
        9,
    )
    .await;
    let details = dict! {
        "publisher" => 31u64,
        "publisher_authid" => "alice",
        "publisher_authrole" => "admin",
        "topic" => "com.example.a.b",
        "retained" => true,
        "trustlevel" => 2u64,
        "ppt_scheme" => "mqtt",
        "ppt_serializer" => "native",
        "ppt_cipher" => "aes256gcm",
        "ppt_keyid" => "key-1",
        "x_custom" => "kept",
    };
    let data = Bytes::from_static(b"opaque\x00bytes");
    router
        .send(Message::Event {
            subscription: 9,
            publication: 100,
            details: details.clone(),
            payload: Payload::from_args(vec![Value::Bytes(data.clone())]),
        })
        .await
        .expect("send EVENT");
    let event = next(&mut sub).await.expect("event");
    assert_eq!(event.publisher(), Some(31));
    assert_eq!(event.publisher_authid(), Some("alice"));
    assert_eq!(event.publisher_authrole(), Some("admin"));
    assert_eq!(event.topic(), Some("com.example.a.b"));
    assert!(event.retained());
    assert_eq!(event.trustlevel(), Some(2));
    assert_eq!(event.ppt_scheme(), Some("mqtt"));
    assert_eq!(event.ppt_serializer(), Some("native"));
    assert_eq!(event.ppt_cipher(), Some("aes256gcm"));
    assert_eq!(event.ppt_keyid(), Some("key-1"));
    assert_eq!(event.passthru_payload(), Some(&data));
    assert_eq!(event.details, details, "the raw details, unknown keys kept");

    // Autobahn-style bare binary element is a passthru payload too.
    router
        .send(Message::Event {
            subscription: 9,
            publication: 101,
            details: dict! {"ppt_scheme" => "x_e2e"},
            payload: Payload::opaque(data.clone()),
        })
        .await
        .expect("send EVENT");
    let event = next(&mut sub).await.expect("event");
    assert_eq!(event.passthru_payload(), Some(&data));

    // Missing details read as absent.
    router
        .send(event_msg_with(9, 102, Dict::new()))
        .await
        .expect("send EVENT");
    let event = next(&mut sub).await.expect("event");
    assert_eq!(event.publisher(), None);
    assert_eq!(event.publisher_authid(), None);
    assert!(!event.retained());
    assert_eq!(event.topic(), None);
    assert_eq!(event.trustlevel(), None);
    assert_eq!(event.ppt_scheme(), None);
    assert_eq!(event.passthru_payload(), None);
    assert_eq!(event.args, vec![Value::from(0)]);

    // A binary argument without ppt_scheme is not a passthru payload.
    router
        .send(Message::Event {
            subscription: 9,
            publication: 103,
            details: Dict::new(),
            payload: Payload::from_args(vec![Value::Bytes(data.clone())]),
        })
        .await
        .expect("send EVENT");
    let event = next(&mut sub).await.expect("event");
    assert_eq!(event.passthru_payload(), None);
    assert_eq!(event.args, vec![Value::Bytes(data)]);

    // A wrongly typed well-known detail is a protocol violation (the decoder checks
    // them), not a panic.
    router
        .send(event_msg_with(9, 104, dict! {"publisher" => "not an id"}))
        .await
        .expect("send EVENT");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(next(&mut sub).await.is_none());
}

fn event_msg_with(subscription: u64, publication: u64, details: Dict) -> Message {
    event(subscription, publication, details, 0)
}

#[tokio::test]
async fn overlapping_subscriptions_each_get_their_own_events() {
    let (session, mut router) = establish().await;
    let (mut exact, _) = subscribe(&session, &mut router, "com.a.b", Dict::new(), 1).await;
    let (mut prefix, _) = subscribe(
        &session,
        &mut router,
        "com.a",
        SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
        2,
    )
    .await;
    let (mut wildcard, _) = subscribe(
        &session,
        &mut router,
        "com..b",
        SubscribeOptions::new().match_policy(MatchPolicy::Wildcard),
        3,
    )
    .await;
    // One publication matching all three: one EVENT per subscription.
    router
        .send(event(1, 50, Dict::new(), 1))
        .await
        .expect("send");
    router
        .send(event(2, 50, dict! {"topic" => "com.a.b"}, 1))
        .await
        .expect("send");
    router
        .send(event(3, 50, dict! {"topic" => "com.a.b"}, 1))
        .await
        .expect("send");
    // One matching only the prefix subscription.
    router
        .send(event(2, 51, dict! {"topic" => "com.a.c"}, 2))
        .await
        .expect("send");
    for (sub, id) in [(&mut exact, 1), (&mut prefix, 2), (&mut wildcard, 3)] {
        let e = next(sub).await.expect("event");
        assert_eq!((e.subscription, e.publication), (id, 50));
        assert_eq!(e.topic(), if id == 1 { None } else { Some("com.a.b") });
    }
    let e = next(&mut prefix).await.expect("event");
    assert_eq!((e.publication, e.topic()), (51, Some("com.a.c")));
    no_event(&mut exact).await;
    no_event(&mut wildcard).await;
    // Unsubscribing one leaves the others alone.
    let unsubscribe = prefix.unsubscribe();
    let script = async {
        let Message::Unsubscribe {
            request,
            subscription,
            ..
        } = recv(&mut router).await
        else {
            panic!("expected UNSUBSCRIBE");
        };
        assert_eq!(subscription, 2);
        router
            .send(Message::Unsubscribed {
                request,
                details: None,
            })
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(unsubscribe, script);
    result.expect("unsubscribed");
    router
        .send(event(3, 52, Dict::new(), 3))
        .await
        .expect("send");
    assert_eq!(next(&mut wildcard).await.expect("event").publication, 52);
}

#[tokio::test]
async fn identical_subscriptions_share_the_router_subscription() {
    let (session, mut router) = establish().await;
    let (a, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    let (mut b, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    let (mut c, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    assert_eq!((a.id(), b.id(), c.id()), (70, 70, 70));
    router
        .send(event(70, 1, Dict::new(), 1))
        .await
        .expect("send");
    let mut a = a;
    for sub in [&mut a, &mut b, &mut c] {
        assert_eq!(next(sub).await.expect("event").publication, 1);
    }
    // Dropping one and unsubscribing another send nothing; the third still gets events.
    drop(a);
    b.unsubscribe().await.expect("local unsubscribe");
    assert_silent(&mut router).await;
    router
        .send(event(70, 2, Dict::new(), 2))
        .await
        .expect("send");
    assert_eq!(next(&mut c).await.expect("event").publication, 2);
    // The last one goes: UNSUBSCRIBE.
    drop(c);
    match recv(&mut router).await {
        Message::Unsubscribe { subscription, .. } => assert_eq!(subscription, 70),
        other => panic!("expected UNSUBSCRIBE, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribing_while_the_same_subscription_is_being_unsubscribed() {
    let (session, mut router) = establish().await;
    let (a, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    // The only handle goes: UNSUBSCRIBE is sent, but not yet answered.
    drop(a);
    let Message::Unsubscribe {
        request: unsubscribe_request,
        subscription,
        ..
    } = recv(&mut router).await
    else {
        panic!("expected UNSUBSCRIBE");
    };
    assert_eq!(subscription, 70);
    let subscribe = session.subscribe("com.t");
    let script = async {
        // The router saw this SUBSCRIBE before the UNSUBSCRIBE: it answers with the
        // subscription that is about to go.
        let (request, _, _) = expect_subscribe(&mut router).await;
        router
            .send(Message::Subscribed {
                request,
                subscription: 70,
            })
            .await
            .expect("send");
        router
            .send(Message::Unsubscribed {
                request: unsubscribe_request,
                details: None,
            })
            .await
            .expect("send");
        // So the client asks again, and gets a fresh subscription.
        let (request, options, topic) = expect_subscribe(&mut router).await;
        assert_eq!((topic.as_str(), options), ("com.t", Dict::new()));
        router
            .send(Message::Subscribed {
                request,
                subscription: 71,
            })
            .await
            .expect("send");
    };
    let (sub, ()) = tokio::join!(subscribe, script);
    let mut sub = sub.expect("subscribed");
    assert_eq!(sub.id(), 71);
    router
        .send(event(71, 5, Dict::new(), 5))
        .await
        .expect("send");
    assert_eq!(next(&mut sub).await.expect("event").publication, 5);
}

#[tokio::test]
async fn revocation_ends_every_handle_with_the_reason() {
    let (session, mut router) = establish().await;
    let (mut a, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    let (mut b, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    let (mut other, _) = subscribe(&session, &mut router, "com.u", Dict::new(), 80).await;
    router
        .send(event(70, 1, Dict::new(), 1))
        .await
        .expect("send");
    router
        .send(Message::Unsubscribed {
            request: 0,
            details: Some(dict! {"subscription" => 70u64, "reason" => "wamp.error.revoked"}),
        })
        .await
        .expect("send");
    for sub in [&mut a, &mut b] {
        // The event queued before the revocation is still there, then the end.
        assert_eq!(next(sub).await.expect("queued event").publication, 1);
        assert!(next(sub).await.is_none());
        assert!(sub.is_revoked());
        assert_eq!(sub.revocation_reason(), Some("wamp.error.revoked"));
    }
    // Late events for it are ignored; the other subscription carries on.
    router
        .send(event(70, 2, Dict::new(), 2))
        .await
        .expect("send");
    router
        .send(event(80, 3, Dict::new(), 3))
        .await
        .expect("send");
    assert_eq!(next(&mut other).await.expect("event").publication, 3);
    assert!(!other.is_revoked());
    assert_eq!(other.revocation_reason(), None);
    // Unsubscribing or dropping a revoked subscription sends nothing.
    a.unsubscribe().await.expect("already gone");
    drop(b);
    assert_silent(&mut router).await;

    // A revocation without a reason.
    router
        .send(Message::Unsubscribed {
            request: 0,
            details: Some(dict! {"subscription" => 80u64}),
        })
        .await
        .expect("send");
    assert!(next(&mut other).await.is_none());
    assert!(other.is_revoked());
    assert_eq!(other.revocation_reason(), None);
}

#[tokio::test]
async fn revocation_naming_no_subscription_is_a_protocol_violation() {
    let (session, mut router) = establish().await;
    let (mut sub, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 70).await;
    router
        .send(Message::Unsubscribed {
            request: 0,
            details: Some(dict! {"reason" => "x"}),
        })
        .await
        .expect("send");
    match recv(&mut router).await {
        Message::Abort { reason, .. } => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(next(&mut sub).await.is_none());
    assert!(!sub.is_revoked());
}

#[tokio::test]
async fn event_history_call_shape() {
    let (session, mut router) = establish().await;
    let query = session.subscription_events(
        70,
        EventHistoryQuery::new()
            .limit(2)
            .reverse(true)
            .after_publication(9)
            .from_time("2024-01-01T00:00:00Z")
            .topic("com.a.b"),
    );
    let script = async {
        let (request, procedure, args, kwargs) = expect_call(&mut router).await;
        assert_eq!(procedure, "wamp.subscription.get_events");
        assert_eq!(args, vec![Value::from(70u64)]);
        assert_eq!(
            kwargs,
            dict! {"limit" => 2u64, "reverse" => true, "after_publication" => 9u64,
            "from_time" => "2024-01-01T00:00:00Z", "topic" => "com.a.b"}
        );
        let entry = |publication: u64| {
            Value::Dict(dict! {
                "timestamp" => "2024-01-01T00:00:01Z",
                "subscription" => 70u64,
                "publication" => publication,
                "details" => dict! {"topic" => "com.a.b"},
                "args" => vec![Value::from(publication)],
                "kwargs" => dict! {"k" => 1},
            })
        };
        router
            .send(Message::Result {
                request,
                details: Dict::new(),
                payload: Payload::from_args(vec![entry(12), entry(11)]),
            })
            .await
            .expect("send RESULT");
    };
    let (events, ()) = tokio::join!(query, script);
    let events = events.expect("history");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].publication, Some(12));
    assert_eq!(events[1].publication, Some(11));
    assert_eq!(events[0].subscription, Some(70));
    assert_eq!(events[0].timestamp.as_deref(), Some("2024-01-01T00:00:01Z"));
    assert_eq!(events[0].details, dict! {"topic" => "com.a.b"});
    assert_eq!(events[0].args, vec![Value::from(12u64)]);
    assert_eq!(events[0].kwargs, dict! {"k" => 1});

    // A plain Dict query; the router's error comes back as it is.
    let query = session.subscription_events(71, dict! {"limit" => 1u64});
    let script = async {
        let (request, _, args, kwargs) = expect_call(&mut router).await;
        assert_eq!(args, vec![Value::from(71u64)]);
        assert_eq!(kwargs, dict! {"limit" => 1u64});
        router
            .send(Message::error(
                MessageType::Call,
                request,
                "wamp.error.history_unavailable",
                Payload::empty(),
            ))
            .await
            .expect("send ERROR");
    };
    let (result, ()) = tokio::join!(query, script);
    assert_eq!(
        result.expect_err("unavailable").uri(),
        Some("wamp.error.history_unavailable")
    );
}

#[tokio::test]
async fn testament_call_shapes() {
    let (session, mut router) = establish().await;
    let add = session.add_testament(
        "com.example.gone",
        vec![Value::from(4242u64)],
        dict! {"why" => "lost"},
        TestamentOptions::new()
            .scope(TestamentScope::Detached)
            .publish_options(
                PublishOptions::new()
                    .exclude_authrole(["guest"])
                    .retain(true),
            ),
    );
    let script = async {
        let (request, procedure, args, kwargs) = expect_call(&mut router).await;
        assert_eq!(procedure, "wamp.session.add_testament");
        assert_eq!(
            args,
            vec![
                Value::from("com.example.gone"),
                Value::List(vec![Value::from(4242u64)]),
                Value::Dict(dict! {"why" => "lost"}),
            ]
        );
        let mut publish_options = dict! {"retain" => true};
        publish_options.insert("exclude_authrole".into(), strings(&["guest"]));
        assert_eq!(
            kwargs,
            dict! {"scope" => "detached", "publish_options" => publish_options}
        );
        // Crossbar.io answers with a publication ID; the spec with nothing.
        router
            .send(Message::Result {
                request,
                details: Dict::new(),
                payload: Payload::from_args(vec![Value::from(1234u64)]),
            })
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(add, script);
    result.expect("added");

    // Defaults: scope destroyed, no publish options, empty args and kwargs kept.
    let add = session.add_testament("t", Vec::new(), Dict::new(), TestamentOptions::new());
    let script = async {
        let (request, _, args, kwargs) = expect_call(&mut router).await;
        assert_eq!(
            args,
            vec![
                Value::from("t"),
                Value::List(Vec::new()),
                Value::Dict(Dict::new())
            ]
        );
        assert_eq!(kwargs, dict! {"scope" => "destroyed"});
        router
            .send(Message::Result {
                request,
                details: Dict::new(),
                payload: Payload::empty(),
            })
            .await
            .expect("send");
    };
    let (result, ()) = tokio::join!(add, script);
    result.expect("added");

    for (scope, answer, expected) in [
        (TestamentScope::Destroyed, Payload::empty(), None),
        (
            TestamentScope::Detached,
            Payload::from_args(vec![Value::from(2u64)]),
            Some(2),
        ),
    ] {
        let flush = session.flush_testaments(scope);
        let script = async {
            let (request, procedure, args, kwargs) = expect_call(&mut router).await;
            assert_eq!(procedure, "wamp.session.flush_testaments");
            assert!(args.is_empty());
            assert_eq!(kwargs, dict! {"scope" => scope.as_str()});
            router
                .send(Message::Result {
                    request,
                    details: Dict::new(),
                    payload: answer,
                })
                .await
                .expect("send");
        };
        let (result, ()) = tokio::join!(flush, script);
        assert_eq!(result.expect("flushed"), expected);
    }
}

#[tokio::test]
async fn a_subscription_nobody_reads_does_not_hold_up_the_others() {
    let options = ConnectOptions {
        queue_capacity: 2,
        event_overflow_wait: Duration::from_millis(100),
        ..Default::default()
    };
    let (session, mut router, _) = establish_full(BROKER_FEATURES, options).await;
    let (mut stuck, _) = subscribe(&session, &mut router, "com.stuck", Dict::new(), 1).await;
    let (mut live, _) = subscribe(&session, &mut router, "com.live", Dict::new(), 2).await;
    let started = Instant::now();
    for n in 0..20 {
        router
            .send(event(1, 100 + n, Dict::new(), 0))
            .await
            .expect("send");
    }
    for n in 0..5 {
        router
            .send(event(2, 200 + n, Dict::new(), 0))
            .await
            .expect("send");
        assert_eq!(next(&mut live).await.expect("event").publication, 200 + n);
    }
    // Waited once for the stuck queue, not once per event.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stuck.missed_events(), 18);
    // The queue holds the first events; once emptied, delivery resumes.
    assert_eq!(next(&mut stuck).await.expect("event").publication, 100);
    assert_eq!(next(&mut stuck).await.expect("event").publication, 101);
    router
        .send(event(1, 300, Dict::new(), 0))
        .await
        .expect("send");
    assert_eq!(next(&mut stuck).await.expect("event").publication, 300);
    assert_eq!(stuck.missed_events(), 18);
}

#[tokio::test]
async fn a_briefly_slow_subscriber_loses_nothing() {
    let options = ConnectOptions {
        queue_capacity: 2,
        event_overflow_wait: Duration::from_secs(5),
        ..Default::default()
    };
    let (session, mut router, _) = establish_full(BROKER_FEATURES, options).await;
    let (mut sub, _) = subscribe(&session, &mut router, "com.t", Dict::new(), 1).await;
    for n in 0..10 {
        router
            .send(event(1, n + 1, Dict::new(), 0))
            .await
            .expect("send");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..10 {
        assert_eq!(next(&mut sub).await.expect("event").publication, n + 1);
    }
    assert_eq!(sub.missed_events(), 0);
}
