//! The session: joining a realm, the reader and writer tasks, and the request API.
//!
//! # Tasks
//!
//! A connected session runs two tasks. The **reader** decodes what the router sends
//! and dispatches it through [`State`]: replies complete the waiting request, EVENTs
//! and INVOCATIONs go into the bounded channel of their
//! [`Subscription`](crate::Subscription) / [`Registration`](crate::Registration).
//! The reader waits when a registration's channel is full, which pushes back on the
//! router; for a full subscription channel it waits at most
//! [`ConnectOptions::event_overflow_wait`] and then drops the event for that
//! subscription (see [slow subscribers](crate::Subscription#slow-subscribers)). The
//! **writer** owns the sending half and drains a bounded queue of encoded messages,
//! writing whatever has piled up with one flush.
//!
//! Requests are encoded by the task that makes them. Request IDs are handed out, and
//! the message queued, under one lock, so the router sees them in sequence even when
//! many tasks use the session at once.
//!
//! # Ending
//!
//! The session ends on GOODBYE or ABORT from the router, on [`Session::leave`], on
//! [`Session::disconnect`], on transport loss, or when the last [`Session`] handle is
//! dropped (then the client says GOODBYE and closes the connection, waiting at most a
//! few seconds for the router's answer). Pending requests then fail with
//! [`Error::Closed`] (or [`Error::Abort`] after an ABORT), and subscriptions and
//! registrations yield `None` once their queued items are consumed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wamp_proto::{error_uri, Dict, Message, MessageType, Payload, SessionScopeIds, Value};

pub use wamp_proto::Serializer;

use crate::call::{CallOptions, CallStream, ProgressiveCall};
use crate::endpoint::Endpoint;
use crate::error::{message_of, CloseReason, Error};
use crate::meta::{
    EventHistoryQuery, HistoryEvent, TestamentOptions, TestamentScope, ADD_TESTAMENT,
    FLUSH_TESTAMENTS, GET_EVENTS,
};
use crate::pubsub::{EventSink, PublishOptions, SubscribeOptions, Subscription};
use crate::rpc::{
    CallResult, HandlerResult, Invocation, RegisterOptions, Registration, RegistrationHandle,
    Revocation,
};
use crate::state::{
    violation, Action, PendingRegister, PendingSubscribe, Phase, RequestKind, State,
};
use crate::transport::{self, Connection, Incoming, Outgoing, ReadHalf, WriteHalf};

/// How long [`Session::leave`] waits for the router's GOODBYE.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a dropped session waits for the router's GOODBYE, and the writer for
/// its last messages, before the connection is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Most messages the writer gathers before one flush.
const WRITE_BATCH: usize = 64;

/// How to connect and join.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The serializer: the WebSocket subprotocol or the RawSocket serializer id.
    /// Default JSON.
    pub serializer: Serializer,
    /// The largest message the client accepts from the router, in octets (RawSocket
    /// advertises it rounded down to a power of two). Default 16 MiB.
    pub max_message_size: usize,
    /// `HELLO.Details.agent`. Default `junction-client/<version>`.
    pub agent: String,
    /// `HELLO.Details.authid`, if any.
    pub authid: Option<String>,
    /// `HELLO.Details.authmethods`. Default `["anonymous"]`.
    pub authmethods: Vec<String>,
    /// Limit for connecting, the transport handshake and joining. Default 10 s.
    pub connect_timeout: Duration,
    /// Capacity of every per-session queue: outgoing messages, and the events or
    /// invocations waiting in each subscription or registration. Default 1024.
    pub queue_capacity: usize,
    /// How long the session waits for room in a full subscription queue before it
    /// drops the event for that subscription; see
    /// [slow subscribers](crate::Subscription#slow-subscribers). Default 1 s.
    pub event_overflow_wait: Duration,
    /// Extra `HELLO.Details` entries, overriding the defaults (e.g. a different
    /// `roles` dict, `authrole`, `authextra`). Default empty.
    pub hello_details: Dict,
    /// The ticket to answer a `ticket` CHALLENGE with. See [`with_ticket`](Self::with_ticket).
    pub ticket: Option<Secret>,
    /// The secret to answer a `wampcra` CHALLENGE with (plain or salted; for salted
    /// WAMP-CRA the key is derived from it with the CHALLENGE's parameters). See
    /// [`with_wampcra`](Self::with_wampcra).
    pub wampcra_secret: Option<Secret>,
    /// The Ed25519 private key to answer a `cryptosign` CHALLENGE with; its public
    /// key goes into `HELLO.Details.authextra.pubkey`. See
    /// [`with_cryptosign`](Self::with_cryptosign).
    pub cryptosign_key: Option<PrivateKey>,
    /// Bind cryptosign to the TLS connection (`tls-exporter`, RFC 9266). See
    /// [`with_channel_binding`](Self::with_channel_binding). Default off.
    pub cryptosign_channel_binding: bool,
    /// The password to answer a WAMP-SCRAM CHALLENGE with. See
    /// [`with_scram`](Self::with_scram).
    pub scram_password: Option<Secret>,
    /// TLS settings for `wss://` and `rss://`: extra trusted CAs, a client
    /// certificate. See [`with_tls_ca_pem`](Self::with_tls_ca_pem) and
    /// [`with_tls_client_cert_pem`](Self::with_tls_client_cert_pem).
    pub tls: crate::tls::TlsOptions,
}

/// An Ed25519 private key (the 32-byte seed): its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps a 32-byte Ed25519 seed.
    pub fn new(seed: [u8; 32]) -> PrivateKey {
        PrivateKey(seed)
    }

    /// The seed itself.
    pub fn seed(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key, 64 hex characters.
    pub fn public_key_hex(&self) -> String {
        crate::auth::public_key_hex(&self.0)
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key_hex())
    }
}

/// A secret (ticket or WAMP-CRA secret): its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            serializer: Serializer::Json,
            max_message_size: 16 << 20,
            agent: concat!("junction-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            authid: None,
            authmethods: vec!["anonymous".to_owned()],
            connect_timeout: Duration::from_secs(10),
            queue_capacity: 1024,
            event_overflow_wait: Duration::from_secs(1),
            hello_details: Dict::new(),
            ticket: None,
            wampcra_secret: None,
            cryptosign_key: None,
            cryptosign_channel_binding: false,
            scram_password: None,
            tls: crate::tls::TlsOptions::default(),
        }
    }
}

/// The Advanced Profile features this client announces as caller.
pub const CALLER_FEATURES: &[&str] = &[
    "progressive_call_results",
    "progressive_call_invocations",
    "call_timeout",
    "call_canceling",
    "caller_identification",
];

