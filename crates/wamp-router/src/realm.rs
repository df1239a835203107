//! A realm: a routing namespace with its own sessions, broker and dealer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use wamp_proto::message::Id;
use wamp_proto::uri::UriRule;
use wamp_proto::{random_id, Payload, Serializer, Value};

use crate::auth::RealmAuth;
use crate::broker::{Broker, Delivery, HistoryRule, PublishOptions, DEFAULT_MAX_RETAINED_TOPICS};
use crate::dealer::Dealer;
use crate::meta::{self, MetaNote};
use crate::outbox::{Outbox, OutboxLimits};
use crate::session::SessionHandle;
use crate::IdMap;

/// How a realm is set up.
#[derive(Clone, Debug)]
pub struct RealmConfig {
    /// The realm's name (a URI).
    pub name: String,
    /// How strictly topic and procedure URIs are checked.
    pub uri_rule: UriRule,
    /// Always tell callees who calls (`caller`, `caller_authid`, `caller_authrole` in
    /// INVOCATION.Details), whatever CALL and REGISTER ask for.
    pub disclose_caller: bool,
    /// Always tell subscribers who published (`publisher`, `publisher_authid`,
    /// `publisher_authrole` in EVENT.Details), whatever PUBLISH asks for.
    pub disclose_publisher: bool,
    /// Most topics with a retained event (`PUBLISH.Options.retain`); further
    /// topics are not retained.
    pub max_retained_topics: usize,
    /// Event histories to keep (for `wamp.subscription.get_events`).
    pub history: Vec<HistoryRule>,
    /// Authentication methods, users and roles (default: anonymous, everything allowed).
    pub auth: RealmAuth,
}

impl RealmConfig {
    /// A realm with loose URI checking.
    pub fn new(name: impl Into<String>) -> Self {
        RealmConfig {
            name: name.into(),
            uri_rule: UriRule::Loose,
            disclose_caller: false,
            disclose_publisher: false,
            max_retained_topics: DEFAULT_MAX_RETAINED_TOPICS,
            history: Vec::new(),
            auth: RealmAuth::default(),
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
    /// Subscriptions that could receive a meta event (see [`crate::meta`]).
    meta_watch: Arc<AtomicUsize>,
    /// The router's own session in this realm: the publisher of meta events.
    router_session: SessionHandle,
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
        let mut broker = Broker::new(config.max_retained_topics, config.history.clone());
        let meta_watch = broker.meta_watch.clone();
        let mut dealer = Dealer::default();
        dealer.meta_watch = meta_watch.clone();
        let router_session = SessionHandle::new(
            0,
            Serializer::Json,
            0,
            ("junction".into(), "trusted".into(), "none".into()),
            Arc::new(Outbox::new(OutboxLimits::default())),
        );
        broker.meta_watch = meta_watch.clone();
        Realm {
            config,
            sessions: RwLock::new(IdMap::default()),
            broker: RwLock::new(broker),
            dealer: Mutex::new(dealer),
            meta_watch,
            router_session,
        }
    }

    /// Whether some subscription could receive a meta event (a cheap check).
    pub fn meta_watched(&self) -> bool {
        self.meta_watch.load(Ordering::Relaxed) > 0
    }

    /// Publishes a meta event as the router.
    fn publish_meta(&self, broker: &Broker, topic: &str, args: Vec<Value>) {
        broker.publish(
            topic,
            random_id(),
            &Payload::from_args(args),
            &self.router_session,
            &PublishOptions::default(),
            false,
        );
    }

    /// Publishes the subscription meta events the broker recorded; called with
    /// the broker's write lock held, right after the change.
    pub(crate) fn flush_broker(&self, broker: &mut Broker) {
        broker.flush_meta(&self.router_session);
    }

    /// Publishes the registration meta events the dealer recorded; called with the
    /// dealer's lock held, right after the change (the broker lock is taken
    /// inside the dealer lock, never the other way round).
    pub(crate) fn flush_dealer(&self, dealer: &mut Dealer) {
        let notes = dealer.take_meta();
        if notes.is_empty() {
            return;
        }
        let broker = self.broker.read();
        for note in notes {
            let (topic, session, id) = note.parts("wamp.registration");
            let second = match note {
                MetaNote::Create(..) => match dealer.registration(id) {
                    Some(reg) => meta::registration_details(id, reg),
                    None => continue,
                },
                _ => Value::from(id),
            };
            self.publish_meta(&broker, &topic, vec![Value::from(session), second]);
        }
    }

    /// `wamp.session.on_join`, if anyone may listen.
    pub(crate) fn session_joined(&self, session: &SessionHandle) {
        if self.meta_watched() {
            let details = meta::session_details(self, session);
            self.publish_meta(&self.broker.read(), "wamp.session.on_join", vec![details]);
        }
    }

    /// `wamp.session.on_leave` (`[session, authid, authrole]`), if anyone may listen.
    pub(crate) fn session_left(&self, session: &SessionHandle) {
        if self.meta_watched() {
            let args = vec![
                Value::from(session.id),
                Value::from(session.authid.as_str()),
                Value::from(session.authrole.as_str()),
            ];
            self.publish_meta(&self.broker.read(), "wamp.session.on_leave", args);
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

    /// The router takes registration `registration` away from `callee` (from all its
    /// callees when `None`); callees that announced `registration_revocation` get
    /// UNREGISTERED with `reason` (a URI). Their calls in flight go on. Returns how
    /// many callees lost it. (For the registration meta API's `remove_callee`.)
    pub fn revoke_registration(&self, registration: Id, callee: Option<Id>, reason: &str) -> usize {
        let mut dealer = self.dealer.lock();
        let removed = dealer.revoke(registration, callee, reason);
        self.flush_dealer(&mut dealer);
        removed
    }

    /// Call state of any kind the dealer still holds (pending calls, timer entries,
    /// progressive-invocation streams); 0 once everyone left.
    pub fn call_state_len(&self) -> usize {
        self.dealer.lock().call_state_len()
    }

    /// Publishes as `publisher` (a PUBLISH, or a testament): the broker's fan-out
    /// with the realm's disclosure setting applied. The topic must be valid already.
    pub fn publish(
        &self,
        publisher: &SessionHandle,
        topic: &str,
        publication: Id,
        options: &PublishOptions,
        payload: &Payload,
    ) -> Delivery {
        let disclose = options.disclose_me || self.config.disclose_publisher;
        self.broker
            .read()
            .publish(topic, publication, payload, publisher, options, disclose)
    }

    /// The router takes subscription `subscription` away from `subscriber` (from
    /// all its subscribers when `None`); subscribers that announced
    /// `subscription_revocation` get UNSUBSCRIBED with `reason` (a URI). Returns
    /// how many subscribers lost it. (For the subscription meta API's
    /// `remove_subscriber`.)
    pub fn revoke_subscription(
        &self,
        subscription: Id,
        subscriber: Option<Id>,
        reason: &str,
    ) -> usize {
        let mut broker = self.broker.write();
        let removed = broker.revoke(subscription, subscriber, reason);
        self.flush_broker(&mut broker);
        removed
    }

    /// Topics with a retained event.
    pub fn broker_retained_len(&self) -> usize {
        self.broker.read().retained_len()
    }

    /// A joined session by id.
    pub fn session(&self, id: Id) -> Option<Arc<SessionHandle>> {
        self.sessions.read().get(&id).cloned()
    }

    /// Handles of every joined session.
    pub fn session_handles(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions.read().values().cloned().collect()
    }
}
