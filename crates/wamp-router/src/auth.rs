//! Authentication (anonymous, ticket, WAMP-CRA plain and salted, and in
//! submodules WAMP-Cryptosign and WAMP-SCRAM) and authorization (roles with URI-pattern permissions).
//!
//! Secrets never appear in logs or error texts. Comparisons of secrets are
//! constant-time ([`subtle`]).
//!
//! Permission lookup, as Crossbar.io does it: an **exact** permission for the URI
//! wins; otherwise the **longest matching prefix**; otherwise a matching
//! **wildcard** permission (the one with the most literal components). No
//! matching permission denies. A role whose permissions are exactly "prefix `""`,
//! everything allowed" is compiled to `allow_all` and costs one branch per message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub mod cryptosign;
pub mod scram;

pub use cryptosign::CryptosignUser;
pub use scram::{Dialect, Kdf, ScramUser};

use crate::authenticator::DynamicAuthenticator;
use crate::authorizer::DynamicAuthorizer;

type HmacSha256 = Hmac<Sha256>;

/// The four actions a role may be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// CALL.
    Call,
    /// REGISTER.
    Register,
    /// PUBLISH.
    Publish,
    /// SUBSCRIBE.
    Subscribe,
}

/// How a permission's URI matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PermissionMatch {
    /// The URI itself.
    #[default]
    Exact,
    /// URIs starting with it.
    Prefix,
    /// Component-wise; empty components match any one component.
    Wildcard,
}

/// One permission of a role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permission {
    /// The URI or pattern.
    pub uri: String,
    /// How it matches.
    pub policy: PermissionMatch,
    /// CALL allowed.
    pub call: bool,
    /// REGISTER allowed.
    pub register: bool,
    /// PUBLISH allowed.
    pub publish: bool,
    /// SUBSCRIBE allowed.
    pub subscribe: bool,
    /// Callees see who calls (INVOCATION.Details.caller...).
    pub disclose_caller: bool,
    /// Subscribers see who publishes (EVENT.Details.publisher...).
    pub disclose_publisher: bool,
}

impl Permission {
    /// Everything allowed on every URI (prefix `""`).
    pub fn allow_all() -> Permission {
        Permission {
            uri: String::new(),
            policy: PermissionMatch::Prefix,
            call: true,
            register: true,
            publish: true,
            subscribe: true,
            disclose_caller: false,
            disclose_publisher: false,
        }
    }

    fn allows(&self, action: Action) -> bool {
        match action {
            Action::Call => self.call,
            Action::Register => self.register,
            Action::Publish => self.publish,
            Action::Subscribe => self.subscribe,
        }
    }
}

/// A role: a name and its permissions, compiled for lookup.
#[derive(Debug, Default)]
pub struct Role {
    /// The role's name (`authrole`).
    pub name: String,
    allow_all: bool,
    exact: HashMap<String, Permission>,
    /// Longest first.
    prefixes: Vec<Permission>,
    /// Most literal components first.
    wildcards: Vec<(Vec<String>, Permission)>,
    /// A procedure decides instead of permissions (only consulted when no
    /// permission allows: such roles have none).
    authorizer: Option<Arc<DynamicAuthorizer>>,
}

impl Role {
    /// Compiles a role.
    pub fn new(name: impl Into<String>, permissions: Vec<Permission>) -> Role {
        let mut role = Role {
            name: name.into(),
            ..Role::default()
        };
        role.allow_all = permissions.iter().any(|p| {
            p.policy == PermissionMatch::Prefix
                && p.uri.is_empty()
                && p.call
                && p.register
                && p.publish
                && p.subscribe
                && !p.disclose_caller
                && !p.disclose_publisher
        }) && permissions.len() == 1;
        for p in permissions {
            match p.policy {
                PermissionMatch::Exact => {
                    role.exact.insert(p.uri.clone(), p);
                }
                PermissionMatch::Prefix => role.prefixes.push(p),
                PermissionMatch::Wildcard => {
                    let parts = p.uri.split('.').map(str::to_owned).collect();
                    role.wildcards.push((parts, p));
                }
            }
        }
        role.prefixes
            .sort_by_key(|p| std::cmp::Reverse(p.uri.len()));
        role.wildcards.sort_by_key(|(parts, _)| {
            std::cmp::Reverse(parts.iter().filter(|c| !c.is_empty()).count())
        });
        role
    }

