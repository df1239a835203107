//! The authentication and authorization part of a realm's configuration.
//!
//! ```toml
//! [[realm]]
//! name = "realm1"
//!
//! [[realm.role]]                   # with any role declared, authorization is on
//! name = "backend"
//! [[realm.role.permission]]
//! uri = "com.example."
//! match = "prefix"                 # exact (default), prefix or wildcard
//! call = true
//! register = true
//! publish = true
//! subscribe = true
//! disclose_caller = false
//! disclose_publisher = false
//!
//! [realm.auth.anonymous]           # without [realm.auth]: anonymous, role "anonymous"
//! role = "public"
//!
//! [[realm.auth.ticket]]
//! authid = "joe"
//! role = "backend"
//! ticket_hash = "$pbkdf2-sha256$i=100000$...$..."   # junction hash-secret
//!
//! [[realm.auth.wampcra]]
//! authid = "peter"
//! role = "backend"
//! secret = "..."                   # plain WAMP-CRA: the router needs the secret itself
//!
//! [[realm.role]]                   # a procedure decides instead of permissions
//! name = "user"
//! authorizer = "com.example.authorize"
//! authorizer_realm = "auth"        # optional; default: this realm
//! authorizer_callee_role = "authz" # optional: only a callee in this role is asked
//!
//! [realm.auth.dynamic]             # a procedure decides who a client is
//! procedure = "com.example.authenticate"
//! realm = "auth"                   # optional; default: this realm
//! methods = ["ticket", "wampcra"]  # of anonymous, ticket, wampcra, cryptosign, wamp-scram, tls
//! timeout_ms = 5000
//! callee_role = "authenticator"    # optional: only a callee in this role is asked
//!
//! [[realm.auth.wampcra]]           # salted WAMP-CRA: only the derived key is stored
//! authid = "paul"
//! role = "backend"
//! derived_key = "..."              # junction hash-secret --salt S --iterations N
//! salt = "..."
//! iterations = 1000
//! keylen = 32
//!
//! [[realm.auth.cryptosign]]        # public keys from `junction keygen`
//! authid = "device-1"
//! role = "backend"
//! pubkeys = ["<64 hex characters>"]
//!
//! [[realm.auth.scram]]             # junction hash-secret --method scram
//! authid = "mary"
//! role = "backend"
//! dialect = "spec"                 # or "autobahn" (Autobahn|Python's `scram`, argon2id13 only)
//! kdf = "argon2id13"               # or "pbkdf2" (then no `memory`)
//! iterations = 3
//! memory = 65536
//! salt = "..."
//! stored_key = "..."
//! server_key = "..."
//!
//! [[realm.auth.tls]]               # TLS client certificates (listener `tls.client_certs`)
//! authid = "device-17"             # the certificate's subject CN (else first DNS name)
//! role = "backend"
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use toml::Spanned;
use wamp_proto::uri::{is_valid_pattern, is_valid_uri, MatchPolicy, UriRule};
use wamp_router::auth::{
    check_ticket_hash, cryptosign, scram, CraSalt, CraUser, CryptosignUser, Dialect, Kdf,
    Permission, PermissionMatch, RealmAuth, Role, ScramUser, TicketUser,
};
use wamp_router::authenticator::DynamicAuthenticator;
use wamp_router::authorizer::DynamicAuthorizer;

use crate::config::{ConfigError, Realm};

/// A role and its permissions.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// The role's name (`authrole`).
    pub name: Spanned<String>,
    /// What it may do.
    #[serde(default, rename = "permission")]
    pub permissions: Vec<PermissionConfig>,
    /// A procedure that decides instead of permissions.
    pub authorizer: Option<Spanned<String>>,
    /// The realm the authorizer is registered on (default: this one).
    pub authorizer_realm: Option<Spanned<String>>,
    /// Only a callee in this role is asked (default: whoever registered it).
    pub authorizer_callee_role: Option<Spanned<String>>,
}

/// `[realm.auth.dynamic]`: a procedure that authenticates.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DynamicConfig {
    /// The authenticator procedure.
    pub procedure: Spanned<String>,
    /// The realm it is registered on (default: this one).
    pub realm: Option<Spanned<String>>,
    /// The methods it decides.
    pub methods: Spanned<Vec<String>>,
    /// How long it may take to answer.
    #[serde(default = "default_dynamic_timeout_ms")]
    pub timeout_ms: Spanned<u64>,
    /// Only a callee in this role is asked (default: whoever registered it).
    pub callee_role: Option<Spanned<String>>,
}

/// Methods a dynamic authenticator can decide.
pub const DYNAMIC_METHODS: &[&str] = &[
    "anonymous",
    "ticket",
    "wampcra",
    "cryptosign",
    "wamp-scram",
    "tls",
];

/// Default `authorizer_cache_ms`.
pub fn default_authorizer_cache_ms() -> u64 {
    60_000
}

/// Default `authorizer_cache_max`.
pub fn default_authorizer_cache_max() -> usize {
    wamp_router::authorizer::DEFAULT_CACHE_MAX
}

/// Default time an authenticator or authorizer has to answer.
pub fn default_dynamic_timeout_ms() -> Spanned<u64> {
    Spanned::new(0..0, 5_000)
}

/// One permission.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// URI or pattern.
    pub uri: Spanned<String>,
    /// `exact` (default), `prefix` or `wildcard`.
    #[serde(default, rename = "match")]
    pub policy: PermissionMatchConfig,
    /// CALL allowed.
    #[serde(default)]
    pub call: bool,
    /// REGISTER allowed.
    #[serde(default)]
    pub register: bool,
    /// PUBLISH allowed.
    #[serde(default)]
    pub publish: bool,
    /// SUBSCRIBE allowed.
    #[serde(default)]
    pub subscribe: bool,
    /// Callees see who calls.
    #[serde(default)]
    pub disclose_caller: bool,
    /// Subscribers see who publishes.
    #[serde(default)]
    pub disclose_publisher: bool,
}

