//! WAMP routing without I/O: realms, sessions, the broker and the dealer.
//!
//! The transport layer creates one [`Connection`] per accepted transport, feeds it
//! every received message and writes out what appears in the connection's
//! [`Outbox`]. The router never touches a socket; routing code running on one
//! connection's task writes encoded frames straight into other sessions' outboxes.
//!
//! ```text
//! transport ──bytes──▶ Connection::handle_bytes ──▶ Realm { broker, dealer }
//!                                                        │ encoded frames
//!                                                        ▼
//!                      transport ◀──batch── Outbox (of each receiving session)
//! ```

pub mod auth;
pub mod authenticator;
pub mod authorizer;
pub mod blocking;
pub mod broker;
pub mod connection;
pub mod dealer;
pub mod internal_call;
pub mod meta;
pub mod outbox;
pub mod procedures;
pub mod realm;
pub mod roles;
pub mod session;
pub mod throttle;
pub mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::Notify;
use wamp_proto::error_uri::CLOSE_SYSTEM_SHUTDOWN;
use wamp_proto::{Message, Serializer};

pub use broker::{Filter, HistoryRule, PublishOptions};
pub use connection::{Connection, Flow};
pub use dealer::{CancelMode, InvokePolicy};
pub use outbox::{CloseCause, Drained, Outbox, OutboxLimits, PushError, SlowConsumerPolicy};
pub use realm::{Realm, RealmConfig, RealmStats};
pub use session::PeerFeatures;
pub use transport::{Framing, PeerCert, TransportInfo};

/// Maps keyed by router-chosen ids (random session, subscription and registration
/// ids; per-callee invocation ids): a fast seeded hash instead of SipHash, which is
/// kept for maps keyed by URIs that peers choose.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A set of router-chosen ids (see [`IdMap`]).
pub(crate) type IdSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The agent string sent in WELCOME.
pub const AGENT: &str = concat!("Junction/", env!("CARGO_PKG_VERSION"));

/// How the router is set up.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// The realms that exist.
    pub realms: Vec<RealmConfig>,
    /// Bounds of each session's outbound queue.
    pub outbox: OutboxLimits,
    /// Bounds on calls in flight.
    pub calls: CallLimits,
    /// How long a peer has to send its first HELLO, and to answer a CHALLENGE with
    /// AUTHENTICATE.
    pub auth_timeout: std::time::Duration,
    /// How repeated authentication failures from one address are slowed down.
    pub auth_throttle: throttle::ThrottleConfig,
}

/// The default [`RouterConfig::auth_timeout`].
pub const DEFAULT_AUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bounds on calls in flight, so a callee that stops answering (or a caller that
/// never waits) cannot grow the router's call table without limit. A CALL over a
/// bound gets an ERROR at once.
#[derive(Clone, Copy, Debug)]
pub struct CallLimits {
    /// Most calls one session may have waiting for results.
    pub per_caller: usize,
    /// Most invocations one callee may have unanswered.
    pub per_callee: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            per_caller: 10_000,
            per_callee: 10_000,
        }
    }
}

impl Default for RouterConfig {
    /// One realm, `realm1`.
    fn default() -> Self {
        RouterConfig {
            realms: vec![RealmConfig::new("realm1")],
            outbox: OutboxLimits::default(),
            calls: CallLimits::default(),
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            auth_throttle: throttle::ThrottleConfig::default(),
        }
    }
}

/// The router: its realms and their sessions.
pub struct Router {
    realms: RwLock<HashMap<String, Arc<Realm>>>,
    outbox_limits: OutboxLimits,
    pub(crate) call_limits: CallLimits,
    pub(crate) auth_timeout: std::time::Duration,
    auth_throttle: throttle::AuthThrottle,
    shutting_down: AtomicBool,
    /// Told when a call deadline earlier than all others appeared.
    timer_changed: Notify,
}

impl Router {
    /// A router with the configured realms.
    pub fn new(config: RouterConfig) -> Arc<Router> {
        let realms = config
            .realms
            .into_iter()
            .map(|r| (r.name.clone(), Arc::new(Realm::new(r))))
            .collect();
        Arc::new(Router {
            realms: RwLock::new(realms),
            outbox_limits: config.outbox,
            call_limits: config.calls,
            auth_timeout: config.auth_timeout,
            auth_throttle: throttle::AuthThrottle::new(config.auth_throttle),
            shutting_down: AtomicBool::new(false),
            timer_changed: Notify::new(),
        })
    }

    /// A new outbox with the router's bounds, for a new transport connection.
    pub fn new_outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::new(self.outbox_limits))
    }

    /// Starts the WAMP side of a new transport connection. `max_message_size` is the
    /// largest message the peer accepts; `transport` tells what the transport layer
    /// knows about the peer.
    pub fn connect(
        self: &Arc<Self>,
        serializer: Serializer,
        max_message_size: usize,
        outbox: Arc<Outbox>,
        transport: TransportInfo,
    ) -> Connection {
        Connection::new(
            self.clone(),
            serializer,
            max_message_size,
            outbox,
            transport,
        )
    }

    /// Failure records of peers' authentication: the transport asks
    /// [`AuthThrottle::admit`](throttle::AuthThrottle::admit) how long a new
    /// connection from an address waits; connections record their outcomes.
    pub fn auth_throttle(&self) -> &throttle::AuthThrottle {
        &self.auth_throttle
    }

    /// A realm by name.
    pub fn realm(&self, name: &str) -> Option<Arc<Realm>> {
        self.realms.read().get(name).cloned()
    }

    /// Names of all realms.
    pub fn realm_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.realms.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Sessions joined across all realms.
    pub fn session_count(&self) -> usize {
        self.realms
            .read()
            .values()
            .map(|r| r.sessions.read().len())
            .sum()
    }

    /// The earliest deadline of a call with a router-run timeout
    /// (`CALL.Options.timeout`), if any. The router keeps no clock of its own: its
    /// driver waits until then (or until [`Router::timer_changed`] fires) and calls
    /// [`Router::expire`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.realms
            .read()
            .values()
            .filter_map(|r| r.dealer.lock().next_deadline())
            .min()
    }

    /// Ends every call whose deadline is not after `now` (ERROR `wamp.error.timeout`
    /// to its caller). Returns how many ended.
    pub fn expire(&self, now: Instant) -> usize {
        self.realms
            .read()
            .values()
            .map(|r| r.dealer.lock().expire(now))
            .sum()
    }

    /// Notified when a deadline earlier than every other appeared, so the timer
    /// driver should look at [`Router::next_deadline`] again. (A permit is kept if
    /// nobody waits, so no change is missed.)
    pub fn timer_changed(&self) -> &Notify {
        &self.timer_changed
    }

    /// Whether [`Router::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Tells every session GOODBYE (`wamp.close.system_shutdown`) and closes their
    /// connections once that is written.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let goodbye = Message::goodbye(CLOSE_SYSTEM_SHUTDOWN);
        for realm in self.realms.read().values() {
            for handle in realm.session_handles() {
                handle.send_last(&goodbye);
            }
        }
    }
}
