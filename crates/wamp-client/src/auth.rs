//! Answers to the router's CHALLENGE: `ticket`, `wampcra` (plain and salted),
//! `cryptosign` (Ed25519, optionally bound to the TLS connection with
//! `tls-exporter`) and WAMP-SCRAM (`wamp-scram`, also under the name `scram`), and
//! the check of the router's SCRAM server signature in WELCOME.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use wamp_proto::{Dict, Value};

use crate::session::ConnectOptions;

/// Most PBKDF2 iterations a salted WAMP-CRA or SCRAM CHALLENGE may ask for.
const MAX_ITERATIONS: u64 = 10_000_000;
/// Largest derived key a salted WAMP-CRA CHALLENGE may ask for, in bytes.
const MAX_KEYLEN: u64 = 1024;
/// Most Argon2 passes a SCRAM CHALLENGE may ask for.
const MAX_ARGON2_ITERATIONS: u64 = 10_000;
/// Most Argon2 memory a SCRAM CHALLENGE may ask for, in KiB (1 GiB).
const MAX_ARGON2_MEMORY: u64 = 1 << 20;

type HmacSha256 = Hmac<Sha256>;

/// One join's authentication state: what went into HELLO and what WELCOME must
/// show (the SCRAM server signature).
pub(crate) struct Handshake<'a> {
    options: &'a ConnectOptions,
    /// Our SCRAM nonce (Base64), when SCRAM is offered.
    scram_nonce: Option<String>,
    /// The SCRAM server signature WELCOME must carry, once AUTHENTICATE is sent.
    scram_verifier: Option<[u8; 32]>,
    /// The `tls-exporter` value cryptosign binds to, when binding was asked for.
    channel_binding: Option<[u8; 32]>,
}

/// The cryptosign channel binding type this client supports (RFC 9266).
const TLS_EXPORTER: &str = "tls-exporter";

fn offers_scram(options: &ConnectOptions) -> bool {
    options.scram_password.is_some()
        && options
            .authmethods
            .iter()
            .any(|m| m == "wamp-scram" || m == "scram")
}

fn offers_cryptosign(options: &ConnectOptions) -> bool {
    options.cryptosign_key.is_some() && options.authmethods.iter().any(|m| m == "cryptosign")
}

impl<'a> Handshake<'a> {
    /// The state for one join over a connection with this `tls_exporter` value (a
    /// TLS 1.3 connection); fails when cryptosign should be bound to the
    /// connection and there is no value.
    pub(crate) fn new(
        options: &'a ConnectOptions,
        tls_exporter: Option<[u8; 32]>,
    ) -> Result<Self, String> {
        let scram_nonce = offers_scram(options).then(|| B64.encode(rand::random::<[u8; 16]>()));
        let channel_binding = if options.cryptosign_channel_binding && offers_cryptosign(options) {
            Some(tls_exporter.ok_or(
                "cryptosign channel binding needs a TLS 1.3 connection (wss:// or rss://)",
            )?)
        } else {
            None
        };
        Ok(Handshake {
            options,
            scram_nonce,
            scram_verifier: None,
            channel_binding,
        })
    }

    /// `HELLO.Details.authextra` entries the offered methods need: the cryptosign
    /// public key (and channel binding), the SCRAM nonce.
    pub(crate) fn authextra(&self) -> Dict {
        let mut extra = Dict::new();
        if let Some(nonce) = &self.scram_nonce {
            extra.insert("nonce".into(), Value::from(nonce.as_str()));
            extra.insert("channel_binding".into(), Value::Null);
        }
        if let Some(key) = &self.options.cryptosign_key {
            if offers_cryptosign(self.options) {
                let public = SigningKey::from_bytes(key.seed()).verifying_key();
                extra.insert("pubkey".into(), Value::from(to_hex(public.as_bytes())));
            }
        }
        // (One authextra serves every offered method: a bound cryptosign makes the
        // router skip SCRAM, which has no channel binding.)
        if self.channel_binding.is_some() {
            extra.insert("channel_binding".into(), Value::from(TLS_EXPORTER));
        }
        extra
    }

