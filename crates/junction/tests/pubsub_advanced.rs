//! Advanced Profile publish & subscribe through the router (WAMP-FEATURES.md
//! 4.12-4.23): black/whitelisting, publisher exclusion and identification,
//! pattern-based subscriptions, retention, history, testaments, revocation and
//! payload passthru, over WebSocket and RawSocket, with the Rust client (and a raw
//! peer where the client would refuse to misbehave).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, TestRouter, Via};
use junction::config::History;
use wamp_client::{
    Error, EventHistoryQuery, MatchPolicy, PublishOptions, Session, SubscribeOptions, Subscription,
    TestamentOptions, TestamentScope,
};
use wamp_proto::{dict, Dict, Message, Payload, Serializer, Value};

const VIAS: [(Via, Serializer); 3] = [
    (Via::WebSocket, Serializer::Json),
    (Via::RawSocket, Serializer::MsgPack),
    (Via::RawSocketShared, Serializer::Cbor),
];

fn ack() -> PublishOptions {
    PublishOptions::new().acknowledge(true)
}

async fn publish(s: &Session, topic: &str, label: &str, options: PublishOptions) -> u64 {
    s.publish_with(
        topic,
        Payload::from_args(vec![Value::from(label)]),
        options.acknowledge(true),
    )
    .await
    .expect("publish")
    .expect("publication id")
}

fn label(e: &wamp_client::Event) -> String {
    e.args
        .first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The labels a subscription got up to (not including) the next "marker" event.
async fn labels_until_marker(sub: &mut Subscription) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let e = within("event", sub.next()).await.expect("event");
        let l = label(&e);
        if l == "marker" {
            return got;
        }
        got.push(l);
    }
}

async fn no_event(sub: &mut Subscription) {
    let got = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(got.is_err(), "unexpected event {got:?}");
}

#[tokio::test]
async fn welcome_announces_the_broker_features() {
    let router = TestRouter::start().await;
    let s = router.join().await;
    for f in [
        "publisher_identification",
        "publisher_exclusion",
        "subscriber_blackwhite_listing",
        "pattern_based_subscription",
        "event_retention",
        "event_history",
        "subscription_revocation",
        "payload_passthru_mode",
    ] {
        assert!(s.broker_supports(f), "{f}");
    }
    assert!(s.dealer_supports("testament_meta_api"));
}

#[tokio::test]
async fn black_and_white_lists_in_combination() {
    let router = TestRouter::start().await;
    for (via, ser) in VIAS {
        let publisher = router.join_via(via, ser).await;
        let mut sessions = Vec::new();
        let mut subs = Vec::new();
        for _ in 0..4 {
            let s = router.join_via(via, ser).await;
            subs.push(s.subscribe("com.example.bw").await.expect("subscribe"));
            sessions.push(s);
        }
        let id = |i: usize| sessions[i].id();
        let authid = |i: usize| format!("anonymous-{}", sessions[i].id());
        let cases: Vec<(PublishOptions, [bool; 4])> = vec![
            (
                PublishOptions::new().exclude([id(0)]),
                [false, true, true, true],
            ),
            (
                PublishOptions::new().eligible([id(1), id(2)]),
                [false, true, true, false],
            ),
            (
                PublishOptions::new()
                    .eligible([id(0), id(1), id(2)])
                    .exclude([id(0)]),
                [false, true, true, false],
            ),
            (
                PublishOptions::new().eligible_authid([authid(3)]),
                [false, false, false, true],
            ),
            (
                PublishOptions::new().exclude_authid([authid(2)]),
                [true, true, false, true],
            ),
            (
                PublishOptions::new()
                    .eligible_authrole(["anonymous"])
                    .exclude([id(3)]),
                [true, true, true, false],
            ),
            (
                PublishOptions::new().exclude_authrole(["anonymous"]),
                [false; 4],
            ),
            (
                PublishOptions::new().eligible_authrole(["admin"]),
                [false; 4],
            ),
            (
                PublishOptions::new()
                    .eligible([id(0), id(1)])
                    .eligible_authid([authid(1), authid(2)]),
                [false, true, false, false],
            ),
            (
                PublishOptions::new().eligible(Vec::<u64>::new()),
                [false; 4],
            ),
            // Unknown session ids are ignored.
            (PublishOptions::new().exclude([1, 2, 3]), [true; 4]),
        ];
        for (n, (options, expected)) in cases.into_iter().enumerate() {
            let l = format!("case{n}");
            publish(&publisher, "com.example.bw", &l, options).await;
            publish(
                &publisher,
                "com.example.bw",
                "marker",
                PublishOptions::new(),
            )
            .await;
            for (i, sub) in subs.iter_mut().enumerate() {
                let got = labels_until_marker(sub).await;
                let want = if expected[i] { vec![l.clone()] } else { vec![] };
                assert_eq!(got, want, "{via:?}/{ser} case {n} subscriber {i}");
            }
        }
    }
}

