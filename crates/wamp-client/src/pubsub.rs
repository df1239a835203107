//! Publish and subscribe (Advanced Profile included): publication and subscription
//! options, received events with their details, and subscriptions.
//!
//! ```no_run
//! use wamp_client::{MatchPolicy, PublishOptions, Session, SubscribeOptions, Value};
//!
//! # async fn demo(session: Session) -> Result<(), wamp_client::Error> {
//! let mut alerts = session
//!     .subscribe_with("com.example.alert.", SubscribeOptions::new().match_policy(MatchPolicy::Prefix))
//!     .await?;
//! session
//!     .publish_with(
//!         "com.example.alert.fire",
//!         wamp_client::Payload::from_args(vec![Value::from("kitchen")]),
//!         PublishOptions::new().acknowledge(true).exclude_me(false).disclose_me(true),
//!     )
//!     .await?;
//! while let Some(event) = alerts.next().await {
//!     println!("{:?} from {:?}: {:?}", event.topic(), event.publisher(), event.args);
//! }
//! if let Some(reason) = alerts.revocation_reason() {
//!     println!("the router revoked the subscription: {reason}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Several subscriptions on one router subscription
//!
//! A router keeps one subscription per (topic, match policy) and session, and answers
//! a repeated SUBSCRIBE with the ID it already gave out. Every [`Subscription`] of
//! this session on it receives each event; UNSUBSCRIBE is sent only when the last of
//! them goes. If a SUBSCRIBE is answered with the ID of a subscription whose
//! UNSUBSCRIBE is still in flight, the router would remove the new subscriber with
//! it, so the client subscribes again and only then hands out the [`Subscription`].
//!
//! How events are queued, and what happens when an application does not read them,
//! is described under [`Subscription`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wamp_proto::{Dict, Payload, Value};

use crate::error::Error;
use crate::rpc::MatchPolicy;
use crate::session::Shared;
use crate::state::RequestKind;

/// One EVENT.
///
/// `details` is `EVENT.Details` as received; the accessor methods read the keys the
/// WAMP Advanced Profile defines.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The router's subscription ID.
    pub subscription: u64,
    /// The publication ID (the same for every receiver of one publication, and for
    /// every matching subscription of one session).
    pub publication: u64,
    /// Positional arguments (an opaque payload element is the only one).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// `EVENT.Details`, all keys as received.
    pub details: Dict,
    /// The payload as received.
    pub payload: Payload,
}

impl Event {
    fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.get(key).and_then(Value::as_str)
    }

    /// The publisher's session ID (`Details.publisher`), if the broker disclosed it
    /// (publisher identification: [`PublishOptions::disclose_me`] or router
    /// configuration).
    pub fn publisher(&self) -> Option<u64> {
        self.details.get("publisher").and_then(Value::as_u64)
    }

    /// The publisher's authid (`Details.publisher_authid`), if disclosed.
    pub fn publisher_authid(&self) -> Option<&str> {
        self.detail_str("publisher_authid")
    }

    /// The publisher's authrole (`Details.publisher_authrole`), if disclosed.
    pub fn publisher_authrole(&self) -> Option<&str> {
        self.detail_str("publisher_authrole")
    }

    /// The topic the event was published to (`Details.topic`). Brokers send it for
    /// prefix and wildcard subscriptions only; for an exact subscription it is
    /// [`Subscription::topic`].
    pub fn topic(&self) -> Option<&str> {
        self.detail_str("topic")
    }

    /// Whether this is a retained event replayed on subscribing
    /// (`Details.retained`, see [`SubscribeOptions::get_retained`]).
    pub fn retained(&self) -> bool {
        self.details.get("retained").and_then(Value::as_bool) == Some(true)
    }

    /// The trust level the broker assigned to the publication
    /// (`Details.trustlevel`, 0 is the lowest), if any.
    pub fn trustlevel(&self) -> Option<u64> {
        self.details.get("trustlevel").and_then(Value::as_u64)
    }

    /// `Details.ppt_scheme`: set when the payload is in payload passthru mode
    /// (`mqtt`, `wamp`, or a custom `x_` scheme).
    pub fn ppt_scheme(&self) -> Option<&str> {
        self.detail_str("ppt_scheme")
    }

    /// `Details.ppt_serializer` of a passthru payload (`native`, `json`, `cbor`, …).
    pub fn ppt_serializer(&self) -> Option<&str> {
        self.detail_str("ppt_serializer")
    }

    /// `Details.ppt_cipher` of an encrypted passthru payload
    /// (`xsalsa20poly1305`, `aes256gcm`).
    pub fn ppt_cipher(&self) -> Option<&str> {
        self.detail_str("ppt_cipher")
    }

    /// `Details.ppt_keyid` of an encrypted passthru payload.
    pub fn ppt_keyid(&self) -> Option<&str> {
        self.detail_str("ppt_keyid")
    }

    /// The opaque payload of a payload passthru event: the single binary element,
    /// when [`ppt_scheme`](Self::ppt_scheme) is set and the payload is exactly one
    /// binary value without keyword arguments (inside `Arguments` as the
    /// specification has it, or in its place as Autobahn sends it).
    pub fn passthru_payload(&self) -> Option<&Bytes> {
        self.ppt_scheme()?;
        match (self.args.as_slice(), self.kwargs.is_empty()) {
            ([Value::Bytes(bytes)], true) => Some(bytes),
            _ => None,
        }
    }
}

