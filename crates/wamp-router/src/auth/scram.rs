//! WAMP-SCRAM (SCRAM-SHA-256 as the WAMP spec adapts RFC 5802 / RFC 7677), without
//! channel binding.
//!
//! The router stores per user only the salt, the KDF parameters, `StoredKey` and
//! `ServerKey`; a leaked configuration does not let anyone log in. The method is
//! accepted under the spec's name `wamp-scram` and under `scram` (the name
//! Autobahn and Crossbar.io use); the exchange is the spec's either way, and
//! WELCOME names the method the client asked for.
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

/// A SCRAM user: salt, KDF parameters and the two derived keys. Its `Debug`
/// form leaves the keys out.
#[derive(Clone)]
pub struct ScramUser {
    /// The role the user gets.
    pub role: String,
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

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `(ClientKey, StoredKey, ServerKey)` for a `SaltedPassword`.
pub fn keys(salted_password: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let client_key = hmac(salted_password, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac(salted_password, b"Server Key");
    (client_key, stored_key, server_key)
}

/// A new user's stored form for `password`, with a random 16-byte salt.
pub fn new_user(
    role: &str,
    password: &str,
    kdf: Kdf,
    iterations: u32,
) -> Result<ScramUser, String> {
    let salt: [u8; 16] = rand::random();
    let (_, stored_key, server_key) = keys(&salted_password(password, kdf, &salt, iterations)?);
    Ok(ScramUser {
        role: role.to_owned(),
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
    format!(
        "n={},r={client_nonce},r={nonce},s={salt_b64},i={iterations},c=biws,r={nonce}",
        saslname(authid)
    )
}

/// `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`.
pub fn client_proof(salted_password: &[u8; 32], auth_message: &str) -> [u8; 32] {
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
    role: Option<String>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
    nonce: String,
    auth_message: String,
}

/// The salt, KDF and iterations an unknown authid is shown: fixed per authid and
/// shaped like a configured user's, so CHALLENGEs do not tell which authids exist.
fn stand_in(auth: &RealmAuth, authid: &str) -> (Vec<u8>, Kdf, u32) {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    let template = auth
        .scram
        .iter()
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, u)| (u.kdf, u.iterations, u.salt.len()));
    let (kdf, iterations, salt_len) = template.unwrap_or((Kdf::Pbkdf2, 4096, 16));
    let mac = hmac(key, format!("scram\0{authid}").as_bytes());
    (mac[..salt_len.clamp(8, 32)].to_vec(), kdf, iterations)
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
    let user = auth.scram.get(authid);
    let (salt, kdf, iterations, stored_key, server_key, role) = match user {
        Some(u) => (
            u.salt.clone(),
            u.kdf,
            u.iterations,
            u.stored_key,
            u.server_key,
            Some(u.role.clone()),
        ),
        None => {
            let (salt, kdf, iterations) = stand_in(auth, authid);
            (salt, kdf, iterations, rand::random(), rand::random(), None)
        }
    };
    let server_nonce: [u8; 16] = rand::random();
    let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
    let salt_b64 = B64.encode(&salt);
    let auth_message = auth_message(authid, client_nonce, &nonce, &salt_b64, iterations);
    let mut extra = Dict::new();
    extra.insert("nonce".into(), Value::from(nonce.as_str()));
    extra.insert("salt".into(), Value::from(salt_b64.as_str()));
    extra.insert("kdf".into(), Value::from(kdf.name()));
    extra.insert("iterations".into(), Value::from(u64::from(iterations)));
    extra.insert(
        "memory".into(),
        match kdf {
            Kdf::Argon2id13 { memory } => Value::from(u64::from(memory)),
            Kdf::Pbkdf2 => Value::Null,
        },
    );
    Some((
        Pending {
            method,
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
    /// The role and the `WELCOME.Details.authextra` (`verifier`: the server
    /// signature), if the AUTHENTICATE (`signature` = Base64 ClientProof) is right.
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
        let mut authextra = Dict::new();
        authextra.insert("verifier".into(), Value::from(verifier.as_str()));
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
        let user = new_user("user", "pencil", Kdf::Pbkdf2, 16).expect("user");
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
}
