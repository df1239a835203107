//! What the rest of the router knows about an established session: its identity and
//! how to reach it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use wamp_proto::message::Id;
use wamp_proto::{encode, Dict, Message, Serializer, Value, MAX_ID};

use crate::outbox::{Outbox, PushError};

/// A handle on an established session, shared by the broker and dealer tables.
pub struct SessionHandle {
    /// The session id (global scope, random).
    pub id: Id,
    /// The serializer the session's transport uses.
    pub serializer: Serializer,
    /// Largest message the session's transport accepts.
    pub max_message_size: usize,
    /// Authenticated identity.
    pub authid: String,
    /// Role the session acts in.
    pub authrole: String,
    /// How the session authenticated.
    pub authmethod: String,
    /// Who authenticated it: `static` or `dynamic`.
    pub authprovider: &'static str,
    /// WELCOME.Details.authextra (from a dynamic authenticator).
    pub authextra: Dict,
    /// Advanced features the session announced in HELLO.
    pub features: PeerFeatures,
    /// What the transport layer knows about the session's connection.
    pub transport: crate::TransportInfo,
    outbox: Arc<Outbox>,
    /// Last INVOCATION request id sent to this session (router → callee direction).
    last_invocation: AtomicU64,
    /// Calls this session made that wait for a result (changed under the dealer lock).
    pub(crate) calls_in_flight: AtomicUsize,
    /// Invocations sent to this session that it has not answered (ditto).
    pub(crate) invocations_in_flight: AtomicUsize,
    /// Events to publish when the session goes away (`wamp.session.add_testament`).
    pub(crate) testaments: Mutex<Testaments>,
}

/// Most testaments one session may hold (both scopes together).
pub const MAX_TESTAMENTS: usize = 1000;

/// When a testament is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestamentScope {
    /// When the session is destroyed (the default).
    Destroyed,
    /// When the session detaches from its transport. Without session resumption
    /// this happens right before it is destroyed.
    Detached,
}

impl TestamentScope {
    /// Parses `destroyed` or `detached`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "destroyed" => Some(Self::Destroyed),
            "detached" => Some(Self::Detached),
            _ => None,
        }
    }
}

/// One testament: a publication made for the session when it goes away.
#[derive(Clone, Debug)]
pub struct Testament {
    /// The topic.
    pub topic: String,
    /// `Arguments` and `ArgumentsKw`.
    pub payload: wamp_proto::Payload,
    /// The publish options to apply.
    pub options: crate::broker::PublishOptions,
}

/// A session's testaments, per scope, in the order they were added.
#[derive(Debug, Default)]
pub struct Testaments {
    /// Published when the session detaches.
    pub detached: Vec<Testament>,
    /// Published when the session is destroyed.
    pub destroyed: Vec<Testament>,
}

impl Testaments {
    /// The bucket of one scope.
    pub fn scope_mut(&mut self, scope: TestamentScope) -> &mut Vec<Testament> {
        match scope {
            TestamentScope::Destroyed => &mut self.destroyed,
            TestamentScope::Detached => &mut self.detached,
        }
    }

    /// Testaments held in both scopes.
    pub fn len(&self) -> usize {
        self.detached.len() + self.destroyed.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The advanced features a session announced (`HELLO.Details.roles.<role>.features`)
/// that change what the dealer sends it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerFeatures {
    /// callee: `call_canceling` (or the spec's one-off spelling `call_cancelling`):
    /// it may get INTERRUPT.
    pub call_canceling: bool,
    /// callee: `progressive_call_results`.
    pub progressive_call_results: bool,
    /// callee: `progressive_call_invocations`.
    pub progressive_call_invocations: bool,
    /// caller: `progressive_call_invocations` (it may send CALL chunks).
    pub caller_progressive_invocations: bool,
    /// callee: `registration_revocation` (it may get UNREGISTERED with request 0).
    pub registration_revocation: bool,
    /// subscriber: `subscription_revocation` (it may get UNSUBSCRIBED with request 0).
    pub subscription_revocation: bool,
    /// publisher: `payload_passthru_mode` (it may PUBLISH with `ppt_scheme`).
    pub publisher_passthru: bool,
    /// caller: `payload_passthru_mode` (it may CALL with `ppt_scheme`).
    pub caller_passthru: bool,
    /// callee: `payload_passthru_mode` (it may get PPT INVOCATIONs and YIELD them).
    pub callee_passthru: bool,
}

impl PeerFeatures {
    /// Reads the features from `HELLO.Details.roles`.
    pub fn from_roles(roles: &Dict) -> Self {
        let features = |role: &str| {
            roles
                .get(role)
                .and_then(Value::as_dict)
                .and_then(|r| r.get("features"))
                .and_then(Value::as_dict)
        };
        let on = |f: Option<&Dict>, key: &str| {
            f.and_then(|f| f.get(key)).and_then(Value::as_bool) == Some(true)
        };
        let callee = features("callee");
        let caller = features("caller");
        let subscriber = features("subscriber");
        let publisher = features("publisher");
        PeerFeatures {
            call_canceling: on(callee, "call_canceling") || on(callee, "call_cancelling"),
            progressive_call_results: on(callee, "progressive_call_results"),
            progressive_call_invocations: on(callee, "progressive_call_invocations"),
            caller_progressive_invocations: on(caller, "progressive_call_invocations"),
            registration_revocation: on(callee, "registration_revocation"),
            subscription_revocation: on(subscriber, "subscription_revocation"),
            publisher_passthru: on(publisher, "payload_passthru_mode"),
            caller_passthru: on(caller, "payload_passthru_mode"),
            callee_passthru: on(callee, "payload_passthru_mode"),
        }
    }
}

/// Why a message did not reach a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message could not be encoded for this session's serializer.
    #[error("cannot encode for this session: {0}")]
    Encode(String),
    /// The encoded message is larger than the session's transport accepts.
    #[error("message of {size} bytes exceeds the session's limit of {limit}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The session's limit.
        limit: usize,
    },
    /// The session's outbox refused it (closing, or overflowed).
    #[error(transparent)]
    Push(#[from] PushError),
}

