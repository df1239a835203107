//! What the router knows about the transport under a connection: facts the
//! transport layer established before the first WAMP message (peer address, a
//! verified TLS client certificate, the TLS channel binding value, the listener's
//! allowed authentication methods), and the `transport` dict dynamic authenticators
//! and authorizers get ([`TransportInfo::details`]).

use std::net::SocketAddr;
use std::sync::Arc;

use wamp_proto::{dict, Dict, Serializer, Value};

/// How WAMP messages are framed on the transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// Not told (in-process transports).
    #[default]
    Unknown,
    /// WebSocket.
    WebSocket,
    /// RawSocket (TCP or Unix socket).
    RawSocket,
}

impl Framing {
    fn name(self) -> Option<&'static str> {
        match self {
            Framing::Unknown => None,
            Framing::WebSocket => Some("websocket"),
            Framing::RawSocket => Some("rawsocket"),
        }
    }
}

/// What is known of a verified TLS client certificate beyond its identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCert {
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// SHA-256 fingerprint of the certificate (DER), as upper-case hex pairs
    /// separated by colons (OpenSSL's format).
    pub sha256: String,
}

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
    /// WebSocket or RawSocket.
    pub framing: Framing,
    /// Whether the transport is a Unix socket.
    pub unix: bool,
    /// Details of the verified client certificate (set with `client_cert_id`).
    pub peer_cert: Option<Arc<PeerCert>>,
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

    /// The peer as Crossbar.io writes it: `tcp4:127.0.0.1:54321`,
    /// `tcp6:::1:54321`, `unix`; `None` when unknown.
    pub fn peer_string(&self) -> Option<String> {
        match self.peer {
            Some(SocketAddr::V4(a)) => Some(format!("tcp4:{}:{}", a.ip(), a.port())),
            Some(SocketAddr::V6(a)) => Some(format!("tcp6:{}:{}", a.ip(), a.port())),
            None if self.unix => Some("unix".to_owned()),
            None => None,
        }
    }

    /// The `transport` dict of the calls to dynamic authenticators and
    /// authorizers, with the keys of Crossbar.io's `TransportDetails` where the
    /// router has the data (`channel_type`, `channel_framing`,
    /// `channel_serializer`, `peer`, `is_server`, `is_secure`, `peer_cert`,
    /// `websocket_protocol`) plus the older `type` and `protocol`. Built per call.
    pub fn details(&self, serializer: Serializer) -> Dict {
        let channel_type = if self.unix {
            "memory"
        } else if self.tls {
            "tls"
        } else {
            "tcp"
        };
        let protocol = format!("wamp.2.{}", serializer.name());
        let opt = |v: Option<&str>| v.map_or(Value::Null, Value::from);
        let peer_cert = match (&self.client_cert_id, &self.peer_cert) {
            (Some(_), Some(cert)) => {
                let mut subject = Dict::new();
                if let Some(cn) = &cert.common_name {
                    subject.insert("cn".into(), Value::from(cn.as_str()));
                }
                Value::Dict(dict! {
                    "subject" => Value::Dict(subject),
                    "sha256" => cert.sha256.as_str(),
                })
            }
            _ => Value::Null,
        };
        let websocket_protocol = match self.framing {
            Framing::WebSocket => Value::from(protocol.as_str()),
            _ => Value::Null,
        };
        dict! {
            "type" => opt(self.framing.name()),
            "protocol" => protocol.as_str(),
            "channel_type" => channel_type,
            "channel_framing" => opt(self.framing.name()),
            "channel_serializer" => serializer.name(),
            "peer" => opt(self.peer_string().as_deref()),
            "is_server" => true,
            "is_secure" => self.tls,
            "peer_cert" => peer_cert,
            "websocket_protocol" => websocket_protocol,
        }
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
    fn details_follow_crossbar() {
        let info = TransportInfo {
            peer: Some("127.0.0.1:54321".parse().expect("address")),
            tls: true,
            client_cert_id: Some("device-1".into()),
            framing: Framing::WebSocket,
            peer_cert: Some(Arc::new(PeerCert {
                common_name: Some("device-1".into()),
                sha256: "AB:CD".into(),
            })),
            ..TransportInfo::default()
        };
        let d = info.details(Serializer::Json);
        assert_eq!(d.get("type"), Some(&Value::from("websocket")));
        assert_eq!(d.get("protocol"), Some(&Value::from("wamp.2.json")));
        assert_eq!(d.get("channel_type"), Some(&Value::from("tls")));
        assert_eq!(d.get("peer"), Some(&Value::from("tcp4:127.0.0.1:54321")));
        assert_eq!(d.get("is_secure"), Some(&Value::from(true)));
        let cert = d.get("peer_cert").and_then(Value::as_dict).expect("cert");
        let subject = cert
            .get("subject")
            .and_then(Value::as_dict)
            .expect("subject");
        assert_eq!(subject.get("cn"), Some(&Value::from("device-1")));

        let info = TransportInfo {
            unix: true,
            framing: Framing::RawSocket,
            ..TransportInfo::default()
        };
        let d = info.details(Serializer::Cbor);
        assert_eq!(d.get("peer"), Some(&Value::from("unix")));
        assert_eq!(d.get("channel_framing"), Some(&Value::from("rawsocket")));
        assert_eq!(d.get("channel_serializer"), Some(&Value::from("cbor")));
        assert_eq!(d.get("websocket_protocol"), Some(&Value::Null));
        assert_eq!(d.get("peer_cert"), Some(&Value::Null));
        assert_eq!(d.get("is_secure"), Some(&Value::from(false)));
        let v6 = TransportInfo {
            peer: Some("[::1]:7".parse().expect("address")),
            ..TransportInfo::default()
        };
        assert_eq!(v6.peer_string().as_deref(), Some("tcp6:::1:7"));
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
