//! The broker's tables: subscriptions (exact, prefix and wildcard), who is
//! subscribed, retained events and event history.
//!
//! One subscription per (topic or pattern, match policy), shared by all its
//! subscribers. An EVENT is built and encoded once per (subscription, serializer)
//! and the same bytes go to every subscriber of that subscription. A publication
//! without options pays for one exact-topic lookup plus an emptiness check of each
//! pattern table; black/whitelists, disclosure, retention and history cost only
//! when asked for (or configured).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use wamp_proto::message::Id;
use wamp_proto::uri::{wildcard_matches, MatchPolicy};
use wamp_proto::{dict, random_id, Dict, Message, Payload, Value, MAX_ID};

use crate::meta::{self, MetaNote};
use crate::session::{SendError, SessionHandle};
use crate::IdMap;

/// The default bound on retained topics per realm.
pub const DEFAULT_MAX_RETAINED_TOPICS: usize = 10_000;

/// Retained events kept per topic: the latest one for everyone plus later ones with
/// black/whitelists (each reaches fewer subscribers).
const RETAINED_PER_TOPIC: usize = 8;

/// PUBLISH options copied untouched into EVENT.Details: payload passthru mode
/// (spec) and Autobahn's end-to-end encryption keys.
pub const PASSTHRU_KEYS: [&str; 7] = [
    "ppt_scheme",
    "ppt_serializer",
    "ppt_cipher",
    "ppt_keyid",
    "enc_algo",
    "enc_key",
    "enc_serializer",
];

/// One subscription: a topic or pattern, its match policy and its subscribers.
pub struct Subscription {
    /// The topic URI or pattern.
    pub topic: String,
    /// How `topic` is matched.
    pub policy: MatchPolicy,
    /// Subscribed sessions, each once.
    pub subscribers: Vec<Arc<SessionHandle>>,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

/// Subscriber black- and whitelists of one publication (`exclude*`, `eligible*`).
/// A subscriber receives the event when it is in every given `eligible*` list and in
/// no `exclude*` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `exclude`: session ids.
    pub exclude: Vec<Id>,
    /// `exclude_authid`.
    pub exclude_authid: Vec<String>,
    /// `exclude_authrole`.
    pub exclude_authrole: Vec<String>,
    /// `eligible`: session ids.
    pub eligible: Option<Vec<Id>>,
    /// `eligible_authid`.
    pub eligible_authid: Option<Vec<String>>,
    /// `eligible_authrole`.
    pub eligible_authrole: Option<Vec<String>>,
}

impl Filter {
    /// Whether a session with this identity may receive the event.
    pub fn allows(&self, session: Id, authid: &str, authrole: &str) -> bool {
        let has = |list: &[String], v: &str| list.iter().any(|x| x == v);
        self.eligible.as_ref().is_none_or(|l| l.contains(&session))
            && self.eligible_authid.as_ref().is_none_or(|l| has(l, authid))
            && self
                .eligible_authrole
                .as_ref()
                .is_none_or(|l| has(l, authrole))
            && !self.exclude.contains(&session)
            && !has(&self.exclude_authid, authid)
            && !has(&self.exclude_authrole, authrole)
    }

    /// Whether it names session ids (such events are not kept in history: a
    /// later reader can't be matched against the sessions of that time).
    pub fn has_session_lists(&self) -> bool {
        !self.exclude.is_empty() || self.eligible.is_some()
    }

    fn allows_session(&self, s: &SessionHandle) -> bool {
        self.allows(s.id, &s.authid, &s.authrole)
    }
}

/// The PUBLISH options the broker acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishOptions {
    /// `acknowledge`: answer with PUBLISHED (or ERROR).
    pub acknowledge: bool,
    /// `exclude_me` (default true): the publisher does not get its own event.
    pub exclude_me: bool,
    /// `disclose_me`: name the publisher in EVENT.Details.
    pub disclose_me: bool,
    /// `retain`: keep as the topic's retained event.
    pub retain: bool,
    /// Black/whitelists, when any was given.
    pub filter: Option<Box<Filter>>,
    /// Payload passthru and E2EE keys to copy into EVENT.Details.
    pub passthru: Dict,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            acknowledge: false,
            exclude_me: true,
            disclose_me: false,
            retain: false,
            filter: None,
            passthru: Dict::new(),
        }
    }
}