#[tokio::test]
async fn publisher_exclusion_and_identification() {
    let router = TestRouter::start().await;
    for (via, ser) in VIAS {
        let s = router.join_via(via, ser).await;
        let other = router.join_via(via, ser).await;
        let mut own = s.subscribe("com.example.me").await.expect("subscribe");
        let mut theirs = other.subscribe("com.example.me").await.expect("subscribe");
        publish(&s, "com.example.me", "default", PublishOptions::new()).await;
        publish(
            &s,
            "com.example.me",
            "included",
            PublishOptions::new().exclude_me(false),
        )
        .await;
        let e = within("event", own.next()).await.expect("own event");
        assert_eq!(label(&e), "included");
        assert_eq!(e.publisher(), None, "not disclosed unless asked");
        for l in ["default", "included"] {
            let e = within("event", theirs.next()).await.expect("event");
            assert_eq!(label(&e), l);
        }
        // exclude_me=false still honours the lists
        publish(
            &s,
            "com.example.me",
            "excluded",
            PublishOptions::new().exclude_me(false).exclude([s.id()]),
        )
        .await;
        let e = within("event", theirs.next()).await.expect("event");
        assert_eq!(label(&e), "excluded");
        no_event(&mut own).await;

        publish(
            &s,
            "com.example.me",
            "disclosed",
            PublishOptions::new().disclose_me(true),
        )
        .await;
        let e = within("event", theirs.next()).await.expect("event");
        assert_eq!(e.publisher(), Some(s.id()));
        assert_eq!(
            e.publisher_authid(),
            Some(format!("anonymous-{}", s.id()).as_str())
        );
        assert_eq!(e.publisher_authrole(), Some("anonymous"));
        assert_eq!(e.topic(), None, "no topic on an exact subscription");
    }
}

#[tokio::test]
async fn realm_configuration_discloses_every_publisher() {
    let router = TestRouter::start_with(|c| c.realms[0].disclose_publisher = true).await;
    let s = router.join().await;
    let p = router.join_via(Via::RawSocket, Serializer::Cbor).await;
    let mut sub = s.subscribe("com.example.cfg").await.expect("subscribe");
    publish(&p, "com.example.cfg", "x", PublishOptions::new()).await;
    let e = within("event", sub.next()).await.expect("event");
    assert_eq!(e.publisher(), Some(p.id()));
    assert_eq!(e.publisher_authrole(), Some("anonymous"));
}

#[tokio::test]
async fn pattern_subscriptions_each_get_the_event_once() {
    let router = TestRouter::start().await;
    for (via, ser) in VIAS {
        let s = router.join_via(via, ser).await;
        let p = router.join_via(via, ser).await;
        let topic = "com.example.pat.emergency.11";
        let mut exact = s.subscribe(topic).await.expect("exact");
        let mut prefix = s
            .subscribe_with(
                "com.example.pat.emergency",
                SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
            )
            .await
            .expect("prefix");
        let mut wildcard = s
            .subscribe_with(
                "com.example..emergency.",
                SubscribeOptions::new().match_policy(MatchPolicy::Wildcard),
            )
            .await
            .expect("wildcard");
        let ids = [exact.id(), prefix.id(), wildcard.id()];
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        let publication = publish(&p, topic, "e", PublishOptions::new()).await;
        let e = within("exact", exact.next()).await.expect("event");
        assert_eq!(
            (e.subscription, e.publication, e.topic()),
            (ids[0], publication, None)
        );
        let e = within("prefix", prefix.next()).await.expect("event");
        assert_eq!(
            (e.subscription, e.publication, e.topic()),
            (ids[1], publication, Some(topic))
        );
        let e = within("wildcard", wildcard.next()).await.expect("event");
        assert_eq!(
            (e.subscription, e.publication, e.topic()),
            (ids[2], publication, Some(topic))
        );
        // prefix is a string prefix; wildcard is component-wise
        publish(
            &p,
            "com.example.pat.emergency-low",
            "low",
            PublishOptions::new(),
        )
        .await;
        publish(&p, "com.example.pat.emerge", "no", PublishOptions::new()).await;
        publish(&p, "com.example.x.emergency.y", "w", PublishOptions::new()).await;
        publish(
            &p,
            "com.example.x.emergency.y.z",
            "no",
            PublishOptions::new(),
        )
        .await;
        publish(&p, topic, "marker", PublishOptions::new()).await;
        assert_eq!(labels_until_marker(&mut prefix).await, ["low"]);
        assert_eq!(labels_until_marker(&mut wildcard).await, ["w"]);
        assert!(labels_until_marker(&mut exact).await.is_empty());

        // one id per (pattern, policy), shared across sessions
        let s2 = router.join_via(via, ser).await;
        let again = s2
            .subscribe_with(
                "com.example.pat.emergency",
                SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
            )
            .await
            .expect("prefix");
        assert_eq!(again.id(), ids[1]);
        let as_exact = s2
            .subscribe("com.example.pat.emergency")
            .await
            .expect("exact");
        assert_ne!(as_exact.id(), ids[1]);
    }
}