impl SessionHandle {
    /// A handle for a session that writes into `outbox`.
    pub fn new(
        id: Id,
        serializer: Serializer,
        max_message_size: usize,
        auth: (String, String, String),
        outbox: Arc<Outbox>,
    ) -> Self {
        SessionHandle {
            id,
            serializer,
            max_message_size,
            authid: auth.0,
            authrole: auth.1,
            authmethod: auth.2,
            authprovider: "static",
            authextra: Dict::new(),
            transport: crate::TransportInfo::default(),
            features: PeerFeatures::default(),
            outbox,
            last_invocation: AtomicU64::new(0),
            calls_in_flight: AtomicUsize::new(0),
            invocations_in_flight: AtomicUsize::new(0),
            testaments: Mutex::new(Testaments::default()),
        }
    }

    /// The same handle with who authenticated it and the authextra it got.
    pub fn with_provider(mut self, authprovider: &'static str, authextra: Dict) -> Self {
        self.authprovider = authprovider;
        self.authextra = authextra;
        self
    }

    /// The same handle with its connection's transport facts.
    pub fn with_transport(mut self, transport: crate::TransportInfo) -> Self {
        self.transport = transport;
        self
    }

    /// The same handle with the features the session announced.
    pub fn with_features(mut self, features: PeerFeatures) -> Self {
        self.features = features;
        self
    }

    /// The next session-scope request id for an INVOCATION to this session.
    pub fn next_invocation_id(&self) -> Id {
        let prev = self
            .last_invocation
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(if last >= MAX_ID { 1 } else { last + 1 })
            })
            .unwrap_or(0);
        if prev >= MAX_ID {
            1
        } else {
            prev + 1
        }
    }

    /// Encodes `message` for this session, checking its size limit.
    pub fn encode(&self, message: &Message) -> Result<Bytes, SendError> {
        let bytes =
            encode(message, self.serializer).map_err(|e| SendError::Encode(e.to_string()))?;
        self.check_size(bytes)
    }

    fn check_size(&self, bytes: Bytes) -> Result<Bytes, SendError> {
        if bytes.len() > self.max_message_size {
            return Err(SendError::TooLarge {
                size: bytes.len(),
                limit: self.max_message_size,
            });
        }
        Ok(bytes)
    }

    /// Queues already-encoded bytes (which must be in this session's serializer).
    pub fn send_encoded(&self, bytes: Bytes) -> Result<(), SendError> {
        let bytes = self.check_size(bytes)?;
        let outcome = self.outbox.push(bytes);
        if outcome == Err(PushError::Overflow) {
            tracing::warn!(
                session = self.id,
                authid = %self.authid,
                "session is not reading: its queue overflowed and it is disconnected"
            );
        }
        outcome.map_err(SendError::from)
    }

    /// Queues an already-encoded EVENT. When the session's queue is full the
    /// outbox's slow-consumer policy decides: drop it (counted) or disconnect.
    pub fn send_event(&self, bytes: Bytes) -> Result<(), SendError> {
        let bytes = self.check_size(bytes)?;
        let outcome = self.outbox.push_event(bytes);
        match outcome {
            Err(PushError::EventDropped) if self.outbox.dropped() == 1 => tracing::warn!(
                session = self.id,
                authid = %self.authid,
                "subscriber is not keeping up: its queue is full and EVENTs are being dropped"
            ),
            Err(PushError::Overflow) => tracing::warn!(
                session = self.id,
                authid = %self.authid,
                "subscriber is not keeping up: its queue overflowed and it is disconnected"
            ),
            _ => {}
        }
        outcome.map_err(SendError::from)
    }

    /// EVENTs dropped because the session's queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.outbox.dropped()
    }

    /// Encodes and queues a message.
    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        self.send_encoded(self.encode(message)?)
    }

    /// Sends a last message (GOODBYE, ABORT) and closes the connection after it.
    pub fn send_last(&self, message: &Message) {
        match self.encode(message) {
            Ok(bytes) => self.outbox.push_last(bytes),
            Err(_) => self.outbox.close(),
        }
    }

    /// Takes every testament, `detached` ones first (each scope in the order they
    /// were added): what to publish when the session goes away.
    pub fn take_testaments(&self) -> Vec<Testament> {
        let mut t = std::mem::take(&mut *self.testaments.lock());
        t.detached.append(&mut t.destroyed);
        t.detached
    }

    /// Whether the session's connection is closing.
    pub fn is_closing(&self) -> bool {
        self.outbox.is_closed()
    }
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &self.id)
            .field("serializer", &self.serializer)
            .field("authid", &self.authid)
            .finish()
    }
}