/// A permission's match policy.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PermissionMatchConfig {
    /// The URI itself.
    #[default]
    Exact,
    /// URIs starting with it.
    Prefix,
    /// Component-wise, empty components match any.
    Wildcard,
}

/// `[realm.auth]`: which methods a realm offers and its users.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Anonymous access (off when `[realm.auth]` exists without it).
    pub anonymous: Option<AnonymousConfig>,
    /// Ticket users.
    #[serde(default)]
    pub ticket: Vec<TicketConfig>,
    /// WAMP-CRA users.
    #[serde(default)]
    pub wampcra: Vec<CraConfig>,
    /// WAMP-Cryptosign users.
    #[serde(default)]
    pub cryptosign: Vec<CryptosignConfig>,
    /// WAMP-SCRAM users.
    #[serde(default)]
    pub scram: Vec<ScramConfig>,
    /// A dynamic authenticator.
    pub dynamic: Option<DynamicConfig>,
    /// TLS client-certificate principals.
    #[serde(default)]
    pub tls: Vec<TlsPrincipalConfig>,
}

/// A WAMP-Cryptosign user: the Ed25519 public keys it may log in with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CryptosignConfig {
    /// The authid.
    pub authid: Spanned<String>,
    /// The role it gets.
    pub role: Spanned<String>,
    /// Public keys, 64 hex characters each (`junction keygen`).
    pub pubkeys: Spanned<Vec<Spanned<String>>>,
    /// When this login stops working (a TOML date-time with offset); none: never.
    #[serde(default)]
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// A WAMP-SCRAM user's stored key material (`junction hash-secret --method scram`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScramConfig {
    /// The authid.
    pub authid: Spanned<String>,
    /// The role it gets.
    pub role: Spanned<String>,
    /// `spec` (default) or `autobahn` (Autobahn|Python's `scram`, argon2id13 only).
    #[serde(default)]
    pub dialect: Option<Spanned<String>>,
    /// `argon2id13` or `pbkdf2`.
    pub kdf: Spanned<String>,
    /// KDF iterations (Argon2: time cost).
    pub iterations: Spanned<u32>,
    /// Argon2 memory in KiB (argon2id13 only).
    pub memory: Option<Spanned<u32>>,
    /// The salt, Base64.
    pub salt: Spanned<String>,
    /// StoredKey, Base64.
    pub stored_key: Spanned<Redacted>,
    /// ServerKey, Base64.
    pub server_key: Spanned<Redacted>,
    /// When this login stops working (a TOML date-time with offset); none: never.
    #[serde(default)]
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// The router's form of a SCRAM user, or what is wrong and where.
fn scram_user(c: &ScramConfig) -> Result<ScramUser, (std::ops::Range<usize>, String)> {
    let id = c.authid.get_ref();
    let dialect = match c.dialect.as_ref().map(|d| (d.get_ref().as_str(), d.span())) {
        None | Some(("spec", _)) => Dialect::Spec,
        Some(("autobahn", _)) => Dialect::Autobahn,
        Some((other, span)) => {
            return Err((
                span,
                format!("scram user '{id}': dialect '{other}' is not spec or autobahn"),
            ))
        }
    };
    if dialect == Dialect::Autobahn && c.kdf.get_ref() != "argon2id13" {
        return Err((
            c.kdf.span(),
            format!("scram user '{id}': dialect autobahn needs kdf argon2id13"),
        ));
    }
    let kdf = match (c.kdf.get_ref().as_str(), &c.memory) {
        ("argon2id13", Some(m)) => Kdf::Argon2id13 {
            memory: *m.get_ref(),
        },
        ("argon2id13", None) => {
            return Err((
                c.kdf.span(),
                format!("scram user '{id}': kdf argon2id13 needs `memory` (KiB)"),
            ))
        }
        ("pbkdf2", None) => Kdf::Pbkdf2,
        ("pbkdf2", Some(m)) => {
            return Err((
                m.span(),
                format!("scram user '{id}': `memory` is for kdf argon2id13 only"),
            ))
        }
        (other, _) => {
            return Err((
                c.kdf.span(),
                format!("scram user '{id}': kdf '{other}' is not argon2id13 or pbkdf2"),
            ))
        }
    };
    let salt = B64.decode(c.salt.get_ref()).map_err(|_| {
        (
            c.salt.span(),
            format!("scram user '{id}': salt is not Base64"),
        )
    })?;
    if salt.is_empty() {
        return Err((c.salt.span(), format!("scram user '{id}': salt is empty")));
    }
    scram::check_params(kdf, &salt, *c.iterations.get_ref())
        .map_err(|e| (c.iterations.span(), format!("scram user '{id}': {e}")))?;
    let key = |k: &Spanned<Redacted>, name: &str| {
        B64.decode(&k.get_ref().0)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                (
                    k.span(),
                    format!("scram user '{id}': {name} must be 32 bytes in Base64"),
                )
            })
    };
    Ok(ScramUser {
        role: c.role.get_ref().clone(),
        dialect,
        kdf,
        iterations: *c.iterations.get_ref(),
        salt,
        stored_key: key(&c.stored_key, "stored_key")?,
        server_key: key(&c.server_key, "server_key")?,
    })
}

/// A principal authenticated by its TLS client certificate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsPrincipalConfig {
    /// The authid: the certificate's subject CN (or its first DNS name without a CN).
    pub authid: Spanned<String>,
    /// The role it gets.
    pub role: Spanned<String>,
    /// When this login stops working (a TOML date-time with offset); none: never.
    #[serde(default)]
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// Anonymous access.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnonymousConfig {
    /// Whether it is offered.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The role anonymous sessions get.
    #[serde(default = "anonymous_role")]
    pub role: Spanned<String>,
}