/// `PUBLISH.Options`: a typed builder over the options dict.
///
/// Every setter returns the builder; [`option`](Self::option) adds any other key.
/// Converts from and into a [`Dict`], so
/// [`Session::publish_with`](crate::Session::publish_with) accepts either.
///
/// ```
/// use wamp_client::{PublishOptions, Value};
///
/// let options = PublishOptions::new()
///     .acknowledge(true)
///     .exclude_me(false)
///     .eligible_authrole(["admin", "ops"])
///     .exclude([1234u64]);
/// assert_eq!(options.as_dict().get("exclude"), Some(&Value::List(vec![Value::from(1234u64)])));
/// assert!(options.is_acknowledged());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PublishOptions {
    dict: Dict,
}

fn ids(ids: impl IntoIterator<Item = u64>) -> Value {
    Value::List(ids.into_iter().map(Value::from).collect())
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::List(items.into_iter().map(|s| Value::from(s.into())).collect())
}

impl PublishOptions {
    /// No options: unacknowledged, the publisher excluded, every other subscriber
    /// eligible.
    pub fn new() -> PublishOptions {
        PublishOptions::default()
    }

    /// `acknowledge`: the broker answers PUBLISHED (the publication ID) or ERROR.
    pub fn acknowledge(self, acknowledge: bool) -> PublishOptions {
        self.option("acknowledge", acknowledge)
    }

    /// `exclude_me`: with `false`, this session receives its own event if it is
    /// subscribed (publisher exclusion; the default is `true`).
    pub fn exclude_me(self, exclude: bool) -> PublishOptions {
        self.option("exclude_me", exclude)
    }

    /// `exclude`: sessions (IDs) that must not receive the event.
    pub fn exclude(self, sessions: impl IntoIterator<Item = u64>) -> PublishOptions {
        self.option("exclude", ids(sessions))
    }

    /// `exclude_authid`: sessions authenticated as any of these authids do not
    /// receive the event.
    pub fn exclude_authid<S: Into<String>>(
        self,
        authids: impl IntoIterator<Item = S>,
    ) -> PublishOptions {
        self.option("exclude_authid", strings(authids))
    }

    /// `exclude_authrole`: sessions with any of these authroles do not receive the
    /// event.
    pub fn exclude_authrole<S: Into<String>>(
        self,
        authroles: impl IntoIterator<Item = S>,
    ) -> PublishOptions {
        self.option("exclude_authrole", strings(authroles))
    }