/// The Advanced Profile features this client announces as callee.
pub const CALLEE_FEATURES: &[&str] = &[
    "progressive_call_results",
    "progressive_call_invocations",
    "call_timeout",
    "call_canceling",
    "caller_identification",
    "pattern_based_registration",
    "shared_registration",
    "registration_revocation",
];

/// The Advanced Profile features this client announces as publisher.
pub const PUBLISHER_FEATURES: &[&str] = &[
    "publisher_identification",
    "subscriber_blackwhite_listing",
    "publisher_exclusion",
    "payload_passthru_mode",
];

/// The Advanced Profile features this client announces as subscriber.
pub const SUBSCRIBER_FEATURES: &[&str] = &[
    "publisher_identification",
    "publication_trustlevels",
    "pattern_based_subscription",
    "subscription_revocation",
    "payload_passthru_mode",
];

impl ConnectOptions {
    /// Ticket authentication as `authid`: sets `authid`, `authmethods = ["ticket"]`
    /// and the ticket.
    pub fn with_ticket(mut self, authid: impl Into<String>, ticket: impl Into<String>) -> Self {
        self.authid = Some(authid.into());
        self.authmethods = vec!["ticket".to_owned()];
        self.ticket = Some(Secret::new(ticket));
        self
    }

    /// WAMP-CRA authentication (plain or salted, as the router's CHALLENGE says) as
    /// `authid`: sets `authid`, `authmethods = ["wampcra"]` and the secret.
    pub fn with_wampcra(mut self, authid: impl Into<String>, secret: impl Into<String>) -> Self {
        self.authid = Some(authid.into());
        self.authmethods = vec!["wampcra".to_owned()];
        self.wampcra_secret = Some(Secret::new(secret));
        self
    }

    /// WAMP-Cryptosign authentication with an Ed25519 private key (its 32-byte
    /// seed): sets `authmethods = ["cryptosign"]` and the key; `authid` may be left
    /// out (the router then finds the user by public key).
    pub fn with_cryptosign(mut self, authid: Option<impl Into<String>>, seed: [u8; 32]) -> Self {
        self.authid = authid.map(Into::into);
        self.authmethods = vec!["cryptosign".to_owned()];
        self.cryptosign_key = Some(PrivateKey::new(seed));
        self
    }

    /// Binds cryptosign to the TLS connection: HELLO asks for the `tls-exporter`
    /// channel binding (RFC 9266), and the client signs `challenge XOR exporter`,
    /// where the exporter is the 32-byte value of this TLS session, so the
    /// signature is worthless on any other connection. Needs a TLS 1.3 connection
    /// (`wss://`, `rss://`; otherwise joining fails with [`Error::Unsupported`]
    /// before HELLO), and a CHALLENGE that confirms the binding (otherwise the
    /// client aborts with `wamp.error.cannot_authenticate`).
    pub fn with_channel_binding(mut self) -> Self {
        self.cryptosign_channel_binding = true;
        self
    }

    /// WAMP-SCRAM authentication as `authid`: sets `authid`,
    /// `authmethods = ["wamp-scram"]` and the password. The session fails to join
    /// if the router's server signature in WELCOME is wrong.
    pub fn with_scram(mut self, authid: impl Into<String>, password: impl Into<String>) -> Self {
        self.authid = Some(authid.into());
        self.authmethods = vec!["wamp-scram".to_owned()];
        self.scram_password = Some(Secret::new(password));
        self
    }

    /// Trusts the CA certificates in `pem` (besides the built-in roots) for the
    /// router's certificate on `wss://` and `rss://`.
    pub fn with_tls_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let certs = crate::tls::parse_certs(pem.as_ref(), "CA")?;
        self.tls.extra_roots.extend(certs);
        Ok(self)
    }

    /// [`with_tls_ca_pem`](Self::with_tls_ca_pem) with the PEM read from a file.
    pub fn with_tls_ca_file(self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let pem = crate::tls::read(path.as_ref())?;
        self.with_tls_ca_pem(pem)
    }

    /// Presents this client certificate chain (PEM, leaf first) and private key
    /// (PEM) when a TLS router asks for one.
    pub fn with_tls_client_cert_pem(
        mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        self.tls
            .set_client_identity(cert_pem.as_ref(), key_pem.as_ref())?;
        Ok(self)
    }

    /// [`with_tls_client_cert_pem`](Self::with_tls_client_cert_pem) with the PEM
    /// read from files.
    pub fn with_tls_client_cert_files(
        self,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self, Error> {
        let cert = crate::tls::read(cert.as_ref())?;
        let key = crate::tls::read(key.as_ref())?;
        self.with_tls_client_cert_pem(cert, key)
    }

    /// TLS client-certificate authentication: sets `authmethods = ["tls"]` (the
    /// router takes the authid from the certificate). Needs a client certificate
    /// ([`with_tls_client_cert_pem`](Self::with_tls_client_cert_pem)) on a `wss://`
    /// or `rss://` connection.
    pub fn with_tls_auth(mut self) -> Self {
        self.authmethods = vec!["tls".to_owned()];
        self
    }

    /// The HELLO this client sends to join `realm`: the four client roles, with
    /// [`CALLER_FEATURES`], [`CALLEE_FEATURES`], [`PUBLISHER_FEATURES`] and
    /// [`SUBSCRIBER_FEATURES`] announced, the agent, authmethods and authid, then
    /// [`hello_details`](Self::hello_details) on top.
    pub fn hello(&self, realm: &str) -> Message {
        let role = |features: &[&str]| {
            let features: Dict = features
                .iter()
                .map(|f| ((*f).to_owned(), Value::from(true)))
                .collect();
            let mut role = Dict::new();
            role.insert("features".into(), Value::Dict(features));
            Value::Dict(role)
        };
        let mut roles = Dict::new();
        roles.insert("caller".into(), role(CALLER_FEATURES));
        roles.insert("callee".into(), role(CALLEE_FEATURES));
        roles.insert("publisher".into(), role(PUBLISHER_FEATURES));
        roles.insert("subscriber".into(), role(SUBSCRIBER_FEATURES));
        let mut details = Dict::new();
        details.insert("roles".into(), Value::Dict(roles));
        details.insert("agent".into(), Value::from(self.agent.as_str()));
        details.insert(
            "authmethods".into(),
            Value::List(
                self.authmethods
                    .iter()
                    .map(|m| Value::from(m.as_str()))
                    .collect(),
            ),
        );
        if let Some(authid) = &self.authid {
            details.insert("authid".into(), Value::from(authid.as_str()));
        }
        for (k, v) in &self.hello_details {
            details.insert(k.clone(), v.clone());
        }
        Message::Hello {
            realm: realm.to_owned(),
            details,
        }
    }
}

