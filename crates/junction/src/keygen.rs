//! `junction keygen`: a new Ed25519 key pair for WAMP-Cryptosign, and reading
//! private keys back (`--private-key` of the client subcommands).
//!
//! A key file holds the 32-byte private seed as 64 hex characters on one line;
//! lines starting with `#` are comments (keygen writes the public key in one).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use wamp_router::auth::cryptosign::{from_hex, to_hex};

/// `junction keygen`.
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Write the private key to this file (created with mode 0600; an existing file
    /// is not overwritten) and print only the public key.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `junction keygen`.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let seed: [u8; 32] = rand::random();
    let public = to_hex(&SigningKey::from_bytes(&seed).verifying_key().to_bytes());
    match args.out {
        None => {
            println!("private key: {}", to_hex(&seed));
            println!("public key:  {public}");
        }
        Some(path) => {
            write_key_file(&path, &seed, &public)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{public}");
        }
    }
    Ok(())
}

fn write_key_file(path: &Path, seed: &[u8; 32], public: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(
        file,
        "# WAMP-Cryptosign private key (Ed25519 seed). Public key: {public}"
    )?;
    writeln!(file, "{}", to_hex(seed))?;
    file.sync_all()
}

/// A private key given as 64 hex characters, or the path of a key file.
pub fn load_private_key(value: &str) -> Result<[u8; 32], String> {
    if let Some(seed) = from_hex::<32>(value.trim()) {
        return Ok(seed);
    }
    let text = std::fs::read_to_string(value).map_err(|e| {
        format!("--private-key: not 64 hex characters, and cannot read it as a file ({e})")
    })?;
    if readable_by_others(std::path::Path::new(value)) {
        eprintln!("warning: {value} can be read by other users; `chmod 600` it");
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(from_hex::<32>)
        .ok_or_else(|| format!("--private-key: {value} does not hold a 64-hex-character key"))
}

/// Whether a file holding a secret can be read by users other than its owner.
pub fn readable_by_others(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// The public key (hex) of a private seed.
pub fn public_key(seed: &[u8; 32]) -> String {
    to_hex(&SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("client.key");
        let seed = [5u8; 32];
        write_key_file(&path, &seed, &public_key(&seed)).expect("writes");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!readable_by_others(&path));
        let path_text = path.to_str().expect("utf-8");
        assert_eq!(load_private_key(path_text), Ok(seed));
        {
            use std::os::unix::fs::PermissionsExt as _;
            let open = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&path, open).expect("chmod");
            assert!(readable_by_others(&path));
        }
        assert_eq!(load_private_key(&to_hex(&seed)), Ok(seed));
        assert!(write_key_file(&path, &seed, "x").is_err(), "no overwrite");
        assert!(load_private_key("nope").is_err());
        assert_eq!(
            public_key(
                &from_hex("4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510")
                    .expect("hex")
            ),
            "1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d"
        );
    }
}
