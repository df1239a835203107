//! One transport connection's WAMP session state machine.
//!
//! The transport feeds every received message to [`Connection::handle_bytes`] and
//! writes whatever appears in the connection's [`Outbox`]. Everything a peer can send
//! is answered here: session opening and closing, the broker and dealer messages, and
//! protocol violations, which end this session only.

use std::sync::Arc;

use bytes::Bytes;
use wamp_proto::error_uri::{self as uri_err};
use wamp_proto::message::{Id, MessageType};
use wamp_proto::uri::{is_valid_uri, MatchPolicy};
use wamp_proto::{decode, dict, random_id, Dict, Message, Payload, Serializer, Value};

use crate::dealer::{CallRefused, PendingCall, RegisterError};
use crate::outbox::Outbox;
use crate::realm::Realm;
use crate::session::SessionHandle;
use crate::{CallLimits, IdSet, Router};

/// A CALL refused because its callee has as many invocations in flight as it accepts
/// (`REGISTER.Options.concurrency`, or the router's per-callee bound). The URI is
/// Crossbar.io's, so clients written for it understand it.
pub const MAX_CONCURRENCY_REACHED: &str = "crossbar.error.max_concurrency_reached";

/// A CALL refused because the caller has as many calls in flight as the router allows.
pub const TOO_MANY_CALLS: &str = "junction.error.too_many_calls";

/// What the transport should do after a message was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop reading; write out what is queued and close the transport.
    Close,
}

struct Joined {
    realm: Arc<Realm>,
    handle: Arc<SessionHandle>,
    subscriptions: IdSet<Id>,
    registrations: IdSet<Id>,
}

enum State {
    /// Waiting for HELLO (also after a GOODBYE: a transport may carry another session).
    AwaitingHello,
    Joined(Box<Joined>),
    Closed,
}

/// The router side of one transport connection.
pub struct Connection {
    router: Arc<Router>,
    link: Link,
    state: State,
}

/// This connection's own way back to its peer.
struct Link {
    serializer: Serializer,
    max_message_size: usize,
    outbox: Arc<Outbox>,
}

impl Link {
    fn send(&self, message: &Message) {
        match encode_sized(message, self.serializer, self.max_message_size) {
            Some(bytes) => {
                // A refused push means the connection is closing already.
                let _ = self.outbox.push(bytes);
            }
            None => tracing::warn!(
                message = message.message_type().name(),
                "reply not encodable within the transport limit"
            ),
        }
    }

    fn send_last(&self, message: &Message) {
        match encode_sized(message, self.serializer, self.max_message_size) {
            Some(bytes) => self.outbox.push_last(bytes),
            None => self.outbox.close(),
        }
    }

    fn error(&self, request_type: MessageType, request: Id, uri: &str, message: &str) {
        let payload = if message.is_empty() {
            Payload::empty()
        } else {
            Payload::from_args(vec![Value::from(message)])
        };
        self.send(&Message::error(request_type, request, uri, payload));
    }
}

impl Connection {
    pub(crate) fn new(
        router: Arc<Router>,
        serializer: Serializer,
        max_message_size: usize,
        outbox: Arc<Outbox>,
    ) -> Self {
        Connection {
            router,
            link: Link {
                serializer,
                max_message_size,
                outbox,
            },
            state: State::AwaitingHello,
        }
    }

    /// The session id, once joined.
    pub fn session_id(&self) -> Option<Id> {
        match &self.state {
            State::Joined(j) => Some(j.handle.id),
            _ => None,
        }
    }

    /// The serializer this connection speaks.
    pub fn serializer(&self) -> Serializer {
        self.link.serializer
    }

    /// Handles one received message in the connection's serializer.
    pub fn handle_bytes(&mut self, bytes: Bytes) -> Flow {
        match decode(self.link.serializer, &bytes) {
            Ok(message) => self.handle(message),
            Err(e) => self.protocol_violation(&format!("cannot decode message: {e}")),
        }
    }

    /// Handles one received message.
    pub fn handle(&mut self, message: Message) -> Flow {
        match &mut self.state {
            State::Closed => Flow::Close,
            State::AwaitingHello => match message {
                Message::Hello { realm, details } => self.hello(&realm, &details),
                Message::Abort { .. } => {
                    self.state = State::Closed;
                    Flow::Close
                }
                other => self.protocol_violation(&format!(
                    "{} received before the session was established",
                    other.message_type().name()
                )),
            },
            State::Joined(_) => self.joined(message),
        }
    }

    /// Ends the session because the transport saw something invalid (for example a
    /// message over the size limit): ABORT with `wamp.error.protocol_violation`.
    pub fn fail(&mut self, why: &str) -> Flow {
        self.protocol_violation(why)
    }

