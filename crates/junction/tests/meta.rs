//! The WAMP meta API end to end with the Rust client: every session, registration
//! and subscription procedure and every meta event, over WebSocket/JSON and
//! RawSocket/MessagePack. Covers event order (`on_create` before the first
//! `on_register`/`on_subscribe`, `on_delete` after the last
//! `on_unregister`/`on_unsubscribe`), cleanup when a session drops without
//! GOODBYE, the kill procedures, realm isolation and bad input.

mod common;

use std::time::Duration;

use common::{within, TestRouter, Via};
use wamp_client::{
    dict, CallResult, CloseReason, ConnectOptions, Dict, Error, Event, InvokePolicy, MatchPolicy,
    RegisterOptions, Serializer, Session, SubscribeOptions, Subscription, Value,
};

const VIAS: [(Via, Serializer); 2] = [
    (Via::WebSocket, Serializer::Json),
    (Via::RawSocket, Serializer::MsgPack),
];

async fn call(s: &Session, procedure: &str, args: Vec<Value>) -> Result<CallResult, Error> {
    call_kw(s, procedure, args, Dict::new()).await
}

async fn call_kw(
    s: &Session,
    procedure: &str,
    args: Vec<Value>,
    kwargs: Dict,
) -> Result<CallResult, Error> {
    within(procedure, s.call(procedure, args, kwargs)).await
}

/// The first result of a call that must succeed.
async fn ok(s: &Session, procedure: &str, args: Vec<Value>) -> Value {
    call(s, procedure, args)
        .await
        .unwrap_or_else(|e| panic!("{procedure}: {e}"))
        .args
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

fn error_uri(result: Result<CallResult, Error>) -> String {
    match result {
        Err(e) => e.uri().unwrap_or("(no uri)").to_owned(),
        Ok(r) => panic!("expected an error, got {r:?}"),
    }
}

fn id_list(v: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = v
        .as_list()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|x| x.as_u64().expect("id"))
        .collect();
    ids.sort_unstable();
    ids
}

fn key<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.as_dict()
        .and_then(|d| d.get(k))
        .unwrap_or_else(|| panic!("no key {k} in {v:?}"))
}

async fn join(router: &TestRouter, via: (Via, Serializer)) -> Session {
    router.join_via(via.0, via.1).await
}

async fn join_realm(router: &TestRouter, realm: &str) -> Session {
    Session::connect_with(&router.ws_url(), realm, ConnectOptions::default())
        .await
        .expect("join")
}

/// A prefix subscription on a meta namespace (`wamp.session.` etc.): one stream of
/// all its events in order.
async fn watch(s: &Session, prefix: &str) -> Subscription {
    s.subscribe_with(
        prefix,
        SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
    )
    .await
    .expect("subscribe")
}

/// The next meta event: (topic, args).
async fn next(sub: &mut Subscription) -> (String, Vec<Value>) {
    let event: Event = within("meta event", sub.next()).await.expect("event");
    (event.topic().expect("topic").to_owned(), event.args)
}

/// Expects the next event on `topic` with `[session, id, ..]`; returns the args.
async fn expect(sub: &mut Subscription, topic: &str, session: u64) -> Vec<Value> {
    let (t, args) = next(sub).await;
    assert_eq!(t, topic, "args {args:?}");
    let who = match &args[0] {
        Value::Dict(d) => d.get("session").and_then(Value::as_u64),
        other => other.as_u64(),
    };
    assert_eq!(who, Some(session), "{topic}: {args:?}");
    args
}

async fn no_event(sub: &mut Subscription) {
    let got = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(got.is_err(), "unexpected event {:?}", got.ok().flatten());
}

#[tokio::test]
async fn welcome_announces_the_meta_apis() {
    let router = TestRouter::start().await;
    let s = router.join().await;
    assert!(s.broker_supports("session_meta_api"));
    assert!(s.broker_supports("subscription_meta_api"));
    assert!(s.dealer_supports("session_meta_api"));
    assert!(s.dealer_supports("registration_meta_api"));
}

