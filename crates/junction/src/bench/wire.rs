//! A lean WAMP connection for load generation.
//!
//! One [`Conn`] owns its socket, one receive buffer and one send buffer, and is driven
//! by a single task: no channels, no writer task, no per-message locks. Messages are
//! queued with [`Conn::send`] (encoded straight into the send buffer) and written by
//! [`Conn::flush`], so a task that reacts to a batch of received messages answers them
//! all with one `write` system call.
//!
//! Transports: WebSocket (`ws://`, a minimal RFC 6455 client: masked frames out,
//! fragmented and control frames in, pings answered) and RawSocket over TCP (`rs://`)
//! or a Unix socket (`unix://`), using the frame codec of `wamp_proto::rawsocket`.
//! The WebSocket handshake checks the status and the chosen subprotocol but not
//! `Sec-WebSocket-Accept`: the tool talks to routers it is told to measure.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wamp_proto::rawsocket::{self, FrameDecoder, FrameKind};
use wamp_proto::{Dict, Message, Serializer, Value};

/// Largest message accepted from the router.
const MAX_MESSAGE: usize = 16 << 20;
/// Largest HTTP upgrade response accepted.
const MAX_HTTP_RESPONSE: usize = 16 * 1024;

/// Where the router is, parsed from `--url`.
#[derive(Clone, Debug)]
pub enum Target {
    /// `ws://host:port/path`.
    WebSocket {
        /// Resolved address.
        addr: SocketAddr,
        /// `host[:port]` as written, for the `Host` header.
        authority: String,
        /// Request path (with query), at least `/`.
        path: String,
    },
    /// `rs://host:port`.
    RawSocket {
        /// Resolved address.
        addr: SocketAddr,
    },
    /// `unix:///path`.
    Unix {
        /// Socket path.
        path: PathBuf,
    },
}

impl Target {
    /// Parses and resolves a router URL (the forms `wamp-client` accepts).
    pub async fn parse(url: &str) -> anyhow::Result<Target> {
        let endpoint = wamp_client::Endpoint::parse(url).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(match endpoint {
            wamp_client::Endpoint::WebSocket { tls: true, .. }
            | wamp_client::Endpoint::RawSocketTcp { tls: true, .. } => {
                anyhow::bail!("{url}: the load generator speaks plain TCP only (no TLS)")
            }
            wamp_client::Endpoint::WebSocket { host, port, .. } => {
                let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
                let (authority, path) = match rest.find(['/', '?']) {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                let path = if path.starts_with('?') {
                    format!("/{path}")
                } else {
                    path.to_owned()
                };
                Target::WebSocket {
                    addr: resolve(&host, port).await?,
                    authority: authority.to_owned(),
                    path,
                }
            }
            wamp_client::Endpoint::RawSocketTcp { host, port, .. } => Target::RawSocket {
                addr: resolve(&host, port).await?,
            },
            wamp_client::Endpoint::RawSocketUnix { path } => Target::Unix { path },
        })
    }

    /// The TCP address, if the transport is TCP.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Target::WebSocket { addr, .. } | Target::RawSocket { addr } => Some(*addr),
            Target::Unix { .. } => None,
        }
    }
}

async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host} has no address"))
}

/// The byte stream under a connection.
enum Stream {
    Tcp(TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Stream {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(data).await,
            Stream::Unix(s) => s.write_all(data).await,
        }
    }
}

/// How messages are framed on the stream.
enum Framing {
    /// WebSocket: text frames for JSON, binary for the others.
    Ws {
        binary: bool,
        /// Payload of a fragmented message being reassembled.
        fragments: Option<BytesMut>,
        /// State of the masking-key generator (xorshift64).
        mask_state: u64,
    },
    /// RawSocket.
    Raw { decoder: FrameDecoder },
}