    /// A role allowed everything (the default `anonymous` role).
    pub fn allow_all(name: impl Into<String>) -> Role {
        Role::new(name, vec![Permission::allow_all()])
    }

    /// A role whose decisions `authorizer` makes.
    pub fn dynamic(name: impl Into<String>, authorizer: DynamicAuthorizer) -> Role {
        Role {
            name: name.into(),
            authorizer: Some(Arc::new(authorizer)),
            ..Role::default()
        }
    }

    /// The role's dynamic authorizer, if it has one.
    pub fn authorizer(&self) -> Option<&Arc<DynamicAuthorizer>> {
        self.authorizer.as_ref()
    }

    /// Whether this role allows everything without a lookup.
    pub fn is_allow_all(&self) -> bool {
        self.allow_all
    }

    /// The permission that applies to `uri`, if any.
    pub fn permission(&self, uri: &str) -> Option<&Permission> {
        if let Some(p) = self.exact.get(uri) {
            return Some(p);
        }
        if let Some(p) = self
            .prefixes
            .iter()
            .find(|p| uri.starts_with(p.uri.as_str()))
        {
            return Some(p);
        }
        self.wildcards
            .iter()
            .find(|(parts, _)| wildcard_matches(parts, uri))
            .map(|(_, p)| p)
    }

    /// Whether `action` on `uri` is allowed.
    pub fn allows(&self, action: Action, uri: &str) -> bool {
        self.allow_all || self.permission(uri).is_some_and(|p| p.allows(action))
    }
}

fn wildcard_matches(parts: &[String], uri: &str) -> bool {
    let mut n = 0;
    for (i, component) in uri.split('.').enumerate() {
        match parts.get(i) {
            Some(p) if p.is_empty() || p == component => n += 1,
            _ => return false,
        }
    }
    n == parts.len()
}

/// A ticket user: the ticket is stored as a PBKDF2 hash ([`hash_ticket`]).
#[derive(Clone, Debug)]
pub struct TicketUser {
    /// The role the user gets.
    pub role: String,
    /// `$pbkdf2-sha256$i=<iterations>$<salt b64>$<hash b64>`.
    pub ticket_hash: String,
}

/// A WAMP-CRA user (its `Debug` form leaves the key out). The router needs the HMAC key itself: the plain secret, or
/// for salted CRA the derived key (which is what a leaked config would expose, not
/// the password).
#[derive(Clone)]
pub struct CraUser {
    /// The role the user gets.
    pub role: String,
    /// The HMAC key: the secret (unsalted) or the Base64 derived key (salted).
    pub key: String,
    /// Salted CRA parameters, sent in CHALLENGE.Extra.
    pub salt: Option<CraSalt>,
}

impl std::fmt::Debug for CraUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CraUser")
            .field("role", &self.role)
            .field("key", &"<redacted>")
            .field("salt", &self.salt)
            .finish()
    }
}

/// Salted WAMP-CRA parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CraSalt {
    /// The salt string (used as UTF-8 bytes, not decoded).
    pub salt: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Derived key length in bytes.
    pub keylen: u32,
}