fn yes() -> bool {
    true
}

fn anonymous_role() -> Spanned<String> {
    Spanned::new(0..0, "anonymous".to_owned())
}

/// A ticket user.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TicketConfig {
    /// The authid.
    pub authid: Spanned<String>,
    /// The role it gets.
    pub role: Spanned<String>,
    /// The ticket's stored form (`junction hash-secret`).
    pub ticket_hash: Spanned<String>,
    /// When this login stops working (a TOML date-time with offset); none: never.
    #[serde(default)]
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// A WAMP-CRA user: `secret`, or `derived_key` with `salt`, `iterations`, `keylen`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CraConfig {
    /// The authid.
    pub authid: Spanned<String>,
    /// The role it gets.
    pub role: Spanned<String>,
    /// The shared secret (plain WAMP-CRA).
    pub secret: Option<Redacted>,
    /// The PBKDF2-derived key, Base64 (salted WAMP-CRA).
    pub derived_key: Option<Redacted>,
    /// Salt (salted WAMP-CRA).
    pub salt: Option<String>,
    /// PBKDF2 iterations (salted WAMP-CRA).
    pub iterations: Option<u32>,
    /// Derived key length in bytes (salted WAMP-CRA).
    pub keylen: Option<u32>,
    /// When this login stops working (a TOML date-time with offset); none: never.
    #[serde(default)]
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// A secret from the file: its `Debug` form does not show it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a span starts: `line N` of `text`, when the span is real.
fn at(text: Option<&str>, span: std::ops::Range<usize>) -> String {
    match text {
        Some(t) if span.end > 0 && span.start <= t.len() => {
            let line = t[..span.start].matches('\n').count() + 1;
            format!("line {line}: ")
        }
        _ => String::new(),
    }
}

