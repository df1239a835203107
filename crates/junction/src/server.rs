//! Starting and stopping the listeners around one [`Router`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use wamp_router::{Framing, Router, TransportInfo};

use crate::config::{Config, Listener};
use crate::transport::{self, rawsocket, websocket, ReadReady};

/// Where a running server listens.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// WebSocket listeners (address, path); RawSocket is accepted there too when enabled.
    pub websocket: Vec<(SocketAddr, String)>,
    /// RawSocket-only TCP listeners.
    pub rawsocket: Vec<SocketAddr>,
    /// Unix socket paths.
    pub unix: Vec<PathBuf>,
    /// WebSocket-over-TLS listeners (address, path): `wss://`; RawSocket over TLS
    /// is accepted there too when enabled.
    pub secure_websocket: Vec<(SocketAddr, String)>,
    /// RawSocket-over-TLS-only listeners: `rss://`.
    pub secure_rawsocket: Vec<SocketAddr>,
}

/// A running router with its listeners.
pub struct Server {
    router: Arc<Router>,
    endpoints: Endpoints,
    shutdown: watch::Sender<bool>,
    accept_loops: Vec<JoinHandle<()>>,
    /// Ends calls whose `timeout` passed.
    call_timer: JoinHandle<()>,
    /// One clone per live connection: the count tells when all have ended.
    live: Arc<()>,
}

#[derive(Clone)]
struct Shared {
    router: Arc<Router>,
    max_message_size: usize,
    shutdown: watch::Receiver<bool>,
    live: Arc<()>,
}

impl Server {
    /// Binds every configured listener and starts accepting.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        config.validate()?;
        let router = Router::new(config.router_config());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let live = Arc::new(());
        let shared = Shared {
            router: router.clone(),
            max_message_size: config.limits.max_message_size,
            shutdown: shutdown_rx,
            live: live.clone(),
        };
        let mut endpoints = Endpoints::default();
        let mut accept_loops = Vec::new();
        for listener in &config.listeners {
            let auth_methods: Option<Arc<[String]>> = listener.auth_methods().map(Arc::from);
            let tls = match listener.tls() {
                Some(tls) => Some(TlsAcceptor::from(
                    crate::tls::server_config(tls).map_err(|e| anyhow::anyhow!("{e}"))?,
                )),
                None => None,
            };
            match listener {
                Listener::Websocket {
                    address,
                    path,
                    rawsocket,
                    ..
                } => {
                    let tcp = TcpListener::bind(address)
                        .await
                        .with_context(|| format!("cannot listen on {address}"))?;
                    let local = tcp.local_addr()?;
                    if tls.is_some() {
                        endpoints.secure_websocket.push((local, path.clone()));
                    } else {
                        endpoints.websocket.push((local, path.clone()));
                    }
                    let mode = TcpMode::WebSocket {
                        path: path.clone(),
                        rawsocket: *rawsocket,
                    };
                    let listen = Arc::new(ListenerOptions { tls, auth_methods });
                    accept_loops.push(tokio::spawn(accept_tcp(tcp, mode, listen, shared.clone())));
                }
                Listener::Rawsocket { address, .. } => {
                    let tcp = TcpListener::bind(address)
                        .await
                        .with_context(|| format!("cannot listen on {address}"))?;
                    if tls.is_some() {
                        endpoints.secure_rawsocket.push(tcp.local_addr()?);
                    } else {
                        endpoints.rawsocket.push(tcp.local_addr()?);
                    }
                    let listen = Arc::new(ListenerOptions { tls, auth_methods });
                    accept_loops.push(tokio::spawn(accept_tcp(
                        tcp,
                        TcpMode::RawSocket,
                        listen,
                        shared.clone(),
                    )));
                }
                Listener::Unix { path, .. } => {
                    if path.exists() {
                        std::fs::remove_file(path).with_context(|| {
                            format!("cannot replace the old socket file {}", path.display())
                        })?;
                    }
                    let unix = UnixListener::bind(path)
                        .with_context(|| format!("cannot listen on {}", path.display()))?;
                    endpoints.unix.push(path.clone());
                    accept_loops.push(tokio::spawn(accept_unix(
                        unix,
                        auth_methods,
                        shared.clone(),
                    )));
                }
            }
        }
        let call_timer = tokio::spawn(run_call_timer(router.clone()));
        Ok(Server {
            router,
            endpoints,
            shutdown,
            accept_loops,
            call_timer,
            live,
        })
    }

    /// The router.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Where the server listens (with the actual ports when 0 was configured).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Stops accepting, says GOODBYE (`wamp.close.system_shutdown`) to every session,
    /// and waits up to `grace` for the connections to close.
    pub async fn shutdown(self, grace: Duration) {
        for task in &self.accept_loops {
            task.abort();
        }
        self.router.shutdown();
        let _ = self.shutdown.send(true);
        let deadline = Instant::now() + grace;
        while Arc::strong_count(&self.live) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.call_timer.abort();
        for path in &self.endpoints.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.call_timer.abort();
    }
}