/// A realm's authentication and authorization setup.
#[derive(Clone, Debug)]
pub struct RealmAuth {
    /// Anonymous access and the role it gets; `None`: no anonymous access.
    pub anonymous: Option<String>,
    /// Ticket users by authid (the method is offered when non-empty).
    pub ticket: HashMap<String, TicketUser>,
    /// WAMP-CRA users by authid (the method is offered when non-empty).
    pub wampcra: HashMap<String, CraUser>,
    /// WAMP-Cryptosign users by authid (the method is offered when non-empty).
    pub cryptosign: HashMap<String, CryptosignUser>,
    /// WAMP-SCRAM users by authid (the method is offered when non-empty).
    pub scram: HashMap<String, ScramUser>,
    /// Roles by name. `None`: no authorization (everything allowed for everyone).
    pub roles: Option<HashMap<String, Arc<Role>>>,
    /// Methods a dynamic authenticator decides (they take precedence over the
    /// static users of the same method).
    pub dynamic: Option<DynamicAuthenticator>,
    /// TLS client-certificate principals: authid (certificate CN) → role (the
    /// method is offered when non-empty, on connections with a verified certificate).
    pub tls: HashMap<String, String>,
    /// When static logins stop working: (method, authid) → time. Methods are
    /// `ticket`, `wampcra`, `cryptosign`, `wamp-scram`, `tls`.
    pub expires: HashMap<(String, String), SystemTime>,
}

impl Default for RealmAuth {
    /// Anonymous access as role `anonymous`, no authorization: today's behaviour.
    fn default() -> Self {
        RealmAuth {
            anonymous: Some("anonymous".into()),
            ticket: HashMap::new(),
            wampcra: HashMap::new(),
            cryptosign: HashMap::new(),
            scram: HashMap::new(),
            roles: None,
            dynamic: None,
            tls: HashMap::new(),
            expires: HashMap::new(),
        }
    }
}

impl RealmAuth {
    /// The compiled role for `name`: `None` when no authorization is configured;
    /// a deny-all role when roles are configured but this one is not among them.
    pub fn role(&self, name: &str) -> Option<Arc<Role>> {
        let roles = self.roles.as_ref()?;
        Some(
            roles
                .get(name)
                .cloned()
                .unwrap_or_else(|| Arc::new(Role::new(name, Vec::new()))),
        )
    }

    /// Whether the static login of `authid` by `method` has expired at `now`.
    pub fn expired(&self, method: &str, authid: &str, now: SystemTime) -> bool {
        if self.expires.is_empty() {
            return false;
        }
        let method = if method == "scram" {
            "wamp-scram"
        } else {
            method
        };
        self.expires
            .get(&(method.to_owned(), authid.to_owned()))
            .is_some_and(|at| *at <= now)
    }

    /// Whether `method` is offered on this realm.
    pub fn offers(&self, method: &str) -> bool {
        if self.is_dynamic(method) {
            return true;
        }
        match method {
            "anonymous" => self.anonymous.is_some(),
            "ticket" => !self.ticket.is_empty(),
            "wampcra" => !self.wampcra.is_empty(),
            "cryptosign" => !self.cryptosign.is_empty(),
            "wamp-scram" | "scram" => !self.scram.is_empty(),
            "tls" => !self.tls.is_empty(),
            _ => false,
        }
    }

    /// Whether a HELLO with these `details` can use `method` here, over
    /// `transport`: the realm offers it and the HELLO has what it needs (an
    /// authid; for cryptosign a public key instead; for SCRAM a nonce), and asks
    /// for no channel binding, or (cryptosign) one this transport has.
    pub fn can_start(
        &self,
        method: &str,
        details: &wamp_proto::Dict,
        transport: &crate::TransportInfo,
    ) -> bool {
        use wamp_proto::Value;
        let authid = details
            .get("authid")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        let authextra = details.get("authextra").and_then(Value::as_dict);
        let extra_str = |key: &str| authextra.and_then(|e| e.get(key)).and_then(Value::as_str);
        // SCRAM: no channel binding is available; cryptosign: see `cryptosign`.
        let no_binding = authextra
            .and_then(|e| e.get("channel_binding"))
            .is_none_or(|b| *b == Value::Null);
        self.offers(method)
            && match method {
                "anonymous" => true,
                "cryptosign" => {
                    extra_str("pubkey").is_some_and(|k| cryptosign::from_hex::<32>(k).is_some())
                        && cryptosign::binding(authextra, transport).is_some()
                }
                "wamp-scram" | "scram" => {
                    authid.is_some() && extra_str("nonce").is_some() && no_binding
                }
                _ => authid.is_some(),
            }
    }
}

