//! Dynamic authentication and authorization: procedures registered by trusted
//! components (on realm `auth`) decide who joins realm `realm1` and what sessions
//! in role `user` may do; the router caches the authorizer's answers.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{within, TestRouter};
use std::sync::Mutex;
use wamp_client::{
    ConnectOptions, Error, HandlerResult, MatchPolicy, PublishOptions, RegisterOptions, Session,
    SubscribeOptions,
};
use wamp_proto::{dict, Dict, Payload, Value};

/// Cryptosign keys (seeds): Alice's and Bob's are known to the authenticator.
const ALICE_KEY: [u8; 32] = [0x11; 32];
const BOB_KEY: [u8; 32] = [0x33; 32];
const STRANGER_KEY: [u8; 32] = [0x22; 32];

fn pubkey(seed: &[u8; 32]) -> String {
    wamp_client::PrivateKey::new(*seed).public_key_hex()
}

const CONFIG: &str = r#"
[[realm]]
name = "realm1"

[[realm.role]]
name = "backend"
[[realm.role.permission]]
uri = ""
match = "prefix"
call = true
register = true
publish = true
subscribe = true

[[realm.role]]
name = "user"
authorizer = "com.example.authorize"
authorizer_realm = "auth"

[realm.auth.anonymous]
role = "backend"

