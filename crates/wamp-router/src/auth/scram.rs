//! WAMP-SCRAM (SCRAM-SHA-256 as the WAMP spec adapts RFC 5802 / RFC 7677), without
//! channel binding.
//!
//! The router stores per user only the salt, the KDF parameters, `StoredKey` and
//! `ServerKey`; a leaked configuration does not let anyone log in. The method is
//! accepted under the spec's name `wamp-scram` and under `scram` (the name
//! Autobahn and Crossbar.io use); WELCOME names the method the client asked for.
//!
//! Each user has a [`Dialect`]. The spec's dialect runs for either name. The
//! Autobahn dialect is what Autobahn|Python's `AuthScram` speaks (method `scram`
//! only, Argon2 only): CHALLENGE kdf `argon2id-13` with no other keys than it
//! reads, the AuthMessage ends in `c=,r=<nonce>`, `SaltedPassword` is the ASCII
//! of the unpadded Base64 hash rather than the raw bytes (so its keys differ
//! from the spec's for the same password), and WELCOME carries the server
//! signature as `scram_server_signature`.
//!
//! Passwords are used as their UTF-8 bytes (no SASLprep normalisation).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wamp_proto::{Dict, Value};

use super::RealmAuth;

type HmacSha256 = Hmac<Sha256>;

/// Longest client nonce accepted, in characters.
const MAX_NONCE_LEN: usize = 256;

/// The key derivation function that turns a password into `SaltedPassword`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// Argon2id version 1.3, parallelism 1; `memory` in KiB (`"argon2id13"`).
    Argon2id13 {
        /// Memory cost in KiB.
        memory: u32,
    },
    /// PBKDF2-HMAC-SHA256 (`"pbkdf2"`).
    Pbkdf2,
}

impl Kdf {
    /// The name used in configuration and in CHALLENGE.
    pub fn name(self) -> &'static str {
        match self {
            Kdf::Argon2id13 { .. } => "argon2id13",
            Kdf::Pbkdf2 => "pbkdf2",
        }
    }
}

/// Which variant of the exchange a user speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// The WAMP spec's (`"spec"`).
    #[default]
    Spec,
    /// Autobahn|Python's `AuthScram` (`"autobahn"`), Argon2 only.
    Autobahn,
}

impl Dialect {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Spec => "spec",
            Dialect::Autobahn => "autobahn",
        }
    }

    /// The KDF's name in this dialect's CHALLENGE.
    fn kdf_name(self, kdf: Kdf) -> &'static str {
        match (self, kdf) {
            (Dialect::Autobahn, Kdf::Argon2id13 { .. }) => "argon2id-13",
            _ => kdf.name(),
        }
    }
}