#[tokio::test]
async fn bad_subscribe_and_publish_input_gets_errors_and_disturbs_nobody() {
    let router = TestRouter::start().await;
    let s = router.join().await;
    let mut bystander = s.subscribe("com.example.by").await.expect("subscribe");
    let p = router.join_via(Via::RawSocket, Serializer::MsgPack).await;
    let err = s
        .subscribe_with(
            "com..bad.",
            SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
        )
        .await
        .expect_err("invalid prefix pattern");
    assert!(
        matches!(err, Error::Wamp { ref uri, .. } if uri == "wamp.error.invalid_uri"),
        "{err}"
    );
    let err = s.subscribe("com..bad").await.expect_err("invalid topic");
    assert!(
        matches!(err, Error::Wamp { ref uri, .. } if uri == "wamp.error.invalid_uri"),
        "{err}"
    );
    for topic in ["com..x", "wamp.session.on_join", ""] {
        let err = p
            .publish_with(topic, Payload::empty(), ack())
            .await
            .expect_err("invalid topic");
        assert!(
            matches!(err, Error::Wamp { ref uri, .. } if uri == "wamp.error.invalid_uri"),
            "{err}"
        );
    }
    publish(&p, "com.example.by", "still", PublishOptions::new()).await;
    assert_eq!(
        label(&within("event", bystander.next()).await.expect("event")),
        "still"
    );

    // Wrong option types and unknown match values: the parser's protocol violation
    // (the conformance vectors require ABORT for these).
    let raw_cases = [
        Message::Publish {
            request: 1,
            options: dict! {"exclude" => "nope"},
            topic: "com.example.by".into(),
            payload: Payload::empty(),
        },
        Message::Publish {
            request: 1,
            options: dict! {"eligible_authid" => vec![Value::from(1)]},
            topic: "com.example.by".into(),
            payload: Payload::empty(),
        },
        Message::Subscribe {
            request: 1,
            options: dict! {"match" => "regex"},
            topic: "com.example.by".into(),
        },
    ];
    for message in raw_cases {
        let mut peer = raw_joined(&router, Dict::new()).await;
        peer.send(message).await.expect("send");
        match within("abort", peer.recv()).await {
            Some(Message::Abort { reason, .. }) => {
                assert_eq!(reason, "wamp.error.protocol_violation")
            }
            other => panic!("expected ABORT, got {other:?}"),
        }
    }
    publish(&p, "com.example.by", "after", PublishOptions::new()).await;
    assert_eq!(
        label(&within("event", bystander.next()).await.expect("event")),
        "after"
    );
}

#[tokio::test]
async fn oversized_publication_ends_only_its_publisher() {
    let router = TestRouter::start_with(|c| c.limits.max_message_size = 4096).await;
    let s = router.join().await;
    let mut sub = s.subscribe("com.example.big").await.expect("subscribe");
    // The client refuses to send it, so a raw peer does.
    let mut p = raw_joined(&router, Dict::new()).await;
    let big = Value::Bytes(Bytes::from(vec![7u8; 8192]));
    p.send(Message::Publish {
        request: 1,
        options: dict! {"acknowledge" => true},
        topic: "com.example.big".into(),
        payload: Payload::from_args(vec![big]),
    })
    .await
    .expect("send");
    // No PUBLISHED: an ABORT (or just the close), then the end.
    match within("publisher closed", p.recv()).await {
        None | Some(Message::Abort { .. }) => {}
        other => panic!("expected ABORT or close, got {other:?}"),
    }
    no_event(&mut sub).await;
    let q = router.join().await;
    publish(&q, "com.example.big", "small", PublishOptions::new()).await;
    assert_eq!(
        label(&within("event", sub.next()).await.expect("event")),
        "small"
    );
}