/// Checks a realm's roles and users; `text` (the file) lets errors name the line.
pub fn validate(realm: &Realm, text: Option<&str>) -> Result<(), ConfigError> {
    let fail = |span: std::ops::Range<usize>, what: String| {
        Err(ConfigError::Invalid(format!(
            "{}realm '{}': {what}",
            at(text, span),
            realm.name
        )))
    };
    let mut names = Vec::new();
    for role in &realm.roles {
        if names.contains(&role.name.get_ref()) {
            return fail(
                role.name.span(),
                format!("role '{}' is declared twice", role.name.get_ref()),
            );
        }
        names.push(role.name.get_ref());
        if let Some(authorizer) = &role.authorizer {
            if !role.permissions.is_empty() {
                return fail(
                    authorizer.span(),
                    format!(
                        "role '{}': give either `authorizer` or permissions, not both",
                        role.name.get_ref()
                    ),
                );
            }
            if !is_valid_uri(authorizer.get_ref(), UriRule::Loose) {
                return fail(
                    authorizer.span(),
                    format!(
                        "role '{}': authorizer '{}' is not a valid procedure URI",
                        role.name.get_ref(),
                        authorizer.get_ref()
                    ),
                );
            }
        } else if let Some(r) = &role.authorizer_realm {
            return fail(
                r.span(),
                format!(
                    "role '{}': authorizer_realm needs `authorizer`",
                    role.name.get_ref()
                ),
            );
        } else if let Some(r) = &role.authorizer_callee_role {
            return fail(
                r.span(),
                format!(
                    "role '{}': authorizer_callee_role needs `authorizer`",
                    role.name.get_ref()
                ),
            );
        }
        for p in &role.permissions {
            let policy = match p.policy {
                PermissionMatchConfig::Exact => MatchPolicy::Exact,
                PermissionMatchConfig::Prefix => MatchPolicy::Prefix,
                PermissionMatchConfig::Wildcard => MatchPolicy::Wildcard,
            };
            let ok = (p.uri.get_ref().is_empty() && policy == MatchPolicy::Prefix)
                || is_valid_pattern(p.uri.get_ref(), policy, UriRule::Loose);
            if !ok {
                return fail(
                    p.uri.span(),
                    format!(
                        "role '{}': permission uri '{}' is not a valid {policy} pattern",
                        role.name.get_ref(),
                        p.uri.get_ref()
                    ),
                );
            }
        }
    }
    let Some(auth) = &realm.auth else {
        // Anonymous sessions get role `anonymous`, which must then be declared.
        if let Some(first) = realm.roles.first() {
            if !names.iter().any(|n| n.as_str() == "anonymous") {
                return fail(
                    first.name.span(),
                    "roles are declared, so the default anonymous role 'anonymous' must be too (or configure [realm.auth.anonymous])".into(),
                );
            }
        }
        return Ok(());
    };
    let role_known = |role: &Spanned<String>| -> Result<(), ConfigError> {
        if realm.roles.is_empty() || names.contains(&role.get_ref()) {
            Ok(())
        } else {
            fail(
                role.span(),
                format!("role '{}' is not declared ([[realm.role]])", role.get_ref()),
            )
        }
    };
    if let Some(a) = &auth.anonymous {
        if a.enabled {
            role_known(&a.role)?;
        }
    }
    if let Some(d) = &auth.dynamic {
        if !is_valid_uri(d.procedure.get_ref(), UriRule::Loose) {
            return fail(
                d.procedure.span(),
                format!(
                    "auth.dynamic: procedure '{}' is not a valid URI",
                    d.procedure.get_ref()
                ),
            );
        }
        let methods = d.methods.get_ref();
        if methods.is_empty() {
            return fail(
                d.methods.span(),
                "auth.dynamic: methods must name at least one method".into(),
            );
        }
        if let Some(m) = methods
            .iter()
            .find(|m| !DYNAMIC_METHODS.contains(&m.as_str()))
        {
            return fail(
                d.methods.span(),
                format!(
                    "auth.dynamic: method '{m}' cannot be decided dynamically (one of {})",
                    DYNAMIC_METHODS.join(", ")
                ),
            );
        }
        if *d.timeout_ms.get_ref() == 0 {
            return fail(
                d.timeout_ms.span(),
                "auth.dynamic: timeout_ms must be at least 1".into(),
            );
        }
    }
    let expiries = (auth.ticket.iter().map(|u| &u.expires))
        .chain(auth.wampcra.iter().map(|u| &u.expires))
        .chain(auth.cryptosign.iter().map(|u| &u.expires))
        .chain(auth.scram.iter().map(|u| &u.expires))
        .chain(auth.tls.iter().map(|u| &u.expires));
    for e in expiries.flatten() {
        if let Err(e2) = wamp_router::auth::parse_expiry(&e.get_ref().to_string()) {
            return fail(e.span(), format!("expires: {e2}"));
        }
    }
    let mut seen = Vec::new();
    for t in &auth.ticket {
        if seen.contains(&t.authid.get_ref()) {
            return fail(
                t.authid.span(),
                format!("ticket authid '{}' is declared twice", t.authid.get_ref()),
            );
        }
        seen.push(t.authid.get_ref());
        role_known(&t.role)?;
        if let Err(e) = check_ticket_hash(t.ticket_hash.get_ref()) {
            return fail(
                t.ticket_hash.span(),
                format!("ticket_hash of '{}': {e}", t.authid.get_ref()),
            );
        }
    }
    let mut seen = Vec::new();
    for t in &auth.tls {
        let id = t.authid.get_ref();
        if seen.contains(&id) {
            return fail(
                t.authid.span(),
                format!("tls authid '{id}' is declared twice"),
            );
        }
        if id.is_empty() {
            return fail(t.authid.span(), "tls authid must not be empty".into());
        }
        seen.push(id);
        role_known(&t.role)?;
    }
    let mut seen = Vec::new();
    for c in &auth.wampcra {
        let id = c.authid.get_ref();
        if seen.contains(&id) {
            return fail(
                c.authid.span(),
                format!("wampcra authid '{id}' is declared twice"),
            );
        }
        seen.push(id);
        role_known(&c.role)?;
        let salted = [
            c.salt.is_some(),
            c.iterations.is_some(),
            c.keylen.is_some(),
            c.derived_key.is_some(),
        ];
        let ok = match (&c.secret, salted) {
            (Some(s), [false, false, false, false]) => !s.0.is_empty(),
            (None, [true, true, true, true]) => {
                c.iterations.unwrap_or(0) > 0 && (1..=1024).contains(&c.keylen.unwrap_or(0))
            }
            _ => false,
        };
        if !ok {
            return fail(
                c.authid.span(),
                format!(
                    "wampcra user '{id}' needs either `secret`, or `derived_key`, `salt`, `iterations` (>0) and `keylen` (1..=1024)"
                ),
            );
        }
    }
    let mut seen = Vec::new();
    let mut keys = Vec::new();
    for c in &auth.cryptosign {
        let id = c.authid.get_ref();
        if seen.contains(&id) {
            return fail(
                c.authid.span(),
                format!("cryptosign authid '{id}' is declared twice"),
            );
        }
        seen.push(id);
        role_known(&c.role)?;
        if c.pubkeys.get_ref().is_empty() {
            return fail(
                c.pubkeys.span(),
                format!("cryptosign user '{id}' needs at least one key in `pubkeys`"),
            );
        }
        for k in c.pubkeys.get_ref() {
            let key = match cryptosign::parse_pubkey(k.get_ref()) {
                Ok(key) => key,
                Err(e) => return fail(k.span(), format!("pubkeys of '{id}': {e}")),
            };
            // A HELLO without authid finds its user by key: a key has one owner.
            if keys.contains(&key) {
                return fail(
                    k.span(),
                    format!("pubkeys of '{id}': this key is listed twice in the realm"),
                );
            }
            keys.push(key);
        }
    }
    let mut seen = Vec::new();
    for c in &auth.scram {
        let id = c.authid.get_ref();
        if seen.contains(&id) {
            return fail(
                c.authid.span(),
                format!("scram authid '{id}' is declared twice"),
            );
        }
        seen.push(id);
        role_known(&c.role)?;
        if let Err((span, why)) = scram_user(c) {
            return fail(span, why);
        }
    }
    Ok(())
}

/// Checks that the realms that authenticators and authorizers are said to be
/// registered on exist, and the authorizer timeout.
pub fn validate_links(realm: &Realm, all: &[Realm], text: Option<&str>) -> Result<(), ConfigError> {
    let fail = |span: std::ops::Range<usize>, what: String| {
        Err(ConfigError::Invalid(format!(
            "{}realm '{}': {what}",
            at(text, span),
            realm.name
        )))
    };
    let exists = |name: &str| all.iter().any(|r| r.name == name);
    if let Some(d) = realm.auth.as_ref().and_then(|a| a.dynamic.as_ref()) {
        if let Some(r) = d.realm.as_ref().filter(|r| !exists(r.get_ref())) {
            return fail(
                r.span(),
                format!("auth.dynamic: realm '{}' is not declared", r.get_ref()),
            );
        }
    }
    for role in &realm.roles {
        if let Some(r) = role
            .authorizer_realm
            .as_ref()
            .filter(|r| !exists(r.get_ref()))
        {
            return fail(
                r.span(),
                format!(
                    "role '{}': authorizer_realm '{}' is not declared",
                    role.name.get_ref(),
                    r.get_ref()
                ),
            );
        }
    }
    if realm.roles.iter().any(|r| r.authorizer.is_some())
        && *realm.authorizer_timeout_ms.get_ref() == 0
    {
        return fail(
            realm.authorizer_timeout_ms.span(),
            "authorizer_timeout_ms must be at least 1".into(),
        );
    }
    Ok(())
}