impl PublishOptions {
    /// Reads PUBLISH.Options. Values of the wrong type give the text of an
    /// `invalid_argument` error (the message parser already refuses them on the
    /// wire; this matters for options that arrive inside a call, like testaments').
    pub fn parse(options: &Dict) -> Result<Self, String> {
        let mut parsed = PublishOptions::default();
        if options.is_empty() {
            return Ok(parsed);
        }
        let flag = |key: &str, default: bool| match options.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("option '{key}' must be a bool")),
        };
        parsed.acknowledge = flag("acknowledge", false)?;
        parsed.exclude_me = flag("exclude_me", true)?;
        parsed.disclose_me = flag("disclose_me", false)?;
        parsed.retain = flag("retain", false)?;
        let ids = |key: &str| -> Result<Option<Vec<Id>>, String> {
            let Some(v) = options.get(key) else {
                return Ok(None);
            };
            let list = v
                .as_list()
                .ok_or_else(|| format!("option '{key}' must be a list of session ids"))?;
            list.iter()
                .map(|v| v.as_u64().filter(|&id| id <= MAX_ID))
                .collect::<Option<Vec<Id>>>()
                .map(Some)
                .ok_or_else(|| format!("option '{key}' must be a list of session ids"))
        };
        let strings = |key: &str| -> Result<Option<Vec<String>>, String> {
            let Some(v) = options.get(key) else {
                return Ok(None);
            };
            let list = v
                .as_list()
                .ok_or_else(|| format!("option '{key}' must be a list of strings"))?;
            list.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .map(Some)
                .ok_or_else(|| format!("option '{key}' must be a list of strings"))
        };
        let filter = Filter {
            exclude: ids("exclude")?.unwrap_or_default(),
            exclude_authid: strings("exclude_authid")?.unwrap_or_default(),
            exclude_authrole: strings("exclude_authrole")?.unwrap_or_default(),
            eligible: ids("eligible")?,
            eligible_authid: strings("eligible_authid")?,
            eligible_authrole: strings("eligible_authrole")?,
        };
        if filter != Filter::default() {
            parsed.filter = Some(Box::new(filter));
        }
        for key in PASSTHRU_KEYS {
            if let Some(v) = options.get(key) {
                if v.as_str().is_none() {
                    return Err(format!("option '{key}' must be a string"));
                }
                parsed.passthru.insert(key.into(), v.clone());
            }
        }
        Ok(parsed)
    }

    /// Whether payload passthru mode is used (a non-empty `ppt_scheme`).
    pub fn is_passthru(&self) -> bool {
        self.passthru
            .get("ppt_scheme")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }
}

/// A history to keep: events on topics matching `topic` under `policy`, the last
/// `limit` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRule {
    /// Topic or pattern.
    pub topic: String,
    /// How `topic` matches.
    pub policy: MatchPolicy,
    /// Most events kept.
    pub limit: usize,
}

/// An event as stored for retention and history.
struct StoredEvent {
    /// Milliseconds since the Unix epoch.
    time_ms: u64,
    publication: Id,
    topic: String,
    /// EVENT.Details without `topic` (publisher disclosure, passthru keys).
    details: Dict,
    payload: Payload,
    filter: Option<Box<Filter>>,
}

#[derive(Default)]
struct Retained {
    topics: HashMap<String, Vec<Arc<StoredEvent>>>,
    /// Set once the bound was hit (to warn only once).
    full_warned: bool,
}

struct History {
    rule: HistoryRule,
    events: VecDeque<Arc<StoredEvent>>,
}

/// Subscriptions of one realm.
pub struct Broker {
    exact: HashMap<String, Id>,
    prefix: HashMap<String, Id>,
    wildcard: HashMap<String, Id>,
    subscriptions: IdMap<Id, Subscription>,
    max_retained_topics: usize,
    retained: Mutex<Retained>,
    /// Configured histories; the Mutex is only taken when there is one.
    history: Vec<Mutex<History>>,
    /// Subscriptions that may receive meta events (shared with the realm and its
    /// dealer, which record meta events only while it is non-zero).
    pub(crate) meta_watch: Arc<AtomicUsize>,
    /// Subscription meta events waiting to be published ([`Broker::flush_meta`]).
    notes: Vec<MetaNote>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(DEFAULT_MAX_RETAINED_TOPICS, Vec::new())
    }
}

