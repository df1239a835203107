//! WAMP over WebSocket: subprotocol negotiation (`wamp.2.json`, `wamp.2.msgpack`,
//! `wamp.2.cbor`), JSON in text messages, the binary serializers in binary messages.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use wamp_proto::Serializer;

use super::{FrameIo, TransportError};

/// Initial read buffer of a WebSocket connection, in bytes.
const READ_BUFFER_SIZE: usize = 1024;

/// The subprotocols offered, for error texts.
const OFFERED: &str = "wamp.2.json, wamp.2.msgpack, wamp.2.cbor";

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

/// Performs the WebSocket handshake on `stream`. Refuses, with an HTTP error that
/// says why, a wrong path or a request that offers no supported WAMP subprotocol.
#[allow(clippy::result_large_err)] // the error type is tungstenite's
pub async fn accept<S>(
    stream: S,
    path: &str,
    max_message_size: usize,
) -> Result<(WebSocketStream<S>, Serializer), tungstenite::Error>
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
    // tungstenite zero-fills the unused part of its read buffer before every read
    // and keeps it allocated for the connection's life: a small buffer keeps both the
    // per-read cost and the per-connection memory low. It grows for larger messages.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size));
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?;
    let serializer = chosen.ok_or(tungstenite::Error::ConnectionClosed)?;
    Ok((ws, serializer))
}

/// An established WAMP-over-WebSocket transport.
pub struct WebSocketIo<S> {
    ws: WebSocketStream<S>,
    text: bool,
}

impl<S> WebSocketIo<S> {
    /// Wraps an accepted WebSocket that speaks `serializer`.
    pub fn new(ws: WebSocketStream<S>, serializer: Serializer) -> Self {
        WebSocketIo {
            ws,
            text: !serializer.is_binary(),
        }
    }
}

impl<S> FrameIo for WebSocketIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn recv(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            match self.ws.next().await {
                None => return Ok(None),
                Some(Ok(WsMessage::Text(text))) => return Ok(Some(Bytes::from(text))),
                Some(Ok(WsMessage::Binary(bytes))) => return Ok(Some(bytes)),
                Some(Ok(WsMessage::Close(_))) => return Ok(None),
                // Pings are answered by tungstenite on the next write or flush.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {
                    let _ = self.ws.flush().await;
                }
                Some(Err(tungstenite::Error::Capacity(e))) => {
                    return Err(TransportError::TooLarge(match e {
                        tungstenite::error::CapacityError::MessageTooLong { size, .. } => size,
                        _ => 0,
                    }))
                }
                Some(Err(tungstenite::Error::Io(e))) => return Err(TransportError::Io(e)),
                Some(Err(e)) => return Err(TransportError::Framing(e.to_string())),
            }
        }
    }

    async fn send_batch(&mut self, frames: &[Bytes]) -> Result<(), TransportError> {
        // The router's JSON encoder writes UTF-8 only, so text frames are built
        // directly instead of validating every outgoing message again.
        let opcode = OpCode::Data(if self.text { Data::Text } else { Data::Binary });
        for frame in frames {
            let message = WsMessage::Frame(Frame::message(frame.clone(), opcode, true));
            self.ws.feed(message).await.map_err(ws_error)?;
        }
        self.ws.flush().await.map_err(ws_error)
    }

    async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn ws_error(e: tungstenite::Error) -> TransportError {
    match e {
        tungstenite::Error::Io(e) => TransportError::Io(e),
        other => TransportError::Framing(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
