//! One transport connection's WAMP session state machine.
//!
//! The transport feeds every received message to [`Connection::handle_bytes`] and
//! writes whatever appears in the connection's [`Outbox`]. Everything a peer can send
//! is answered here: session opening and closing, the broker and dealer messages, and
//! protocol violations, which end this session only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wamp_proto::error_uri::{self as uri_err};
use wamp_proto::message::{Id, MessageType};
use wamp_proto::uri::{is_valid_pattern, is_valid_uri, MatchPolicy, UriRule};
use wamp_proto::{decode, dict, random_id, Dict, Message, Payload, Serializer, Value};

use crate::auth::RealmAuth;
use crate::auth::{Action, Role};
use crate::authenticator::{principal_from_answer, Credentials, Principal};
use crate::authorizer::{DynamicAuthorizer, Verdict, AUTHORIZATION_FAILED};
use crate::broker::{PublishOptions, PASSTHRU_KEYS};
use crate::dealer::{
    call_error, CallRefused, CallState, CancelMode, Chunk, InvokePolicy, PendingCall, Progress,
    RegisterError, RegisterOptions, DIFFERENT_INVOCATION_POLICY, FEATURE_NOT_SUPPORTED,
};
use crate::internal_call::{Answer, InternalCall};
use crate::outbox::Outbox;
use crate::procedures;
use crate::realm::Realm;
use crate::session::{PeerFeatures, SessionHandle};
use crate::transport::TransportInfo;
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
    /// The session's compiled role; `None`: no authorization on this realm.
    role: Option<Arc<Role>>,
    subscriptions: IdSet<Id>,
    registrations: IdSet<Id>,
}

enum State {
    /// Waiting for HELLO (also after a GOODBYE: a transport may carry another session).
    AwaitingHello,
    /// CHALLENGE sent, waiting for AUTHENTICATE. No session exists yet.
    Authenticating(Box<Pending>),
    Joined(Box<Joined>),
    Closed,
}

/// A session being authenticated.
struct Pending {
    realm: Arc<Realm>,
    /// The id the session will get (WAMP-CRA puts it in the challenge).
    session: Id,
    authid: String,
    method: Method,
    peer_roles: Dict,
    /// When the AUTHENTICATE must have arrived.
    deadline: Instant,
}

enum Method {
    Ticket,
    /// The challenge string sent.
    Cra(String),
    Cryptosign(crate::auth::cryptosign::Pending),
    Scram(crate::auth::scram::Pending),
    /// Ticket checked by the dynamic authenticator; HELLO.Details for it.
    DynamicTicket(Dict),
    /// A challenge-response method with what the dynamic authenticator gave:
    /// the method's state and who the session will be.
    Dynamic(DynamicState, Box<Principal>),
}

/// A dynamically authenticated challenge in progress.
enum DynamicState {
    /// The WAMP-CRA challenge string sent.
    Cra(String),
    Cryptosign(crate::auth::cryptosign::Pending),
    Scram(crate::auth::scram::Pending),
}

/// A HELLO (or AUTHENTICATE) the dynamic authenticator was asked about.
struct Asked {
    realm: Arc<Realm>,
    session: Id,
    authid: String,
    method: &'static str,
    peer_roles: Dict,
    hello: Dict,
}

/// What a connection waiting for a router-initiated call does with the answer.
enum Parked {
    /// The dynamic authenticator decides who the session is.
    Authenticator {
        realm: Arc<Realm>,
        session: Id,
        authid: String,
        method: &'static str,
        peer_roles: Dict,
        /// HELLO.Details (the cryptosign key, the SCRAM nonce).
        hello: Dict,
    },
    /// The dynamic authorizer decides whether `message` may go ahead.
    Authorizer {
        message: Message,
        action: Action,
        /// The cache key of the answer ([`authorizer_key`]).
        key: String,
        authorizer: Arc<DynamicAuthorizer>,
    },
}

/// Most messages kept while waiting for a router-initiated call (the transport
/// normally stops reading instead).
const MAX_HELD: usize = 1024;

/// The outcome of a dynamic authorization check.
enum Gate {
    Allow { disclose: bool },
    Deny(&'static str),
    Ask(Arc<DynamicAuthorizer>),
}

/// Asked only when the role's static permissions refused: a role with a dynamic
/// authorizer decides from the verdict just received (`grant`), the cache, or by
/// asking. Roles without one deny.
fn dynamic_gate(
    role: &Option<Arc<Role>>,
    grant: &mut Option<Verdict>,
    action: Action,
    key: &str,
) -> Gate {
    let Some(authorizer) = role.as_ref().and_then(|r| r.authorizer()) else {
        return Gate::Deny(uri_err::NOT_AUTHORIZED);
    };
    let verdict = match grant.take() {
        Some(verdict) => verdict,
        None => match authorizer.cached(action, key) {
            Some(grant) => Ok(grant),
            None => return Gate::Ask(authorizer.clone()),
        },
    };
    match verdict {
        Ok(g) if g.allow => Gate::Allow {
            disclose: g.disclose,
        },
        Ok(_) => Gate::Deny(uri_err::NOT_AUTHORIZED),
        Err(_) => Gate::Deny(AUTHORIZATION_FAILED),
    }
}

/// The authorizer-cache key of a request on `uri` with match `policy`: the URI
/// itself for an exact match, else the policy and the URI (a space cannot be in a
/// URI). A decision on a topic or procedure does not stand for a prefix or
/// wildcard pattern spelt the same, which reaches other URIs.
fn authorizer_key(uri: &str, policy: MatchPolicy) -> std::borrow::Cow<'_, str> {
    match policy {
        MatchPolicy::Exact => uri.into(),
        other => format!("{} {uri}", other.as_str()).into(),
    }
}

/// ABORT reason when no offered method is accepted (the spec's URI).
pub const NO_MATCHING_AUTH_METHOD: &str = "wamp.error.no_matching_auth_method";

/// Whether the session's role permission for `uri` discloses the caller
/// (`caller`) or publisher.
fn discloses(role: &Option<Arc<Role>>, uri: &str, caller: bool) -> bool {
    match role {
        Some(r) if !r.is_allow_all() => r.permission(uri).is_some_and(|p| {
            if caller {
                p.disclose_caller
            } else {
                p.disclose_publisher
            }
        }),
        _ => false,
    }
}

/// Whether the session's role allows `action` on `uri`.
fn allowed(role: &Option<Arc<Role>>, action: Action, uri: &str) -> bool {
    role.as_ref().is_none_or(|r| r.allows(action, uri))
}