/// The router's clock: sleeps until the earliest call deadline (or until an earlier
/// one appears) and ends the calls that are due.
async fn run_call_timer(router: Arc<Router>) {
    loop {
        match router.next_deadline() {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = router.timer_changed().notified() => {}
                }
            }
            None => router.timer_changed().notified().await,
        }
        router.expire(Instant::now());
    }
}

#[derive(Clone)]
enum TcpMode {
    WebSocket { path: String, rawsocket: bool },
    RawSocket,
}

/// What a TCP listener adds to its connections: TLS, and which auth methods.
struct ListenerOptions {
    tls: Option<TlsAcceptor>,
    auth_methods: Option<Arc<[String]>>,
}

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new connection has to send its first byte (WebSocket or RawSocket?).
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_tcp(
    listener: TcpListener,
    mode: TcpMode,
    listen: Arc<ListenerOptions>,
    shared: Shared,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                // A peer with recent authentication failures waits for its turn.
                let wait = shared
                    .router
                    .auth_throttle()
                    .admit(peer.ip(), std::time::Instant::now());
                if !wait.is_zero() {
                    tracing::debug!(%peer, wait_ms = wait.as_millis() as u64, "slowing down a peer after failed authentications");
                }
                let info = TransportInfo {
                    peer: Some(peer),
                    auth_methods: listen.auth_methods.clone(),
                    ..TransportInfo::default()
                };
                match &listen.tls {
                    None => {
                        let serve = serve_tcp(stream, mode.clone(), info, shared.clone());
                        spawn_after(wait, serve);
                    }
                    Some(acceptor) => {
                        let serve =
                            serve_tls(stream, acceptor.clone(), mode.clone(), info, shared.clone());
                        spawn_after(wait, serve);
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_unix(listener: UnixListener, auth_methods: Option<Arc<[String]>>, shared: Shared) {
    loop {
        match listener.accept().await {
            Ok((mut stream, _)) => {
                let shared = shared.clone();
                let info = TransportInfo {
                    auth_methods: auth_methods.clone(),
                    unix: true,
                    framing: Framing::RawSocket,
                    ..TransportInfo::default()
                };
                tokio::spawn(async move {
                    let _live = shared.live.clone();
                    match rawsocket::handshake(&mut stream, shared.max_message_size).await {
                        Ok(n) => {
                            let io = rawsocket::RawSocketIo::new(stream, shared.max_message_size);
                            let peer_max = n.peer_max_len.min(shared.max_message_size);
                            transport::drive(
                                shared.router,
                                n.serializer,
                                peer_max,
                                io,
                                shared.shutdown,
                                info,
                            )
                            .await;
                        }
                        Err(e) => tracing::debug!(error = %e, "unix RawSocket refused"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs `serve` on its own task, after `wait` if that is not zero. The waiting
/// wrapper boxes `serve`: held inline, it would double the size of every
/// connection's task (an async fn keeps its argument and the awaited future apart).
fn spawn_after<F>(wait: Duration, serve: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if wait.is_zero() {
        tokio::spawn(serve);
    } else {
        let serve = Box::pin(serve);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            serve.await;
        });
    }
}

async fn serve_tcp(stream: TcpStream, mode: TcpMode, info: TransportInfo, shared: Shared) {
    let _live = shared.live.clone();
    let is_rawsocket = match &mode {
        TcpMode::RawSocket => true,
        TcpMode::WebSocket { rawsocket, .. } => {
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await;
            match peeked {
                Ok(Ok(1)) => *rawsocket && first[0] == wamp_proto::rawsocket::MAGIC,
                _ => return,
            }
        }
    };
    serve_stream(stream, is_rawsocket, mode, info, shared).await;
}

/// A connection to a TLS listener: the handshake (bounded in time; a failure
/// only ends this connection), then the same as [`serve_tcp`].
async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    mode: TcpMode,
    mut info: TransportInfo,
    shared: Shared,
) {
    let _live = shared.live.clone();
    let peer = info.peer;
    let mut stream =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(?peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(?peer, "TLS handshake timed out");
                return;
            }
        };
    info.tls = true;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first());
    info.client_cert_id = cert.and_then(|cert| crate::tls::cert_identity(cert));
    if info.client_cert_id.is_some() {
        info.peer_cert = cert.map(|cert| Arc::new(crate::tls::peer_cert(cert)));
    }
    info.channel_binding = crate::tls::channel_binding(stream.get_ref().1);
    let is_rawsocket = match &mode {
        TcpMode::RawSocket => true,
        TcpMode::WebSocket { rawsocket, .. } => {
            // Look at the first byte without taking it: it stays in rustls' buffer.
            let first = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.fill_buf()).await;
            match first {
                Ok(Ok([first, ..])) => *rawsocket && *first == wamp_proto::rawsocket::MAGIC,
                _ => return,
            }
        }
    };
    serve_stream(stream, is_rawsocket, mode, info, shared).await;
}

/// Runs the RawSocket or WebSocket handshake on an accepted stream, then the
/// connection.
async fn serve_stream<S>(
    mut stream: S,
    is_rawsocket: bool,
    mode: TcpMode,
    info: TransportInfo,
    shared: Shared,
) where
    S: ReadReady + AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    let peer = info.peer;
    let mut info = info;
    info.framing = if is_rawsocket {
        Framing::RawSocket
    } else {
        Framing::WebSocket
    };
    if is_rawsocket {
        match rawsocket::handshake(&mut stream, shared.max_message_size).await {
            Ok(n) => {
                tracing::debug!(?peer, serializer = %n.serializer, tls = info.tls, "RawSocket connection");
                let io = rawsocket::RawSocketIo::new(stream, shared.max_message_size);
                let peer_max = n.peer_max_len.min(shared.max_message_size);
                transport::drive(
                    shared.router,
                    n.serializer,
                    peer_max,
                    io,
                    shared.shutdown,
                    info,
                )
                .await;
            }
            Err(e) => tracing::debug!(?peer, error = %e, "RawSocket refused"),
        }
        return;
    }
    let TcpMode::WebSocket { path, .. } = mode else {
        return;
    };
    match websocket::accept(stream, &path).await {
        Ok((stream, serializer)) => {
            tracing::debug!(?peer, %serializer, tls = info.tls, "WebSocket connection");
            let io = websocket::WebSocketIo::new(stream, serializer, shared.max_message_size);
            transport::drive(
                shared.router,
                serializer,
                shared.max_message_size,
                io,
                shared.shutdown,
                info,
            )
            .await;
        }
        Err(e) => tracing::debug!(?peer, error = %e, "WebSocket handshake failed"),
    }
}