#[tokio::test]
async fn session_procedures_and_events() {
    for via in VIAS {
        let router = TestRouter::start().await;
        let a = join(&router, via).await;
        let mut events = watch(&a, "wamp.session.").await;
        let b = join(&router, via).await;
        let args = expect(&mut events, "wamp.session.on_join", b.id()).await;
        let details = &args[0];
        assert_eq!(key(details, "authrole").as_str(), Some("anonymous"));
        assert_eq!(key(details, "authmethod").as_str(), Some("anonymous"));
        assert_eq!(key(details, "realm").as_str(), Some("realm1"));
        let b_authid = key(details, "authid").as_str().expect("authid").to_owned();

        assert_eq!(ok(&a, "wamp.session.count", vec![]).await.as_u64(), Some(2));
        let mut both = vec![a.id(), b.id()];
        both.sort_unstable();
        assert_eq!(id_list(&ok(&a, "wamp.session.list", vec![]).await), both);
        let roles = |r: &str| vec![Value::List(vec![Value::from(r)])];
        assert_eq!(
            ok(&a, "wamp.session.count", roles("anonymous"))
                .await
                .as_u64(),
            Some(2)
        );
        assert_eq!(
            ok(&a, "wamp.session.count", roles("admin")).await.as_u64(),
            Some(0)
        );
        assert!(id_list(&ok(&a, "wamp.session.list", roles("admin")).await).is_empty());

        let got = ok(&a, "wamp.session.get", vec![Value::from(b.id())]).await;
        assert_eq!(key(&got, "session").as_u64(), Some(b.id()));
        assert_eq!(key(&got, "authid").as_str(), Some(b_authid.as_str()));
        // The connection's transport, in Crossbar's TransportDetails keys.
        let transport = key(&got, "transport");
        let peer = key(transport, "peer").as_str().expect("peer").to_owned();
        let framing = key(transport, "channel_framing").as_str();
        match via.0 {
            Via::Unix => assert_eq!(peer, "unix"),
            _ => assert!(peer.starts_with("tcp4:127.0.0.1:"), "{peer}"),
        }
        match via.0 {
            Via::WebSocket => assert_eq!(framing, Some("websocket")),
            _ => assert_eq!(framing, Some("rawsocket")),
        }
        assert_eq!(key(transport, "is_secure").as_bool(), Some(false));
        assert_eq!(
            error_uri(call(&a, "wamp.session.get", vec![Value::from(1u64)]).await),
            "wamp.error.no_such_session"
        );

        // Clean leave, then a drop without GOODBYE: on_leave both times.
        b.leave().await.expect("leave");
        let args = expect(&mut events, "wamp.session.on_leave", b.id()).await;
        assert_eq!(args[1].as_str(), Some(b_authid.as_str()));
        assert_eq!(args[2].as_str(), Some("anonymous"));
        let c = join(&router, via).await;
        expect(&mut events, "wamp.session.on_join", c.id()).await;
        c.disconnect().await;
        expect(&mut events, "wamp.session.on_leave", c.id()).await;
        assert_eq!(ok(&a, "wamp.session.count", vec![]).await.as_u64(), Some(1));
    }
}