    /// `eligible`: only these sessions (IDs) may receive the event. All the
    /// `eligible*` and `exclude*` lists given apply together.
    pub fn eligible(self, sessions: impl IntoIterator<Item = u64>) -> PublishOptions {
        self.option("eligible", ids(sessions))
    }

    /// `eligible_authid`: only sessions with one of these authids may receive the
    /// event.
    pub fn eligible_authid<S: Into<String>>(
        self,
        authids: impl IntoIterator<Item = S>,
    ) -> PublishOptions {
        self.option("eligible_authid", strings(authids))
    }

    /// `eligible_authrole`: only sessions with one of these authroles may receive
    /// the event.
    pub fn eligible_authrole<S: Into<String>>(
        self,
        authroles: impl IntoIterator<Item = S>,
    ) -> PublishOptions {
        self.option("eligible_authrole", strings(authroles))
    }

    /// `disclose_me`: asks the broker to tell subscribers who published
    /// ([`Event::publisher`]). The broker may refuse with
    /// `wamp.error.option_disallowed.disclose_me` (reported only if acknowledged).
    pub fn disclose_me(self, disclose: bool) -> PublishOptions {
        self.option("disclose_me", disclose)
    }

    /// `retain`: the broker keeps this event as the topic's retained event and
    /// replays it to later subscribers that ask for it
    /// ([`SubscribeOptions::get_retained`]), best effort.
    pub fn retain(self, retain: bool) -> PublishOptions {
        self.option("retain", retain)
    }

    /// `ppt_scheme`: the payload is in payload passthru mode under this scheme
    /// (`mqtt`, `wamp`, or a custom scheme starting with `x_`). See
    /// [`Session::publish_passthru`](crate::Session::publish_passthru), which sets it.
    pub fn ppt_scheme(self, scheme: impl Into<String>) -> PublishOptions {
        self.option("ppt_scheme", scheme.into())
    }

    /// `ppt_serializer`: how the passthru payload is serialized (`native`, `json`,
    /// `msgpack`, `cbor`, `flatbuffers`, or custom).
    pub fn ppt_serializer(self, serializer: impl Into<String>) -> PublishOptions {
        self.option("ppt_serializer", serializer.into())
    }

    /// `ppt_cipher`: how the passthru payload is encrypted (`xsalsa20poly1305`,
    /// `aes256gcm`).
    pub fn ppt_cipher(self, cipher: impl Into<String>) -> PublishOptions {
        self.option("ppt_cipher", cipher.into())
    }

    /// `ppt_keyid`: the ID of the key the passthru payload is encrypted with.
    pub fn ppt_keyid(self, keyid: impl Into<String>) -> PublishOptions {
        self.option("ppt_keyid", keyid.into())
    }

    /// Any other option, e.g. `rkey` or an implementation-specific `_key`.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> PublishOptions {
        self.dict.insert(key.into(), value.into());
        self
    }

    /// Whether `acknowledge` is `true`.
    pub fn is_acknowledged(&self) -> bool {
        self.dict.get("acknowledge").and_then(Value::as_bool) == Some(true)
    }

    /// Whether the options ask for payload passthru mode (a non-empty `ppt_scheme`).
    pub fn is_passthru(&self) -> bool {
        self.dict
            .get("ppt_scheme")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }

    /// The options as they go on the wire.
    pub fn as_dict(&self) -> &Dict {
        &self.dict
    }

    /// The options dict.
    pub fn into_dict(self) -> Dict {
        self.dict
    }
}

impl From<Dict> for PublishOptions {
    fn from(dict: Dict) -> PublishOptions {
        PublishOptions { dict }
    }
}

impl From<PublishOptions> for Dict {
    fn from(options: PublishOptions) -> Dict {
        options.dict
    }
}