/// The router's view of a realm's roles and users.
pub fn realm_auth(realm: &Realm) -> RealmAuth {
    let roles = (!realm.roles.is_empty()).then(|| {
        realm
            .roles
            .iter()
            .map(|r| {
                let permissions = r
                    .permissions
                    .iter()
                    .map(|p| Permission {
                        uri: p.uri.get_ref().clone(),
                        policy: match p.policy {
                            PermissionMatchConfig::Exact => PermissionMatch::Exact,
                            PermissionMatchConfig::Prefix => PermissionMatch::Prefix,
                            PermissionMatchConfig::Wildcard => PermissionMatch::Wildcard,
                        },
                        call: p.call,
                        register: p.register,
                        publish: p.publish,
                        subscribe: p.subscribe,
                        disclose_caller: p.disclose_caller,
                        disclose_publisher: p.disclose_publisher,
                    })
                    .collect();
                let name = r.name.get_ref().clone();
                if let Some(procedure) = &r.authorizer {
                    let authorizer = DynamicAuthorizer::new(
                        procedure.get_ref().clone(),
                        r.authorizer_realm.as_ref().map(|s| s.get_ref().clone()),
                        Duration::from_millis(*realm.authorizer_timeout_ms.get_ref()),
                        Duration::from_millis(realm.authorizer_cache_ms),
                        realm.authorizer_cache_max,
                    )
                    .with_callee_role(
                        r.authorizer_callee_role
                            .as_ref()
                            .map(|c| c.get_ref().clone()),
                    );
                    return (name.clone(), Arc::new(Role::dynamic(name, authorizer)));
                }
                (name.clone(), Arc::new(Role::new(name, permissions)))
            })
            .collect::<HashMap<_, _>>()
    });
    let Some(auth) = &realm.auth else {
        return RealmAuth {
            roles,
            ..RealmAuth::default()
        };
    };
    let mut expires = HashMap::new();
    let users = (auth
        .ticket
        .iter()
        .map(|u| ("ticket", &u.authid, &u.expires)))
    .chain(
        auth.wampcra
            .iter()
            .map(|u| ("wampcra", &u.authid, &u.expires)),
    )
    .chain(
        auth.cryptosign
            .iter()
            .map(|u| ("cryptosign", &u.authid, &u.expires)),
    )
    .chain(
        auth.scram
            .iter()
            .map(|u| ("wamp-scram", &u.authid, &u.expires)),
    )
    .chain(auth.tls.iter().map(|u| ("tls", &u.authid, &u.expires)));
    for (method, authid, e) in users {
        // Validated before; an unreadable one cannot get here.
        if let Some(at) = e
            .as_ref()
            .and_then(|e| wamp_router::auth::parse_expiry(&e.get_ref().to_string()).ok())
        {
            expires.insert((method.to_owned(), authid.get_ref().clone()), at);
        }
    }
    RealmAuth {
        anonymous: auth
            .anonymous
            .as_ref()
            .filter(|a| a.enabled)
            .map(|a| a.role.get_ref().clone()),
        ticket: auth
            .ticket
            .iter()
            .map(|t| {
                (
                    t.authid.get_ref().clone(),
                    TicketUser {
                        role: t.role.get_ref().clone(),
                        ticket_hash: t.ticket_hash.get_ref().clone(),
                    },
                )
            })
            .collect(),
        wampcra: auth
            .wampcra
            .iter()
            .map(|c| {
                let salt = match (&c.salt, c.iterations, c.keylen) {
                    (Some(salt), Some(iterations), Some(keylen)) => Some(CraSalt {
                        salt: salt.clone(),
                        iterations,
                        keylen,
                    }),
                    _ => None,
                };
                let key = if salt.is_some() {
                    c.derived_key.as_ref()
                } else {
                    c.secret.as_ref()
                };
                (
                    c.authid.get_ref().clone(),
                    CraUser {
                        role: c.role.get_ref().clone(),
                        key: key.map(|k| k.0.clone()).unwrap_or_default(),
                        salt,
                    },
                )
            })
            .collect(),
        cryptosign: auth
            .cryptosign
            .iter()
            .map(|c| {
                (
                    c.authid.get_ref().clone(),
                    CryptosignUser {
                        role: c.role.get_ref().clone(),
                        pubkeys: c
                            .pubkeys
                            .get_ref()
                            .iter()
                            .filter_map(|k| cryptosign::parse_pubkey(k.get_ref()).ok())
                            .collect(),
                    },
                )
            })
            .collect(),
        // Validated before; a user that does not convert is left out (no login).
        scram: auth
            .scram
            .iter()
            .filter_map(|c| Some((c.authid.get_ref().clone(), scram_user(c).ok()?)))
            .collect(),
        roles,
        dynamic: auth.dynamic.as_ref().map(|d| DynamicAuthenticator {
            procedure: d.procedure.get_ref().clone(),
            realm: d.realm.as_ref().map(|r| r.get_ref().clone()),
            methods: d.methods.get_ref().clone(),
            timeout: Duration::from_millis(*d.timeout_ms.get_ref()),
            callee_role: d.callee_role.as_ref().map(|r| r.get_ref().clone()),
        }),
        tls: auth
            .tls
            .iter()
            .map(|t| (t.authid.get_ref().clone(), t.role.get_ref().clone()))
            .collect(),
        expires,
    }
}

