//! Authentication that depends on the transport: the `tls` method (a verified
//! client certificate's identity) and the listener's allowed methods.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use wamp_proto::{decode, dict, Dict, Message, Serializer, Value};
use wamp_router::auth::RealmAuth;
use wamp_router::{Drained, Outbox, RealmConfig, Router, RouterConfig, TransportInfo};

fn router() -> Arc<Router> {
    let mut realm = RealmConfig::new("realm1");
    realm.auth = RealmAuth {
        tls: [("device-1".to_owned(), "device".to_owned())].into(),
        ..RealmAuth::default()
    };
    Router::new(RouterConfig {
        realms: vec![realm],
        ..RouterConfig::default()
    })
}

fn drain(outbox: &Outbox) -> Vec<Message> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut batch = Vec::new();
    while let Poll::Ready(Drained::Frames) = outbox.poll_drain(&mut cx, &mut batch) {
        for frame in batch.drain(..) {
            out.push(decode(Serializer::Json, &frame).expect("router frames decode"));
        }
    }
    out
}

/// HELLO with `authmethods` (and `authid`) over a transport; the router's answer.
fn join(
    router: &Arc<Router>,
    transport: TransportInfo,
    methods: &[&str],
    authid: Option<&str>,
) -> Message {
    let outbox = router.new_outbox();
    let mut conn = router.connect(Serializer::Json, 1 << 20, outbox.clone(), transport);
    let mut details = dict! {
        "roles" => dict! { "caller" => Dict::new() },
        "authmethods" => Value::List(methods.iter().map(|m| Value::from(*m)).collect()),
    };
    if let Some(id) = authid {
        details.insert("authid".into(), Value::from(id));
    }
    conn.handle(Message::Hello {
        realm: "realm1".into(),
        details,
    });
    drain(&outbox)
        .into_iter()
        .next()
        .expect("an answer to HELLO")
}

fn cert(id: &str) -> TransportInfo {
    TransportInfo {
        tls: true,
        client_cert_id: Some(id.to_owned()),
        ..TransportInfo::default()
    }
}

fn abort_reason(message: &Message) -> &str {
    match message {
        Message::Abort { reason, .. } => reason,
        other => panic!("expected ABORT, got {other:?}"),
    }
}

#[test]
fn tls_welcomes_a_listed_certificate() {
    let router = router();
    match join(&router, cert("device-1"), &["tls"], None) {
        Message::Welcome { details, .. } => {
            assert_eq!(
                details.get("authid").and_then(Value::as_str),
                Some("device-1")
            );
            assert_eq!(
                details.get("authrole").and_then(Value::as_str),
                Some("device")
            );
            assert_eq!(
                details.get("authmethod").and_then(Value::as_str),
                Some("tls")
            );
            assert_eq!(
                details.get("authprovider").and_then(Value::as_str),
                Some("static")
            );
        }
        other => panic!("expected WELCOME, got {other:?}"),
    }
    // The same authid in HELLO is fine.
    assert!(matches!(
        join(&router, cert("device-1"), &["tls"], Some("device-1")),
        Message::Welcome { .. }
    ));
}

#[test]
fn tls_refuses_unlisted_or_contradicted_certificates() {
    let router = router();
    let unlisted = join(&router, cert("device-2"), &["tls", "anonymous"], None);
    assert_eq!(abort_reason(&unlisted), "wamp.error.not_authorized");
    let other_id = join(&router, cert("device-1"), &["tls"], Some("someone-else"));
    assert_eq!(abort_reason(&other_id), "wamp.error.not_authorized");
}

#[test]
fn tls_without_a_certificate_is_not_offered() {
    let router = router();
    let plain = TransportInfo::default();
    let answer = join(&router, plain.clone(), &["tls"], Some("device-1"));
    assert_eq!(abort_reason(&answer), "wamp.error.no_matching_auth_method");
    // The next method in the client's list is tried.
    let answer = join(&router, plain, &["tls", "anonymous"], None);
    assert!(matches!(answer, Message::Welcome { .. }), "{answer:?}");
}

#[test]
fn methods_the_listener_does_not_allow_are_not_offered() {
    let router = router();
    let only_ticket = TransportInfo {
        auth_methods: Some(vec!["ticket".to_owned()].into()),
        ..cert("device-1")
    };
    for methods in [&["anonymous"][..], &["tls"], &["tls", "anonymous"]] {
        let answer = join(&router, only_ticket.clone(), methods, None);
        assert_eq!(
            abort_reason(&answer),
            "wamp.error.no_matching_auth_method",
            "{methods:?}"
        );
    }
    let tls_only = TransportInfo {
        auth_methods: Some(vec!["tls".to_owned()].into()),
        ..cert("device-1")
    };
    assert!(matches!(
        join(&router, tls_only.clone(), &["anonymous", "tls"], None),
        Message::Welcome { .. }
    ));
    assert_eq!(
        abort_reason(&join(&router, tls_only, &["anonymous"], None)),
        "wamp.error.no_matching_auth_method"
    );
}