/// An open WAMP session (after HELLO/WELCOME) on a lean transport.
pub struct Conn {
    stream: Stream,
    framing: Framing,
    serializer: Serializer,
    rbuf: BytesMut,
    wbuf: BytesMut,
    scratch: BytesMut,
    /// The session ID from WELCOME.
    pub session_id: u64,
    /// Set once the peer closed (WebSocket close, EOF).
    closed: bool,
}

/// Options for [`Conn::open`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Local address to bind before connecting (TCP only).
    pub bind: Option<IpAddr>,
    /// Receive/send buffer capacity to start with.
    pub buffer: usize,
}

impl Conn {
    /// Connects, runs the transport handshake, sends HELLO and waits for WELCOME.
    /// ABORT (or anything else) becomes an error naming the router's reason.
    pub async fn open(
        target: &Target,
        realm: &str,
        serializer: Serializer,
        options: OpenOptions,
    ) -> anyhow::Result<Conn> {
        let buffer = options.buffer.max(256);
        let mut rbuf = BytesMut::with_capacity(buffer);
        let (stream, framing) = match target {
            Target::WebSocket {
                addr,
                authority,
                path,
            } => {
                let mut tcp = tcp_connect(*addr, options.bind).await?;
                ws_handshake(&mut tcp, authority, path, serializer, &mut rbuf).await?;
                let seed = rand::random::<u64>() | 1;
                (
                    Stream::Tcp(tcp),
                    Framing::Ws {
                        binary: serializer.is_binary(),
                        fragments: None,
                        mask_state: seed,
                    },
                )
            }
            Target::RawSocket { addr } => {
                let mut tcp = tcp_connect(*addr, options.bind).await?;
                let decoder = raw_handshake(&mut tcp, serializer).await?;
                (Stream::Tcp(tcp), Framing::Raw { decoder })
            }
            Target::Unix { path } => {
                let mut unix = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", path.display()))?;
                let decoder = raw_handshake(&mut unix, serializer).await?;
                (Stream::Unix(unix), Framing::Raw { decoder })
            }
        };
        let mut conn = Conn {
            stream,
            framing,
            serializer,
            rbuf,
            wbuf: BytesMut::with_capacity(buffer),
            scratch: BytesMut::with_capacity(256),
            session_id: 0,
            closed: false,
        };
        conn.send(&hello(realm))?;
        conn.flush().await?;
        match conn.recv().await? {
            Some(Message::Welcome { session, .. }) => conn.session_id = session,
            Some(Message::Abort {
                reason, details, ..
            }) => {
                let text = details
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                anyhow::bail!("router refused the session: {reason}{text}");
            }
            Some(other) => {
                anyhow::bail!("router answered HELLO with {}", other.message_type().name())
            }
            None => anyhow::bail!("router closed the connection after HELLO"),
        }
        Ok(conn)
    }

    /// Releases the buffers of an idle connection (keeps the socket open).
    pub fn shrink(&mut self) {
        self.rbuf = BytesMut::new();
        self.wbuf = BytesMut::new();
        self.scratch = BytesMut::new();
    }

    /// The serializer in use.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Whether the router closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Queues a message (written by the next [`flush`](Self::flush)).
    pub fn send(&mut self, message: &Message) -> anyhow::Result<()> {
        self.scratch.clear();
        wamp_proto::codec::encode_into(message, self.serializer, &mut self.scratch)
            .map_err(|e| anyhow::anyhow!("cannot encode: {e}"))?;
        match &mut self.framing {
            Framing::Ws {
                binary, mask_state, ..
            } => {
                let opcode = if *binary { 2 } else { 1 };
                *mask_state ^= *mask_state << 13;
                *mask_state ^= *mask_state >> 7;
                *mask_state ^= *mask_state << 17;
                let mask = (*mask_state as u32).to_be_bytes();
                write_ws_frame(&mut self.wbuf, opcode, &self.scratch, mask);
            }
            Framing::Raw { .. } => {
                rawsocket::write_frame(&mut self.wbuf, FrameKind::Message, &self.scratch)
            }
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads more bytes from the socket into the receive buffer. Returns `false` on EOF.
    /// Cancel-safe (no data is lost if the future is dropped).
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            self.closed = true;
        }
        Ok(n > 0)
    }