    /// The router is stopping: a joined session gets GOODBYE
    /// (`wamp.close.system_shutdown`), and the connection closes once it is written.
    pub fn shutdown(&mut self) {
        match &self.state {
            State::Joined(_) => {
                self.link
                    .send_last(&Message::goodbye(uri_err::CLOSE_SYSTEM_SHUTDOWN));
                self.leave();
                self.state = State::Closed;
            }
            _ => self.link.outbox.close(),
        }
    }

    /// The transport is gone (or closing): leave the realm and drop the session.
    pub fn transport_closed(&mut self) {
        self.leave();
        self.state = State::Closed;
    }

    fn protocol_violation(&mut self, why: &str) -> Flow {
        tracing::debug!(session = ?self.session_id(), why, "protocol violation");
        self.leave();
        self.link
            .send_last(&Message::abort(uri_err::PROTOCOL_VIOLATION, why));
        self.state = State::Closed;
        Flow::Close
    }

    fn hello(&mut self, realm_name: &str, details: &Dict) -> Flow {
        let roles_ok = details
            .get("roles")
            .and_then(Value::as_dict)
            .is_some_and(|r| !r.is_empty() && r.values().all(|v| v.as_dict().is_some()));
        if !roles_ok {
            return self
                .protocol_violation("HELLO.Details.roles must be a non-empty dict of dicts");
        }
        if self.router.is_shutting_down() {
            self.link.send_last(&Message::abort(
                uri_err::CLOSE_SYSTEM_SHUTDOWN,
                "the router is shutting down",
            ));
            self.state = State::Closed;
            return Flow::Close;
        }
        let Some(realm) = self.router.realm(realm_name) else {
            self.link.send_last(&Message::abort(
                uri_err::NO_SUCH_REALM,
                &format!("no realm named '{realm_name}'"),
            ));
            self.state = State::Closed;
            return Flow::Close;
        };
        // Only anonymous authentication exists so far.
        if let Some(methods) = details.get("authmethods") {
            let offers_anonymous = methods
                .as_list()
                .is_some_and(|l| l.iter().any(|m| m.as_str() == Some("anonymous")));
            if !offers_anonymous {
                self.link.send_last(&Message::abort(
                    "wamp.error.no_matching_auth_method",
                    "this router accepts anonymous authentication only",
                ));
                self.state = State::Closed;
                return Flow::Close;
            }
        }
        let handle = {
            let mut sessions = realm.sessions.write();
            let id = loop {
                let candidate = random_id();
                if !sessions.contains_key(&candidate) {
                    break candidate;
                }
            };
            let handle = Arc::new(SessionHandle::new(
                id,
                self.link.serializer,
                self.link.max_message_size,
                (
                    format!("anonymous-{id}"),
                    "anonymous".to_owned(),
                    "anonymous".to_owned(),
                ),
                self.link.outbox.clone(),
            ));
            sessions.insert(id, handle.clone());
            handle
        };
        let welcome = Message::Welcome {
            session: handle.id,
            details: dict! {
                "realm" => realm_name,
                "authid" => handle.authid.as_str(),
                "authrole" => handle.authrole.as_str(),
                "authmethod" => handle.authmethod.as_str(),
                "authprovider" => "static",
                "agent" => crate::AGENT,
                "roles" => crate::roles::router_roles(),
            },
        };
        self.link.send(&welcome);
        tracing::debug!(session = handle.id, realm = realm_name, "session joined");
        self.state = State::Joined(Box::new(Joined {
            realm,
            handle,
            subscriptions: IdSet::default(),
            registrations: IdSet::default(),
        }));
        Flow::Continue
    }

    /// Leaves the realm: removes the session from every table and ends its calls.
    fn leave(&mut self) {
        let State::Joined(joined) = std::mem::replace(&mut self.state, State::AwaitingHello) else {
            return;
        };
        let Joined {
            realm,
            handle,
            subscriptions,
            ..
        } = *joined;
        {
            let mut broker = realm.broker.write();
            for sub in subscriptions {
                broker.unsubscribe(sub, handle.id);
            }
        }
        let orphaned = realm.dealer.lock().remove_session(handle.id);
        for call in orphaned {
            let error = Message::error(
                MessageType::Call,
                call.call_request,
                uri_err::CANCELED,
                Payload::from_args(vec![Value::from(
                    "callee left while the call was in flight",
                )]),
            );
            let _ = call.caller.send(&error);
        }
        realm.sessions.write().remove(&handle.id);
        tracing::debug!(session = handle.id, "session left");
    }

