//! TLS for the TCP listeners (rustls with the `ring` provider): loading the PEM
//! files of a listener's `tls` table, the client-certificate policy, reading a
//! verified client certificate's identity (subject CN, else its first DNS name)
//! and details ([`peer_cert`]), and the connection's `tls-exporter` channel binding
//! value.
//!
//! A TLS stream plugs into the transports through [`ReadReady`]: rustls keeps the
//! received plaintext in its own buffer, so "readable" means "rustls has plaintext
//! (or end of stream) to hand out", and a read copies from that buffer.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncBufRead;
use tokio::net::TcpStream;
use wamp_router::transport::TlsExporter;

use crate::config::{ClientCerts, TlsConfig};
use crate::transport::ReadReady;

/// A server-side TLS stream over TCP.
pub type ServerTlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A TLS configuration mistake: which key of the `tls` table, and why.
#[derive(Debug)]
pub struct TlsError {
    /// `cert`, `key`, `client_ca` or `client_certs`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tls.{}: {}", self.key, self.message)
    }
}

fn fail(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        key,
        message: message.into(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificates of a PEM file (at least one).
pub fn load_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| fail(key, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(key, format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(fail(
            key,
            format!("{}: no CERTIFICATE in the file", path.display()),
        ));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1). The error never
/// shows the file's content.
pub fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| fail(key, format!("cannot read {}: {e}", path.display())))?;
    if crate::keygen::readable_by_others(path) {
        tracing::warn!(path = %path.display(), "the TLS private key can be read by other users; `chmod 600` it");
    }
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| fail(key, format!("{}: no PEM private key found", path.display())))
}

