//! Publish & subscribe through the router, over every transport and serializer.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, TestRouter, Via, ALL_VIAS};
use wamp_proto::{dict, Dict, Payload, Serializer, Value};

fn sample_args() -> Vec<Value> {
    vec![
        Value::from("héllo"),
        Value::Int(1 << 53),
        Value::Float(2.5),
        Value::Bool(false),
        Value::Null,
        Value::List(vec![Value::from(1), Value::Dict(dict! {"deep" => "yes"})]),
        Value::Bytes(Bytes::from_static(&[0, 1, 2, 254, 255])),
    ]
}

#[tokio::test]
async fn events_carry_args_and_kwargs_over_every_transport_and_serializer() {
    let router = TestRouter::start().await;
    for via in ALL_VIAS {
        for ser in Serializer::ALL {
            let subscriber = router.join_via(via, ser).await;
            let publisher = router.join_via(via, ser).await;
            let mut sub = subscriber
                .subscribe("com.example.topic")
                .await
                .expect("subscribe");
            let kwargs = dict! {"key" => "value", "n" => 3, "bin" => Value::Bytes(Bytes::from_static(b"\x00z"))};
            publisher
                .publish("com.example.topic", sample_args(), kwargs.clone())
                .await
                .expect("publish");
            let event = within("event", sub.next()).await.expect("event");
            assert_eq!(event.args, sample_args(), "{via:?}/{ser}");
            assert_eq!(event.kwargs, kwargs, "{via:?}/{ser}");
            assert_eq!(event.subscription, sub.id());
            subscriber.leave().await.expect("leave");
            publisher.leave().await.expect("leave");
        }
    }
    let stats = router.wait_for_stats(|s| s.sessions == 0).await;
    assert_eq!(stats, wamp_router::RealmStats::default());
}

#[tokio::test]
async fn subscribers_on_other_serializers_get_the_same_event() {
    let router = TestRouter::start().await;
    let publisher = router.join_via(Via::WebSocket, Serializer::Json).await;
    let mut subs = Vec::new();
    for ser in Serializer::ALL {
        for via in [Via::WebSocket, Via::RawSocket] {
            let s = router.join_via(via, ser).await;
            let sub = s.subscribe("com.example.mixed").await.expect("subscribe");
            subs.push((s, sub));
        }
    }
    // All subscribers of one topic share one subscription id.
    let first = subs[0].1.id();
    assert!(subs.iter().all(|(_, sub)| sub.id() == first));
    let publication = publisher
        .publish_with(
            "com.example.mixed",
            Payload::new(
                sample_args(),
                dict! {"k" => Value::Bytes(Bytes::from_static(b"\xff"))},
            ),
            dict! {"acknowledge" => true},
        )
        .await
        .expect("publish")
        .expect("acknowledged");
    for (_, sub) in &mut subs {
        let event = within("event", sub.next()).await.expect("event");
        assert_eq!(event.publication, publication);
        assert_eq!(event.args, sample_args());
        assert_eq!(
            event.kwargs.get("k"),
            Some(&Value::Bytes(Bytes::from_static(b"\xff")))
        );
    }
}

#[tokio::test]
async fn publisher_is_excluded_unless_it_asks_otherwise() {
    let router = TestRouter::start().await;
    let session = router.join().await;
    let other = router.join().await;
    let mut own = session
        .subscribe("com.example.self")
        .await
        .expect("subscribe");
    let mut theirs = other
        .subscribe("com.example.self")
        .await
        .expect("subscribe");

    session
        .publish("com.example.self", vec![Value::from(1)], Dict::new())
        .await
        .expect("publish");
    assert_eq!(
        within("other gets it", theirs.next())
            .await
            .expect("event")
            .args,
        vec![Value::from(1)]
    );

    session
        .publish_with(
            "com.example.self",
            Payload::from_args(vec![Value::from(2)]),
            dict! {"exclude_me" => false},
        )
        .await
        .expect("publish");
    // The first event never reached the publisher: the next one it sees is the second.
    let event = within("self gets it", own.next()).await.expect("event");
    assert_eq!(event.args, vec![Value::from(2)]);
    assert_eq!(
        within("other", theirs.next()).await.expect("event").args,
        vec![Value::from(2)]
    );
}

#[tokio::test]
async fn acknowledged_publish_reports_errors_and_unacknowledged_stays_silent() {
    let router = TestRouter::start().await;
    let session = router.join().await;
    let err = session
        .publish_with(
            "com..bad topic",
            Payload::empty(),
            dict! {"acknowledge" => true},
        )
        .await
        .expect_err("invalid URI");
    assert_eq!(err.uri(), Some("wamp.error.invalid_uri"));
    let err = session
        .publish_with(
            "wamp.reserved",
            Payload::empty(),
            dict! {"acknowledge" => true},
        )
        .await
        .expect_err("reserved namespace");
    assert_eq!(err.uri(), Some("wamp.error.invalid_uri"));
    // Without acknowledge the same mistake gets no answer, and the session goes on.
    session
        .publish("com..bad topic", vec![], Dict::new())
        .await
        .expect("fire and forget");
    let id = session
        .publish_with(
            "com.example.ok",
            Payload::empty(),
            dict! {"acknowledge" => true},
        )
        .await
        .expect("publish")
        .expect("id");
    assert!((1..=1u64 << 53).contains(&id));
}

#[tokio::test]
async fn subscribing_twice_gives_the_same_subscription_and_unsubscribe_stops_delivery() {
    let router = TestRouter::start().await;
    let subscriber = router.join().await;
    let publisher = router.join().await;
    let a = subscriber
        .subscribe("com.example.twice")
        .await
        .expect("first");
    let b = subscriber
        .subscribe("com.example.twice")
        .await
        .expect("second");
    assert_eq!(a.id(), b.id());
    assert_eq!(router.stats().subscriptions, 1);
    drop(b);
    a.unsubscribe().await.expect("unsubscribe");
    assert_eq!(
        router
            .wait_for_stats(|s| s.subscriptions == 0)
            .await
            .subscriptions,
        0
    );

    // Delivery stops: an event published now is not seen, one on a later
    // subscription is, and it is the first the subscriber receives.
    let mut later = subscriber
        .subscribe("com.example.after")
        .await
        .expect("subscribe");
    publisher
        .publish("com.example.twice", vec![Value::from("late")], Dict::new())
        .await
        .expect("publish");
    publisher
        .publish("com.example.after", vec![Value::from("seen")], Dict::new())
        .await
        .expect("publish");
    let event = within("event", later.next()).await.expect("event");
    assert_eq!(event.args, vec![Value::from("seen")]);
    let nothing = tokio::time::timeout(Duration::from_millis(100), later.next()).await;
    assert!(nothing.is_err(), "exactly one event");
}