impl RealmAuth {
    /// Whether a dynamic authenticator decides `method` (`wamp-scram` covers
    /// Autobahn's name for it, `scram`, too).
    pub fn is_dynamic(&self, method: &str) -> bool {
        let method = if method == "scram" {
            "wamp-scram"
        } else {
            method
        };
        self.dynamic
            .as_ref()
            .is_some_and(|d| d.methods.iter().any(|m| m == method))
    }
}

impl RealmAuth {
    /// The WAMP-CRA role and salt to put in the CHALLENGE for `authid`. An unknown
    /// authid gets a stand-in, like a configured user's (a role of theirs, and a
    /// salt stable per authid when salted users exist), so the CHALLENGE does not
    /// tell which authids exist.
    pub(crate) fn cra_challenge_params(&self, authid: &str) -> (String, Option<CraSalt>) {
        if let Some(user) = self.wampcra.get(authid) {
            return (user.role.clone(), user.salt.clone());
        }
        let role = self
            .wampcra
            .values()
            .map(|u| u.role.as_str())
            .min()
            .unwrap_or_default()
            .to_owned();
        let salt = self.wampcra.values().find_map(|u| u.salt.clone()).map(|s| {
            static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
            let key = KEY.get_or_init(rand::random);
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(authid.as_bytes());
            let fake = B64.encode(mac.finalize().into_bytes());
            CraSalt {
                salt: fake
                    .chars()
                    .take(s.salt.chars().count().clamp(8, 40))
                    .collect(),
                ..s
            }
        });
        (role, salt)
    }
}

/// Reads an expiry time: an RFC 3339 date-time with offset, like
/// `2027-01-31T00:00:00Z`.
pub fn parse_expiry(text: &str) -> Result<SystemTime, String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            format!("'{text}' is not a date-time with offset, like 2027-01-31T00:00:00Z")
        })?;
    Ok(SystemTime::from(at))
}

/// Default PBKDF2 iterations for stored tickets.
pub const DEFAULT_TICKET_ITERATIONS: u32 = 100_000;

/// The stored form of a ticket: `$pbkdf2-sha256$i=<n>$<salt b64>$<hash b64>`.
pub fn hash_ticket(ticket: &str, iterations: u32) -> String {
    let salt: [u8; 16] = rand::random();
    hash_ticket_with_salt(ticket, &salt, iterations)
}

fn hash_ticket_with_salt(ticket: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(ticket.as_bytes(), salt, iterations, &mut out);
    format!(
        "$pbkdf2-sha256$i={iterations}${}${}",
        B64.encode(salt),
        B64.encode(out)
    )
}

/// Checks that `stored` is a well-formed ticket hash; the error names what is wrong.
pub fn check_ticket_hash(stored: &str) -> Result<(), String> {
    parse_ticket_hash(stored).map(|_| ())
}

fn parse_ticket_hash(stored: &str) -> Result<(u32, Vec<u8>, Vec<u8>), String> {
    let mut parts = stored.split('$');
    let (Some(""), Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(
            "expected $pbkdf2-sha256$i=<iterations>$<salt>$<hash> (see `junction hash-secret`)"
                .into(),
        );
    };
    let iterations: u32 = iter
        .strip_prefix("i=")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or("iterations must be i=<positive number>")?;
    let salt = B64.decode(salt).map_err(|_| "salt is not Base64")?;
    let hash = B64.decode(hash).map_err(|_| "hash is not Base64")?;
    if hash.len() != 32 {
        return Err("hash must be 32 bytes".into());
    }
    Ok((iterations, salt, hash))
}

