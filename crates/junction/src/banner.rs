//! What `junction serve` prints once it listens: the endpoints, each realm with the
//! access it offers, and how to connect.

use std::fmt::Write as _;

use crate::config::{Config, Realm};
use crate::server::Endpoints;

/// The methods in the order the banner lists them.
const METHODS: &[&str] = &[
    "anonymous",
    "ticket",
    "wampcra",
    "cryptosign",
    "wamp-scram",
    "tls",
];

/// The authentication methods `realm` offers: (static ones, dynamic ones), each in
/// [`METHODS`] order. A method the authenticator decides is only dynamic.
pub fn realm_methods(realm: &Realm) -> (Vec<&'static str>, Vec<&'static str>) {
    let Some(auth) = &realm.auth else {
        return (vec!["anonymous"], Vec::new());
    };
    let dynamic: Vec<&'static str> = METHODS
        .iter()
        .copied()
        .filter(|m| {
            auth.dynamic
                .as_ref()
                .is_some_and(|d| d.methods.get_ref().iter().any(|n| n == m))
        })
        .collect();
    let configured = |m: &str| match m {
        "anonymous" => auth.anonymous.as_ref().is_some_and(|a| a.enabled),
        "ticket" => !auth.ticket.is_empty(),
        "wampcra" => !auth.wampcra.is_empty(),
        "cryptosign" => !auth.cryptosign.is_empty(),
        "wamp-scram" => !auth.scram.is_empty(),
        "tls" => !auth.tls.is_empty(),
        _ => false,
    };
    let fixed = METHODS
        .iter()
        .copied()
        .filter(|m| configured(m) && !dynamic.contains(m))
        .collect();
    (fixed, dynamic)
}