async fn raw_joined(router: &TestRouter, features: Dict) -> test_support::RawPeer {
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    let role = dict! {"features" => features};
    peer.send(Message::Hello {
        realm: "realm1".into(),
        details: dict! {"roles" => dict! {
            "publisher" => role.clone(), "subscriber" => role.clone(),
            "caller" => role.clone(), "callee" => role,
        }},
    })
    .await
    .expect("hello");
    match within("welcome", peer.recv()).await {
        Some(Message::Welcome { .. }) => peer,
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

#[tokio::test]
async fn retained_events_reach_new_subscribers_that_ask() {
    let router = TestRouter::start().await;
    for (via, ser) in VIAS {
        let topic = format!("com.example.ret.{ser}");
        let p = router.join_via(via, ser).await;
        publish(&p, &topic, "r1", PublishOptions::new().retain(true)).await;
        publish(&p, &topic, "r2", PublishOptions::new().retain(true)).await;
        publish(&p, &topic, "live", PublishOptions::new()).await;
        let s = router.join_via(via, ser).await;
        let mut sub = s
            .subscribe_with(&topic, SubscribeOptions::new().get_retained(true))
            .await
            .expect("subscribe");
        let e = within("retained", sub.next()).await.expect("event");
        assert_eq!(label(&e), "r2");
        assert!(e.retained());
        assert_eq!(e.topic(), None);
        let mut plain = s.subscribe(&format!("{topic}.x")).await.expect("subscribe");
        no_event(&mut plain).await;
        let s2 = router.join_via(via, ser).await;
        let mut without = s2.subscribe(&topic).await.expect("subscribe");
        no_event(&mut without).await;
        // live events are not flagged
        publish(&p, &topic, "now", PublishOptions::new()).await;
        let e = within("live", without.next()).await.expect("event");
        assert!(!e.retained());
        // a pattern subscription gets the retained event with its topic
        let s3 = router.join_via(via, ser).await;
        let mut pat = s3
            .subscribe_with(
                "com.example.ret.",
                SubscribeOptions::new()
                    .match_policy(MatchPolicy::Prefix)
                    .get_retained(true),
            )
            .await
            .expect("subscribe");
        let mut seen = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), pat.next()).await {
            assert!(e.retained());
            seen.push(e.topic().map(str::to_owned));
        }
        assert!(seen.contains(&Some(topic.clone())), "{seen:?}");
    }
}

#[tokio::test]
async fn retained_events_respect_the_lists_of_their_publication() {
    let router = TestRouter::start().await;
    let p = router.join().await;
    let topic = "com.example.ret.lists";
    publish(&p, topic, "everyone", PublishOptions::new().retain(true)).await;
    let chosen = router.join().await;
    publish(
        &p,
        topic,
        "chosen only",
        PublishOptions::new().retain(true).eligible([chosen.id()]),
    )
    .await;
    let mut sub = chosen
        .subscribe_with(topic, SubscribeOptions::new().get_retained(true))
        .await
        .expect("subscribe");
    assert_eq!(
        label(&within("event", sub.next()).await.expect("event")),
        "chosen only"
    );
    let other = router.join().await;
    let mut sub = other
        .subscribe_with(topic, SubscribeOptions::new().get_retained(true))
        .await
        .expect("subscribe");
    assert_eq!(
        label(&within("event", sub.next()).await.expect("event")),
        "everyone"
    );
    // a retained event for nobody else: never sent
    publish(
        &p,
        topic,
        "all again",
        PublishOptions::new()
            .retain(true)
            .exclude_authrole(["anonymous"]),
    )
    .await;
    let third = router.join().await;
    let mut sub = third
        .subscribe_with(topic, SubscribeOptions::new().get_retained(true))
        .await
        .expect("subscribe");
    assert_eq!(
        label(&within("event", sub.next()).await.expect("event")),
        "everyone"
    );
}

#[tokio::test]
async fn retention_is_bounded_per_realm() {
    let router = TestRouter::start_with(|c| c.realms[0].max_retained_topics = 2).await;
    let p = router.join().await;
    for t in ["a", "b", "c"] {
        publish(
            &p,
            &format!("com.example.bound.{t}"),
            t,
            PublishOptions::new().retain(true),
        )
        .await;
    }
    let realm = router.server.router().realm("realm1").expect("realm");
    assert_eq!(realm.broker_retained_len(), 2);
    let s = router.join().await;
    let mut sub = s
        .subscribe_with(
            "com.example.bound.c",
            SubscribeOptions::new().get_retained(true),
        )
        .await
        .expect("subscribe");
    no_event(&mut sub).await;
}

fn history_router_config(c: &mut junction::config::Config) {
    c.realms[0].history = vec![
        History {
            topic: "com.example.hist.".into(),
            policy: junction::config::HistoryMatch::Prefix,
            limit: 3,
        },
        History {
            topic: "com.example.hist.exact".into(),
            policy: junction::config::HistoryMatch::Exact,
            limit: 10,
        },
    ];
}

/// The timestamp of the oldest (or newest) stored event on `topic`.
async fn events_time(s: &wamp_client::Session, sub: u64, topic: &str, newest: bool) -> String {
    let events = s
        .subscription_events(
            sub,
            EventHistoryQuery::new()
                .topic(topic)
                .reverse(newest)
                .limit(1),
        )
        .await
        .expect("get_events");
    events
        .first()
        .and_then(|e| e.timestamp.clone())
        .expect("a timestamp")
}

