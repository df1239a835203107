//! WAMP-Cryptosign: the client proves it holds the Ed25519 key of a configured
//! public key by signing a 32-byte random challenge.
//!
//! AUTHENTICATE carries `hex(signature ‖ message)` (the NaCl "signed message"
//! layout, 192 hex characters), where the message must be the challenge itself.
//!
//! TLS channel binding (`authextra.channel_binding`, e.g. `"tls-unique"`) is not
//! available (the TLS stack has no `tls-unique` value), and a HELLO that asks for
//! it cannot use cryptosign here: the method is skipped like one the realm does
//! not offer. Going on without the binding (which the spec allows) would not help:
//! Autobahn signs `challenge XOR channel_id` whenever it asked for a binding,
//! whatever the CHALLENGE says, so it would fail later with a less clear error.
//! CHALLENGE carries `channel_binding: null`.

use ed25519_dalek::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;

use super::RealmAuth;

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

/// Starts a login for a HELLO's `authid` and `authextra.pubkey` (hex); `None`
/// when the pubkey is missing or malformed (the method is then not usable).
/// An unknown authid or key still gets a challenge, and fails at AUTHENTICATE.
pub(crate) fn start(auth: &RealmAuth, authid: Option<&str>, pubkey: &str) -> Option<Pending> {
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
    })
}

impl Pending {
    /// The CHALLENGE's `challenge` value: 64 hex characters.
    pub(crate) fn challenge_hex(&self) -> String {
        to_hex(&self.challenge)
    }

    /// The role, if `signature` (hex of signature ‖ challenge) is right.
    pub(crate) fn verify(&self, signature: &str) -> Option<String> {
        let ok = verify_signed_challenge(&self.pubkey, &self.challenge, signature);
        self.role.clone().filter(|_| ok)
    }
}

/// Whether `signed` (hex of the 64-byte signature followed by the 32-byte
/// message) is `pubkey`'s signature over `challenge`.
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
            let p = start(&auth, authid, &hex).expect("starts");
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
        let p = start(&auth, Some("bob"), &hex).expect("starts");
        let challenge = from_hex::<32>(&p.challenge_hex()).expect("hex");
        let signed = format!(
            "{}{}",
            to_hex(&key.sign(&challenge).to_bytes()),
            p.challenge_hex()
        );
        assert_eq!((p.authid.as_str(), p.verify(&signed)), ("bob", None));
        let stranger = to_hex(&SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes());
        let p = start(&auth, None, &stranger).expect("starts");
        assert_eq!(p.authid, stranger);
        assert!(start(&auth, None, "abcd").is_none());
        assert!(parse_pubkey(&hex).is_ok() && parse_pubkey("xy").is_err());
    }
}
