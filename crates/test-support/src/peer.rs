//! The scripted raw peer.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use wamp_proto::rawsocket::{self, FrameDecoder, FrameKind};
use wamp_proto::{Dict, Message, Serializer};

/// How long receives wait unless [`RawPeer::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Picks the subprotocol a server-side WebSocket peer answers with.
type Chooser = dyn FnOnce(&[String]) -> Option<String> + Send;

/// A byte stream a peer can run on.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Box<dyn Io>;

/// One frame as received or to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerFrame {
    /// A WebSocket text message.
    Text(Bytes),
    /// A WebSocket binary message, or a RawSocket message frame (type 0).
    Binary(Bytes),
    /// A WebSocket ping, or a RawSocket PING frame.
    Ping(Bytes),
    /// A WebSocket pong, or a RawSocket PONG frame.
    Pong(Bytes),
}

impl PeerFrame {
    /// The frame's payload.
    pub fn payload(&self) -> &Bytes {
        match self {
            PeerFrame::Text(b) | PeerFrame::Binary(b) | PeerFrame::Ping(b) | PeerFrame::Pong(b) => {
                b
            }
        }
    }
}

enum Conn {
    Ws(Box<WebSocketStream<BoxIo>>),
    Raw {
        io: BoxIo,
        buf: BytesMut,
        decoder: FrameDecoder,
    },
}

/// What waiting for the next frame gave.
enum Next {
    Frame(PeerFrame),
    Closed,
    Timeout,
}

/// A scripted WAMP peer over WebSocket or RawSocket (either side of the connection).
pub struct RawPeer {
    conn: Conn,
    serializer: Serializer,
    timeout: Duration,
    subprotocol: Option<String>,
    remote_max_len: Option<usize>,
    closed: bool,
}

impl std::fmt::Debug for RawPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPeer")
            .field(
                "transport",
                &match self.conn {
                    Conn::Ws(_) => "websocket",
                    Conn::Raw { .. } => "rawsocket",
                },
            )
            .field("serializer", &self.serializer)
            .field("closed", &self.closed)
            .finish()
    }
}

fn other(text: impl Into<String>) -> io::Error {
    io::Error::other(text.into())
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::Http(response) => other(format!(
            "WebSocket handshake refused: HTTP {}",
            response.status()
        )),
        other_error => other(format!("WebSocket: {other_error}")),
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

/// Connects a WebSocket peer to `url` (`ws://host:port/path`), offering
/// `subprotocols` in that order (none: no `Sec-WebSocket-Protocol` header).
///
/// The peer's serializer follows the subprotocol the server picked (JSON if none or
/// an unknown one). Fails if the upgrade is refused, e.g. `HTTP 400` in the error
/// text, or if the server picks a subprotocol that was not offered.
pub async fn raw_ws(url: &str, subprotocols: &[&str]) -> io::Result<RawPeer> {
    let mut request = url
        .into_client_request()
        .map_err(|e| other(format!("bad URL {url}: {e}")))?;
    let host = request
        .uri()
        .host()
        .ok_or_else(|| other(format!("no host in {url}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    if !subprotocols.is_empty() {
        let value = HeaderValue::from_str(&subprotocols.join(", "))
            .map_err(|e| other(format!("bad subprotocol list: {e}")))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let io: BoxIo = Box::new(tcp);
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(ws_config()))
            .await
            .map_err(ws_error)?;
    let subprotocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RawPeer::new(
        Conn::Ws(Box::new(ws)),
        subprotocol
            .as_deref()
            .and_then(Serializer::from_subprotocol)
            .unwrap_or(Serializer::Json),
        subprotocol,
        None,
    ))
}

/// Connects a RawSocket peer over TCP, asking for `serializer` and advertising a
/// 16 MiB receive limit. Fails (`ConnectionRefused`) if the router refuses the
/// handshake.
pub async fn raw_rawsocket_tcp(
    addr: impl ToSocketAddrs,
    serializer: Serializer,
) -> io::Result<RawPeer> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    RawPeer::rawsocket_client(Box::new(tcp), serializer).await
}

/// Runs the RawSocket client handshake on a TCP stream the test connected itself
/// (from a chosen local address, say); see [`raw_rawsocket_tcp`].
pub async fn raw_rawsocket_stream(tcp: TcpStream, serializer: Serializer) -> io::Result<RawPeer> {
    tcp.set_nodelay(true)?;
    RawPeer::rawsocket_client(Box::new(tcp), serializer).await
}

/// Runs the RawSocket client handshake over any byte stream the test opened itself
/// (a TLS stream, say); see [`raw_rawsocket_tcp`].
pub async fn raw_rawsocket_over<S>(io: S, serializer: Serializer) -> io::Result<RawPeer>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    RawPeer::rawsocket_client(Box::new(io), serializer).await
}

