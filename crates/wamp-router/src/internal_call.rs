//! Router-initiated calls: the router itself calls a procedure that an ordinary
//! (trusted) component registered, for example a dynamic authenticator or
//! authorizer, and a connection waits for the answer.
//!
//! The call goes through the dealer like any other: the callee gets an ordinary
//! INVOCATION, and its YIELD or ERROR ends the pending call. The caller is not a
//! WAMP session: it is a handle of its own (in no realm's session table, so no
//! meta event or session list shows it) whose outbox only ever receives the one
//! RESULT or ERROR. [`InternalCall::answer`] waits on that outbox, so the waiting
//! connection's task wakes when the answer arrives, and only that task.
//!
//! Every way the call can end is an [`Answer`]: a result, the callee's error, no
//! such procedure, a timeout (the dealer's own router-run timeout, which also
//! interrupts a callee that can cancel), or the callee leaving. Dropping an
//! unanswered call (its connection went away) removes it from the dealer, so
//! nothing is left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wamp_proto::error_uri as uri_err;
use wamp_proto::message::MessageType;
use wamp_proto::{decode, random_id, Dict, Message, Payload, Serializer, Value};

use crate::dealer::{CallRefused, PendingCall, TIMEOUT};
use crate::outbox::{Drained, Outbox, OutboxLimits};
use crate::realm::Realm;
use crate::session::SessionHandle;
use crate::Router;

/// The default time a router-initiated call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a router-initiated call ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The callee's YIELD.
    Result(Payload),
    /// The callee answered with an ERROR.
    Error {
        /// The error URI.
        uri: String,
        /// Its arguments.
        payload: Payload,
    },
    /// No procedure registered under that URI (or the realm does not exist).
    NoSuchProcedure,
    /// No answer within the timeout.
    Timeout,
    /// The callee left (or unregistered) before answering.
    CalleeGone,
    /// The call could not be made or its answer not read (callee busy, answer
    /// too large, ...).
    Failed(String),
}

