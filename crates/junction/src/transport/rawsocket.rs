//! WAMP over RawSocket (TCP or Unix): the 4-byte handshake, then length-prefixed frames.
//!
//! Like the WebSocket transport, an idle connection holds no read buffer (see
//! [`read_some`](super::read_some)).

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wamp_proto::rawsocket::{
    exponent_for_max_len, max_len_from_exponent, parse_client_handshake, server_handshake_reply,
    write_frame, FrameDecoder, FrameError, FrameKind, HandshakeError,
};
use wamp_proto::Serializer;

use super::{read_some, FrameIo, ReadReady, TransportError};

/// How long a client has to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of a successful handshake.
pub struct Negotiated {
    /// The serializer the client asked for.
    pub serializer: Serializer,
    /// The largest message the client accepts.
    pub peer_max_len: usize,
}

/// Reads the client's handshake and answers it. On refusal the error reply has been
/// written and the caller just closes.
pub async fn handshake<S>(stream: &mut S, own_max_len: usize) -> Result<Negotiated, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = [0u8; 4];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut request))
        .await
        .map_err(|_| TransportError::Framing("RawSocket handshake timed out".into()))??;
    match parse_client_handshake(request, |id| Serializer::from_rawsocket_id(id).is_some()) {
        Ok(hello) => {
            let serializer = Serializer::from_rawsocket_id(hello.serializer)
                .ok_or_else(|| TransportError::Framing("unsupported serializer".into()))?;
            // Announce the largest size we accept that the length nibble can express
            // without exceeding our limit.
            let own = max_len_from_exponent(exponent_for_max_len(own_max_len));
            stream
                .write_all(&server_handshake_reply(hello.serializer, own))
                .await?;
            // A no-op on TCP; TLS may hold the record until flushed.
            stream.flush().await?;
            Ok(Negotiated {
                serializer,
                peer_max_len: hello.max_len,
            })
        }
        Err(e) => {
            if let Some(reply) = e.reply() {
                let _ = stream.write_all(&reply).await;
                let _ = stream.flush().await;
            }
            Err(TransportError::Framing(match e {
                HandshakeError::NotRawSocket => "not a RawSocket handshake".into(),
                other => other.to_string(),
            }))
        }
    }
}

/// An established RawSocket transport.
pub struct RawSocketIo<S> {
    stream: S,
    decoder: FrameDecoder,
    read_buf: BytesMut,
    /// PONG frames not yet (completely) written.
    pending_pongs: BytesMut,
}

impl<S> RawSocketIo<S> {
    /// Wraps a stream after a successful handshake; `own_max_len` bounds incoming frames.
    pub fn new(stream: S, own_max_len: usize) -> Self {
        RawSocketIo {
            stream,
            decoder: FrameDecoder::new(max_len_from_exponent(exponent_for_max_len(own_max_len))),
            read_buf: BytesMut::new(),
            pending_pongs: BytesMut::new(),
        }
    }
}

impl<S> FrameIo for RawSocketIo<S>
where
    S: ReadReady + AsyncWrite + Unpin + Send + Sync,
{
    async fn recv(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => match frame.kind {
                    FrameKind::Message => return Ok(Some(frame.payload)),
                    FrameKind::Ping => {
                        write_frame(&mut self.pending_pongs, FrameKind::Pong, &frame.payload);
                    }
                    FrameKind::Pong => {}
                },
                Ok(None) => {
                    // Answer PINGs at once. Each `write` either happens or not, so
                    // this stays cancel-safe.
                    while !self.pending_pongs.is_empty() {
                        let n = self.stream.write(&self.pending_pongs).await?;
                        if n == 0 {
                            return Err(TransportError::Io(std::io::ErrorKind::WriteZero.into()));
                        }
                        self.pending_pongs.advance(n);
                    }
                    if self.pending_pongs.capacity() > 0 {
                        self.stream.flush().await?;
                        self.pending_pongs = BytesMut::new();
                    }
                    // The decoder has reserved room for the rest of a partial frame.
                    if read_some(&mut self.stream, &mut self.read_buf, 0).await? == 0 {
                        return Ok(None);
                    }
                }
                Err(FrameError::TooLong { len, .. }) => return Err(TransportError::TooLarge(len)),
                Err(e) => return Err(TransportError::Framing(e.to_string())),
            }
        }
    }

    async fn send_batch(&mut self, frames: &[Bytes]) -> Result<(), TransportError> {
        let size: usize = frames.iter().map(|f| f.len() + 4).sum();
        let mut out = BytesMut::with_capacity(size + self.pending_pongs.len());
        // A partly written PONG goes first so frames never interleave.
        out.extend_from_slice(&self.pending_pongs);
        self.pending_pongs = BytesMut::new();
        for frame in frames {
            write_frame(&mut out, FrameKind::Message, frame);
        }
        self.stream.write_all(&out).await?;
        // A no-op on plain sockets; TLS may keep the last record until flushed.
        self.stream.flush().await?;
        Ok(())
    }

    async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
