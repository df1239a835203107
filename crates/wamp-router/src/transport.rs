//! What the router knows about the transport under a connection: facts the
//! transport layer established before the first WAMP message (peer address, a
//! verified TLS client certificate, the TLS channel binding value, the listener's
//! allowed authentication methods).

use std::net::SocketAddr;
use std::sync::Arc;

/// Per-connection transport facts, handed to [`Router::connect`](crate::Router::connect).
#[derive(Clone, Debug, Default)]
pub struct TransportInfo {
    /// The peer's address (`None` for Unix sockets and in-process transports).
    pub peer: Option<SocketAddr>,
    /// Whether the transport runs over TLS.
    pub tls: bool,
    /// The identity of the client certificate the TLS layer verified, if any: the
    /// subject's common name, or else its first DNS name.
    pub client_cert_id: Option<String>,
    /// The authentication methods this listener allows; `None`: all the realm offers.
    pub auth_methods: Option<Arc<[String]>>,
    /// The connection's `tls-exporter` channel binding value (RFC 9266), when it
    /// runs over TLS 1.3; WAMP-Cryptosign can bind to it.
    pub channel_binding: Option<TlsExporter>,
}

/// A `tls-exporter` channel binding value (RFC 9266): 32 bytes exported from the
/// TLS session with the label `EXPORTER-Channel-Binding` and no context. Its
/// `Debug` form does not show it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TlsExporter(pub [u8; 32]);

impl TlsExporter {
    /// The RFC 9266 exporter label.
    pub const LABEL: &'static [u8] = b"EXPORTER-Channel-Binding";
}

impl std::fmt::Debug for TlsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsExporter(<redacted>)")
    }
}

impl TransportInfo {
    /// Whether the listener allows authentication method `method` (`scram` and
    /// `wamp-scram` are one method).
    pub fn allows(&self, method: &str) -> bool {
        fn canonical(m: &str) -> &str {
            if m == "scram" {
                "wamp-scram"
            } else {
                m
            }
        }
        self.auth_methods
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|m| canonical(m) == canonical(method)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_list_every_method_is_allowed() {
        let info = TransportInfo::default();
        assert!(info.allows("anonymous") && info.allows("tls"));
        let info = TransportInfo {
            auth_methods: Some(vec!["ticket".to_owned()].into()),
            ..TransportInfo::default()
        };
        assert!(info.allows("ticket"));
        assert!(!info.allows("anonymous"));
        let info = TransportInfo {
            auth_methods: Some(vec!["wamp-scram".to_owned()].into()),
            ..TransportInfo::default()
        };
        assert!(info.allows("scram") && info.allows("wamp-scram"));
    }

    #[test]
    fn the_channel_binding_value_is_not_printed() {
        let info = TransportInfo {
            channel_binding: Some(TlsExporter([0xab; 32])),
            ..TransportInfo::default()
        };
        let shown = format!("{info:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("ab, ab") && !shown.contains("171")
        );
    }
}