/// A SCRAM user: salt, KDF parameters and the two derived keys. Its `Debug`
/// form leaves the keys out.
#[derive(Clone)]
pub struct ScramUser {
    /// The role the user gets.
    pub role: String,
    /// The variant of the exchange the keys were made for.
    pub dialect: Dialect,
    /// How the password was stretched.
    pub kdf: Kdf,
    /// KDF iterations (Argon2: time cost).
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `SHA256(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUser")
            .field("role", &self.role)
            .field("dialect", &self.dialect)
            .field("kdf", &self.kdf)
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// Checks KDF parameters (the argon2 crate's limits: salt at least 8 bytes,
/// memory at least 8 KiB).
pub fn check_params(kdf: Kdf, salt: &[u8], iterations: u32) -> Result<(), String> {
    if iterations == 0 {
        return Err("iterations must be at least 1".into());
    }
    if let Kdf::Argon2id13 { memory } = kdf {
        argon2::Params::new(memory, iterations, 1, Some(32))
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        if salt.len() < 8 {
            return Err("argon2 needs a salt of at least 8 bytes".into());
        }
    }
    Ok(())
}

/// `SaltedPassword = KDF(password, salt, iterations[, memory])`, 32 bytes.
pub fn salted_password(
    password: &str,
    kdf: Kdf,
    salt: &[u8],
    iterations: u32,
) -> Result<[u8; 32], String> {
    check_params(kdf, salt, iterations)?;
    let mut out = [0u8; 32];
    match kdf {
        Kdf::Pbkdf2 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
        }
        Kdf::Argon2id13 { memory } => {
            let params = argon2::Params::new(memory, iterations, 1, Some(32))
                .map_err(|e| format!("argon2 parameters: {e}"))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password.as_bytes(), salt, &mut out)
                .map_err(|e| format!("argon2: {e}"))?;
        }
    }
    Ok(out)
}

/// `SaltedPassword` in `dialect`: for the Autobahn dialect (Argon2 only) the
/// ASCII bytes of the unpadded Base64 form of the spec's 32 bytes.
pub fn salted_password_in(
    dialect: Dialect,
    password: &str,
    kdf: Kdf,
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, String> {
    let raw = salted_password(password, kdf, salt, iterations)?;
    match (dialect, kdf) {
        (Dialect::Spec, _) => Ok(raw.to_vec()),
        (Dialect::Autobahn, Kdf::Argon2id13 { .. }) => {
            Ok(base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(raw)
                .into_bytes())
        }
        (Dialect::Autobahn, Kdf::Pbkdf2) => {
            Err("the autobahn dialect works with kdf argon2id13 only".into())
        }
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `(ClientKey, StoredKey, ServerKey)` for a `SaltedPassword`.
pub fn keys(salted_password: &[u8]) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let client_key = hmac(salted_password, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(salted_password, b"Server Key");
    (client_key, stored_key, server_key)
}

/// A new user's stored form for `password` in `dialect`, with a random 16-byte salt.
pub fn new_user(
    role: &str,
    password: &str,
    dialect: Dialect,
    kdf: Kdf,
    iterations: u32,
) -> Result<ScramUser, String> {
    let salt: [u8; 16] = rand::random();
    let salted = salted_password_in(dialect, password, kdf, &salt, iterations)?;
    let (_, stored_key, server_key) = keys(&salted);
    Ok(ScramUser {
        role: role.to_owned(),
        dialect,
        kdf,
        iterations,
        salt: salt.to_vec(),
        stored_key,
        server_key,
    })
}

/// RFC 5802 `saslname`: `=` and `,` escaped.
fn saslname(authid: &str) -> String {
    authid.replace('=', "=3D").replace(',', "=2C")
}

/// The RFC 5802 AuthMessage without channel binding:
/// `n=<authid>,r=<client nonce>,r=<nonce>,s=<salt>,i=<iterations>,c=biws,r=<nonce>`.
pub fn auth_message(
    authid: &str,
    client_nonce: &str,
    nonce: &str,
    salt_b64: &str,
    iterations: u32,
) -> String {
    auth_message_in(
        Dialect::Spec,
        authid,
        client_nonce,
        nonce,
        salt_b64,
        iterations,
    )
}

/// The AuthMessage in `dialect`; Autobahn's has `c=,r=<nonce>` at the end and
/// the authid unescaped.
pub fn auth_message_in(
    dialect: Dialect,
    authid: &str,
    client_nonce: &str,
    nonce: &str,
    salt_b64: &str,
    iterations: u32,
) -> String {
    let (authid, binding) = match dialect {
        Dialect::Spec => (saslname(authid), "biws"),
        Dialect::Autobahn => (authid.to_owned(), ""),
    };
    format!(
        "n={authid},r={client_nonce},r={nonce},s={salt_b64},i={iterations},c={binding},r={nonce}"
    )
}

/// `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`.
pub fn client_proof(salted_password: &[u8], auth_message: &str) -> [u8; 32] {
    let (client_key, stored_key, _) = keys(salted_password);
    let signature = hmac(&stored_key, auth_message.as_bytes());
    std::array::from_fn(|i| client_key[i] ^ signature[i])
}

/// `ServerSignature = HMAC(ServerKey, AuthMessage)`.
pub fn server_signature(server_key: &[u8; 32], auth_message: &str) -> [u8; 32] {
    hmac(server_key, auth_message.as_bytes())
}

/// Whether `proof` is right for `stored_key` (constant-time).
pub fn verify_proof(stored_key: &[u8; 32], auth_message: &str, proof: &[u8]) -> bool {
    if proof.len() != 32 {
        return false;
    }
    let signature = hmac(stored_key, auth_message.as_bytes());
    let client_key: [u8; 32] = std::array::from_fn(|i| proof[i] ^ signature[i]);
    let computed: [u8; 32] = Sha256::digest(client_key).into();
    bool::from(computed.ct_eq(stored_key))
}

/// A SCRAM login in progress.
pub(crate) struct Pending {
    /// The method name the client used (`wamp-scram` or `scram`).
    pub method: &'static str,
    dialect: Dialect,
    role: Option<String>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
    nonce: String,
    auth_message: String,
}

/// The dialect, salt, KDF and iterations an unknown authid is shown: fixed per
/// authid and shaped like a configured user's, so CHALLENGEs do not tell which
/// authids exist. Method `scram` gets the Autobahn dialect when the realm has
/// users of it (Autobahn's client cannot read any other).
fn stand_in(auth: &RealmAuth, method: &str, authid: &str) -> (Dialect, Vec<u8>, Kdf, u32) {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let has_autobahn = auth.scram.values().any(|u| u.dialect == Dialect::Autobahn);
    let dialect = if method == "scram" && has_autobahn {
        Dialect::Autobahn
    } else {
        Dialect::Spec
    };
    let first = |only: Option<Dialect>| {
        auth.scram
            .iter()
            .filter(|(_, u)| only.is_none_or(|d| u.dialect == d))
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(_, u)| (u.kdf, u.iterations, u.salt.len()))
    };
    let template = first(Some(dialect)).or_else(|| first(None));
    let (kdf, iterations, salt_len) = template.unwrap_or((Kdf::Pbkdf2, 4096, 16));
    let mac = hmac(key, format!("scram\0{authid}").as_bytes());
    (
        dialect,
        mac[..salt_len.clamp(8, 32)].to_vec(),
        kdf,
        iterations,
    )
}

/// Starts a login for a HELLO (`method` as the client named it). `None` when the
/// HELLO cannot do SCRAM here: no authid, a missing or malformed nonce, or a
/// channel binding (not supported). The CHALLENGE extra comes with it.
pub(crate) fn start(
    auth: &RealmAuth,
    method: &'static str,
    authid: &str,
    authextra: Option<&Dict>,
) -> Option<(Pending, Dict)> {
    let authextra = authextra?;
    let client_nonce = authextra.get("nonce").and_then(Value::as_str)?;
    if client_nonce.is_empty()
        || client_nonce.len() > MAX_NONCE_LEN
        || B64.decode(client_nonce).is_err()
    {
        return None;
    }
    if !matches!(authextra.get("channel_binding"), None | Some(Value::Null)) {
        return None;
    }
    // An Autobahn-dialect user cannot log in with `wamp-scram`: treated as unknown.
    let user = auth
        .scram
        .get(authid)
        .filter(|u| u.dialect == Dialect::Spec || method == "scram");
    let (dialect, salt, kdf, iterations, stored_key, server_key, role) = match user {
        Some(u) => (
            u.dialect,
            u.salt.clone(),
            u.kdf,
            u.iterations,
            u.stored_key,
            u.server_key,
            Some(u.role.clone()),
        ),
        None => {
            let (dialect, salt, kdf, iterations) = stand_in(auth, method, authid);
            let random = || rand::random::<[u8; 32]>();
            (dialect, salt, kdf, iterations, random(), random(), None)
        }
    };
    let server_nonce: [u8; 16] = rand::random();
    let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
    let salt_b64 = B64.encode(&salt);
    let auth_message =
        auth_message_in(dialect, authid, client_nonce, &nonce, &salt_b64, iterations);
    let mut extra = Dict::new();
    extra.insert("nonce".into(), Value::from(nonce.as_str()));
    extra.insert("salt".into(), Value::from(salt_b64.as_str()));
    extra.insert("kdf".into(), Value::from(dialect.kdf_name(kdf)));
    extra.insert("iterations".into(), Value::from(u64::from(iterations)));
    // Autobahn's client rejects any key it does not know and reads a null as a value.
    match (kdf, dialect) {
        (Kdf::Argon2id13 { memory }, _) => {
            extra.insert("memory".into(), Value::from(u64::from(memory)));
        }
        (Kdf::Pbkdf2, Dialect::Spec) => {
            extra.insert("memory".into(), Value::Null);
        }
        (Kdf::Pbkdf2, Dialect::Autobahn) => {}
    }
    Some((
        Pending {
            method,
            dialect,
            role,
            stored_key,
            server_key,
            nonce,
            auth_message,
        },
        extra,
    ))
}

impl Pending {
    /// The role and the `WELCOME.Details.authextra` (`verifier`, in the Autobahn
    /// dialect `scram_server_signature`: the server signature), if the AUTHENTICATE (`signature` = Base64 ClientProof) is right.
    pub(crate) fn verify(&self, signature: &str, extra: &Dict) -> Option<(String, Dict)> {
        let nonce_ok = match extra.get("nonce") {
            None => true,
            Some(n) => n
                .as_str()
                .is_some_and(|n| bool::from(n.as_bytes().ct_eq(self.nonce.as_bytes()))),
        };
        let binding_ok = matches!(extra.get("channel_binding"), None | Some(Value::Null));
        let proof = B64.decode(signature.trim()).unwrap_or_default();
        let proof_ok = verify_proof(&self.stored_key, &self.auth_message, &proof);
        if !(nonce_ok && binding_ok && proof_ok) {
            return None;
        }
        let role = self.role.clone()?;
        let verifier = B64.encode(server_signature(&self.server_key, &self.auth_message));
        let key = match self.dialect {
            Dialect::Spec => "verifier",
            Dialect::Autobahn => "scram_server_signature",
        };
        let mut authextra = Dict::new();
        authextra.insert(key.into(), Value::from(verifier.as_str()));
        Some((role, authextra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3 (the WAMP spec's example): user "user", password "pencil".
    #[test]
    fn rfc7677_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        let salted = salted_password("pencil", Kdf::Pbkdf2, &salt, 4096).expect("kdf");
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let message = auth_message(
            "user",
            "rOprNGfwEbeRWgbNEkqO",
            nonce,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            4096,
        );
        let proof = client_proof(&salted, &message);
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let (_, stored_key, server_key) = keys(&salted);
        assert_eq!(
            B64.encode(server_signature(&server_key, &message)),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(verify_proof(&stored_key, &message, &proof));
        let mut wrong = proof;
        wrong[0] ^= 1;
        assert!(!verify_proof(&stored_key, &message, &wrong));
        assert!(!verify_proof(&stored_key, &message, &proof[..31]));
    }

    /// Argon2id v1.3 with parallelism 1, computed independently with
    /// argon2-cffi (`hash_secret_raw`); see `testdata/scram_argon2.txt`.
    #[test]
    fn argon2_vector() {
        let data = include_str!("testdata/scram_argon2.txt");
        let field = |name: &str| {
            data.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = ")))
                .unwrap_or_else(|| panic!("{name} in the vector file"))
        };
        let salt = B64.decode(field("salt")).expect("b64");
        let iterations: u32 = field("iterations").parse().expect("number");
        let memory: u32 = field("memory").parse().expect("number");
        let salted = salted_password(
            field("password"),
            Kdf::Argon2id13 { memory },
            &salt,
            iterations,
        )
        .expect("kdf");
        assert_eq!(B64.encode(salted), field("salted_password"));
        let (_, stored_key, server_key) = keys(&salted);
        assert_eq!(B64.encode(stored_key), field("stored_key"));
        assert_eq!(B64.encode(server_key), field("server_key"));
    }

    #[test]
    fn exchange_and_stand_ins() {
        let mut auth = RealmAuth::default();
        let user = new_user("user", "pencil", Dialect::Spec, Kdf::Pbkdf2, 16).expect("user");
        auth.scram.insert("joe".into(), user.clone());
        let hello = wamp_proto::dict! { "nonce" => "Y2xpZW50bm9uY2U=" };
        let (pending, extra) = start(&auth, "wamp-scram", "joe", Some(&hello)).expect("starts");
        let nonce = extra.get("nonce").and_then(Value::as_str).expect("nonce");
        assert!(nonce.starts_with("Y2xpZW50bm9uY2U="));
        assert_eq!(extra.get("kdf").and_then(Value::as_str), Some("pbkdf2"));
        assert_eq!(extra.get("memory"), Some(&Value::Null));
        let salt = B64
            .decode(extra.get("salt").and_then(Value::as_str).expect("salt"))
            .expect("b64");
        let salted = salted_password("pencil", Kdf::Pbkdf2, &salt, 16).expect("kdf");
        let message = auth_message("joe", "Y2xpZW50bm9uY2U=", nonce, &B64.encode(&salt), 16);
        let proof = B64.encode(client_proof(&salted, &message));
        let answer = wamp_proto::dict! { "nonce" => nonce, "channel_binding" => Value::Null };
        let (role, authextra) = pending.verify(&proof, &answer).expect("verifies");
        assert_eq!(role, "user");
        assert_eq!(
            authextra.get("verifier").and_then(Value::as_str),
            Some(
                B64.encode(server_signature(&user.server_key, &message))
                    .as_str()
            )
        );
        assert!(pending
            .verify(&proof, &wamp_proto::dict! { "nonce" => "other" })
            .is_none());
        assert!(pending.verify("bm9wZQ==", &Dict::new()).is_none());
        assert!(pending.verify("not base64", &Dict::new()).is_none());
        // Unknown authids get a stable stand-in salt; bad HELLOs are not started.
        let (_, a) = start(&auth, "scram", "nobody", Some(&hello)).expect("starts");
        let (_, b) = start(&auth, "scram", "nobody", Some(&hello)).expect("starts");
        assert_eq!(a.get("salt"), b.get("salt"));
        assert_eq!(a.get("kdf"), extra.get("kdf"));
        assert!(start(&auth, "scram", "joe", None).is_none());
        assert!(start(
            &auth,
            "scram",
            "joe",
            Some(&wamp_proto::dict! { "nonce" => "%%" })
        )
        .is_none());
        let bound = wamp_proto::dict! { "nonce" => "YWJj", "channel_binding" => "tls-unique" };
        assert!(start(&auth, "scram", "joe", Some(&bound)).is_none());
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
        assert!(!format!("{user:?}").contains(&B64.encode(user.stored_key)));
    }

    /// Autobahn|Python's own `AuthScram` computed this exchange; see
    /// `testdata/scram_autobahn.txt`.
    #[test]
    fn autobahn_vector() {
        let data = include_str!("testdata/scram_autobahn.txt");
        let field = |name: &str| {
            data.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = ")))
                .unwrap_or_else(|| panic!("{name} in the vector file"))
        };
        let salt = B64.decode(field("salt")).expect("b64");
        let iterations: u32 = field("iterations").parse().expect("number");
        let kdf = Kdf::Argon2id13 {
            memory: field("memory").parse().expect("number"),
        };
        let salted =
            salted_password_in(Dialect::Autobahn, field("password"), kdf, &salt, iterations)
                .expect("kdf");
        assert_eq!(salted, field("salted_password").as_bytes());
        let message = auth_message_in(
            Dialect::Autobahn,
            field("authid"),
            field("client_nonce"),
            field("nonce"),
            field("salt"),
            iterations,
        );
        assert_eq!(message, field("auth_message"));
        let (_, stored_key, server_key) = keys(&salted);
        assert_eq!(B64.encode(stored_key), field("stored_key"));
        assert_eq!(B64.encode(server_key), field("server_key"));
        let proof = B64.decode(field("client_proof")).expect("b64");
        assert!(verify_proof(&stored_key, &message, &proof));
        assert_eq!(
            B64.encode(server_signature(&server_key, &message)),
            field("server_signature")
        );
        // The spec's keys for the same password do not fit this dialect.
        let spec = salted_password_in(Dialect::Spec, field("password"), kdf, &salt, iterations)
            .expect("kdf");
        assert!(!verify_proof(&keys(&spec).1, &message, &proof));
        assert!(salted_password_in(Dialect::Autobahn, "pencil", Kdf::Pbkdf2, &salt, 1).is_err());
    }

    #[test]
    fn autobahn_dialect_exchange() {
        let mut auth = RealmAuth::default();
        let kdf = Kdf::Argon2id13 { memory: 64 };
        let user = new_user("user", "pencil", Dialect::Autobahn, kdf, 1).expect("user");
        auth.scram.insert("joe".into(), user.clone());
        auth.scram.insert(
            "anne".into(),
            new_user("user", "pencil", Dialect::Spec, Kdf::Pbkdf2, 16).expect("user"),
        );
        let hello = wamp_proto::dict! { "nonce" => "Y2xpZW50bm9uY2U=" };
        let (pending, extra) = start(&auth, "scram", "joe", Some(&hello)).expect("starts");
        let mut keys_sent: Vec<&str> = extra.keys().map(String::as_str).collect();
        keys_sent.sort_unstable();
        assert_eq!(keys_sent, ["iterations", "kdf", "memory", "nonce", "salt"]);
        assert_eq!(
            extra.get("kdf").and_then(Value::as_str),
            Some("argon2id-13")
        );
        assert_eq!(extra.get("memory").and_then(Value::as_u64), Some(64));
        let nonce = extra.get("nonce").and_then(Value::as_str).expect("nonce");
        let salt_b64 = extra.get("salt").and_then(Value::as_str).expect("salt");
        let salt = B64.decode(salt_b64).expect("b64");
        let salted = salted_password_in(Dialect::Autobahn, "pencil", kdf, &salt, 1).expect("kdf");
        let message = auth_message_in(
            Dialect::Autobahn,
            "joe",
            "Y2xpZW50bm9uY2U=",
            nonce,
            salt_b64,
            1,
        );
        assert!(message.ends_with(&format!(",c=,r={nonce}")));
        let proof = B64.encode(client_proof(&salted, &message));
        let (role, authextra) = pending.verify(&proof, &Dict::new()).expect("verifies");
        assert_eq!(role, "user");
        assert_eq!(
            authextra
                .get("scram_server_signature")
                .and_then(Value::as_str),
            Some(
                B64.encode(server_signature(&user.server_key, &message))
                    .as_str()
            )
        );
        assert!(!authextra.contains_key("verifier"));
        // The same proof against the spec's AuthMessage is wrong.
        let spec_message = auth_message("joe", "Y2xpZW50bm9uY2U=", nonce, salt_b64, 1);
        let wrong = B64.encode(client_proof(&salted, &spec_message));
        assert!(pending.verify(&wrong, &Dict::new()).is_none());
        // `wamp-scram` for an Autobahn-dialect user is a stand-in that never verifies.
        let (pending, extra) = start(&auth, "wamp-scram", "joe", Some(&hello)).expect("starts");
        assert_eq!(extra.get("kdf").and_then(Value::as_str), Some("pbkdf2"));
        let nonce = extra.get("nonce").and_then(Value::as_str).expect("nonce");
        let message = auth_message_in(
            Dialect::Autobahn,
            "joe",
            "Y2xpZW50bm9uY2U=",
            nonce,
            extra.get("salt").and_then(Value::as_str).expect("salt"),
            1,
        );
        let proof = B64.encode(client_proof(&salted, &message));
        assert!(pending.verify(&proof, &Dict::new()).is_none());
        // Unknown authids: `scram` looks like the Autobahn users, `wamp-scram` like the spec's.
        let (_, a) = start(&auth, "scram", "nobody", Some(&hello)).expect("starts");
        assert_eq!(a.get("kdf").and_then(Value::as_str), Some("argon2id-13"));
        assert_eq!(a.len(), 5);
        let (_, b) = start(&auth, "wamp-scram", "nobody", Some(&hello)).expect("starts");
        assert_eq!(b.get("kdf").and_then(Value::as_str), Some("pbkdf2"));
        // Spec users keep the spec's exchange under either name.
        let (_, c) = start(&auth, "scram", "anne", Some(&hello)).expect("starts");
        assert_eq!(c.get("kdf").and_then(Value::as_str), Some("pbkdf2"));
        assert_eq!(c.get("memory"), Some(&Value::Null));
    }
}