[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["ticket", "wampcra", "cryptosign", "wamp-scram"]

[[realm]]
name = "auth"

[[realm]]
name = "slow"
[realm.auth.dynamic]
procedure = "com.example.never_answers"
realm = "auth"
methods = ["ticket"]
timeout_ms = 200

[[realm]]
name = "absent"
[realm.auth.dynamic]
procedure = "com.example.nobody_registered_this"
realm = "auth"
methods = ["ticket"]

[[realm]]
name = "anon"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["anonymous"]

[[realm]]
name = "shortcache"
authorizer_cache_ms = 200
authorizer_timeout_ms = 5000

[[realm.role]]
name = "user"
authorizer = "com.example.authorize"
authorizer_realm = "auth"

[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["ticket"]

# The components on `auth` are anonymous sessions (role "anonymous").
[[realm]]
name = "guarded"
[[realm.role]]
name = "user"
authorizer = "com.example.authorize"
authorizer_realm = "auth"
authorizer_callee_role = "authorizer"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["ticket"]
callee_role = "anonymous"

[[realm]]
name = "impostor"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["ticket"]
callee_role = "authenticator"
"#;

async fn start() -> TestRouter {
    let parsed = junction::Config::from_toml(CONFIG).expect("config parses");
    TestRouter::start_with(move |c| c.realms = parsed.realms).await
}

async fn connect(
    router: &TestRouter,
    realm: &str,
    options: ConnectOptions,
) -> Result<Session, Error> {
    within(
        "join",
        Session::connect_with(&router.ws_url(), realm, options),
    )
    .await
}

fn error(uri: &str, message: &str) -> HandlerResult {
    Err((uri.into(), vec![Value::from(message)], Dict::new()))
}

fn answer(v: Value) -> HandlerResult {
    Ok((vec![v], Dict::new()))
}

/// The authenticator: `(realm, authid, details)`.
fn authenticate(args: &[Value]) -> HandlerResult {
    let realm = args.first().and_then(Value::as_str).unwrap_or_default();
    let authid = args.get(1).and_then(Value::as_str).unwrap_or_default();
    let details = args
        .get(2)
        .and_then(Value::as_dict)
        .cloned()
        .unwrap_or_default();
    let method = details
        .get("authmethod")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Plain WebSocket from the loopback interface.
    let transport = details.get("transport").and_then(Value::as_dict);
    let field = |k: &str| transport.and_then(|t| t.get(k)).cloned();
    if field("is_secure") != Some(Value::Bool(false))
        || field("peer_cert") != Some(Value::Null)
        || field("channel_framing") != Some(Value::from("websocket"))
        || !field("peer")
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|p| p.starts_with("tcp4:127.0.0.1:"))
    {
        return error("com.example.bad_details", "transport details incomplete");
    }
    if realm == "anon" && method == "anonymous" {
        let wanted = details.get("authrole").and_then(Value::as_str);
        return match wanted {
            Some("visitor") => answer(Value::from("visitor")),
            _ => error("com.example.go_away", "ask for role visitor"),
        };
    }
    if !["realm1", "shortcache", "guarded"].contains(&realm) {
        return error("wamp.error.not_authorized", "unexpected realm");
    }
    if method == "cryptosign" {
        let (who, key) = match authid {
            "alice" => ("alice", ALICE_KEY),
            a if a == pubkey(&BOB_KEY) => ("bob", BOB_KEY),
            _ => return error("wamp.error.not_authorized", "unknown key"),
        };
        return answer(Value::Dict(dict! {
            "role" => "user", "authid" => who, "pubkey" => pubkey(&key),
        }));
    }
    if method == "wamp-scram" {
        if authid != "mary" {
            return error("wamp.error.not_authorized", "no such user");
        }
        let user = wamp_router::auth::scram::new_user(
            "",
            "mary's password",
            wamp_router::auth::Dialect::Spec,
            wamp_router::auth::Kdf::Pbkdf2,
            64,
        )
        .map_err(|e| {
            (
                "com.example.oops".to_owned(),
                vec![Value::from(e)],
                Dict::new(),
            )
        })?;
        return answer(Value::Dict(dict! {
            "role" => "user",
            "kdf" => "pbkdf2",
            "iterations" => 64u64,
            "salt" => B64.encode(&user.salt),
            "stored-key" => B64.encode(user.stored_key),
            "server-key" => B64.encode(user.server_key),
            "extra" => Value::Dict(dict! {"greeting" => "hi mary"}),
        }));
    }
    if method == "wampcra" {
        return match authid {
            "peter" => answer(Value::Dict(
                dict! {"role" => "user", "secret" => "secret123"},
            )),
            "paul" => answer(Value::Dict(dict! {
                "role" => "user", "secret" => "salted-secret", "salt" => "salt123",
                "iterations" => 100u64, "keylen" => 32u64,
            })),
            _ => error("wamp.error.not_authorized", "no such user"),
        };
    }
    let ticket = details
        .get("ticket")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match authid {
        "banned" => error("wamp.error.not_authorized", "this user is banned"),
        "ghost" => answer(Value::from("no-such-role")),
        "broken" => answer(Value::from(42)),
        _ if ticket == format!("ticket-of-{authid}") => answer(Value::Dict(dict! {
            "role" => "user",
            "authid" => format!("{authid}@example"),
            "extra" => Value::Dict(dict! {"greeting" => "hello"}),
        })),
        _ => error("wamp.error.not_authorized", "wrong ticket"),
    }
}

/// Authorizer invocations per "action uri".
type Counts = Arc<Mutex<HashMap<String, usize>>>;

/// The authorizer: `(session, uri, action, options)`.
fn authorize(args: &[Value], counts: &Counts) -> HandlerResult {
    let session = args
        .first()
        .and_then(Value::as_dict)
        .cloned()
        .unwrap_or_default();
    let uri = args.get(1).and_then(Value::as_str).unwrap_or_default();
    let action = args.get(2).and_then(Value::as_str).unwrap_or_default();
    let pattern = args
        .get(3)
        .and_then(Value::as_dict)
        .and_then(|o| o.get("match"))
        .and_then(Value::as_str)
        .filter(|m| *m != "exact");
    *counts
        .lock()
        .expect("lock")
        .entry(format!("{action} {uri}"))
        .or_default() += 1;
    if session.get("authrole").and_then(Value::as_str) != Some("user") {
        return answer(Value::Bool(false));
    }
    let extra = session.get("authextra").and_then(Value::as_dict);
    let transport = session.get("transport").and_then(Value::as_dict);
    if session.get("authprovider").and_then(Value::as_str) != Some("dynamic")
        || extra.and_then(|e| e.get("greeting")).is_none()
        || transport
            .and_then(|t| t.get("websocket_protocol"))
            .is_none_or(|p| !p.as_str().is_some_and(|p| p.starts_with("wamp.2.")))
    {
        return error("com.example.bad_details", "session details incomplete");
    }
    match (action, uri) {
        // Pattern subscriptions and registrations reach other URIs: refused.
        ("subscribe" | "register", _) if pattern.is_some() => answer(Value::Bool(false)),
        ("call", u) if u.starts_with("com.example.allowed.") => answer(Value::Bool(true)),
        ("call", "com.example.uncached") => {
            answer(Value::Dict(dict! {"allow" => true, "cache" => false}))
        }
        ("register", "com.example.user.proc") => answer(Value::Bool(true)),
        ("subscribe", "com.example.news") => answer(Value::Dict(dict! {"allow" => true})),
        ("publish", "com.example.news") => {
            answer(Value::Dict(dict! {"allow" => true, "disclose" => true}))
        }
        (_, "com.example.raises") => error("com.example.oops", "authorizer bug"),
        (_, "com.example.garbage") => answer(Value::from("yes")),
        _ => answer(Value::Bool(false)),
    }
}

/// Trusted components on realm `auth`: the authenticator and the authorizer.
async fn components(router: &TestRouter) -> (Session, Counts) {
    let s = connect(router, "auth", ConnectOptions::default())
        .await
        .expect("component joins");
    s.register_fn("com.example.authenticate", |args, _| async move {
        authenticate(&args)
    })
    .await
    .expect("register authenticator");
    let counts: Counts = Arc::default();
    let c = counts.clone();
    s.register_fn("com.example.authorize", move |args, _| {
        let c = c.clone();
        async move { authorize(&args, &c) }
    })
    .await
    .expect("register authorizer");
    (s, counts)
}

/// A backend on realm1 (static role) with `com.example.allowed.echo` and friends.
async fn backend(router: &TestRouter) -> Session {
    let s = connect(router, "realm1", ConnectOptions::default())
        .await
        .expect("backend joins");
    assert_eq!(detail(&s, "authprovider"), "static");
    for uri in [
        "com.example.allowed.echo",
        "com.example.uncached",
        "com.example.denied",
        "com.example.raises",
        "com.example.garbage",
    ] {
        s.register_fn(uri, |args, _| async move { Ok((args, Dict::new())) })
            .await
            .expect("register");
    }
    s
}

fn detail<'a>(session: &'a Session, key: &str) -> &'a str {
    session
        .welcome_details()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn assert_abort(result: Result<Session, Error>, reason: &str, message: Option<&str>) {
    match result {
        Err(Error::Abort {
            reason: r,
            message: m,
        }) => {
            assert_eq!(r, reason, "{m:?}");
            if let Some(message) = message {
                assert_eq!(m.as_deref(), Some(message));
            }
        }
        Err(e) => panic!("expected ABORT {reason}, got {e}"),
        Ok(_) => panic!("expected ABORT {reason}, got WELCOME"),
    }
}