/// Builds the rustls server configuration of a listener's `tls` table, checking
/// that every file exists and holds what it should.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs("cert", &tls.cert)?;
    let key = load_key("key", &tls.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("cert", e.to_string()))?;
    let builder = match (&tls.client_ca, tls.client_certs) {
        (_, ClientCerts::None) => builder.with_no_client_auth(),
        (None, _) => {
            return Err(fail(
                "client_certs",
                "\"optional\" and \"required\" need client_ca (the CA bundle client certificates are checked against)",
            ))
        }
        (Some(ca), policy) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs("client_ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| fail("client_ca", format!("{}: {e}", ca.display())))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if policy == ClientCerts::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| fail("client_ca", format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| fail("key", format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The identity of a verified client certificate (DER): the subject's common name,
/// or else the first DNS name of its subjectAltName extension.
pub fn cert_identity(der: &[u8]) -> Option<String> {
    let fields = tbs_fields(der)?;
    let skip = usize::from(fields.first()?.0 == 0xA0);
    let subject = fields.get(skip + 4)?;
    if let Some(cn) = subject_cn(subject.1) {
        return Some(cn);
    }
    let extensions = fields.iter().find(|(tag, _)| *tag == 0xA3)?;
    first_dns_name(extensions.1)
}

/// What dynamic authenticators are told of a verified client certificate (DER):
/// the subject's common name and the SHA-256 fingerprint.
pub fn peer_cert(der: &[u8]) -> wamp_router::PeerCert {
    use sha2::Digest as _;
    let common_name = tbs_fields(der).and_then(|fields| {
        let skip = usize::from(fields.first()?.0 == 0xA0);
        subject_cn(fields.get(skip + 4)?.1)
    });
    let sha256 = sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    wamp_router::PeerCert {
        common_name,
        sha256,
    }
}

/// The elements of a certificate's TBSCertificate: version [0] (optional),
/// serial, signature, issuer, validity, subject, spki, extensions [3].
fn tbs_fields(der: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut fields = Vec::with_capacity(8);
    while !tbs.is_empty() {
        let (tag, content, rest) = tlv(tbs)?;
        fields.push((tag, content));
        tbs = rest;
    }
    Some(fields)
}

/// The `tls-exporter` channel binding value (RFC 9266) of an established
/// connection: 32 bytes exported with the label `EXPORTER-Channel-Binding` and no
/// context. TLS 1.3 only: on TLS 1.2 RFC 9266 needs the extended master secret,
/// which rustls does not report, so such connections get no value.
pub fn channel_binding(conn: &rustls::ServerConnection) -> Option<TlsExporter> {
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material([0u8; 32], TlsExporter::LABEL, None)
        .ok()
        .map(TlsExporter)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1D, 0x11];

/// One DER element: (tag, content, what follows). Only single-byte tags.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The first commonName of an RDNSequence's content.
fn subject_cn(mut rdns: &[u8]) -> Option<String> {
    while !rdns.is_empty() {
        let (tag, mut set, rest) = tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (tag, attribute, rest) = tlv(set)?;
            set = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag == OID && oid == OID_CN {
                let (tag, text, _) = tlv(value)?;
                return directory_string(tag, text);
            }
        }
    }
    None
}

fn directory_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, TeletexString (taken as UTF-8).
        0x0C | 0x13 | 0x16 | 0x14 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // BMPString: UTF-16BE.
        0x1E => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The first dNSName of the subjectAltName extension in `[3] Extensions`.
fn first_dns_name(explicit: &[u8]) -> Option<String> {
    let (tag, mut extensions, _) = tlv(explicit)?;
    if tag != SEQUENCE {
        return None;
    }
    while !extensions.is_empty() {
        let (_, extension, rest) = tlv(extensions)?;
        extensions = rest;
        let (tag, oid, mut rest) = tlv(extension)?;
        if tag != OID || oid != OID_SAN {
            continue;
        }
        // An optional `critical` BOOLEAN, then the OCTET STRING.
        let (mut tag, mut value, after) = tlv(rest)?;
        if tag == 0x01 {
            rest = after;
            (tag, value, _) = tlv(rest)?;
        }
        if tag != 0x04 {
            return None;
        }
        let (tag, mut names, _) = tlv(value)?;
        if tag != SEQUENCE {
            return None;
        }
        while !names.is_empty() {
            let (tag, name, rest) = tlv(names)?;
            names = rest;
            if tag == 0x82 {
                return std::str::from_utf8(name).ok().map(str::to_owned);
            }
        }
        return None;
    }
    None
}

impl ReadReady for ServerTlsStream {
    async fn readable(&mut self) -> io::Result<()> {
        // Reads TLS records into rustls until it has plaintext (or the stream
        // ended): nothing is lost if this is dropped half-way.
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_fill_buf(cx).map_ok(|_| ())).await
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut *self).poll_fill_buf(&mut cx) {
            Poll::Ready(Ok(data)) => {
                let room = (buf.capacity() - buf.len()).max(1);
                let n = data.len().min(room);
                buf.extend_from_slice(&data[..n]);
                Pin::new(self).consume(n);
                Ok(n)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(cn: Option<&str>, sans: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn identity_is_the_cn_else_the_first_dns_name() {
        assert_eq!(
            cert_identity(&cert_with(Some("client-a"), &["other.example"])),
            Some("client-a".into())
        );
        assert_eq!(
            cert_identity(&cert_with(None, &["one.example", "two.example"])),
            Some("one.example".into())
        );
        assert_eq!(cert_identity(&cert_with(None, &[])), None);
        assert_eq!(
            cert_identity(&cert_with(Some("ünïcode"), &[])),
            Some("ünïcode".into())
        );
    }

    #[test]
    fn peer_cert_has_the_cn_and_the_fingerprint() {
        let der = cert_with(Some("client-a"), &["other.example"]);
        let cert = peer_cert(&der);
        assert_eq!(cert.common_name.as_deref(), Some("client-a"));
        // 32 bytes: 64 hex digits and 31 colons.
        assert_eq!(cert.sha256.len(), 95);
        assert!(cert.sha256.split(':').all(|b| b.len() == 2
            && b.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
        assert_eq!(
            peer_cert(&cert_with(None, &["one.example"])).common_name,
            None
        );
    }

    #[test]
    fn garbage_is_no_identity() {
        let good = cert_with(Some("x"), &[]);
        for len in 0..good.len() {
            // Truncations never panic (and mostly fail).
            let _ = cert_identity(&good[..len]);
        }
        assert_eq!(cert_identity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(cert_identity(b"not DER"), None);
    }

    fn sample() -> &'static [u8] {
        static CERT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        CERT.get_or_init(|| cert_with(Some("client-a"), &["one.example"]))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes: no panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = cert_identity(&bytes);
        }

        /// A real certificate with bytes overwritten and then cut short: no panic.
        #[test]
        fn mutated_certificates_never_panic(
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..8),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut der = sample().to_vec();
            for (at, byte) in edits {
                let i = at % der.len();
                der[i] = byte;
            }
            der.truncate(cut % (der.len() + 1));
            let _ = cert_identity(&der);
        }

        /// Length fields of every size at every position: no panic, no huge allocation.
        #[test]
        fn length_fields_never_panic(at in proptest::prelude::any::<usize>(), n in 0x80u8..=0x88, len in proptest::prelude::any::<u32>()) {
            let mut der = sample().to_vec();
            let i = at % der.len();
            let mut patch = vec![n];
            patch.extend_from_slice(&len.to_be_bytes());
            der.splice(i..i, patch);
            let _ = cert_identity(&der);
        }
    }
}
