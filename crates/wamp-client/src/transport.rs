//! Transports: connecting, and the read and write halves the session tasks drive.
//!
//! Both transports carry whole WAMP messages as byte strings. WebSocket pings are
//! answered by tungstenite itself; RawSocket PINGs surface as [`Incoming::Ping`] and the
//! session answers them through its writer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use wamp_proto::rawsocket::{self, FrameDecoder, FrameKind};
use wamp_proto::Serializer;

use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::tls::{ClientStream, TlsOptions};

type BoxedRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxedWrite = Box<dyn AsyncWrite + Send + Unpin>;
type Ws = WebSocketStream<ClientStream>;

/// What the read half delivers.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// One serialized WAMP message.
    Message(Bytes),
    /// A RawSocket PING to answer with a PONG carrying the same payload.
    Ping(Bytes),
}

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send one serialized WAMP message.
    Message(Bytes),
    /// Answer a RawSocket PING.
    Pong(Bytes),
    /// Close the transport after everything queued before.
    Close,
}

/// A connected transport: its two halves, the largest message the router accepts
/// (known for RawSocket only) and the TLS 1.3 `tls-exporter` value (over TLS).
pub(crate) struct Connection {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    pub max_send: Option<usize>,
    pub tls_exporter: Option<[u8; 32]>,
}

/// Opens the transport for `endpoint`, including its opening handshake.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    serializer: Serializer,
    max_message_size: usize,
    tls: &TlsOptions,
) -> Result<Connection, Error> {
    match endpoint {
        Endpoint::WebSocket {
            url,
            host,
            port,
            tls: secure,
        } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            tcp.set_nodelay(true)?;
            let stream = if *secure {
                tls.connect(host, tcp).await?
            } else {
                ClientStream::Plain(tcp)
            };
            let tls_exporter = stream.tls_exporter();
            let ws = websocket_handshake(stream, url, serializer, max_message_size).await?;
            let (sink, stream) = ws.split();
            Ok(Connection {
                reader: ReadHalf::Ws(stream),
                writer: WriteHalf::Ws {
                    sink,
                    binary: serializer.is_binary(),
                },
                max_send: None,
                tls_exporter,
            })
        }
        Endpoint::RawSocketTcp {
            host,
            port,
            tls: secure,
        } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            tcp.set_nodelay(true)?;
            if *secure {
                let stream = tls.connect(host, tcp).await?;
                let tls_exporter = stream.tls_exporter();
                let (r, w) = tokio::io::split(stream);
                let mut connection =
                    rawsocket_handshake(Box::new(r), Box::new(w), serializer, max_message_size)
                        .await?;
                connection.tls_exporter = tls_exporter;
                Ok(connection)
            } else {
                let (r, w) = tcp.into_split();
                rawsocket_handshake(Box::new(r), Box::new(w), serializer, max_message_size).await
            }
        }
        #[cfg(unix)]
        Endpoint::RawSocketUnix { path } => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            let (r, w) = stream.into_split();
            rawsocket_handshake(Box::new(r), Box::new(w), serializer, max_message_size).await
        }
        #[cfg(not(unix))]
        Endpoint::RawSocketUnix { .. } => Err(Error::InvalidUrl(
            "Unix domain sockets are not available on this platform".into(),
        )),
    }
}

async fn websocket_handshake(
    tcp: ClientStream,
    url: &str,
    serializer: Serializer,
    max_message_size: usize,
) -> Result<Ws, Error> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(serializer.subprotocol()),
    );
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Io(e) => Error::Io(e),
            tungstenite::Error::Http(response) => {
                Error::Handshake(format!("HTTP status {}", response.status()))
            }
            tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e)) => {
                Error::Handshake(format!(
                    "subprotocol {} not accepted: {e}",
                    serializer.subprotocol()
                ))
            }
            other => Error::Handshake(other.to_string()),
        })?;
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if chosen != Some(serializer.subprotocol()) {
        return Err(Error::Handshake(format!(
            "router chose subprotocol {chosen:?}, asked for {}",
            serializer.subprotocol()
        )));
    }
    Ok(ws)
}

/// How long the router may take to answer the RawSocket handshake.
const RAWSOCKET_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn rawsocket_handshake(
    mut r: BoxedRead,
    mut w: BoxedWrite,
    serializer: Serializer,
    max_message_size: usize,
) -> Result<Connection, Error> {
    let id = serializer.rawsocket_id();
    // Advertise at most what we will accept: the exponent rounds down.
    let request = rawsocket::client_handshake(id, max_message_size);
    let own_max = rawsocket::max_len_from_exponent(request[1] >> 4);
    w.write_all(&request).await?;
    w.flush().await?;
    let mut reply = [0u8; 4];
    match tokio::time::timeout(RAWSOCKET_HANDSHAKE_TIMEOUT, r.read_exact(&mut reply)).await {
        Err(_) => return Err(Error::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::Handshake(
                "connection closed during the RawSocket handshake".into(),
            ))
        }
        Ok(Err(e)) => return Err(Error::Io(e)),
        Ok(Ok(_)) => {}
    }
    let router_max = rawsocket::parse_server_reply(reply, id)
        .map_err(|e| Error::Handshake(format!("{e} (reply {reply:02x?})")))?;
    Ok(Connection {
        reader: ReadHalf::Raw {
            io: r,
            buf: BytesMut::with_capacity(8 * 1024),
            decoder: FrameDecoder::new(own_max),
        },
        writer: WriteHalf::Raw {
            io: w,
            buf: BytesMut::with_capacity(8 * 1024),
        },
        max_send: Some(router_max),
        tls_exporter: None,
    })
}