fn assert_error<T: std::fmt::Debug>(r: Result<T, Error>, uri: &str, what: &str) {
    match r {
        Err(e) => assert_eq!(e.uri(), Some(uri), "{what}: {e}"),
        Ok(v) => panic!("{what}: expected {uri}, got {v:?}"),
    }
}

fn pending_calls(router: &TestRouter, realm: &str) -> usize {
    router
        .server
        .router()
        .realm(realm)
        .expect("realm")
        .stats()
        .pending_calls
}

async fn user(router: &TestRouter, realm: &str) -> Session {
    connect(
        router,
        realm,
        ConnectOptions::default().with_ticket("joe", "ticket-of-joe"),
    )
    .await
    .expect("joe joins")
}

#[tokio::test]
async fn ticket_decided_by_the_authenticator() {
    let router = start().await;
    let (_components, _) = components(&router).await;
    let joe = user(&router, "realm1").await;
    assert_eq!(detail(&joe, "authid"), "joe@example");
    assert_eq!(detail(&joe, "authrole"), "user");
    assert_eq!(detail(&joe, "authmethod"), "ticket");
    assert_eq!(detail(&joe, "authprovider"), "dynamic");
    let extra = joe
        .welcome_details()
        .get("authextra")
        .and_then(Value::as_dict);
    assert_eq!(
        extra
            .and_then(|e| e.get("greeting"))
            .and_then(Value::as_str),
        Some("hello")
    );
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "joe",
            "wrong",
            "wamp.error.not_authorized",
            Some("wrong ticket"),
        ),
        (
            "banned",
            "ticket-of-banned",
            "wamp.error.not_authorized",
            Some("this user is banned"),
        ),
        ("ghost", "x", "wamp.error.no_such_role", None),
        ("broken", "x", "wamp.error.authentication_failed", None),
    ];
    for (authid, ticket, reason, message) in cases {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_ticket(*authid, *ticket),
        )
        .await;
        assert_abort(r, reason, *message);
    }
    assert_eq!(pending_calls(&router, "auth"), 0);
    assert_eq!(router.stats().sessions, 1, "only joe");
    // The session meta API tells the same story.
    let b = backend(&router).await;
    let got = b
        .call("wamp.session.get", vec![Value::from(joe.id())], Dict::new())
        .await
        .expect("session.get");
    let details = got.args.first().and_then(Value::as_dict).expect("details");
    assert_eq!(
        details.get("authprovider").and_then(Value::as_str),
        Some("dynamic")
    );
    assert_eq!(details.get("authextra").and_then(Value::as_dict), extra);
}