/// Requests to the reader and writer tasks to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Carry on.
    Run,
    /// Stop within [`CLOSE_GRACE`] (we said GOODBYE and wait for the answer).
    Graceful,
    /// Stop now.
    Now,
}

/// What the session's handles and tasks share.
pub(crate) struct Shared {
    serializer: Serializer,
    session_id: u64,
    welcome_details: Dict,
    /// The router's receive limit (RawSocket).
    max_send: Option<usize>,
    queue_capacity: usize,
    event_overflow_wait: Duration,
    out: mpsc::Sender<Outgoing>,
    /// Request IDs; taken before `state` when both are needed.
    ids: Mutex<SessionScopeIds>,
    pub(crate) state: Mutex<State>,
    closed: watch::Sender<Option<CloseReason>>,
    control: watch::Sender<Control>,
}

impl Shared {
    fn encode(&self, message: &Message, check_limit: bool) -> Result<Bytes, Error> {
        let bytes = wamp_proto::encode(message, self.serializer)
            .map_err(|e| Error::Encode(e.to_string()))?;
        if let Some(limit) = self.max_send.filter(|_| check_limit) {
            if bytes.len() > limit {
                return Err(Error::TooLarge {
                    size: bytes.len(),
                    limit,
                });
            }
        }
        Ok(bytes)
    }

    /// Sends a session message (no request ID to allocate); fails once the session
    /// is shutting down.
    pub(crate) async fn send(&self, message: &Message) -> Result<(), Error> {
        let bytes = self.encode(message, true)?;
        let permit = self.out.reserve().await.map_err(|_| Error::Closed)?;
        let state = self.state.lock();
        if !state.is_established() {
            return Err(Error::Closed);
        }
        permit.send(Outgoing::Message(bytes));
        Ok(())
    }