/// Whether `ticket` matches the stored hash (constant-time comparison).
pub fn verify_ticket(ticket: &str, stored: &str) -> bool {
    let Ok((iterations, salt, hash)) = parse_ticket_hash(stored) else {
        return false;
    };
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(ticket.as_bytes(), &salt, iterations, &mut out);
    bool::from(out.as_slice().ct_eq(hash.as_slice()))
}

/// The salted WAMP-CRA key: `Base64(PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen))`.
pub fn derive_cra_key(secret: &str, salt: &str, iterations: u32, keylen: u32) -> String {
    let mut out = vec![0u8; keylen as usize];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt.as_bytes(), iterations, &mut out);
    B64.encode(out)
}

/// The WAMP-CRA signature: `Base64(HMAC-SHA256(key, challenge))`.
pub fn cra_sign(key: &str, challenge: &str) -> String {
    B64.encode(cra_mac(key, challenge))
}

fn cra_mac(key: &str, challenge: &str) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(challenge.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Whether `signature` (Base64) is the right one for `challenge` (constant-time).
pub fn cra_verify(key: &str, challenge: &str, signature: &str) -> bool {
    let Ok(given) = B64.decode(signature.trim()) else {
        return false;
    };
    let expected = cra_mac(key, challenge);
    bool::from(expected.as_slice().ct_eq(given.as_slice()))
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The WAMP-CRA challenge string, formatted as Autobahn/Crossbar do.
pub(crate) fn cra_challenge(authid: &str, authrole: &str, session: u64) -> String {
    let nonce: [u8; 24] = rand::random();
    let now = time::OffsetDateTime::now_utc();
    let timestamp = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
    format!(
        "{{\"authid\": {}, \"authrole\": {}, \"authmethod\": \"wampcra\", \"authprovider\": \"static\", \"nonce\": {}, \"timestamp\": {}, \"session\": {}}}",
        json_string(authid),
        json_string(authrole),
        json_string(&B64.encode(nonce)),
        json_string(&timestamp),
        session
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = r#"{"authid": "peter", "authrole": "user", "authmethod": "wampcra", "authprovider": "userdb", "session": 3251278072152162, "nonce": "LHRTC9zeOIrt_9U3", "timestamp": "2014-06-22T16:36:25.448Z"}"#;

    #[test]
    fn cra_spec_vectors() {
        assert_eq!(
            cra_sign("secret123", CHALLENGE),
            "mLWKnfRQQdwP/oGK03TtuRKqQ0uLgQ2hZGVNdt5OJQ4="
        );
        let key = derive_cra_key("secret123", "salt123", 1000, 32);
        assert_eq!(key, "Eu7CQLfR+/Ffb+275A4s9/6H/RGKYxM4s6IMrsNKzC8=");
        assert_eq!(
            cra_sign(&key, CHALLENGE),
            "FJwFLqqCfQpANGH5pKRYaRrbRyFlse/lmbm3ruxNmDA="
        );
        assert!(cra_verify(
            &key,
            CHALLENGE,
            "FJwFLqqCfQpANGH5pKRYaRrbRyFlse/lmbm3ruxNmDA="
        ));
        assert!(!cra_verify(
            &key,
            CHALLENGE,
            "mLWKnfRQQdwP/oGK03TtuRKqQ0uLgQ2hZGVNdt5OJQ4="
        ));
        assert!(!cra_verify(&key, CHALLENGE, "not base64!"));
    }

    #[test]
    fn ticket_hash_round_trip() {
        let stored = hash_ticket("s3cret", 1000);
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000$"));
        assert!(check_ticket_hash(&stored).is_ok());
        assert!(verify_ticket("s3cret", &stored));
        assert!(!verify_ticket("s3cret ", &stored));
        assert!(!verify_ticket("s3cret", "garbage"));
        assert!(check_ticket_hash("$pbkdf2-sha256$i=0$AA==$AA==").is_err());
    }

    #[test]
    fn unknown_cra_authids_look_like_known_ones() {
        let mut auth = RealmAuth::default();
        let salt = CraSalt {
            salt: "salt123salt".into(),
            iterations: 1000,
            keylen: 32,
        };
        auth.wampcra.insert(
            "paul".into(),
            CraUser {
                role: "user".into(),
                key: "k".into(),
                salt: Some(salt.clone()),
            },
        );
        assert_eq!(
            auth.cra_challenge_params("paul"),
            ("user".into(), Some(salt))
        );
        let (role, fake) = auth.cra_challenge_params("nobody");
        let fake = fake.expect("salted");
        assert_eq!(role, "user");
        assert_eq!(
            (fake.iterations, fake.keylen, fake.salt.len()),
            (1000, 32, 11)
        );
        assert_eq!(auth.cra_challenge_params("nobody").1, Some(fake), "stable");
    }

    #[test]
    fn challenge_is_json_with_session() {
        let c = cra_challenge("pe\"ter", "user", 42);
        assert!(c.contains(r#""authid": "pe\"ter""#));
        assert!(c.ends_with(r#""session": 42}"#));
    }

    fn perm(uri: &str, policy: PermissionMatch, actions: &str) -> Permission {
        Permission {
            uri: uri.into(),
            policy,
            call: actions.contains('c'),
            register: actions.contains('r'),
            publish: actions.contains('p'),
            subscribe: actions.contains('s'),
            ..Permission::default()
        }
    }

    #[test]
    fn authorization_table() {
        use Action::*;
        use PermissionMatch::*;
        let backend = Role::new(
            "backend",
            vec![
                perm("com.example.", Prefix, "crps"),
                perm("com.example.admin.", Prefix, ""),
                perm("com.example.admin.status", Exact, "c"),
                perm("com..public", Wildcard, "s"),
            ],
        );
        let frontend = Role::new(
            "frontend",
            vec![
                perm("com.example.api.", Prefix, "c"),
                perm("com.example.news", Exact, "s"),
                perm("com..events", Wildcard, "s"),
                perm("com.example..events", Wildcard, ""),
            ],
        );
        let everyone = Role::allow_all("anonymous");
        let none = Role::new("none", vec![]);
        assert!(everyone.is_allow_all() && !backend.is_allow_all());
        let table: &[(&Role, Action, &str, bool)] = &[
            (&backend, Call, "com.example.add", true),
            (&backend, Register, "com.example.add", true),
            (&backend, Call, "com.example.admin.kill", false), // longer prefix wins
            (&backend, Call, "com.example.admin.status", true), // exact wins
            (&backend, Register, "com.example.admin.status", false),
            (&backend, Subscribe, "com.other.public", true), // wildcard only
            (&backend, Publish, "com.other.public", false),
            (&backend, Subscribe, "com.example.public", true), // prefix beats wildcard
            (&backend, Call, "org.example.add", false),
            (&frontend, Call, "com.example.api.get", true),
            (&frontend, Register, "com.example.api.get", false),
            (&frontend, Subscribe, "com.example.news", true),
            (&frontend, Subscribe, "com.example.newsflash", false), // exact is exact
            (&frontend, Subscribe, "com.foo.events", true),
            (&frontend, Subscribe, "com.example.x.events", false), // more literal wildcard wins
            (&frontend, Subscribe, "com.foo.bar.events", false),   // wildcard counts components
            (&everyone, Register, "anything.at.all", true),
            (&none, Call, "com.example.add", false),
        ];
        for (role, action, uri, allowed) in table {
            assert_eq!(
                role.allows(*action, uri),
                *allowed,
                "{} {action:?} {uri}",
                role.name
            );
        }
    }
}