#[tokio::test]
async fn wampcra_with_the_secret_from_the_authenticator() {
    let router = start().await;
    let (_components, _) = components(&router).await;
    for (authid, secret) in [("peter", "secret123"), ("paul", "salted-secret")] {
        let s = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_wampcra(authid, secret),
        )
        .await
        .unwrap_or_else(|e| panic!("{authid} joins: {e}"));
        assert_eq!(detail(&s, "authid"), authid);
        assert_eq!(detail(&s, "authrole"), "user");
        assert_eq!(detail(&s, "authmethod"), "wampcra");
        assert_eq!(detail(&s, "authprovider"), "dynamic");
        s.leave().await.expect("leave");
    }
    for (authid, secret, reason) in [
        ("peter", "wrong", "wamp.error.not_authorized"),
        ("paul", "secret123", "wamp.error.not_authorized"),
        ("nobody", "secret123", "wamp.error.not_authorized"),
    ] {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_wampcra(authid, secret),
        )
        .await;
        assert_abort(r, reason, None);
    }
}

#[tokio::test]
async fn cryptosign_and_scram_with_what_the_authenticator_gives() {
    let router = start().await;
    let (_components, _) = components(&router).await;
    for (authid, key, expected) in [(Some("alice"), ALICE_KEY, "alice"), (None, BOB_KEY, "bob")] {
        let s = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_cryptosign(authid, key),
        )
        .await
        .unwrap_or_else(|e| panic!("{expected} joins: {e}"));
        assert_eq!(detail(&s, "authid"), expected);
        assert_eq!(detail(&s, "authrole"), "user");
        assert_eq!(detail(&s, "authmethod"), "cryptosign");
        assert_eq!(detail(&s, "authprovider"), "dynamic");
        s.leave().await.expect("leave");
    }
    // Alice's authid with another key: the signature does not match her key.
    let r = connect(
        &router,
        "realm1",
        ConnectOptions::default().with_cryptosign(Some("alice"), STRANGER_KEY),
    )
    .await;
    assert_abort(r, "wamp.error.not_authorized", None);
    // SCRAM: the client checks the router's server signature in WELCOME too.
    let mary = connect(
        &router,
        "realm1",
        ConnectOptions::default().with_scram("mary", "mary's password"),
    )
    .await
    .expect("mary joins");
    assert_eq!(detail(&mary, "authmethod"), "wamp-scram");
    assert_eq!(detail(&mary, "authprovider"), "dynamic");
    let extra = mary
        .welcome_details()
        .get("authextra")
        .and_then(Value::as_dict)
        .expect("authextra");
    assert!(extra.contains_key("verifier"), "{extra:?}");
    assert_eq!(
        extra.get("greeting").and_then(Value::as_str),
        Some("hi mary")
    );
    for (authid, password) in [("mary", "wrong"), ("nobody", "mary's password")] {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_scram(authid, password),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized", None);
    }
}

