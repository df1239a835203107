//! WAMP over WebSocket: subprotocol negotiation (`wamp.2.json`, `wamp.2.msgpack`,
//! `wamp.2.cbor`), JSON in text messages, the binary serializers in binary messages.
//!
//! The HTTP upgrade is tungstenite's; after it, the connection runs on our own
//! server-side RFC 6455 framing ([`WebSocketIo`]) straight over the socket: frames
//! are parsed and unmasked in the read buffer, unfragmented messages are handed on
//! as zero-copy slices of it, a whole batch of outgoing frames is one write, and an
//! idle connection holds no read buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self};
use wamp_proto::Serializer;

use super::{read_some, FrameIo, ReadReady, TransportError};

/// tungstenite's read buffer, used only during the handshake.
const HANDSHAKE_READ_BUFFER_SIZE: usize = 1024;

/// The subprotocols offered, for error texts.
const OFFERED: &str = "wamp.2.json, wamp.2.msgpack, wamp.2.cbor";

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close status codes.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// The longest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

#[allow(clippy::result_large_err)]
fn refuse(status: StatusCode, text: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text));
    *response.status_mut() = status;
    response
}

/// Picks the first subprotocol in the client's list that is supported.
pub fn choose_subprotocol(header: Option<&HeaderValue>) -> Option<Serializer> {
    let header = header?.to_str().ok()?;
    header
        .split(',')
        .map(str::trim)
        .find_map(Serializer::from_subprotocol)
}

/// Performs the WebSocket handshake on `stream` and gives the stream back for
/// [`WebSocketIo`]. Refuses, with an HTTP error that says why, a wrong path or a
/// request that offers no supported WAMP subprotocol.
#[allow(clippy::result_large_err)] // the error type is tungstenite's
pub async fn accept<S>(stream: S, path: &str) -> Result<(S, Serializer), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut chosen = None;
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        if request.uri().path() != path {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no WAMP endpoint at this path; use {path}\n"),
            ));
        }
        let header = request.headers().get("Sec-WebSocket-Protocol");
        let Some(serializer) = choose_subprotocol(header) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "this is a WAMP router: offer one of the WebSocket subprotocols {OFFERED}\n"
                ),
            ));
        };
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(serializer.subprotocol()),
        );
        chosen = Some(serializer);
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(HANDSHAKE_READ_BUFFER_SIZE);
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?;
    let serializer = chosen.ok_or(tungstenite::Error::ConnectionClosed)?;
    // Safe to take the stream back: tungstenite's server handshake refuses a request
    // followed by more bytes (`JunkAfterRequest`; a client must wait for the 101), so
    // nothing of the WebSocket stream is left in its buffers.
    Ok((ws.into_inner(), serializer))
}

/// What the decoder found at the front of the read buffer.
#[derive(Debug, PartialEq)]
enum Step {
    /// A complete data message.
    Message(Bytes),
    /// A PING with its payload.
    Ping(Bytes),
    /// A PONG (ignored).
    Pong,
    /// A CLOSE; the status code to send back.
    Close(u16),
    /// The next frame is incomplete: at least this many more bytes are needed.
    Need(usize),
}

/// A data message being reassembled from fragments.
#[derive(Debug)]
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// Server-side RFC 6455 frame decoder (no extensions).
#[derive(Debug)]
struct Decoder {
    max_message_size: usize,
    fragments: Option<Fragments>,
}

fn framing(why: &str) -> TransportError {
    TransportError::Framing(why.to_owned())
}

impl Decoder {
    fn new(max_message_size: usize) -> Self {
        Decoder {
            max_message_size,
            fragments: None,
        }
    }

