//! WAMP-Cryptosign: the client proves it holds the Ed25519 key of a configured
//! public key by signing a 32-byte random challenge.
//!
//! AUTHENTICATE carries `hex(signature ‖ message)` (the NaCl "signed message"
//! layout, 192 hex characters), where the message must be the challenge itself,
//! or with TLS channel binding `challenge XOR channel binding value`.
//!
//! Channel binding (`authextra.channel_binding`): `"tls-exporter"` (RFC 9266) is
//! supported on TLS 1.3 connections; CHALLENGE then echoes it, and the value is
//! the transport's 32-byte exporter. Anything else (`"tls-unique"`, which TLS 1.3
//! does not have; an unknown name; `"tls-exporter"` without TLS 1.3) makes
//! cryptosign unusable for that HELLO: the method is skipped like one the realm
//! does not offer. Going on without the binding (which the spec allows) would not
//! help: Autobahn signs `challenge XOR channel_id` whenever it asked for a
//! binding, whatever the CHALLENGE says, so it would fail later with a less clear
//! error. Without a binding, CHALLENGE carries `channel_binding: null`.

use ed25519_dalek::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;
use wamp_proto::{dict, Dict, Value};

use super::RealmAuth;
use crate::transport::{TlsExporter, TransportInfo};

/// The channel binding type Junction supports (RFC 9266).
pub const TLS_EXPORTER: &str = "tls-exporter";

/// A cryptosign user (public keys are not secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptosignUser {
    /// The role the user gets.
    pub role: String,
    /// The Ed25519 public keys the user may log in with.
    pub pubkeys: Vec<[u8; 32]>,
}

/// A cryptosign login in progress: what the CHALLENGE asked for.
pub(crate) struct Pending {
    /// The authid the session will get (given, or found by public key).
    pub authid: String,
    /// The user's role; `None` when no user has this authid and key (fails later).
    role: Option<String>,
    pubkey: [u8; 32],
    challenge: [u8; 32],
    /// The channel binding value the signed message includes, if one was asked for.
    binding: Option<TlsExporter>,
}

/// The channel binding a HELLO's `authextra` asks for, on this transport:
/// `Some(None)` for none, `Some(Some(value))` for `tls-exporter` on a TLS 1.3
/// connection, `None` when cryptosign cannot be used (any other binding, or
/// `tls-exporter` without its value).
pub(crate) fn binding(
    authextra: Option<&Dict>,
    transport: &TransportInfo,
) -> Option<Option<TlsExporter>> {
    match authextra.and_then(|e| e.get("channel_binding")) {
        None | Some(Value::Null) => Some(None),
        Some(Value::Str(name)) if name.as_str() == TLS_EXPORTER => {
            transport.channel_binding.map(Some)
        }
        Some(_) => None,
    }
}