#[tokio::test]
async fn absent_or_silent_authenticator_fails_authentication() {
    let router = start().await;
    let (components, _) = components(&router).await;
    let invoked = Arc::new(AtomicUsize::new(0));
    let i = invoked.clone();
    components
        .register_fn("com.example.never_answers", move |_, _| {
            i.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<HandlerResult>()
        })
        .await
        .expect("register");
    let bystander = user(&router, "realm1").await;
    for realm in ["absent", "slow"] {
        let r = connect(
            &router,
            realm,
            ConnectOptions::default().with_ticket("joe", "ticket-of-joe"),
        )
        .await;
        assert_abort(r, "wamp.error.authentication_failed", None);
    }
    assert_eq!(invoked.load(Ordering::SeqCst), 1, "the slow one was asked");
    assert_eq!(pending_calls(&router, "auth"), 0, "nothing left behind");
    // Everyone else carried on.
    let _backend = backend(&router).await;
    let r = within(
        "call",
        bystander.call(
            "com.example.allowed.echo",
            vec![Value::from(1)],
            Dict::new(),
        ),
    )
    .await
    .expect("call");
    assert_eq!(r.args, vec![Value::from(1)]);
}

#[tokio::test]
async fn anonymous_decided_by_the_authenticator() {
    let router = start().await;
    let (_components, _) = components(&router).await;
    let options = ConnectOptions {
        hello_details: dict! {"authrole" => "visitor"},
        ..ConnectOptions::default()
    };
    let s = connect(&router, "anon", options).await.expect("joins");
    assert_eq!(detail(&s, "authrole"), "visitor");
    assert_eq!(detail(&s, "authmethod"), "anonymous");
    assert_eq!(detail(&s, "authprovider"), "dynamic");
    assert!(detail(&s, "authid").starts_with("anonymous-"));
    let r = connect(&router, "anon", ConnectOptions::default()).await;
    assert_abort(r, "com.example.go_away", Some("ask for role visitor"));
}

#[tokio::test]
async fn authorizer_allows_and_denies() {
    let router = start().await;
    let (_components, _) = components(&router).await;
    let backend = backend(&router).await;
    let joe = user(&router, "realm1").await;
    let ok = within(
        "call",
        joe.call(
            "com.example.allowed.echo",
            vec![Value::from(5)],
            Dict::new(),
        ),
    )
    .await
    .expect("allowed call");
    assert_eq!(ok.args, vec![Value::from(5)]);
    let calls: &[(&str, &str)] = &[
        ("com.example.denied", "wamp.error.not_authorized"),
        ("com.example.raises", "wamp.error.authorization_failed"),
        ("com.example.garbage", "wamp.error.authorization_failed"),
    ];
    for (uri, expected) in calls {
        let r = within("call", joe.call(uri, vec![], Dict::new())).await;
        assert_error(r, expected, uri);
    }
    let registered = within("register", joe.register("com.example.user.proc")).await;
    assert!(registered.is_ok(), "{registered:?}");
    assert_error(
        within("register", joe.register("com.example.user.other")).await,
        "wamp.error.not_authorized",
        "register other",
    );
    let mut news = within("subscribe", joe.subscribe("com.example.news"))
        .await
        .expect("subscribe");
    assert_error(
        within("subscribe", joe.subscribe("com.example.sports")).await,
        "wamp.error.not_authorized",
        "subscribe other",
    );
    // Publishing: allowed with disclosure; denied and failed ones are refused
    // when acknowledged, dropped silently otherwise.
    let mut backend_news = backend.subscribe("com.example.news").await.expect("sub");
    for (topic, expected) in [
        ("com.example.sports", "wamp.error.not_authorized"),
        ("com.example.raises", "wamp.error.authorization_failed"),
    ] {
        let r = joe
            .publish_with(
                topic,
                Payload::default(),
                PublishOptions::new().acknowledge(true),
            )
            .await;
        assert_error(r, expected, topic);
    }
    joe.publish("com.example.raises", vec![], Dict::new())
        .await
        .expect("unacknowledged publish");
    joe.publish_with(
        "com.example.news",
        Payload::from_args(vec![Value::from("hi")]),
        PublishOptions::new().acknowledge(true).exclude_me(false),
    )
    .await
    .expect("allowed publish");
    let event = within("event", backend_news.next()).await.expect("event");
    assert_eq!(event.args, vec![Value::from("hi")]);
    assert_eq!(
        event
            .details
            .get("publisher_authid")
            .and_then(Value::as_str),
        Some("joe@example"),
        "disclose from the authorizer"
    );
    let own = within("own event", news.next()).await.expect("own event");
    assert_eq!(own.args, vec![Value::from("hi")]);
    assert_eq!(pending_calls(&router, "auth"), 0);
}