    /// The next complete message already received, without waiting. Control frames
    /// are handled on the way (pings answered into the send buffer).
    pub fn next_frame(&mut self) -> anyhow::Result<Option<Bytes>> {
        loop {
            match &mut self.framing {
                Framing::Raw { decoder } => match decoder.decode(&mut self.rbuf)? {
                    None => return Ok(None),
                    Some(frame) => match frame.kind {
                        FrameKind::Message => return Ok(Some(frame.payload)),
                        FrameKind::Ping => {
                            rawsocket::write_frame(&mut self.wbuf, FrameKind::Pong, &frame.payload)
                        }
                        FrameKind::Pong => {}
                    },
                },
                Framing::Ws {
                    fragments,
                    mask_state,
                    ..
                } => {
                    let Some((fin, opcode, payload)) = parse_ws_frame(&mut self.rbuf)? else {
                        return Ok(None);
                    };
                    match opcode {
                        0 => {
                            let Some(buf) = fragments.as_mut() else {
                                anyhow::bail!("WebSocket continuation without a first frame");
                            };
                            if buf.len() + payload.len() > MAX_MESSAGE {
                                anyhow::bail!("WebSocket message too large");
                            }
                            buf.extend_from_slice(&payload);
                            if fin {
                                let whole = fragments.take().unwrap_or_default();
                                return Ok(Some(whole.freeze()));
                            }
                        }
                        1 | 2 => {
                            if fin {
                                return Ok(Some(payload));
                            }
                            *fragments = Some(BytesMut::from(&payload[..]));
                        }
                        8 => {
                            self.closed = true;
                            return Ok(None);
                        }
                        9 => {
                            *mask_state ^= *mask_state << 13;
                            *mask_state ^= *mask_state >> 7;
                            *mask_state ^= *mask_state << 17;
                            let mask = (*mask_state as u32).to_be_bytes();
                            write_ws_frame(&mut self.wbuf, 10, &payload, mask);
                        }
                        10 => {}
                        other => anyhow::bail!("unknown WebSocket opcode {other}"),
                    }
                }
            }
        }
    }

    /// Decodes a received message.
    pub fn decode(&self, bytes: &Bytes) -> anyhow::Result<Message> {
        wamp_proto::decode(self.serializer, bytes)
            .map_err(|e| anyhow::anyhow!("undecodable message from the router: {e}"))
    }

    /// Waits for the next message (flushing pending output first); `None` once the
    /// router closed the connection.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Message>> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return self.decode(&frame).map(Some);
            }
            self.flush().await?;
            if self.closed || !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Sends GOODBYE and closes the socket (best effort, bounded).
    pub async fn close(mut self) {
        let _ = self.send(&Message::goodbye(wamp_proto::error_uri::CLOSE_NORMAL));
        let _ = tokio::time::timeout(Duration::from_millis(500), self.flush()).await;
    }
}

/// The HELLO the tool sends: all four client roles, shared registration announced.
fn hello(realm: &str) -> Message {
    let mut roles = Dict::new();
    for name in ["caller", "callee", "publisher", "subscriber"] {
        let mut features = Dict::new();
        if name == "callee" {
            features.insert("shared_registration".into(), Value::Bool(true));
        }
        let mut role = Dict::new();
        role.insert("features".into(), Value::Dict(features));
        roles.insert(name.into(), Value::Dict(role));
    }
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles));
    details.insert(
        "agent".into(),
        Value::from(concat!("junction-bench/", env!("CARGO_PKG_VERSION"))),
    );
    details.insert(
        "authmethods".into(),
        Value::List(vec![Value::from("anonymous")]),
    );
    Message::Hello {
        realm: realm.to_owned(),
        details,
    }
}