    /// Sends a message whatever the session phase (GOODBYE, ABORT, replies).
    async fn send_unchecked(&self, message: &Message, check_limit: bool) -> Result<(), Error> {
        let bytes = self.encode(message, check_limit)?;
        self.out
            .send(Outgoing::Message(bytes))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Sends a request built around the next request ID; `register` records what
    /// waits for the reply. ID allocation and queueing are atomic, so IDs go out in
    /// sequence. Returns the request ID.
    pub(crate) async fn request(
        &self,
        build: impl FnOnce(u64) -> Message,
        register: impl FnOnce(&mut State, u64),
    ) -> Result<u64, Error> {
        let permit = self.out.reserve().await.map_err(|_| Error::Closed)?;
        let mut ids = self.ids.lock();
        let mut next = ids.clone();
        let request = next.next();
        let bytes = self.encode(&build(request), true)?;
        let mut state = self.state.lock();
        if !state.is_established() {
            return Err(Error::Closed);
        }
        register(&mut state, request);
        permit.send(Outgoing::Message(bytes));
        *ids = next;
        Ok(request)
    }

    /// Sends UNSUBSCRIBE for router subscription `subscription`, whose last local
    /// subscriber has gone, unless a new one has come meanwhile (then nothing is
    /// sent and the result is `None`). `reply` receives the outcome.
    pub(crate) async fn unsubscribe(
        &self,
        subscription: u64,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<Option<u64>, Error> {
        let permit = self.out.reserve().await.map_err(|_| Error::Closed)?;
        let mut ids = self.ids.lock();
        let mut state = self.state.lock();
        if !state.is_established() {
            return Err(Error::Closed);
        }
        if state.has_subscribers(subscription) {
            return Ok(None);
        }
        let mut next = ids.clone();
        let request = next.next();
        let bytes = self.encode(
            &Message::Unsubscribe {
                request,
                subscription,
                options: Dict::new(),
            },
            true,
        )?;
        state.add_unsubscribe(request, subscription, reply);
        permit.send(Outgoing::Message(bytes));
        *ids = next;
        Ok(Some(request))
    }

    /// A request whose reply nobody waits for (used from `Drop`): sent from a new task
    /// if there is a runtime.
    pub(crate) fn request_detached(
        self: &Arc<Self>,
        build: impl FnOnce(u64) -> Message + Send + 'static,
    ) {
        if !self.state.lock().is_established() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.clone();
            runtime.spawn(async move {
                let _ = shared.request(build, |_, _| {}).await;
            });
        }
    }

    /// Sends a message without a request ID from outside async code (used from
    /// `Drop`), best effort.
    pub(crate) fn send_detached(self: &Arc<Self>, message: Message) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let shared = self.clone();
                runtime.spawn(async move {
                    let _ = shared.send(&message).await;
                });
            }
            Err(_) => {
                if let Ok(bytes) = self.encode(&message, true) {
                    if self.is_established() {
                        let _ = self.out.try_send(Outgoing::Message(bytes));
                    }
                }
            }
        }
    }

    /// A fresh local handle id.
    pub(crate) fn next_local(&self) -> u64 {
        self.state.lock().next_local()
    }

    pub(crate) fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    pub(crate) fn is_established(&self) -> bool {
        self.state.lock().is_established()
    }

    /// Whether the router announced `feature` for its dealer role in WELCOME
    /// (`call_cancelling`, the spelling of one spec section, counts as
    /// `call_canceling`).
    pub(crate) fn dealer_feature(&self, feature: &str) -> bool {
        let Some(features) = self
            .welcome_details
            .get("roles")
            .and_then(Value::as_dict)
            .and_then(|roles| roles.get("dealer"))
            .and_then(Value::as_dict)
            .and_then(|dealer| dealer.get("features"))
            .and_then(Value::as_dict)
        else {
            return false;
        };
        let has = |f: &str| features.get(f).and_then(Value::as_bool) == Some(true);
        has(feature) || (feature == "call_canceling" && has("call_cancelling"))
    }

    /// Whether the router announced `feature` for its broker role in WELCOME.
    pub(crate) fn broker_feature(&self, feature: &str) -> bool {
        self.welcome_details
            .get("roles")
            .and_then(Value::as_dict)
            .and_then(|roles| roles.get("broker"))
            .and_then(Value::as_dict)
            .and_then(|broker| broker.get("features"))
            .and_then(Value::as_dict)
            .and_then(|features| features.get(feature))
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// The error for a request cut short by the end of the session.
    pub(crate) fn close_error(&self) -> Error {
        match &self.state.lock().phase {
            Phase::Closed(reason) => Error::from_close(reason),
            _ => Error::Closed,
        }
    }

    /// Waits for the reply to `request` of `kind`; forgets the request if the
    /// caller stops waiting.
    pub(crate) async fn wait<T>(
        &self,
        kind: RequestKind,
        request: u64,
        reply: oneshot::Receiver<Result<T, Error>>,
    ) -> Result<T, Error> {
        struct Forget<'a> {
            shared: &'a Shared,
            kind: RequestKind,
            request: u64,
            armed: bool,
        }
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                if self.armed {
                    self.shared.state.lock().forget(self.kind, self.request);
                }
            }
        }
        let mut guard = Forget {
            shared: self,
            kind,
            request,
            armed: true,
        };
        let result = reply.await.unwrap_or(Err(Error::Closed));
        guard.armed = false;
        result
    }

    /// Records the end of the session (the first reason wins) and wakes
    /// [`Session::closed`] waiters.
    fn finish(&self, reason: CloseReason) {
        let final_reason = {
            let mut state = self.state.lock();
            state.close(&reason);
            match &state.phase {
                Phase::Closed(r) => r.clone(),
                _ => reason,
            }
        };
        self.closed.send_replace(Some(final_reason));
    }

    /// The last [`Session`] handle is gone: say GOODBYE and close within the grace time.
    fn release(&self) {
        let said_goodbye = {
            let mut state = self.state.lock();
            if state.is_established() {
                state.phase = Phase::ShuttingDown;
                true
            } else {
                false
            }
        };
        if said_goodbye {
            if let Ok(bytes) = self.encode(&Message::goodbye(error_uri::CLOSE_NORMAL), false) {
                let _ = self.out.try_send(Outgoing::Message(bytes));
            }
        }
        self.control.send_if_modified(|c| {
            if *c == Control::Run {
                *c = Control::Graceful;
                true
            } else {
                false
            }
        });
    }

    async fn closed(&self) -> CloseReason {
        let mut rx = self.closed.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        reason.unwrap_or(CloseReason::TransportLost)
    }

    /// Handles one received message; `Some` when the session ends.
    async fn handle(self: &Arc<Self>, bytes: Bytes) -> Option<CloseReason> {
        let message = match wamp_proto::decode(self.serializer, &bytes) {
            Ok(message) => message,
            Err(e) => {
                if !self.is_established() {
                    return None;
                }
                let text = format!("cannot decode a message from the router: {e}");
                let reason = violation(&text);
                self.state.lock().close(&reason);
                tracing::warn!("{text}");
                let _ = self
                    .send_unchecked(&Message::abort(error_uri::PROTOCOL_VIOLATION, &text), false)
                    .await;
                return Some(reason);
            }
        };
        let action = self.state.lock().on_message(message);
        match action {
            Action::Nothing => None,
            Action::Events { targets, event } => {
                let wait = self.event_overflow_wait;
                let mut deadline = None;
                let mut targets = targets.into_iter().peekable();
                while let Some(target) = targets.next() {
                    if targets.peek().is_some() {
                        target.deliver(event.clone(), wait, &mut deadline).await;
                    } else {
                        // The last one gets the original.
                        target.deliver(event, wait, &mut deadline).await;
                        break;
                    }
                }
                None
            }
            Action::Resubscribe(pending) => {
                let topic = pending.topic.clone();
                let options = pending.options.clone();
                // If the session is over, `pending` is dropped and its waiter fails.
                let _ = self
                    .request(
                        |request| Message::Subscribe {
                            request,
                            options,
                            topic,
                        },
                        |state, request| state.add_subscribe(request, pending),
                    )
                    .await;
                None
            }
            Action::Unsubscribe { subscription } => {
                let _ = self.unsubscribe(subscription, None).await;
                None
            }
            Action::Invoke { target, invocation } => {
                let invocation = Invocation::new(invocation, self.clone());
                if let Err(mpsc::error::SendError(invocation)) = target.send(invocation).await {
                    invocation.refuse();
                }
                None
            }
            Action::Chunk { target, chunk } => {
                // The invocation may be gone already: then the chunk is dropped.
                let _ = target.send(chunk).await;
                None
            }
            Action::CallItem { target, item } => {
                // The caller may have given up already.
                let _ = target.send(item).await;
                None
            }
            Action::RefuseInvocation { request } => {
                self.refuse_invocation(request).await;
                None
            }
            Action::Close { reason, reply } => {
                if let Some(reply) = reply {
                    let _ = self.send_unchecked(&reply, false).await;
                }
                Some(reason)
            }
            Action::Violation(text) => {
                tracing::warn!("router broke the protocol: {text}");
                let _ = self
                    .send_unchecked(&Message::abort(error_uri::PROTOCOL_VIOLATION, &text), false)
                    .await;
                Some(violation(&text))
            }
        }
    }

    async fn refuse_invocation(&self, request: u64) {
        let _ = self
            .send(&Message::error(
                MessageType::Invocation,
                request,
                error_uri::NO_SUCH_REGISTRATION,
                Payload::empty(),
            ))
            .await;
    }
}

/// Resolves when the session must stop: at once on [`Control::Now`], after
/// [`CLOSE_GRACE`] on [`Control::Graceful`]. Never resolves while running. The
/// deadline lives outside so that it survives cancellation.
async fn stop_requested(control: &mut watch::Receiver<Control>, deadline: &mut Option<Instant>) {
    loop {
        match *control.borrow_and_update() {
            Control::Now => return,
            Control::Graceful => {
                deadline.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
            }
            Control::Run => {}
        }
        match *deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => return,
                    changed = control.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(at).await;
                            return;
                        }
                    }
                }
            }
            None => {
                if control.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

async fn run_reader(shared: Arc<Shared>, mut reader: ReadHalf, mut writer: JoinHandle<()>) {
    let mut control = shared.control.subscribe();
    let mut deadline = None;
    let reason = loop {
        let incoming = tokio::select! {
            biased;
            () = stop_requested(&mut control, &mut deadline) => break CloseReason::TransportLost,
            incoming = reader.next() => incoming,
        };
        let bytes = match incoming {
            Ok(Some(Incoming::Message(bytes))) => bytes,
            Ok(Some(Incoming::Ping(payload))) => {
                let _ = shared.out.send(Outgoing::Pong(payload)).await;
                continue;
            }
            Ok(None) => break CloseReason::TransportLost,
            Err(e) => {
                tracing::debug!("session {}: transport failed: {e}", shared.session_id);
                break CloseReason::TransportLost;
            }
        };
        let outcome = tokio::select! {
            biased;
            () = stop_requested(&mut control, &mut deadline) => break CloseReason::TransportLost,
            outcome = shared.handle(bytes) => outcome,
        };
        if let Some(reason) = outcome {
            break reason;
        }
    };
    tracing::debug!("session {} ended: {reason:?}", shared.session_id);
    shared.finish(reason);
    drop(reader);
    // Let the writer send what is queued (our GOODBYE or ABORT) and close.
    let _ = tokio::time::timeout(CLOSE_GRACE, shared.out.send(Outgoing::Close)).await;
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        shared.control.send_replace(Control::Now);
        writer.abort();
    }
}