/// The message a cryptosign client signs: the challenge, or with a channel
/// binding `challenge XOR value`.
pub fn signed_message(challenge: &[u8; 32], binding: Option<&[u8; 32]>) -> [u8; 32] {
    match binding {
        None => *challenge,
        Some(value) => std::array::from_fn(|i| challenge[i] ^ value[i]),
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Decodes hex (either case) of exactly `N` bytes.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Checks a configured public key: 64 hex characters of a valid Ed25519 point.
pub fn parse_pubkey(text: &str) -> Result<[u8; 32], String> {
    let key = from_hex::<32>(text).ok_or("expected 64 hex characters")?;
    VerifyingKey::from_bytes(&key).map_err(|_| "not a valid Ed25519 public key")?;
    Ok(key)
}

impl RealmAuth {
    /// The user with `authid` (or, without one, the user owning `pubkey`) whose
    /// keys include `pubkey`: `(authid, role)`.
    fn cryptosign_user(&self, authid: Option<&str>, pubkey: &[u8; 32]) -> Option<(String, String)> {
        let has_key = |u: &CryptosignUser| u.pubkeys.iter().any(|k| k == pubkey);
        match authid {
            Some(id) => self
                .cryptosign
                .get(id)
                .filter(|u| has_key(u))
                .map(|u| (id.to_owned(), u.role.clone())),
            None => self
                .cryptosign
                .iter()
                .find(|(_, u)| has_key(u))
                .map(|(id, u)| (id.clone(), u.role.clone())),
        }
    }
}

/// Starts a login for a HELLO's `authid` and `authextra.pubkey` (hex), with the
/// channel binding value from [`binding`]; `None` when the pubkey is missing or
/// malformed (the method is then not usable). An unknown authid or key still gets
/// a challenge, and fails at AUTHENTICATE.
pub(crate) fn start(
    auth: &RealmAuth,
    authid: Option<&str>,
    pubkey: &str,
    binding: Option<TlsExporter>,
) -> Option<Pending> {
    let pubkey = from_hex::<32>(pubkey)?;
    let authid = authid.filter(|a| !a.is_empty());
    let user = auth.cryptosign_user(authid, &pubkey);
    let authid = match (&user, authid) {
        (Some((id, _)), _) => id.clone(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => to_hex(&pubkey),
    };
    Some(Pending {
        authid,
        role: user.map(|(_, role)| role),
        pubkey,
        challenge: rand::random(),
        binding,
    })
}

impl Pending {
    /// The CHALLENGE's `challenge` value: 64 hex characters.
    pub(crate) fn challenge_hex(&self) -> String {
        to_hex(&self.challenge)
    }

    /// `CHALLENGE.Extra`: the challenge, and the channel binding in use (or null).
    pub(crate) fn challenge_extra(&self) -> Dict {
        let binding = match self.binding {
            Some(_) => Value::from(TLS_EXPORTER),
            None => Value::Null,
        };
        dict! {
            "challenge" => self.challenge_hex().as_str(),
            "channel_binding" => binding,
        }
    }

    /// The role, if `signature` (hex of signature ‖ message) is right.
    pub(crate) fn verify(&self, signature: &str) -> Option<String> {
        let message = signed_message(&self.challenge, self.binding.as_ref().map(|b| &b.0));
        let ok = verify_signed_challenge(&self.pubkey, &message, signature);
        self.role.clone().filter(|_| ok)
    }
}

/// Whether `signed` (hex of the 64-byte signature followed by the 32-byte
/// message) is `pubkey`'s signature over `challenge` (the expected message).
pub fn verify_signed_challenge(pubkey: &[u8; 32], challenge: &[u8; 32], signed: &str) -> bool {
    let Some(bytes) = from_hex::<96>(signed.trim()) else {
        return false;
    };
    let (sig, message) = bytes.split_at(64);
    if !bool::from(message.ct_eq(challenge)) {
        return false;
    }
    let Ok(key) = VerifyingKey::from_bytes(pubkey) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(sig) else {
        return false;
    };
    key.verify_strict(challenge, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn ff() -> [u8; 32] {
        [0xff; 32]
    }

    #[test]
    fn spec_vector() {
        // From the WAMP spec's cryptosign test vectors.
        let seed =
            from_hex::<32>("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
                .expect("hex");
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        assert_eq!(
            to_hex(&public),
            "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d"
        );
        let expected_sig = "b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03";
        assert_eq!(to_hex(&key.sign(&ff()).to_bytes()), expected_sig);
        let signed = format!("{expected_sig}{}", to_hex(&ff()));
        assert!(verify_signed_challenge(&public, &ff(), &signed));
        assert!(verify_signed_challenge(
            &public,
            &ff(),
            &signed.to_uppercase()
        ));
        // Another challenge, a flipped bit, a short or non-hex answer: refused.
        assert!(!verify_signed_challenge(&public, &[0xfe; 32], &signed));
        let mut flipped = signed.clone().into_bytes();
        flipped[0] = if flipped[0] == b'b' { b'c' } else { b'b' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert!(!verify_signed_challenge(&public, &ff(), &flipped));
        assert!(!verify_signed_challenge(&public, &ff(), &signed[..128]));
        assert!(!verify_signed_challenge(&public, &ff(), &"zz".repeat(96)));
        let other = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        assert!(!verify_signed_challenge(&other, &ff(), &signed));
    }

    #[test]
    fn spec_channel_binding_vector() {
        // The WAMP spec's vector with a channel binding value (there: the SHA-256
        // of tls-unique; here the tls-exporter value takes its place).
        let seed =
            from_hex::<32>("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
                .expect("hex");
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        let channel =
            from_hex::<32>("62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff")
                .expect("hex");
        let message = signed_message(&ff(), Some(&channel));
        assert_eq!(
            to_hex(&message),
            "9d16ca518aa0c2b707f2b2a609edeca73bca8dd59817a633f35574ac6fd80d00"
        );
        let expected_sig = "9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3e80d49d44c29d1635da9348d02ec93f3ed1ef227dfb59a07b580095c2b82f80f";
        assert_eq!(to_hex(&key.sign(&message).to_bytes()), expected_sig);
        let signed = format!("{expected_sig}{}", to_hex(&message));
        assert!(verify_signed_challenge(&public, &message, &signed));
        // The same signature does not pass for the plain challenge, nor for
        // another binding value.
        assert!(!verify_signed_challenge(&public, &ff(), &signed));
        let other = signed_message(&ff(), Some(&[0x62; 32]));
        assert!(!verify_signed_challenge(&public, &other, &signed));
        assert_eq!(signed_message(&ff(), None), ff());
    }

    #[test]
    fn bound_logins() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let public = key.verifying_key().to_bytes();
        let mut auth = RealmAuth::default();
        auth.cryptosign.insert(
            "alice".into(),
            CryptosignUser {
                role: "user".into(),
                pubkeys: vec![public],
            },
        );
        let exporter = TlsExporter([0x5a; 32]);
        let tls = TransportInfo {
            tls: true,
            channel_binding: Some(exporter),
            ..TransportInfo::default()
        };
        let plain = TransportInfo::default();
        let asks =
            |binding: Value| dict! { "pubkey" => to_hex(&public), "channel_binding" => binding };
        let exporter_hello = asks(Value::from(TLS_EXPORTER));
        assert_eq!(binding(Some(&exporter_hello), &tls), Some(Some(exporter)));
        assert_eq!(binding(Some(&exporter_hello), &plain), None);
        assert_eq!(binding(Some(&asks(Value::Null)), &plain), Some(None));
        assert_eq!(binding(None, &tls), Some(None));
        for other in [
            Value::from("tls-unique"),
            Value::from("TLS-EXPORTER"),
            Value::from(1),
        ] {
            assert_eq!(binding(Some(&asks(other)), &tls), None);
        }

        let p = start(&auth, Some("alice"), &to_hex(&public), Some(exporter)).expect("starts");
        let extra = p.challenge_extra();
        assert_eq!(
            extra.get("channel_binding").and_then(Value::as_str),
            Some(TLS_EXPORTER)
        );
        let challenge = from_hex::<32>(&p.challenge_hex()).expect("hex");
        let sign = |message: [u8; 32]| {
            format!(
                "{}{}",
                to_hex(&key.sign(&message).to_bytes()),
                to_hex(&message)
            )
        };
        assert_eq!(p.verify(&sign(challenge)), None);
        assert_eq!(
            p.verify(&sign(signed_message(&challenge, Some(&[0x5b; 32])))),
            None
        );
        assert_eq!(
            p.verify(&sign(signed_message(&challenge, Some(&exporter.0))))
                .as_deref(),
            Some("user")
        );
        let unbound = start(&auth, Some("alice"), &to_hex(&public), None).expect("starts");
        assert_eq!(
            unbound.challenge_extra().get("channel_binding"),
            Some(&Value::Null)
        );
    }

    #[test]
    fn users_by_authid_or_pubkey() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let public = key.verifying_key().to_bytes();
        let mut auth = RealmAuth::default();
        auth.cryptosign.insert(
            "alice".into(),
            CryptosignUser {
                role: "user".into(),
                pubkeys: vec![[9; 32], public],
            },
        );
        let hex = to_hex(&public);
        for authid in [Some("alice"), None] {
            let p = start(&auth, authid, &hex, None).expect("starts");
            assert_eq!(p.authid, "alice");
            let challenge = from_hex::<32>(&p.challenge_hex()).expect("hex");
            let signed = format!(
                "{}{}",
                to_hex(&key.sign(&challenge).to_bytes()),
                p.challenge_hex()
            );
            assert_eq!(p.verify(&signed).as_deref(), Some("user"));
        }
        // Right key, other authid; unknown key: a challenge, then refusal.
        let p = start(&auth, Some("bob"), &hex, None).expect("starts");
        let challenge = from_hex::<32>(&p.challenge_hex()).expect("hex");
        let signed = format!(
            "{}{}",
            to_hex(&key.sign(&challenge).to_bytes()),
            p.challenge_hex()
        );
        assert_eq!((p.authid.as_str(), p.verify(&signed)), ("bob", None));
        let stranger = to_hex(&SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes());
        let p = start(&auth, None, &stranger, None).expect("starts");
        assert_eq!(p.authid, stranger);
        assert!(start(&auth, None, "abcd", None).is_none());
        assert!(parse_pubkey(&hex).is_ok() && parse_pubkey("xy").is_err());
    }
}
