//! A realm: a routing namespace with its own sessions, broker and dealer.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use wamp_proto::message::Id;
use wamp_proto::uri::UriRule;

use crate::broker::Broker;
use crate::dealer::Dealer;
use crate::session::SessionHandle;
use crate::IdMap;

/// How a realm is set up.
#[derive(Clone, Debug)]
pub struct RealmConfig {
    /// The realm's name (a URI).
    pub name: String,
    /// How strictly topic and procedure URIs are checked.
    pub uri_rule: UriRule,
}

impl RealmConfig {
    /// A realm with loose URI checking.
    pub fn new(name: impl Into<String>) -> Self {
        RealmConfig {
            name: name.into(),
            uri_rule: UriRule::Loose,
        }
    }
}

/// A realm's live state. Tables are behind short, synchronous locks: no lock is held
/// across an await, and each routing step takes at most one table lock.
pub struct Realm {
    /// The realm's configuration.
    pub config: RealmConfig,
    pub(crate) sessions: RwLock<IdMap<Id, Arc<SessionHandle>>>,
    pub(crate) broker: RwLock<Broker>,
    pub(crate) dealer: Mutex<Dealer>,
}

/// Table sizes of a realm, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealmStats {
    /// Sessions joined.
    pub sessions: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Registrations.
    pub registrations: usize,
    /// Calls in flight.
    pub pending_calls: usize,
}

impl Realm {
    pub(crate) fn new(config: RealmConfig) -> Self {
        Realm {
            config,
            sessions: RwLock::new(IdMap::default()),
            broker: RwLock::new(Broker::default()),
            dealer: Mutex::new(Dealer::default()),
        }
    }

    /// The realm's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Current table sizes.
    pub fn stats(&self) -> RealmStats {
        let sessions = self.sessions.read().len();
        let subscriptions = self.broker.read().len();
        let dealer = self.dealer.lock();
        RealmStats {
            sessions,
            subscriptions,
            registrations: dealer.registration_count(),
            pending_calls: dealer.pending_count(),
        }
    }

    /// Handles of every joined session.
    pub fn session_handles(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions.read().values().cloned().collect()
    }
}