/// Counters from one publication's fan-out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// EVENTs queued.
    pub delivered: usize,
    /// Receivers skipped: message too large for them, not encodable, or their queue refused it.
    pub dropped: usize,
}

/// Why `wamp.subscription.get_events` can't answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// No such subscription.
    NoSuchSubscription,
    /// The caller is not a subscriber of it.
    NotAuthorized,
    /// No history is kept for it.
    Unavailable,
}

/// Filters of a `wamp.subscription.get_events` query.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Most events returned (after ordering).
    pub limit: Option<usize>,
    /// Newest first (default: oldest first).
    pub reverse: bool,
    /// Only events on this concrete topic.
    pub topic: Option<String>,
    /// Events after this publication (exclusive).
    pub after_publication: Option<Id>,
    /// Events from this publication (inclusive).
    pub from_publication: Option<Id>,
    /// Events before this publication (exclusive).
    pub before_publication: Option<Id>,
    /// Events up to this publication (inclusive).
    pub until_publication: Option<Id>,
    /// Events at or after this time (ms since the Unix epoch).
    pub from_time_ms: Option<u64>,
    /// Events after this time.
    pub after_time_ms: Option<u64>,
    /// Events before this time.
    pub before_time_ms: Option<u64>,
    /// Events at or before this time.
    pub until_time_ms: Option<u64>,
}

fn pattern_match(policy: MatchPolicy, pattern: &str, topic: &str) -> bool {
    match policy {
        MatchPolicy::Exact => pattern == topic,
        MatchPolicy::Prefix => topic.starts_with(pattern),
        MatchPolicy::Wildcard => wildcard_matches(pattern, topic),
    }
}

impl Broker {
    /// A broker keeping at most `max_retained_topics` retained events and the
    /// given histories.
    pub fn new(max_retained_topics: usize, history: Vec<HistoryRule>) -> Self {
        Broker {
            exact: HashMap::new(),
            prefix: HashMap::new(),
            wildcard: HashMap::new(),
            subscriptions: IdMap::default(),
            max_retained_topics,
            retained: Mutex::new(Retained::default()),
            history: history
                .into_iter()
                .map(|rule| {
                    Mutex::new(History {
                        rule,
                        events: VecDeque::new(),
                    })
                })
                .collect(),
            meta_watch: Arc::new(AtomicUsize::new(0)),
            notes: Vec::new(),
        }
    }

    /// Whether anyone may be listening to meta events (a cheap check).
    fn watched(&self) -> bool {
        self.meta_watch.load(Ordering::Relaxed) > 0
    }

    /// Records a subscription meta event, when someone may listen and the topic is
    /// not the router's own (`wamp.*`).
    fn note(&mut self, topic: &str, note: impl FnOnce() -> MetaNote) {
        if self.watched() && !topic.starts_with("wamp.") {
            self.notes.push(note());
        }
    }

    /// Publishes the subscription meta events recorded so far, as `publisher` (the
    /// realm's router session). Called by whoever changed the tables, still
    /// holding the write lock, so that they come out in order.
    pub(crate) fn flush_meta(&mut self, publisher: &SessionHandle) {
        if self.notes.is_empty() {
            return;
        }
        for note in std::mem::take(&mut self.notes) {
            let (topic, session, id) = note.parts("wamp.subscription");
            let second = match note {
                MetaNote::Create(..) => match self.subscriptions.get(&id) {
                    Some(sub) => meta::subscription_details(id, sub),
                    None => continue,
                },
                _ => Value::from(id),
            };
            let payload = Payload::from_args(vec![Value::from(session), second]);
            self.publish(
                &topic,
                random_id(),
                &payload,
                publisher,
                &PublishOptions::default(),
                false,
            );
        }
    }

    /// Ids of the subscriptions of one policy.
    pub fn ids(&self, policy: MatchPolicy) -> Vec<Id> {
        match policy {
            MatchPolicy::Exact => self.exact.values().copied().collect(),
            MatchPolicy::Prefix => self.prefix.values().copied().collect(),
            MatchPolicy::Wildcard => self.wildcard.values().copied().collect(),
        }
    }

