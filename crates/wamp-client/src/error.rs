//! Errors of client operations and the reasons a session ends.

use wamp_proto::{Dict, Value};

/// Why a client operation failed.
///
/// Who caused it tells the variants apart: the router or a callee ([`Error::Abort`],
/// [`Error::Wamp`]), the transport ([`Error::Io`], [`Error::WebSocket`],
/// [`Error::Handshake`]), a router breaking the protocol ([`Error::Protocol`]), or the
/// application ([`Error::InvalidUrl`], [`Error::TooLarge`], [`Error::Encode`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The router sent ABORT: while joining (e.g. `wamp.error.no_such_realm`) or later.
    #[error("session aborted by the router: {reason}{}", detail(message))]
    Abort {
        /// The ABORT reason URI.
        reason: String,
        /// `Details.message`, if the router sent one.
        message: Option<String>,
    },
    /// ERROR from the router or a callee answering one of our requests.
    #[error("{uri}")]
    Wamp {
        /// The error URI, e.g. `wamp.error.no_such_procedure`.
        uri: String,
        /// The error's positional arguments.
        args: Vec<Value>,
        /// The error's keyword arguments.
        kwargs: Dict,
    },
    /// A socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A WebSocket protocol error after the opening handshake.
    #[error("WebSocket error: {0}")]
    WebSocket(String),
    /// The transport's opening handshake failed: a RawSocket refusal, an HTTP error
    /// status, a subprotocol the client did not ask for.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// TLS: a certificate or key file that cannot be used, or a failed TLS
    /// handshake (e.g. the router's certificate is not trusted or not for this host).
    #[error("TLS: {0}")]
    Tls(String),
    /// The router sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The session is over (or shutting down), so the request cannot complete.
    #[error("session closed")]
    Closed,
    /// An operation took too long (connecting, joining, leaving).
    #[error("timed out")]
    Timeout,
    /// The URL is not one the client can connect to.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The encoded message is larger than the router accepts (RawSocket limit).
    #[error("message of {size} octets exceeds the router's limit of {limit} octets")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The router's advertised limit.
        limit: usize,
    },
    /// A message could not be encoded (e.g. a received payload that cannot be
    /// transcoded to this session's serializer).
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The operation needs something the other side did not announce or ask for:
    /// a router feature (e.g. `call_canceling`), or progressive results the caller
    /// did not ask for. Nothing was sent.
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// `wamp.error.timeout`: a call ran out of time (call timeout).
pub(crate) const TIMEOUT_URI: &str = "wamp.error.timeout";

fn detail(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(" ({m})"),
        _ => String::new(),
    }
}

impl Error {
    /// The WAMP URI of the error: the ERROR's error URI or the ABORT's reason.
    pub fn uri(&self) -> Option<&str> {
        match self {
            Error::Abort { reason, .. } => Some(reason),
            Error::Wamp { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// Whether this is ERROR `wamp.error.canceled`: the call was canceled, or its
    /// callee went away.
    pub fn is_canceled(&self) -> bool {
        self.uri() == Some(wamp_proto::error_uri::CANCELED)
    }

    /// Whether this is ERROR `wamp.error.timeout`: the call's `timeout` ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Wamp { uri, .. } if uri == TIMEOUT_URI)
    }

    /// The error a pending request gets when its session ends for `reason`.
    pub(crate) fn from_close(reason: &CloseReason) -> Error {
        match reason {
            CloseReason::Abort { reason, message } => Error::Abort {
                reason: reason.clone(),
                message: message.clone(),
            },
            _ => Error::Closed,
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The router closed the session with GOODBYE (the client replied).
    Goodbye {
        /// The router's GOODBYE reason, e.g. `wamp.close.system_shutdown`, `wamp.close.killed`.
        reason: String,
        /// `Details.message`, if any.
        message: Option<String>,
    },
    /// The session was aborted: by the router's ABORT, or by the client's own ABORT
    /// after the router broke the protocol (then `reason` is
    /// `wamp.error.protocol_violation`).
    Abort {
        /// The ABORT reason URI.
        reason: String,
        /// `Details.message`, if any.
        message: Option<String>,
    },
    /// The connection went away without a closing handshake (or the client dropped it,
    /// see [`Session::disconnect`](crate::Session::disconnect)).
    TransportLost,
    /// The client left: it sent GOODBYE and the router answered.
    Left,
}

impl CloseReason {
    /// The WAMP reason URI, if the session ended with GOODBYE or ABORT from the router.
    pub fn uri(&self) -> Option<&str> {
        match self {
            CloseReason::Goodbye { reason, .. } | CloseReason::Abort { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// `Details.message` as a string, if present.
pub(crate) fn message_of(details: &Dict) -> Option<String> {
    details
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_of_errors() {
        let e = Error::Wamp {
            uri: "wamp.error.no_such_procedure".into(),
            args: vec![],
            kwargs: Dict::new(),
        };
        assert_eq!(e.uri(), Some("wamp.error.no_such_procedure"));
        assert_eq!(e.to_string(), "wamp.error.no_such_procedure");
        let e = Error::Abort {
            reason: "wamp.error.no_such_realm".into(),
            message: Some("no realm x".into()),
        };
        assert_eq!(e.uri(), Some("wamp.error.no_such_realm"));
        assert!(e.to_string().contains("(no realm x)"));
        assert_eq!(Error::Closed.uri(), None);
    }

    #[test]
    fn close_reason_to_pending_error() {
        let abort = CloseReason::Abort {
            reason: "wamp.error.protocol_violation".into(),
            message: None,
        };
        assert!(matches!(
            Error::from_close(&abort),
            Error::Abort { reason, .. } if reason == "wamp.error.protocol_violation"
        ));
        assert!(matches!(
            Error::from_close(&CloseReason::TransportLost),
            Error::Closed
        ));
        assert!(matches!(
            Error::from_close(&CloseReason::Left),
            Error::Closed
        ));
        assert_eq!(abort.uri(), Some("wamp.error.protocol_violation"));
        assert_eq!(CloseReason::Left.uri(), None);
    }
}
