//! The RawSocket transport: opening handshake and message framing, sans-IO.
//!
//! RawSocket runs over any reliable byte stream (TCP, TLS, Unix sockets).
//! All integers on the wire are big-endian.
//!
//! # Handshake
//!
//! The client sends 4 octets `0x7F, (LENGTH << 4) | SERIALIZER, 0, 0`, where
//! `LENGTH` says the largest message the client is willing to receive,
//! `2^(9 + LENGTH)` octets (512 B up to 16 MiB), and `SERIALIZER` picks the
//! serializer (see [`SERIALIZER_JSON`], [`SERIALIZER_MSGPACK`],
//! [`SERIALIZER_CBOR`]). The router answers with the same structure, echoing
//! the serializer and giving its own receive limit, or with an error reply
//! `0x7F, ERROR << 4, 0, 0` (low nibble 0), see [`HandshakeError`].
//!
//! Router side: [`parse_client_handshake`], then [`server_handshake_reply`]
//! or [`HandshakeError::reply`]. Client side: [`client_handshake`], then
//! [`parse_server_reply`].
//!
//! # Framing
//!
//! Every message is prefixed by a 4-octet header `RRRR XTTT | L23..L0`:
//! `RRRR` reserved (must be 0), `TTT` the frame type ([`FrameKind`]: 0
//! message, 1 PING, 2 PONG, 3–7 reserved), `L` the 24-bit payload length and
//! `X` a 25th length bit, set only for a payload of exactly 2^24 octets (with
//! all `L` bits 0). Write frames with [`write_frame`] /
//! [`encode_frame_header`]; read them with a [`FrameDecoder`].
//!
//! A receiver must answer every PING at once with one PONG carrying the same
//! payload; that is up to the transport driving this module.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The first octet of every handshake request and reply.
pub const MAGIC: u8 = 0x7F;

/// The largest `LENGTH` exponent: `2^(9 + 15)` = 16 MiB.
pub const MAX_LENGTH_EXPONENT: u8 = 15;

/// Serializer id on the wire: JSON.
pub const SERIALIZER_JSON: u8 = 1;
/// Serializer id on the wire: MessagePack.
pub const SERIALIZER_MSGPACK: u8 = 2;
/// Serializer id on the wire: CBOR.
pub const SERIALIZER_CBOR: u8 = 3;

/// Size of a frame header in octets.
pub const FRAME_HEADER_LEN: usize = 4;

/// The largest payload a frame can carry: 2^24 octets (16 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 24;

/// Handshake error code: serializer unsupported.
const ERR_SERIALIZER_UNSUPPORTED: u8 = 1;
/// Handshake error code: maximum message length unacceptable.
const ERR_MAX_LENGTH_UNACCEPTABLE: u8 = 2;
/// Handshake error code: use of reserved bits.
const ERR_RESERVED_BITS: u8 = 3;
/// Handshake error code: maximum connection count reached.
const ERR_CONNECTION_LIMIT: u8 = 4;

/// The maximum message length a `LENGTH` exponent stands for:
/// `2^(9 + exp)` octets. Exponents above [`MAX_LENGTH_EXPONENT`] are
/// treated as 15.
pub fn max_len_from_exponent(exp: u8) -> usize {
    1usize << (9 + u32::from(exp.min(MAX_LENGTH_EXPONENT)))
}

/// The `LENGTH` exponent to advertise for a receive limit of `max_len`
/// octets: the largest `exp` with `2^(9 + exp) <= max_len`, clamped to
/// `0..=15`.
///
/// A limit below 512 octets cannot be expressed; it gives 0 (512 octets).
/// A limit above 16 MiB gives 15 (16 MiB).
pub fn exponent_for_max_len(max_len: usize) -> u8 {
    let mut exp = 0;
    while exp < MAX_LENGTH_EXPONENT && max_len_from_exponent(exp + 1) <= max_len {
        exp += 1;
    }
    exp
}