async fn run_writer(
    shared: Arc<Shared>,
    mut writer: WriteHalf,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let mut control = shared.control.subscribe();
    loop {
        let first = tokio::select! {
            biased;
            () = stop_now(&mut control) => return,
            item = queue.recv() => item,
        };
        let Some(first) = first else {
            let _ = tokio::time::timeout(CLOSE_GRACE, writer.close()).await;
            return;
        };
        let mut closing = matches!(first, Outgoing::Close);
        let written = tokio::select! {
            biased;
            () = stop_now(&mut control) => return,
            written = async {
                writer.feed(first).await?;
                let mut count = 1;
                while !closing && count < WRITE_BATCH {
                    match queue.try_recv() {
                        Ok(item) => {
                            closing = matches!(item, Outgoing::Close);
                            writer.feed(item).await?;
                            count += 1;
                        }
                        Err(_) => break,
                    }
                }
                writer.flush().await
            } => written,
        };
        if let Err(e) = written {
            tracing::debug!("session {}: write failed: {e}", shared.session_id);
            shared.control.send_replace(Control::Now);
            return;
        }
        if closing {
            let _ = tokio::time::timeout(CLOSE_GRACE, writer.close()).await;
            return;
        }
    }
}

/// Like [`stop_requested`] but ignores [`Control::Graceful`] (the writer keeps
/// writing until the reader sends [`Outgoing::Close`]).
async fn stop_now(control: &mut watch::Receiver<Control>) {
    loop {
        if *control.borrow_and_update() == Control::Now {
            return;
        }
        if control.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Keeps the session alive; the last one dropped closes it.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// A WAMP session joined to a realm.
///
/// Cheap to clone; every clone drives the same session, from any task. Dropping the
/// last clone leaves the realm (GOODBYE) and closes the connection;
/// [`Subscription`]s, [`Registration`]s and [`Invocation`]s do not keep the session
/// open.
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("serializer", &self.serializer())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Session {
    /// Connects to the router at `url` and joins `realm` with default options.
    ///
    /// URLs: `ws://host:port/path`, `rs://host:port`, `unix:///path/to/socket`.
    pub async fn connect(url: &str, realm: &str) -> Result<Session, Error> {
        Session::connect_with(url, realm, ConnectOptions::default()).await
    }

    /// Connects to the router at `url` and joins `realm`.
    ///
    /// Fails with [`Error::Abort`] if the router refuses the session (e.g.
    /// `wamp.error.no_such_realm`), or if it asks for authentication
    /// (`CHALLENGE`), which this client does not support yet: it then sends ABORT
    /// `wamp.error.cannot_authenticate` and returns that reason. Any other message
    /// before WELCOME is a protocol violation ([`Error::Protocol`]).
    pub async fn connect_with(
        url: &str,
        realm: &str,
        options: ConnectOptions,
    ) -> Result<Session, Error> {
        let endpoint = Endpoint::parse(url)?;
        let (connection, session_id, welcome_details) =
            tokio::time::timeout(options.connect_timeout, join(&endpoint, realm, &options))
                .await
                .map_err(|_| Error::Timeout)??;
        let Connection {
            reader,
            writer,
            max_send,
            ..
        } = connection;
        let capacity = options.queue_capacity.max(1);
        let (out, queue) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            serializer: options.serializer,
            session_id,
            welcome_details,
            max_send,
            queue_capacity: capacity,
            event_overflow_wait: options.event_overflow_wait,
            out,
            ids: Mutex::new(SessionScopeIds::new()),
            state: Mutex::new(State::with_queue_capacity(capacity)),
            closed: watch::Sender::new(None),
            control: watch::Sender::new(Control::Run),
        });
        let writer = tokio::spawn(run_writer(shared.clone(), writer, queue));
        tokio::spawn(run_reader(shared.clone(), reader, writer));
        Ok(Session {
            handle: Arc::new(Handle { shared }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The session ID from WELCOME.
    pub fn id(&self) -> u64 {
        self.shared().session_id
    }

    /// `WELCOME.Details` (roles, authid, authrole, …).
    pub fn welcome_details(&self) -> &Dict {
        &self.shared().welcome_details
    }

    /// The serializer in use.
    pub fn serializer(&self) -> Serializer {
        self.shared().serializer
    }

    /// The largest message the router accepts, if the transport says (RawSocket).
    pub fn router_max_message_size(&self) -> Option<usize> {
        self.shared().max_send
    }

    /// Calls `procedure` with positional and keyword arguments.
    ///
    /// ERROR from the dealer or the callee is [`Error::Wamp`].
    pub async fn call(
        &self,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<CallResult, Error> {
        self.call_with(procedure, Payload::new(args, kwargs), Dict::new())
            .await
    }

    /// Calls `procedure` with any payload and `CALL.Options` (a [`CallOptions`] or
    /// a [`Dict`]), and waits for the final result (progressive results, if
    /// `receive_progress` is set, are skipped).
    ///
    /// Dropping the future before the end gives up on the call: if the router
    /// announced `call_canceling`, CANCEL with mode `killnowait` is sent. A call
    /// timeout (`timeout`) that runs out is [`Error::Wamp`] `wamp.error.timeout`
    /// ([`Error::is_timeout`]).
    pub async fn call_with(
        &self,
        procedure: &str,
        payload: Payload,
        options: impl Into<CallOptions>,
    ) -> Result<CallResult, Error> {
        self.start_call(procedure, payload, options)
            .await?
            .result()
            .await
    }

    /// Sends CALL and returns the call in flight, to read its (progressive) results
    /// or [cancel](CallStream::cancel) it. Progressive results come only if
    /// `options` sets `receive_progress` (see [`call_progressive`](Self::call_progressive)).
    pub async fn start_call(
        &self,
        procedure: &str,
        payload: Payload,
        options: impl Into<CallOptions>,
    ) -> Result<CallStream, Error> {
        let options = options.into();
        let progressive = options.wants_progress();
        self.send_call(procedure, payload, options.into_dict(), progressive)
            .await
    }

    /// Calls `procedure` asking for progressive results (`receive_progress: true`):
    /// the returned stream yields [`CallEvent::Progress`](crate::CallEvent::Progress)
    /// for each, then the final result or error.
    ///
    /// ```no_run
    /// # async fn demo(session: wamp_client::Session) -> Result<(), wamp_client::Error> {
    /// use wamp_client::{CallEvent, CallOptions, Payload};
    /// let mut call = session
    ///     .call_progressive("com.example.download", Payload::empty(), CallOptions::new())
    ///     .await?;
    /// while let Some(event) = call.next().await {
    ///     if let CallEvent::Final(result) = event? {
    ///         println!("{:?}", result.args);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_progressive(
        &self,
        procedure: &str,
        payload: Payload,
        options: impl Into<CallOptions>,
    ) -> Result<CallStream, Error> {
        let options = options.into().receive_progress(true);
        self.send_call(procedure, payload, options.into_dict(), true)
            .await
    }

    /// Starts a call whose arguments go out in chunks (progressive call
    /// invocations): sends `first` as CALL with `progress: true`. Send further
    /// chunks and the last one through the returned [`ProgressiveCall`]. Set
    /// `receive_progress` in `options` to stream results back as well.
    ///
    /// Fails with [`Error::Unsupported`], sending nothing, unless the router
    /// announced `progressive_call_invocations` (sending it anyway would be a
    /// protocol violation).
    pub async fn start_progressive_call(
        &self,
        procedure: &str,
        first: Payload,
        options: impl Into<CallOptions>,
    ) -> Result<ProgressiveCall, Error> {
        if !self.shared().dealer_feature("progressive_call_invocations") {
            return Err(Error::Unsupported(
                "the router did not announce progressive_call_invocations".into(),
            ));
        }
        let options = options.into();
        let progressive = options.wants_progress();
        let options = options.option("progress", true);
        let stream = self
            .send_call(procedure, first, options.into_dict(), progressive)
            .await?;
        Ok(ProgressiveCall::new(procedure.to_owned(), stream))
    }

    async fn send_call(
        &self,
        procedure: &str,
        payload: Payload,
        options: Dict,
        progressive: bool,
    ) -> Result<CallStream, Error> {
        let shared = self.shared();
        let mut stream = None;
        shared
            .request(
                |request| Message::Call {
                    request,
                    options,
                    procedure: procedure.to_owned(),
                    payload,
                },
                |state, request| {
                    let (call, sink) = CallStream::new(request, shared.clone(), progressive);
                    state.add_call(request, sink);
                    stream = Some(call);
                },
            )
            .await?;
        stream.ok_or(Error::Closed)
    }

    /// Whether the router announced `feature` for its dealer role in WELCOME, e.g.
    /// `call_canceling` or `progressive_call_invocations`.
    pub fn dealer_supports(&self, feature: &str) -> bool {
        self.shared().dealer_feature(feature)
    }

    /// Whether the router announced `feature` for its broker role in WELCOME, e.g.
    /// `pattern_based_subscription` or `payload_passthru_mode`.
    pub fn broker_supports(&self, feature: &str) -> bool {
        self.shared().broker_feature(feature)
    }

    /// Publishes to `topic` without acknowledgement: returns once the PUBLISH is
    /// queued for sending. The router reports no errors for it.
    pub async fn publish(&self, topic: &str, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.publish_with(topic, Payload::new(args, kwargs), PublishOptions::new())
            .await
            .map(|_| ())
    }

    /// Publishes with any payload and `PUBLISH.Options` (a [`PublishOptions`] or a
    /// [`Dict`]). With `acknowledge: true` waits for PUBLISHED and returns
    /// `Some(publication id)`, or the router's ERROR as [`Error::Wamp`]; otherwise
    /// returns `None` once queued.
    ///
    /// [`Payload::opaque`] sends a single binary element in place of `Arguments`,
    /// as Autobahn's payload transparency does; for the specification's payload
    /// passthru mode use [`publish_passthru`](Self::publish_passthru). Options with
    /// a `ppt_scheme` fail with [`Error::Unsupported`], sending nothing, unless the
    /// broker announced `payload_passthru_mode`.
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: Payload,
        options: impl Into<PublishOptions>,
    ) -> Result<Option<u64>, Error> {
        let options = options.into();
        let shared = self.shared();
        if options.is_passthru() && !shared.broker_feature("payload_passthru_mode") {
            return Err(Error::Unsupported(
                "the router did not announce payload_passthru_mode".into(),
            ));
        }
        let acknowledge = options.is_acknowledged();
        let options = options.into_dict();
        let build = |request| Message::Publish {
            request,
            options,
            topic: topic.to_owned(),
            payload,
        };
        if !acknowledge {
            shared.request(build, |_, _| {}).await?;
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        let request = shared
            .request(build, |state, request| state.add_publish(request, tx))
            .await?;
        shared
            .wait(RequestKind::Publish, request, rx)
            .await
            .map(Some)
    }

    /// Publishes an opaque payload in payload passthru mode: `data` goes out as the
    /// only element of `Arguments`, `ppt_scheme` is set to `scheme` (`mqtt`, `wamp`
    /// or a custom `x_…` scheme), and the other `ppt_*` keys come from `options`
    /// ([`PublishOptions::ppt_serializer`], …). The broker forwards it untouched;
    /// subscribers read it with [`Event::passthru_payload`](crate::Event::passthru_payload).
    ///
    /// Fails with [`Error::Unsupported`], sending nothing, unless the broker
    /// announced `payload_passthru_mode` (using it anyway is a protocol violation).
    pub async fn publish_passthru(
        &self,
        topic: &str,
        scheme: &str,
        data: Bytes,
        options: impl Into<PublishOptions>,
    ) -> Result<Option<u64>, Error> {
        let options = options.into().ppt_scheme(scheme);
        if !options.is_passthru() {
            return Err(Error::Unsupported("an empty ppt_scheme".into()));
        }
        self.publish_with(topic, Payload::from_args(vec![Value::Bytes(data)]), options)
            .await
    }

    /// Subscribes to `topic` (exact match).
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        self.subscribe_with(topic, SubscribeOptions::new()).await
    }

    /// Subscribes with `SUBSCRIBE.Options`: a [`SubscribeOptions`] (`match`,
    /// `get_retained`) or a [`Dict`].
    ///
    /// Several subscriptions of this session to the same topic and match policy
    /// each receive every event, although the router keeps one subscription (and
    /// ID) for them; overlapping patterns are separate router subscriptions, and
    /// each gets its own copy of an event that matches several.
    pub async fn subscribe_with(
        &self,
        topic: &str,
        options: impl Into<SubscribeOptions>,
    ) -> Result<Subscription, Error> {
        let options = options.into().into_dict();
        let shared = self.shared();
        let local = shared.next_local();
        let (sink, events_rx) = EventSink::channel(shared.queue_capacity());
        let status = sink.status.clone();
        let (reply, rx) = oneshot::channel();
        let wire_options = options.clone();
        let request = shared
            .request(
                |request| Message::Subscribe {
                    request,
                    options: wire_options,
                    topic: topic.to_owned(),
                },
                |state, request| {
                    state.add_subscribe(
                        request,
                        PendingSubscribe {
                            local,
                            sink,
                            topic: topic.to_owned(),
                            options,
                            reply,
                            attempts: 0,
                        },
                    )
                },
            )
            .await?;
        let id = shared.wait(RequestKind::Subscribe, request, rx).await?;
        Ok(Subscription::new(
            id,
            local,
            topic.to_owned(),
            events_rx,
            status,
            shared.clone(),
        ))
    }

    /// Reads the event history of subscription `subscription` (event history):
    /// calls `wamp.subscription.get_events` with `[subscription]` and the query as
    /// keyword arguments. The events come in the order the router returns them
    /// (oldest first per the specification, unless `reverse` is set).
    ///
    /// The router answers `wamp.error.no_such_subscription`,
    /// `wamp.error.not_authorized`, or (Crossbar.io) `wamp.error.history_unavailable`
    /// if it keeps no history for the subscription. Crossbar.io only understands
    /// `limit` (and returns the newest events first).
    pub async fn subscription_events(
        &self,
        subscription: u64,
        query: impl Into<EventHistoryQuery>,
    ) -> Result<Vec<HistoryEvent>, Error> {
        let result = self
            .call(
                GET_EVENTS,
                vec![Value::from(subscription)],
                query.into().into_dict(),
            )
            .await?;
        HistoryEvent::from_result(result.args)
    }

    /// Adds a testament (session testament): an event the router publishes on this
    /// session's behalf when it detaches or is destroyed (per
    /// [`TestamentOptions::scope`]; a clean [`leave`](Self::leave) counts too).
    /// Calls `wamp.session.add_testament` with `[topic, args, kwargs]` and the
    /// keyword arguments `scope` and `publish_options`.
    ///
    /// The router may refuse with `wamp.error.testament_error` or
    /// `wamp.error.no_such_procedure` (no testament support).
    pub async fn add_testament(
        &self,
        topic: &str,
        args: Vec<Value>,
        kwargs: Dict,
        options: TestamentOptions,
    ) -> Result<(), Error> {
        self.call_with(
            ADD_TESTAMENT,
            Payload::new(
                vec![Value::from(topic), Value::List(args), Value::Dict(kwargs)],
                options.into_kwargs(),
            ),
            CallOptions::new(),
        )
        .await
        .map(|_| ())
    }

    /// Removes this session's testaments of `scope`: calls
    /// `wamp.session.flush_testaments` with the keyword argument `scope`. Returns
    /// how many were removed if the router says (Crossbar.io does; the
    /// specification defines no result).
    pub async fn flush_testaments(&self, scope: TestamentScope) -> Result<Option<u64>, Error> {
        let mut kwargs = Dict::new();
        kwargs.insert("scope".into(), Value::from(scope.as_str()));
        let result = self.call(FLUSH_TESTAMENTS, Vec::new(), kwargs).await?;
        Ok(result.args.first().and_then(Value::as_u64))
    }

    /// Registers `procedure` (exact match, single callee).
    pub async fn register(&self, procedure: &str) -> Result<Registration, Error> {
        self.register_with(procedure, Dict::new()).await
    }

    /// Registers with `REGISTER.Options`: a [`RegisterOptions`] (`match`, `invoke`,
    /// `disclose_caller`, …) or a [`Dict`].
    pub async fn register_with(
        &self,
        procedure: &str,
        options: impl Into<RegisterOptions>,
    ) -> Result<Registration, Error> {
        let options = options.into().into_dict();
        let shared = self.shared();
        let local = shared.next_local();
        let revoked = Revocation::default();
        let revoked_for_state = revoked.clone();
        let (invocations, invocations_rx) = mpsc::channel(shared.queue_capacity());
        let (reply, rx) = oneshot::channel();
        let request = shared
            .request(
                |request| Message::Register {
                    request,
                    options,
                    procedure: procedure.to_owned(),
                },
                |state, request| {
                    state.add_register(
                        request,
                        PendingRegister {
                            local,
                            invocations,
                            revoked: revoked_for_state,
                            reply,
                        },
                    )
                },
            )
            .await?;
        let id = shared.wait(RequestKind::Register, request, rx).await?;
        Ok(Registration::new(
            id,
            local,
            invocations_rx,
            revoked,
            shared.clone(),
        ))
    }

    /// Registers `procedure` and answers every invocation with `handler`.
    ///
    /// `handler(args, kwargs)` runs in its own task for each invocation (so calls
    /// are served concurrently) and returns `Ok((args, kwargs))` for a YIELD or
    /// `Err((error_uri, args, kwargs))` for an ERROR. A handler that panics answers
    /// `wamp.error.runtime_error`.
    ///
    /// If the dealer interrupts an invocation (the call was canceled, timed out or
    /// its caller left), the handler's future is dropped; for INTERRUPT mode `kill`
    /// ERROR `wamp.error.canceled` is sent, for `killnowait` nothing. If the dealer
    /// forwarded a call `timeout`, a handler still running when it runs out is
    /// dropped and `wamp.error.timeout` is sent.
    ///
    /// ```no_run
    /// # async fn demo(session: wamp_client::Session) -> Result<(), wamp_client::Error> {
    /// use wamp_client::{Dict, Value};
    /// let handle = session
    ///     .register_fn("com.example.add", |args: Vec<Value>, _kwargs: Dict| async move {
    ///         match (args.first().and_then(Value::as_i64), args.get(1).and_then(Value::as_i64)) {
    ///             (Some(a), Some(b)) => Ok((vec![Value::from(a + b)], Dict::new())),
    ///             _ => Err(("wamp.error.invalid_argument".to_owned(), vec![], Dict::new())),
    ///         }
    ///     })
    ///     .await?;
    /// # handle.unregister().await
    /// # }
    /// ```
    ///
    /// Dropping the returned handle does *not* unregister: the procedure stays
    /// registered until [`RegistrationHandle::unregister`] or the session ends.
    pub async fn register_fn<F, Fut>(
        &self,
        procedure: &str,
        handler: F,
    ) -> Result<RegistrationHandle, Error>
    where
        F: Fn(Vec<Value>, Dict) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.register_fn_with(procedure, RegisterOptions::new(), handler)
            .await
    }

    /// Like [`register_fn`](Self::register_fn) with `REGISTER.Options`.
    pub async fn register_fn_with<F, Fut>(
        &self,
        procedure: &str,
        options: impl Into<RegisterOptions>,
        handler: F,
    ) -> Result<RegistrationHandle, Error>
    where
        F: Fn(Vec<Value>, Dict) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let registration = self.register_with(procedure, options).await?;
        Ok(RegistrationHandle::spawn(registration, handler))
    }

    /// Leaves the realm: sends GOODBYE `wamp.close.normal`, waits (at most
    /// [`LEAVE_TIMEOUT`]) for the router's GOODBYE, and closes the connection.
    ///
    /// Errors: [`Error::Closed`] if the session was already over or the connection
    /// dropped instead of an answer, [`Error::Abort`] if the router aborted,
    /// [`Error::Timeout`] if it did not answer in time (the connection is cut).
    pub async fn leave(&self) -> Result<(), Error> {
        let shared = self.shared();
        {
            let mut state = shared.state.lock();
            if !state.is_established() {
                return Err(Error::Closed);
            }
            state.phase = Phase::ShuttingDown;
        }
        shared
            .send_unchecked(&Message::goodbye(error_uri::CLOSE_NORMAL), false)
            .await?;
        match tokio::time::timeout(LEAVE_TIMEOUT, shared.closed()).await {
            Ok(CloseReason::Left | CloseReason::Goodbye { .. }) => Ok(()),
            Ok(CloseReason::Abort { reason, message }) => Err(Error::Abort { reason, message }),
            Ok(CloseReason::TransportLost) => Err(Error::Closed),
            Err(_) => {
                shared.control.send_replace(Control::Now);
                let _ = shared.closed().await;
                Err(Error::Timeout)
            }
        }
    }

    /// Drops the connection at once, without GOODBYE (the router sees the transport
    /// go away). Resolves when the session has ended.
    pub async fn disconnect(&self) {
        self.shared().control.send_replace(Control::Now);
        let _ = self.shared().closed().await;
    }

    /// Resolves when the session has ended, with the reason.
    pub async fn closed(&self) -> CloseReason {
        self.shared().closed().await
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared().closed.borrow().is_some()
    }

    /// How the session ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared().closed.borrow().clone()
    }

    /// Sends `message` exactly as given (for tests: invalid sequences, foreign
    /// request IDs, HELLO within a session…). The client's bookkeeping does not see
    /// it, so replies to it are ignored, and the RawSocket size limit is not
    /// checked. Fails only when the session is over.
    pub async fn send_raw(&self, message: Message) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.shared().send_unchecked(&message, false).await
    }
}