/// `SUBSCRIBE.Options`: a typed builder over the options dict.
///
/// Converts from and into a [`Dict`], so
/// [`Session::subscribe_with`](crate::Session::subscribe_with) accepts either.
///
/// ```
/// use wamp_client::{MatchPolicy, SubscribeOptions, Value};
///
/// let options = SubscribeOptions::new().match_policy(MatchPolicy::Wildcard).get_retained(true);
/// assert_eq!(options.as_dict().get("match"), Some(&Value::from("wildcard")));
/// assert_eq!(options.as_dict().get("get_retained"), Some(&Value::from(true)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscribeOptions {
    dict: Dict,
}

impl SubscribeOptions {
    /// No options: exact match, no retained event.
    pub fn new() -> SubscribeOptions {
        SubscribeOptions::default()
    }

    /// `match`: exact (the default), prefix (every topic starting with the
    /// subscribed string) or wildcard (empty URI components match any one
    /// component). Events of pattern subscriptions carry their topic
    /// ([`Event::topic`]).
    pub fn match_policy(self, policy: MatchPolicy) -> SubscribeOptions {
        self.option("match", policy.as_str())
    }

    /// `get_retained`: the broker sends the topic's retained event, if any (and if
    /// this session may receive it), right after SUBSCRIBED, marked
    /// [`Event::retained`].
    pub fn get_retained(self, get: bool) -> SubscribeOptions {
        self.option("get_retained", get)
    }

    /// Any other option, e.g. `nkey`.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> SubscribeOptions {
        self.dict.insert(key.into(), value.into());
        self
    }

    /// The options as they go on the wire.
    pub fn as_dict(&self) -> &Dict {
        &self.dict
    }

    /// The options dict.
    pub fn into_dict(self) -> Dict {
        self.dict
    }
}

impl From<Dict> for SubscribeOptions {
    fn from(dict: Dict) -> SubscribeOptions {
        SubscribeOptions { dict }
    }
}

impl From<SubscribeOptions> for Dict {
    fn from(options: SubscribeOptions) -> Dict {
        options.dict
    }
}

/// What the reader and a [`Subscription`] share besides the queue.
#[derive(Debug, Default)]
pub(crate) struct SubscriberStatus {
    /// Events dropped because the queue was full.
    missed: AtomicU64,
    /// The queue overflowed and has not been emptied since: drop without waiting.
    lagging: AtomicBool,
    /// Set when the router revokes the subscription: the reason, if it gave one.
    revoked: OnceLock<Option<String>>,
}

impl SubscriberStatus {
    pub(crate) fn revoke(&self, reason: Option<String>) {
        let _ = self.revoked.set(reason);
    }
}

/// The reader's end of one [`Subscription`]'s queue.
#[derive(Clone, Debug)]
pub(crate) struct EventSink {
    pub events: mpsc::Sender<Event>,
    pub status: Arc<SubscriberStatus>,
}

impl EventSink {
    /// A queue of `capacity` events: the sink and the receiving end.
    pub(crate) fn channel(capacity: usize) -> (EventSink, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(capacity.max(1));
        (
            EventSink {
                events,
                status: Arc::default(),
            },
            rx,
        )
    }

    /// The revocation reason recorded, if any.
    #[cfg(test)]
    pub(crate) fn status_reason(&self) -> Option<Option<String>> {
        self.status.revoked.get().cloned()
    }

