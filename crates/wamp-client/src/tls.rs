//! TLS for `wss://` and `rss://` (rustls with the `ring` provider): the roots the
//! router's certificate is checked against (the Mozilla roots from `webpki-roots`
//! plus any CA added with [`ConnectOptions::with_tls_ca_pem`]), an optional
//! client certificate, and the connection's `tls-exporter` channel binding value
//! (RFC 9266). Host names are always verified.
//!
//! [`ConnectOptions::with_tls_ca_pem`]: crate::ConnectOptions::with_tls_ca_pem

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::Error;

/// TLS settings of a connection (used for `wss://` and `rss://` only).
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// CA certificates trusted besides the built-in roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Leave out the built-in (Mozilla) roots: trust only `extra_roots`.
    pub no_builtin_roots: bool,
    /// A client certificate chain and its key, presented when the router asks.
    client_identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("no_builtin_roots", &self.no_builtin_roots)
            .field(
                "client_certificate",
                &self.client_identity.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

fn tls_error(what: impl std::fmt::Display) -> Error {
    Error::Tls(what.to_string())
}

/// Parses the certificates of PEM text (at least one).
pub(crate) fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{what}: no CERTIFICATE found")));
    }
    Ok(certs)
}

/// Reads a file for a TLS setting.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_error(format!("cannot read {}: {e}", path.display())))
}

impl TlsOptions {
    /// Sets the client certificate chain and private key (PEM).
    pub(crate) fn set_client_identity(
        &mut self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<(), Error> {
        let certs = parse_certs(cert_pem, "client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| tls_error("client key: no PEM private key found"))?;
        self.client_identity = Some((certs, Arc::new(key)));
        Ok(())
    }

    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        if !self.no_builtin_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(tls_error)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots);
        let config = match &self.client_identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| tls_error(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The TLS handshake over `tcp` with the router at `host`.
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> Result<ClientStream, Error> {
        let config = self.client_config()?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::InvalidUrl(format!("{host}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(format!("handshake with {host} failed: {e}")))?;
        Ok(ClientStream::Tls(Box::new(stream)))
    }
}

/// A TCP stream, with or without TLS.
pub(crate) enum ClientStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The RFC 9266 exporter label of the `tls-exporter` channel binding.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

impl ClientStream {
    /// The `tls-exporter` channel binding value: 32 bytes exported with the label
    /// `EXPORTER-Channel-Binding` and no context. TLS 1.3 only (on TLS 1.2 RFC 9266
    /// needs the extended master secret, which rustls does not report).
    pub(crate) fn tls_exporter(&self) -> Option<[u8; 32]> {
        let ClientStream::Tls(stream) = self else {
            return None;
        };
        let conn = stream.get_ref().1;
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return None;
        }
        conn.export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .ok()
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }
}