    /// The subscription on (`topic`, `policy`), if any.
    pub fn find(&self, topic: &str, policy: MatchPolicy) -> Option<Id> {
        match policy {
            MatchPolicy::Exact => self.exact.get(topic).copied(),
            MatchPolicy::Prefix => self.prefix.get(topic).copied(),
            MatchPolicy::Wildcard => self.wildcard.get(topic).copied(),
        }
    }

    /// Every subscription a publication to `topic` would reach.
    pub fn matching(&self, topic: &str) -> Vec<Id> {
        let mut ids = Vec::new();
        self.for_each_match(topic, |id, _, _| ids.push(id));
        ids
    }

    fn table(&mut self, policy: MatchPolicy) -> &mut HashMap<String, Id> {
        match policy {
            MatchPolicy::Exact => &mut self.exact,
            MatchPolicy::Prefix => &mut self.prefix,
            MatchPolicy::Wildcard => &mut self.wildcard,
        }
    }

    /// Adds `session` to the subscription on (`topic`, `policy`), creating it if
    /// needed. Returns the subscription id (the existing one if already subscribed).
    pub fn subscribe(
        &mut self,
        topic: &str,
        policy: MatchPolicy,
        session: &Arc<SessionHandle>,
    ) -> Id {
        if let Some(&id) = self.table(policy).get(topic) {
            if let Some(sub) = self.subscriptions.get_mut(&id) {
                if !sub.subscribers.iter().any(|s| s.id == session.id) {
                    sub.subscribers.push(session.clone());
                    self.note(topic, || MetaNote::Add(session.id, id));
                }
                return id;
            }
        }
        let id = loop {
            let candidate = random_id();
            if !self.subscriptions.contains_key(&candidate) {
                break candidate;
            }
        };
        self.table(policy).insert(topic.to_owned(), id);
        self.subscriptions.insert(
            id,
            Subscription {
                topic: topic.to_owned(),
                policy,
                subscribers: vec![session.clone()],
                created_ms: now_ms(),
            },
        );
        if meta::watches(topic, policy) {
            self.meta_watch.fetch_add(1, Ordering::Relaxed);
        }
        self.note(topic, || MetaNote::Create(session.id, id));
        self.note(topic, || MetaNote::Add(session.id, id));
        id
    }

    /// Removes `session` from a subscription; deletes the subscription when it was
    /// the last subscriber. Returns whether the session was subscribed.
    pub fn unsubscribe(&mut self, subscription: Id, session: Id) -> bool {
        let watched = self.watched();
        let Some(sub) = self.subscriptions.get_mut(&subscription) else {
            return false;
        };
        let before = sub.subscribers.len();
        sub.subscribers.retain(|s| s.id != session);
        let removed = sub.subscribers.len() != before;
        let empty = sub.subscribers.is_empty();
        if removed && watched {
            let topic = sub.topic.clone();
            self.note(&topic, || MetaNote::Remove(session, subscription));
        }
        if empty {
            self.delete(subscription, session);
        }
        removed
    }

    /// Deletes a subscription; `session` is the one whose leaving emptied it.
    fn delete(&mut self, subscription: Id, session: Id) {
        if let Some(sub) = self.subscriptions.remove(&subscription) {
            self.table(sub.policy).remove(&sub.topic);
            if meta::watches(&sub.topic, sub.policy) {
                self.meta_watch.fetch_sub(1, Ordering::Relaxed);
            }
            self.note(&sub.topic, || MetaNote::Delete(session, subscription));
        }
    }

