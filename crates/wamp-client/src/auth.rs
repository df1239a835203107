//! Answers to the router's CHALLENGE: `ticket` and `wampcra` (plain and salted).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wamp_proto::{Dict, Value};

use crate::session::ConnectOptions;

/// Most PBKDF2 iterations a salted WAMP-CRA CHALLENGE may ask for.
const MAX_ITERATIONS: u64 = 10_000_000;
/// Largest derived key a salted WAMP-CRA CHALLENGE may ask for, in bytes.
const MAX_KEYLEN: u64 = 1024;

/// The AUTHENTICATE signature for a CHALLENGE, or why there is none.
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
    let mut mac =
        <Hmac<Sha256>>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(challenge.as_bytes());
    B64.encode(mac.finalize().into_bytes())
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
}