/// `junction hash-secret`: the stored form of a secret.
#[derive(clap::Args)]
pub struct HashSecretArgs {
    /// The secret (default: read the first line of standard input, which keeps it
    /// out of the shell history and the process list).
    #[arg(long)]
    pub secret: Option<String>,
    /// Salted WAMP-CRA: the salt; prints the derived key for `derived_key`.
    #[arg(long)]
    pub salt: Option<String>,
    /// KDF iterations (default: 100000 for tickets, 1000 for salted WAMP-CRA; SCRAM:
    /// 3 for argon2id13, 100000 for pbkdf2).
    #[arg(long)]
    pub iterations: Option<u32>,
    /// Salted WAMP-CRA: derived key length in bytes.
    #[arg(long, default_value_t = 32)]
    pub keylen: u32,
    /// What to produce: a ticket hash (default), salted WAMP-CRA key material (the
    /// default when --salt is given) or WAMP-SCRAM key material.
    #[arg(long, value_enum)]
    pub method: Option<HashMethod>,
    /// WAMP-SCRAM: the key derivation function.
    #[arg(long, value_enum, default_value_t = KdfArg::Argon2id13)]
    pub kdf: KdfArg,
    /// WAMP-SCRAM with argon2id13: memory cost in KiB.
    #[arg(long, default_value_t = 65536)]
    pub memory: u32,
    /// WAMP-SCRAM: the dialect the keys are for (`autobahn`: Autobahn|Python's
    /// `scram` client, argon2id13 only).
    #[arg(long, value_enum, default_value_t = DialectArg::Spec)]
    pub dialect: DialectArg,
}

/// `hash-secret --dialect`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialectArg {
    /// The WAMP spec's.
    Spec,
    /// Autobahn|Python's `AuthScram`.
    Autobahn,
}

/// Leaves the secret out.
impl std::fmt::Debug for HashSecretArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSecretArgs")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("salt", &self.salt)
            .field("iterations", &self.iterations)
            .field("keylen", &self.keylen)
            .field("method", &self.method)
            .field("kdf", &self.kdf)
            .field("memory", &self.memory)
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// `hash-secret --method`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashMethod {
    /// `ticket_hash` for `[[realm.auth.ticket]]`.
    Ticket,
    /// Salted WAMP-CRA (`derived_key`, needs --salt).
    Wampcra,
    /// WAMP-SCRAM (`kdf`, `salt`, `stored_key`, ... for `[[realm.auth.scram]]`).
    Scram,
}

/// `hash-secret --kdf`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfArg {
    /// Argon2id 1.3.
    #[value(name = "argon2id13")]
    Argon2id13,
    /// PBKDF2-HMAC-SHA256.
    Pbkdf2,
}