    /// Takes the next message or control frame off the front of `buf`, if
    /// complete. Errors are fatal.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, TransportError> {
        loop {
            if let Some(step) = self.frame(buf)? {
                return Ok(step);
            }
        }
    }

    /// Takes one frame off the front of `buf`; `None` when it was a fragment that
    /// did not finish its message.
    fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, TransportError> {
        let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
            return Ok(Some(Step::Need(2 - buf.len())));
        };
        if b0 & 0x70 != 0 {
            return Err(framing("reserved bits set (no extension was negotiated)"));
        }
        if b1 & 0x80 == 0 {
            return Err(framing("client frame is not masked"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let (len, offset) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(Some(Step::Need(4 - buf.len()))),
            },
            127 => match buf.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(bytes) => (u64::from_be_bytes(bytes), 10),
                None => return Ok(Some(Step::Need(10 - buf.len()))),
            },
            short => (u64::from(short), 2),
        };
        // Saturates on 32-bit targets; the limits below then refuse the frame.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(framing("fragmented control frame"));
                }
                if len > MAX_CONTROL_PAYLOAD {
                    return Err(framing("control frame longer than 125 bytes"));
                }
            }
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                let started = self.fragments.as_ref().map(|f| f.data.len());
                match (opcode, started) {
                    (OP_CONTINUATION, None) => {
                        return Err(framing("continuation frame outside a fragmented message"))
                    }
                    (OP_TEXT | OP_BINARY, Some(_)) => {
                        return Err(framing("new message inside a fragmented message"))
                    }
                    _ => {}
                }
                // Also refuses a length with the top bit set (over any limit).
                let total = started.unwrap_or(0).saturating_add(len);
                if total > self.max_message_size {
                    return Err(TransportError::TooLarge(total));
                }
            }
            other => return Err(TransportError::Framing(format!("unknown opcode {other}"))),
        }
        let header_len = offset + 4;
        let frame_len = header_len + len;
        if buf.len() < frame_len {
            return Ok(Some(Step::Need(frame_len - buf.len())));
        }
        let mut key = [0u8; 4];
        key.copy_from_slice(&buf[offset..header_len]);
        buf.advance(header_len);
        let mut payload = buf.split_to(len);
        unmask(&mut payload, key);
        match opcode {
            OP_PING => Ok(Some(Step::Ping(payload.freeze()))),
            OP_PONG => Ok(Some(Step::Pong)),
            OP_CLOSE => Ok(Some(close_reply(&payload))),
            OP_CONTINUATION => {
                let Some(fragments) = self.fragments.as_mut() else {
                    return Err(framing("continuation frame outside a fragmented message"));
                };
                fragments.data.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let Some(Fragments { text, data }) = self.fragments.take() else {
                    return Err(framing("continuation frame outside a fragmented message"));
                };
                message(text, data).map(Some)
            }
            _ => {
                let text = opcode == OP_TEXT;
                if fin {
                    message(text, payload).map(Some)
                } else {
                    self.fragments = Some(Fragments {
                        text,
                        data: payload,
                    });
                    Ok(None)
                }
            }
        }
    }
}

fn message(text: bool, data: BytesMut) -> Result<Step, TransportError> {
    if text && std::str::from_utf8(&data).is_err() {
        return Err(framing("text message is not valid UTF-8"));
    }
    Ok(Step::Message(data.freeze()))
}

/// The status code to answer a CLOSE with: its own, or 1002 for a malformed one.
fn close_reply(payload: &[u8]) -> Step {
    let code = match payload {
        [] => CLOSE_NORMAL,
        [_] => CLOSE_PROTOCOL_ERROR,
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            // Codes a peer may send (RFC 6455 §7.4; 1012–1014 are IANA-registered).
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if valid && std::str::from_utf8(reason).is_ok() {
                code
            } else {
                CLOSE_PROTOCOL_ERROR
            }
        }
    };
    Step::Close(code)
}

/// XORs `data` with the repeating 4-byte `key`, 8 bytes at a time.
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let [a, b, c, d] = key;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
        }
    }
    // The remainder starts at a multiple of 8, so the key starts over.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// Appends an unmasked (server) frame header with FIN set.
fn put_header(buf: &mut BytesMut, opcode: u8, len: usize) {
    buf.put_u8(0x80 | opcode);
    if len < 126 {
        buf.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        buf.put_u8(126);
        buf.put_u16(len);
    } else {
        buf.put_u8(127);
        buf.put_u64(len as u64);
    }
}