/// What a client asked for in its handshake request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The requested serializer id (1 JSON, 2 MessagePack, 3 CBOR, …).
    pub serializer: u8,
    /// The largest message the client is willing to receive, in octets: the
    /// router must not send anything longer.
    pub max_len: usize,
}

/// A failed RawSocket handshake.
///
/// On the router side, every variant except [`NotRawSocket`](Self::NotRawSocket)
/// has an error reply to send before closing ([`reply`](Self::reply)). On
/// the client side, it is what the router's error reply said (or what was
/// wrong with the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first octet is not the RawSocket magic `0x7F`.
    #[error("not a RawSocket handshake (first octet is not 0x7F)")]
    NotRawSocket,
    /// The requested serializer is not supported (error code 1). On the
    /// client side also: the router echoed a different serializer.
    #[error("RawSocket serializer unsupported")]
    SerializerUnsupported,
    /// The maximum message length is unacceptable (error code 2).
    #[error("RawSocket maximum message length unacceptable")]
    MaxLengthUnacceptable,
    /// Reserved bits are in use (error code 3).
    #[error("RawSocket handshake uses reserved bits")]
    ReservedBitsUsed,
    /// The router has reached its maximum connection count (error code 4).
    #[error("RawSocket maximum connection count reached")]
    ConnectionLimit,
    /// The router refused with an error code this implementation does not
    /// know (0 or 5–15).
    #[error("RawSocket handshake refused with unknown error code {0}")]
    Refused(u8),
}

impl HandshakeError {
    /// The RawSocket error code of this error (1–15), or `None` if there is
    /// none ([`NotRawSocket`](Self::NotRawSocket), or a
    /// [`Refused`](Self::Refused) code that is not sendable: 0 or above 15).
    pub fn error_code(&self) -> Option<u8> {
        match *self {
            Self::NotRawSocket => None,
            Self::SerializerUnsupported => Some(ERR_SERIALIZER_UNSUPPORTED),
            Self::MaxLengthUnacceptable => Some(ERR_MAX_LENGTH_UNACCEPTABLE),
            Self::ReservedBitsUsed => Some(ERR_RESERVED_BITS),
            Self::ConnectionLimit => Some(ERR_CONNECTION_LIMIT),
            Self::Refused(code) => (1..=15).contains(&code).then_some(code),
        }
    }

    /// The 4-octet error reply a router sends for this error,
    /// `0x7F, code << 4, 0, 0`, or `None` if there is no error code (then
    /// the router just closes the connection).
    pub fn reply(&self) -> Option<[u8; 4]> {
        self.error_code().map(|code| [MAGIC, code << 4, 0, 0])
    }
}

/// Router side: parses the client's 4-octet handshake request.
///
/// `supported(serializer_id)` says whether the router speaks a serializer.
/// Checks, in this order: the magic octet ([`HandshakeError::NotRawSocket`]),
/// the reserved octets 3 and 4 ([`HandshakeError::ReservedBitsUsed`]), the
/// serializer (0 is illegal; otherwise asks `supported`;
/// [`HandshakeError::SerializerUnsupported`]). Every `LENGTH` value is
/// acceptable, so this never returns
/// [`HandshakeError::MaxLengthUnacceptable`]; a router with stricter needs
/// checks [`ClientHandshake::max_len`] itself.
pub fn parse_client_handshake(
    bytes: [u8; 4],
    supported: impl Fn(u8) -> bool,
) -> Result<ClientHandshake, HandshakeError> {
    let [magic, octet2, r1, r2] = bytes;
    if magic != MAGIC {
        return Err(HandshakeError::NotRawSocket);
    }
    if r1 != 0 || r2 != 0 {
        return Err(HandshakeError::ReservedBitsUsed);
    }
    let serializer = octet2 & 0x0F;
    if serializer == 0 || !supported(serializer) {
        return Err(HandshakeError::SerializerUnsupported);
    }
    Ok(ClientHandshake {
        serializer,
        max_len: max_len_from_exponent(octet2 >> 4),
    })
}

