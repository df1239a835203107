//! Helpers for Junction's tests: scripted raw WAMP peers and message builders.
//!
//! A [`RawPeer`] speaks WAMP over WebSocket or RawSocket without any session logic:
//! a test sends exactly the messages or bytes it wants (also invalid ones) and looks
//! at exactly what comes back. Peers exist on both sides:
//!
//! * client side, to drive a router: [`raw_ws`], [`raw_rawsocket_tcp`],
//!   [`raw_rawsocket_unix`], and [`tcp_raw`] / [`http_upgrade`] for handshakes byte
//!   by byte;
//! * server side, to impersonate a router when testing a client:
//!   [`RawPeer::accept_ws`], [`RawPeer::accept_rawsocket`].
//!
//! Every receive waits at most the peer's timeout ([`DEFAULT_TIMEOUT`] unless set
//! with [`RawPeer::set_timeout`]). The helpers panic with a clear message where a
//! test could only fail anyway (an undecodable message, a connection that does not
//! close), and return `io::Result` where a test may want to look at the failure.

pub mod msg;
mod peer;

pub use peer::{
    http_upgrade, raw_rawsocket_over, raw_rawsocket_stream, raw_rawsocket_tcp, raw_rawsocket_unix,
    raw_ws, tcp_raw, HttpResponse, PeerFrame, RawPeer, DEFAULT_TIMEOUT,
};
