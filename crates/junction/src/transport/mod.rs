//! Transports: WebSocket and RawSocket (TCP and Unix) carrying WAMP messages.
//!
//! Each accepted connection runs one task ([`drive`]) that alternates between
//! reading frames into the router's [`Connection`](wamp_router::Connection) and
//! writing out everything queued in the session's outbox as one batch.
//!
//! Transports read straight from the socket with [`read_some`]: a connection with
//! nothing buffered holds no read buffer while it waits, so idle sessions stay small.
//! Likewise each batch is encoded into a buffer of its own size that is freed once
//! written (an allocation is cheap next to the write system call; a kept buffer
//! would cost every idle session the size of its largest batch).

pub mod rawsocket;
pub mod websocket;

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;
use wamp_proto::Serializer;
use wamp_router::{Drained, Flow, Router, TransportInfo};

/// Why a transport stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer sent a message over the size limit.
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The peer broke the transport's own framing rules.
    #[error("framing: {0}")]
    Framing(String),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A socket that can wait for data without a buffer and then read without blocking.
pub trait ReadReady {
    /// Waits until the socket is (probably) readable. Cancel-safe. (`&mut`: a TLS
    /// stream decrypts into its own buffer while it waits.)
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is available into the spare capacity of `buf`, or fails with
    /// `WouldBlock`.
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;
}

impl ReadReady for TcpStream {
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }
}

impl ReadReady for UnixStream {
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        UnixStream::readable(self)
    }
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        UnixStream::try_read_buf(self, buf)
    }
}

/// Size of a fresh read buffer.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Most read-buffer room reserved at once for the rest of a large frame.
const MAX_RESERVE_STEP: usize = 256 * 1024;

/// Below this much spare room the read buffer is grown (or replaced) before reading.
const MIN_SPARE: usize = 1024;