fn put_close(buf: &mut BytesMut, code: u16) {
    put_header(buf, OP_CLOSE, 2);
    buf.put_u16(code);
}

/// An established WAMP-over-WebSocket transport (server side).
pub struct WebSocketIo<S> {
    stream: S,
    /// Opcode of outgoing messages: text for JSON, binary otherwise.
    opcode: u8,
    decoder: Decoder,
    read_buf: BytesMut,
    /// PONG and CLOSE frames not yet (completely) written; they go out before
    /// anything else so frames never interleave.
    pending_control: BytesMut,
    close_received: bool,
    close_sent: bool,
}

impl<S> WebSocketIo<S> {
    /// Wraps a stream after the handshake; the peer's messages may be up to
    /// `max_message_size` bytes (all fragments together).
    pub fn new(stream: S, serializer: Serializer, max_message_size: usize) -> Self {
        WebSocketIo {
            stream,
            opcode: if serializer.is_binary() {
                OP_BINARY
            } else {
                OP_TEXT
            },
            decoder: Decoder::new(max_message_size),
            read_buf: BytesMut::new(),
            pending_control: BytesMut::new(),
            close_received: false,
            close_sent: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> WebSocketIo<S> {
    /// Writes the queued control frames. Each `write` either happens or not, so
    /// this is cancel-safe.
    async fn flush_control(&mut self) -> std::io::Result<()> {
        if self.pending_control.is_empty() {
            return Ok(());
        }
        while !self.pending_control.is_empty() {
            let n = self.stream.write(&self.pending_control).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.pending_control.advance(n);
        }
        self.stream.flush().await?;
        self.pending_control = BytesMut::new();
        Ok(())
    }
}

impl<S> FrameIo for WebSocketIo<S>
where
    S: ReadReady + AsyncWrite + Unpin + Send + Sync,
{
    async fn recv(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            if self.close_received {
                self.flush_control().await?;
                return Ok(None);
            }
            match self.decoder.decode(&mut self.read_buf)? {
                Step::Message(message) => return Ok(Some(message)),
                Step::Ping(payload) => {
                    if !self.close_sent {
                        put_header(&mut self.pending_control, OP_PONG, payload.len());
                        self.pending_control.extend_from_slice(&payload);
                    }
                }
                Step::Pong => {}
                Step::Close(code) => {
                    self.close_received = true;
                    if !self.close_sent {
                        put_close(&mut self.pending_control, code);
                        self.close_sent = true;
                    }
                }
                Step::Need(want) => {
                    // Answer PINGs at once rather than with the next message.
                    self.flush_control().await?;
                    if read_some(&mut self.stream, &mut self.read_buf, want).await? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn send_batch(&mut self, frames: &[Bytes]) -> Result<(), TransportError> {
        if self.close_sent {
            // No data frames after a CLOSE.
            self.flush_control().await?;
            return Ok(());
        }
        let size: usize = frames.iter().map(|f| f.len() + 10).sum();
        let mut out = BytesMut::with_capacity(size + self.pending_control.len());
        // A partly written control frame goes first so frames never interleave.
        out.extend_from_slice(&self.pending_control);
        self.pending_control = BytesMut::new();
        for frame in frames {
            // The router's JSON encoder writes UTF-8 only: no validation here.
            put_header(&mut out, self.opcode, frame.len());
            out.extend_from_slice(frame);
        }
        self.stream.write_all(&out).await?;
        // A no-op on plain sockets; TLS may keep the last record until flushed.
        self.stream.flush().await?;
        Ok(())
    }

    async fn close(&mut self) {
        if !self.close_sent {
            put_close(&mut self.pending_control, CLOSE_NORMAL);
            self.close_sent = true;
        }
        if self.flush_control().await.is_ok() {
            let _ = self.stream.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixStream;

    #[test]
    fn first_supported_subprotocol_in_the_clients_order_wins() {
        let h = HeaderValue::from_static("wamp.2.cbor.batched, wamp.2.cbor, wamp.2.json");
        assert_eq!(choose_subprotocol(Some(&h)), Some(Serializer::Cbor));
        let h = HeaderValue::from_static("wamp.2.json");
        assert_eq!(choose_subprotocol(Some(&h)), Some(Serializer::Json));
        let h = HeaderValue::from_static("mqtt, chat");
        assert_eq!(choose_subprotocol(Some(&h)), None);
        assert_eq!(choose_subprotocol(None), None);
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().zip(KEY.iter().cycle()).map(|(b, k)| b ^ k));
        out
    }

    fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Step>, TransportError> {
        let mut buf = BytesMut::from(bytes);
        let mut steps = Vec::new();
        loop {
            match decoder.decode(&mut buf)? {
                Step::Need(_) => return Ok(steps),
                step => steps.push(step),
            }
        }
    }

    fn msg(bytes: &[u8]) -> Step {
        Step::Message(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut d = Decoder::new(1024);
        assert_eq!(decode_all(&mut d, &frame).ok(), Some(vec![msg(b"Hello")]));
        assert_eq!(client_frame(true, OP_TEXT, b"Hello"), frame);
    }

    #[test]
    fn unmask_matches_bytewise_xor_for_every_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, KEY);
            let slow: Vec<u8> = data
                .iter()
                .zip(KEY.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    #[test]
    fn each_length_encoding() {
        for len in [0, 1, 125, 126, 127, 1000, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = client_frame(true, OP_BINARY, &payload);
            let header = frame.len() - len;
            let expected = if len < 126 {
                6
            } else if len < 65_536 {
                8
            } else {
                14
            };
            assert_eq!(header, expected, "header of {len}");
            let mut d = Decoder::new(100_000);
            // Incomplete frames ask for more.
            let mut partial = BytesMut::from(&frame[..frame.len() - 1]);
            assert!(matches!(d.decode(&mut partial).ok(), Some(Step::Need(_))));
            assert_eq!(
                decode_all(&mut d, &frame).ok(),
                Some(vec![msg(&payload)]),
                "len {len}"
            );
        }
    }

    #[test]
    fn server_headers_use_the_shortest_length_encoding() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut buf = BytesMut::new();
            put_header(&mut buf, OP_TEXT, len);
            assert_eq!(buf.len(), header, "len {len}");
            assert_eq!(buf[0], 0x81);
        }
        let mut buf = BytesMut::new();
        put_header(&mut buf, OP_BINARY, 300);
        assert_eq!(&buf[..], &[0x82, 126, 1, 44]);
    }

    #[test]
    fn fragmented_text_with_a_ping_in_between() {
        let mut bytes = client_frame(false, OP_TEXT, "[1,\"réa".as_bytes());
        bytes.extend(client_frame(true, OP_PING, b"are you there"));
        // A fragment boundary inside a multi-byte UTF-8 character is fine.
        let text = "lm1\",{}]".as_bytes();
        bytes.extend(client_frame(false, OP_CONTINUATION, &[]));
        bytes.extend(client_frame(true, OP_CONTINUATION, text));
        let mut d = Decoder::new(1024);
        assert_eq!(
            decode_all(&mut d, &bytes).ok(),
            Some(vec![
                Step::Ping(Bytes::from_static(b"are you there")),
                msg("[1,\"réalm1\",{}]".as_bytes())
            ])
        );
        // Split inside "é".
        let word = "é".as_bytes();
        let mut bytes = client_frame(false, OP_TEXT, &word[..1]);
        bytes.extend(client_frame(true, OP_CONTINUATION, &word[1..]));
        assert_eq!(decode_all(&mut d, &bytes).ok(), Some(vec![msg(word)]));
    }

    #[test]
    fn bad_utf8_in_text_is_refused_but_not_in_binary() {
        let mut d = Decoder::new(1024);
        let r = decode_all(&mut d, &client_frame(true, OP_TEXT, &[0x5b, 0xff, 0x5d]));
        assert!(matches!(r, Err(TransportError::Framing(_))), "{r:?}");
        let mut d = Decoder::new(1024);
        let mut bytes = client_frame(false, OP_TEXT, b"ok");
        bytes.extend(client_frame(true, OP_CONTINUATION, &[0xc3]));
        assert!(matches!(
            decode_all(&mut d, &bytes),
            Err(TransportError::Framing(_))
        ));
        let mut d = Decoder::new(1024);
        let r = decode_all(&mut d, &client_frame(true, OP_BINARY, &[0xff]));
        assert_eq!(r.ok(), Some(vec![msg(&[0xff])]));
    }

    fn expect_framing(bytes: &[u8], what: &str) {
        let mut d = Decoder::new(1024);
        match decode_all(&mut d, bytes) {
            Err(TransportError::Framing(_)) => {}
            other => panic!("{what}: expected a framing error, got {other:?}"),
        }
    }

    #[test]
    fn protocol_errors() {
        let mut rsv = client_frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        expect_framing(&rsv, "RSV1 set");
        let mut rsv3 = client_frame(true, OP_TEXT, b"x");
        rsv3[0] |= 0x10;
        expect_framing(&rsv3, "RSV3 set");
        expect_framing(&[0x81, 0x01, b'x'], "unmasked frame");
        expect_framing(&client_frame(true, 0x3, b"x"), "reserved data opcode");
        expect_framing(&client_frame(true, 0xB, b"x"), "reserved control opcode");
        expect_framing(
            &client_frame(true, OP_PING, &[0; 126]),
            "long control frame",
        );
        expect_framing(&client_frame(false, OP_PING, b"x"), "fragmented control");
        expect_framing(
            &client_frame(true, OP_CONTINUATION, b"x"),
            "continuation without a start",
        );
        let mut bytes = client_frame(false, OP_TEXT, b"x");
        bytes.extend(client_frame(true, OP_BINARY, b"y"));
        expect_framing(&bytes, "new message inside a fragmented one");
        // Errors come from the header alone, before the payload is there.
        expect_framing(&rsv[..2], "RSV from two bytes");
    }

    #[test]
    fn oversized_messages_are_refused_from_the_header() {
        let mut d = Decoder::new(100);
        // A single frame: refused from its first 4 bytes.
        let frame = client_frame(true, OP_BINARY, &[0; 200]);
        let mut buf = BytesMut::from(&frame[..4]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(TransportError::TooLarge(200))
        ));
        // A 64-bit length with the top bit set.
        let mut d = Decoder::new(100);
        let mut buf = BytesMut::from(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(TransportError::TooLarge(_))
        ));
        // Fragments that add up to more than the limit.
        let mut d = Decoder::new(100);
        let mut bytes = client_frame(false, OP_TEXT, &[b'a'; 60]);
        bytes.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 41]));
        assert!(matches!(
            decode_all(&mut d, &bytes),
            Err(TransportError::TooLarge(101))
        ));
        // Exactly the limit is fine.
        let mut d = Decoder::new(100);
        let mut bytes = client_frame(false, OP_TEXT, &[b'a'; 60]);
        bytes.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 40]));
        assert_eq!(
            decode_all(&mut d, &bytes).ok(),
            Some(vec![msg(&[b'a'; 100])])
        );
    }

    #[test]
    fn close_codes() {
        let mut d = Decoder::new(1024);
        let steps = |d: &mut Decoder, payload: &[u8]| {
            decode_all(d, &client_frame(true, OP_CLOSE, payload)).ok()
        };
        assert_eq!(steps(&mut d, &[]), Some(vec![Step::Close(1000)]));
        assert_eq!(steps(&mut d, &[0x03, 0xE9]), Some(vec![Step::Close(1001)]));
        assert_eq!(steps(&mut d, b"\x0f\xa0bye"), Some(vec![Step::Close(4000)]));
        assert_eq!(steps(&mut d, &[0x03]), Some(vec![Step::Close(1002)]));
        assert_eq!(steps(&mut d, &[0x03, 0xED]), Some(vec![Step::Close(1002)])); // 1005
        assert_eq!(
            steps(&mut d, &[0x03, 0xE8, 0xff]),
            Some(vec![Step::Close(1002)])
        );
    }

    /// A server transport over one end of a socket pair; the test plays the client.
    fn pair(max: usize) -> (WebSocketIo<UnixStream>, UnixStream) {
        let (server, client) = UnixStream::pair().expect("socket pair");
        (WebSocketIo::new(server, Serializer::Json, max), client)
    }

    async fn read_exactly(stream: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        stream.read_exact(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn ping_is_answered_and_close_is_echoed() {
        let (mut io, mut client) = pair(1024);
        let mut bytes = client_frame(true, OP_PING, b"p1");
        bytes.extend(client_frame(true, OP_TEXT, b"[1]"));
        bytes.extend(client_frame(true, OP_CLOSE, &[0x03, 0xE9, b'x']));
        client.write_all(&bytes).await.expect("write");
        assert_eq!(
            io.recv().await.ok().flatten(),
            Some(Bytes::from_static(b"[1]"))
        );
        assert!(matches!(io.recv().await, Ok(None)));
        // The PONG went out before the CLOSE reply.
        assert_eq!(
            read_exactly(&mut client, 8).await,
            [0x8A, 2, b'p', b'1', 0x88, 2, 0x03, 0xE9]
        );
        io.close().await;
        // No second CLOSE, just the end of the stream.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.expect("read");
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[tokio::test]
    async fn a_message_split_into_single_bytes() {
        let (mut io, mut client) = pair(1 << 20);
        let payload: Vec<u8> = (0..300).map(|i| b'a' + (i % 26) as u8).collect();
        let mut bytes = client_frame(false, OP_TEXT, &payload[..100]);
        bytes.extend(client_frame(true, OP_PING, b""));
        bytes.extend(client_frame(true, OP_CONTINUATION, &payload[100..]));
        let writer = tokio::spawn(async move {
            for byte in bytes {
                client.write_all(&[byte]).await.expect("write");
                tokio::task::yield_now().await;
            }
            client
        });
        assert_eq!(io.recv().await.ok().flatten(), Some(Bytes::from(payload)));
        let mut client = writer.await.expect("writer");
        assert_eq!(read_exactly(&mut client, 2).await, [0x8A, 0]);
    }

    #[tokio::test]
    async fn batches_are_written_as_server_frames_and_close_sends_1000() {
        let (mut io, mut client) = pair(1024);
        let big = Bytes::from(vec![b'x'; 200]);
        io.send_batch(&[Bytes::from_static(b"[2]"), big.clone()])
            .await
            .expect("send");
        let mut expected = vec![0x81, 3, b'[', b'2', b']', 0x81, 126, 0, 200];
        expected.extend_from_slice(&big);
        assert_eq!(read_exactly(&mut client, expected.len()).await, expected);
        io.close().await;
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, [0x88, 2, 0x03, 0xE8]);
    }

    #[tokio::test]
    async fn errors_and_end_of_stream_reach_the_caller() {
        let (mut io, mut client) = pair(16);
        client
            .write_all(&client_frame(true, OP_BINARY, &[0; 17]))
            .await
            .expect("write");
        assert!(matches!(io.recv().await, Err(TransportError::TooLarge(17))));
        let (mut io, client) = pair(16);
        drop(client);
        assert!(matches!(io.recv().await, Ok(None)));
    }

    #[tokio::test]
    async fn idle_connections_hold_no_read_buffer() {
        let (mut io, mut client) = pair(1024);
        client
            .write_all(&client_frame(true, OP_TEXT, b"[1]"))
            .await
            .expect("write");
        assert!(io.recv().await.ok().flatten().is_some());
        // Nothing more to read: recv waits without a buffer.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), io.recv()).await;
        assert!(waited.is_err());
        assert_eq!(io.read_buf.capacity(), 0);
        assert_eq!(io.pending_control.capacity(), 0);
    }
}