/// The router side of one transport connection.
pub struct Connection {
    router: Arc<Router>,
    link: Link,
    state: State,
    /// A router-initiated call whose answer this connection waits for, until the
    /// transport takes it ([`Connection::take_wait`]).
    wait: Option<InternalCall>,
    /// What to do with that answer ([`Connection::resume`]).
    parked: Option<Parked>,
    /// Messages received while waiting, handled after the answer.
    held: VecDeque<Message>,
    /// The authorizer's verdict for the message being handled again.
    grant: Option<Verdict>,
    transport: TransportInfo,
    /// When the first HELLO must have arrived; `None` once it has.
    hello_deadline: Option<Instant>,
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

    /// Answers a request with an ERROR and keeps the session going.
    fn refuse(&self, request_type: MessageType, request: Id, uri: &str, message: &str) -> Flow {
        self.error(request_type, request, uri, message);
        Flow::Continue
    }
}

impl Connection {
    pub(crate) fn new(
        router: Arc<Router>,
        serializer: Serializer,
        max_message_size: usize,
        outbox: Arc<Outbox>,
        transport: TransportInfo,
    ) -> Self {
        let hello_deadline = Some(Instant::now() + router.auth_timeout);
        Connection {
            router,
            link: Link {
                serializer,
                max_message_size,
                outbox,
            },
            state: State::AwaitingHello,
            wait: None,
            parked: None,
            held: VecDeque::new(),
            grant: None,
            transport,
            hello_deadline,
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
        if self.parked.is_some() {
            // Order is kept: it waits for the answer the connection waits for.
            if self.held.len() >= MAX_HELD {
                return self.protocol_violation("too many messages while a decision is pending");
            }
            self.held.push_back(message);
            return Flow::Continue;
        }
        match &mut self.state {
            State::Closed => Flow::Close,
            State::AwaitingHello => match message {
                Message::Hello { realm, details } => {
                    self.hello_deadline = None;
                    self.hello(&realm, &details)
                }
                Message::Abort { .. } => {
                    self.state = State::Closed;
                    Flow::Close
                }
                other => self.protocol_violation(&format!(
                    "{} received before the session was established",
                    other.message_type().name()
                )),
            },
            State::Authenticating(_) => match message {
                Message::Authenticate { signature, extra } => self.authenticate(&signature, &extra),
                Message::Abort { .. } => {
                    self.state = State::Closed;
                    Flow::Close
                }
                other => self.protocol_violation(&format!(
                    "{} received while authenticating",
                    other.message_type().name()
                )),
            },
            State::Joined(_) => self.joined(message),
        }
    }

    /// Whether the connection waits for a router-initiated call (an authenticator
    /// or authorizer): the transport should stop reading and wait for
    /// [`take_wait`](Self::take_wait)'s answer.
    pub fn is_waiting(&self) -> bool {
        self.parked.is_some()
    }

    /// The router-initiated call to wait for, once; give its answer to
    /// [`resume`](Self::resume).
    pub fn take_wait(&mut self) -> Option<InternalCall> {
        self.wait.take()
    }

    /// Carries on with the answer of the call from [`take_wait`](Self::take_wait),
    /// then with messages that arrived meanwhile.
    pub fn resume(&mut self, answer: Answer) -> Flow {
        let Some(parked) = self.parked.take() else {
            return Flow::Continue;
        };
        let mut flow = match parked {
            Parked::Authenticator {
                realm,
                session,
                authid,
                method,
                peer_roles,
                hello,
            } => {
                let asked = Asked {
                    realm,
                    session,
                    authid,
                    method,
                    peer_roles,
                    hello,
                };
                self.authenticator_answered(asked, answer)
            }
            Parked::Authorizer {
                message,
                action,
                key,
                authorizer,
            } => {
                self.grant = Some(authorizer.verdict(answer, action, &key));
                let flow = if matches!(self.state, State::Joined(_)) {
                    self.joined(message)
                } else {
                    Flow::Continue
                };
                self.grant = None;
                flow
            }
        };
        while flow == Flow::Continue && self.parked.is_none() {
            let Some(message) = self.held.pop_front() else {
                break;
            };
            flow = self.handle(message);
        }
        flow
    }

    /// Asks the realm's dynamic authenticator about a session being opened.
    #[allow(clippy::too_many_arguments)]
    fn ask_authenticator(
        &mut self,
        realm: Arc<Realm>,
        session: Id,
        authid: String,
        method: &'static str,
        hello: &Dict,
        peer_roles: Dict,
        ticket: Option<&str>,
    ) -> Flow {
        let Some(dynamic) = realm.config.auth.dynamic.as_ref() else {
            return self.abort(
                crate::authenticator::AUTHENTICATION_FAILED,
                "no authenticator",
            );
        };
        let args = crate::authenticator::authenticator_args(
            realm.name(),
            &authid,
            method,
            session,
            hello,
            ticket,
            self.transport.details(self.link.serializer),
        );
        let target = dynamic.realm.as_deref().unwrap_or(realm.name());
        self.wait = Some(InternalCall::start_checked(
            &self.router,
            target,
            &dynamic.procedure,
            args,
            dynamic.timeout,
            dynamic.callee_role.as_deref(),
        ));
        self.state = State::AwaitingHello;
        self.parked = Some(Parked::Authenticator {
            realm,
            session,
            authid,
            method,
            peer_roles,
            hello: hello.clone(),
        });
        Flow::Continue
    }

    fn authenticator_answered(&mut self, asked: Asked, answer: Answer) -> Flow {
        let Asked {
            realm,
            session,
            authid,
            method,
            peer_roles,
            hello,
        } = asked;
        let principal = match principal_from_answer(answer, method, &authid, &realm.config.auth) {
            Ok(principal) => principal,
            Err(refusal) => {
                tracing::info!(realm = realm.name(), method, reason = %refusal.uri, "dynamic authentication refused");
                // A broken authenticator is not the peer's failure; a refusal is.
                if refusal.uri != crate::authenticator::AUTHENTICATION_FAILED {
                    self.record_auth_failure();
                }
                return self.abort(&refusal.uri, &refusal.message);
            }
        };
        let hello_extra = hello.get("authextra").and_then(Value::as_dict);
        // Cryptosign and SCRAM run their usual challenge, against a stand-in
        // realm holding just the user the authenticator described.
        let (challenge_method, extra, method_state) = match &principal.credentials {
            Credentials::None => {
                tracing::debug!(realm = realm.name(), method, "authenticated (dynamic)");
                return self.welcome_as(realm, session, principal, method, &peer_roles, None);
            }
            Credentials::Cra { .. } => {
                return self.dynamic_cra(realm, session, principal, peer_roles)
            }
            Credentials::Cryptosign { pubkey } => {
                let mut one = RealmAuth::default();
                one.cryptosign.insert(
                    authid.clone(),
                    crate::auth::CryptosignUser {
                        role: principal.role.clone(),
                        pubkeys: vec![*pubkey],
                    },
                );
                let hello_key = hello_extra
                    .and_then(|e| e.get("pubkey"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // (`can_start` checked the binding at HELLO.)
                let binding = crate::auth::cryptosign::binding(hello_extra, &self.transport);
                let Some(pending) = binding.and_then(|binding| {
                    crate::auth::cryptosign::start(&one, Some(authid.as_str()), hello_key, binding)
                }) else {
                    return self.protocol_violation("cryptosign HELLO without a valid pubkey");
                };
                let extra = pending.challenge_extra();
                ("cryptosign", extra, DynamicState::Cryptosign(pending))
            }
            Credentials::Scram(user) => {
                let mut one = RealmAuth::default();
                one.scram.insert(authid.clone(), (**user).clone());
                let Some((pending, extra)) =
                    crate::auth::scram::start(&one, method, &authid, hello_extra)
                else {
                    return self.protocol_violation("SCRAM HELLO without a valid nonce");
                };
                (method, extra, DynamicState::Scram(pending))
            }
        };
        self.link.send(&Message::Challenge {
            method: challenge_method.into(),
            extra,
        });
        self.state = State::Authenticating(Box::new(Pending {
            realm,
            session,
            authid,
            method: Method::Dynamic(method_state, Box::new(principal)),
            peer_roles,
            deadline: Instant::now() + self.router.auth_timeout,
        }));
        Flow::Continue
    }

    /// WAMP-CRA with the secret a dynamic authenticator gave: the usual challenge.
    fn dynamic_cra(
        &mut self,
        realm: Arc<Realm>,
        session: Id,
        principal: Principal,
        peer_roles: Dict,
    ) -> Flow {
        let Credentials::Cra { salt, .. } = &principal.credentials else {
            return self.abort(crate::authenticator::AUTHENTICATION_FAILED, "no secret");
        };
        let challenge = crate::auth::cra_challenge(&principal.authid, &principal.role, session);
        let mut extra = dict! { "challenge" => challenge.as_str() };
        if let Some(salt) = salt {
            extra.insert("salt".into(), Value::from(salt.salt.as_str()));
            extra.insert("iterations".into(), Value::from(u64::from(salt.iterations)));
            extra.insert("keylen".into(), Value::from(u64::from(salt.keylen)));
        }
        self.link.send(&Message::Challenge {
            method: "wampcra".into(),
            extra,
        });
        self.state = State::Authenticating(Box::new(Pending {
            realm,
            session,
            authid: principal.authid.clone(),
            method: Method::Dynamic(DynamicState::Cra(challenge), Box::new(principal)),
            peer_roles,
            deadline: Instant::now() + self.router.auth_timeout,
        }));
        Flow::Continue
    }

    /// Ends the opening session with ABORT.
    fn abort(&mut self, reason: &str, message: &str) -> Flow {
        self.link.send_last(&Message::abort(reason, message));
        self.state = State::Closed;
        Flow::Close
    }

    /// Waits for the authorizer's decision on `message`.
    #[allow(clippy::too_many_arguments)]
    fn ask_authorizer(
        &mut self,
        authorizer: Arc<DynamicAuthorizer>,
        message: Message,
        action: Action,
        uri: &str,
        key: &str,
        options: Dict,
    ) -> Flow {
        let State::Joined(j) = &self.state else {
            return Flow::Continue;
        };
        let args = crate::authorizer::authorizer_args(
            j.realm.name(),
            &j.handle,
            uri,
            action,
            options,
            self.transport.details(self.link.serializer),
        );
        let target = authorizer.realm.as_deref().unwrap_or(j.realm.name());
        self.wait = Some(InternalCall::start_checked(
            &self.router,
            target,
            &authorizer.procedure,
            args,
            authorizer.timeout,
            authorizer.callee_role.as_deref(),
        ));
        self.parked = Some(Parked::Authorizer {
            message,
            action,
            key: key.to_owned(),
            authorizer,
        });
        Flow::Continue
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
        let auth = &realm.config.auth;
        let authid = details.get("authid").and_then(Value::as_str);
        // No `authmethods` means anonymous; methods this realm doesn't offer (or this
        // listener doesn't allow), or that need an authid the client didn't give (or,
        // for `tls`, a verified client certificate), are skipped.
        let offered: Vec<&str> = match details.get("authmethods") {
            None => vec!["anonymous"],
            Some(v) => v
                .as_list()
                .map(|l| l.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        };
        let cert_id = self.transport.client_cert_id.as_deref();
        let method = offered.into_iter().find(|m| {
            self.transport.allows(m)
                && match *m {
                    "tls" => auth.offers(m) && cert_id.is_some(),
                    _ => auth.can_start(m, details, &self.transport),
                }
        });
        let peer_roles = details
            .get("roles")
            .and_then(Value::as_dict)
            .cloned()
            .unwrap_or_default();
        let session = random_id();
        match method {
            Some(m) if m != "ticket" && auth.is_dynamic(m) => {
                let method = match m {
                    "anonymous" => "anonymous",
                    "tls" => "tls",
                    "wampcra" => "wampcra",
                    "cryptosign" => "cryptosign",
                    "scram" => "scram",
                    "wamp-scram" => "wamp-scram",
                    // A method only the library API could make dynamic.
                    _ => {
                        return self.abort(
                            NO_MATCHING_AUTH_METHOD,
                            "none of the offered authentication methods is accepted here",
                        )
                    }
                };
                if method == "tls" {
                    // The certificate names the principal; an authid in HELLO must agree.
                    let cert_id = cert_id.unwrap_or_default().to_owned();
                    if authid.is_some_and(|a| a != cert_id) {
                        return self.authentication_failed(&realm);
                    }
                    return self.ask_authenticator(
                        realm, session, cert_id, method, details, peer_roles, None,
                    );
                }
                let pubkey = details
                    .get("authextra")
                    .and_then(Value::as_dict)
                    .and_then(|e| e.get("pubkey"))
                    .and_then(Value::as_str);
                // (`can_start` made sure the methods that need an authid have one.)
                let authid = match (method, authid.filter(|a| !a.is_empty()), pubkey) {
                    (_, Some(a), _) => a.to_owned(),
                    ("cryptosign", None, Some(key)) => key.to_ascii_lowercase(),
                    _ => format!("anonymous-{session}"),
                };
                self.ask_authenticator(realm, session, authid, method, details, peer_roles, None)
            }
            Some("anonymous") => {
                let role = auth.anonymous.clone().unwrap_or_default();
                let authid = format!("anonymous-{session}");
                self.welcome(realm, session, authid, role, "anonymous", &peer_roles, None)
            }
            Some("tls") => {
                // The certificate names the principal; an authid in HELLO must agree.
                let cert_id = cert_id.unwrap_or_default().to_owned();
                let role = auth
                    .tls
                    .get(&cert_id)
                    .filter(|_| authid.is_none_or(|a| a == cert_id))
                    .cloned();
                match role {
                    Some(role) => {
                        tracing::debug!(realm = realm.name(), method = "tls", "authenticated");
                        self.welcome(realm, session, cert_id, role, "tls", &peer_roles, None)
                    }
                    None => self.authentication_failed(&realm),
                }
            }
            Some("ticket") => {
                let authid = authid.unwrap_or_default().to_owned();
                self.link.send(&Message::Challenge {
                    method: "ticket".into(),
                    extra: Dict::new(),
                });
                let method = if auth.is_dynamic("ticket") {
                    Method::DynamicTicket(details.clone())
                } else {
                    Method::Ticket
                };
                self.state = State::Authenticating(Box::new(Pending {
                    realm,
                    session,
                    authid,
                    method,
                    peer_roles,
                    deadline: Instant::now() + self.router.auth_timeout,
                }));
                Flow::Continue
            }
            Some("wampcra") => {
                let authid = authid.unwrap_or_default().to_owned();
                // An unknown authid gets a challenge too (and fails later), so the
                // reply does not tell which authids exist.
                let (role, salt) = auth.cra_challenge_params(&authid);
                let challenge = crate::auth::cra_challenge(&authid, &role, session);
                let mut extra = dict! { "challenge" => challenge.as_str() };
                if let Some(salt) = &salt {
                    extra.insert("salt".into(), Value::from(salt.salt.as_str()));
                    extra.insert("iterations".into(), Value::from(u64::from(salt.iterations)));
                    extra.insert("keylen".into(), Value::from(u64::from(salt.keylen)));
                }
                self.link.send(&Message::Challenge {
                    method: "wampcra".into(),
                    extra,
                });
                self.state = State::Authenticating(Box::new(Pending {
                    realm,
                    session,
                    authid,
                    method: Method::Cra(challenge),
                    peer_roles,
                    deadline: Instant::now() + self.router.auth_timeout,
                }));
                Flow::Continue
            }
            Some("cryptosign") => {
                let authextra = details.get("authextra").and_then(Value::as_dict);
                let pubkey = authextra
                    .and_then(|e| e.get("pubkey"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // (`can_start` checked the binding.)
                let binding = crate::auth::cryptosign::binding(authextra, &self.transport);
                let Some(pending) = binding.and_then(|binding| {
                    crate::auth::cryptosign::start(auth, authid, pubkey, binding)
                }) else {
                    return self.protocol_violation("cryptosign HELLO without a valid pubkey");
                };
                self.link.send(&Message::Challenge {
                    method: "cryptosign".into(),
                    extra: pending.challenge_extra(),
                });
                self.state = State::Authenticating(Box::new(Pending {
                    realm,
                    session,
                    authid: pending.authid.clone(),
                    method: Method::Cryptosign(pending),
                    peer_roles,
                    deadline: Instant::now() + self.router.auth_timeout,
                }));
                Flow::Continue
            }
            Some(name @ ("wamp-scram" | "scram")) => {
                let name = if name == "scram" {
                    "scram"
                } else {
                    "wamp-scram"
                };
                let authid = authid.unwrap_or_default().to_owned();
                let authextra = details.get("authextra").and_then(Value::as_dict);
                let Some((pending, extra)) =
                    crate::auth::scram::start(auth, name, &authid, authextra)
                else {
                    return self.protocol_violation("SCRAM HELLO without a valid nonce");
                };
                self.link.send(&Message::Challenge {
                    method: name.into(),
                    extra,
                });
                self.state = State::Authenticating(Box::new(Pending {
                    realm,
                    session,
                    authid,
                    method: Method::Scram(pending),
                    peer_roles,
                    deadline: Instant::now() + self.router.auth_timeout,
                }));
                Flow::Continue
            }
            _ => {
                self.link.send_last(&Message::abort(
                    NO_MATCHING_AUTH_METHOD,
                    "none of the offered authentication methods is accepted here",
                ));
                self.state = State::Closed;
                Flow::Close
            }
        }
    }

    /// When the pending authentication times out (a CHALLENGE was sent and no
    /// AUTHENTICATE came yet), or when the connection's first HELLO must have
    /// arrived; `None` otherwise.
    pub fn auth_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Authenticating(p) => Some(p.deadline),
            State::AwaitingHello if self.parked.is_none() => self.hello_deadline,
            _ => None,
        }
    }

    /// The transport's timer for [`auth_deadline`](Self::auth_deadline) ran out:
    /// ABORT (`wamp.error.not_authorized`, "authentication timed out") if the
    /// authentication is still pending. No HELLO in time: the transport is closed
    /// (there is no session to ABORT yet).
    pub fn auth_timed_out(&mut self) -> Flow {
        if matches!(self.state, State::AwaitingHello)
            && self.parked.is_none()
            && self.hello_deadline.is_some_and(|d| d <= Instant::now())
        {
            tracing::debug!("no HELLO in time, closing the transport");
            self.state = State::Closed;
            return Flow::Close;
        }
        if !matches!(&self.state, State::Authenticating(p) if p.deadline <= Instant::now()) {
            return Flow::Continue;
        }
        self.record_auth_failure();
        self.link.send_last(&Message::abort(
            uri_err::NOT_AUTHORIZED,
            "authentication timed out",
        ));
        self.state = State::Closed;
        Flow::Close
    }

    /// AUTHENTICATE: check the answer to the CHALLENGE; WELCOME or ABORT.
    fn authenticate(&mut self, signature: &str, extra: &Dict) -> Flow {
        let State::Authenticating(pending) = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Flow::Close;
        };
        let Pending {
            realm,
            session,
            authid,
            method,
            peer_roles,
            ..
        } = *pending;
        let method = match method {
            Method::DynamicTicket(hello) => {
                return self.ask_authenticator(
                    realm,
                    session,
                    authid,
                    "ticket",
                    &hello,
                    peer_roles,
                    Some(signature),
                );
            }
            Method::Dynamic(state, principal) => {
                let verified = match &state {
                    DynamicState::Cra(challenge) => {
                        matches!(&principal.credentials, Credentials::Cra { key, .. }
                            if crate::auth::cra_verify(key, challenge, signature))
                        .then_some(("wampcra", None))
                    }
                    DynamicState::Cryptosign(p) => {
                        p.verify(signature).map(|_| ("cryptosign", None))
                    }
                    DynamicState::Scram(p) => p
                        .verify(signature, extra)
                        .map(|(_, authextra)| (p.method, Some(authextra))),
                };
                let Some((method, method_extra)) = verified else {
                    return self.authentication_failed(&realm);
                };
                tracing::debug!(realm = realm.name(), method, "authenticated (dynamic)");
                return self.welcome_as(
                    realm,
                    session,
                    *principal,
                    method,
                    &peer_roles,
                    method_extra,
                );
            }
            other => other,
        };
        let auth = &realm.config.auth;
        let verdict = match &method {
            Method::DynamicTicket(_) | Method::Dynamic(..) => None,
            Method::Ticket => {
                // An unknown authid costs the same hashing as a known one, so the
                // time taken does not tell which authids exist.
                let user = auth.ticket.get(&authid);
                let stored = user.or_else(|| auth.ticket.values().next());
                // PBKDF2 takes long: the other connections keep being served meanwhile.
                let ok = stored.is_some_and(|u| {
                    crate::blocking::run_blocking(|| {
                        crate::auth::verify_ticket(signature, &u.ticket_hash)
                    })
                });
                user.filter(|_| ok)
                    .map(|u| (u.role.clone(), "ticket", None))
            }
            Method::Cra(challenge) => auth.wampcra.get(&authid).and_then(|user| {
                crate::auth::cra_verify(&user.key, challenge, signature)
                    .then(|| (user.role.clone(), "wampcra", None))
            }),
            Method::Cryptosign(p) => p.verify(signature).map(|role| (role, "cryptosign", None)),
            Method::Scram(p) => p
                .verify(signature, extra)
                .map(|(role, authextra)| (role, p.method, Some(authextra))),
        };
        match verdict {
            Some((role, method, authextra)) => {
                tracing::debug!(realm = realm.name(), method, "authenticated");
                self.welcome(realm, session, authid, role, method, &peer_roles, authextra)
            }
            None => self.authentication_failed(&realm),
        }
    }

    /// Wrong credentials: ABORT saying nothing about which part was wrong (to the
    /// peer or in the log), and one more failure on the peer address's record.
    fn authentication_failed(&mut self, realm: &Realm) -> Flow {
        tracing::info!(realm = realm.name(), "authentication failed");
        self.record_auth_failure();
        self.abort(uri_err::NOT_AUTHORIZED, "authentication failed")
    }

    fn record_auth_failure(&self) {
        if let Some(peer) = self.transport.peer {
            self.router
                .auth_throttle()
                .failed(peer.ip(), Instant::now());
        }
    }

    /// Creates the session of a statically configured principal and sends WELCOME.
    #[allow(clippy::too_many_arguments)]
    fn welcome(
        &mut self,
        realm: Arc<Realm>,
        session: Id,
        authid: String,
        authrole: String,
        authmethod: &str,
        peer_roles: &Dict,
        authextra: Option<Dict>,
    ) -> Flow {
        // Checked after the credentials, so an expired login fails like a wrong one.
        if realm
            .config
            .auth
            .expired(authmethod, &authid, std::time::SystemTime::now())
        {
            tracing::debug!(realm = realm.name(), authmethod, "login expired");
            return self.authentication_failed(&realm);
        }
        let principal = Principal {
            authid,
            role: authrole,
            provider: "static",
            ..Principal::default()
        };
        self.welcome_as(realm, session, principal, authmethod, peer_roles, authextra)
    }

    /// Creates the session and sends WELCOME. `method_extra` is authextra of the
    /// method's own (a SCRAM server signature) for WELCOME only; the principal's
    /// `extra` stays with the session (session meta API, authorizer).
    fn welcome_as(
        &mut self,
        realm: Arc<Realm>,
        session: Id,
        principal: Principal,
        authmethod: &str,
        peer_roles: &Dict,
        method_extra: Option<Dict>,
    ) -> Flow {
        let Principal {
            authid,
            role: authrole,
            provider,
            extra,
            ..
        } = principal;
        if authmethod != "anonymous" {
            if let Some(peer) = self.transport.peer {
                self.router.auth_throttle().succeeded(peer.ip());
            }
        }
        let role = realm.config.auth.role(&authrole);
        let handle = {
            let mut sessions = realm.sessions.write();
            let mut id = session;
            while sessions.contains_key(&id) {
                id = random_id();
            }
            let handle = Arc::new(
                SessionHandle::new(
                    id,
                    self.link.serializer,
                    self.link.max_message_size,
                    (authid, authrole, authmethod.to_owned()),
                    self.link.outbox.clone(),
                )
                .with_features(PeerFeatures::from_roles(peer_roles))
                .with_provider(provider, extra)
                .with_transport(self.transport.clone()),
            );
            sessions.insert(id, handle.clone());
            handle
        };
        let mut details = dict! {
            "realm" => realm.name(),
            "authid" => handle.authid.as_str(),
            "authrole" => handle.authrole.as_str(),
            "authmethod" => handle.authmethod.as_str(),
            "authprovider" => provider,
            "agent" => crate::AGENT,
            "roles" => crate::roles::router_roles(),
        };
        let mut authextra = handle.authextra.clone();
        authextra.extend(method_extra.unwrap_or_default());
        if !authextra.is_empty() {
            details.insert("authextra".into(), Value::Dict(authextra));
        }
        let welcome = Message::Welcome {
            session: handle.id,
            details,
        };
        self.link.send(&welcome);
        realm.session_joined(&handle);
        tracing::debug!(session = handle.id, realm = realm.name(), "session joined");
        self.state = State::Joined(Box::new(Joined {
            realm,
            handle,
            role,
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
            realm.flush_broker(&mut broker);
        }
        // Testaments: `detached` ones, then `destroyed` ones (no session
        // resumption, so both happen now), each in the order they were added,
        // published as if by the session itself.
        for testament in handle.take_testaments() {
            realm.publish(
                &handle,
                &testament.topic,
                random_id(),
                &testament.options,
                &testament.payload,
            );
        }
        let orphaned = {
            let mut dealer = realm.dealer.lock();
            let orphaned = dealer.remove_session(handle.id);
            realm.flush_dealer(&mut dealer);
            orphaned
        };
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
        realm.session_left(&handle);
        tracing::debug!(session = handle.id, "session left");
    }

    fn joined(&mut self, message: Message) -> Flow {
        let State::Joined(j) = &mut self.state else {
            return Flow::Close;
        };
        match message {
            Message::Publish {
                request,
                options: raw_options,
                topic,
                payload,
            } => {
                // Plain publications carry no options: nothing to look at.
                let options = if raw_options.is_empty() {
                    PublishOptions::default()
                } else {
                    match PublishOptions::parse(&raw_options) {
                        Ok(options) => options,
                        Err(text) => {
                            // (The message parser has checked the types already.)
                            let acknowledge =
                                raw_options.get("acknowledge").and_then(Value::as_bool)
                                    == Some(true);
                            if acknowledge {
                                self.link.error(
                                    MessageType::Publish,
                                    request,
                                    uri_err::INVALID_ARGUMENT,
                                    &text,
                                );
                            }
                            return Flow::Continue;
                        }
                    }
                };
                if options.is_passthru() && !j.handle.features.publisher_passthru {
                    return self.protocol_violation(
                        "PUBLISH with ppt_scheme sent without announcing payload_passthru_mode",
                    );
                }
                let acknowledge = options.acknowledge;
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
                let mut disclose = false;
                if !allowed(&j.role, Action::Publish, &topic) {
                    match dynamic_gate(&j.role, &mut self.grant, Action::Publish, &topic) {
                        Gate::Allow { disclose: d } => disclose = d,
                        Gate::Deny(uri) => {
                            if acknowledge {
                                self.link.error(
                                    MessageType::Publish,
                                    request,
                                    uri,
                                    &format!("not authorized to publish to '{topic}'"),
                                );
                            }
                            return Flow::Continue;
                        }
                        Gate::Ask(authorizer) => {
                            let message = Message::Publish {
                                request,
                                options: raw_options.clone(),
                                topic: topic.clone(),
                                payload,
                            };
                            return self.ask_authorizer(
                                authorizer,
                                message,
                                Action::Publish,
                                &topic,
                                &topic,
                                raw_options,
                            );
                        }
                    }
                }
                let mut options = options;
                if disclose || discloses(&j.role, &topic, false) {
                    options.disclose_me = true;
                }
                let publication = random_id();
                if acknowledge {
                    self.link.send(&Message::Published {
                        request,
                        publication,
                    });
                }
                j.realm
                    .publish(&j.handle, &topic, publication, &options, &payload);
                Flow::Continue
            }
            Message::Subscribe {
                request,
                options,
                topic,
            } => {
                // The message parser refuses unknown `match` values (a protocol
                // violation, as the conformance vectors require); this is a backstop.
                let policy = match options.get("match").and_then(Value::as_str) {
                    None => MatchPolicy::Exact,
                    Some(p) => match MatchPolicy::parse(p) {
                        Some(policy) => policy,
                        None => {
                            return self.link.refuse(
                                MessageType::Subscribe,
                                request,
                                uri_err::INVALID_ARGUMENT,
                                &format!("unknown match policy '{p}'"),
                            );
                        }
                    },
                };
                let get_retained =
                    options.get("get_retained").and_then(Value::as_bool) == Some(true);
                if !is_valid_pattern(&topic, policy, j.realm.config.uri_rule) {
                    return self.link.refuse(
                        MessageType::Subscribe,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid topic URI '{topic}'"),
                    );
                }
                if !allowed(&j.role, Action::Subscribe, &topic) {
                    let key = authorizer_key(&topic, policy);
                    match dynamic_gate(&j.role, &mut self.grant, Action::Subscribe, &key) {
                        Gate::Allow { .. } => {}
                        Gate::Deny(uri) => {
                            return self.link.refuse(
                                MessageType::Subscribe,
                                request,
                                uri,
                                &format!("not authorized to subscribe to '{topic}'"),
                            );
                        }
                        Gate::Ask(authorizer) => {
                            let message = Message::Subscribe {
                                request,
                                options: options.clone(),
                                topic: topic.clone(),
                            };
                            return self.ask_authorizer(
                                authorizer,
                                message,
                                Action::Subscribe,
                                &topic,
                                &key,
                                options,
                            );
                        }
                    }
                }
                // SUBSCRIBED is queued under the table lock so it precedes any EVENT.
                let mut broker = j.realm.broker.write();
                let subscription = broker.subscribe(&topic, policy, &j.handle);
                j.subscriptions.insert(subscription);
                let _ = j.handle.send(&Message::Subscribed {
                    request,
                    subscription,
                });
                if get_retained {
                    broker.send_retained(subscription, &j.handle);
                }
                j.realm.flush_broker(&mut broker);
                Flow::Continue
            }
            Message::Unsubscribe {
                request,
                subscription,
                ..
            } => {
                // A subscription the router revoked is gone from the broker but may
                // still be in this session's set.
                let mut broker = j.realm.broker.write();
                let removed = j.subscriptions.remove(&subscription)
                    && broker.unsubscribe(subscription, j.handle.id);
                if removed {
                    // UNSUBSCRIBED goes out before the meta events it causes.
                    self.link.send(&Message::Unsubscribed {
                        request,
                        details: None,
                    });
                    j.realm.flush_broker(&mut broker);
                    return Flow::Continue;
                }
                drop(broker);
                {
                    self.link.error(
                        MessageType::Unsubscribe,
                        request,
                        uri_err::NO_SUCH_SUBSCRIPTION,
                        "",
                    );
                }
                Flow::Continue
            }
            Message::Register {
                request,
                options: raw_options,
                procedure,
            } => {
                let options = match register_options(&raw_options) {
                    Ok(options) => options,
                    Err(text) => {
                        return self.link.refuse(
                            MessageType::Register,
                            request,
                            uri_err::INVALID_ARGUMENT,
                            &text,
                        );
                    }
                };
                if !valid_registration_uri(&procedure, options.policy, j.realm.config.uri_rule) {
                    return self.link.refuse(
                        MessageType::Register,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid procedure URI '{procedure}'"),
                    );
                }
                if !allowed(&j.role, Action::Register, &procedure) {
                    let key = authorizer_key(&procedure, options.policy);
                    match dynamic_gate(&j.role, &mut self.grant, Action::Register, &key) {
                        Gate::Allow { .. } => {}
                        Gate::Deny(uri) => {
                            return self.link.refuse(
                                MessageType::Register,
                                request,
                                uri,
                                &format!("not authorized to register '{procedure}'"),
                            );
                        }
                        Gate::Ask(authorizer) => {
                            let message = Message::Register {
                                request,
                                options: raw_options.clone(),
                                procedure: procedure.clone(),
                            };
                            return self.ask_authorizer(
                                authorizer,
                                message,
                                Action::Register,
                                &procedure,
                                &key,
                                raw_options,
                            );
                        }
                    }
                }
                let mut dealer = j.realm.dealer.lock();
                let (uri, text) = match dealer.register(&procedure, &j.handle, options) {
                    Ok(registration) => {
                        j.registrations.insert(registration);
                        // Queued under the table lock so it precedes any INVOCATION.
                        let _ = j.handle.send(&Message::Registered {
                            request,
                            registration,
                        });
                        j.realm.flush_dealer(&mut dealer);
                        return Flow::Continue;
                    }
                    Err(RegisterError::AlreadyExists) => (
                        uri_err::PROCEDURE_ALREADY_EXISTS,
                        format!("'{procedure}' is already registered"),
                    ),
                    Err(RegisterError::DifferentPolicy) => (
                        DIFFERENT_INVOCATION_POLICY,
                        format!("'{procedure}' is registered with another invocation policy"),
                    ),
                };
                j.realm.flush_dealer(&mut dealer);
                drop(dealer);
                self.link.error(MessageType::Register, request, uri, &text);
                Flow::Continue
            }
            Message::Unregister {
                request,
                registration,
                ..
            } => {
                let mut dealer = j.realm.dealer.lock();
                let removed = j.registrations.remove(&registration)
                    && dealer.unregister(registration, j.handle.id);
                if removed {
                    self.link.send(&Message::Unregistered {
                        request,
                        details: None,
                    });
                    j.realm.flush_dealer(&mut dealer);
                } else {
                    drop(dealer);
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
                options,
                procedure,
                payload,
            } => {
                // Plain calls carry no options: nothing to look at.
                let raw_options = options;
                let mut options = if raw_options.is_empty() {
                    CallOptions::default()
                } else {
                    CallOptions::parse(&raw_options)
                };
                if options.progress && !j.handle.features.caller_progressive_invocations {
                    return self.protocol_violation(
                        "CALL.Options.progress sent without announcing progressive_call_invocations",
                    );
                }
                if !is_valid_uri(&procedure, j.realm.config.uri_rule) {
                    return self.link.refuse(
                        MessageType::Call,
                        request,
                        uri_err::INVALID_URI,
                        &format!("invalid procedure URI '{procedure}'"),
                    );
                }
                if !allowed(&j.role, Action::Call, &procedure) {
                    match dynamic_gate(&j.role, &mut self.grant, Action::Call, &procedure) {
                        Gate::Allow { disclose } => options.disclose_me |= disclose,
                        Gate::Deny(uri) => {
                            return self.link.refuse(
                                MessageType::Call,
                                request,
                                uri,
                                &format!("not authorized to call '{procedure}'"),
                            );
                        }
                        Gate::Ask(authorizer) => {
                            let message = Message::Call {
                                request,
                                options: raw_options.clone(),
                                procedure: procedure.clone(),
                                payload,
                            };
                            return self.ask_authorizer(
                                authorizer,
                                message,
                                Action::Call,
                                &procedure,
                                &procedure,
                                raw_options,
                            );
                        }
                    }
                }
                if discloses(&j.role, &procedure, true) {
                    options.disclose_me = true;
                }
                if options.ppt && !j.handle.features.caller_passthru {
                    return self.protocol_violation(
                        "CALL with ppt_scheme sent without announcing payload_passthru_mode",
                    );
                }
                // `wamp.*` belongs to the router (clients can't register it).
                if procedure.starts_with("wamp.") {
                    let reply = match procedures::lookup(&procedure) {
                        Some(handler) => procedures::run(handler, &j.realm, &j.handle, &payload),
                        None => Err(procedures::ProcedureError {
                            uri: uri_err::NO_SUCH_PROCEDURE,
                            message: format!("no procedure '{procedure}'"),
                        }),
                    };
                    match reply {
                        Ok(payload) => {
                            let result = Message::Result {
                                request,
                                details: Dict::new(),
                                payload,
                            };
                            if let Err(e) = j.handle.send(&result) {
                                self.link.error(
                                    MessageType::Call,
                                    request,
                                    uri_err::PAYLOAD_SIZE_EXCEEDED,
                                    &e.to_string(),
                                );
                            }
                        }
                        Err(e) => self
                            .link
                            .error(MessageType::Call, request, e.uri, &e.message),
                    }
                    return Flow::Continue;
                }
                let passthru = if options.passthru {
                    passthru_keys(&raw_options)
                } else {
                    Dict::new()
                };
                let outcome = call(
                    &j.realm,
                    &self.router.call_limits,
                    &j.handle,
                    request,
                    &procedure,
                    &options,
                    passthru,
                    payload,
                );
                match outcome {
                    Ok(false) => {}
                    Ok(true) => self.router.timer_changed().notify_one(),
                    Err((uri, text)) => self.link.error(MessageType::Call, request, uri, &text),
                }
                Flow::Continue
            }
            Message::Cancel { request, options } => {
                let mode = options
                    .get("mode")
                    .and_then(Value::as_str)
                    .and_then(CancelMode::parse)
                    .unwrap_or_default();
                j.realm.dealer.lock().cancel(j.handle.id, request, mode);
                Flow::Continue
            }
            Message::Yield {
                request,
                options,
                payload,
            } => {
                let progress = options.get("progress").and_then(Value::as_bool) == Some(true);
                // Payload passthru / E2EE keys go on into RESULT.Details.
                let passthru = if options.is_empty() {
                    Dict::new()
                } else {
                    passthru_keys(&options)
                };
                let mut dealer = j.realm.dealer.lock();
                if progress {
                    match dealer.progress(j.handle.id, request) {
                        Progress::Deliver(caller, call_request) => {
                            let mut details = passthru;
                            details.insert("progress".into(), Value::Bool(true));
                            let result = Message::Result {
                                request: call_request,
                                details,
                                payload,
                            };
                            // Sent under the lock, so that no final answer (a
                            // timeout, a cancel) can overtake it.
                            match caller.encode(&result) {
                                Ok(bytes) => {
                                    let _ = caller.send_encoded(bytes);
                                }
                                Err(e) => dealer.abort_call(
                                    j.handle.id,
                                    request,
                                    uri_err::PAYLOAD_SIZE_EXCEEDED,
                                    &e.to_string(),
                                ),
                            }
                        }
                        Progress::Violation => {
                            drop(dealer);
                            return self.protocol_violation(
                                "progressive YIELD for an invocation that did not ask for progress",
                            );
                        }
                        Progress::Drop => {}
                    }
                    return Flow::Continue;
                }
                let pending = dealer.finish_call(j.handle.id, request);
                drop(dealer);
                // An answer to a call that already ended (caller gone, canceled, timed
                // out) is dropped quietly.
                if let Some(call) = pending {
                    let answer = if call.state == CallState::Killing {
                        call_error(
                            call.call_request,
                            uri_err::CANCELED,
                            "the call was canceled",
                        )
                    } else {
                        Message::Result {
                            request: call.call_request,
                            details: passthru,
                            payload,
                        }
                    };
                    deliver_to_caller(&call, &answer);
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
            // Not announced; ignoring it is harmless.
            Message::EventReceived { .. } => Flow::Continue,
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

/// The payload passthru and E2EE keys of some Options, to forward into Details.
fn passthru_keys(options: &Dict) -> Dict {
    PASSTHRU_KEYS
        .iter()
        .filter_map(|k| options.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
}

/// Procedures and patterns that clients register: valid for their match policy and
/// outside the reserved `wamp.` namespace.
fn valid_registration_uri(uri: &str, policy: MatchPolicy, rule: UriRule) -> bool {
    is_valid_pattern(uri, policy, rule) && !uri.starts_with("wamp.")
}

/// REGISTER.Options, or the text of an `invalid_argument` error. (The message parser
/// has checked the types already.)
fn register_options(options: &Dict) -> Result<RegisterOptions, String> {
    let mut parsed = RegisterOptions::default();
    if options.is_empty() {
        return Ok(parsed);
    }
    if let Some(policy) = options.get("match").and_then(Value::as_str) {
        parsed.policy =
            MatchPolicy::parse(policy).ok_or_else(|| format!("unknown match policy '{policy}'"))?;
    }
    if let Some(invoke) = options.get("invoke").and_then(Value::as_str) {
        parsed.invoke = InvokePolicy::parse(invoke)
            .ok_or_else(|| format!("unknown invocation policy '{invoke}'"))?;
    }
    parsed.concurrency = options
        .get("concurrency")
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let flag = |key: &str| options.get(key).and_then(Value::as_bool) == Some(true);
    parsed.disclose_caller = flag("disclose_caller");
    parsed.forward_timeout = flag("forward_timeout");
    parsed.force_reregister = flag("force_reregister");
    Ok(parsed)
}

/// The CALL.Options the dealer acts on.
#[derive(Clone, Copy, Debug, Default)]
struct CallOptions {
    receive_progress: bool,
    /// A chunk of a streaming call that more chunks follow.
    progress: bool,
    disclose_me: bool,
    /// Milliseconds (the spec's unit; Autobahn sends seconds); 0 = none.
    timeout: u64,
    /// Payload passthru mode (a non-empty `ppt_scheme`), or Autobahn's E2EE keys:
    /// keys to copy into INVOCATION.Details.
    passthru: bool,
    /// A non-empty `ppt_scheme` (the spec's payload passthru mode).
    ppt: bool,
}

impl CallOptions {
    fn parse(options: &Dict) -> Self {
        let flag = |key: &str| options.get(key).and_then(Value::as_bool) == Some(true);
        CallOptions {
            receive_progress: flag("receive_progress"),
            progress: flag("progress"),
            disclose_me: flag("disclose_me"),
            timeout: options.get("timeout").and_then(Value::as_u64).unwrap_or(0),
            passthru: PASSTHRU_KEYS.iter().any(|k| options.contains_key(*k)),
            ppt: options
                .get("ppt_scheme")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
        }
    }
}

/// Routes a CALL (or a further chunk of a streaming call) to its callee. Returns
/// whether a new earliest call deadline appeared; on failure the error URI and text
/// for the caller.
#[allow(clippy::too_many_arguments)]
fn call(
    realm: &Realm,
    limits: &CallLimits,
    caller: &Arc<SessionHandle>,
    request: Id,
    procedure: &str,
    options: &CallOptions,
    passthru: Dict,
    payload: Payload,
) -> Result<bool, (&'static str, String)> {
    let mut dealer = realm.dealer.lock();
    match dealer.chunk(caller.id, request, !options.progress) {
        Chunk::NewCall => {}
        Chunk::Drop => return Ok(false),
        Chunk::Forward {
            callee,
            invocation,
            registration,
            details,
        } => {
            let message = Message::Invocation {
                request: invocation,
                registration,
                details,
                payload,
            };
            if let Err(e) = callee.send(&message) {
                dealer.abort_call(
                    callee.id,
                    invocation,
                    uri_err::PAYLOAD_SIZE_EXCEEDED,
                    &format!("cannot deliver the call to its callee: {e}"),
                );
            }
            return Ok(false);
        }
    }
    let started = start_call(
        &mut dealer,
        realm,
        limits,
        caller,
        request,
        procedure,
        options,
        passthru,
        payload,
    );
    if started.is_err() && options.progress {
        // Later chunks of a refused streaming call must not become calls.
        dealer.close_stream(caller.id, request);
    }
    started
}

#[allow(clippy::too_many_arguments)]
fn start_call(
    dealer: &mut crate::dealer::Dealer,
    realm: &Realm,
    limits: &CallLimits,
    caller: &Arc<SessionHandle>,
    request: Id,
    procedure: &str,
    options: &CallOptions,
    passthru: Dict,
    payload: Payload,
) -> Result<bool, (&'static str, String)> {
    let route = match dealer.select(procedure, caller, limits) {
        Ok(route) => route,
        Err(CallRefused::NoSuchProcedure) => {
            return Err((
                uri_err::NO_SUCH_PROCEDURE,
                format!("no callee registered for '{procedure}'"),
            ))
        }
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
                format!("the callees of '{procedure}' have as many calls in flight as they accept"),
            ))
        }
    };
    let callee = route.callee;
    let features = callee.features;
    // The spec asks callees of progressive results and invocations to be able to
    // cancel too; otherwise a departed caller's stream could not be stopped.
    if options.progress && !(features.progressive_call_invocations && features.call_canceling) {
        return Err((
            FEATURE_NOT_SUPPORTED,
            "the callee does not support progressive call invocations".to_owned(),
        ));
    }
    if options.ppt && !features.callee_passthru {
        return Err((
            FEATURE_NOT_SUPPORTED,
            "the callee does not support payload passthru mode".to_owned(),
        ));
    }
    let receive_progress =
        options.receive_progress && features.progressive_call_results && features.call_canceling;
    let mut details = passthru;
    if route.pattern {
        details.insert("procedure".into(), Value::from(procedure));
    }
    if options.disclose_me || route.disclose_caller || realm.config.disclose_caller {
        details.insert("caller".into(), Value::from(caller.id));
        details.insert("caller_authid".into(), Value::from(caller.authid.as_str()));
        details.insert(
            "caller_authrole".into(),
            Value::from(caller.authrole.as_str()),
        );
    }
    if receive_progress {
        details.insert("receive_progress".into(), Value::Bool(true));
    }
    let mut timeout = None;
    if options.timeout > 0 {
        if route.forward_timeout {
            details.insert("timeout".into(), Value::from(options.timeout));
        } else {
            let length = Duration::from_millis(options.timeout);
            // A deadline beyond what the clock can express is no deadline.
            timeout = Instant::now().checked_add(length).map(|at| (length, at));
        }
    }
    let stream = options.progress.then(|| Box::new(details.clone()));
    if options.progress {
        details.insert("progress".into(), Value::Bool(true));
    }
    let invocation = callee.next_invocation_id();
    let message = Message::Invocation {
        request: invocation,
        registration: route.registration,
        details,
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
    let mut pending = PendingCall::new(caller.clone(), callee.clone(), request, route.registration);
    pending.receive_progress = receive_progress;
    pending.timeout = timeout;
    pending.stream = stream;
    let earliest = dealer.start_call(invocation, pending);
    // If the callee's queue refuses it, the callee is on its way out and its
    // departure ends this call with `canceled`.
    let _ = callee.send_encoded(bytes);
    Ok(earliest)
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
