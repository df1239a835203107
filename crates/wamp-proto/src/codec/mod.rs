//! Encoding and decoding of WAMP messages in JSON, MessagePack and CBOR.
//!
//! Decoding is two-step: the top-level array is split into element byte ranges
//! (validating the whole input), then only the envelope elements are decoded into
//! values; the trailing payload elements stay as a byte slice of the input (see
//! [`Payload`](crate::Payload)). Encoding writes the envelope and copies the payload
//! bytes, transcoding them only when the payload came from another serializer.
//!
//! MessagePack and CBOR are implemented here rather than through serde because the
//! router needs the byte boundaries of each element to forward payloads untouched.

mod cbor;
mod json;
mod json_scan;
mod msgpack;

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::message::{self, Message};
use crate::payload::Elements;
use crate::value::{Dict, Value};

/// Deepest nesting of lists and dicts accepted from a peer.
pub const MAX_DEPTH: usize = 128;

/// A WAMP serializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// JSON, with binary as `"\0" + base64`.
    Json,
    /// MessagePack (spec version 5: separate str and bin types).
    MsgPack,
    /// CBOR (RFC 8949).
    Cbor,
}

impl Serializer {
    /// All supported serializers.
    pub const ALL: [Serializer; 3] = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor];

    /// A dense index (0..3) for per-serializer caches.
    pub fn index(self) -> usize {
        match self {
            Serializer::Json => 0,
            Serializer::MsgPack => 1,
            Serializer::Cbor => 2,
        }
    }

    /// The short name: `json`, `msgpack` or `cbor`.
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Json => "json",
            Serializer::MsgPack => "msgpack",
            Serializer::Cbor => "cbor",
        }
    }

    /// Parses a short name (`json`, `msgpack`, `cbor`).
    pub fn from_name(name: &str) -> Option<Self> {
        Serializer::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The WebSocket subprotocol identifier, e.g. `wamp.2.json`.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::MsgPack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
        }
    }

    /// Parses a WebSocket subprotocol identifier (unbatched only).
    pub fn from_subprotocol(protocol: &str) -> Option<Self> {
        Serializer::ALL
            .into_iter()
            .find(|s| s.subprotocol() == protocol)
    }

    /// The RawSocket serializer id (1 JSON, 2 MessagePack, 3 CBOR).
    pub fn rawsocket_id(self) -> u8 {
        match self {
            Serializer::Json => 1,
            Serializer::MsgPack => 2,
            Serializer::Cbor => 3,
        }
    }

    /// Parses a RawSocket serializer id.
    pub fn from_rawsocket_id(id: u8) -> Option<Self> {
        Serializer::ALL.into_iter().find(|s| s.rawsocket_id() == id)
    }

    /// Whether messages travel in binary (not text) WebSocket frames.
    pub fn is_binary(self) -> bool {
        !matches!(self, Serializer::Json)
    }
}

impl std::fmt::Display for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes from a peer are not a valid WAMP message. Every variant is a protocol
/// violation; the text says what was wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not valid in the serializer's format.
    #[error("malformed {0}")]
    Syntax(String),
    /// The message is not a non-empty list.
    #[error("a WAMP message must be a non-empty list")]
    NotAList,
    /// The message type code is not one this implementation knows.
    #[error("unknown message type {0}")]
    UnknownType(u64),
    /// Wrong number of elements for the message type.
    #[error("{message} with {len} elements")]
    WrongLength {
        /// Message name.
        message: &'static str,
        /// Element count seen.
        len: usize,
    },
    /// An element has the wrong type.
    #[error("{message}.{field} must be {expected}")]
    FieldType {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A known option or detail key has a value of the wrong type or range.
    #[error("{message} option '{key}' {problem}")]
    InvalidOption {
        /// Message name.
        message: &'static str,
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Lists and dicts nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// A payload had to be transcoded from another serializer and could not be decoded.
    #[error("payload cannot be transcoded: {0}")]
    Transcode(DecodeError),
}

/// Decodes one message from `bytes` (zero-copy for the payload).
pub fn decode(serializer: Serializer, bytes: &Bytes) -> Result<Message, DecodeError> {
    let elements = split(serializer, bytes)?;
    message::parse(&RawMessage {
        serializer,
        bytes,
        elements: &elements,
    })
}

/// Encodes a message.
pub fn encode(message: &Message, serializer: Serializer) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::with_capacity(128);
    encode_into(message, serializer, &mut out)?;
    Ok(out.freeze())
}