/// Opens the transport, sends HELLO and waits for WELCOME.
async fn join(
    endpoint: &Endpoint,
    realm: &str,
    options: &ConnectOptions,
) -> Result<(Connection, u64, Dict), Error> {
    let serializer = options.serializer;
    let mut connection =
        transport::connect(endpoint, serializer, options.max_message_size, &options.tls).await?;
    async fn send(
        connection: &mut Connection,
        serializer: Serializer,
        message: &Message,
    ) -> Result<(), Error> {
        let bytes =
            wamp_proto::encode(message, serializer).map_err(|e| Error::Encode(e.to_string()))?;
        connection.writer.feed(Outgoing::Message(bytes)).await?;
        connection.writer.flush().await
    }
    let mut handshake = match crate::auth::Handshake::new(options, connection.tls_exporter) {
        Ok(handshake) => handshake,
        Err(text) => {
            let _ = connection.writer.close().await;
            return Err(Error::Unsupported(text));
        }
    };
    let mut hello = options.hello(realm);
    let authextra = handshake.authextra();
    if let (Message::Hello { details, .. }, false) = (&mut hello, authextra.is_empty()) {
        // Entries set through `hello_details` win.
        let mut merged = authextra;
        if let Some(Value::Dict(given)) = details.get("authextra") {
            merged.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        details.insert("authextra".into(), Value::Dict(merged));
    }
    send(&mut connection, serializer, &hello).await?;
    loop {
        let bytes = match connection.reader.next().await? {
            None => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the router closed the connection before WELCOME",
                )))
            }
            Some(Incoming::Ping(payload)) => {
                connection.writer.feed(Outgoing::Pong(payload)).await?;
                connection.writer.flush().await?;
                continue;
            }
            Some(Incoming::Message(bytes)) => bytes,
        };
        let violation = match wamp_proto::decode(serializer, &bytes) {
            Ok(Message::Welcome { session, details }) => match handshake.check_welcome(&details) {
                Ok(()) => return Ok((connection, session, details)),
                Err(text) => {
                    // The router joined us, but could not prove it knows our keys.
                    let _ = send(
                        &mut connection,
                        serializer,
                        &Message::goodbye("wamp.close.close_realm"),
                    )
                    .await;
                    let _ = connection.writer.close().await;
                    return Err(Error::Protocol(text));
                }
            },
            Ok(Message::Abort {
                details, reason, ..
            }) => {
                return Err(Error::Abort {
                    reason,
                    message: message_of(&details),
                })
            }
            Ok(Message::Challenge { method, extra }) => match handshake.answer(&method, &extra) {
                Ok((signature, extra)) => {
                    let authenticate = Message::Authenticate { signature, extra };
                    send(&mut connection, serializer, &authenticate).await?;
                    continue;
                }
                Err(text) => {
                    let reason = "wamp.error.cannot_authenticate";
                    let _ = send(&mut connection, serializer, &Message::abort(reason, &text)).await;
                    let _ = connection.writer.close().await;
                    return Err(Error::Abort {
                        reason: reason.to_owned(),
                        message: Some(text),
                    });
                }
            },
            Ok(other) => format!("{} before WELCOME", other.message_type().name()),
            Err(e) => format!("cannot decode the router's answer to HELLO: {e}"),
        };
        let _ = send(
            &mut connection,
            serializer,
            &Message::abort(error_uri::PROTOCOL_VIOLATION, &violation),
        )
        .await;
        let _ = connection.writer.close().await;
        return Err(Error::Protocol(violation));
    }
}