    fn joined(&mut self, message: Message) -> Flow {
        let State::Joined(j) = &mut self.state else {
            return Flow::Close;
        };
        match message {
            Message::Publish {
                request,
                options,
                topic,
                payload,
            } => {
                let acknowledge = options.get("acknowledge").and_then(Value::as_bool) == Some(true);
                if !valid_application_uri(&topic, j.realm.config.uri_rule) {
                    if acknowledge {
                        self.link.error(
                            MessageType::Publish,
                            request,
                            uri_err::INVALID_URI,
                            &format!("invalid topic URI '{topic}'"),
                        );
                    }
                    return Flow::Continue;
                }
                let exclude_me = options.get("exclude_me").and_then(Value::as_bool) != Some(false);
                let publication = random_id();
                if acknowledge {
                    self.link.send(&Message::Published {
                        request,
                        publication,
                    });
                }
                let exclude = exclude_me.then_some(j.handle.id);
                j.realm
                    .broker
                    .read()
                    .publish(&topic, publication, &payload, exclude);
                Flow::Continue
            }
            Message::Subscribe {
                request,
                options,
                topic,
            } => {
                if let Some(policy) = unsupported_match(&options) {
                    self.link.error(
                        MessageType::Subscribe,
                        request,
                        uri_err::INVALID_ARGUMENT,
                        &format!("match policy '{policy}' is not supported"),
                    );
                    return Flow::Continue;
                }
                if !is_valid_uri(&topic, j.realm.config.uri_rule) {
                    self.link.error(
                        MessageType::Subscribe,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid topic URI '{topic}'"),
                    );
                    return Flow::Continue;
                }
                // SUBSCRIBED is queued under the table lock so it precedes any EVENT.
                let mut broker = j.realm.broker.write();
                let subscription = broker.subscribe(&topic, &j.handle);
                j.subscriptions.insert(subscription);
                let _ = j.handle.send(&Message::Subscribed {
                    request,
                    subscription,
                });
                Flow::Continue
            }
            Message::Unsubscribe {
                request,
                subscription,
                ..
            } => {
                if !j.subscriptions.remove(&subscription) {
                    self.link.error(
                        MessageType::Unsubscribe,
                        request,
                        uri_err::NO_SUCH_SUBSCRIPTION,
                        "",
                    );
                    return Flow::Continue;
                }
                j.realm
                    .broker
                    .write()
                    .unsubscribe(subscription, j.handle.id);
                self.link.send(&Message::Unsubscribed {
                    request,
                    details: None,
                });
                Flow::Continue
            }
            Message::Register {
                request,
                options,
                procedure,
            } => {
                if let Some(policy) = unsupported_match(&options) {
                    self.link.error(
                        MessageType::Register,
                        request,
                        uri_err::INVALID_ARGUMENT,
                        &format!("match policy '{policy}' is not supported"),
                    );
                    return Flow::Continue;
                }
                if !valid_application_uri(&procedure, j.realm.config.uri_rule) {
                    self.link.error(
                        MessageType::Register,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid procedure URI '{procedure}'"),
                    );
                    return Flow::Continue;
                }
                // The message parser has checked that it is an integer ≥ 1.
                let concurrency = options
                    .get("concurrency")
                    .and_then(Value::as_u64)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                let mut dealer = j.realm.dealer.lock();
                match dealer.register(&procedure, &j.handle, concurrency) {
                    Ok(registration) => {
                        j.registrations.insert(registration);
                        let _ = j.handle.send(&Message::Registered {
                            request,
                            registration,
                        });
                    }
                    Err(RegisterError::AlreadyExists) => {
                        drop(dealer);
                        self.link.error(
                            MessageType::Register,
                            request,
                            uri_err::PROCEDURE_ALREADY_EXISTS,
                            &format!("'{procedure}' is already registered"),
                        );
                    }
                }
                Flow::Continue
            }
            Message::Unregister {
                request,
                registration,
                ..
            } => {
                let removed = j.registrations.remove(&registration)
                    && j.realm.dealer.lock().unregister(registration, j.handle.id);
                if removed {
                    self.link.send(&Message::Unregistered {
                        request,
                        details: None,
                    });
                } else {
                    self.link.error(
                        MessageType::Unregister,
                        request,
                        uri_err::NO_SUCH_REGISTRATION,
                        "",
                    );
                }
                Flow::Continue
            }
            Message::Call {
                request,
                procedure,
                payload,
                ..
            } => {
                if !is_valid_uri(&procedure, j.realm.config.uri_rule) {
                    self.link.error(
                        MessageType::Call,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid procedure URI '{procedure}'"),
                    );
                    return Flow::Continue;
                }
                let outcome = call(
                    &j.realm,
                    &self.router.call_limits,
                    &j.handle,
                    request,
                    &procedure,
                    payload,
                );
                if let Err((uri, text)) = outcome {
                    self.link.error(MessageType::Call, request, uri, &text);
                }
                Flow::Continue
            }
            Message::Yield {
                request, payload, ..
            } => {
                let pending = j.realm.dealer.lock().finish_call(j.handle.id, request);
                // An answer to a call that already ended (caller gone) is dropped quietly.
                if let Some(call) = pending {
                    let result = Message::Result {
                        request: call.call_request,
                        details: Dict::new(),
                        payload,
                    };
                    deliver_to_caller(&call, &result);
                }
                Flow::Continue
            }
            Message::Error {
                request_type: MessageType::Invocation,
                request,
                details,
                error,
                payload,
            } => {
                let pending = j.realm.dealer.lock().finish_call(j.handle.id, request);
                if let Some(call) = pending {
                    let error = Message::Error {
                        request_type: MessageType::Call,
                        request: call.call_request,
                        details,
                        error,
                        payload,
                    };
                    deliver_to_caller(&call, &error);
                }
                Flow::Continue
            }
            Message::Goodbye { .. } => {
                self.leave();
                self.link
                    .send(&Message::goodbye(uri_err::CLOSE_GOODBYE_AND_OUT));
                Flow::Continue
            }
            Message::Abort { .. } => {
                self.leave();
                self.state = State::Closed;
                Flow::Close
            }
            // Not announced yet; ignoring them is harmless.
            Message::Cancel { .. } | Message::EventReceived { .. } => Flow::Continue,
            other => {
                let name = other.message_type().name();
                let why = match other {
                    Message::Hello { .. } => "HELLO received in an established session".to_owned(),
                    Message::Error { request_type, .. } => format!(
                        "ERROR for {} may not be sent by a client",
                        request_type.name()
                    ),
                    _ => format!("{name} may not be sent by a client"),
                };
                self.protocol_violation(&why)
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.leave();
    }
}

fn encode_sized(message: &Message, serializer: Serializer, limit: usize) -> Option<Bytes> {
    wamp_proto::encode(message, serializer)
        .ok()
        .filter(|b| b.len() <= limit)
}

/// Topics and procedures that clients publish or register must be valid and must
/// not use the reserved `wamp.` namespace.
fn valid_application_uri(uri: &str, rule: wamp_proto::uri::UriRule) -> bool {
    is_valid_uri(uri, rule) && !uri.starts_with("wamp.")
}

/// A `match` option other than `exact` (pattern matching is not implemented yet).
fn unsupported_match(options: &Dict) -> Option<String> {
    let policy = options.get("match")?.as_str()?;
    match MatchPolicy::parse(policy) {
        Some(MatchPolicy::Exact) => None,
        _ => Some(policy.to_owned()),
    }
}

/// Routes a CALL to its callee. On failure returns the error URI and text for the caller.
fn call(
    realm: &Realm,
    limits: &CallLimits,
    caller: &Arc<SessionHandle>,
    request: Id,
    procedure: &str,
    payload: Payload,
) -> Result<(), (&'static str, String)> {
    let mut dealer = realm.dealer.lock();
    let Some((registration, reg)) = dealer.lookup(procedure) else {
        return Err((
            uri_err::NO_SUCH_PROCEDURE,
            format!("no callee registered for '{procedure}'"),
        ));
    };
    let callee = reg.callee.clone();
    let invocation = callee.next_invocation_id();
    let message = Message::Invocation {
        request: invocation,
        registration,
        details: Dict::new(),
        payload,
    };
    let bytes = match callee.encode(&message) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err((
                uri_err::PAYLOAD_SIZE_EXCEEDED,
                format!("cannot deliver the call to its callee: {e}"),
            ))
        }
    };
    let started = dealer.start_call(
        invocation,
        PendingCall {
            caller: caller.clone(),
            callee: callee.clone(),
            call_request: request,
            registration,
        },
        limits,
    );
    match started {
        Ok(()) => {}
        Err(CallRefused::CallerBusy) => {
            return Err((
                TOO_MANY_CALLS,
                format!(
                    "this session already has {} calls in flight",
                    limits.per_caller
                ),
            ))
        }
        Err(CallRefused::CalleeBusy) => {
            return Err((
                MAX_CONCURRENCY_REACHED,
                format!("the callee of '{procedure}' has as many calls in flight as it accepts"),
            ))
        }
    }
    // If the callee's queue refuses it, the callee is on its way out and its
    // departure ends this call with `canceled`.
    let _ = callee.send_encoded(bytes);
    Ok(())
}

/// Sends a RESULT or ERROR to a caller; one too large for the caller's transport
/// becomes an ERROR saying so.
fn deliver_to_caller(call: &PendingCall, message: &Message) {
    match call.caller.encode(message) {
        Ok(bytes) => {
            let _ = call.caller.send_encoded(bytes);
        }
        Err(e) => {
            let error = Message::error(
                MessageType::Call,
                call.call_request,
                uri_err::PAYLOAD_SIZE_EXCEEDED,
                Payload::from_args(vec![Value::from(e.to_string())]),
            );
            let _ = call.caller.send(&error);
        }
    }
}