    /// The AUTHENTICATE signature and extra for a CHALLENGE, or why there is none.
    pub(crate) fn answer(&mut self, method: &str, extra: &Dict) -> Result<(String, Dict), String> {
        // A CHALLENGE for a method we did not offer would make us hand a credential
        // to a method the user did not choose (a ticket in clear, say).
        fn canonical(m: &str) -> &str {
            if m == "scram" {
                "wamp-scram"
            } else {
                m
            }
        }
        let offered = self
            .options
            .authmethods
            .iter()
            .any(|m| canonical(m) == canonical(method));
        if !offered {
            return Err(format!(
                "the router asks for {method:?} authentication, which was not offered"
            ));
        }
        match method {
            "cryptosign" => self.cryptosign(extra).map(|s| (s, Dict::new())),
            "wamp-scram" | "scram" => self.scram(extra),
            _ => answer(method, extra, self.options).map(|s| (s, Dict::new())),
        }
    }

    fn cryptosign(&self, extra: &Dict) -> Result<String, String> {
        let key = self.options.cryptosign_key.as_ref().ok_or_else(|| {
            "the router asks for cryptosign, and no private key was configured".to_owned()
        })?;
        let echoed = extra.get("channel_binding").unwrap_or(&Value::Null);
        match (&self.channel_binding, echoed) {
            (None, Value::Null) => {}
            (Some(_), Value::Str(name)) if name == TLS_EXPORTER => {}
            (Some(_), _) => {
                return Err(
                    "the router did not confirm the tls-exporter channel binding asked for".into(),
                )
            }
            (None, _) => {
                return Err(
                    "the router asks for a cryptosign channel binding, which was not asked for"
                        .into(),
                )
            }
        }
        let challenge = extra
            .get("challenge")
            .and_then(Value::as_str)
            .and_then(from_hex::<32>)
            .ok_or("cryptosign CHALLENGE without a 64-hex-character challenge")?;
        let message = bound_message(&challenge, self.channel_binding.as_ref());
        Ok(sign_challenge(key.seed(), &message))
    }

    fn scram(&mut self, extra: &Dict) -> Result<(String, Dict), String> {
        let password = self.options.scram_password.as_ref().ok_or_else(|| {
            "the router asks for WAMP-SCRAM, and no password was configured".to_owned()
        })?;
        let client_nonce = self
            .scram_nonce
            .as_deref()
            .ok_or("the router asks for WAMP-SCRAM, which was not offered")?;
        let nonce = extra
            .get("nonce")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with(client_nonce) && n.len() > client_nonce.len())
            .ok_or("SCRAM CHALLENGE nonce does not extend ours")?;
        let salt_b64 = extra
            .get("salt")
            .and_then(Value::as_str)
            .ok_or("SCRAM CHALLENGE without salt")?;
        let salt = B64
            .decode(salt_b64)
            .map_err(|_| "SCRAM salt is not Base64")?;
        let number = |k: &str| extra.get(k).and_then(Value::as_u64);
        let iterations = number("iterations").ok_or("SCRAM CHALLENGE without iterations")?;
        let kdf = match extra.get("kdf").and_then(Value::as_str) {
            Some("pbkdf2") if (1..=MAX_ITERATIONS).contains(&iterations) => ScramKdf::Pbkdf2,
            Some("argon2id13") if (1..=MAX_ARGON2_ITERATIONS).contains(&iterations) => {
                let memory = number("memory")
                    .filter(|m| (8..=MAX_ARGON2_MEMORY).contains(m))
                    .ok_or("SCRAM argon2 memory missing or out of range")?;
                ScramKdf::Argon2id13 {
                    memory: memory as u32,
                }
            }
            Some("pbkdf2" | "argon2id13") => return Err("SCRAM iterations out of range".into()),
            _ => return Err("SCRAM CHALLENGE names an unknown kdf".into()),
        };
        let authid = self.options.authid.as_deref().unwrap_or_default();
        let salted = scram_salted_password(password.expose(), kdf, &salt, iterations as u32)?;
        let message = scram_auth_message(authid, client_nonce, nonce, salt_b64, iterations);
        let (proof, verifier) = scram_proof(&salted, &message);
        self.scram_verifier = Some(verifier);
        let mut answer = Dict::new();
        answer.insert("nonce".into(), Value::from(nonce));
        answer.insert("channel_binding".into(), Value::Null);
        Ok((B64.encode(proof), answer))
    }

    /// Checks WELCOME: after SCRAM, `authextra.verifier` must be the server
    /// signature (proof that the router knows the user's keys).
    pub(crate) fn check_welcome(&self, details: &Dict) -> Result<(), String> {
        let Some(expected) = &self.scram_verifier else {
            // A WELCOME that claims SCRAM without the exchange proves nothing.
            let method = details.get("authmethod").and_then(Value::as_str);
            if self.scram_nonce.is_some() && matches!(method, Some("wamp-scram" | "scram")) {
                return Err("the router claims WAMP-SCRAM without running the exchange".into());
            }
            return Ok(());
        };
        let given = details
            .get("authextra")
            .and_then(Value::as_dict)
            .and_then(|e| e.get("verifier"))
            .and_then(Value::as_str)
            .and_then(|v| B64.decode(v.strip_prefix("v=").unwrap_or(v)).ok())
            .unwrap_or_default();
        if bool::from(given.as_slice().ct_eq(expected)) {
            Ok(())
        } else {
            Err("the router's SCRAM server signature is wrong or missing".into())
        }
    }
}