impl Answer {
    /// A short description for logs (never the payload, which may hold secrets).
    pub fn describe(&self) -> String {
        match self {
            Answer::Result(_) => "result".into(),
            Answer::Error { uri, .. } => format!("error {uri}"),
            Answer::NoSuchProcedure => "no such procedure".into(),
            Answer::Timeout => "timed out".into(),
            Answer::CalleeGone => "callee gone".into(),
            Answer::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// A router-initiated call in flight. Await [`InternalCall::answer`]; dropping it
/// first cancels the call.
pub struct InternalCall {
    realm: Option<Arc<Realm>>,
    caller: Arc<SessionHandle>,
    outbox: Arc<Outbox>,
    /// The call is still in the dealer's table.
    pending: bool,
    /// An outcome known at once (the call was refused).
    ready: Option<Answer>,
}

/// The CALL request id of a router-initiated call (each has its own caller).
const REQUEST: u64 = 1;

/// Largest answer accepted from a callee.
const MAX_ANSWER_SIZE: usize = 1024 * 1024;

impl InternalCall {
    /// Calls `procedure` on realm `realm_name` with positional `args`. A refused
    /// call (no realm, no procedure, callee busy) is an `InternalCall` whose answer
    /// is ready at once.
    pub fn start(
        router: &Router,
        realm_name: &str,
        procedure: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> InternalCall {
        Self::start_checked(router, realm_name, procedure, args, timeout, None)
    }

    /// [`start`](Self::start), but only a callee whose authrole is `callee_role`
    /// (when given) is called: a session of another role that registered the
    /// procedure first (or in between) gets nothing, and the call fails.
    pub fn start_checked(
        router: &Router,
        realm_name: &str,
        procedure: &str,
        args: Vec<Value>,
        timeout: Duration,
        callee_role: Option<&str>,
    ) -> InternalCall {
        let outbox = Arc::new(Outbox::new(OutboxLimits::default()));
        let caller = Arc::new(SessionHandle::new(
            random_id(),
            // Keeps every WAMP value type (binary included) through the round trip.
            Serializer::MsgPack,
            MAX_ANSWER_SIZE,
            ("junction".into(), "trusted".into(), "internal".into()),
            outbox.clone(),
        ));
        let Some(realm) = router.realm(realm_name) else {
            return InternalCall {
                realm: None,
                caller,
                outbox,
                pending: false,
                ready: Some(Answer::NoSuchProcedure),
            };
        };
        let mut call = InternalCall {
            realm: Some(realm.clone()),
            caller: caller.clone(),
            outbox,
            pending: false,
            ready: None,
        };
        let mut dealer = realm.dealer.lock();
        let route = match dealer.select(procedure, &caller, &router.call_limits) {
            Ok(route) => route,
            Err(CallRefused::NoSuchProcedure) => {
                call.ready = Some(Answer::NoSuchProcedure);
                return call;
            }
            Err(refused) => {
                call.ready = Some(Answer::Failed(format!("{refused:?}")));
                return call;
            }
        };
        if let Some(role) = callee_role.filter(|r| *r != route.callee.authrole) {
            tracing::warn!(
                procedure,
                realm = realm_name,
                callee_role = %route.callee.authrole,
                required_role = role,
                "the procedure is registered by a session outside the required role; not calling it"
            );
            call.ready = Some(Answer::Failed(format!(
                "the callee is not in role '{role}'"
            )));
            return call;
        }
        let mut details = Dict::new();
        if route.pattern {
            details.insert("procedure".into(), Value::from(procedure));
        }
        let invocation = route.callee.next_invocation_id();
        let message = Message::Invocation {
            request: invocation,
            registration: route.registration,
            details,
            payload: Payload::from_args(args),
        };
        let bytes = match route.callee.encode(&message) {
            Ok(bytes) => bytes,
            Err(e) => {
                call.ready = Some(Answer::Failed(e.to_string()));
                return call;
            }
        };
        let mut pending =
            PendingCall::new(caller, route.callee.clone(), REQUEST, route.registration);
        // Always run by the router, whatever the callee registered with.
        pending.timeout = Instant::now()
            .checked_add(timeout)
            .map(|deadline| (timeout, deadline));
        let earliest = dealer.start_call(invocation, pending);
        let _ = route.callee.send_encoded(bytes);
        drop(dealer);
        call.pending = true;
        if earliest {
            router.timer_changed().notify_one();
        }
        call
    }

    /// Waits for the answer. Cancel-safe; once it returned, the call is over.
    pub async fn answer(&mut self) -> Answer {
        if let Some(answer) = self.ready.take() {
            return answer;
        }
        let mut batch: Vec<Bytes> = Vec::new();
        let answer = loop {
            match self.outbox.drain(&mut batch).await {
                Drained::Frames => {
                    if let Some(answer) = batch.iter().find_map(|f| self.read(f)) {
                        break answer;
                    }
                    batch.clear();
                }
                Drained::Closed(_) => break Answer::Failed("the answer was too large".into()),
            }
        };
        // The dealer dropped the call when it delivered the answer.
        self.pending = false;
        answer
    }

    /// The answer in one frame, if it is the final one.
    fn read(&self, frame: &Bytes) -> Option<Answer> {
        match decode(self.caller.serializer, frame) {
            Ok(Message::Result {
                details, payload, ..
            }) => {
                // (Progressive results were not asked for; skip any.)
                (details.get("progress").and_then(Value::as_bool) != Some(true))
                    .then_some(Answer::Result(payload))
            }
            Ok(Message::Error {
                request_type: MessageType::Call,
                error,
                payload,
                ..
            }) => Some(match error.as_str() {
                // The dealer's own errors: the timer, the callee leaving, a message
                // it could not deliver.
                TIMEOUT => Answer::Timeout,
                uri_err::CANCELED => Answer::CalleeGone,
                uri_err::PAYLOAD_SIZE_EXCEEDED => Answer::Failed("payload size exceeded".into()),
                _ => Answer::Error {
                    uri: error,
                    payload,
                },
            }),
            Ok(_) => None,
            Err(e) => Some(Answer::Failed(format!("cannot decode the answer: {e}"))),
        }
    }

    fn finish(&mut self) {
        if !std::mem::take(&mut self.pending) {
            return;
        }
        if let Some(realm) = &self.realm {
            // Ends the call; a callee that can cancel gets INTERRUPT.
            let mut dealer = realm.dealer.lock();
            dealer.remove_session(self.caller.id);
            realm.flush_dealer(&mut dealer);
        }
    }
}

impl Drop for InternalCall {
    fn drop(&mut self) {
        self.finish();
        self.outbox.close();
    }
}

impl std::fmt::Debug for InternalCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCall")
            .field("realm", &self.realm.as_ref().map(|r| r.name()))
            .field("pending", &self.pending)
            .finish()
    }
}
