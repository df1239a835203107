//! TLS listeners (wss://, rss://), client certificates ("optional", "required"),
//! the `tls` authentication method, per-listener `auth_methods`, cryptosign with
//! `tls-exporter` channel binding, and the CLI and `junction check` with TLS
//! settings. Certificates are made at test time (rcgen).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use junction::{Config, Server};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wamp_client::{
    ConnectOptions, Dict, Error, Payload, PublishOptions, RegistrationHandle, Session, Value,
};
use wamp_proto::Serializer;

/// A certificate authority that signs server and client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// (certificate PEM, key PEM) for the given names and purpose.
    fn issue(
        &self,
        cn: Option<&str>,
        sans: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params = CertificateParams::new(
            sans.iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<String>>(),
        )
        .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.issue(
            Some("localhost"),
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self, cn: &str) -> (String, String) {
        self.issue(Some(cn), &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The files a TLS router needs, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    client_ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("Test Server CA");
        let client_ca = Ca::new("Test Client CA");
        let (cert, key) = ca.server();
        std::fs::write(dir.path().join("server.pem"), cert).expect("write");
        std::fs::write(dir.path().join("server.key"), key).expect("write");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).expect("write");
        std::fs::write(dir.path().join("client-ca.pem"), &client_ca.pem).expect("write");
        Pki { dir, ca, client_ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Trusts the server CA.
    fn options(&self, serializer: Serializer) -> ConnectOptions {
        ConnectOptions {
            serializer,
            ..ConnectOptions::default()
        }
        .with_tls_ca_pem(&self.ca.pem)
        .expect("CA PEM")
    }

    /// Trusts the server CA and presents a client certificate for `cn`.
    fn options_as(&self, ca: &Ca, cn: &str) -> ConnectOptions {
        let (cert, key) = ca.client(cn);
        self.options(Serializer::Json)
            .with_tls_client_cert_pem(cert, key)
            .expect("client cert")
            .with_tls_auth()
    }
}

const TICKET: &str = "ticket of joe";

/// A router whose listeners are `listeners` (TOML), realm1 with anonymous access,
/// ticket user `joe`, and TLS principal `client-a`.
async fn start(pki: &Pki, listeners: &str) -> Server {
    let hash = wamp_router::auth::hash_ticket(TICKET, 1000);
    let toml = format!(
        r#"
{listeners}

[[realm]]
name = "realm1"
[realm.auth.anonymous]
role = "anonymous"
[[realm.auth.ticket]]
authid = "joe"
role = "backend"
ticket_hash = "{hash}"
[[realm.auth.tls]]
authid = "client-a"
role = "device"
"#
    );
    let path = pki.path("junction.toml");
    std::fs::write(&path, toml).expect("write config");
    // Relative file names in the config are resolved against its directory.
    let config = Config::from_file(&path).expect("config");
    Server::start(&config).await.expect("server starts")
}

fn tls_table(client_certs: &str) -> String {
    format!(
        "[listener.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"client-ca.pem\"\nclient_certs = \"{client_certs}\"\n"
    )
}

/// A WebSocket TLS listener (RawSocket on the same port) and a RawSocket TLS one.
fn both_listeners(client_certs: &str) -> String {
    let tls = tls_table(client_certs);
    format!(
        "[[listener]]\ntype = \"websocket\"\naddress = \"127.0.0.1:0\"\n{tls}\n[[listener]]\ntype = \"rawsocket\"\naddress = \"127.0.0.1:0\"\n{tls}"
    )
}

fn wss(server: &Server) -> String {
    let (addr, path) = &server.endpoints().secure_websocket[0];
    format!("wss://localhost:{}{path}", addr.port())
}

fn rss(server: &Server) -> String {
    format!(
        "rss://127.0.0.1:{}",
        server.endpoints().secure_rawsocket[0].port()
    )
}

async fn join(url: &str, options: ConnectOptions) -> Result<Session, Error> {
    within("join", Session::connect_with(url, "realm1", options)).await
}

fn detail<'a>(session: &'a Session, key: &str) -> &'a str {
    session
        .welcome_details()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A call and an event through `session`.
async fn call_and_event(session: &Session, tag: &str) {
    let procedure = format!("com.example.echo.{tag}");
    let _registration = session
        .register_fn(&procedure, |args, _kwargs| async move {
            Ok((args, Dict::new()))
        })
        .await
        .expect("register");
    let result = within(
        "call",
        session.call(&procedure, vec![Value::from(tag)], Dict::new()),
    )
    .await
    .expect("call");
    assert_eq!(result.args, vec![Value::from(tag)]);
    let topic = format!("com.example.news.{tag}");
    let mut subscription = session.subscribe(&topic).await.expect("subscribe");
    session
        .publish_with(
            &topic,
            Payload::from_args(vec![Value::from(42)]),
            PublishOptions::new().acknowledge(true).exclude_me(false),
        )
        .await
        .expect("publish");
    let event = within("event", subscription.next()).await.expect("event");
    assert_eq!(event.args, vec![Value::from(42)]);
}

#[tokio::test]
async fn wss_and_rss_carry_calls_and_events() {
    let pki = Pki::new();
    let server = start(&pki, &both_listeners("none")).await;
    let ws_port = server.endpoints().secure_websocket[0].0.port();
    let urls = [
        wss(&server),
        // RawSocket over TLS on the WebSocket port, and on its own port.
        format!("rss://localhost:{ws_port}"),
        rss(&server),
    ];
    for url in &urls {
        for serializer in [Serializer::Json, Serializer::MsgPack] {
            let session = join(url, pki.options(serializer))
                .await
                .unwrap_or_else(|e| panic!("{url} {serializer}: {e}"));
            assert_eq!(detail(&session, "authmethod"), "anonymous");
            call_and_event(&session, &format!("{}{serializer}", url.len())).await;
            session.leave().await.expect("leave");
        }
    }
    // Without the CA the router's certificate is not trusted.
    match join(&urls[0], ConnectOptions::default()).await {
        Err(Error::Tls(_)) => {}
        Err(e) => panic!("expected a TLS error, got {e}"),
        Ok(_) => panic!("an untrusted router certificate was accepted"),
    }
}

#[tokio::test]
async fn the_host_name_is_verified() {
    let pki = Pki::new();
    // A certificate for another name, from the trusted CA.
    let (cert, key) = pki.ca.issue(
        Some("elsewhere"),
        &["elsewhere.example"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    std::fs::write(pki.path("server.pem"), cert).expect("write");
    std::fs::write(pki.path("server.key"), key).expect("write");
    let server = start(&pki, &both_listeners("none")).await;
    match join(&wss(&server), pki.options(Serializer::Json)).await {
        Err(Error::Tls(why)) => assert!(why.contains("handshake"), "{why}"),
        Err(e) => panic!("expected a TLS error, got {e}"),
        Ok(_) => panic!("a certificate for another host was accepted"),
    }
}

#[tokio::test]
async fn required_client_certificates() {
    let pki = Pki::new();
    let server = start(&pki, &both_listeners("required")).await;
    for url in [wss(&server), rss(&server)] {
        // No certificate: the handshake fails (TLS 1.3 may report it on first read).
        let refused = join(&url, pki.options(Serializer::Json)).await;
        assert!(
            refused.is_err(),
            "{url}: joined without a client certificate"
        );
        // The router keeps serving: a client with a certificate gets in.
        let session = join(&url, pki.options_as(&pki.client_ca, "client-a"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(detail(&session, "authmethod"), "tls");
        assert_eq!(detail(&session, "authid"), "client-a");
        assert_eq!(detail(&session, "authrole"), "device");
        assert_eq!(detail(&session, "authprovider"), "static");
        call_and_event(&session, "required").await;
        session.leave().await.expect("leave");
    }
}

#[tokio::test]
async fn optional_client_certificates() {
    let pki = Pki::new();
    let server = start(&pki, &both_listeners("optional")).await;
    let url = wss(&server);
    // Without a certificate: anonymous (asking for tls first changes nothing).
    let anonymous = join(
        &url,
        ConnectOptions {
            authmethods: vec!["tls".into(), "anonymous".into()],
            ..pki.options(Serializer::Json)
        },
    )
    .await
    .expect("anonymous joins");
    assert_eq!(detail(&anonymous, "authmethod"), "anonymous");
    // Only tls, but no certificate: nothing matches.
    match join(&url, pki.options(Serializer::Json).with_tls_auth().clone()).await {
        Err(Error::Abort { reason, .. }) if reason == "wamp.error.no_matching_auth_method" => {}
        other => panic!(
            "expected no_matching_auth_method, got {:?}",
            other.map(|_| ())
        ),
    }
    // With a certificate of a listed principal: tls.
    let device = join(&url, pki.options_as(&pki.client_ca, "client-a"))
        .await
        .expect("client-a joins");
    assert_eq!(detail(&device, "authmethod"), "tls");
    assert_eq!(detail(&device, "authid"), "client-a");
    // A verified certificate whose CN is not listed: not authorized.
    match join(&url, pki.options_as(&pki.client_ca, "client-b")).await {
        Err(Error::Abort { reason, message }) => {
            assert_eq!(reason, "wamp.error.not_authorized");
            assert_eq!(message.as_deref(), Some("authentication failed"));
        }
        other => panic!("expected not_authorized, got {:?}", other.map(|_| ())),
    }
    // An authid in HELLO that is not the certificate's: not authorized.
    let mut other_id = pki.options_as(&pki.client_ca, "client-a");
    other_id.authid = Some("joe".into());
    match join(&url, other_id).await {
        Err(Error::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.not_authorized"),
        other => panic!("expected not_authorized, got {:?}", other.map(|_| ())),
    }
    // A certificate from a CA the listener does not trust: the handshake fails.
    let stranger = Ca::new("Unknown CA");
    assert!(
        join(&url, pki.options_as(&stranger, "client-a"))
            .await
            .is_err(),
        "a certificate from an unknown CA was accepted"
    );
    // Everyone admitted still works.
    call_and_event(&device, "optional-device").await;
    call_and_event(&anonymous, "optional-anonymous").await;
}

#[tokio::test]
async fn dynamic_tls_authentication() {
    let pki = Pki::new();
    let toml = format!(
        r#"
[[listener]]
type = "websocket"
address = "127.0.0.1:0"
{}
[[realm]]
name = "realm1"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["tls"]

[[realm]]
name = "auth"
[realm.auth.anonymous]
role = "trusted"
"#,
        tls_table("optional")
    );
    let path = pki.path("junction.toml");
    std::fs::write(&path, toml).expect("write config");
    let config = Config::from_file(&path).expect("config");
    let server = Server::start(&config).await.expect("server starts");
    let url = wss(&server);

    // The authenticator knows client-a and records what it was asked.
    let seen: Arc<Mutex<Vec<Dict>>> = Arc::default();
    let component = within(
        "join auth",
        Session::connect_with(&url, "auth", pki.options(Serializer::Json)),
    )
    .await
    .expect("component joins");
    let record = seen.clone();
    component
        .register_fn("com.example.authenticate", move |args, _| {
            let record = record.clone();
            async move {
                let details = args
                    .get(2)
                    .and_then(Value::as_dict)
                    .cloned()
                    .unwrap_or_default();
                record.lock().expect("lock").push(details);
                match args.get(1).and_then(Value::as_str) {
                    Some("client-a") => {
                        let mut answer = Dict::new();
                        answer.insert("role".into(), Value::from("device"));
                        answer.insert("authid".into(), Value::from("device-a"));
                        Ok((vec![Value::Dict(answer)], Dict::new()))
                    }
                    _ => Err((
                        "com.example.unknown_device".to_owned(),
                        vec![Value::from("unknown device")],
                        Dict::new(),
                    )),
                }
            }
        })
        .await
        .expect("register");

    let device = join(&url, pki.options_as(&pki.client_ca, "client-a"))
        .await
        .expect("client-a joins");
    assert_eq!(detail(&device, "authmethod"), "tls");
    assert_eq!(detail(&device, "authid"), "device-a");
    assert_eq!(detail(&device, "authrole"), "device");
    assert_eq!(detail(&device, "authprovider"), "dynamic");
    {
        let seen = seen.lock().expect("lock");
        let details = seen.last().expect("the authenticator was asked");
        let get = |d: &Dict, k: &str| d.get(k).cloned().unwrap_or(Value::Null);
        assert_eq!(get(details, "authmethod"), Value::from("tls"));
        assert_eq!(get(details, "authid"), Value::from("client-a"));
        let transport = details
            .get("transport")
            .and_then(Value::as_dict)
            .expect("transport details");
        assert_eq!(get(transport, "is_secure"), Value::from(true));
        assert_eq!(get(transport, "channel_type"), Value::from("tls"));
        assert_eq!(get(transport, "type"), Value::from("websocket"));
        assert_eq!(get(transport, "protocol"), Value::from("wamp.2.json"));
        let peer = get(transport, "peer");
        assert!(
            peer.as_str()
                .is_some_and(|p| p.starts_with("tcp4:127.0.0.1:")),
            "{peer:?}"
        );
        let cn = transport
            .get("peer_cert")
            .and_then(Value::as_dict)
            .and_then(|c| c.get("subject"))
            .and_then(Value::as_dict)
            .and_then(|s| s.get("cn"))
            .and_then(Value::as_str);
        assert_eq!(cn, Some("client-a"));
    }

    // A certificate the authenticator does not know: its error ends the join.
    match join(&url, pki.options_as(&pki.client_ca, "client-b")).await {
        Err(Error::Abort { reason, .. }) => assert_eq!(reason, "com.example.unknown_device"),
        other => panic!(
            "expected the authenticator's refusal, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(
        seen.lock()
            .expect("lock")
            .last()
            .and_then(|d| d.get("authid"))
            .and_then(Value::as_str),
        Some("client-b")
    );
    // An authid in HELLO other than the certificate's is refused before asking.
    let asked = seen.lock().expect("lock").len();
    let mut other_id = pki.options_as(&pki.client_ca, "client-a");
    other_id.authid = Some("joe".into());
    match join(&url, other_id).await {
        Err(Error::Abort { reason, .. }) => assert_eq!(reason, "wamp.error.not_authorized"),
        other => panic!("expected not_authorized, got {:?}", other.map(|_| ())),
    }
    assert_eq!(seen.lock().expect("lock").len(), asked);
    // Without a client certificate, tls is not usable.
    match join(&url, pki.options(Serializer::Json).with_tls_auth().clone()).await {
        Err(Error::Abort { reason, .. }) => {
            assert_eq!(reason, "wamp.error.no_matching_auth_method")
        }
        other => panic!(
            "expected no_matching_auth_method, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(seen.lock().expect("lock").len(), asked);
    call_and_event(&device, "dynamic-tls").await;
}

#[tokio::test]
async fn auth_methods_per_listener() {
    let pki = Pki::new();
    let listeners = format!(
        "[[listener]]\ntype = \"websocket\"\naddress = \"127.0.0.1:0\"\nauth_methods = [\"ticket\"]\n{}",
        tls_table("optional")
    );
    let server = start(&pki, &listeners).await;
    let url = wss(&server);
    match join(&url, pki.options(Serializer::Json)).await {
        Err(Error::Abort { reason, .. }) => {
            assert_eq!(reason, "wamp.error.no_matching_auth_method")
        }
        other => panic!(
            "expected no_matching_auth_method, got {:?}",
            other.map(|_| ())
        ),
    }
    // tls is offered by the realm but not allowed on this listener.
    match join(&url, pki.options_as(&pki.client_ca, "client-a")).await {
        Err(Error::Abort { reason, .. }) => {
            assert_eq!(reason, "wamp.error.no_matching_auth_method")
        }
        other => panic!(
            "expected no_matching_auth_method, got {:?}",
            other.map(|_| ())
        ),
    }
    let joe = join(
        &url,
        pki.options(Serializer::Json).with_ticket("joe", TICKET),
    )
    .await
    .expect("ticket is allowed");
    assert_eq!(detail(&joe, "authmethod"), "ticket");
}

#[tokio::test]
async fn plain_clients_on_a_tls_port_do_not_hurt_the_router() {
    let pki = Pki::new();
    let server = start(&pki, &both_listeners("none")).await;
    let ws_addr: SocketAddr = server.endpoints().secure_websocket[0].0;
    let rs_addr: SocketAddr = server.endpoints().secure_rawsocket[0];
    for addr in [ws_addr, rs_addr] {
        // A RawSocket handshake in clear text: the TLS layer refuses and closes.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(&[0x7F, 0xF1, 0, 0]).await.expect("write");
        let mut reply = Vec::new();
        let _ = within("closed", tcp.read_to_end(&mut reply)).await;
        assert!(
            !reply.starts_with(&[0x7F]),
            "a RawSocket handshake was answered in clear: {reply:02x?}"
        );
        // An HTTP upgrade in clear text.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut reply = Vec::new();
        let _ = within("closed", tcp.read_to_end(&mut reply)).await;
        assert!(!reply.starts_with(b"HTTP/1.1 101"), "upgraded in clear");
    }
    // The wamp-client over plain ws:// and rs:// fails too.
    let plain_ws = format!("ws://127.0.0.1:{}/ws", ws_addr.port());
    assert!(join(&plain_ws, ConnectOptions::default()).await.is_err());
    let plain_rs = format!("rs://127.0.0.1:{}", rs_addr.port());
    assert!(join(&plain_rs, ConnectOptions::default()).await.is_err());
    // A client that connects and never says anything does not block others.
    let _silent = tokio::net::TcpStream::connect(ws_addr)
        .await
        .expect("connect");
    let session = join(&wss(&server), pki.options(Serializer::Json))
        .await
        .expect("joins after the failures");
    call_and_event(&session, "after-plain").await;
}

/// Alice's cryptosign key (seed).
const ALICE_KEY: [u8; 32] = [0x11; 32];

fn alice_pubkey() -> String {
    wamp_client::PrivateKey::new(ALICE_KEY).public_key_hex()
}

/// A router with a wss:// and an rss:// listener, a plain ws:// one, and the
/// cryptosign user alice on realm `keys` (static) and realm `dyn` (decided by
/// `com.example.authenticate` on realm `auth`). Failed logins are not slowed down.
async fn start_cryptosign(pki: &Pki) -> Server {
    let tls = tls_table("none");
    let alice = alice_pubkey();
    let toml = format!(
        r#"
[limits]
auth_failure_delay_ms = 0

[[listener]]
type = "websocket"
address = "127.0.0.1:0"
{tls}
[[listener]]
type = "rawsocket"
address = "127.0.0.1:0"
{tls}
[[listener]]
type = "websocket"
address = "127.0.0.1:0"

[[realm]]
name = "keys"
[[realm.auth.cryptosign]]
authid = "alice"
role = "device"
pubkeys = ["{alice}"]

[[realm]]
name = "dyn"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "auth"
methods = ["cryptosign"]

[[realm]]
name = "auth"
[realm.auth.anonymous]
role = "anonymous"
"#
    );
    let path = pki.path("junction.toml");
    std::fs::write(&path, toml).expect("write config");
    let config = Config::from_file(&path).expect("config");
    Server::start(&config).await.expect("server starts")
}

fn plain_ws(server: &Server) -> String {
    let (addr, path) = &server.endpoints().websocket[0];
    format!("ws://127.0.0.1:{}{path}", addr.port())
}

/// The `channel_binding` values the authenticator was shown.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// Registers the authenticator of realm `dyn`: alice's key, role `device`. It
/// remembers the `channel_binding` each HELLO asked for.
async fn authenticator(server: &Server) -> (Session, RegistrationHandle, Seen) {
    let session = within(
        "authenticator joins",
        Session::connect(&plain_ws(server), "auth"),
    )
    .await
    .expect("authenticator joins");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let registration = session
        .register_fn("com.example.authenticate", move |args, _kwargs| {
            let binding = args
                .get(2)
                .and_then(Value::as_dict)
                .and_then(|d| d.get("authextra"))
                .and_then(Value::as_dict)
                .and_then(|e| e.get("channel_binding"))
                .cloned()
                .unwrap_or(Value::Null);
            log.lock().expect("lock").push(binding);
            async move {
                let principal = wamp_client::dict! {
                    "role" => "device", "pubkey" => alice_pubkey(),
                };
                Ok((vec![Value::Dict(principal)], Dict::new()))
            }
        })
        .await
        .expect("register");
    (session, registration, seen)
}

/// A RawSocket peer over TLS (rss://) and that connection's tls-exporter value,
/// computed on the client side.
async fn raw_tls_peer(pki: &Pki, addr: SocketAddr) -> (test_support::RawPeer, [u8; 32]) {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pki.ca.pem.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = within(
        "TLS handshake",
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("TLS handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let exporter = tls
        .get_ref()
        .1
        .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
        .expect("exporter");
    let peer = test_support::raw_rawsocket_over(tls, Serializer::Json)
        .await
        .expect("RawSocket handshake");
    (peer, exporter)
}

/// A cryptosign HELLO for alice asking for `binding`.
fn cryptosign_hello(realm: &str, binding: Value) -> wamp_proto::Message {
    let details = wamp_client::dict! {
        "roles" => wamp_client::dict! { "caller" => Dict::new() },
        "authmethods" => vec![Value::from("cryptosign")],
        "authid" => "alice",
        "authextra" => wamp_client::dict! {
            "pubkey" => alice_pubkey(), "channel_binding" => binding,
        },
    };
    wamp_proto::Message::Hello {
        realm: realm.into(),
        details,
    }
}

async fn expect_abort(peer: &mut test_support::RawPeer, reason: &str) {
    match peer.recv().await {
        Some(wamp_proto::Message::Abort { reason: r, .. }) => assert_eq!(r, reason),
        other => panic!("expected ABORT {reason}, got {other:?}"),
    }
}

/// The CHALLENGE's challenge bytes; its `channel_binding` must be `binding`.
async fn expect_challenge(peer: &mut test_support::RawPeer, binding: &Value) -> [u8; 32] {
    match peer.recv().await {
        Some(wamp_proto::Message::Challenge { method, extra }) => {
            assert_eq!(method, "cryptosign");
            assert_eq!(extra.get("channel_binding"), Some(binding));
            let hex = extra
                .get("challenge")
                .and_then(Value::as_str)
                .expect("challenge");
            std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        }
        other => panic!("expected CHALLENGE, got {other:?}"),
    }
}

/// wamp-client with `with_channel_binding`: joins over wss:// and rss:// (static
/// and dynamic authentication), and refuses to bind over plain ws://.
#[tokio::test]
async fn cryptosign_channel_binding_with_the_client() {
    let pki = Pki::new();
    let server = start_cryptosign(&pki).await;
    let (_authenticator, _registration, seen) = authenticator(&server).await;
    let bound = || {
        pki.options(Serializer::Json)
            .with_cryptosign(Some("alice"), ALICE_KEY)
            .with_channel_binding()
    };
    for url in [wss(&server), rss(&server)] {
        for realm in ["keys", "dyn"] {
            let session = within("join", Session::connect_with(&url, realm, bound()))
                .await
                .unwrap_or_else(|e| panic!("{url} {realm}: {e}"));
            assert_eq!(detail(&session, "authmethod"), "cryptosign");
            assert_eq!(detail(&session, "authid"), "alice");
            assert_eq!(detail(&session, "authrole"), "device");
        }
    }
    // The authenticator saw the binding asked for.
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![Value::from("tls-exporter"), Value::from("tls-exporter")]
    );
    // Without binding, cryptosign over TLS works as before.
    let unbound = pki
        .options(Serializer::Json)
        .with_cryptosign(Some("alice"), ALICE_KEY);
    let session = within(
        "join",
        Session::connect_with(&wss(&server), "keys", unbound),
    )
    .await
    .expect("joins without binding");
    assert_eq!(detail(&session, "authmethod"), "cryptosign");
    // Over plain ws:// there is nothing to bind to: the client does not even say HELLO.
    let plain = ConnectOptions::default()
        .with_cryptosign(Some("alice"), ALICE_KEY)
        .with_channel_binding();
    match within(
        "join",
        Session::connect_with(&plain_ws(&server), "keys", plain),
    )
    .await
    {
        Err(Error::Unsupported(text)) => assert!(text.contains("TLS"), "{text}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

/// The router's side on the wire: with `tls-exporter` asked for, only a signature
/// over `challenge XOR this connection's exporter` passes; the plain challenge or
/// another connection's exporter fails; other bindings, or `tls-exporter` without
/// TLS, leave no method to use.
#[tokio::test]
async fn cryptosign_channel_binding_on_the_wire() {
    use wamp_client::auth::{bound_message, sign_challenge};
    let pki = Pki::new();
    let server = start_cryptosign(&pki).await;
    let (_authenticator, _registration, _) = authenticator(&server).await;
    let rss_addr = server.endpoints().secure_rawsocket[0];
    let exporter_name = Value::from("tls-exporter");
    for realm in ["keys", "dyn"] {
        for answer in ["bound", "plain challenge", "other connection"] {
            let (mut peer, exporter) = raw_tls_peer(&pki, rss_addr).await;
            let (_other, other_exporter) = raw_tls_peer(&pki, rss_addr).await;
            assert_ne!(exporter, other_exporter);
            peer.send(cryptosign_hello(realm, exporter_name.clone()))
                .await
                .expect("hello");
            let challenge = expect_challenge(&mut peer, &exporter_name).await;
            let message = match answer {
                "bound" => bound_message(&challenge, Some(&exporter)),
                "plain challenge" => challenge,
                _ => bound_message(&challenge, Some(&other_exporter)),
            };
            peer.send(wamp_proto::Message::Authenticate {
                signature: sign_challenge(&ALICE_KEY, &message),
                extra: Dict::new(),
            })
            .await
            .expect("authenticate");
            if answer == "bound" {
                match peer.recv().await {
                    Some(wamp_proto::Message::Welcome { details, .. }) => {
                        assert_eq!(details.get("authid").and_then(Value::as_str), Some("alice"))
                    }
                    other => panic!("{realm}: expected WELCOME, got {other:?}"),
                }
            } else {
                expect_abort(&mut peer, "wamp.error.not_authorized").await;
            }
        }
        // tls-unique (TLS 1.3 has none) and unknown names: no usable method.
        for binding in ["tls-unique", "tls-server-end-point", "TLS-EXPORTER"] {
            let (mut peer, _) = raw_tls_peer(&pki, rss_addr).await;
            peer.send(cryptosign_hello(realm, Value::from(binding)))
                .await
                .expect("hello");
            expect_abort(&mut peer, "wamp.error.no_matching_auth_method").await;
        }
        // tls-exporter over plain ws://: no usable method either.
        let mut peer = test_support::raw_ws(&plain_ws(&server), &["wamp.2.json"])
            .await
            .expect("connect");
        peer.send(cryptosign_hello(realm, exporter_name.clone()))
            .await
            .expect("hello");
        expect_abort(&mut peer, "wamp.error.no_matching_auth_method").await;
        // No binding over TLS: CHALLENGE says null, the plain challenge is signed.
        let (mut peer, _) = raw_tls_peer(&pki, rss_addr).await;
        peer.send(cryptosign_hello(realm, Value::Null))
            .await
            .expect("hello");
        let challenge = expect_challenge(&mut peer, &Value::Null).await;
        peer.send(wamp_proto::Message::Authenticate {
            signature: sign_challenge(&ALICE_KEY, &challenge),
            extra: Dict::new(),
        })
        .await
        .expect("authenticate");
        assert!(matches!(
            peer.recv().await,
            Some(wamp_proto::Message::Welcome { .. })
        ));
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_junction");

fn command(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .env_remove("JUNCTION_URL")
        .env_remove("JUNCTION_REALM")
        .env_remove("JUNCTION_TLS_CA")
        .env_remove("JUNCTION_TLS_CERT")
        .env_remove("JUNCTION_TLS_KEY")
        .env_remove("JUNCTION_PRIVATE_KEY")
        .env_remove("JUNCTION_CHANNEL_BINDING")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn run(c: &mut tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .expect("junction finishes")
        .expect("junction runs")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[tokio::test]
async fn cli_over_wss_with_a_ca_file() {
    let pki = Pki::new();
    let server = start(&pki, &both_listeners("optional")).await;
    let session = join(&wss(&server), pki.options(Serializer::Json))
        .await
        .expect("joins");
    let _registration = session
        .register_fn("com.example.add", |args, _kwargs| async move {
            let sum: i64 = args.iter().filter_map(Value::as_i64).sum();
            Ok((vec![Value::from(sum)], Dict::new()))
        })
        .await
        .expect("register");
    let ca = pki.path("ca.pem");
    for url in [wss(&server), rss(&server)] {
        let out = run(&mut command(&[
            "call",
            "--url",
            &url,
            "--tls-ca",
            path_str(&ca),
            "com.example.add",
            "2",
            "3",
        ]))
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{url}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains('5'), "{stdout}");
    }
    // Without the CA: a TLS error, exit status non-zero.
    let out = run(&mut command(&[
        "call",
        "--url",
        &wss(&server),
        "com.example.add",
    ]))
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A client certificate from the environment authenticates with tls (the only
    // method in HELLO: anything else would end in an ABORT).
    let wss_url = wss(&server);
    let (cert, key) = pki.client_ca.client("client-a");
    std::fs::write(pki.path("client.pem"), cert).expect("write");
    std::fs::write(pki.path("client.key"), key).expect("write");
    for explicit in [true, false] {
        // Without --authmethod, the certificate alone makes it ["tls"].
        let mut args = vec!["call", "--url", &*wss_url, "com.example.add", "20", "22"];
        if explicit {
            args.extend(["--authmethod", "tls"]);
        }
        let out = run(command(&args)
            .env("JUNCTION_TLS_CA", &ca)
            .env("JUNCTION_TLS_CERT", pki.path("client.pem"))
            .env("JUNCTION_TLS_KEY", pki.path("client.key")))
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("42"), "{stdout}");
    }
    // An unlisted certificate: authentication fails, so tls really was used.
    let (cert, key) = pki.client_ca.client("client-b");
    std::fs::write(pki.path("client-b.pem"), cert).expect("write");
    std::fs::write(pki.path("client-b.key"), key).expect("write");
    let out = run(&mut command(&[
        "call",
        "--url",
        &wss_url,
        "--tls-ca",
        path_str(&ca),
        "--tls-cert",
        path_str(&pki.path("client-b.pem")),
        "--tls-key",
        path_str(&pki.path("client-b.key")),
        "com.example.add",
    ]))
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wamp.error.not_authorized"), "{stderr}");
}

/// `--channel-binding` (or `JUNCTION_CHANNEL_BINDING=1`) with a cryptosign key over
/// wss:// and rss://; over ws:// it fails before HELLO.
#[tokio::test]
async fn cli_cryptosign_with_channel_binding() {
    let pki = Pki::new();
    let server = start_cryptosign(&pki).await;
    let session = join_realm(
        &wss(&server),
        "keys",
        pki.options(Serializer::Json)
            .with_cryptosign(Some("alice"), ALICE_KEY)
            .with_channel_binding(),
    )
    .await;
    let _registration = session
        .register_fn("com.example.add", |args, _kwargs| async move {
            let sum: i64 = args.iter().filter_map(Value::as_i64).sum();
            Ok((vec![Value::from(sum)], Dict::new()))
        })
        .await
        .expect("register");
    let ca = pki.path("ca.pem");
    let key: String = ALICE_KEY.iter().map(|b| format!("{b:02x}")).collect();
    for (url, by_env) in [(wss(&server), false), (rss(&server), true)] {
        let mut args = vec![
            "call",
            "--url",
            &*url,
            "--realm",
            "keys",
            "--tls-ca",
            path_str(&ca),
            "com.example.add",
            "2",
            "3",
        ];
        let mut c = command(&[]);
        if by_env {
            c.env("JUNCTION_CHANNEL_BINDING", "1");
        } else {
            args.push("--channel-binding");
        }
        let out = run(c.args(&args).env("JUNCTION_PRIVATE_KEY", &key)).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{url}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains('5'), "{stdout}");
    }
    let out = run(command(&[
        "call",
        "--url",
        &plain_ws(&server),
        "--realm",
        "keys",
        "--channel-binding",
        "com.example.add",
    ])
    .env("JUNCTION_PRIVATE_KEY", &key))
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS 1.3"), "{stderr}");
    // Without a cryptosign key the flag is a mistake.
    let out = run(&mut command(&[
        "call",
        "--url",
        &wss(&server),
        "--channel-binding",
        "com.example.add",
    ]))
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--channel-binding"), "{stderr}");
}

async fn join_realm(url: &str, realm: &str, options: ConnectOptions) -> Session {
    within("join", Session::connect_with(url, realm, options))
        .await
        .unwrap_or_else(|e| panic!("{url} {realm}: {e}"))
}

#[tokio::test]
async fn check_reports_bad_tls_settings_with_line_and_key() {
    let pki = Pki::new();
    let write = |text: &str| {
        let path = pki.path("check.toml");
        std::fs::write(&path, text).expect("write");
        path
    };
    let listener = "[[realm]]\nname = \"realm1\"\n\n[[listener]]\ntype = \"websocket\"\naddress = \"127.0.0.1:0\"\n";
    // Relative paths are found next to the config file.
    let good = write(&format!(
        "{listener}[listener.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n"
    ));
    let out = run(&mut command(&["check", "--config", path_str(&good)])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = [
        (
            format!("{listener}[listener.tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\n"),
            "line 8",
            "tls.cert",
        ),
        (
            format!("{listener}[listener.tls]\ncert = \"server.pem\"\nkey = \"ca.pem\"\n"),
            "line 9",
            "tls.key",
        ),
        (
            format!(
                "{listener}tls = {{ cert = \"server.key\", key = \"server.key\" }}\n"
            ),
            "line 7",
            "tls.cert",
        ),
        (
            format!(
                "{listener}[listener.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_certs = \"required\"\n"
            ),
            "line 10",
            "client_ca",
        ),
        (
            format!("{listener}auth_methods = [\"anonymous\", \"carrier-pigeon\"]\n"),
            "line 7",
            "carrier-pigeon",
        ),
        (
            format!(
                "{listener}[listener.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_certs = \"maybe\"\n"
            ),
            "maybe",
            "client_certs",
        ),
    ];
    for (text, line, key) in cases {
        let path = write(&text);
        let out = run(&mut command(&["check", "--config", path_str(&path)])).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{text}");
        assert!(
            stderr.contains(line) && stderr.contains(key),
            "want {line} and {key} in: {stderr}\n{text}"
        );
    }
}