/// Runs `junction hash-secret`, printing to standard output.
pub fn hash_secret(args: HashSecretArgs) -> anyhow::Result<()> {
    let secret = match args.secret {
        Some(s) => s,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    anyhow::ensure!(!secret.is_empty(), "the secret is empty");
    let method = args.method.unwrap_or(if args.salt.is_some() {
        HashMethod::Wampcra
    } else {
        HashMethod::Ticket
    });
    match method {
        HashMethod::Scram => {
            anyhow::ensure!(args.salt.is_none(), "--salt is for salted WAMP-CRA only");
            println!(
                "{}",
                scram_form_in(
                    args.dialect,
                    &secret,
                    args.kdf,
                    args.iterations,
                    args.memory
                )?
            );
            return Ok(());
        }
        HashMethod::Wampcra => {
            anyhow::ensure!(args.salt.is_some(), "salted WAMP-CRA needs --salt");
        }
        HashMethod::Ticket => {
            anyhow::ensure!(args.salt.is_none(), "--salt is for salted WAMP-CRA only");
        }
    }
    if args.dialect != DialectArg::Spec {
        anyhow::bail!("--dialect is for --method scram only");
    }
    println!(
        "{}",
        stored_form(&secret, args.salt.as_deref(), args.iterations, args.keylen)?
    );
    Ok(())
}

/// The text `hash-secret` prints: a `ticket_hash`, or for salted WAMP-CRA the
/// TOML lines of the user's key material.
pub fn stored_form(
    secret: &str,
    salt: Option<&str>,
    iterations: Option<u32>,
    keylen: u32,
) -> anyhow::Result<String> {
    match salt {
        None => {
            let n = iterations.unwrap_or(wamp_router::auth::DEFAULT_TICKET_ITERATIONS);
            anyhow::ensure!(n > 0, "--iterations must be at least 1");
            Ok(format!(
                "ticket_hash = \"{}\"",
                wamp_router::auth::hash_ticket(secret, n)
            ))
        }
        Some(salt) => {
            let n = iterations.unwrap_or(1000);
            anyhow::ensure!(n > 0, "--iterations must be at least 1");
            anyhow::ensure!((1..=1024).contains(&keylen), "--keylen must be 1..=1024");
            let key = wamp_router::auth::derive_cra_key(secret, salt, n, keylen);
            Ok(format!(
                "derived_key = \"{key}\"\nsalt = {}\niterations = {n}\nkeylen = {keylen}",
                toml_string(salt)
            ))
        }
    }
}

/// The TOML lines of a `[[realm.auth.scram]]` user's key material for `password`.
pub fn scram_form(
    password: &str,
    kdf: KdfArg,
    iterations: Option<u32>,
    memory: u32,
) -> anyhow::Result<String> {
    scram_form_in(DialectArg::Spec, password, kdf, iterations, memory)
}

/// [`scram_form`] for `dialect` (the Autobahn dialect with argon2id13 only).
pub fn scram_form_in(
    dialect: DialectArg,
    password: &str,
    kdf: KdfArg,
    iterations: Option<u32>,
    memory: u32,
) -> anyhow::Result<String> {
    let (kdf, iterations) = match kdf {
        KdfArg::Argon2id13 => (Kdf::Argon2id13 { memory }, iterations.unwrap_or(3)),
        KdfArg::Pbkdf2 => (Kdf::Pbkdf2, iterations.unwrap_or(100_000)),
    };
    let (dialect, dialect_line) = match dialect {
        DialectArg::Spec => (Dialect::Spec, ""),
        DialectArg::Autobahn => (Dialect::Autobahn, "dialect = \"autobahn\"\n"),
    };
    anyhow::ensure!(
        !(dialect == Dialect::Autobahn && kdf == Kdf::Pbkdf2),
        "--dialect autobahn needs --kdf argon2id13 (Autobahn|Python's pbkdf2 SCRAM does not work)"
    );
    let user =
        scram::new_user("", password, dialect, kdf, iterations).map_err(anyhow::Error::msg)?;
    let memory = match kdf {
        Kdf::Argon2id13 { memory } => format!("memory = {memory}\n"),
        Kdf::Pbkdf2 => String::new(),
    };
    Ok(format!(
        "{dialect_line}kdf = \"{}\"\niterations = {iterations}\n{memory}salt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"",
        kdf.name(),
        B64.encode(&user.salt),
        B64.encode(user.stored_key),
        B64.encode(user.server_key),
    ))
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn realm(body: &str) -> String {
        format!("[[realm]]\nname = \"r\"\n{body}")
    }

    fn error(body: &str) -> String {
        Config::from_toml(&realm(body))
            .expect_err("a mistake")
            .to_string()
    }

    #[test]
    fn roles_and_users_parse() {
        let hash = wamp_router::auth::hash_ticket("t", 1);
        let c = Config::from_toml(&realm(&format!(
            r#"
[[realm.role]]
name = "user"
[[realm.role.permission]]
uri = "com."
match = "prefix"
call = true
disclose_caller = true
[realm.auth.anonymous]
enabled = false
[[realm.auth.ticket]]
authid = "joe"
role = "user"
ticket_hash = "{hash}"
[[realm.auth.wampcra]]
authid = "peter"
role = "user"
secret = "s3cret"
"#
        )))
        .expect("parses");
        let auth = &c.router_config().realms[0].auth;
        assert_eq!(auth.anonymous, None);
        assert!(auth.offers("ticket") && auth.offers("wampcra") && !auth.offers("anonymous"));
        let role = auth.role("user").expect("authorization on");
        assert!(role.allows(wamp_router::auth::Action::Call, "com.x"));
        assert!(!role.allows(wamp_router::auth::Action::Publish, "com.x"));
        // An undeclared role may do nothing.
        let other = auth.role("other").expect("authorization on");
        assert!(!other.allows(wamp_router::auth::Action::Call, "com.x"));
        // Secrets stay out of Debug output.
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn default_is_anonymous_allowed_everything() {
        let c = Config::from_toml("").expect("parses");
        let auth = &c.router_config().realms[0].auth;
        assert_eq!(auth.anonymous.as_deref(), Some("anonymous"));
        assert!(auth.role("anonymous").is_none(), "no authorization");
    }

    #[test]
    fn mistakes_name_line_and_key() {
        let e = error(
            "[[realm.auth.ticket]]\nauthid = \"joe\"\nrole = \"r\"\nticket_hash = \"plain\"\n",
        );
        assert!(e.contains("line 6") && e.contains("ticket_hash"), "{e}");
        let e = error("[[realm.role]]\nname = \"a\"\n[[realm.auth.wampcra]]\nauthid = \"p\"\nrole = \"b\"\nsecret = \"x\"\n");
        assert!(e.contains("line 7") && e.contains("role 'b'"), "{e}");
        let e = error(
            "[[realm.auth.wampcra]]\nauthid = \"p\"\nrole = \"b\"\nsecret = \"x\"\nsalt = \"s\"\n",
        );
        assert!(e.contains("line 4") && e.contains("derived_key"), "{e}");
        let e = error("[[realm.role]]\nname = \"a\"\n[[realm.role.permission]]\nuri = \"a..b\"\nmatch = \"prefix\"\n");
        assert!(e.contains("line 6") && e.contains("a..b"), "{e}");
        let e = error("[[realm.role]]\nname = \"a\"\n[[realm.role.permission]]\nuri = \"a\"\nexecute = true\n");
        assert!(e.contains("line 7") && e.contains("execute"), "{e}");
        let e = error("[[realm.role]]\nname = \"a\"\n");
        assert!(e.contains("line 4") && e.contains("'anonymous'"), "{e}");
        let e = error("[realm.auth]\nkerberos = true\n");
        assert!(e.contains("kerberos"), "{e}");
        let e = error("[[realm.role]]\nname = \"a\"\n[[realm.role]]\nname = \"a\"\n");
        assert!(e.contains("line 6") && e.contains("twice"), "{e}");
        // A date without a time and offset is ambiguous.
        let e = error("[[realm.auth.wampcra]]\nauthid = \"p\"\nrole = \"anonymous\"\nsecret = \"x\"\nexpires = 2027-01-31\n");
        assert!(e.contains("line 7") && e.contains("expires"), "{e}");
    }

    #[test]
    fn hash_secret_args_debug_leaves_the_secret_out() {
        let args = super::HashSecretArgs {
            secret: Some("s3cret-value".into()),
            salt: Some("salt123".into()),
            iterations: None,
            keylen: 32,
            method: None,
            kdf: super::KdfArg::Pbkdf2,
            memory: 8,
            dialect: super::DialectArg::Spec,
        };
        let text = format!("{args:?}");
        assert!(
            text.contains("<redacted>") && text.contains("salt123"),
            "{text}"
        );
        assert!(!text.contains("s3cret-value"), "{text}");
    }

    #[test]
    fn hash_secret_forms() {
        let t = super::stored_form("x", None, Some(10), 32).expect("ticket");
        let hash = t
            .strip_prefix("ticket_hash = \"")
            .and_then(|s| s.strip_suffix('"'))
            .expect("form");
        assert!(wamp_router::auth::verify_ticket("x", hash));
        let c = super::stored_form("secret123", Some("salt123"), Some(1000), 32).expect("cra");
        assert!(
            c.contains("derived_key = \"Eu7CQLfR+/Ffb+275A4s9/6H/RGKYxM4s6IMrsNKzC8=\""),
            "{c}"
        );
        assert!(super::stored_form("x", Some("s"), Some(1), 0).is_err());
    }

    const PUBKEY: &str = "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d";

    #[test]
    fn cryptosign_and_scram_users() {
        let material =
            super::scram_form("pencil", super::KdfArg::Pbkdf2, Some(16), 0).expect("scram form");
        assert!(!material.contains("memory"), "{material}");
        let argon = super::scram_form("pencil", super::KdfArg::Argon2id13, Some(1), 64)
            .expect("scram form");
        assert!(
            argon.contains("memory = 64") && argon.contains("argon2id13"),
            "{argon}"
        );
        let c = Config::from_toml(&realm(&format!(
            r#"
[[realm.auth.cryptosign]]
authid = "dev"
role = "user"
pubkeys = ["{PUBKEY}"]
[[realm.auth.scram]]
authid = "mary"
role = "user"
{material}
[[realm.auth.scram]]
authid = "anne"
role = "user"
{argon}
"#
        )))
        .expect("parses");
        let auth = &c.router_config().realms[0].auth;
        assert!(auth.offers("cryptosign") && auth.offers("wamp-scram") && auth.offers("scram"));
        assert_eq!(auth.cryptosign["dev"].pubkeys.len(), 1);
        assert_eq!(auth.scram["mary"].iterations, 16);
        assert_eq!(
            auth.scram["anne"].kdf,
            wamp_router::auth::Kdf::Argon2id13 { memory: 64 }
        );
        let stored = material
            .lines()
            .find_map(|l| l.strip_prefix("stored_key = "))
            .expect("stored_key");
        assert!(!format!("{c:?}").contains(stored.trim_matches('"')));
    }

    #[test]
    fn cryptosign_and_scram_mistakes_name_line_and_key() {
        let cs = |keys: &str| {
            error(&format!(
                "[[realm.auth.cryptosign]]\nauthid = \"d\"\nrole = \"r\"\npubkeys = [{keys}]\n"
            ))
        };
        let e = cs("\"abc\"");
        assert!(
            e.contains("line 6") && e.contains("pubkeys") && e.contains("64 hex"),
            "{e}"
        );
        let e = cs("");
        assert!(e.contains("line 6") && e.contains("at least one"), "{e}");
        let e = cs(&format!("\"{PUBKEY}\", \"{PUBKEY}\""));
        assert!(e.contains("twice"), "{e}");
        let scram = |body: &str| {
            error(&format!(
                "[[realm.auth.scram]]\nauthid = \"m\"\nrole = \"r\"\n{body}"
            ))
        };
        let keys = "salt = \"AAAAAAAAAAA=\"\nstored_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\nserver_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n";
        let e = scram(&format!("kdf = \"md5\"\niterations = 1\n{keys}"));
        assert!(e.contains("line 6") && e.contains("md5"), "{e}");
        let e = scram(&format!("kdf = \"argon2id13\"\niterations = 1\n{keys}"));
        assert!(e.contains("line 6") && e.contains("memory"), "{e}");
        let e = scram(&format!("kdf = \"pbkdf2\"\niterations = 0\n{keys}"));
        assert!(e.contains("line 7") && e.contains("iterations"), "{e}");
        let e = scram(&format!(
            "kdf = \"pbkdf2\"\niterations = 1\n{}",
            keys.replace("stored_key = \"AAAA", "stored_key = \"")
        ));
        assert!(e.contains("line 9") && e.contains("stored_key"), "{e}");
        let e = scram("kdf = \"pbkdf2\"\niterations = 1\n");
        assert!(e.contains("salt"), "{e}");
        let e = scram(&format!(
            "dialect = \"crossbar\"\nkdf = \"pbkdf2\"\niterations = 1\n{keys}"
        ));
        assert!(e.contains("line 6") && e.contains("dialect"), "{e}");
        let e = scram(&format!(
            "dialect = \"autobahn\"\nkdf = \"pbkdf2\"\niterations = 1\n{keys}"
        ));
        assert!(
            e.contains("line 7") && e.contains("kdf") && e.contains("autobahn"),
            "{e}"
        );
    }

    #[test]
    fn autobahn_dialect_scram_users() {
        use super::{DialectArg, KdfArg};
        let form = super::scram_form_in(
            DialectArg::Autobahn,
            "pencil",
            KdfArg::Argon2id13,
            Some(1),
            64,
        )
        .expect("scram form");
        assert!(form.starts_with("dialect = \"autobahn\"\n"), "{form}");
        let e = super::scram_form_in(DialectArg::Autobahn, "pencil", KdfArg::Pbkdf2, Some(1), 64)
            .expect_err("pbkdf2 refused");
        assert!(e.to_string().contains("--kdf argon2id13"), "{e}");
        let c = Config::from_toml(&realm(&format!(
            "[[realm.auth.scram]]\nauthid = \"ab\"\nrole = \"user\"\n{form}\n"
        )))
        .expect("parses");
        let auth = &c.router_config().realms[0].auth;
        let user = &auth.scram["ab"];
        assert_eq!(user.dialect, wamp_router::auth::Dialect::Autobahn);
        // The stored keys are the Autobahn dialect's for this password.
        let salted = wamp_router::auth::scram::salted_password_in(
            user.dialect,
            "pencil",
            user.kdf,
            &user.salt,
            user.iterations,
        )
        .expect("kdf");
        assert_eq!(wamp_router::auth::scram::keys(&salted).1, user.stored_key);
    }
}