/// One realm's line: `realm1 (anonymous)`, `secure (ticket, wampcra; roles: 3)`,
/// `dyn (dynamic: ticket)`, `closed (no access)`.
pub fn realm_summary(realm: &Realm) -> String {
    let (fixed, dynamic) = realm_methods(realm);
    let mut parts = Vec::new();
    if !fixed.is_empty() {
        parts.push(fixed.join(", "));
    }
    if !dynamic.is_empty() {
        parts.push(format!("dynamic: {}", dynamic.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no access".to_owned());
    }
    if !realm.roles.is_empty() {
        parts.push(format!("roles: {}", realm.roles.len()));
    }
    format!("{} ({})", realm.name, parts.join("; "))
}

/// The whole banner.
pub fn banner(endpoints: &Endpoints, config: &Config) -> String {
    let mut out = String::new();
    // (Writing to a String cannot fail.)
    let _ = writeln!(out, "Junction {} is running.", env!("CARGO_PKG_VERSION"));
    for (addr, path) in &endpoints.websocket {
        let _ = writeln!(
            out,
            "  WebSocket  ws://{addr}{path}  (json, msgpack, cbor; RawSocket on the same port)"
        );
    }
    for addr in &endpoints.rawsocket {
        let _ = writeln!(out, "  RawSocket  rs://{addr}");
    }
    for (addr, path) in &endpoints.secure_websocket {
        let _ = writeln!(
            out,
            "  WebSocket  wss://{addr}{path}  (TLS; json, msgpack, cbor; rss:// on the same port)"
        );
    }
    for addr in &endpoints.secure_rawsocket {
        let _ = writeln!(out, "  RawSocket  rss://{addr}  (TLS)");
    }
    for path in &endpoints.unix {
        let _ = writeln!(out, "  RawSocket  unix://{}", path.display());
    }
    for (i, realm) in config.realms.iter().enumerate() {
        let label = if i == 0 { "Realms" } else { "" };
        let _ = writeln!(out, "  {label:<10} {}", realm_summary(realm));
    }
    if let Some(hint) = connect_hint(endpoints, config) {
        let _ = writeln!(out, "{hint}");
    }
    out.push_str("Stop with Ctrl-C.\n");
    out
}

/// How to connect with Autobahn: the first WebSocket endpoint (plain, else TLS) and
/// the first realm open to anonymous clients; without one, the first realm and the
/// methods it offers.
fn connect_hint(endpoints: &Endpoints, config: &Config) -> Option<String> {
    let url = match (
        endpoints.websocket.first(),
        endpoints.secure_websocket.first(),
    ) {
        (Some((addr, path)), _) => format!("ws://{addr}{path}"),
        (None, Some((addr, path))) => format!("wss://{addr}{path}"),
        (None, None) => return None,
    };
    let open = config
        .realms
        .iter()
        .find(|r| realm_methods(r).0.contains(&"anonymous"));
    if let Some(realm) = open {
        return Some(format!(
            "Connect with Autobahn: Connection({{url: '{url}', realm: '{}'}})",
            realm.name
        ));
    }
    let realm = config.realms.first()?;
    let (fixed, dynamic) = realm_methods(realm);
    let methods: Vec<String> = fixed
        .iter()
        .chain(&dynamic)
        .map(|m| format!("'{m}'"))
        .collect();
    if methods.is_empty() {
        return None;
    }
    Some(format!(
        "Connect with Autobahn: Connection({{url: '{url}', realm: '{}', authmethods: [{}], ...}}) (the realm needs credentials)",
        realm.name,
        methods.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[realm]]
name = "realm1"

[[realm]]
name = "secure"
[[realm.role]]
name = "a"
[[realm.role]]
name = "b"
[[realm.role]]
name = "c"
[[realm.auth.ticket]]
authid = "joe"
role = "a"
ticket_hash = "HASH"
[[realm.auth.wampcra]]
authid = "peter"
role = "b"
secret = "s"
[[realm.auth.cryptosign]]
authid = "alice"
role = "c"
pubkeys = ["PUBKEY"]

[[realm]]
name = "dyn"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "realm1"
methods = ["ticket"]

[[realm]]
name = "mixed"
[realm.auth.anonymous]
role = "guest"
[[realm.auth.ticket]]
authid = "joe"
role = "x"
ticket_hash = "HASH"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "realm1"
methods = ["tls", "ticket"]

[[realm]]
name = "closed"
[realm.auth]
"#;

    fn config() -> Config {
        let toml = CONFIG
            .replace("HASH", &wamp_router::auth::hash_ticket("t", 10))
            .replace(
                "PUBKEY",
                &wamp_client::PrivateKey::new([0x11; 32]).public_key_hex(),
            );
        Config::from_toml(&toml).expect("config")
    }

    fn endpoints() -> Endpoints {
        Endpoints {
            websocket: vec![("127.0.0.1:8080".parse().expect("addr"), "/ws".into())],
            rawsocket: Vec::new(),
            unix: Vec::new(),
            secure_websocket: Vec::new(),
            secure_rawsocket: Vec::new(),
        }
    }

    #[test]
    fn realms_say_what_they_offer() {
        let config = config();
        let lines: Vec<String> = config.realms.iter().map(realm_summary).collect();
        assert_eq!(
            lines,
            [
                "realm1 (anonymous)",
                "secure (ticket, wampcra, cryptosign; roles: 3)",
                "dyn (dynamic: ticket)",
                "mixed (anonymous; dynamic: ticket, tls)",
                "closed (no access)",
            ]
        );
        let text = banner(&endpoints(), &config);
        assert!(text.contains("  Realms     realm1 (anonymous)\n"), "{text}");
        assert!(
            text.contains("\n             dyn (dynamic: ticket)\n"),
            "{text}"
        );
        assert!(
            text.contains("Connection({url: 'ws://127.0.0.1:8080/ws', realm: 'realm1'})"),
            "{text}"
        );
    }

    #[test]
    fn the_hint_names_an_open_realm_or_the_methods() {
        let mut config = config();
        config.realms.remove(0);
        let text = banner(&endpoints(), &config);
        // `mixed` is the first realm open to anonymous clients.
        assert!(text.contains("realm: 'mixed'})"), "{text}");
        config.realms.retain(|r| r.name == "secure");
        let text = banner(&endpoints(), &config);
        assert!(
            text.contains(
                "realm: 'secure', authmethods: ['ticket', 'wampcra', 'cryptosign'], ...}) (the realm needs credentials)"
            ),
            "{text}"
        );
        let mut no_ws = endpoints();
        no_ws.websocket.clear();
        assert!(!banner(&no_ws, &config).contains("Connect with"));
    }
}
