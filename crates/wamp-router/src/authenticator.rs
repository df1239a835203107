//! Dynamic authentication: a procedure registered by a trusted component decides
//! who a client is, as Crossbar.io's dynamic authenticators do.
//!
//! The router calls `authenticate(realm, authid, details)` (see
//! [`authenticator_args`]): for `ticket` after AUTHENTICATE (`details.ticket` is
//! the ticket), for the other methods at HELLO; for challenge-response methods the
//! answer gives what to check against and the router then runs the method's
//! normal challenge. The answer is a role name, or a dict `{role, authid?,
//! extra?}` plus the method's credentials: `wampcra`: `secret`, optional `salt`,
//! `iterations`, `keylen`; `cryptosign`: `pubkey` (hex); `wamp-scram`: `kdf`,
//! `iterations`, `memory` (argon2id13), `salt` (Base64), `stored-key`,
//! `server-key` (Base64).
//!
//! Static configuration and dynamic answers both come down to a [`Principal`]: who
//! the session will be and, for challenge-response methods, what to check the
//! client's answer against ([`Credentials`]). Another method adds a `Credentials`
//! variant and a branch in [`principal_from_answer`].

use std::time::Duration;

use wamp_proto::{dict, Dict, Value};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::auth::cryptosign::parse_pubkey;
use crate::auth::scram::{check_params, Dialect, Kdf, ScramUser};
use crate::auth::{derive_cra_key, CraSalt, RealmAuth};
use crate::internal_call::Answer;

/// ABORT reason when authentication could not be carried out (no authenticator,
/// a broken one, a malformed answer).
pub const AUTHENTICATION_FAILED: &str = "wamp.error.authentication_failed";
/// ABORT reason when the authenticator gave a role the realm does not know.
pub const NO_SUCH_ROLE: &str = "wamp.error.no_such_role";

/// Default PBKDF2 parameters of salted WAMP-CRA (Autobahn's).
const CRA_DEFAULT_ITERATIONS: u32 = 1000;
/// Most PBKDF2 iterations an authenticator may ask for (salted WAMP-CRA): more is
/// refused as a malformed answer rather than keeping a thread busy for minutes.
pub const CRA_MAX_ITERATIONS: u32 = 10_000_000;
const CRA_DEFAULT_KEYLEN: u32 = 32;

/// `[realm.auth.dynamic]`: which methods a procedure decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicAuthenticator {
    /// The authenticator procedure.
    pub procedure: String,
    /// The realm it is registered on; `None`: the realm being joined.
    pub realm: Option<String>,
    /// The methods it decides (`anonymous`, `ticket`, `wampcra`, `cryptosign`,
    /// `wamp-scram`).
    pub methods: Vec<String>,
    /// How long it may take to answer.
    pub timeout: Duration,
    /// Only a callee in this role is asked (`None`: whoever registered it).
    pub callee_role: Option<String>,
}

/// What a challenge-response method checks the client's answer against.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Nothing (anonymous, or a ticket the authenticator checked itself).
    #[default]
    None,
    /// WAMP-CRA: the HMAC key (the secret, or the derived key when salted).
    Cra {
        /// The HMAC key.
        key: String,
        /// Salted CRA parameters, sent in CHALLENGE.Extra.
        salt: Option<CraSalt>,
    },
    /// WAMP-Cryptosign: the public key the client must sign with.
    Cryptosign {
        /// The Ed25519 public key.
        pubkey: [u8; 32],
    },
    /// WAMP-SCRAM: the user's salt, KDF parameters and keys (its role is the
    /// principal's).
    Scram(Box<ScramUser>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Cra { salt, .. } => f
                .debug_struct("Cra")
                .field("key", &"<redacted>")
                .field("salt", salt)
                .finish(),
            Credentials::Cryptosign { pubkey } => f
                .debug_struct("Cryptosign")
                .field("pubkey", &crate::auth::cryptosign::to_hex(pubkey))
                .finish(),
            Credentials::Scram(user) => f.debug_tuple("Scram").field(user).finish(),
        }
    }
}

/// Who a session will be, as static configuration or an authenticator said.
#[derive(Clone, Debug, Default)]
pub struct Principal {
    /// The session's authid.
    pub authid: String,
    /// The session's authrole.
    pub role: String,
    /// WELCOME.Details.authprovider: `static` or `dynamic`.
    pub provider: &'static str,
    /// WELCOME.Details.authextra (empty: left out).
    pub extra: Dict,
    /// What to verify the client's proof against.
    pub credentials: Credentials,
}

/// Why a dynamic authentication did not produce a principal: the ABORT to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// ABORT reason.
    pub uri: String,
    /// ABORT message.
    pub message: String,
}

impl Refusal {
    fn failed(message: impl Into<String>) -> Refusal {
        Refusal {
            uri: AUTHENTICATION_FAILED.into(),
            message: message.into(),
        }
    }
}