/// Connects a RawSocket peer over a Unix domain socket (see [`raw_rawsocket_tcp`]).
#[cfg(unix)]
pub async fn raw_rawsocket_unix(
    path: impl AsRef<Path>,
    serializer: Serializer,
) -> io::Result<RawPeer> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    RawPeer::rawsocket_client(Box::new(stream), serializer).await
}

/// Connects a RawSocket peer over a Unix domain socket (not on this platform).
#[cfg(not(unix))]
pub async fn raw_rawsocket_unix(
    _path: impl AsRef<Path>,
    _serializer: Serializer,
) -> io::Result<RawPeer> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no Unix domain sockets",
    ))
}

/// A plain TCP connection (`TCP_NODELAY` set) for handshake tests byte by byte.
///
/// # Panics
/// If the connection cannot be made.
pub async fn tcp_raw(addr: impl ToSocketAddrs) -> TcpStream {
    let tcp = match TcpStream::connect(addr).await {
        Ok(tcp) => tcp,
        Err(e) => panic!("tcp_raw: cannot connect: {e}"),
    };
    if let Err(e) = tcp.set_nodelay(true) {
        panic!("tcp_raw: cannot set TCP_NODELAY: {e}");
    }
    tcp
}

/// The status line and headers of an HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 101 or 400.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a WebSocket upgrade request for `path` offering `subprotocols` (no header if
/// empty) and returns the response head, without completing the WebSocket: for
/// tests of subprotocol negotiation and refusals.
pub async fn http_upgrade(
    addr: impl ToSocketAddrs,
    path: &str,
    subprotocols: &[&str],
) -> io::Result<HttpResponse> {
    let mut tcp = TcpStream::connect(addr).await?;
    let host = tcp.peer_addr()?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !subprotocols.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            subprotocols.join(", ")
        ));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await? == 0 {
                break;
            }
            head.push(byte[0]);
            if head.len() > 64 * 1024 {
                return Err(other("HTTP response head too long"));
            }
        }
        Ok(())
    };
    tokio::time::timeout(DEFAULT_TIMEOUT, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no HTTP response"))??;
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| other(format!("bad HTTP status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse { status, headers })
}

impl RawPeer {
    fn new(
        conn: Conn,
        serializer: Serializer,
        subprotocol: Option<String>,
        remote_max_len: Option<usize>,
    ) -> RawPeer {
        RawPeer {
            conn,
            serializer,
            timeout: DEFAULT_TIMEOUT,
            subprotocol,
            remote_max_len,
            closed: false,
        }
    }

    async fn rawsocket_client(mut io: BoxIo, serializer: Serializer) -> io::Result<RawPeer> {
        let id = serializer.rawsocket_id();
        io.write_all(&rawsocket::client_handshake(id, rawsocket::MAX_FRAME_LEN))
            .await?;
        let mut reply = [0u8; 4];
        tokio::time::timeout(DEFAULT_TIMEOUT, io.read_exact(&mut reply))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "no RawSocket handshake reply")
            })??;
        let max = rawsocket::parse_server_reply(reply, id).map_err(|e| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("RawSocket handshake refused: {e} (reply {reply:02x?})"),
            )
        })?;
        Ok(RawPeer::new(
            Conn::Raw {
                io,
                buf: BytesMut::new(),
                decoder: FrameDecoder::new(rawsocket::MAX_FRAME_LEN),
            },
            serializer,
            None,
            Some(max),
        ))
    }

    /// Server side: completes a WebSocket upgrade on an accepted connection.
    /// `choose` gets the offered subprotocols and returns the one to answer with
    /// (`None`: no `Sec-WebSocket-Protocol` header). The peer's serializer follows the
    /// choice (JSON if none).
    pub async fn accept_ws<S>(
        stream: S,
        choose: impl FnOnce(&[String]) -> Option<String> + Send + 'static,
    ) -> io::Result<RawPeer>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let choose: Box<Chooser> = Box::new(choose);
        let mut chosen = None;
        #[allow(clippy::result_large_err)] // the signature tungstenite asks for
        let callback =
            |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
                let offered: Vec<String> = request
                    .headers()
                    .get_all("Sec-WebSocket-Protocol")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                if let Some(protocol) = choose(&offered) {
                    if let Ok(value) = HeaderValue::from_str(&protocol) {
                        response
                            .headers_mut()
                            .insert("Sec-WebSocket-Protocol", value);
                        chosen = Some(protocol);
                    }
                }
                Ok(response)
            };
        let io: BoxIo = Box::new(stream);
        let ws = tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(ws_config()))
            .await
            .map_err(ws_error)?;
        let serializer = chosen
            .as_deref()
            .and_then(Serializer::from_subprotocol)
            .unwrap_or(Serializer::Json);
        Ok(RawPeer::new(
            Conn::Ws(Box::new(ws)),
            serializer,
            chosen,
            None,
        ))
    }

    /// Server side: answers a RawSocket handshake on an accepted connection, echoing
    /// the requested serializer and advertising `max_len`. Fails (after sending the
    /// error reply) if the serializer is unknown or the request malformed.
    pub async fn accept_rawsocket<S>(mut stream: S, max_len: usize) -> io::Result<RawPeer>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut request = [0u8; 4];
        tokio::time::timeout(DEFAULT_TIMEOUT, stream.read_exact(&mut request))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no RawSocket handshake"))??;
        let parsed = rawsocket::parse_client_handshake(request, |id| {
            Serializer::from_rawsocket_id(id).is_some()
        });
        let handshake = match parsed {
            Ok(h) => h,
            Err(e) => {
                if let Some(reply) = e.reply() {
                    stream.write_all(&reply).await?;
                }
                return Err(other(format!(
                    "bad RawSocket handshake {request:02x?}: {e}"
                )));
            }
        };
        let serializer = Serializer::from_rawsocket_id(handshake.serializer)
            .ok_or_else(|| other("unknown serializer"))?;
        stream
            .write_all(&rawsocket::server_handshake_reply(
                handshake.serializer,
                max_len,
            ))
            .await?;
        let own_max = rawsocket::max_len_from_exponent(rawsocket::exponent_for_max_len(max_len));
        Ok(RawPeer::new(
            Conn::Raw {
                io: Box::new(stream),
                buf: BytesMut::new(),
                decoder: FrameDecoder::new(own_max),
            },
            serializer,
            None,
            Some(handshake.max_len),
        ))
    }

    /// The serializer used by [`send`](Self::send) and [`recv`](Self::recv).
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Overrides the serializer (e.g. after a server picked none).
    pub fn set_serializer(&mut self, serializer: Serializer) {
        self.serializer = serializer;
    }

    /// The WebSocket subprotocol the server picked (client side) or this peer
    /// answered with (server side).
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The other side's RawSocket receive limit from the handshake.
    pub fn remote_max_len(&self) -> Option<usize> {
        self.remote_max_len
    }

    /// How long receives wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long receives wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether the peer has seen the connection close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Encodes and sends `message` (JSON in a text frame on WebSocket).
    ///
    /// # Panics
    /// If the message cannot be encoded (a payload that cannot be transcoded).
    pub async fn send(&mut self, message: Message) -> io::Result<()> {
        let bytes = match wamp_proto::encode(&message, self.serializer) {
            Ok(bytes) => bytes,
            Err(e) => panic!("cannot encode {message:?}: {e}"),
        };
        self.send_bytes(bytes).await
    }

    /// Sends arbitrary bytes as one message: a text frame for JSON on WebSocket
    /// (even if not UTF-8), a binary frame otherwise, a message frame on RawSocket.
    pub async fn send_bytes(&mut self, bytes: impl Into<Bytes>) -> io::Result<()> {
        let bytes = bytes.into();
        if self.serializer.is_binary() {
            self.send_frame(PeerFrame::Binary(bytes)).await
        } else {
            self.send_frame(PeerFrame::Text(bytes)).await
        }
    }

    /// Sends one frame. On RawSocket, text and binary both become message frames.
    /// A WebSocket text frame may carry invalid UTF-8.
    pub async fn send_frame(&mut self, frame: PeerFrame) -> io::Result<()> {
        match &mut self.conn {
            Conn::Ws(ws) => {
                let message = match frame {
                    PeerFrame::Text(b) => {
                        WsMessage::Frame(Frame::message(b, OpCode::Data(Data::Text), true))
                    }
                    PeerFrame::Binary(b) => WsMessage::Binary(b),
                    PeerFrame::Ping(b) => WsMessage::Ping(b),
                    PeerFrame::Pong(b) => WsMessage::Pong(b),
                };
                ws.send(message).await.map_err(ws_error)
            }
            Conn::Raw { io, .. } => {
                let (kind, payload) = match frame {
                    PeerFrame::Text(b) | PeerFrame::Binary(b) => (FrameKind::Message, b),
                    PeerFrame::Ping(b) => (FrameKind::Ping, b),
                    PeerFrame::Pong(b) => (FrameKind::Pong, b),
                };
                let mut out = BytesMut::new();
                rawsocket::write_frame(&mut out, kind, &payload);
                io.write_all(&out).await?;
                io.flush().await
            }
        }
    }

    /// Writes bytes straight to the socket, below any framing (RawSocket headers,
    /// WebSocket frames): for malformed-frame tests.
    pub async fn send_wire(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.conn {
            Conn::Ws(ws) => {
                let io = ws.get_mut();
                io.write_all(bytes).await?;
                io.flush().await
            }
            Conn::Raw { io, .. } => {
                io.write_all(bytes).await?;
                io.flush().await
            }
        }
    }

    async fn next_frame(&mut self, deadline: Instant) -> Next {
        if self.closed {
            return Next::Closed;
        }
        let next = match &mut self.conn {
            Conn::Ws(ws) => loop {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Err(_) => break Next::Timeout,
                    Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) => break Next::Closed,
                    Ok(Some(Ok(WsMessage::Text(t)))) => {
                        break Next::Frame(PeerFrame::Text(Bytes::from(t)))
                    }
                    Ok(Some(Ok(WsMessage::Binary(b)))) => break Next::Frame(PeerFrame::Binary(b)),
                    Ok(Some(Ok(WsMessage::Ping(b)))) => break Next::Frame(PeerFrame::Ping(b)),
                    Ok(Some(Ok(WsMessage::Pong(b)))) => break Next::Frame(PeerFrame::Pong(b)),
                    Ok(Some(Ok(WsMessage::Frame(_)))) => continue,
                }
            },
            Conn::Raw { io, buf, decoder } => loop {
                match decoder.decode(buf) {
                    Ok(Some(frame)) => {
                        break Next::Frame(match frame.kind {
                            FrameKind::Message => PeerFrame::Binary(frame.payload),
                            FrameKind::Ping => PeerFrame::Ping(frame.payload),
                            FrameKind::Pong => PeerFrame::Pong(frame.payload),
                        })
                    }
                    Ok(None) => {}
                    Err(e) => panic!("the other side sent a bad RawSocket frame: {e}"),
                }
                match tokio::time::timeout_at(deadline, io.read_buf(buf)).await {
                    Err(_) => break Next::Timeout,
                    Ok(Ok(0) | Err(_)) => break Next::Closed,
                    Ok(Ok(_)) => {}
                }
            },
        };
        if matches!(next, Next::Closed) {
            self.closed = true;
        }
        next
    }

    /// The next frame of any kind (pings included, not answered here); `None` on
    /// close or timeout.
    pub async fn recv_frame(&mut self) -> Option<PeerFrame> {
        match self.next_frame(Instant::now() + self.timeout).await {
            Next::Frame(frame) => Some(frame),
            Next::Closed | Next::Timeout => None,
        }
    }

    async fn recv_raw_until(&mut self, deadline: Instant) -> Option<Bytes> {
        loop {
            match self.next_frame(deadline).await {
                Next::Frame(PeerFrame::Text(b) | PeerFrame::Binary(b)) => return Some(b),
                Next::Frame(PeerFrame::Ping(payload)) => {
                    // WebSocket pings are answered by tungstenite.
                    if matches!(self.conn, Conn::Raw { .. }) {
                        let _ = self.send_frame(PeerFrame::Pong(payload)).await;
                    }
                }
                Next::Frame(PeerFrame::Pong(_)) => {}
                Next::Closed | Next::Timeout => return None,
            }
        }
    }

    /// The next message's bytes (pings answered, pongs skipped); `None` on close or
    /// timeout.
    pub async fn recv_raw(&mut self) -> Option<Bytes> {
        self.recv_raw_until(Instant::now() + self.timeout).await
    }

    fn decode(&self, bytes: &Bytes) -> Message {
        match wamp_proto::decode(self.serializer, bytes) {
            Ok(message) => message,
            Err(e) => panic!(
                "the other side sent an undecodable {} message ({e}): {:?}",
                self.serializer,
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// The next message, decoded; `None` on close or timeout.
    ///
    /// # Panics
    /// If the message cannot be decoded.
    pub async fn recv(&mut self) -> Option<Message> {
        let bytes = self.recv_raw().await?;
        Some(self.decode(&bytes))
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout` (e.g. to check that
    /// nothing arrives).
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Message> {
        let bytes = self.recv_raw_until(Instant::now() + timeout).await?;
        Some(self.decode(&bytes))
    }

    /// Whether the connection closes within `timeout`; messages arriving meanwhile
    /// are discarded.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_frame(deadline).await {
                Next::Closed => return true,
                Next::Timeout => return false,
                Next::Frame(_) => {}
            }
        }
    }

    /// Asserts that the connection closes within the timeout, returning the frames
    /// that arrived before (e.g. an ABORT).
    ///
    /// # Panics
    /// If the connection is still open after the timeout.
    pub async fn expect_closed(&mut self) -> Vec<PeerFrame> {
        let deadline = Instant::now() + self.timeout;
        let mut frames = Vec::new();
        loop {
            match self.next_frame(deadline).await {
                Next::Closed => return frames,
                Next::Timeout => panic!(
                    "connection still open after {:?}; received meanwhile: {frames:?}",
                    self.timeout
                ),
                Next::Frame(frame) => frames.push(frame),
            }
        }
    }

    /// Closes the connection politely (WebSocket close handshake, RawSocket FIN).
    pub async fn close(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Ws(ws) => match ws.close(None).await {
                Ok(())
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    Ok(())
                }
                Err(e) => Err(ws_error(e)),
            },
            Conn::Raw { io, .. } => io.shutdown().await,
        }
    }

    /// Sends [`msg::hello`](crate::msg::hello) for `realm` and waits for WELCOME,
    /// returning the session ID and details.
    ///
    /// # Panics
    /// If anything but WELCOME comes back.
    pub async fn join(&mut self, realm: &str) -> (u64, Dict) {
        if let Err(e) = self.send(crate::msg::hello(realm)).await {
            panic!("cannot send HELLO: {e}");
        }
        match self.recv().await {
            Some(Message::Welcome { session, details }) => (session, details),
            other => panic!("expected WELCOME for realm {realm:?}, got {other:?}"),
        }
    }
}