#[tokio::test]
async fn authorizer_answers_are_cached() {
    let router = start().await;
    let (_components, counts) = components(&router).await;
    let _backend = backend(&router).await;
    let joe = user(&router, "realm1").await;
    let count = |key: &str| counts.lock().expect("lock").get(key).copied().unwrap_or(0);
    // Sent all at once: the first waits for the authorizer, the others behind it
    // then find its answer in the cache.
    let calls = (0..100).map(|i| {
        joe.call(
            "com.example.allowed.echo",
            vec![Value::from(i)],
            Dict::new(),
        )
    });
    let results = within("100 calls", futures_util::future::join_all(calls)).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.expect("call").args, vec![Value::from(i)]);
    }
    assert_eq!(count("call com.example.allowed.echo"), 1);
    // Denials are cached too; `cache: false` answers are not.
    for _ in 0..3 {
        let r = joe.call("com.example.denied", vec![], Dict::new()).await;
        assert_error(r, "wamp.error.not_authorized", "denied");
        joe.call("com.example.uncached", vec![], Dict::new())
            .await
            .expect("uncached call");
    }
    assert_eq!(count("call com.example.denied"), 1);
    assert_eq!(count("call com.example.uncached"), 3);
    // The cache is per action.
    assert_error(
        joe.register("com.example.allowed.echo").await,
        "wamp.error.not_authorized",
        "register",
    );
    assert_eq!(count("register com.example.allowed.echo"), 1);

    // On a realm whose cache keeps answers briefly: asked again once they expired.
    let short = user(&router, "shortcache").await;
    let r = short
        .call("com.example.allowed.echo", vec![], Dict::new())
        .await;
    // Nobody registered it there: authorization came first.
    assert_error(r, "wamp.error.no_such_procedure", "short");
    assert_eq!(
        count("call com.example.allowed.echo"),
        2,
        "own cache per realm"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = short
        .call("com.example.allowed.echo", vec![], Dict::new())
        .await;
    assert_error(r, "wamp.error.no_such_procedure", "short");
    assert_eq!(
        count("call com.example.allowed.echo"),
        3,
        "asked again after expiry"
    );
}

#[tokio::test]
async fn cached_answers_do_not_stand_for_patterns() {
    let router = start().await;
    let (_components, counts) = components(&router).await;
    let joe = user(&router, "realm1").await;
    let count = |key: &str| counts.lock().expect("lock").get(key).copied().unwrap_or(0);
    within("subscribe", joe.subscribe("com.example.news"))
        .await
        .expect("exact subscription");
    within("register", joe.register("com.example.user.proc"))
        .await
        .expect("exact registration");
    // The same URIs as patterns: asked again (with the options), and refused.
    for policy in [MatchPolicy::Prefix, MatchPolicy::Wildcard] {
        let r = joe
            .subscribe_with(
                "com.example.news",
                SubscribeOptions::new().match_policy(policy),
            )
            .await;
        assert_error(r, "wamp.error.not_authorized", "pattern subscription");
        let r = joe
            .register_with(
                "com.example.user.proc",
                RegisterOptions::new().match_policy(policy),
            )
            .await;
        assert_error(r, "wamp.error.not_authorized", "pattern registration");
    }
    assert_eq!(count("subscribe com.example.news"), 3);
    assert_eq!(count("register com.example.user.proc"), 3);
    // Each kind has its own cached answer.
    let r = joe
        .subscribe_with(
            "com.example.news",
            SubscribeOptions::new().match_policy(MatchPolicy::Prefix),
        )
        .await;
    assert_error(r, "wamp.error.not_authorized", "cached refusal");
    assert_eq!(count("subscribe com.example.news"), 3);
}

