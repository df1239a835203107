//! Authentication (ticket, WAMP-CRA plain and salted, WAMP-Cryptosign,
//! WAMP-SCRAM) and authorization (roles with exact/prefix/wildcard permissions),
//! configured from TOML.

mod common;

use common::{within, TestRouter};
use wamp_client::{ConnectOptions, Error, PublishOptions, Session};
use wamp_proto::{dict, Dict, Message, Payload, Value};

const TICKET: &str = "joe's ticket";
/// Alice's cryptosign key (seed) and a key nobody configured.
const ALICE_KEY: [u8; 32] = [0x11; 32];
const STRANGER_KEY: [u8; 32] = [0x22; 32];
const BOB_KEY: [u8; 32] = [0x33; 32];

fn pubkey(seed: &[u8; 32]) -> String {
    wamp_client::PrivateKey::new(*seed).public_key_hex()
}

fn config_toml() -> String {
    let ticket_hash = wamp_router::auth::hash_ticket(TICKET, 1000);
    let derived = wamp_router::auth::derive_cra_key("salted-secret", "salt123", 1000, 32);
    let (alice, bob) = (pubkey(&ALICE_KEY), pubkey(&BOB_KEY));
    use junction::auth_config::{scram_form, KdfArg};
    let mary = scram_form("mary's password", KdfArg::Pbkdf2, Some(64), 0).expect("scram");
    let anne = scram_form("anne's password", KdfArg::Argon2id13, Some(1), 64).expect("scram");
    format!(
        r#"
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
name = "frontend"
[[realm.role.permission]]
uri = "com.example.api."
match = "prefix"
call = true
[[realm.role.permission]]
uri = "com.example.api.admin"
match = "exact"
[[realm.role.permission]]
uri = "com.example.news"
subscribe = true
[[realm.role.permission]]
uri = "com.example.chat"
publish = true
disclose_publisher = true
[[realm.role.permission]]
uri = "wamp.session."
match = "prefix"
call = true

[[realm.role]]
name = "public"
[[realm.role.permission]]
uri = "com..news"
match = "wildcard"
subscribe = true

[realm.auth.anonymous]
role = "public"

[[realm.auth.ticket]]
authid = "joe"
role = "backend"
ticket_hash = "{ticket_hash}"

[[realm.auth.wampcra]]
authid = "peter"
role = "frontend"
secret = "secret123"

[[realm.auth.wampcra]]
authid = "paul"
role = "frontend"
derived_key = "{derived}"
salt = "salt123"
iterations = 1000
keylen = 32

[[realm]]
name = "closed"
[[realm.auth.ticket]]
authid = "joe"
role = "backend"
ticket_hash = "{ticket_hash}"

[[realm]]
name = "expiring"
[[realm.auth.ticket]]
authid = "former"
role = "backend"
ticket_hash = "{ticket_hash}"
expires = 2020-01-01T00:00:00Z
[[realm.auth.ticket]]
authid = "temporary"
role = "backend"
ticket_hash = "{ticket_hash}"
expires = 2999-01-01T00:00:00Z
[[realm.auth.wampcra]]
authid = "former-peter"
role = "backend"
secret = "secret123"
expires = 2020-01-01T00:00:00+01:00

[[realm]]
name = "keys"
[[realm.role]]
name = "device"
[[realm.role.permission]]
uri = "com.example."
match = "prefix"
call = true
register = true
[[realm.role]]
name = "user"
[[realm.role.permission]]
uri = "com.example.api."
match = "prefix"
call = true
[[realm.auth.cryptosign]]
authid = "alice"
role = "device"
pubkeys = ["{alice}"]
[[realm.auth.cryptosign]]
authid = "bob"
role = "user"
pubkeys = ["{bob}"]
[[realm.auth.scram]]
authid = "mary"
role = "user"
{mary}
[[realm.auth.scram]]
authid = "anne"
role = "device"
{anne}
"#
    )
}