/// Reads more bytes from `stream` into `buf`; 0 means end of stream. `want` is how
/// many more bytes the frame at the front of `buf` needs (0 if unknown), reserved in
/// one step so large frames are not reassembled by repeated doubling.
///
/// When nothing is buffered and no data is waiting, `buf` is released and a fresh
/// chunk is allocated only once the socket is readable: an idle connection holds no
/// read buffer. Cancel-safe: the only await is [`ReadReady::readable`].
pub(crate) async fn read_some<S: ReadReady>(
    stream: &mut S,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    if buf.capacity() == 0 {
        stream.readable().await?;
    }
    // A frame header may claim up to the message size limit: grow towards it as the
    // bytes arrive rather than reserving it all on the peer's word.
    let want = want.min(MAX_RESERVE_STEP);
    loop {
        let spare = buf.capacity() - buf.len();
        if spare < MIN_SPARE.max(want) {
            if buf.is_empty() {
                *buf = BytesMut::with_capacity(READ_CHUNK.max(want));
            } else {
                buf.reserve(READ_CHUNK.max(want));
            }
        }
        match stream.try_read_buf(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if buf.is_empty() {
                    *buf = BytesMut::new();
                }
                stream.readable().await?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A message-oriented, established transport.
pub(crate) trait FrameIo: Send {
    /// The next WAMP message; `None` when the peer closed. Must be cancel-safe.
    fn recv(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Bytes>, TransportError>> + Send;
    /// Writes a batch of WAMP messages and flushes once.
    fn send_batch(
        &mut self,
        frames: &[Bytes],
    ) -> impl std::future::Future<Output = Result<(), TransportError>> + Send;
    /// Closes the transport (best effort).
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs one connection until either side ends it.
pub(crate) async fn drive<T: FrameIo>(
    router: Arc<Router>,
    serializer: Serializer,
    peer_max_message_size: usize,
    mut io: T,
    mut shutdown: watch::Receiver<bool>,
    transport: TransportInfo,
) {
    let outbox = router.new_outbox();
    let mut connection =
        router.connect(serializer, peer_max_message_size, outbox.clone(), transport);
    let mut batch: Vec<Bytes> = Vec::new();
    let mut stopping = *shutdown.borrow();
    if stopping {
        connection.shutdown();
    }
    // One future for the whole connection rather than a new one per loop turn.
    let shutdown_signal = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(shutdown_signal);
    // The HELLO deadline until the first HELLO, then the AUTHENTICATE deadline
    // while a CHALLENGE is unanswered; `auth_armed`: the deadline it is set to.
    let auth_timer = tokio::time::sleep(std::time::Duration::from_secs(3600));
    tokio::pin!(auth_timer);
    let mut auth_armed = None;
    arm(
        connection.auth_deadline(),
        auth_timer.as_mut(),
        &mut auth_armed,
    );
    // A router-initiated call (authenticator, authorizer) the connection waits
    // for: no further message is read until it is answered.
    let mut waiting: Option<wamp_router::internal_call::InternalCall> = None;
    loop {
        tokio::select! {
            biased;
            drained = outbox.drain(&mut batch) => match drained {
                Drained::Frames => {
                    // A peer that stops reading blocks this write; its queue then
                    // overflows, and that ends the connection.
                    let written = tokio::select! {
                        written = io.send_batch(&batch) => written.is_ok(),
                        _ = outbox.overflowed() => false,
                    };
                    batch.clear();
                    if !written {
                        break;
                    }
                }
                Drained::Closed(cause) => {
                    tracing::debug!(?cause, "outbox closed");
                    break;
                }
            },
            _ = &mut shutdown_signal, if !stopping => {
                stopping = true;
                connection.shutdown();
            }
            () = &mut auth_timer, if auth_armed.is_some() => {
                auth_armed = None;
                if connection.auth_timed_out() == Flow::Close {
                    outbox.close();
                    let flush = async {
                        while let Drained::Frames = outbox.drain(&mut batch).await {
                            if io.send_batch(&batch).await.is_err() {
                                break;
                            }
                            batch.clear();
                        }
                    };
                    let _ = tokio::time::timeout(LINGER, flush).await;
                    break;
                }
                arm(connection.auth_deadline(), auth_timer.as_mut(), &mut auth_armed);
            }
            answer = wait_for(&mut waiting), if waiting.is_some() => {
                let flow = connection.resume(answer);
                waiting = connection.take_wait();
                if flow == Flow::Close {
                    outbox.close();
                    let flush = async {
                        while let Drained::Frames = outbox.drain(&mut batch).await {
                            let written = io.send_batch(&batch).await;
                            batch.clear();
                            if written.is_err() {
                                break;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(LINGER, flush).await;
                    break;
                }
                // A dynamic WAMP-CRA CHALLENGE goes out after the authenticator answered.
                arm(connection.auth_deadline(), auth_timer.as_mut(), &mut auth_armed);
            }
            incoming = io.recv(), if waiting.is_none() => {
                let mut incoming = incoming;
                // Handle what is already buffered (or readable without waiting)
                // before the next turn: fewer outbox checks, bigger batches.
                let mut flow;
                let mut handled = 0;
                loop {
                    handled += 1;
                    flow = match incoming {
                        Ok(Some(bytes)) => connection.handle_bytes(bytes),
                        Ok(None) => Flow::Close,
                        Err(TransportError::TooLarge(n)) => connection.fail(&format!(
                            "message of {n} bytes exceeds the limit"
                        )),
                        Err(TransportError::Framing(why)) => connection.fail(&why),
                        Err(TransportError::Io(e)) => {
                            tracing::debug!(error = %e, "transport read failed");
                            Flow::Close
                        }
                    };
                    if flow == Flow::Close || handled == READ_BURST || connection.is_waiting() {
                        break;
                    }
                    match io.recv().now_or_never() {
                        Some(next) => incoming = next,
                        None => break,
                    }
                }
                waiting = connection.take_wait();
                arm(connection.auth_deadline(), auth_timer.as_mut(), &mut auth_armed);
                if flow == Flow::Close {
                    // Write what is queued (an ABORT, say), then close; bounded in
                    // time in case the peer does not read.
                    outbox.close();
                    let flush = async {
                        while let Drained::Frames = outbox.drain(&mut batch).await {
                            let written = io.send_batch(&batch).await;
                            batch.clear();
                            if written.is_err() {
                                break;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(LINGER, flush).await;
                    break;
                }
            }
        }
    }
    connection.transport_closed();
    outbox.close();
    let _ = tokio::time::timeout(LINGER, io.close()).await;
}

/// Sets `timer` to `deadline` if that is not the one it is set to (`armed`).
fn arm(
    deadline: Option<std::time::Instant>,
    timer: std::pin::Pin<&mut tokio::time::Sleep>,
    armed: &mut Option<std::time::Instant>,
) {
    if deadline != *armed {
        if let Some(deadline) = deadline {
            timer.reset(deadline.into());
        }
        *armed = deadline;
    }
}

/// The answer of the router-initiated call in `waiting` (which must be `Some`).
async fn wait_for(
    waiting: &mut Option<wamp_router::internal_call::InternalCall>,
) -> wamp_router::internal_call::Answer {
    match waiting {
        Some(call) => call.answer().await,
        None => std::future::pending().await,
    }
}

/// Most received messages handled in one turn of a connection's loop before its
/// outbox and the shutdown signal are looked at again.
const READ_BURST: usize = 64;

/// How long a closing connection may take to write its last frames.
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);