#[tokio::test]
async fn authorizer_leaving_while_a_message_waits() {
    let router = start().await;
    let (components, _) = components(&router).await;
    let backend = backend(&router).await;
    // A second authorizer component on realm `auth` that never answers, taking
    // over the procedure.
    let hanging = connect(&router, "auth", ConnectOptions::default())
        .await
        .expect("joins");
    let joe = user(&router, "realm1").await;
    joe.call("com.example.allowed.echo", vec![], Dict::new())
        .await
        .expect("cached before");
    components.leave().await.expect("leave");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    hanging
        .register_fn("com.example.authorize", move |_, _| {
            let _ = tx.send(());
            std::future::pending::<HandlerResult>()
        })
        .await
        .expect("register");
    let waiting = tokio::spawn({
        let joe = joe.clone();
        async move {
            joe.call("com.example.allowed.other", vec![], Dict::new())
                .await
        }
    });
    within("authorizer asked", rx.recv()).await.expect("asked");
    assert_eq!(pending_calls(&router, "auth"), 1);
    // Only joe waits: others are served meanwhile.
    let r = within(
        "bystander call",
        backend.call(
            "com.example.allowed.echo",
            vec![Value::from(9)],
            Dict::new(),
        ),
    )
    .await
    .expect("bystander call");
    assert_eq!(r.args, vec![Value::from(9)]);
    assert!(!waiting.is_finished());
    hanging.disconnect().await;
    let r = within("waiting call", waiting).await.expect("task");
    assert_error(r, "wamp.error.authorization_failed", "callee gone");
    // The session goes on: cached decisions still apply.
    let r = within(
        "call",
        joe.call(
            "com.example.allowed.echo",
            vec![Value::from(3)],
            Dict::new(),
        ),
    )
    .await
    .expect("call after");
    assert_eq!(r.args, vec![Value::from(3)]);
    assert_eq!(pending_calls(&router, "auth"), 0);
}

#[tokio::test]
async fn config_errors_name_line_and_key() {
    let bad: &[(&str, &str)] = &[
        (
            "[[realm]]\nname = \"r\"\n[realm.auth.dynamic]\nprocedure = \"p\"\nmethods = [\"cryptosignx\"]\n",
            "line 5",
        ),
        (
            "[[realm]]\nname = \"r\"\n[realm.auth.dynamic]\nprocedure = \"p\"\nrealm = \"nowhere\"\nmethods = [\"ticket\"]\n",
            "realm 'nowhere' is not declared",
        ),
        (
            "[[realm]]\nname = \"r\"\n[[realm.role]]\nname = \"anonymous\"\nauthorizer = \"a.b\"\n[[realm.role.permission]]\nuri = \"x\"\n",
            "line 5",
        ),
        (
            "[[realm]]\nname = \"r\"\n[[realm.role]]\nname = \"anonymous\"\nauthorizer = \"a.b\"\nauthorizer_realm = \"zz\"\n",
            "line 6",
        ),
    ];
    for (text, expected) in bad {
        let e = junction::Config::from_toml(text).expect_err("invalid");
        assert!(e.to_string().contains(expected), "{e} / {expected}");
    }
}

#[tokio::test]
async fn only_a_callee_in_the_required_role_is_asked() {
    let router = start().await;
    let (_components, counts) = components(&router).await;
    // The authenticator's session is in role "anonymous": accepted where that is
    // the required role ...
    let joe = user(&router, "guarded").await;
    assert_eq!(detail(&joe, "authprovider"), "dynamic");
    // ... and not asked where another role is required.
    let r = connect(
        &router,
        "impostor",
        ConnectOptions::default().with_ticket("joe", "ticket-of-joe"),
    )
    .await;
    assert_abort(r, "wamp.error.authentication_failed", None);
    // The same for the authorizer: not asked, so the action fails.
    let asked_before: usize = counts.lock().expect("lock").values().sum();
    let r = within(
        "call",
        joe.call("com.example.allowed.echo", vec![], Dict::new()),
    )
    .await;
    assert_error(
        r,
        "wamp.error.authorization_failed",
        "wrong-role authorizer",
    );
    let asked_after: usize = counts.lock().expect("lock").values().sum();
    assert_eq!(asked_before, asked_after, "the authorizer was asked");
    assert_eq!(pending_calls(&router, "auth"), 0);
}
