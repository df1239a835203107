//! Router addresses: which transport a URL names and where it points.

use std::path::PathBuf;

use crate::error::Error;

/// A parsed router address.
///
/// * `ws://host[:port][/path]`: WebSocket (port 80 by default), the subprotocol names
///   the serializer; `wss://` (port 443 by default) over TLS.
/// * `rs://host:port`: RawSocket over TCP; `rss://host:port` over TLS.
/// * `unix:///path/to/socket`: RawSocket over a Unix domain socket.
///
/// IPv6 hosts are written in brackets: `ws://[::1]:8080/ws`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// WebSocket over TCP.
    WebSocket {
        /// The full URL, as used in the HTTP upgrade request.
        url: String,
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Over TLS (`wss://`).
        tls: bool,
    },
    /// RawSocket over TCP.
    RawSocketTcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Over TLS (`rss://`).
        tls: bool,
    },
    /// RawSocket over a Unix domain socket.
    RawSocketUnix {
        /// The socket's file system path.
        path: PathBuf,
    },
}

impl Endpoint {
    /// Parses a router URL (see [`Endpoint`] for the forms).
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |why: &str| Error::InvalidUrl(format!("{url}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://"))?;
        match scheme.to_ascii_lowercase().as_str() {
            scheme @ ("ws" | "wss") => {
                let tls = scheme == "wss";
                let (authority, _path) = match rest.find(['/', '?', '#']) {
                    Some(i) => rest.split_at(i),
                    None => (rest, ""),
                };
                let default_port = if tls { 443 } else { 80 };
                let (host, port) =
                    split_host_port(authority, Some(default_port)).map_err(|e| invalid(&e))?;
                Ok(Endpoint::WebSocket {
                    url: url.to_owned(),
                    host,
                    port,
                    tls,
                })
            }
            scheme @ ("rs" | "rawsocket" | "tcp" | "rss") => {
                let tls = scheme == "rss";
                let authority = rest.strip_suffix('/').unwrap_or(rest);
                if authority.contains(['/', '?', '#']) {
                    return Err(invalid("a RawSocket URL has no path"));
                }
                let (host, port) = split_host_port(authority, None).map_err(|e| invalid(&e))?;
                Ok(Endpoint::RawSocketTcp { host, port, tls })
            }
            "unix" => {
                if rest.is_empty() {
                    return Err(invalid("missing socket path"));
                }
                Ok(Endpoint::RawSocketUnix {
                    path: PathBuf::from(rest),
                })
            }
            other => Err(invalid(&format!("unsupported scheme {other:?}"))),
        }
    }
}

/// Splits `host[:port]` / `[v6]:port`.
fn split_host_port(authority: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err("user info is not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unterminated IPv6 address".to_owned())?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| "junk after IPv6 address".to_owned())?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid port {p:?}"))?,
        None => default_port.ok_or_else(|| "missing port".to_owned())?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(url: &str, host: &str, port: u16) -> Endpoint {
        Endpoint::WebSocket {
            url: url.into(),
            host: host.into(),
            port,
            tls: false,
        }
    }

    #[test]
    fn websocket_urls() {
        let u = "ws://127.0.0.1:8080/ws";
        assert_eq!(Endpoint::parse(u).ok(), Some(ws(u, "127.0.0.1", 8080)));
        let u = "ws://localhost";
        assert_eq!(Endpoint::parse(u).ok(), Some(ws(u, "localhost", 80)));
        let u = "ws://[::1]:9000/a/b?x=1";
        assert_eq!(Endpoint::parse(u).ok(), Some(ws(u, "::1", 9000)));
        let u = "WS://example.org/";
        assert_eq!(Endpoint::parse(u).ok(), Some(ws(u, "example.org", 80)));
        let u = "wss://example.org/ws";
        assert_eq!(
            Endpoint::parse(u).ok(),
            Some(Endpoint::WebSocket {
                url: u.into(),
                host: "example.org".into(),
                port: 443,
                tls: true
            })
        );
    }

    #[test]
    fn rawsocket_urls() {
        assert_eq!(
            Endpoint::parse("rs://127.0.0.1:8081").ok(),
            Some(Endpoint::RawSocketTcp {
                host: "127.0.0.1".into(),
                port: 8081,
                tls: false
            })
        );
        assert_eq!(
            Endpoint::parse("rs://[::1]:8081/").ok(),
            Some(Endpoint::RawSocketTcp {
                host: "::1".into(),
                port: 8081,
                tls: false
            })
        );
        assert_eq!(
            Endpoint::parse("rss://localhost:8443").ok(),
            Some(Endpoint::RawSocketTcp {
                host: "localhost".into(),
                port: 8443,
                tls: true
            })
        );
        assert_eq!(
            Endpoint::parse("unix:///tmp/junction.sock").ok(),
            Some(Endpoint::RawSocketUnix {
                path: "/tmp/junction.sock".into()
            })
        );
    }

    #[test]
    fn invalid_urls() {
        for url in [
            "",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "rss://127.0.0.1",
            "rs://127.0.0.1",
            "rs://127.0.0.1:0",
            "rs://127.0.0.1:70000",
            "rs://127.0.0.1:80/path",
            "rs://:80",
            "ws://:80/ws",
            "ws://[::1/ws",
            "ws://[::1]x/ws",
            "ws://user@host/ws",
            "ws://host:port/ws",
            "unix://",
        ] {
            assert!(
                matches!(Endpoint::parse(url), Err(Error::InvalidUrl(_))),
                "{url} should be refused"
            );
        }
    }
}
