//! Shared setup for the integration tests: a router on loopback ports chosen by the
//! OS, with WebSocket (+RawSocket on the same port), RawSocket TCP and Unix listeners.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use junction::config::{Config, Listener};
use junction::Server;
use wamp_client::{ConnectOptions, Session};
use wamp_proto::Serializer;

pub struct TestRouter {
    pub server: Server,
    pub ws: SocketAddr,
    pub rs: SocketAddr,
    pub unix: PathBuf,
    _dir: tempfile::TempDir,
}

/// How a test client reaches the router.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    WebSocket,
    /// RawSocket on the WebSocket port.
    RawSocketShared,
    RawSocket,
    Unix,
}

pub const ALL_VIAS: [Via; 4] = [
    Via::WebSocket,
    Via::RawSocketShared,
    Via::RawSocket,
    Via::Unix,
];

impl TestRouter {
    pub async fn start() -> TestRouter {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestRouter {
        let dir = tempfile::tempdir().expect("tempdir");
        let unix = dir.path().join("junction.sock");
        let mut config = Config {
            listeners: vec![
                Listener::websocket("127.0.0.1:0".parse().expect("addr"), "/ws"),
                Listener::rawsocket("127.0.0.1:0".parse().expect("addr")),
                Listener::unix(unix.clone()),
            ],
            ..Config::default()
        };
        // Tests fail logins on purpose, many from 127.0.0.1: no slowing down unless
        // a test asks for it.
        config.limits.auth_failure_delay_ms = 0;
        adjust(&mut config);
        let server = Server::start(&config).await.expect("server starts");
        let endpoints = server.endpoints().clone();
        TestRouter {
            ws: endpoints.websocket[0].0,
            rs: endpoints.rawsocket[0],
            unix,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, via: Via) -> String {
        match via {
            Via::WebSocket => format!("ws://{}/ws", self.ws),
            Via::RawSocketShared => format!("rs://{}", self.ws),
            Via::RawSocket => format!("rs://{}", self.rs),
            Via::Unix => format!("unix://{}", self.unix.display()),
        }
    }

    pub fn ws_url(&self) -> String {
        self.url(Via::WebSocket)
    }

    pub async fn join(&self) -> Session {
        self.join_via(Via::WebSocket, Serializer::Json).await
    }

    pub async fn join_via(&self, via: Via, serializer: Serializer) -> Session {
        let options = ConnectOptions {
            serializer,
            ..ConnectOptions::default()
        };
        Session::connect_with(&self.url(via), "realm1", options)
            .await
            .unwrap_or_else(|e| panic!("join via {via:?}/{serializer}: {e}"))
    }

    /// Table sizes of realm1.
    pub fn stats(&self) -> wamp_router::RealmStats {
        self.server
            .router()
            .realm("realm1")
            .expect("realm1")
            .stats()
    }

    /// Waits (bounded) until realm1's tables match `want`.
    pub async fn wait_for_stats(
        &self,
        want: impl Fn(&wamp_router::RealmStats) -> bool,
    ) -> wamp_router::RealmStats {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.stats();
            if want(&s) || tokio::time::Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Bounded wait for a future in tests.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