    /// The router takes subscription `subscription` away from `subscriber` (from
    /// all its subscribers when `None`), e.g. for the subscription meta API's
    /// `remove_subscriber`. Subscribers that announced `subscription_revocation`
    /// get `UNSUBSCRIBED [0, {subscription, reason}]`. Returns how many lost it.
    pub fn revoke(&mut self, subscription: Id, subscriber: Option<Id>, reason: &str) -> usize {
        let watched = self.watched();
        let Some(sub) = self.subscriptions.get_mut(&subscription) else {
            return 0;
        };
        let mut removed = Vec::new();
        sub.subscribers.retain(|s| {
            let gone = subscriber.is_none_or(|id| s.id == id);
            if gone {
                removed.push(s.clone());
            }
            !gone
        });
        let empty = sub.subscribers.is_empty();
        if watched {
            let topic = sub.topic.clone();
            for s in &removed {
                self.note(&topic, || MetaNote::Remove(s.id, subscription));
            }
        }
        if empty {
            let last = removed.last().map_or(0, |s| s.id);
            self.delete(subscription, last);
        }
        let notice = Message::Unsubscribed {
            request: 0,
            details: Some(dict! {
                "subscription" => subscription,
                "reason" => reason,
            }),
        };
        for session in &removed {
            if session.features.subscription_revocation {
                let _ = session.send(&notice);
            }
        }
        removed.len()
    }

    /// The subscription on exactly this topic (policy `exact`), if any.
    pub fn lookup(&self, topic: &str) -> Option<(Id, &Subscription)> {
        let id = *self.exact.get(topic)?;
        self.subscriptions.get(&id).map(|s| (id, s))
    }