async fn closed_with(s: &Session) -> (String, Option<String>) {
    match within("killed session closes", s.closed()).await {
        CloseReason::Goodbye { reason, message } => (reason, message),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
}

#[tokio::test]
async fn kill_variants() {
    for via in VIAS {
        let router = TestRouter::start().await;
        let admin = join(&router, via).await;
        let mut events = watch(&admin, "wamp.session.on_leave").await;

        // kill: the caller can't kill itself; reason and message reach the victim.
        assert_eq!(
            error_uri(call(&admin, "wamp.session.kill", vec![Value::from(admin.id())]).await),
            "wamp.error.no_such_session"
        );
        let b = join(&router, via).await;
        let done = call_kw(
            &admin,
            "wamp.session.kill",
            vec![Value::from(b.id())],
            dict! {"reason" => "com.example.go_away", "message" => "bye"},
        )
        .await
        .expect("kill");
        assert!(done.args.is_empty());
        assert_eq!(
            closed_with(&b).await,
            ("com.example.go_away".into(), Some("bye".into()))
        );
        expect(&mut events, "wamp.session.on_leave", b.id()).await;
        assert_eq!(
            error_uri(call(&admin, "wamp.session.kill", vec![Value::from(b.id())]).await),
            "wamp.error.no_such_session"
        );

        // kill_by_authid: the default reason is wamp.close.killed.
        let c = join(&router, via).await;
        let c_authid = c.welcome_details()["authid"]
            .as_str()
            .expect("ok")
            .to_owned();
        let killed = ok(
            &admin,
            "wamp.session.kill_by_authid",
            vec![Value::from(c_authid.as_str())],
        )
        .await;
        assert_eq!(id_list(&killed), vec![c.id()]);
        assert_eq!(closed_with(&c).await.0, "wamp.close.killed");
        expect(&mut events, "wamp.session.on_leave", c.id()).await;

        // kill_by_authrole: everyone with the role but the caller.
        let d = join(&router, via).await;
        let e = join(&router, via).await;
        let n = ok(
            &admin,
            "wamp.session.kill_by_authrole",
            vec![Value::from("anonymous")],
        )
        .await;
        assert_eq!(n.as_u64(), Some(2));
        closed_with(&d).await;
        closed_with(&e).await;

        // kill_all, with a bad reason first.
        let f = join(&router, via).await;
        let bad = call_kw(
            &admin,
            "wamp.session.kill_all",
            vec![],
            dict! {"reason" => "not a uri!"},
        )
        .await;
        assert_eq!(error_uri(bad), "wamp.error.invalid_uri");
        assert!(!f.is_closed());
        let n = call_kw(
            &admin,
            "wamp.session.kill_all",
            vec![],
            dict! {"message" => "maintenance"},
        )
        .await
        .expect("kill_all");
        assert_eq!(n.args[0].as_u64(), Some(1));
        assert_eq!(
            closed_with(&f).await,
            ("wamp.close.killed".into(), Some("maintenance".into()))
        );
        assert_eq!(
            ok(&admin, "wamp.session.list", vec![]).await,
            Value::List(vec![Value::from(admin.id())])
        );
        router.wait_for_stats(|s| s.sessions == 1).await;
        assert_eq!(router.stats().sessions, 1);
    }
}

#[tokio::test]
async fn registration_procedures_and_events() {
    for via in VIAS {
        let router = TestRouter::start().await;
        let admin = join(&router, via).await;
        let mut events = watch(&admin, "wamp.registration.").await;
        let callee = join(&router, via).await;
        let cid = callee.id();

        let mut ids = Vec::new();
        for (uri, policy) in [
            ("com.meta.exact", MatchPolicy::Exact),
            ("com.meta.pre.", MatchPolicy::Prefix),
            ("com.meta..wild", MatchPolicy::Wildcard),
        ] {
            let reg = callee
                .register_with(uri, RegisterOptions::new().match_policy(policy))
                .await
                .expect("register");
            let args = expect(&mut events, "wamp.registration.on_create", cid).await;
            assert_eq!(key(&args[1], "id").as_u64(), Some(reg.id()));
            assert_eq!(key(&args[1], "uri").as_str(), Some(uri));
            assert_eq!(key(&args[1], "match").as_str(), Some(policy.as_str()));
            assert_eq!(key(&args[1], "invoke").as_str(), Some("single"));
            assert!(key(&args[1], "created")
                .as_str()
                .expect("ok")
                .ends_with('Z'));
            let args = expect(&mut events, "wamp.registration.on_register", cid).await;
            assert_eq!(args[1].as_u64(), Some(reg.id()));
            ids.push(reg);
        }
        let (exact, prefix, wild) = (ids[0].id(), ids[1].id(), ids[2].id());

        let list = ok(&admin, "wamp.registration.list", vec![]).await;
        assert_eq!(id_list(key(&list, "exact")), vec![exact]);
        assert_eq!(id_list(key(&list, "prefix")), vec![prefix]);
        assert_eq!(id_list(key(&list, "wildcard")), vec![wild]);
        let lookup = |uri: &str, policy: Option<&str>| {
            let mut args = vec![Value::from(uri)];
            if let Some(p) = policy {
                args.push(Value::Dict(dict! {"match" => p}));
            }
            args
        };
        let l = |v: Value| v.as_u64();
        assert_eq!(
            l(ok(
                &admin,
                "wamp.registration.lookup",
                lookup("com.meta.exact", None)
            )
            .await),
            Some(exact)
        );
        assert_eq!(
            l(ok(
                &admin,
                "wamp.registration.lookup",
                lookup("com.meta.pre.", Some("prefix"))
            )
            .await),
            Some(prefix)
        );
        assert_eq!(
            ok(
                &admin,
                "wamp.registration.lookup",
                lookup("com.meta.pre.", None)
            )
            .await,
            Value::Null
        );
        let m = |p: &str| vec![Value::from(p)];
        assert_eq!(
            l(ok(&admin, "wamp.registration.match", m("com.meta.exact")).await),
            Some(exact)
        );
        assert_eq!(
            l(ok(&admin, "wamp.registration.match", m("com.meta.pre.x")).await),
            Some(prefix)
        );
        assert_eq!(
            l(ok(&admin, "wamp.registration.match", m("com.meta.x.wild")).await),
            Some(wild)
        );
        assert_eq!(
            ok(&admin, "wamp.registration.match", m("com.none")).await,
            Value::Null
        );
        let got = ok(&admin, "wamp.registration.get", vec![Value::from(prefix)]).await;
        assert_eq!(key(&got, "uri").as_str(), Some("com.meta.pre."));
        assert_eq!(
            id_list(
                &ok(
                    &admin,
                    "wamp.registration.list_callees",
                    vec![Value::from(wild)]
                )
                .await
            ),
            vec![cid]
        );
        assert_eq!(
            ok(
                &admin,
                "wamp.registration.count_callees",
                vec![Value::from(wild)]
            )
            .await
            .as_u64(),
            Some(1)
        );
        for p in [
            "wamp.registration.get",
            "wamp.registration.list_callees",
            "wamp.registration.count_callees",
        ] {
            assert_eq!(
                error_uri(call(&admin, p, vec![Value::from(7u64)]).await),
                "wamp.error.no_such_registration"
            );
        }

        // A shared registration: the second callee only registers.
        let other = join(&router, via).await;
        let shared = RegisterOptions::new().invoke(InvokePolicy::RoundRobin);
        let s1 = callee
            .register_with("com.meta.shared", shared.clone())
            .await
            .expect("ok");
        expect(&mut events, "wamp.registration.on_create", cid).await;
        expect(&mut events, "wamp.registration.on_register", cid).await;
        let s2 = other
            .register_with("com.meta.shared", shared)
            .await
            .expect("ok");
        assert_eq!(s1.id(), s2.id());
        let args = expect(&mut events, "wamp.registration.on_register", other.id()).await;
        assert_eq!(args[1].as_u64(), Some(s1.id()));
        assert_eq!(
            ok(
                &admin,
                "wamp.registration.count_callees",
                vec![Value::from(s1.id())]
            )
            .await
            .as_u64(),
            Some(2)
        );

        // remove_callee revokes; the last callee's removal deletes.
        let r = call_kw(
            &admin,
            "wamp.registration.remove_callee",
            vec![Value::from(s1.id()), Value::from(other.id())],
            dict! {"reason" => "com.example.out"},
        )
        .await
        .expect("remove_callee");
        assert!(r.args.is_empty());
        expect(&mut events, "wamp.registration.on_unregister", other.id()).await;
        within("revoked", async {
            while !s2.is_revoked() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(s2.revocation_reason(), Some("com.example.out"));
        assert_eq!(
            error_uri(
                call(
                    &admin,
                    "wamp.registration.remove_callee",
                    vec![Value::from(s1.id()), Value::from(other.id())],
                )
                .await
            ),
            "wamp.error.no_such_registration"
        );
        assert_eq!(
            error_uri(
                call(
                    &admin,
                    "wamp.registration.remove_callee",
                    vec![Value::from(s1.id()), Value::from(5u64)],
                )
                .await
            ),
            "wamp.error.no_such_session"
        );

        // UNREGISTER: on_unregister, then on_delete.
        ids.remove(0).unregister().await.expect("unregister");
        let args = expect(&mut events, "wamp.registration.on_unregister", cid).await;
        assert_eq!(args[1].as_u64(), Some(exact));
        let args = expect(&mut events, "wamp.registration.on_delete", cid).await;
        assert_eq!(args[1].as_u64(), Some(exact));

        // Dropping without GOODBYE cleans up the rest: each unregister before its delete.
        callee.disconnect().await;
        let mut deleted = Vec::new();
        let mut unregistered = Vec::new();
        for _ in 0..6 {
            let (topic, args) = next(&mut events).await;
            let id = args[1].as_u64().expect("ok");
            match topic.as_str() {
                "wamp.registration.on_unregister" => unregistered.push(id),
                "wamp.registration.on_delete" => {
                    assert!(unregistered.contains(&id), "delete before unregister");
                    deleted.push(id);
                }
                other => panic!("unexpected {other}"),
            }
        }
        deleted.sort_unstable();
        let mut want = vec![prefix, wild, s1.id()];
        want.sort_unstable();
        assert_eq!(deleted, want);
        no_event(&mut events).await;
        let list = ok(&admin, "wamp.registration.list", vec![]).await;
        assert!(id_list(key(&list, "exact")).is_empty());
        drop(s2);
    }
}

#[tokio::test]
async fn subscription_procedures_and_events() {
    for via in VIAS {
        let router = TestRouter::start().await;
        let admin = join(&router, via).await;
        let mut events = watch(&admin, "wamp.subscription.").await;
        let a = join(&router, via).await;
        let b = join(&router, via).await;
        let aid = a.id();

        let mut subs = Vec::new();
        for (uri, policy) in [
            ("com.meta.topic", MatchPolicy::Exact),
            ("com.meta.", MatchPolicy::Prefix),
            ("com..topic", MatchPolicy::Wildcard),
        ] {
            let sub = a
                .subscribe_with(uri, SubscribeOptions::new().match_policy(policy))
                .await
                .expect("subscribe");
            let args = expect(&mut events, "wamp.subscription.on_create", aid).await;
            assert_eq!(key(&args[1], "id").as_u64(), Some(sub.id()));
            assert_eq!(key(&args[1], "uri").as_str(), Some(uri));
            assert_eq!(key(&args[1], "match").as_str(), Some(policy.as_str()));
            assert!(key(&args[1], "created").as_str().is_some());
            let args = expect(&mut events, "wamp.subscription.on_subscribe", aid).await;
            assert_eq!(args[1].as_u64(), Some(sub.id()));
            subs.push(sub);
        }
        let (exact, prefix, wild) = (subs[0].id(), subs[1].id(), subs[2].id());
        // A second subscriber: on_subscribe only.
        let b_sub = b.subscribe("com.meta.topic").await.expect("ok");
        assert_eq!(b_sub.id(), exact);
        expect(&mut events, "wamp.subscription.on_subscribe", b.id()).await;

        let list = ok(&admin, "wamp.subscription.list", vec![]).await;
        assert_eq!(id_list(key(&list, "exact")), vec![exact]);
        // (The watcher's own `wamp.subscription.` prefix subscription is listed too.)
        assert_eq!(id_list(key(&list, "prefix")).len(), 2);
        assert!(id_list(key(&list, "prefix")).contains(&prefix));
        assert_eq!(id_list(key(&list, "wildcard")), vec![wild]);
        let mine = ok(&admin, "wamp.subscription.list", vec![Value::from(b.id())]).await;
        assert_eq!(id_list(key(&mine, "exact")), vec![exact]);
        assert!(id_list(key(&mine, "prefix")).is_empty());
        assert_eq!(
            ok(
                &admin,
                "wamp.subscription.lookup",
                vec![
                    Value::from("com..topic"),
                    Value::Dict(dict! {"match" => "wildcard"})
                ]
            )
            .await
            .as_u64(),
            Some(wild)
        );
        assert_eq!(
            ok(
                &admin,
                "wamp.subscription.lookup",
                vec![Value::from("com.nothing")]
            )
            .await,
            Value::Null
        );
        let mut all = vec![exact, prefix, wild];
        all.sort_unstable();
        assert_eq!(
            id_list(
                &ok(
                    &admin,
                    "wamp.subscription.match",
                    vec![Value::from("com.meta.topic")]
                )
                .await
            ),
            all
        );
        assert_eq!(
            ok(
                &admin,
                "wamp.subscription.match",
                vec![Value::from("org.x")]
            )
            .await,
            Value::Null
        );
        let got = ok(&admin, "wamp.subscription.get", vec![Value::from(prefix)]).await;
        assert_eq!(key(&got, "uri").as_str(), Some("com.meta."));
        let mut ab = vec![aid, b.id()];
        ab.sort_unstable();
        assert_eq!(
            id_list(
                &ok(
                    &admin,
                    "wamp.subscription.list_subscribers",
                    vec![Value::from(exact)]
                )
                .await
            ),
            ab
        );
        assert_eq!(
            ok(
                &admin,
                "wamp.subscription.count_subscribers",
                vec![Value::from(exact)]
            )
            .await
            .as_u64(),
            Some(2)
        );
        for p in [
            "wamp.subscription.get",
            "wamp.subscription.list_subscribers",
            "wamp.subscription.count_subscribers",
        ] {
            assert_eq!(
                error_uri(call(&admin, p, vec![Value::from(7u64)]).await),
                "wamp.error.no_such_subscription"
            );
        }

        // remove_subscriber: revocation, on_unsubscribe (not deleted: a remains).
        let r = call_kw(
            &admin,
            "wamp.subscription.remove_subscriber",
            vec![Value::from(exact), Value::from(b.id())],
            dict! {"reason" => "com.example.out"},
        )
        .await
        .expect("remove_subscriber");
        assert!(r.args.is_empty());
        expect(&mut events, "wamp.subscription.on_unsubscribe", b.id()).await;
        within("revoked", async {
            while !b_sub.is_revoked() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(b_sub.revocation_reason(), Some("com.example.out"));
        assert_eq!(
            error_uri(
                call(
                    &admin,
                    "wamp.subscription.remove_subscriber",
                    vec![Value::from(exact), Value::from(b.id())],
                )
                .await
            ),
            "wamp.error.no_such_subscription"
        );
        assert_eq!(
            error_uri(
                call(
                    &admin,
                    "wamp.subscription.remove_subscriber",
                    vec![Value::from(99u64), Value::from(b.id())],
                )
                .await
            ),
            "wamp.error.no_such_subscription"
        );

        // UNSUBSCRIBE of the last subscriber: on_unsubscribe, then on_delete.
        subs.remove(0).unsubscribe().await.expect("unsubscribe");
        let args = expect(&mut events, "wamp.subscription.on_unsubscribe", aid).await;
        assert_eq!(args[1].as_u64(), Some(exact));
        let args = expect(&mut events, "wamp.subscription.on_delete", aid).await;
        assert_eq!(args[1].as_u64(), Some(exact));

        // Dropping without GOODBYE.
        a.disconnect().await;
        let mut unsubscribed = Vec::new();
        let mut deleted = Vec::new();
        for _ in 0..4 {
            let (topic, args) = next(&mut events).await;
            let id = args[1].as_u64().expect("ok");
            match topic.as_str() {
                "wamp.subscription.on_unsubscribe" => unsubscribed.push(id),
                "wamp.subscription.on_delete" => {
                    assert!(unsubscribed.contains(&id), "delete before unsubscribe");
                    deleted.push(id);
                }
                other => panic!("unexpected {other}"),
            }
        }
        deleted.sort_unstable();
        let mut want = vec![prefix, wild];
        want.sort_unstable();
        assert_eq!(deleted, want);
        no_event(&mut events).await;
        drop(b_sub);
    }
}

#[tokio::test]
async fn realms_are_isolated() {
    let router = TestRouter::start_with(|c| {
        c.realms
            .push(junction::config::Realm::named("realm2".to_owned()));
    })
    .await;
    let one = join_realm(&router, "realm1").await;
    let mut joins = watch(&one, "wamp.session.").await;
    let two = join_realm(&router, "realm2").await;
    let other_two = join_realm(&router, "realm2").await;
    no_event(&mut joins).await;
    let mut both = vec![two.id(), other_two.id()];
    both.sort_unstable();
    assert_eq!(id_list(&ok(&two, "wamp.session.list", vec![]).await), both);
    assert_eq!(
        ok(&one, "wamp.session.count", vec![]).await.as_u64(),
        Some(1)
    );
    assert_eq!(
        error_uri(call(&two, "wamp.session.get", vec![Value::from(one.id())]).await),
        "wamp.error.no_such_session"
    );
    assert_eq!(
        error_uri(call(&two, "wamp.session.kill", vec![Value::from(one.id())]).await),
        "wamp.error.no_such_session"
    );
    assert_eq!(
        ok(&two, "wamp.session.kill_all", vec![]).await.as_u64(),
        Some(1)
    );
    assert!(!one.is_closed());
    let _sub = one.subscribe("com.iso").await.expect("ok");
    let list = ok(&two, "wamp.subscription.list", vec![]).await;
    assert!(id_list(key(&list, "exact")).is_empty());
    assert_eq!(
        ok(
            &two,
            "wamp.subscription.match",
            vec![Value::from("com.iso")]
        )
        .await,
        Value::Null
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument() {
    let router = TestRouter::start().await;
    let s = router.join().await;
    fn v(x: impl Into<Value>) -> Value {
        x.into()
    }
    let cases: Vec<(&str, Vec<Value>)> = vec![
        ("wamp.session.count", vec![v(5u64)]),
        ("wamp.session.count", vec![Value::List(vec![v(1u64)])]),
        ("wamp.session.list", vec![v("x"), v("y")]),
        ("wamp.session.get", vec![]),
        ("wamp.session.get", vec![v("x")]),
        ("wamp.session.kill", vec![v(1u64), v(2u64)]),
        ("wamp.session.kill_by_authid", vec![v(1u64)]),
        ("wamp.session.kill_by_authrole", vec![]),
        ("wamp.session.kill_all", vec![v(1u64)]),
        ("wamp.registration.list", vec![v("x")]),
        ("wamp.registration.lookup", vec![v(1u64)]),
        ("wamp.registration.lookup", vec![v("a.b"), v(1u64)]),
        (
            "wamp.registration.lookup",
            vec![v("a.b"), Value::Dict(dict! {"match" => "fuzzy"})],
        ),
        ("wamp.registration.match", vec![]),
        ("wamp.registration.get", vec![v(-1i64)]),
        ("wamp.registration.list_callees", vec![Value::Null]),
        ("wamp.registration.count_callees", vec![v(1u64), v(2u64)]),
        ("wamp.registration.remove_callee", vec![v(1u64)]),
        ("wamp.subscription.list", vec![Value::Dict(Dict::new())]),
        ("wamp.subscription.lookup", vec![]),
        ("wamp.subscription.match", vec![Value::List(vec![])]),
        ("wamp.subscription.get", vec![v(1.5f64)]),
        ("wamp.subscription.list_subscribers", vec![v("1")]),
        ("wamp.subscription.count_subscribers", vec![]),
        ("wamp.subscription.remove_subscriber", vec![v("a"), v("b")]),
    ];
    for (procedure, args) in cases {
        let got = error_uri(call(&s, procedure, args.clone()).await);
        assert_eq!(got, "wamp.error.invalid_argument", "{procedure} {args:?}");
    }
    let bad_kw = call_kw(
        &s,
        "wamp.session.kill_all",
        vec![],
        dict! {"reason" => 5u64},
    )
    .await;
    assert_eq!(error_uri(bad_kw), "wamp.error.invalid_argument");
    let bad_kw = call_kw(
        &s,
        "wamp.session.kill_all",
        vec![],
        dict! {"message" => 5u64},
    )
    .await;
    assert_eq!(error_uri(bad_kw), "wamp.error.invalid_argument");
    // Still serving.
    assert!(!s.is_closed());
    assert_eq!(ok(&s, "wamp.session.count", vec![]).await.as_u64(), Some(1));
}