/// Builds a handshake octet pair `0x7F, (LENGTH << 4) | serializer, 0, 0`.
fn handshake_bytes(serializer: u8, max_len: usize) -> [u8; 4] {
    debug_assert!(
        (1..=15).contains(&serializer),
        "serializer id must be 1..=15"
    );
    [
        MAGIC,
        (exponent_for_max_len(max_len) << 4) | (serializer & 0x0F),
        0,
        0,
    ]
}

/// Router side: the success reply, echoing `serializer` and advertising
/// `own_max_len` (the largest message the router is willing to receive,
/// rounded down to a power of two between 512 B and 16 MiB, see
/// [`exponent_for_max_len`]).
///
/// `serializer` must be 1–15 (checked by a debug assertion).
pub fn server_handshake_reply(serializer: u8, own_max_len: usize) -> [u8; 4] {
    handshake_bytes(serializer, own_max_len)
}

/// Client side: the handshake request asking for `serializer` and
/// advertising `own_max_len` (the largest message the client is willing to
/// receive, rounded down to a power of two between 512 B and 16 MiB, see
/// [`exponent_for_max_len`]).
///
/// `serializer` must be 1–15 (checked by a debug assertion).
pub fn client_handshake(serializer: u8, own_max_len: usize) -> [u8; 4] {
    handshake_bytes(serializer, own_max_len)
}

/// Client side: parses the router's 4-octet reply to a request for
/// `requested_serializer`, returning the router's receive limit in octets
/// (the client must not send longer messages).
///
/// Errors: wrong magic → [`HandshakeError::NotRawSocket`]; non-zero
/// reserved octets → [`HandshakeError::ReservedBitsUsed`]; an error reply
/// (low nibble 0) → the variant for its code, unknown codes (0, 5–15) as
/// [`HandshakeError::Refused`]; a serializer other than the requested one →
/// [`HandshakeError::SerializerUnsupported`].
pub fn parse_server_reply(
    bytes: [u8; 4],
    requested_serializer: u8,
) -> Result<usize, HandshakeError> {
    let [magic, octet2, r1, r2] = bytes;
    if magic != MAGIC {
        return Err(HandshakeError::NotRawSocket);
    }
    if r1 != 0 || r2 != 0 {
        return Err(HandshakeError::ReservedBitsUsed);
    }
    let serializer = octet2 & 0x0F;
    let high = octet2 >> 4;
    if serializer == 0 {
        return Err(match high {
            ERR_SERIALIZER_UNSUPPORTED => HandshakeError::SerializerUnsupported,
            ERR_MAX_LENGTH_UNACCEPTABLE => HandshakeError::MaxLengthUnacceptable,
            ERR_RESERVED_BITS => HandshakeError::ReservedBitsUsed,
            ERR_CONNECTION_LIMIT => HandshakeError::ConnectionLimit,
            other => HandshakeError::Refused(other),
        });
    }
    if serializer != requested_serializer {
        return Err(HandshakeError::SerializerUnsupported);
    }
    Ok(max_len_from_exponent(high))
}

/// The type of a RawSocket frame (the `TTT` bits of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A serialized WAMP message (type 0).
    Message,
    /// A PING with arbitrary payload (type 1); answer with a PONG echoing it.
    Ping,
    /// A PONG echoing a PING's payload (type 2).
    Pong,
}

impl FrameKind {
    /// The 3-bit type code of this kind on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Message => 0,
            Self::Ping => 1,
            Self::Pong => 2,
        }
    }

    /// The kind for a type code, or `None` for the reserved codes 3–7 (and
    /// anything larger).
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Message),
            1 => Some(Self::Ping),
            2 => Some(Self::Pong),
            _ => None,
        }
    }
}