async fn start() -> TestRouter {
    let parsed = junction::Config::from_toml(&config_toml()).expect("config parses");
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

fn assert_abort(result: Result<Session, Error>, reason: &str) {
    match result {
        Err(Error::Abort { reason: r, message }) => {
            assert_eq!(r, reason, "{message:?}");
            // Says nothing about which part was wrong.
            let message = message.unwrap_or_default();
            assert!(
                !message.contains("secret") && !message.contains("authid"),
                "{message}"
            );
        }
        Err(e) => panic!("expected ABORT {reason}, got {e}"),
        Ok(_) => panic!("expected ABORT {reason}, got WELCOME"),
    }
}

fn detail<'a>(session: &'a Session, key: &str) -> &'a str {
    session
        .welcome_details()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A session that keeps working while others fail to authenticate.
async fn bystander(router: &TestRouter) -> Session {
    let joe = connect(
        router,
        "realm1",
        ConnectOptions::default().with_ticket("joe", TICKET),
    )
    .await
    .expect("joe joins");
    joe.register_fn("com.example.echo", |args, _kwargs| async move {
        Ok((args, Dict::new()))
    })
    .await
    .expect("register");
    joe
}

async fn bystander_works(joe: &Session) {
    let r = within(
        "echo",
        joe.call("com.example.echo", vec![Value::from(7)], Dict::new()),
    )
    .await
    .expect("call");
    assert_eq!(r.args, vec![Value::from(7)]);
}

#[tokio::test]
async fn ticket_right_wrong_and_unknown() {
    let router = start().await;
    let joe = bystander(&router).await;
    assert_eq!(detail(&joe, "authid"), "joe");
    assert_eq!(detail(&joe, "authrole"), "backend");
    assert_eq!(detail(&joe, "authmethod"), "ticket");
    assert_eq!(detail(&joe, "authprovider"), "static");
    let before = router.stats().sessions;
    for (authid, ticket) in [("joe", "wrong"), ("joe", ""), ("nobody", TICKET)] {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_ticket(authid, ticket),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized");
        assert_eq!(router.stats().sessions, before);
    }
    bystander_works(&joe).await;
    // The same ticket on a realm with ticket only.
    let other = connect(
        &router,
        "closed",
        ConnectOptions::default().with_ticket("joe", TICKET),
    )
    .await
    .expect("joins the closed realm");
    assert_eq!(detail(&other, "authrole"), "backend");
}

#[tokio::test]
async fn wampcra_plain_and_salted() {
    let router = start().await;
    let joe = bystander(&router).await;
    for (authid, secret) in [("peter", "secret123"), ("paul", "salted-secret")] {
        let s = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_wampcra(authid, secret),
        )
        .await
        .unwrap_or_else(|e| panic!("{authid} joins: {e}"));
        assert_eq!(detail(&s, "authid"), authid);
        assert_eq!(detail(&s, "authrole"), "frontend");
        assert_eq!(detail(&s, "authmethod"), "wampcra");
        assert_eq!(detail(&s, "authprovider"), "static");
        s.leave().await.expect("leave");
    }
    let before = router.wait_for_stats(|s| s.sessions == 1).await.sessions;
    for (authid, secret) in [
        ("peter", "secret124"),
        ("paul", "secret123"),
        ("nobody", "secret123"),
    ] {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_wampcra(authid, secret),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized");
        assert_eq!(router.stats().sessions, before);
    }
    bystander_works(&joe).await;
}