async fn tcp_connect(addr: SocketAddr, bind: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let stream = match bind {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }?;
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        }
    }
    .map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn raw_handshake<S>(stream: &mut S, serializer: Serializer) -> anyhow::Result<FrameDecoder>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let id = serializer.rawsocket_id();
    let request = rawsocket::client_handshake(id, MAX_MESSAGE);
    let own_max = rawsocket::max_len_from_exponent(request[1] >> 4);
    stream.write_all(&request).await?;
    let mut reply = [0u8; 4];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| anyhow::anyhow!("RawSocket handshake failed: {e}"))?;
    rawsocket::parse_server_reply(reply, id)
        .map_err(|e| anyhow::anyhow!("RawSocket handshake refused: {e}"))?;
    Ok(FrameDecoder::new(own_max))
}

async fn ws_handshake(
    tcp: &mut TcpStream,
    authority: &str,
    path: &str,
    serializer: Serializer,
    rbuf: &mut BytesMut,
) -> anyhow::Result<()> {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {}\r\n\r\n",
        serializer.subprotocol()
    );
    tcp.write_all(request.as_bytes()).await?;
    let end = loop {
        if let Some(i) = rbuf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if rbuf.len() > MAX_HTTP_RESPONSE {
            anyhow::bail!("WebSocket handshake: response headers too long");
        }
        if tcp.read_buf(rbuf).await? == 0 {
            anyhow::bail!("WebSocket handshake: connection closed by the router");
        }
    };
    let head = rbuf.split_to(end);
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("101") {
        anyhow::bail!("WebSocket handshake refused: {status}");
    }
    let protocol = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-protocol")
            .then(|| value.trim().to_owned())
    });
    if protocol.as_deref() != Some(serializer.subprotocol()) {
        anyhow::bail!(
            "WebSocket handshake: router chose subprotocol {protocol:?}, asked for {}",
            serializer.subprotocol()
        );
    }
    Ok(())
}

/// Appends a masked client frame.
fn write_ws_frame(out: &mut BytesMut, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let len = payload.len();
    out.reserve(14 + len);
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.put_u8(0x80 | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0x80 | 127);
        out.put_u64(len as u64);
    }
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-octet `mask`, eight octets at a time.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Takes one complete frame off the front of `buf`: (FIN, opcode, unmasked payload).
fn parse_ws_frame(buf: &mut BytesMut) -> anyhow::Result<Option<(bool, u8, Bytes)>> {
    let [b0, b1, ..] = buf[..] else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        anyhow::bail!("WebSocket frame uses reserved bits");
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut header) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if len > MAX_MESSAGE as u64 {
        anyhow::bail!("WebSocket frame of {len} octets is too large");
    }
    let len = len as usize;
    let mask = if masked {
        let Some(m) = buf.get(header..header + 4) else {
            return Ok(None);
        };
        let m = [m[0], m[1], m[2], m[3]];
        header += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < header + len {
        buf.reserve(header + len - buf.len());
        return Ok(None);
    }
    buf.advance(header);
    let mut payload = buf.split_to(len);
    if let Some(mask) = mask {
        apply_mask(&mut payload, mask);
    }
    Ok(Some((b0 & 0x80 != 0, b0 & 0x0F, payload.freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_frames_round_trip() {
        for len in [0usize, 5, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = BytesMut::new();
            write_ws_frame(&mut out, 2, &payload, [1, 2, 3, 4]);
            let whole = out.clone();
            // Incomplete input yields nothing and leaves the buffer untouched.
            let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
            assert!(parse_ws_frame(&mut partial).expect("ok").is_none());
            let (fin, opcode, back) = parse_ws_frame(&mut out).expect("ok").expect("frame");
            assert!(fin);
            assert_eq!(opcode, 2);
            assert_eq!(&back[..], &payload[..]);
            assert!(out.is_empty());
        }
    }
}