/// Encodes the 4-octet header of a frame of `kind` with a payload of `len`
/// octets.
///
/// The caller guarantees `len <= 2^24` ([`MAX_FRAME_LEN`]); that is checked
/// by a debug assertion only. A payload of exactly 2^24 octets sets the `X`
/// bit. In release builds a larger `len` does not panic but yields a wrong
/// header (its length is truncated to the low 24 bits).
pub fn encode_frame_header(kind: FrameKind, len: usize) -> [u8; 4] {
    debug_assert!(
        len <= MAX_FRAME_LEN,
        "RawSocket frame payload too long: {len}"
    );
    let (x_bit, low) = if len == MAX_FRAME_LEN {
        (0x08, 0)
    } else {
        (0x00, len & 0x00FF_FFFF)
    };
    let [_, l2, l1, l0] = u32::try_from(low).unwrap_or(0).to_be_bytes();
    [x_bit | kind.code(), l2, l1, l0]
}

/// Appends a whole frame (header and payload) of `kind` to `out`.
///
/// The caller guarantees `payload.len() <= 2^24`, as for
/// [`encode_frame_header`]; it should also respect the receiver's
/// advertised limit.
pub fn write_frame(out: &mut BytesMut, kind: FrameKind, payload: &[u8]) {
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.put_slice(&encode_frame_header(kind, payload.len()));
    out.put_slice(payload);
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame type.
    pub kind: FrameKind,
    /// The payload (a serialized WAMP message, or PING/PONG data).
    pub payload: Bytes,
}

/// A frame header the receiver must refuse; the connection must be failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared payload length exceeds the receiver's limit.
    #[error("RawSocket frame of {len} octets exceeds the limit of {max} octets")]
    TooLong {
        /// The payload length the header declared.
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// One of the four reserved high bits of the header is set.
    #[error("RawSocket frame header uses reserved bits")]
    ReservedBits,
    /// The frame type is one of the reserved codes 3–7.
    #[error("unknown RawSocket frame type {0}")]
    UnknownKind(u8),
}

/// Incremental frame decoder over a receive buffer.
///
/// Feed received octets into a [`BytesMut`] and call
/// [`decode`](Self::decode) until it returns `Ok(None)`. The header is
/// checked as soon as its 4 octets are buffered, so an over-long frame is
/// refused before any of its payload arrives, and no memory is reserved for
/// it. The limit applies to every frame kind, PING and PONG included.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// The largest payload accepted, at most [`MAX_FRAME_LEN`].
    max_len: usize,
}