#[tokio::test]
async fn methods_not_offered_are_refused() {
    let router = start().await;
    let joe = bystander(&router).await;
    let before = router.stats().sessions;
    // Anonymous on a realm without it.
    assert_abort(
        connect(&router, "closed", ConnectOptions::default()).await,
        "wamp.error.no_matching_auth_method",
    );
    // WAMP-CRA on a realm without CRA users.
    assert_abort(
        connect(
            &router,
            "closed",
            ConnectOptions::default().with_wampcra("peter", "secret123"),
        )
        .await,
        "wamp.error.no_matching_auth_method",
    );
    // A method nobody offers.
    let options = ConnectOptions {
        authid: Some("joe".into()),
        authmethods: vec!["cryptosign".into()],
        ..ConnectOptions::default()
    };
    assert_abort(
        connect(&router, "realm1", options).await,
        "wamp.error.no_matching_auth_method",
    );
    // Ticket without an authid is skipped: nothing else is offered.
    let options = ConnectOptions {
        authmethods: vec!["ticket".into()],
        ..ConnectOptions::default()
    };
    assert_abort(
        connect(&router, "closed", options).await,
        "wamp.error.no_matching_auth_method",
    );
    // The client's preference order is walked: the first the realm allows wins.
    let options = ConnectOptions {
        authmethods: vec!["cryptosign".into(), "ticket".into(), "anonymous".into()],
        ..ConnectOptions::default().with_ticket("joe", TICKET)
    };
    let s = connect(&router, "realm1", options).await.expect("ticket");
    assert_eq!(detail(&s, "authmethod"), "ticket");
    s.leave().await.expect("leave");
    assert_eq!(
        router
            .wait_for_stats(|s| s.sessions == before)
            .await
            .sessions,
        before
    );
    bystander_works(&joe).await;
}

#[tokio::test]
async fn no_session_before_authentication_ends() {
    let router = start().await;
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    let mut details = dict! {
        "roles" => dict! {"caller" => Dict::new()},
        "authmethods" => vec![Value::from("ticket")],
        "authid" => "joe",
    };
    details.insert("authextra".into(), Value::Dict(Dict::new()));
    peer.send(Message::Hello {
        realm: "realm1".into(),
        details,
    })
    .await
    .expect("hello");
    match peer.recv().await {
        Some(Message::Challenge { method, .. }) => assert_eq!(method, "ticket"),
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
    assert_eq!(router.stats().sessions, 0);
    // Anything but AUTHENTICATE now is a protocol violation; still no session.
    peer.send(test_support::msg::call(1, "com.example.echo", vec![]))
        .await
        .expect("call");
    match peer.recv().await {
        Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.protocol_violation"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert_eq!(router.stats().sessions, 0);
}

fn not_authorized<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.uri(), Some("wamp.error.not_authorized"), "{what}: {e}"),
        Ok(v) => panic!("{what}: expected not_authorized, got {v:?}"),
    }
}