/// The AUTHENTICATE signature for a ticket or WAMP-CRA CHALLENGE, or why there is none.
pub(crate) fn answer(
    method: &str,
    extra: &Dict,
    options: &ConnectOptions,
) -> Result<String, String> {
    match method {
        "ticket" => options
            .ticket
            .as_ref()
            .map(|t| t.expose().to_owned())
            .ok_or_else(|| "the router asks for a ticket, and none was configured".to_owned()),
        "wampcra" => {
            let secret = options.wampcra_secret.as_ref().ok_or_else(|| {
                "the router asks for WAMP-CRA, and no secret was configured".to_owned()
            })?;
            let challenge = extra
                .get("challenge")
                .and_then(Value::as_str)
                .ok_or("WAMP-CRA CHALLENGE without a challenge string")?;
            let key = match extra.get("salt") {
                None => secret.expose().to_owned(),
                Some(salt) => {
                    let salt = salt.as_str().ok_or("WAMP-CRA salt is not a string")?;
                    let number = |k: &str| extra.get(k).and_then(Value::as_u64);
                    let iterations = number("iterations")
                        .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                        .ok_or("WAMP-CRA iterations missing or out of range")?;
                    let keylen = number("keylen")
                        .filter(|n| (1..=MAX_KEYLEN).contains(n))
                        .ok_or("WAMP-CRA keylen missing or out of range")?;
                    derive_key(secret.expose(), salt, iterations as u32, keylen as usize)
                }
            };
            Ok(sign(&key, challenge))
        }
        other => Err(format!(
            "the router asks for {other:?} authentication, which this client does not support"
        )),
    }
}

/// The salted WAMP-CRA key: `Base64(PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen))`.
pub fn derive_key(secret: &str, salt: &str, iterations: u32, keylen: usize) -> String {
    let mut out = vec![0u8; keylen];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt.as_bytes(), iterations, &mut out);
    B64.encode(out)
}

/// The WAMP-CRA signature: `Base64(HMAC-SHA256(key, challenge))`.
pub fn sign(key: &str, challenge: &str) -> String {
    B64.encode(hmac(key.as_bytes(), challenge.as_bytes()))
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The cryptosign AUTHENTICATE signature: hex of the Ed25519 signature over the
/// challenge, followed by the challenge (192 hex characters). With a channel
/// binding, `challenge` is the [`bound_message`].
pub fn sign_challenge(seed: &[u8; 32], challenge: &[u8; 32]) -> String {
    let signature = SigningKey::from_bytes(seed).sign(challenge);
    format!("{}{}", to_hex(&signature.to_bytes()), to_hex(challenge))
}

/// The message a cryptosign client signs: the challenge, or with a channel
/// binding `challenge XOR value`.
pub fn bound_message(challenge: &[u8; 32], binding: Option<&[u8; 32]>) -> [u8; 32] {
    match binding {
        None => *challenge,
        Some(value) => std::array::from_fn(|i| challenge[i] ^ value[i]),
    }
}

/// The Ed25519 public key (hex) of a private key seed.
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    to_hex(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

#[derive(Clone, Copy)]
enum ScramKdf {
    Argon2id13 { memory: u32 },
    Pbkdf2,
}

fn scram_salted_password(
    password: &str,
    kdf: ScramKdf,
    salt: &[u8],
    iterations: u32,
) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    match kdf {
        ScramKdf::Pbkdf2 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out)
        }
        ScramKdf::Argon2id13 { memory } => {
            let params = argon2::Params::new(memory, iterations, 1, Some(32))
                .map_err(|e| format!("SCRAM argon2 parameters: {e}"))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password.as_bytes(), salt, &mut out)
                .map_err(|e| format!("SCRAM argon2: {e}"))?;
        }
    }
    Ok(out)
}

fn scram_auth_message(
    authid: &str,
    client_nonce: &str,
    nonce: &str,
    salt_b64: &str,
    iterations: u64,
) -> String {
    let name = authid.replace('=', "=3D").replace(',', "=2C");
    format!("n={name},r={client_nonce},r={nonce},s={salt_b64},i={iterations},c=biws,r={nonce}")
}