#[tokio::test]
async fn event_history_per_subscription() {
    let router = TestRouter::start_with(history_router_config).await;
    for (via, ser) in VIAS {
        let s = router.join_via(via, ser).await;
        let p = router.join_via(via, ser).await;
        let sub = s
            .subscribe_with(
                "com.example.hist.",
                SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
            )
            .await
            .expect("subscribe");
        let topic = format!("com.example.hist.t{}", p.id());
        let mut pubs = Vec::new();
        for i in 0..5 {
            let l = format!("e{i}");
            pubs.push(publish(&p, &topic, &l, PublishOptions::new()).await);
            publish(&p, "com.example.other", "x", PublishOptions::new()).await;
        }
        // session-id lists: not stored; authrole lists: stored, filtered on reading
        publish(
            &p,
            &topic,
            "eligible",
            PublishOptions::new().eligible([s.id()]),
        )
        .await;
        let events = s
            .subscription_events(sub.id(), EventHistoryQuery::new().topic(topic.as_str()))
            .await
            .expect("get_events");
        let got: Vec<u64> = events.iter().filter_map(|e| e.publication).collect();
        assert_eq!(got, pubs[2..], "the last 3, oldest first");
        for (e, i) in events.iter().zip(2..) {
            assert_eq!(e.subscription, Some(sub.id()));
            assert!(e.timestamp.as_deref().is_some_and(|t| t.ends_with('Z')));
            assert_eq!(e.args, vec![Value::from(format!("e{i}"))]);
            assert_eq!(e.details.get("topic"), Some(&Value::from(topic.as_str())));
        }
        let events = s
            .subscription_events(sub.id(), EventHistoryQuery::new().reverse(true).limit(2))
            .await
            .expect("get_events");
        let got: Vec<u64> = events.iter().filter_map(|e| e.publication).collect();
        assert_eq!(got, [pubs[4], pubs[3]]);
        let events = s
            .subscription_events(
                sub.id(),
                EventHistoryQuery::new().after_publication(pubs[3]),
            )
            .await
            .expect("get_events");
        assert_eq!(events.len(), 1);
        // time ranges (RFC 3339), relative to the stored timestamps
        let first = events_time(&s, sub.id(), &topic, false).await;
        let last = events_time(&s, sub.id(), &topic, true).await;
        let sub_id = sub.id();
        let count = |q: EventHistoryQuery| {
            let s = &s;
            let topic = topic.clone();
            async move {
                s.subscription_events(sub_id, q.topic(topic.as_str()))
                    .await
                    .expect("get_events")
                    .len()
            }
        };
        assert_eq!(
            count(EventHistoryQuery::new().from_time(first.as_str())).await,
            3
        );
        assert_eq!(
            count(EventHistoryQuery::new().before_time(first.as_str())).await,
            0
        );
        assert_eq!(
            count(EventHistoryQuery::new().until_time(last.as_str())).await,
            3
        );
        assert_eq!(
            count(EventHistoryQuery::new().after_time(last.as_str())).await,
            0
        );
        let bad = s
            .subscription_events(sub.id(), EventHistoryQuery::new().from_time("yesterday"))
            .await;
        assert!(
            matches!(&bad, Err(Error::Wamp { uri, .. }) if uri == "wamp.error.invalid_argument"),
            "{bad:?}"
        );
        // errors
        let uri_of = |r: Result<Vec<wamp_client::HistoryEvent>, Error>| match r {
            Err(Error::Wamp { uri, .. }) => uri,
            other => panic!("expected an error, got {other:?}"),
        };
        let other = s.subscribe("com.example.nohist").await.expect("subscribe");
        assert_eq!(
            uri_of(
                s.subscription_events(other.id(), EventHistoryQuery::new())
                    .await
            ),
            "wamp.error.history_unavailable"
        );
        assert_eq!(
            uri_of(
                p.subscription_events(sub.id(), EventHistoryQuery::new())
                    .await
            ),
            "wamp.error.not_authorized"
        );
        assert_eq!(
            uri_of(s.subscription_events(1, EventHistoryQuery::new()).await),
            "wamp.error.no_such_subscription"
        );
    }
}