#[tokio::test]
async fn roles_allow_and_deny_actions() {
    let router = start().await;
    let backend = bystander(&router).await;
    for uri in ["com.example.api.get", "com.example.api.admin"] {
        backend
            .register_fn(uri, |_args, _kwargs| async {
                Ok((vec![Value::from("ok")], Dict::new()))
            })
            .await
            .expect("backend registers");
    }
    let mut backend_sub = backend
        .subscribe("com.example.news")
        .await
        .expect("backend subscribes");
    let frontend = connect(
        &router,
        "realm1",
        ConnectOptions::default().with_wampcra("peter", "secret123"),
    )
    .await
    .expect("frontend joins");
    let public = connect(&router, "realm1", ConnectOptions::default())
        .await
        .expect("anonymous joins");
    assert_eq!(detail(&public, "authrole"), "public");
    assert_eq!(detail(&public, "authmethod"), "anonymous");

    // frontend: call under com.example.api. (prefix), but not the exact admin URI.
    let r = frontend
        .call("com.example.api.get", vec![], Dict::new())
        .await
        .expect("allowed call");
    assert_eq!(r.args, vec![Value::from("ok")]);
    not_authorized(
        frontend
            .call("com.example.api.admin", vec![], Dict::new())
            .await,
        "exact deny",
    );
    not_authorized(
        frontend.call("com.example.echo", vec![], Dict::new()).await,
        "no permission",
    );
    not_authorized(frontend.register("com.example.api.mine").await, "register");
    not_authorized(
        frontend
            .publish_with(
                "com.example.news",
                Payload::default(),
                PublishOptions::new().acknowledge(true),
            )
            .await,
        "publish",
    );
    let _news = frontend
        .subscribe("com.example.news")
        .await
        .expect("exact subscribe");
    not_authorized(
        frontend.subscribe("com.example.newsflash").await,
        "exact is exact",
    );
    // Meta procedures need a permission too.
    frontend
        .call("wamp.session.count", vec![], Dict::new())
        .await
        .expect("meta allowed");
    not_authorized(
        public.call("wamp.session.count", vec![], Dict::new()).await,
        "meta denied",
    );

    // public: wildcard subscribe only.
    let _w = public
        .subscribe("com.example.news")
        .await
        .expect("wildcard subscribe");
    not_authorized(
        public.subscribe("com.example.news.x").await,
        "wildcard counts components",
    );
    not_authorized(
        public
            .call("com.example.api.get", vec![], Dict::new())
            .await,
        "public call",
    );
    // An unacknowledged denied publish is dropped silently.
    public
        .publish("com.example.news", vec![Value::from("spoof")], Dict::new())
        .await
        .expect("queued");
    backend
        .publish_with(
            "com.example.news",
            Payload::from_args(vec![Value::from("real")]),
            PublishOptions::new().exclude_me(false).acknowledge(true),
        )
        .await
        .expect("publish");
    let event = within("event", backend_sub.next()).await.expect("event");
    assert_eq!(event.args, vec![Value::from("real")]);
    assert_eq!(
        event.publisher_authid(),
        None,
        "backend's permission does not disclose"
    );
    // frontend's permission on com.example.chat discloses the publisher.
    let mut chat = backend
        .subscribe("com.example.chat")
        .await
        .expect("subscribe");
    frontend
        .publish_with(
            "com.example.chat",
            Payload::from_args(vec![Value::from("hi")]),
            PublishOptions::new().acknowledge(true),
        )
        .await
        .expect("frontend publishes");
    let event = within("chat event", chat.next()).await.expect("event");
    assert_eq!(event.publisher_authid(), Some("peter"));
    assert_eq!(event.publisher(), Some(frontend.id()));
}

