//! The broker's tables: topics, their subscriptions, and who is subscribed.
//!
//! One subscription per topic, shared by all its subscribers, so an EVENT encodes
//! once per serializer and the same bytes go to every subscriber.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use wamp_proto::message::Id;
use wamp_proto::{random_id, Dict, Message, Payload};

use crate::session::{SendError, SessionHandle};
use crate::IdMap;

/// One subscription: a topic and its subscribers.
pub struct Subscription {
    /// The topic URI.
    pub topic: String,
    /// Subscribed sessions, each once.
    pub subscribers: Vec<Arc<SessionHandle>>,
}

/// Subscriptions of one realm.
#[derive(Default)]
pub struct Broker {
    by_topic: HashMap<String, Id>,
    subscriptions: IdMap<Id, Subscription>,
}

/// Counters from one publication's fan-out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// EVENTs queued.
    pub delivered: usize,
    /// Receivers skipped: message too large for them, not encodable, or their queue refused it.
    pub dropped: usize,
}

impl Broker {
    /// Adds `session` to the subscription on `topic`, creating it if needed.
    /// Returns the subscription id (the existing one if already subscribed).
    pub fn subscribe(&mut self, topic: &str, session: &Arc<SessionHandle>) -> Id {
        if let Some(&id) = self.by_topic.get(topic) {
            if let Some(sub) = self.subscriptions.get_mut(&id) {
                if !sub.subscribers.iter().any(|s| s.id == session.id) {
                    sub.subscribers.push(session.clone());
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
        self.by_topic.insert(topic.to_owned(), id);
        self.subscriptions.insert(
            id,
            Subscription {
                topic: topic.to_owned(),
                subscribers: vec![session.clone()],
            },
        );
        id
    }

    /// Removes `session` from a subscription; deletes the subscription when it was
    /// the last subscriber. Returns whether the session was subscribed.
    pub fn unsubscribe(&mut self, subscription: Id, session: Id) -> bool {
        let Some(sub) = self.subscriptions.get_mut(&subscription) else {
            return false;
        };
        let before = sub.subscribers.len();
        sub.subscribers.retain(|s| s.id != session);
        let removed = sub.subscribers.len() != before;
        if sub.subscribers.is_empty() {
            if let Some(sub) = self.subscriptions.remove(&subscription) {
                self.by_topic.remove(&sub.topic);
            }
        }
        removed
    }

    /// The subscription on exactly this topic, if any.
    pub fn lookup(&self, topic: &str) -> Option<(Id, &Subscription)> {
        let id = *self.by_topic.get(topic)?;
        self.subscriptions.get(&id).map(|s| (id, s))
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    /// Delivers a publication to the subscribers of `topic`, skipping `exclude`.
    /// Each EVENT is encoded once per serializer and shared by all receivers.
    pub fn publish(
        &self,
        topic: &str,
        publication: Id,
        payload: &Payload,
        exclude: Option<Id>,
    ) -> Delivery {
        let mut delivery = Delivery::default();
        let Some((subscription, sub)) = self.lookup(topic) else {
            return delivery;
        };
        let event = Message::Event {
            subscription,
            publication,
            details: Dict::new(),
            payload: payload.clone(),
        };
        let mut encoded: [Option<Option<Bytes>>; 3] = Default::default();
        for receiver in &sub.subscribers {
            if Some(receiver.id) == exclude {
                continue;
            }
            let slot = &mut encoded[receiver.serializer.index()];
            let bytes = slot.get_or_insert_with(|| match wamp_proto::encode(&event, receiver.serializer) {
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
        delivery
    }
}