    /// A subscription by id.
    pub fn subscription(&self, id: Id) -> Option<&Subscription> {
        self.subscriptions.get(&id)
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    /// Number of topics with a retained event.
    pub fn retained_len(&self) -> usize {
        self.retained.lock().topics.len()
    }

    /// Calls `f` for every subscription matching `topic`: the exact one, then the
    /// prefix ones, then the wildcard ones. The bool says whether it is a pattern.
    fn for_each_match(&self, topic: &str, mut f: impl FnMut(Id, &Subscription, bool)) {
        let mut visit = |id: Option<&Id>, pattern: bool| {
            if let Some(sub) = id.and_then(|id| self.subscriptions.get(id).map(|s| (*id, s))) {
                f(sub.0, sub.1, pattern);
            }
        };
        visit(self.exact.get(topic), false);
        if !self.prefix.is_empty() {
            // Every string prefix of the topic, looked up: cost grows with the
            // topic's length, not with the number of prefix subscriptions.
            for end in 1..=topic.len() {
                if topic.is_char_boundary(end) {
                    visit(self.prefix.get(&topic[..end]), true);
                }
            }
        }
        if !self.wildcard.is_empty() {
            for (pattern, id) in &self.wildcard {
                if wildcard_matches(pattern, topic) {
                    visit(Some(id), true);
                }
            }
        }
    }

    /// Delivers a publication by `publisher` to every matching subscription.
    /// `disclose` names the publisher in EVENT.Details (asked for, or the realm's
    /// configuration). Keeps it as retained event and in the configured histories
    /// when that applies.
    pub fn publish(
        &self,
        topic: &str,
        publication: Id,
        payload: &Payload,
        publisher: &SessionHandle,
        options: &PublishOptions,
        disclose: bool,
    ) -> Delivery {
        let mut details = Dict::new();
        if disclose {
            details.insert("publisher".into(), Value::from(publisher.id));
            details.insert(
                "publisher_authid".into(),
                Value::from(publisher.authid.as_str()),
            );
            details.insert(
                "publisher_authrole".into(),
                Value::from(publisher.authrole.as_str()),
            );
        }
        for (k, v) in &options.passthru {
            details.insert(k.clone(), v.clone());
        }
        let exclude = options.exclude_me.then_some(publisher.id);
        let filter = options.filter.as_deref();
        let mut delivery = Delivery::default();
        self.for_each_match(topic, |id, sub, pattern| {
            let mut details = details.clone();
            if pattern {
                details.insert("topic".into(), Value::from(topic));
            }
            let event = Message::Event {
                subscription: id,
                publication,
                details,
                payload: payload.clone(),
            };
            fan_out(&event, &sub.subscribers, exclude, filter, &mut delivery);
        });
        let keep_history = !self.history.is_empty()
            && !options
                .filter
                .as_ref()
                .is_some_and(|f| f.has_session_lists());
        if options.retain || keep_history {
            let stored = Arc::new(StoredEvent {
                time_ms: now_ms(),
                publication,
                topic: topic.to_owned(),
                details,
                payload: payload.clone(),
                filter: options.filter.clone(),
            });
            if options.retain {
                self.retain(topic, stored.clone());
            }
            if keep_history {
                for history in &self.history {
                    let mut history = history.lock();
                    if pattern_match(history.rule.policy, &history.rule.topic, topic) {
                        if history.events.len() >= history.rule.limit {
                            history.events.pop_front();
                        }
                        if history.rule.limit > 0 {
                            history.events.push_back(stored.clone());
                        }
                    }
                }
            }
        }
        delivery
    }

    fn retain(&self, topic: &str, event: Arc<StoredEvent>) {
        let mut retained = self.retained.lock();
        let topics_len = retained.topics.len();
        match retained.topics.get_mut(topic) {
            Some(list) => {
                if event.filter.is_none() {
                    list.clear();
                } else if list.len() >= RETAINED_PER_TOPIC {
                    // Keep the oldest event if it is for everyone: it is the
                    // fallback for subscribers that the newer ones exclude.
                    let drop_at = usize::from(list[0].filter.is_none() && list.len() > 1);
                    list.remove(drop_at);
                }
                list.push(event);
            }
            None if topics_len >= self.max_retained_topics => {
                if !retained.full_warned {
                    retained.full_warned = true;
                    tracing::warn!(
                        limit = self.max_retained_topics,
                        "retained-event table is full; further topics are not retained"
                    );
                }
            }
            None => {
                retained.topics.insert(topic.to_owned(), vec![event]);
            }
        }
    }

    /// Sends `session` the retained events matching subscription `subscription`
    /// (the latest one per topic that it may receive), with `Details.retained`.
    /// Returns how many were sent.
    pub fn send_retained(&self, subscription: Id, session: &SessionHandle) -> usize {
        let Some(sub) = self.subscriptions.get(&subscription) else {
            return 0;
        };
        let pattern = sub.policy != MatchPolicy::Exact;
        let retained = self.retained.lock();
        let mut chosen: Vec<(String, Arc<StoredEvent>)> = Vec::new();
        let mut pick = |topic: &str, list: &[Arc<StoredEvent>]| {
            let event = list
                .iter()
                .rev()
                .find(|e| e.filter.as_ref().is_none_or(|f| f.allows_session(session)));
            if let Some(event) = event {
                chosen.push((topic.to_owned(), event.clone()));
            }
        };
        if pattern {
            for (topic, list) in &retained.topics {
                if pattern_match(sub.policy, &sub.topic, topic) {
                    pick(topic, list);
                }
            }
            chosen.sort_by_key(|(_, e)| e.time_ms);
        } else if let Some(list) = retained.topics.get(&sub.topic) {
            pick(&sub.topic, list);
        }
        for (topic, event) in &chosen {
            let mut details = event.details.clone();
            if pattern {
                details.insert("topic".into(), Value::from(topic.as_str()));
            }
            details.insert("retained".into(), Value::Bool(true));
            let message = Message::Event {
                subscription,
                publication: event.publication,
                details,
                payload: event.payload.clone(),
            };
            let _ = session.send(&message);
        }
        chosen.len()
    }

    /// The events kept for subscription `subscription` (`wamp.subscription.get_events`),
    /// as the spec's result items `{timestamp, subscription, publication, details,
    /// args, kwargs}`. Only its subscribers may ask; events they were not allowed
    /// to receive (authid/authrole lists) are left out.
    pub fn history(
        &self,
        subscription: Id,
        caller: &SessionHandle,
        query: &HistoryQuery,
    ) -> Result<Vec<Value>, HistoryError> {
        let sub = self
            .subscriptions
            .get(&subscription)
            .ok_or(HistoryError::NoSuchSubscription)?;
        if !sub.subscribers.iter().any(|s| s.id == caller.id) {
            return Err(HistoryError::NotAuthorized);
        }
        let history = self
            .history
            .iter()
            .find(|h| {
                let h = h.lock();
                h.rule.topic == sub.topic && h.rule.policy == sub.policy
            })
            .ok_or(HistoryError::Unavailable)?
            .lock();
        let events = &history.events;
        let position =
            |id: Option<Id>| id.and_then(|id| events.iter().position(|e| e.publication == id));
        let mut start = 0;
        let mut end = events.len();
        if let Some(i) = position(query.after_publication) {
            start = start.max(i + 1);
        }
        if let Some(i) = position(query.from_publication) {
            start = start.max(i);
        }
        if let Some(i) = position(query.before_publication) {
            end = end.min(i);
        }
        if let Some(i) = position(query.until_publication) {
            end = end.min(i + 1);
        }
        let pattern = sub.policy != MatchPolicy::Exact;
        let mut selected: Vec<&Arc<StoredEvent>> = events
            .iter()
            .take(end)
            .skip(start)
            .filter(|e| query.topic.as_deref().is_none_or(|t| t == e.topic))
            .filter(|e| {
                query.from_time_ms.is_none_or(|t| e.time_ms >= t)
                    && query.after_time_ms.is_none_or(|t| e.time_ms > t)
                    && query.before_time_ms.is_none_or(|t| e.time_ms < t)
                    && query.until_time_ms.is_none_or(|t| e.time_ms <= t)
            })
            .filter(|e| e.filter.as_ref().is_none_or(|f| f.allows_session(caller)))
            .collect();
        if query.reverse {
            selected.reverse();
        }
        if let Some(limit) = query.limit {
            selected.truncate(limit);
        }
        Ok(selected
            .into_iter()
            .map(|e| {
                let mut details = e.details.clone();
                if pattern {
                    details.insert("topic".into(), Value::from(e.topic.as_str()));
                }
                let elements = e.payload.elements().unwrap_or_default();
                Value::Dict(dict! {
                    "timestamp" => rfc3339(e.time_ms),
                    "subscription" => subscription,
                    "publication" => e.publication,
                    "topic" => e.topic.as_str(),
                    "details" => details,
                    "args" => elements.args.unwrap_or_else(|| Value::List(Vec::new())),
                    "kwargs" => Value::Dict(elements.kwargs.unwrap_or_default()),
                })
            })
            .collect())
    }
}

/// Sends one EVENT to the subscribers of a subscription, encoded once per
/// serializer.
fn fan_out(
    event: &Message,
    subscribers: &[Arc<SessionHandle>],
    exclude: Option<Id>,
    filter: Option<&Filter>,
    delivery: &mut Delivery,
) {
    let mut encoded: [Option<Option<Bytes>>; 3] = Default::default();
    for receiver in subscribers {
        if Some(receiver.id) == exclude || filter.is_some_and(|f| !f.allows_session(receiver)) {
            continue;
        }
        let slot = &mut encoded[receiver.serializer.index()];
        let bytes = slot.get_or_insert_with(|| match wamp_proto::encode(event, receiver.serializer) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!(error = %e, serializer = %receiver.serializer, "EVENT not encodable");
                None
            }
        });
        let outcome = match bytes {
            Some(b) => receiver.send_event(b.clone()),
            None => Err(SendError::Encode("payload".into())),
        };
        match outcome {
            Ok(()) => delivery.delivered += 1,
            Err(e) => {
                tracing::debug!(session = receiver.id, error = %e, "EVENT dropped");
                delivery.dropped += 1;
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) for milliseconds since the Unix epoch.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn filter_combinations() {
        let f = Filter {
            eligible: Some(vec![1, 2, 3]),
            exclude: vec![1],
            ..Filter::default()
        };
        assert!(!f.allows(1, "a", "r"));
        assert!(f.allows(2, "a", "r"));
        assert!(!f.allows(4, "a", "r"));
        let f = Filter {
            eligible_authid: Some(vec!["a".into()]),
            exclude_authrole: vec!["bad".into()],
            ..Filter::default()
        };
        assert!(f.allows(9, "a", "r"));
        assert!(!f.allows(9, "a", "bad"));
        assert!(!f.allows(9, "b", "r"));
    }

    #[test]
    fn publish_options_types() {
        assert!(PublishOptions::parse(&dict! {"exclude" => "x"}).is_err());
        assert!(
            PublishOptions::parse(&dict! {"eligible_authid" => vec![Value::from(1u64)]}).is_err()
        );
        let o = PublishOptions::parse(&dict! {"exclude_me" => false, "ppt_scheme" => "x_a"})
            .expect("valid");
        assert!(!o.exclude_me && o.is_passthru() && o.filter.is_none());
    }
}