/// Encodes a message, appending to `out`.
pub fn encode_into(
    message: &Message,
    serializer: Serializer,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    message::write(message, serializer, out)
}

/// Decodes a single value.
pub fn decode_value(serializer: Serializer, bytes: &[u8]) -> Result<Value, DecodeError> {
    match serializer {
        Serializer::Json => json::decode_value(bytes),
        Serializer::MsgPack => msgpack::decode_value(bytes),
        Serializer::Cbor => cbor::decode_value(bytes),
    }
}

/// Encodes a single value, appending to `out`.
pub fn encode_value(serializer: Serializer, value: &Value, out: &mut BytesMut) {
    match serializer {
        Serializer::Json => json::write_value(out, value),
        Serializer::MsgPack => msgpack::write_value(out, value),
        Serializer::Cbor => cbor::write_value(out, value),
    }
}

/// Splits a top-level array into the byte ranges of its elements.
fn split(serializer: Serializer, bytes: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    match serializer {
        Serializer::Json => json::split(bytes),
        Serializer::MsgPack => msgpack::split(bytes),
        Serializer::Cbor => cbor::split(bytes),
    }
}

/// The coarse kind of an encoded element, read from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    List,
    Dict,
    Str,
    Bytes,
    Other,
}

/// A message split into element ranges, before envelope decoding.
pub(crate) struct RawMessage<'a> {
    pub serializer: Serializer,
    pub bytes: &'a Bytes,
    pub elements: &'a [Range<usize>],
}

impl RawMessage<'_> {
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn value(&self, index: usize) -> Result<Value, DecodeError> {
        decode_value(self.serializer, &self.bytes[self.elements[index].clone()])
    }

    pub fn kind(&self, index: usize) -> Kind {
        let raw = &self.bytes[self.elements[index].clone()];
        match self.serializer {
            Serializer::Json => json::peek_kind(raw),
            Serializer::MsgPack => msgpack::peek_kind(raw),
            Serializer::Cbor => cbor::peek_kind(raw),
        }
    }

    /// The elements from `start` to the end, as a zero-copy slice of the input.
    pub fn tail(&self, start: usize) -> Bytes {
        match (self.elements.get(start), self.elements.last()) {
            (Some(first), Some(last)) if start < self.elements.len() => {
                self.bytes.slice(first.start..last.end)
            }
            _ => Bytes::new(),
        }
    }
}

/// Decodes `count` payload elements previously sliced by [`RawMessage::tail`].
pub(crate) fn decode_elements(
    serializer: Serializer,
    raw: &[u8],
    count: u8,
) -> Result<Elements, DecodeError> {
    let values = match serializer {
        Serializer::Json => json::decode_sequence(raw)?,
        Serializer::MsgPack => msgpack::decode_sequence(raw)?,
        Serializer::Cbor => cbor::decode_sequence(raw)?,
    };
    if values.len() != usize::from(count) {
        return Err(DecodeError::Syntax("payload element count".into()));
    }
    let mut it = values.into_iter();
    let args = it.next();
    let kwargs = match it.next() {
        None => None,
        Some(Value::Dict(d)) => Some(d),
        Some(_) => {
            return Err(DecodeError::FieldType {
                message: "payload",
                field: "ArgumentsKw",
                expected: "a dict",
            })
        }
    };
    Ok(Elements { args, kwargs })
}