/// `(ClientProof, ServerSignature)`.
fn scram_proof(salted: &[u8; 32], auth_message: &str) -> ([u8; 32], [u8; 32]) {
    let client_key = hmac(salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let client_signature = hmac(&stored_key, auth_message.as_bytes());
    let proof = std::array::from_fn(|i| client_key[i] ^ client_signature[i]);
    let server_key = hmac(salted, b"Server Key");
    (proof, hmac(&server_key, auth_message.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = r#"{"authid": "peter", "authrole": "user", "authmethod": "wampcra", "authprovider": "userdb", "session": 3251278072152162, "nonce": "LHRTC9zeOIrt_9U3", "timestamp": "2014-06-22T16:36:25.448Z"}"#;

    #[test]
    fn spec_vectors() {
        let plain = ConnectOptions::default().with_wampcra("peter", "secret123");
        let extra = wamp_proto::dict! { "challenge" => CHALLENGE };
        assert_eq!(
            answer("wampcra", &extra, &plain).expect("signs"),
            "mLWKnfRQQdwP/oGK03TtuRKqQ0uLgQ2hZGVNdt5OJQ4="
        );
        let salted = wamp_proto::dict! {
            "challenge" => CHALLENGE, "salt" => "salt123", "iterations" => 1000, "keylen" => 32,
        };
        assert_eq!(
            answer("wampcra", &salted, &plain).expect("signs"),
            "FJwFLqqCfQpANGH5pKRYaRrbRyFlse/lmbm3ruxNmDA="
        );
        let huge = wamp_proto::dict! {
            "challenge" => CHALLENGE, "salt" => "s", "iterations" => 1000, "keylen" => 1_000_000,
        };
        assert!(answer("wampcra", &huge, &plain).is_err());
        assert!(answer("cryptosign", &extra, &plain).is_err());
        assert!(!format!("{plain:?}").contains("secret123"));
    }

    #[test]
    fn cryptosign_spec_vector() {
        let seed = from_hex("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
            .expect("hex");
        let options = ConnectOptions::default().with_cryptosign(None::<String>, seed);
        assert_eq!(options.authid, None);
        let mut handshake = Handshake::new(&options, None).expect("handshake");
        assert_eq!(
            handshake.authextra().get("pubkey").and_then(Value::as_str),
            Some("1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d")
        );
        let challenge =
            wamp_proto::dict! { "challenge" => "ff".repeat(32), "channel_binding" => Value::Null };
        let (signature, _) = handshake.answer("cryptosign", &challenge).expect("signs");
        assert_eq!(
            signature,
            format!("b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03{}", "ff".repeat(32))
        );
        let bound =
            wamp_proto::dict! { "challenge" => "ff".repeat(32), "channel_binding" => "tls-unique" };
        assert!(handshake.answer("cryptosign", &bound).is_err());
        assert!(handshake
            .answer("cryptosign", &wamp_proto::dict! { "challenge" => "abc" })
            .is_err());
        assert!(!format!("{options:?}").contains("4d57d97a"));
    }

    #[test]
    fn challenges_for_methods_not_offered_are_refused() {
        let mut options = ConnectOptions::default().with_wampcra("peter", "secret123");
        options.ticket = Some(crate::Secret::new("t1cket"));
        let mut handshake = Handshake::new(&options, None).expect("handshake");
        let refused = handshake.answer("ticket", &Dict::new());
        assert!(refused.is_err_and(|e| !e.contains("t1cket")));
        let extra = wamp_proto::dict! { "challenge" => CHALLENGE };
        assert!(handshake.answer("wampcra", &extra).is_ok());
        // `scram` and `wamp-scram` are one method.
        let scram = ConnectOptions::default().with_scram("user", "pencil");
        let mut handshake = Handshake::new(&scram, None).expect("handshake");
        assert!(handshake
            .answer("scram", &Dict::new())
            .is_err_and(|e| !e.contains("not offered")));
        assert!(handshake.answer("wampcra", &extra).is_err());
    }

    /// The spec's channel-binding vector, with its channel_id as the tls-exporter
    /// value: HELLO asks for the binding, CHALLENGE must confirm it.
    #[test]
    fn cryptosign_channel_binding_vector() {
        let seed = from_hex("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
            .expect("hex");
        let exporter = from_hex("62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff")
            .expect("hex");
        let options = ConnectOptions::default()
            .with_cryptosign(None::<String>, seed)
            .with_channel_binding();
        // Without a TLS 1.3 exporter value there is no bound join.
        assert!(Handshake::new(&options, None).is_err());
        let mut handshake = Handshake::new(&options, Some(exporter)).expect("handshake");
        assert_eq!(
            handshake
                .authextra()
                .get("channel_binding")
                .and_then(Value::as_str),
            Some("tls-exporter")
        );
        let bound = wamp_proto::dict! {
            "challenge" => "ff".repeat(32), "channel_binding" => "tls-exporter",
        };
        let (signature, _) = handshake.answer("cryptosign", &bound).expect("signs");
        assert_eq!(
            signature,
            "9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3e80d49d44c29d1635da9348d02ec93f3ed1ef227dfb59a07b580095c2b82f80f\
             9d16ca518aa0c2b707f2b2a609edeca73bca8dd59817a633f35574ac6fd80d00"
        );
        // A CHALLENGE that drops or changes the binding is refused.
        for echoed in [Value::Null, Value::from("tls-unique")] {
            let challenge =
                wamp_proto::dict! { "challenge" => "ff".repeat(32), "channel_binding" => echoed };
            assert!(handshake.answer("cryptosign", &challenge).is_err());
        }
        assert!(handshake
            .answer(
                "cryptosign",
                &wamp_proto::dict! { "challenge" => "ff".repeat(32) }
            )
            .is_err());
        // Binding asked for without cryptosign offered: nothing to bind.
        let ticket = ConnectOptions::default()
            .with_ticket("joe", "t")
            .with_channel_binding();
        let handshake = Handshake::new(&ticket, None).expect("handshake");
        assert!(!handshake.authextra().contains_key("channel_binding"));
    }

    /// RFC 7677 §3, the WAMP spec's SCRAM example (pbkdf2, user/pencil).
    #[test]
    fn scram_rfc7677_vector() {
        let salted = scram_salted_password(
            "pencil",
            ScramKdf::Pbkdf2,
            &B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64"),
            4096,
        )
        .expect("kdf");
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let message = scram_auth_message(
            "user",
            "rOprNGfwEbeRWgbNEkqO",
            nonce,
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            4096,
        );
        let (proof, verifier) = scram_proof(&salted, &message);
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            B64.encode(verifier),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn scram_checks_the_challenge_and_the_welcome() {
        let options = ConnectOptions::default().with_scram("user", "pencil");
        let mut handshake = Handshake::new(&options, None).expect("handshake");
        let extra = handshake.authextra();
        let ours = extra
            .get("nonce")
            .and_then(Value::as_str)
            .expect("nonce")
            .to_owned();
        let challenge = |nonce: &str, kdf: &str, iterations: u64| {
            wamp_proto::dict! {
                "nonce" => nonce, "salt" => "W22ZaJ0SNY7soEsUEjb6gQ==", "kdf" => kdf,
                "iterations" => iterations, "memory" => 64,
            }
        };
        let theirs = format!("{ours}c2VydmVy");
        assert!(handshake
            .answer("wamp-scram", &challenge("someone-else", "pbkdf2", 16))
            .is_err());
        assert!(handshake
            .answer("wamp-scram", &challenge(&theirs, "md5", 16))
            .is_err());
        assert!(handshake
            .answer("wamp-scram", &challenge(&theirs, "argon2id13", 1_000_000))
            .is_err());
        let (proof, answer) = handshake
            .answer("wamp-scram", &challenge(&theirs, "argon2id13", 1))
            .expect("answers");
        assert_eq!(
            answer.get("nonce").and_then(Value::as_str),
            Some(theirs.as_str())
        );
        assert_eq!(B64.decode(proof).expect("b64").len(), 32);
        let expected = B64.encode(handshake.scram_verifier.expect("verifier"));
        let welcome =
            |v: &str| wamp_proto::dict! { "authextra" => wamp_proto::dict! { "verifier" => v } };
        assert!(handshake.check_welcome(&welcome(&expected)).is_ok());
        assert!(handshake
            .check_welcome(&welcome("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
            .is_err());
        assert!(handshake.check_welcome(&Dict::new()).is_err());
        assert!(!format!("{options:?}").contains("pencil"));
        // WELCOME straight after HELLO, claiming SCRAM: refused; another method: fine.
        let fresh = Handshake::new(&options, None).expect("handshake");
        let claims = |m: &str| wamp_proto::dict! { "authmethod" => m };
        assert!(fresh.check_welcome(&claims("wamp-scram")).is_err());
        assert!(fresh.check_welcome(&claims("scram")).is_err());
        assert!(fresh.check_welcome(&claims("anonymous")).is_ok());
    }
}