    /// Queues `event` (see "Slow subscribers" on [`Subscription`]). `deadline` is the
    /// wait limit shared by all targets of one EVENT, fixed when the first of them
    /// turns out full.
    pub(crate) async fn deliver(
        &self,
        event: Event,
        wait: Duration,
        deadline: &mut Option<Instant>,
    ) {
        let status = &self.status;
        if status.lagging.load(Ordering::Relaxed)
            && self.events.capacity() == self.events.max_capacity()
        {
            // The application has caught up.
            status.lagging.store(false, Ordering::Relaxed);
        }
        let event = match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        if !status.lagging.load(Ordering::Relaxed) {
            let at = *deadline.get_or_insert_with(|| Instant::now() + wait);
            match tokio::time::timeout_at(at, self.events.send(event)).await {
                Ok(_) => return,
                Err(_) => {
                    status.lagging.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        "a subscription's event queue stays full: dropping its events until \
                         the application catches up"
                    );
                }
            }
        }
        status.missed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A subscription: a stream of [`Event`]s.
///
/// Events wait in a bounded queue; an application that does not keep up loses
/// events rather than holding up the session for good (see below). Ends (`None`)
/// when the session ends or the router revokes the subscription
/// ([`revocation_reason`](Self::revocation_reason)). Dropping it unsubscribes
/// (without waiting for the answer) unless other subscriptions of this session
/// share the router subscription.
///
/// # Slow subscribers
///
/// Each [`Subscription`] has its own queue of
/// [`ConnectOptions::queue_capacity`](crate::ConnectOptions::queue_capacity) events,
/// so memory stays bounded. When a queue is full, the session's reader waits at most
/// [`ConnectOptions::event_overflow_wait`](crate::ConnectOptions::event_overflow_wait)
/// for room (pushing back on the router meanwhile, which also holds up everything
/// else this session receives). If there is still no room, the event is dropped for
/// that subscription only and counted ([`Subscription::missed_events`]); from then on
/// its events are dropped without waiting whenever its queue is full, until the
/// application has emptied it. So a subscription nobody reads holds up the session
/// at most once per overflow, never for good.
pub struct Subscription {
    id: u64,
    local: u64,
    topic: String,
    events: mpsc::Receiver<Event>,
    status: Arc<SubscriberStatus>,
    shared: Arc<Shared>,
    active: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        local: u64,
        topic: String,
        events: mpsc::Receiver<Event>,
        status: Arc<SubscriberStatus>,
        shared: Arc<Shared>,
    ) -> Subscription {
        Subscription {
            id,
            local,
            topic,
            events,
            status,
            shared,
            active: true,
        }
    }

    /// The router's subscription ID (shared by every subscription of this session
    /// to the same topic with the same match policy).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The topic (or pattern) subscribed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next event; `None` once the subscription or session has ended.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// How many events were dropped because this subscription's queue was full.
    pub fn missed_events(&self) -> u64 {
        self.status.missed.load(Ordering::Relaxed)
    }

    /// Whether the router revoked the subscription (`[UNSUBSCRIBED, 0, Details]`).
    /// Events queued before the revocation are still returned by
    /// [`next`](Self::next), then it returns `None`.
    pub fn is_revoked(&self) -> bool {
        self.status.revoked.get().is_some()
    }

    /// Why the router revoked the subscription (`Details.reason`), if it did and
    /// said why.
    pub fn revocation_reason(&self) -> Option<&str> {
        self.status.revoked.get().and_then(Option::as_deref)
    }

    /// Unsubscribes. If other subscriptions of this session share the router
    /// subscription, only this one ends and nothing is sent; likewise after a
    /// revocation. Otherwise sends UNSUBSCRIBE and waits for UNSUBSCRIBED (an ERROR
    /// is [`Error::Wamp`]).
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        self.active = false;
        self.events.close();
        let shared = self.shared.clone();
        let last = shared.state.lock().remove_subscriber(self.id, self.local);
        if !last {
            return if shared.is_established() {
                Ok(())
            } else {
                Err(Error::Closed)
            };
        }
        let (tx, rx) = oneshot::channel();
        match shared.unsubscribe(self.id, Some(tx)).await? {
            Some(request) => shared.wait(RequestKind::Unsubscribe, request, rx).await,
            // Subscribed again meanwhile: the router subscription stays.
            None => Ok(()),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let last = self
            .shared
            .state
            .lock()
            .remove_subscriber(self.id, self.local);
        if last {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let shared = self.shared.clone();
                let subscription = self.id;
                runtime.spawn(async move {
                    let _ = shared.unsubscribe(subscription, None).await;
                });
            }
        }
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().events.poll_recv(cx)
    }
}
