//! Sans-IO implementation of the WAMP v2 protocol.
//!
//! This crate knows nothing about sockets, runtimes or clocks. It provides:
//!
//! * [`Value`] and [`Dict`]: the dynamic value model shared by all serializers,
//!   with binary data carried across JSON as `"\0" + base64`.
//! * [`Message`]: every WAMP message type, with typed envelope fields.
//! * [`Payload`]: application arguments kept as the sender's encoded bytes, so a
//!   router forwards them without decoding and transcodes at most once per serializer.
//! * [`codec`]: JSON, MessagePack and CBOR encoding and decoding of messages.
//! * [`uri`]: URI validation (loose/strict, exact/prefix/wildcard patterns).
//! * [`id`]: global-scope random IDs and session-scope sequential IDs.
//! * [`rawsocket`]: the RawSocket handshake and frame codec.

pub mod codec;
pub mod error_uri;
pub mod id;
pub mod message;
pub mod payload;
pub mod rawsocket;
pub mod uri;
pub mod value;

pub use codec::{decode, encode, DecodeError, EncodeError, Serializer};
pub use id::{random_id, SessionScopeIds, MAX_ID};
pub use message::{Message, MessageType};
pub use payload::Payload;
pub use value::{Dict, Value};