/// The receiving half of a transport.
pub(crate) enum ReadHalf {
    /// WebSocket messages.
    Ws(SplitStream<Ws>),
    /// RawSocket frames.
    Raw {
        /// The byte stream.
        io: BoxedRead,
        /// Received, not yet decoded octets.
        buf: BytesMut,
        /// Frame decoder enforcing our receive limit.
        decoder: FrameDecoder,
    },
}

impl ReadHalf {
    /// The next message or PING; `None` when the router closed the connection.
    /// Cancel-safe.
    pub(crate) async fn next(&mut self) -> Result<Option<Incoming>, Error> {
        match self {
            ReadHalf::Ws(stream) => loop {
                match stream.next().await {
                    None => return Ok(None),
                    Some(Ok(WsMessage::Text(text))) => {
                        return Ok(Some(Incoming::Message(Bytes::from(text))))
                    }
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        return Ok(Some(Incoming::Message(bytes)))
                    }
                    Some(Ok(WsMessage::Close(_))) => return Ok(None),
                    // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                    Some(Ok(_)) => continue,
                    Some(Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    )) => return Ok(None),
                    Some(Err(tungstenite::Error::Io(e))) => return Err(Error::Io(e)),
                    Some(Err(e)) => return Err(Error::WebSocket(e.to_string())),
                }
            },
            ReadHalf::Raw { io, buf, decoder } => loop {
                match decoder.decode(buf) {
                    Err(e) => return Err(Error::Protocol(e.to_string())),
                    Ok(Some(frame)) => match frame.kind {
                        FrameKind::Message => return Ok(Some(Incoming::Message(frame.payload))),
                        FrameKind::Ping => return Ok(Some(Incoming::Ping(frame.payload))),
                        FrameKind::Pong => continue,
                    },
                    Ok(None) => {}
                }
                if io.read_buf(buf).await? == 0 {
                    return if buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()))
                    };
                }
            },
        }
    }
}

/// The sending half of a transport.
pub(crate) enum WriteHalf {
    /// WebSocket: JSON in text messages, the others in binary messages.
    Ws {
        /// The sink.
        sink: SplitSink<Ws, WsMessage>,
        /// Whether messages go in binary frames.
        binary: bool,
    },
    /// RawSocket: frames gathered in `buf` until [`WriteHalf::flush`].
    Raw {
        /// The byte stream.
        io: BoxedWrite,
        /// Frames not yet written.
        buf: BytesMut,
    },
}

impl WriteHalf {
    /// Queues a message or PONG; it is written by the next [`flush`](Self::flush).
    pub(crate) async fn feed(&mut self, item: Outgoing) -> Result<(), Error> {
        match self {
            WriteHalf::Ws { sink, binary } => {
                let message = match item {
                    Outgoing::Message(bytes) if *binary => WsMessage::Binary(bytes),
                    Outgoing::Message(bytes) => WsMessage::Text(
                        Utf8Bytes::try_from(bytes)
                            .map_err(|e| Error::Encode(format!("JSON is not UTF-8: {e}")))?,
                    ),
                    Outgoing::Pong(bytes) => WsMessage::Pong(bytes),
                    Outgoing::Close => return Ok(()),
                };
                sink.feed(message).await.map_err(ws_error)
            }
            WriteHalf::Raw { buf, .. } => {
                let (kind, payload) = match item {
                    Outgoing::Message(bytes) => (FrameKind::Message, bytes),
                    Outgoing::Pong(bytes) => (FrameKind::Pong, bytes),
                    Outgoing::Close => return Ok(()),
                };
                if payload.len() > rawsocket::MAX_FRAME_LEN {
                    return Err(Error::TooLarge {
                        size: payload.len(),
                        limit: rawsocket::MAX_FRAME_LEN,
                    });
                }
                rawsocket::write_frame(buf, kind, &payload);
                Ok(())
            }
        }
    }

    /// Writes everything fed so far.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        match self {
            WriteHalf::Ws { sink, .. } => sink.flush().await.map_err(ws_error),
            WriteHalf::Raw { io, buf } => {
                if !buf.is_empty() {
                    io.write_all(buf).await?;
                    buf.clear();
                }
                io.flush().await?;
                Ok(())
            }
        }
    }

    /// Closes the sending direction (WebSocket close frame, TCP FIN).
    pub(crate) async fn close(&mut self) -> Result<(), Error> {
        match self {
            WriteHalf::Ws { sink, .. } => sink.close().await.map_err(ws_error),
            WriteHalf::Raw { io, .. } => Ok(io.shutdown().await?),
        }
    }
}

fn ws_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Io(e) => Error::Io(e),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Error::Closed,
        other => Error::WebSocket(other.to_string()),
    }
}