#[tokio::test]
async fn unanswered_challenge_times_out() {
    let parsed = junction::Config::from_toml(&config_toml()).expect("config parses");
    let router = TestRouter::start_with(move |c| {
        c.realms = parsed.realms;
        c.limits.auth_timeout_ms = 200;
    })
    .await;
    let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("connect");
    let details = dict! {
        "roles" => dict! {"caller" => Dict::new()},
        "authmethods" => vec![Value::from("wampcra")],
        "authid" => "peter",
    };
    peer.send(Message::Hello {
        realm: "realm1".into(),
        details,
    })
    .await
    .expect("hello");
    match peer.recv().await {
        Some(Message::Challenge { method, extra }) => {
            assert_eq!(method, "wampcra");
            let challenge = extra
                .get("challenge")
                .and_then(Value::as_str)
                .expect("challenge");
            assert!(
                challenge.contains(r#""authrole": "frontend""#),
                "{challenge}"
            );
            assert!(!extra.contains_key("salt"), "peter is not salted");
        }
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
    match peer.recv().await {
        Some(Message::Abort {
            reason, details, ..
        }) => {
            assert_eq!(reason, "wamp.error.not_authorized");
            assert_eq!(
                details.get("message").and_then(Value::as_str),
                Some("authentication timed out")
            );
        }
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert!(peer.closed_within(std::time::Duration::from_secs(2)).await);
    assert_eq!(router.stats().sessions, 0);
}

#[tokio::test]
async fn cryptosign_by_authid_or_key() {
    let router = start().await;
    let joe = bystander(&router).await;
    for authid in [Some("alice"), None] {
        let s = connect(
            &router,
            "keys",
            ConnectOptions::default().with_cryptosign(authid, ALICE_KEY),
        )
        .await
        .unwrap_or_else(|e| panic!("alice ({authid:?}) joins: {e}"));
        assert_eq!(detail(&s, "authid"), "alice");
        assert_eq!(detail(&s, "authrole"), "device");
        assert_eq!(detail(&s, "authmethod"), "cryptosign");
        // The role applies.
        s.register_fn("com.example.ping", |_, _| async {
            Ok((vec![], Dict::new()))
        })
        .await
        .expect("device may register");
        not_authorized(
            s.register_fn("org.other", |_, _| async { Ok((vec![], Dict::new())) })
                .await
                .map(|_| ()),
            "register outside com.example.",
        );
        s.leave().await.expect("leave");
    }
    let before = router.wait_for_stats(|s| s.sessions == 1).await.sessions;
    // Someone else's key, an unknown key, an unknown authid: CHALLENGE, then ABORT.
    for (authid, key) in [
        (Some("alice"), BOB_KEY),
        (Some("alice"), STRANGER_KEY),
        (None, STRANGER_KEY),
        (Some("nobody"), ALICE_KEY),
    ] {
        let r = connect(
            &router,
            "keys",
            ConnectOptions::default().with_cryptosign(authid, key),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized");
        assert_eq!(router.stats().sessions, before);
    }
    // A realm without cryptosign users.
    assert_abort(
        connect(
            &router,
            "closed",
            ConnectOptions::default().with_cryptosign(Some("alice"), ALICE_KEY),
        )
        .await,
        "wamp.error.no_matching_auth_method",
    );
    bystander_works(&joe).await;
}

/// Cryptosign on the wire: a 64-hex challenge; a forged or malformed signature
/// ends in ABORT; a HELLO asking for a tls-unique binding cannot use cryptosign.
#[tokio::test]
async fn cryptosign_wire_format() {
    use ed25519_dalek::{Signer as _, SigningKey};
    let router = start().await;
    let hello = |binding: Value| {
        let mut details = dict! {
            "roles" => dict! {"caller" => Dict::new()},
            "authmethods" => vec![Value::from("cryptosign")],
        };
        details.insert(
            "authextra".into(),
            Value::Dict(dict! { "pubkey" => pubkey(&ALICE_KEY), "channel_binding" => binding }),
        );
        Message::Hello {
            realm: "keys".into(),
            details,
        }
    };
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for (binding, answer) in [
        (Value::Null, "good"),
        (Value::from("tls-unique"), "no binding"),
        (Value::Null, "other challenge"),
        (Value::Null, "short"),
        (Value::Null, "not hex"),
    ] {
        let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
            .await
            .expect("connect");
        peer.send(hello(binding)).await.expect("hello");
        if answer == "no binding" {
            match peer.recv().await {
                Some(Message::Abort { reason, .. }) => {
                    assert_eq!(reason, "wamp.error.no_matching_auth_method")
                }
                other => panic!("expected ABORT, got {other:?}"),
            }
            continue;
        }
        let challenge = match peer.recv().await {
            Some(Message::Challenge { method, extra }) => {
                assert_eq!(method, "cryptosign");
                assert_eq!(extra.get("channel_binding"), Some(&Value::Null));
                let c = extra
                    .get("challenge")
                    .and_then(Value::as_str)
                    .expect("challenge");
                assert_eq!(c.len(), 64);
                (0..32)
                    .map(|i| u8::from_str_radix(&c[2 * i..2 * i + 2], 16).expect("hex"))
                    .collect::<Vec<u8>>()
            }
            other => panic!("expected CHALLENGE, got {other:?}"),
        };
        let key = SigningKey::from_bytes(&ALICE_KEY);
        let signature = match answer {
            "good" => format!(
                "{}{}",
                hex(&key.sign(&challenge).to_bytes()),
                hex(&challenge)
            ),
            "other challenge" => {
                let other = [0u8; 32];
                format!("{}{}", hex(&key.sign(&other).to_bytes()), hex(&other))
            }
            "short" => hex(&key.sign(&challenge).to_bytes()),
            _ => "zz".repeat(96),
        };
        peer.send(Message::Authenticate {
            signature,
            extra: Dict::new(),
        })
        .await
        .expect("authenticate");
        match (peer.recv().await, answer) {
            (Some(Message::Welcome { details, .. }), "good") => {
                assert_eq!(details.get("authid").and_then(Value::as_str), Some("alice"));
            }
            (Some(Message::Abort { reason, .. }), bad) if bad != "good" => {
                assert_eq!(reason, "wamp.error.not_authorized");
            }
            (other, answer) => panic!("{answer}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn scram_pbkdf2_and_argon2() {
    let router = start().await;
    let joe = bystander(&router).await;
    for (authid, password, role, method) in [
        ("mary", "mary's password", "user", "wamp-scram"),
        ("anne", "anne's password", "device", "wamp-scram"),
        ("mary", "mary's password", "user", "scram"),
    ] {
        let mut options = ConnectOptions::default().with_scram(authid, password);
        options.authmethods = vec![method.into()];
        let s = connect(&router, "keys", options)
            .await
            .unwrap_or_else(|e| panic!("{authid} joins: {e}"));
        assert_eq!(detail(&s, "authid"), authid);
        assert_eq!(detail(&s, "authrole"), role);
        assert_eq!(detail(&s, "authmethod"), method);
        // The client has checked the server signature already; it is there.
        let verifier = s
            .welcome_details()
            .get("authextra")
            .and_then(Value::as_dict)
            .and_then(|e| e.get("verifier"))
            .and_then(Value::as_str);
        assert_eq!(verifier.map(str::len), Some(44));
        s.leave().await.expect("leave");
    }
    let before = router.wait_for_stats(|s| s.sessions == 1).await.sessions;
    for (authid, password) in [
        ("mary", "anne's password"),
        ("anne", "anne's passwore"),
        ("nobody", "mary's password"),
    ] {
        let r = connect(
            &router,
            "keys",
            ConnectOptions::default().with_scram(authid, password),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized");
        assert_eq!(router.stats().sessions, before);
    }
    assert_abort(
        connect(
            &router,
            "closed",
            ConnectOptions::default().with_scram("mary", "mary's password"),
        )
        .await,
        "wamp.error.no_matching_auth_method",
    );
    bystander_works(&joe).await;
}

/// An unknown SCRAM authid gets a CHALLENGE shaped like a real user's, with a
/// salt that stays the same between attempts.
#[tokio::test]
async fn scram_unknown_authid_gets_a_stable_challenge() {
    let router = start().await;
    let mut salts = Vec::new();
    for authid in ["nobody", "nobody", "mary"] {
        let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
            .await
            .expect("connect");
        let mut details = dict! {
            "roles" => dict! {"caller" => Dict::new()},
            "authmethods" => vec![Value::from("wamp-scram")],
            "authid" => authid,
        };
        details.insert(
            "authextra".into(),
            Value::Dict(dict! { "nonce" => "MTIzNDU2Nzg5MGFiY2RlZg==" }),
        );
        peer.send(Message::Hello {
            realm: "keys".into(),
            details,
        })
        .await
        .expect("hello");
        match peer.recv().await {
            Some(Message::Challenge { method, extra }) => {
                assert_eq!(method, "wamp-scram");
                let nonce = extra.get("nonce").and_then(Value::as_str).expect("nonce");
                assert!(nonce.starts_with("MTIzNDU2Nzg5MGFiY2RlZg==") && nonce.len() > 24);
                assert!(extra.get("kdf").and_then(Value::as_str).is_some());
                salts.push(extra.get("salt").cloned().expect("salt"));
            }
            other => panic!("expected CHALLENGE, got {other:?}"),
        }
        peer.send(Message::Authenticate {
            signature: "AAAA".into(),
            extra: Dict::new(),
        })
        .await
        .expect("authenticate");
        match peer.recv().await {
            Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.not_authorized"),
            other => panic!("expected ABORT, got {other:?}"),
        }
    }
    assert_eq!(salts[0], salts[1]);
    assert_ne!(salts[0], salts[2]);
}

/// Connects a RawSocket/JSON peer to `addr` from the loopback address `from`.
async fn raw_from(
    from: [u8; 4],
    addr: std::net::SocketAddr,
) -> std::io::Result<test_support::RawPeer> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::from(from), 0).into())?;
    let tcp = socket.connect(addr).await?;
    test_support::raw_rawsocket_stream(tcp, wamp_proto::Serializer::Json).await
}

#[tokio::test]
async fn repeated_failures_slow_down_that_address_only() {
    let parsed = junction::Config::from_toml(&config_toml()).expect("config parses");
    let router = TestRouter::start_with(move |c| {
        c.realms = parsed.realms;
        c.limits.auth_failures_free = 1;
        // Long enough that "still waiting" below cannot be a slow machine.
        c.limits.auth_failure_delay_ms = 120_000;
        c.limits.auth_failure_max_delay_ms = 120_000;
    })
    .await;
    let throttle = router.server.router().auth_throttle();
    for n in 1..=2 {
        let r = connect(
            &router,
            "realm1",
            ConnectOptions::default().with_ticket("joe", "wrong"),
        )
        .await;
        assert_abort(r, "wamp.error.not_authorized");
        assert_eq!(throttle.tracked(), 1, "after failure {n}");
    }
    // 127.0.0.1 is past its free failure: its next connection waits its turn (the
    // RawSocket handshake is not even answered) ...
    let waiting = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        raw_from([127, 0, 0, 1], router.rs),
    )
    .await;
    assert!(waiting.is_err(), "a throttled address was served at once");
    // ... while another address is served as usual, and its success clears nothing
    // of 127.0.0.1's record.
    let mut other = within("other address", raw_from([127, 0, 0, 2], router.rs))
        .await
        .expect("127.0.0.2 connects");
    other
        .send(Message::Hello {
            realm: "realm1".into(),
            details: dict! {
                "roles" => dict! { "caller" => Dict::new() },
                "authmethods" => vec![Value::from("ticket")],
                "authid" => "joe",
            },
        })
        .await
        .expect("HELLO");
    assert!(matches!(
        other.recv().await,
        Some(Message::Challenge { .. })
    ));
    other
        .send(Message::Authenticate {
            signature: TICKET.into(),
            extra: Dict::new(),
        })
        .await
        .expect("AUTHENTICATE");
    assert!(matches!(other.recv().await, Some(Message::Welcome { .. })));
    assert_eq!(throttle.tracked(), 1);
}

#[tokio::test]
async fn an_expired_login_fails_like_a_wrong_one() {
    let router = start().await;
    // Right credentials, past `expires`.
    for options in [
        ConnectOptions::default().with_ticket("former", TICKET),
        ConnectOptions::default().with_wampcra("former-peter", "secret123"),
    ] {
        assert_abort(
            connect(&router, "expiring", options).await,
            "wamp.error.not_authorized",
        );
    }
    // The same credentials before `expires`.
    let session = connect(
        &router,
        "expiring",
        ConnectOptions::default().with_ticket("temporary", TICKET),
    )
    .await
    .expect("a login that has not expired yet works");
    assert_eq!(detail(&session, "authid"), "temporary");
}

/// PBKDF2 rounds of the slow ticket user: hashing takes far longer than a call
/// round trip on loopback, in debug and release builds alike.
const SLOW_ITERATIONS: u32 = 300_000;

/// A ticket hash with many iterations, made up rather than computed (computing it
/// would take as long as checking it); no ticket matches it.
fn slow_ticket_hash() -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "$pbkdf2-sha256$i={SLOW_ITERATIONS}${}${}",
        b64.encode([7u8; 16]),
        b64.encode([0u8; 32])
    )
}

/// Wrong tickets checked against an expensive hash do not stall the router's only
/// worker thread: a call on another realm completes while the hashes run.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn ticket_hashing_does_not_stall_other_connections() {
    let toml = format!(
        r#"
[[realm]]
name = "open"

[[realm]]
name = "guarded"
[[realm.auth.ticket]]
authid = "slow"
role = "user"
ticket_hash = "{}"
"#,
        slow_ticket_hash()
    );
    let parsed = junction::Config::from_toml(&toml).expect("config parses");
    let router = TestRouter::start_with(move |c| c.realms = parsed.realms).await;
    let options = || ConnectOptions::default();
    let callee = Session::connect_with(&router.ws_url(), "open", options())
        .await
        .expect("callee joins");
    callee
        .register_fn("com.example.ping", |args, _kwargs| async move {
            Ok((args, Dict::new()))
        })
        .await
        .expect("register");
    let caller = Session::connect_with(&router.ws_url(), "open", options())
        .await
        .expect("caller joins");

    let mut peers = Vec::new();
    for _ in 0..3 {
        let mut peer = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
            .await
            .expect("connect");
        let details = dict! {
            "roles" => dict! {"caller" => Dict::new()},
            "authmethods" => vec![Value::from("ticket")],
            "authid" => "slow",
        };
        peer.send(Message::Hello {
            realm: "guarded".into(),
            details,
        })
        .await
        .expect("hello");
        match peer.recv().await {
            Some(Message::Challenge { method, .. }) => assert_eq!(method, "ticket"),
            other => panic!("expected CHALLENGE, got {other:?}"),
        }
        // Hashing may take long in a debug build on a busy machine.
        peer.set_timeout(std::time::Duration::from_secs(300));
        peers.push(peer);
    }

    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    let mut aborts = Vec::new();
    for mut peer in peers {
        peer.send(Message::Authenticate {
            signature: "wrong ticket".into(),
            extra: Dict::new(),
        })
        .await
        .expect("authenticate");
        let log = log.clone();
        aborts.push(tokio::spawn(async move {
            let answer = peer.recv().await;
            log.lock().expect("log").push("abort");
            answer
        }));
    }
    let reply = caller
        .call("com.example.ping", vec![Value::from(1)], Dict::new())
        .await
        .expect("call");
    log.lock().expect("log").push("call");
    assert_eq!(reply.args, vec![Value::from(1)]);

    for abort in aborts {
        match abort.await.expect("task") {
            Some(Message::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.not_authorized"),
            other => panic!("expected ABORT, got {other:?}"),
        }
    }
    let log = log.lock().expect("log").clone();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0], "call", "the call waited for the hashes: {log:?}");
}