#[tokio::test]
async fn history_applies_authrole_lists_and_survives_resubscribing() {
    let router = TestRouter::start_with(history_router_config).await;
    let p = router.join().await;
    let topic = "com.example.hist.exact";
    publish(&p, topic, "all", PublishOptions::new()).await;
    publish(
        &p,
        topic,
        "admins",
        PublishOptions::new().eligible_authrole(["admin"]),
    )
    .await;
    let s = router.join_via(Via::RawSocket, Serializer::Cbor).await;
    let sub = s.subscribe(topic).await.expect("subscribe");
    let events = s
        .subscription_events(sub.id(), EventHistoryQuery::new())
        .await
        .expect("get_events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].args, vec![Value::from("all")]);
    assert_eq!(events[0].details.get("topic"), None);
    // Crossbar's positional form: get_events(id, limit)
    let r = s
        .call(
            "wamp.subscription.get_events",
            vec![Value::from(sub.id()), Value::from(0)],
            Dict::new(),
        )
        .await
        .expect("call");
    assert!(r.args.is_empty(), "{r:?}");
}

#[tokio::test]
async fn testaments_are_published_however_the_session_ends() {
    let router = TestRouter::start().await;
    for how in ["goodbye", "drop", "violation", "shutdown-free abort"] {
        for (via, ser) in VIAS {
            let watcher = router.join_via(via, ser).await;
            let topic = format!("com.example.will.{}", watcher.id());
            let mut sub = watcher.subscribe(&topic).await.expect("subscribe");
            let dying = router.join_via(via, ser).await;
            dying
                .add_testament(
                    &topic,
                    vec![
                        Value::from("destroyed 1"),
                        Value::Bytes(Bytes::from_static(b"\0\xff")),
                    ],
                    dict! {"k" => "v"},
                    TestamentOptions::new()
                        .publish_options(PublishOptions::new().disclose_me(true)),
                )
                .await
                .expect("add");
            dying
                .add_testament(
                    &topic,
                    vec![Value::from("detached")],
                    Dict::new(),
                    TestamentOptions::new().scope(TestamentScope::Detached),
                )
                .await
                .expect("add");
            dying
                .add_testament(
                    &topic,
                    vec![Value::from("destroyed 2")],
                    Dict::new(),
                    TestamentOptions::new(),
                )
                .await
                .expect("add");
            no_event(&mut sub).await;
            match how {
                "goodbye" => dying.leave().await.expect("leave"),
                "drop" => dying.disconnect().await,
                "violation" => {
                    // an ERROR for a CALL is something only a router may send
                    let _ = dying
                        .send_raw(Message::error(
                            wamp_proto::MessageType::Call,
                            1,
                            "x.y",
                            Payload::empty(),
                        ))
                        .await;
                    within("closed", dying.closed()).await;
                }
                _ => {
                    let _ = dying
                        .send_raw(Message::abort("wamp.close.normal", "bye"))
                        .await;
                    within("closed", dying.closed()).await;
                }
            }
            let e = within("first", sub.next()).await.expect("event");
            assert_eq!(label(&e), "detached", "{how} {via:?}");
            let e = within("second", sub.next()).await.expect("event");
            assert_eq!(
                e.args,
                vec![
                    Value::from("destroyed 1"),
                    Value::Bytes(Bytes::from_static(b"\0\xff"))
                ]
            );
            assert_eq!(e.kwargs, dict! {"k" => "v"});
            assert_eq!(e.publisher(), Some(dying.id()), "publish options applied");
            let e = within("third", sub.next()).await.expect("event");
            assert_eq!(label(&e), "destroyed 2");
            assert_eq!(e.publisher(), None);
            no_event(&mut sub).await;
        }
    }
}

#[tokio::test]
async fn flushed_testaments_are_not_published_and_bad_scopes_are_refused() {
    let router = TestRouter::start().await;
    let watcher = router.join().await;
    let mut sub = watcher
        .subscribe("com.example.flush")
        .await
        .expect("subscribe");
    let dying = router.join_via(Via::RawSocket, Serializer::MsgPack).await;
    for scope in [TestamentScope::Destroyed, TestamentScope::Detached] {
        dying
            .add_testament(
                "com.example.flush",
                vec![Value::from("flushed")],
                Dict::new(),
                TestamentOptions::new().scope(scope),
            )
            .await
            .expect("add");
    }
    assert_eq!(
        dying
            .flush_testaments(TestamentScope::Destroyed)
            .await
            .expect("flush"),
        None
    );
    assert_eq!(
        dying
            .flush_testaments(TestamentScope::Detached)
            .await
            .expect("flush"),
        None
    );
    dying
        .add_testament(
            "com.example.flush",
            vec![Value::from("kept")],
            Dict::new(),
            TestamentOptions::new(),
        )
        .await
        .expect("add");
    let call_err = |r: Result<wamp_client::CallResult, Error>| match r {
        Err(Error::Wamp { uri, .. }) => uri,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(
        call_err(
            dying
                .call(
                    "wamp.session.add_testament",
                    vec![
                        Value::from("com.example.flush"),
                        Value::List(vec![]),
                        Value::Dict(Dict::new())
                    ],
                    dict! {"scope" => "forever"},
                )
                .await
        ),
        "wamp.error.testament_error"
    );
    assert_eq!(
        call_err(
            dying
                .call(
                    "wamp.session.add_testament",
                    vec![Value::from("com..bad")],
                    Dict::new()
                )
                .await
        ),
        "wamp.error.invalid_uri"
    );
    assert_eq!(
        call_err(
            dying
                .call(
                    "wamp.session.add_testament",
                    vec![Value::from("com.example.flush"), Value::from(1)],
                    Dict::new()
                )
                .await
        ),
        "wamp.error.invalid_argument"
    );
    assert_eq!(
        call_err(
            dying
                .call(
                    "wamp.session.add_testament",
                    vec![Value::from("com.example.flush")],
                    dict! {"publish_options" => dict! {"exclude" => "x"}}
                )
                .await
        ),
        "wamp.error.invalid_argument"
    );
    assert_eq!(
        call_err(
            dying
                .call("wamp.session.no_such_thing", vec![], Dict::new())
                .await
        ),
        "wamp.error.no_such_procedure"
    );
    dying.disconnect().await;
    assert_eq!(
        label(&within("event", sub.next()).await.expect("event")),
        "kept"
    );
    no_event(&mut sub).await;
}

#[tokio::test]
async fn revoked_subscriptions_are_told_if_they_asked() {
    let router = TestRouter::start().await;
    let realm = router.server.router().realm("realm1").expect("realm");
    let s = router.join_via(Via::RawSocket, Serializer::Cbor).await;
    let p = router.join().await;
    let sub = s.subscribe("com.example.rev").await.expect("subscribe");
    let mut peer = raw_joined(&router, Dict::new()).await;
    peer.send(Message::Subscribe {
        request: 1,
        options: Dict::new(),
        topic: "com.example.rev".into(),
    })
    .await
    .expect("subscribe");
    let Some(Message::Subscribed { subscription, .. }) = within("subscribed", peer.recv()).await
    else {
        panic!("expected SUBSCRIBED");
    };
    assert_eq!(subscription, sub.id());
    assert_eq!(
        realm.revoke_subscription(sub.id(), Some(s.id()), "com.example.revoked"),
        1
    );
    within("revoked", async {
        while !sub.is_revoked() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(sub.revocation_reason(), Some("com.example.revoked"));
    // the raw peer, which did not announce subscription_revocation, still gets events
    // and is told nothing when it loses the subscription too
    publish(&p, "com.example.rev", "after", PublishOptions::new()).await;
    match within("event", peer.recv()).await {
        Some(Message::Event { .. }) => {}
        other => panic!("expected EVENT, got {other:?}"),
    }
    assert_eq!(
        realm.revoke_subscription(subscription, None, "com.example.revoked"),
        1
    );
    assert_eq!(router.stats().subscriptions, 0);
    assert!(peer
        .recv_timeout(Duration::from_millis(200))
        .await
        .is_none());
    peer.send(Message::Unsubscribe {
        request: 2,
        subscription,
        options: Dict::new(),
    })
    .await
    .expect("unsubscribe");
    match within("error", peer.recv()).await {
        Some(Message::Error { error, .. }) => assert_eq!(error, "wamp.error.no_such_subscription"),
        other => panic!("expected ERROR, got {other:?}"),
    }
    // re-subscribing works
    let mut again = s.subscribe("com.example.rev").await.expect("subscribe");
    publish(&p, "com.example.rev", "again", PublishOptions::new()).await;
    assert_eq!(
        label(&within("event", again.next()).await.expect("event")),
        "again"
    );
}

#[tokio::test]
async fn payload_passthru_is_forwarded_untouched() {
    let router = TestRouter::start().await;
    let blob = Bytes::from_static(b"\x00\xffopaque\xfe");
    let p = router.join().await;
    let mut subs = Vec::new();
    for (via, ser) in VIAS {
        let s = router.join_via(via, ser).await;
        subs.push(s.subscribe("com.example.ppt").await.expect("subscribe"));
        std::mem::forget(s);
    }
    p.publish_passthru(
        "com.example.ppt",
        "x_test",
        blob.clone(),
        PublishOptions::new()
            .acknowledge(true)
            .ppt_serializer("cbor")
            .ppt_cipher("xsalsa20poly1305")
            .ppt_keyid("key1"),
    )
    .await
    .expect("publish");
    for sub in &mut subs {
        let e = within("event", sub.next()).await.expect("event");
        assert_eq!(e.passthru_payload(), Some(&blob));
        assert_eq!(e.ppt_scheme(), Some("x_test"));
        assert_eq!(e.ppt_serializer(), Some("cbor"));
        assert_eq!(e.ppt_cipher(), Some("xsalsa20poly1305"));
        assert_eq!(e.ppt_keyid(), Some("key1"));
    }
    // Autobahn's E2EE: a bare binary in place of Arguments, enc_* keys passed on
    p.publish_with(
        "com.example.ppt",
        Payload::opaque(blob.clone()),
        dict! {"enc_algo" => "cryptobox", "enc_key" => "k", "enc_serializer" => "json", "acknowledge" => true},
    )
    .await
    .expect("publish");
    for sub in &mut subs {
        let e = within("event", sub.next()).await.expect("event");
        assert_eq!(e.details.get("enc_algo"), Some(&Value::from("cryptobox")));
        assert_eq!(e.details.get("enc_key"), Some(&Value::from("k")));
        assert_eq!(
            e.payload.elements().expect("elements").args,
            Some(Value::Bytes(blob.clone()))
        );
    }
}

#[tokio::test]
async fn unannounced_payload_passthru_is_a_protocol_violation() {
    let router = TestRouter::start().await;
    let s = router.join().await;
    let mut sub = s.subscribe("com.example.ppt2").await.expect("subscribe");
    let mut peer = raw_joined(&router, Dict::new()).await;
    peer.send(Message::Publish {
        request: 1,
        options: dict! {"ppt_scheme" => "x_a", "acknowledge" => true},
        topic: "com.example.ppt2".into(),
        payload: Payload::from_args(vec![Value::Bytes(Bytes::from_static(b"x"))]),
    })
    .await
    .expect("publish");
    match within("abort", peer.recv()).await {
        Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    no_event(&mut sub).await;
    // announced: fine
    let mut peer = raw_joined(&router, dict! {"payload_passthru_mode" => true}).await;
    peer.send(Message::Publish {
        request: 1,
        options: dict! {"ppt_scheme" => "x_a", "acknowledge" => true},
        topic: "com.example.ppt2".into(),
        payload: Payload::from_args(vec![Value::Bytes(Bytes::from_static(b"x"))]),
    })
    .await
    .expect("publish");
    assert!(matches!(
        within("published", peer.recv()).await,
        Some(Message::Published { .. })
    ));
    let e = within("event", sub.next()).await.expect("event");
    assert_eq!(e.ppt_scheme(), Some("x_a"));
}

#[tokio::test]
async fn payload_passthru_calls_carry_the_keys_both_ways() {
    let router = TestRouter::start().await;
    let mut callee = raw_joined(&router, dict! {"payload_passthru_mode" => true}).await;
    callee
        .send(Message::Register {
            request: 1,
            options: Dict::new(),
            procedure: "com.example.pptcall".into(),
        })
        .await
        .expect("register");
    assert!(matches!(
        within("registered", callee.recv()).await,
        Some(Message::Registered { .. })
    ));
    let mut caller = raw_joined(&router, dict! {"payload_passthru_mode" => true}).await;
    let blob = Value::Bytes(Bytes::from_static(b"\x01\x02"));
    caller
        .send(Message::Call {
            request: 1,
            options: dict! {"ppt_scheme" => "x_a", "ppt_keyid" => "k"},
            procedure: "com.example.pptcall".into(),
            payload: Payload::from_args(vec![blob.clone()]),
        })
        .await
        .expect("call");
    let Some(Message::Invocation {
        request,
        details,
        payload,
        ..
    }) = within("invocation", callee.recv()).await
    else {
        panic!("expected INVOCATION");
    };
    assert_eq!(details.get("ppt_scheme"), Some(&Value::from("x_a")));
    assert_eq!(details.get("ppt_keyid"), Some(&Value::from("k")));
    assert_eq!(payload.args().expect("args"), vec![blob.clone()]);
    callee
        .send(Message::Yield {
            request,
            options: dict! {"ppt_scheme" => "x_a"},
            payload: Payload::from_args(vec![blob.clone()]),
        })
        .await
        .expect("yield");
    let Some(Message::Result {
        details, payload, ..
    }) = within("result", caller.recv()).await
    else {
        panic!("expected RESULT");
    };
    assert_eq!(details.get("ppt_scheme"), Some(&Value::from("x_a")));
    assert_eq!(payload.args().expect("args"), vec![blob]);
    // a callee without the feature: feature_not_supported
    let plain = router.join().await;
    let _reg = plain
        .register_fn("com.example.pptplain", |_, _| async {
            Ok(Default::default())
        })
        .await
        .expect("register");
    caller
        .send(Message::Call {
            request: 2,
            options: dict! {"ppt_scheme" => "x_a"},
            procedure: "com.example.pptplain".into(),
            payload: Payload::empty(),
        })
        .await
        .expect("call");
    match within("error", caller.recv()).await {
        Some(Message::Error { error, .. }) => assert_eq!(error, "wamp.error.feature_not_supported"),
        other => panic!("expected ERROR, got {other:?}"),
    }
}