impl FrameDecoder {
    /// A decoder accepting payloads of up to `max_len` octets (normally the
    /// limit this side advertised in the handshake). Values above 2^24 are
    /// clamped to 2^24, the largest length a frame header can express.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.min(MAX_FRAME_LEN),
        }
    }

    /// The largest payload length accepted, in octets.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Decodes the next frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete (leaving `buf`
    /// untouched, apart from possibly reserving room for the rest of an
    /// accepted frame), and `Ok(Some(frame))` once it is complete, removing
    /// exactly that frame from `buf`; the payload is split off without
    /// copying. Errors are reported from the header alone; after an error
    /// the stream cannot be resynchronised and the connection must be
    /// failed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let word = u32::from_be_bytes(*header);
        if word >> 28 != 0 {
            return Err(FrameError::ReservedBits);
        }
        // `word >> 24` is at most 0x0F after the check above.
        let type_code = ((word >> 24) & 0x07) as u8;
        let kind = FrameKind::from_code(type_code).ok_or(FrameError::UnknownKind(type_code))?;
        // The X bit (bit 27) is the 25th length bit, above the 24 `L` bits.
        let x_bit = (word >> 27) & 1;
        let len = ((x_bit << 24) | (word & 0x00FF_FFFF)) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLong {
                len,
                max: self.max_len,
            });
        }
        let total = FRAME_HEADER_LEN + len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(FRAME_HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        Ok(Some(Frame { kind, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KINDS: [FrameKind; 3] = [FrameKind::Message, FrameKind::Ping, FrameKind::Pong];

    fn supports_all_three(s: u8) -> bool {
        matches!(s, SERIALIZER_JSON | SERIALIZER_MSGPACK | SERIALIZER_CBOR)
    }

    #[test]
    fn length_exponents() {
        assert_eq!(max_len_from_exponent(0), 512);
        assert_eq!(max_len_from_exponent(1), 1024);
        assert_eq!(max_len_from_exponent(14), 8 << 20);
        assert_eq!(max_len_from_exponent(15), 16 << 20);
        assert_eq!(max_len_from_exponent(16), 16 << 20);
        assert_eq!(max_len_from_exponent(u8::MAX), 16 << 20);
        for exp in 0..=MAX_LENGTH_EXPONENT {
            let len = max_len_from_exponent(exp);
            assert_eq!(exponent_for_max_len(len), exp);
            assert_eq!(exponent_for_max_len(len + 1), exp);
            if exp > 0 {
                assert_eq!(exponent_for_max_len(len - 1), exp - 1);
            }
        }
        assert_eq!(exponent_for_max_len(0), 0);
        assert_eq!(exponent_for_max_len(511), 0);
        assert_eq!(exponent_for_max_len(usize::MAX), 15);
        assert_eq!(exponent_for_max_len(1 << 30), 15);
    }

    #[test]
    fn spec_handshake_examples() {
        assert_eq!(
            client_handshake(SERIALIZER_JSON, 16 << 20),
            [0x7F, 0xF1, 0, 0]
        );
        assert_eq!(
            client_handshake(SERIALIZER_CBOR, 16 << 20),
            [0x7F, 0xF3, 0, 0]
        );
        assert_eq!(
            client_handshake(SERIALIZER_MSGPACK, 512),
            [0x7F, 0x02, 0, 0]
        );

        assert_eq!(
            parse_client_handshake([0x7F, 0xF1, 0, 0], supports_all_three),
            Ok(ClientHandshake {
                serializer: SERIALIZER_JSON,
                max_len: 16 << 20
            })
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0x02, 0, 0], supports_all_three),
            Ok(ClientHandshake {
                serializer: SERIALIZER_MSGPACK,
                max_len: 512
            })
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0xF3, 0, 0], supports_all_three),
            Ok(ClientHandshake {
                serializer: SERIALIZER_CBOR,
                max_len: 16 << 20
            })
        );
    }

    #[test]
    fn client_handshake_errors_and_replies() {
        let parse = |b| parse_client_handshake(b, supports_all_three);
        // Not RawSocket (e.g. an HTTP request): no reply, just close.
        assert_eq!(parse(*b"GET "), Err(HandshakeError::NotRawSocket));
        assert_eq!(HandshakeError::NotRawSocket.reply(), None);
        // Unknown serializer 9 and illegal serializer 0.
        let e = parse([0x7F, 0xF9, 0, 0]).expect_err("must fail");
        assert_eq!(e, HandshakeError::SerializerUnsupported);
        assert_eq!(e.reply(), Some([0x7F, 0x10, 0, 0]));
        assert_eq!(
            parse([0x7F, 0xF0, 0, 0]),
            Err(HandshakeError::SerializerUnsupported)
        );
        // UBJSON is a valid id but the router does not support it.
        assert_eq!(
            parse([0x7F, 0x14, 0, 0]),
            Err(HandshakeError::SerializerUnsupported)
        );
        // Reserved octets in use.
        let e = parse([0x7F, 0xF1, 0, 1]).expect_err("must fail");
        assert_eq!(e, HandshakeError::ReservedBitsUsed);
        assert_eq!(e.reply(), Some([0x7F, 0x30, 0, 0]));
        assert_eq!(
            parse([0x7F, 0xF1, 0x80, 0]),
            Err(HandshakeError::ReservedBitsUsed)
        );
        // Errors the router raises on its own.
        assert_eq!(
            HandshakeError::MaxLengthUnacceptable.reply(),
            Some([0x7F, 0x20, 0, 0])
        );
        assert_eq!(
            HandshakeError::ConnectionLimit.reply(),
            Some([0x7F, 0x40, 0, 0])
        );
        assert_eq!(HandshakeError::Refused(7).reply(), Some([0x7F, 0x70, 0, 0]));
        assert_eq!(HandshakeError::Refused(0).reply(), None);
        assert_eq!(HandshakeError::Refused(16).reply(), None);
    }

    #[test]
    fn supported_predicate_is_consulted() {
        let only_cbor = |s| s == SERIALIZER_CBOR;
        assert!(parse_client_handshake([0x7F, 0x13, 0, 0], only_cbor).is_ok());
        assert_eq!(
            parse_client_handshake([0x7F, 0x11, 0, 0], only_cbor),
            Err(HandshakeError::SerializerUnsupported)
        );
    }

    #[test]
    fn server_reply_round_trip() {
        for ser in [SERIALIZER_JSON, SERIALIZER_MSGPACK, SERIALIZER_CBOR] {
            for exp in 0..=MAX_LENGTH_EXPONENT {
                let len = max_len_from_exponent(exp);
                let reply = server_handshake_reply(ser, len);
                assert_eq!(reply, [0x7F, (exp << 4) | ser, 0, 0]);
                assert_eq!(parse_server_reply(reply, ser), Ok(len));
                let req = client_handshake(ser, len);
                assert_eq!(
                    parse_client_handshake(req, supports_all_three),
                    Ok(ClientHandshake {
                        serializer: ser,
                        max_len: len
                    })
                );
            }
        }
    }

    #[test]
    fn server_reply_errors() {
        let p = |b| parse_server_reply(b, SERIALIZER_JSON);
        assert_eq!(
            p([0x7F, 0x10, 0, 0]),
            Err(HandshakeError::SerializerUnsupported)
        );
        assert_eq!(
            p([0x7F, 0x20, 0, 0]),
            Err(HandshakeError::MaxLengthUnacceptable)
        );
        assert_eq!(p([0x7F, 0x30, 0, 0]), Err(HandshakeError::ReservedBitsUsed));
        assert_eq!(p([0x7F, 0x40, 0, 0]), Err(HandshakeError::ConnectionLimit));
        assert_eq!(p([0x7F, 0x00, 0, 0]), Err(HandshakeError::Refused(0)));
        assert_eq!(p([0x7F, 0x50, 0, 0]), Err(HandshakeError::Refused(5)));
        assert_eq!(p([0x7F, 0xF0, 0, 0]), Err(HandshakeError::Refused(15)));
        // Echo mismatch.
        assert_eq!(
            p([0x7F, 0xF2, 0, 0]),
            Err(HandshakeError::SerializerUnsupported)
        );
        assert_eq!(p([0x00, 0xF1, 0, 0]), Err(HandshakeError::NotRawSocket));
        assert_eq!(p([0x7F, 0xF1, 1, 0]), Err(HandshakeError::ReservedBitsUsed));
        // Every error with a code parses back from its own reply.
        for e in [
            HandshakeError::SerializerUnsupported,
            HandshakeError::MaxLengthUnacceptable,
            HandshakeError::ReservedBitsUsed,
            HandshakeError::ConnectionLimit,
            HandshakeError::Refused(9),
        ] {
            let reply = e.reply().expect("has a code");
            assert_eq!(p(reply), Err(e));
        }
    }

    #[test]
    fn error_codes_and_messages() {
        assert_eq!(HandshakeError::NotRawSocket.error_code(), None);
        assert_eq!(HandshakeError::SerializerUnsupported.error_code(), Some(1));
        assert_eq!(HandshakeError::MaxLengthUnacceptable.error_code(), Some(2));
        assert_eq!(HandshakeError::ReservedBitsUsed.error_code(), Some(3));
        assert_eq!(HandshakeError::ConnectionLimit.error_code(), Some(4));
        assert_eq!(HandshakeError::Refused(12).error_code(), Some(12));
        assert_eq!(
            HandshakeError::ConnectionLimit.to_string(),
            "RawSocket maximum connection count reached"
        );
        assert_eq!(
            FrameError::TooLong { len: 10, max: 5 }.to_string(),
            "RawSocket frame of 10 octets exceeds the limit of 5 octets"
        );
    }

    #[test]
    fn frame_headers() {
        assert_eq!(encode_frame_header(FrameKind::Message, 0), [0, 0, 0, 0]);
        assert_eq!(encode_frame_header(FrameKind::Ping, 5), [1, 0, 0, 5]);
        assert_eq!(
            encode_frame_header(FrameKind::Pong, 0x01_0203),
            [2, 1, 2, 3]
        );
        assert_eq!(
            encode_frame_header(FrameKind::Message, MAX_FRAME_LEN - 1),
            [0x00, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            encode_frame_header(FrameKind::Message, MAX_FRAME_LEN),
            [0x08, 0, 0, 0]
        );
        assert_eq!(
            encode_frame_header(FrameKind::Pong, MAX_FRAME_LEN),
            [0x0A, 0, 0, 0]
        );
        for kind in KINDS {
            assert_eq!(FrameKind::from_code(kind.code()), Some(kind));
        }
        for code in 3..=255 {
            assert_eq!(FrameKind::from_code(code), None);
        }
    }

    #[test]
    fn round_trip_every_kind() {
        let mut dec = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        for kind in KINDS {
            write_frame(&mut buf, kind, b"hello");
            write_frame(&mut buf, kind, b"");
        }
        for kind in KINDS {
            let f = dec.decode(&mut buf).expect("valid").expect("complete");
            assert_eq!(
                f,
                Frame {
                    kind,
                    payload: Bytes::from_static(b"hello")
                }
            );
            let f = dec.decode(&mut buf).expect("valid").expect("complete");
            assert_eq!(
                f,
                Frame {
                    kind,
                    payload: Bytes::new()
                }
            );
        }
        assert!(buf.is_empty());
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn frame_of_exactly_max_frame_len() {
        let payload = vec![0xAB; MAX_FRAME_LEN];
        let mut buf = BytesMut::new();
        write_frame(&mut buf, FrameKind::Message, &payload);
        assert_eq!(&buf[..4], &[0x08, 0, 0, 0]);
        assert_eq!(buf.len(), 4 + MAX_FRAME_LEN);
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        let f = dec.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(f.kind, FrameKind::Message);
        assert_eq!(f.payload.len(), MAX_FRAME_LEN);
        assert!(f.payload.iter().all(|&b| b == 0xAB));
        assert!(buf.is_empty());
        // One octet less than 2^24 is still fine and does not use X.
        let mut small = FrameDecoder::new(MAX_FRAME_LEN - 1);
        let mut buf = BytesMut::from(&[0x08u8, 0, 0, 0][..]);
        assert_eq!(
            small.decode(&mut buf),
            Err(FrameError::TooLong {
                len: MAX_FRAME_LEN,
                max: MAX_FRAME_LEN - 1
            })
        );
    }

    #[test]
    fn x_bit_with_low_bits_is_too_long() {
        let mut dec = FrameDecoder::new(usize::MAX);
        assert_eq!(dec.max_len(), MAX_FRAME_LEN);
        let mut buf = BytesMut::from(&[0x08u8, 0, 0, 1][..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLong {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn byte_by_byte_input() {
        let mut wire = BytesMut::new();
        write_frame(&mut wire, FrameKind::Message, b"[1,\"realm1\",{}]");
        write_frame(&mut wire, FrameKind::Ping, b"\x00\x01");
        let mut dec = FrameDecoder::new(512);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            while let Some(f) = dec.decode(&mut buf).expect("valid") {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame {
                    kind: FrameKind::Message,
                    payload: Bytes::from_static(b"[1,\"realm1\",{}]")
                },
                Frame {
                    kind: FrameKind::Ping,
                    payload: Bytes::from_static(b"\x00\x01")
                },
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_frame_leaves_buffer_alone() {
        let mut dec = FrameDecoder::new(512);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, b'a', b'b'][..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &[0, 0, 0, 3, b'a', b'b']);
        buf.put_slice(b"cEXTRA");
        let f = dec.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(f.payload, Bytes::from_static(b"abc"));
        assert_eq!(&buf[..], b"EXTRA");
    }

    #[test]
    fn over_length_refused_from_header_alone() {
        let mut dec = FrameDecoder::new(512);
        let mut buf = BytesMut::new();
        buf.put_slice(&encode_frame_header(FrameKind::Message, 513));
        let cap_before = buf.capacity();
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooLong { len: 513, max: 512 })
        );
        assert_eq!(
            buf.capacity(),
            cap_before,
            "no room reserved for a refused frame"
        );
        // The limit covers PINGs too; exactly the limit is fine.
        let mut buf = BytesMut::new();
        buf.put_slice(&encode_frame_header(FrameKind::Ping, 1 << 20));
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::TooLong { .. })
        ));
        let mut buf = BytesMut::new();
        write_frame(&mut buf, FrameKind::Message, &[7; 512]);
        assert!(dec.decode(&mut buf).expect("valid").is_some());
    }

    #[test]
    fn reserved_bits_and_unknown_kinds() {
        let mut dec = FrameDecoder::new(512);
        for first in [0x10u8, 0x20, 0x40, 0x80, 0xF0, 0x11] {
            let mut buf = BytesMut::from(&[first, 0, 0, 0][..]);
            assert_eq!(
                dec.decode(&mut buf),
                Err(FrameError::ReservedBits),
                "{first:#x}"
            );
        }
        for code in 3u8..=7 {
            let mut buf = BytesMut::from(&[code, 0, 0, 0][..]);
            assert_eq!(dec.decode(&mut buf), Err(FrameError::UnknownKind(code)));
        }
        // Fewer than 4 octets: nothing to judge yet.
        let mut buf = BytesMut::from(&[0xFFu8, 0xFF, 0xFF][..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            data in prop::collection::vec(any::<u8>(), 0..2048),
            chunk in 1usize..64,
            max_len in 0usize..1024,
        ) {
            let mut dec = FrameDecoder::new(max_len);
            let mut buf = BytesMut::new();
            'feed: for piece in data.chunks(chunk) {
                buf.put_slice(piece);
                loop {
                    match dec.decode(&mut buf) {
                        Ok(Some(f)) => prop_assert!(f.payload.len() <= max_len),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        #[test]
        fn frames_round_trip_in_any_chunking(
            frames in prop::collection::vec(
                (0u8..3, prop::collection::vec(any::<u8>(), 0..300)),
                0..8,
            ),
            chunk in 1usize..100,
        ) {
            let frames: Vec<Frame> = frames
                .into_iter()
                .map(|(code, p)| Frame {
                    kind: FrameKind::from_code(code).unwrap_or(FrameKind::Message),
                    payload: Bytes::from(p),
                })
                .collect();
            let mut wire = BytesMut::new();
            for f in &frames {
                write_frame(&mut wire, f.kind, &f.payload);
            }
            let mut dec = FrameDecoder::new(300);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.put_slice(piece);
                while let Some(f) = dec.decode(&mut buf).expect("valid frames") {
                    out.push(f);
                }
            }
            prop_assert_eq!(out, frames);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn header_round_trip(code in 0u8..3, len in 0usize..=MAX_FRAME_LEN) {
            let kind = FrameKind::from_code(code).unwrap_or(FrameKind::Message);
            let header = encode_frame_header(kind, len);
            let mut buf = BytesMut::from(&header[..]);
            let mut dec = FrameDecoder::new(0);
            match dec.decode(&mut buf) {
                Ok(Some(f)) => {
                    prop_assert_eq!(len, 0);
                    prop_assert_eq!(f.kind, kind);
                }
                Err(FrameError::TooLong { len: got, max: 0 }) => prop_assert_eq!(got, len),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn handshake_parsing_never_panics(bytes in any::<[u8; 4]>(), req in 0u8..16) {
            let _ = parse_client_handshake(bytes, |_| true);
            let _ = parse_server_reply(bytes, req);
        }
    }
}