/// The arguments of the authenticator call: `(realm, authid, details)`.
/// `details` holds `session`, `authmethod`, `authid`, `authrole` (asked for in
/// HELLO), `authextra` (HELLO's), `transport` (see
/// [`TransportInfo::details`](crate::TransportInfo::details)), and for ticket
/// `ticket`.
pub fn authenticator_args(
    realm: &str,
    authid: &str,
    method: &str,
    session: u64,
    hello: &Dict,
    ticket: Option<&str>,
    transport: Dict,
) -> Vec<Value> {
    let mut details = dict! {
        "session" => session,
        "authmethod" => method,
        "authid" => authid,
        "transport" => transport,
    };
    for key in ["authrole", "authextra"] {
        if let Some(v) = hello.get(key) {
            details.insert(key.into(), v.clone());
        }
    }
    if let Some(ticket) = ticket {
        details.insert("ticket".into(), Value::from(ticket));
    }
    vec![
        Value::from(realm),
        Value::from(authid),
        Value::Dict(details),
    ]
}

/// Turns the authenticator's answer into a principal for `method`, or the ABORT
/// to send. `authid` is the one the client gave (the answer may replace it).
pub fn principal_from_answer(
    answer: Answer,
    method: &str,
    authid: &str,
    auth: &RealmAuth,
) -> Result<Principal, Refusal> {
    let payload = match answer {
        Answer::Result(payload) => payload,
        Answer::Error { uri, payload } => {
            let message = payload
                .args()
                .ok()
                .and_then(|a| a.first().and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(Refusal { uri, message });
        }
        other => {
            return Err(Refusal::failed(format!(
                "the authenticator could not be asked ({})",
                other.describe()
            )))
        }
    };
    let malformed = || Refusal::failed("the authenticator's answer is malformed");
    let first = payload
        .args()
        .map_err(|_| malformed())?
        .into_iter()
        .next()
        .ok_or_else(malformed)?;
    let mut principal = Principal {
        authid: authid.to_owned(),
        provider: "dynamic",
        ..Principal::default()
    };
    let fields = match first {
        Value::Str(role) => {
            principal.role = role;
            Dict::new()
        }
        Value::Dict(d) => d,
        _ => return Err(malformed()),
    };
    if !fields.is_empty() {
        principal.role = match fields.get("role").and_then(Value::as_str) {
            Some(role) => role.to_owned(),
            None => return Err(malformed()),
        };
        match fields.get("authid") {
            None | Some(Value::Null) => {}
            Some(Value::Str(a)) if !a.is_empty() => principal.authid = a.clone(),
            Some(_) => return Err(malformed()),
        }
        match fields.get("extra") {
            None | Some(Value::Null) => {}
            Some(Value::Dict(extra)) => principal.extra = extra.clone(),
            Some(_) => return Err(malformed()),
        }
    }
    if principal.role.is_empty() {
        return Err(malformed());
    }
    if auth
        .roles
        .as_ref()
        .is_some_and(|roles| !roles.contains_key(&principal.role))
    {
        return Err(Refusal {
            uri: NO_SUCH_ROLE.into(),
            message: format!("no role '{}' on this realm", principal.role),
        });
    }
    principal.credentials = match method {
        "wampcra" => cra_credentials(&fields),
        "cryptosign" => fields
            .get("pubkey")
            .and_then(Value::as_str)
            .and_then(|k| parse_pubkey(k).ok())
            .map(|pubkey| Credentials::Cryptosign { pubkey }),
        "wamp-scram" | "scram" => scram_credentials(&fields, &principal.role),
        _ => Some(Credentials::None),
    }
    .ok_or_else(malformed)?;
    Ok(principal)
}

/// `kdf`, `iterations`, `memory`, `salt`, `stored-key` and `server-key` of a
/// WAMP-SCRAM answer (`stored_key`/`server_key` are accepted too).
fn scram_credentials(fields: &Dict, role: &str) -> Option<Credentials> {
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let key = |name: &str| {
        let alt = name.replace('-', "_");
        let b = B64.decode(text(name).or_else(|| text(&alt))?).ok()?;
        <[u8; 32]>::try_from(b).ok()
    };
    let iterations = u32::try_from(fields.get("iterations")?.as_u64()?).ok()?;
    let kdf = match (text("kdf")?, fields.get("memory")) {
        ("argon2id13", Some(m)) => Kdf::Argon2id13 {
            memory: u32::try_from(m.as_u64()?).ok()?,
        },
        ("pbkdf2", None | Some(Value::Null)) => Kdf::Pbkdf2,
        _ => return None,
    };
    let salt = B64.decode(text("salt")?).ok().filter(|s| !s.is_empty())?;
    check_params(kdf, &salt, iterations).ok()?;
    Some(Credentials::Scram(Box::new(ScramUser {
        role: role.to_owned(),
        dialect: Dialect::Spec,
        kdf,
        iterations,
        salt,
        stored_key: key("stored-key")?,
        server_key: key("server-key")?,
    })))
}

/// `secret` and optional `salt`, `iterations`, `keylen` of a WAMP-CRA answer.
fn cra_credentials(fields: &Dict) -> Option<Credentials> {
    let secret = fields.get("secret")?.as_str()?;
    let number = |key: &str, default: u32| match fields.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()),
    };
    let salt = match fields.get("salt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str()?.to_owned()),
    };
    let Some(salt) = salt else {
        return Some(Credentials::Cra {
            key: secret.to_owned(),
            salt: None,
        });
    };
    let iterations = number("iterations", CRA_DEFAULT_ITERATIONS)
        .filter(|n| (1..=CRA_MAX_ITERATIONS).contains(n))?;
    let keylen = number("keylen", CRA_DEFAULT_KEYLEN).filter(|n| (1..=1024).contains(n))?;
    Some(Credentials::Cra {
        key: crate::blocking::run_blocking(|| derive_cra_key(secret, &salt, iterations, keylen)),
        salt: Some(CraSalt {
            salt,
            iterations,
            keylen,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use wamp_proto::Payload;

    use crate::auth::Role;

    fn realm_with_roles() -> RealmAuth {
        let mut roles = HashMap::new();
        roles.insert("user".to_owned(), Arc::new(Role::new("user", Vec::new())));
        RealmAuth {
            roles: Some(roles),
            ..RealmAuth::default()
        }
    }

    fn result(v: Value) -> Answer {
        Answer::Result(Payload::from_args(vec![v]))
    }

    #[test]
    fn answers() {
        let auth = realm_with_roles();
        let p = principal_from_answer(result(Value::from("user")), "ticket", "joe", &auth)
            .expect("role string");
        assert_eq!((p.authid.as_str(), p.role.as_str()), ("joe", "user"));
        let p = principal_from_answer(
            result(Value::Dict(dict! {
                "role" => "user", "authid" => "joseph", "extra" => Value::Dict(dict!{"a" => 1u64})
            })),
            "ticket",
            "joe",
            &auth,
        )
        .expect("dict");
        assert_eq!((p.authid.as_str(), p.extra.len()), ("joseph", 1));
        let no_role = principal_from_answer(result(Value::from("admin")), "ticket", "j", &auth);
        assert_eq!(no_role.map(|_| ()).expect_err("refused").uri, NO_SUCH_ROLE);
        for bad in [
            Value::from(42u64),
            Value::Dict(dict! {"authid" => "x"}),
            Value::Dict(dict! {"role" => "user", "extra" => "no"}),
        ] {
            let r = principal_from_answer(result(bad), "ticket", "j", &auth);
            assert_eq!(
                r.map(|_| ()).expect_err("refused").uri,
                AUTHENTICATION_FAILED
            );
        }
        let err = principal_from_answer(
            Answer::Error {
                uri: "wamp.error.not_authorized".into(),
                payload: Payload::from_args(vec![Value::from("go away")]),
            },
            "ticket",
            "j",
            &auth,
        )
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(
            (err.uri.as_str(), err.message.as_str()),
            ("wamp.error.not_authorized", "go away")
        );
        let timeout = principal_from_answer(Answer::Timeout, "ticket", "j", &auth);
        assert_eq!(
            timeout.map(|_| ()).expect_err("refused").uri,
            AUTHENTICATION_FAILED
        );
    }

    #[test]
    fn cra_answers() {
        let auth = realm_with_roles();
        let plain = principal_from_answer(
            result(Value::Dict(dict! {"role" => "user", "secret" => "s3"})),
            "wampcra",
            "peter",
            &auth,
        )
        .expect("plain");
        assert!(
            matches!(plain.credentials, Credentials::Cra { ref key, salt: None } if key == "s3")
        );
        let salted = principal_from_answer(
            result(Value::Dict(
                dict! {"role" => "user", "secret" => "secret123", "salt" => "salt123"},
            )),
            "wampcra",
            "peter",
            &auth,
        )
        .expect("salted");
        let Credentials::Cra { key, salt } = salted.credentials else {
            panic!("cra credentials");
        };
        assert_eq!(key, derive_cra_key("secret123", "salt123", 1000, 32));
        assert_eq!(salt.map(|s| s.keylen), Some(32));
        for iterations in [0, u64::from(CRA_MAX_ITERATIONS) + 1, u64::MAX] {
            let answer = dict! {
                "role" => "user", "secret" => "secret123", "salt" => "salt123",
                "iterations" => iterations,
            };
            let refused = principal_from_answer(result(Value::Dict(answer)), "wampcra", "p", &auth);
            assert_eq!(
                refused.map(|_| ()).expect_err("too many iterations").uri,
                AUTHENTICATION_FAILED,
                "{iterations}"
            );
        }
        let missing = principal_from_answer(result(Value::from("user")), "wampcra", "p", &auth);
        assert_eq!(
            missing.map(|_| ()).expect_err("refused").uri,
            AUTHENTICATION_FAILED
        );
    }
}