/// Encodes payload elements as a trailing-element slice.
pub(crate) fn encode_elements(serializer: Serializer, elements: &Elements) -> Bytes {
    let mut out = BytesMut::new();
    let args = elements.args.as_ref();
    let empty_args = Value::List(Vec::new());
    let args = match (&elements.kwargs, args) {
        (Some(_), None) => Some(&empty_args),
        (_, a) => a,
    };
    if let Some(args) = args {
        encode_value(serializer, args, &mut out);
    }
    if let Some(kwargs) = &elements.kwargs {
        if serializer == Serializer::Json {
            out.extend_from_slice(b",");
        }
        match serializer {
            Serializer::Json => json::write_dict(&mut out, kwargs),
            Serializer::MsgPack => msgpack::write_dict(&mut out, kwargs),
            Serializer::Cbor => cbor::write_dict(&mut out, kwargs),
        }
    }
    out.freeze()
}

/// Writes a message's top-level array element by element.
pub(crate) struct Writer<'a> {
    serializer: Serializer,
    out: &'a mut BytesMut,
    first: bool,
}

impl<'a> Writer<'a> {
    /// Starts an array of `len` elements.
    pub fn begin(serializer: Serializer, out: &'a mut BytesMut, len: usize) -> Self {
        match serializer {
            Serializer::Json => out.extend_from_slice(b"["),
            Serializer::MsgPack => msgpack::write_array_header(out, len),
            Serializer::Cbor => cbor::write_head(out, 4, len as u64),
        }
        Writer {
            serializer,
            out,
            first: true,
        }
    }

    fn separator(&mut self) {
        if self.serializer == Serializer::Json && !self.first {
            self.out.extend_from_slice(b",");
        }
        self.first = false;
    }

    pub fn uint(&mut self, v: u64) {
        self.separator();
        match self.serializer {
            Serializer::Json => json::write_u64(self.out, v),
            Serializer::MsgPack => msgpack::write_u64(self.out, v),
            Serializer::Cbor => cbor::write_head(self.out, 0, v),
        }
    }

    pub fn str(&mut self, s: &str) {
        self.separator();
        match self.serializer {
            Serializer::Json => json::write_str(self.out, s),
            Serializer::MsgPack => msgpack::write_str(self.out, s),
            Serializer::Cbor => cbor::write_str(self.out, s),
        }
    }

    pub fn dict(&mut self, d: &Dict) {
        self.separator();
        match self.serializer {
            Serializer::Json => json::write_dict(self.out, d),
            Serializer::MsgPack => msgpack::write_dict(self.out, d),
            Serializer::Cbor => cbor::write_dict(self.out, d),
        }
    }

    /// Appends already-encoded trailing elements (from [`Payload::encoded`](crate::Payload::encoded)).
    pub fn raw_tail(&mut self, raw: &[u8]) {
        if raw.is_empty() {
            return;
        }
        self.separator();
        self.out.extend_from_slice(raw);
    }

    pub fn end(self) {
        if self.serializer == Serializer::Json {
            self.out.extend_from_slice(b"]");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict;

    fn sample() -> Value {
        Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Int(1 << 53),
            Value::Float(1.5),
            Value::Str("héllo \"world\"\n".into()),
            Value::Bytes(Bytes::from_static(&[0, 1, 2, 255])),
            Value::Dict(
                dict! { "a" => 1, "nested" => Value::List(vec![Value::Dict(Dict::new())]) },
            ),
        ])
    }

    #[test]
    fn values_round_trip_in_every_serializer() {
        for ser in Serializer::ALL {
            let mut out = BytesMut::new();
            encode_value(ser, &sample(), &mut out);
            let back = decode_value(ser, &out).expect("decode");
            assert_eq!(back, sample(), "{ser}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut v = Value::Null;
        for _ in 0..(MAX_DEPTH + 5) {
            v = Value::List(vec![v]);
        }
        for ser in Serializer::ALL {
            let mut out = BytesMut::new();
            encode_value(ser, &v, &mut out);
            assert!(decode_value(ser, &out).is_err(), "{ser}");
        }
    }

    #[test]
    fn subprotocol_and_rawsocket_ids() {
        for ser in Serializer::ALL {
            assert_eq!(Serializer::from_subprotocol(ser.subprotocol()), Some(ser));
            assert_eq!(Serializer::from_rawsocket_id(ser.rawsocket_id()), Some(ser));
            assert_eq!(Serializer::from_name(ser.name()), Some(ser));
        }
        assert_eq!(Serializer::from_subprotocol("wamp.2.json.batched"), None);
    }
}