/// A peer that opens a transport and never sends HELLO is closed (no ABORT: there
/// is no session) after `auth_timeout_ms`; a session that said HELLO in time stays.
#[tokio::test]
async fn connection_without_hello_is_closed() {
    let router = TestRouter::start_with(|c| c.limits.auth_timeout_ms = 300).await;
    let session = router.join().await;
    let mut ws = test_support::raw_ws(&router.ws_url(), &["wamp.2.json"])
        .await
        .expect("websocket");
    let mut rs = test_support::raw_rawsocket_tcp(router.rs, wamp_proto::Serializer::Json)
        .await
        .expect("rawsocket");
    // Generous bounds: they only show that the connections do get closed.
    for (name, peer) in [("websocket", &mut ws), ("rawsocket", &mut rs)] {
        peer.set_timeout(std::time::Duration::from_secs(10));
        let frames = peer.expect_closed().await;
        assert!(
            frames.iter().all(|f| !matches!(
                f,
                test_support::PeerFrame::Text(_) | test_support::PeerFrame::Binary(_)
            )),
            "{name}: no WAMP message before HELLO: {frames:?}"
        );
    }
    // The session that joined before is still served, past the timeout.
    let count = within(
        "session count",
        session.call("wamp.session.count", vec![], Dict::new()),
    )
    .await
    .expect("call");
    assert_eq!(count.args, vec![Value::from(1)]);
}
