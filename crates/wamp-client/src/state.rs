//! A session's bookkeeping, without I/O: pending requests, subscriptions and
//! registrations, and what to do with each message the router sends.
//!
//! The session's reader task feeds every decoded message to [`State::on_message`] under
//! the state lock. Replies to requests complete their oneshot channels right there;
//! whatever needs an `.await` (delivering an EVENT or INVOCATION into a bounded
//! channel, sending a reply) comes back as an [`Action`] for the reader to carry out
//! after releasing the lock.
//!
//! # Calls and invocations in progress
//!
//! A call waits in `calls` under its request ID until its final RESULT or ERROR
//! (progressive RESULTs leave it there), or until the caller gives up
//! ([`State::remove_call`]). An INVOCATION stays in `invocations` until the callee
//! answers or drops it ([`State::end_invocation`]): INTERRUPTs find it there, and so
//! do the further chunks of a progressive call invocation, which reuse its request
//! ID. Chunks that arrive after the callee has answered are dropped, as the
//! specification demands; the IDs of such invocations are remembered for a while
//! so that a late chunk is not mistaken for a new invocation.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::sync::{mpsc, oneshot, watch};
use wamp_proto::{error_uri, Dict, Message, MessageType, Payload, Value};

use crate::call::{CallEvent, CallSink};
use crate::error::{message_of, CloseReason, Error};
use crate::pubsub::{Event, EventSink};
use crate::rpc::{CallResult, InterruptMode, Invocation, InvocationChunk, Revocation};

/// How many finished progressive invocations are remembered to drop their late
/// chunks.
const RECENT_CHUNKED: usize = 1024;

/// Where the session is in its lifecycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// WELCOME received; requests may be sent.
    Established,
    /// We sent GOODBYE and wait for the router's; nothing else may be sent, and
    /// everything but GOODBYE and ABORT is ignored.
    ShuttingDown,
    /// The session is over.
    Closed(CloseReason),
}

/// How often a SUBSCRIBE is repeated because its answer named a subscription being
/// unsubscribed (see [`State::on_message`] for SUBSCRIBED).
const MAX_RESUBSCRIBES: u32 = 3;

/// A request waiting for SUBSCRIBED: where to put the subscription's events, and
/// what was asked (to ask again if need be).
pub(crate) struct PendingSubscribe {
    pub local: u64,
    pub sink: EventSink,
    pub topic: String,
    pub options: Dict,
    pub reply: oneshot::Sender<Result<u64, Error>>,
    /// How often this subscription was requested again.
    pub attempts: u32,
}

/// An UNSUBSCRIBE waiting for UNSUBSCRIBED.
struct PendingUnsubscribe {
    subscription: u64,
    /// `None` when nobody waits (a dropped subscription).
    reply: Option<oneshot::Sender<Result<(), Error>>>,
}

/// A request waiting for REGISTERED: where to put the registration's invocations.
pub(crate) struct PendingRegister {
    pub local: u64,
    pub invocations: mpsc::Sender<Invocation>,
    pub revoked: Revocation,
    pub reply: oneshot::Sender<Result<u64, Error>>,
}

/// The kinds of request that wait for a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Publish,
    Subscribe,
    Unsubscribe,
    Register,
    Unregister,
}

/// One local [`Subscription`](crate::Subscription) on a router subscription.
pub(crate) struct LocalSubscriber {
    pub local: u64,
    pub sink: EventSink,
}

/// The local [`Registration`](crate::Registration) of a router registration.
pub(crate) struct LocalCallee {
    pub local: u64,
    pub invocations: mpsc::Sender<Invocation>,
    pub revoked: Revocation,
}

/// An INVOCATION the callee has not answered yet.
struct ActiveInvocation {
    registration: u64,
    /// Set by INTERRUPT.
    interrupt: watch::Sender<Option<InterruptMode>>,
    /// Where further chunks go, while more may come (progressive call invocation).
    chunks: Option<mpsc::Sender<InvocationChunk>>,
}

/// What the reader must do after [`State::on_message`].
pub(crate) enum Action {
    /// Nothing more.
    Nothing,
    /// Deliver an EVENT to each local subscriber of its subscription.
    Events {
        targets: Vec<EventSink>,
        event: Event,
    },
    /// Send this SUBSCRIBE again (its answer named a subscription being
    /// unsubscribed).
    Resubscribe(PendingSubscribe),
    /// Send UNSUBSCRIBE for a router subscription nobody here wants.
    Unsubscribe { subscription: u64 },
    /// Deliver an INVOCATION to the registration's callee.
    Invoke {
        target: mpsc::Sender<Invocation>,
        invocation: InvocationData,
    },
    /// Deliver a further chunk of a progressive call invocation.
    Chunk {
        target: mpsc::Sender<InvocationChunk>,
        chunk: InvocationChunk,
    },
    /// Deliver a progressive result, or the final outcome, of a progressive call.
    CallItem {
        target: mpsc::Sender<Result<CallEvent, Error>>,
        item: Result<CallEvent, Error>,
    },
    /// An INVOCATION for a registration we do not (or no longer) hold: answer ERROR.
    RefuseInvocation { request: u64 },
    /// The session ends; send `reply` (our GOODBYE) first, if any.
    Close {
        reason: CloseReason,
        reply: Option<Message>,
    },
    /// The router broke the protocol: ABORT with `wamp.error.protocol_violation`.
    Violation(String),
}

/// An INVOCATION's contents, before it is bound to its session.
#[derive(Debug)]
pub(crate) struct InvocationData {
    pub request: u64,
    pub registration: u64,
    pub details: Dict,
    pub payload: Payload,
    pub args: Vec<Value>,
    pub kwargs: Dict,
    pub interrupt: watch::Receiver<Option<InterruptMode>>,
    pub chunks: Option<mpsc::Receiver<InvocationChunk>>,
}

/// The bookkeeping of one session.
pub(crate) struct State {
    pub phase: Phase,
    /// Capacity of the queues made here (chunks of progressive invocations).
    pub queue_capacity: usize,
    calls: HashMap<u64, CallSink>,
    publishes: HashMap<u64, oneshot::Sender<Result<u64, Error>>>,
    subscribes: HashMap<u64, PendingSubscribe>,
    unsubscribes: HashMap<u64, PendingUnsubscribe>,
    /// Router subscription id → number of UNSUBSCRIBEs for it in flight.
    unsubscribing: HashMap<u64, u32>,
    registers: HashMap<u64, PendingRegister>,
    unregisters: HashMap<u64, oneshot::Sender<Result<(), Error>>>,
    /// Router subscription id → local subscribers.
    subscriptions: HashMap<u64, Vec<LocalSubscriber>>,
    /// Router registration id → local callee.
    registrations: HashMap<u64, LocalCallee>,
    /// INVOCATION request id → the invocation, until the callee answers.
    invocations: HashMap<u64, ActiveInvocation>,
    /// Progressive invocations that ended while chunks could still come.
    recent_chunked: VecDeque<u64>,
    recent_chunked_set: HashSet<u64>,
    next_local: u64,
}

/// How the session ends when the router breaks the protocol: the client's ABORT.
pub(crate) fn violation(text: &str) -> CloseReason {
    CloseReason::Abort {
        reason: error_uri::PROTOCOL_VIOLATION.into(),
        message: Some(text.to_owned()),
    }
}

/// Decodes a payload into positional and keyword arguments. A non-list `Arguments`
/// element (payload transparency) becomes the only positional argument.
pub(crate) fn decode_args(payload: &Payload) -> Result<(Vec<Value>, Dict), String> {
    let elements = payload.elements().map_err(|e| e.to_string())?;
    let args = match elements.args {
        None => Vec::new(),
        Some(Value::List(list)) => list,
        Some(other) => vec![other],
    };
    Ok((args, elements.kwargs.unwrap_or_default()))
}

impl State {
    /// A freshly established session.
    pub(crate) fn new() -> State {
        State {
            phase: Phase::Established,
            queue_capacity: 1024,
            calls: HashMap::new(),
            publishes: HashMap::new(),
            subscribes: HashMap::new(),
            unsubscribes: HashMap::new(),
            unsubscribing: HashMap::new(),
            registers: HashMap::new(),
            unregisters: HashMap::new(),
            subscriptions: HashMap::new(),
            registrations: HashMap::new(),
            invocations: HashMap::new(),
            recent_chunked: VecDeque::new(),
            recent_chunked_set: HashSet::new(),
            next_local: 0,
        }
    }

    /// A freshly established session whose queues hold `capacity` items.
    pub(crate) fn with_queue_capacity(capacity: usize) -> State {
        State {
            queue_capacity: capacity,
            ..State::new()
        }
    }

    /// Whether requests may be sent.
    pub(crate) fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// A fresh id for a local subscription or registration handle.
    pub(crate) fn next_local(&mut self) -> u64 {
        self.next_local += 1;
        self.next_local
    }

    /// Number of requests waiting for a reply.
    #[cfg(test)]
    pub(crate) fn pending_count(&self) -> usize {
        self.calls.len()
            + self.publishes.len()
            + self.subscribes.len()
            + self.unsubscribes.len()
            + self.registers.len()
            + self.unregisters.len()
    }

    pub(crate) fn add_call(&mut self, request: u64, sink: CallSink) {
        self.calls.insert(request, sink);
    }

    /// Whether call `request` still waits for its outcome.
    pub(crate) fn has_call(&self, request: u64) -> bool {
        self.calls.contains_key(&request)
    }

    /// Forgets call `request`; `true` if it was still waiting.
    pub(crate) fn remove_call(&mut self, request: u64) -> bool {
        self.calls.remove(&request).is_some()
    }

    /// Number of invocations not answered yet.
    #[cfg(test)]
    pub(crate) fn active_invocations(&self) -> usize {
        self.invocations.len()
    }

    /// The callee answered (or dropped) invocation `request`: forget it. If chunks
    /// may still come for it, remember its ID for a while to drop them.
    pub(crate) fn end_invocation(&mut self, request: u64) {
        let Some(active) = self.invocations.remove(&request) else {
            return;
        };
        if active.chunks.is_some() {
            self.remember_chunked(request);
        }
    }

    fn remember_chunked(&mut self, request: u64) {
        if self.recent_chunked_set.insert(request) {
            self.recent_chunked.push_back(request);
            if self.recent_chunked.len() > RECENT_CHUNKED {
                if let Some(old) = self.recent_chunked.pop_front() {
                    self.recent_chunked_set.remove(&old);
                }
            }
        }
    }

    pub(crate) fn add_publish(&mut self, request: u64, reply: oneshot::Sender<Result<u64, Error>>) {
        self.publishes.insert(request, reply);
    }

    pub(crate) fn add_subscribe(&mut self, request: u64, pending: PendingSubscribe) {
        self.subscribes.insert(request, pending);
    }

    /// Records UNSUBSCRIBE `request` of router subscription `subscription`, just
    /// being sent.
    pub(crate) fn add_unsubscribe(
        &mut self,
        request: u64,
        subscription: u64,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    ) {
        *self.unsubscribing.entry(subscription).or_default() += 1;
        self.unsubscribes.insert(
            request,
            PendingUnsubscribe {
                subscription,
                reply,
            },
        );
    }

    /// UNSUBSCRIBE `request` is answered: forget it; the reply channel, if any.
    fn end_unsubscribe(&mut self, request: u64) -> Option<oneshot::Sender<Result<(), Error>>> {
        let pending = self.unsubscribes.remove(&request)?;
        if let Some(count) = self.unsubscribing.get_mut(&pending.subscription) {
            *count -= 1;
            if *count == 0 {
                self.unsubscribing.remove(&pending.subscription);
            }
        }
        pending.reply
    }

    /// Whether router subscription `subscription` has local subscribers.
    pub(crate) fn has_subscribers(&self, subscription: u64) -> bool {
        self.subscriptions.contains_key(&subscription)
    }

    pub(crate) fn add_register(&mut self, request: u64, pending: PendingRegister) {
        self.registers.insert(request, pending);
    }

    pub(crate) fn add_unregister(
        &mut self,
        request: u64,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        self.unregisters.insert(request, reply);
    }

    /// Forgets a pending request whose caller stopped waiting.
    pub(crate) fn forget(&mut self, kind: RequestKind, request: u64) {
        match kind {
            RequestKind::Publish => drop(self.publishes.remove(&request)),
            RequestKind::Subscribe => drop(self.subscribes.remove(&request)),
            // Still tracked until answered: a SUBSCRIBED naming the subscription
            // must know that it is going away.
            RequestKind::Unsubscribe => {
                if let Some(pending) = self.unsubscribes.get_mut(&request) {
                    pending.reply = None;
                }
            }
            RequestKind::Register => drop(self.registers.remove(&request)),
            RequestKind::Unregister => drop(self.unregisters.remove(&request)),
        }
    }

    /// Removes local subscriber `local` of router subscription `subscription`.
    /// Returns `true` if it was the last one, so the router subscription should go.
    pub(crate) fn remove_subscriber(&mut self, subscription: u64, local: u64) -> bool {
        let Some(subscribers) = self.subscriptions.get_mut(&subscription) else {
            return false;
        };
        let before = subscribers.len();
        subscribers.retain(|s| s.local != local);
        if subscribers.len() == before {
            return false;
        }
        if subscribers.is_empty() {
            self.subscriptions.remove(&subscription);
            true
        } else {
            false
        }
    }

    /// Removes the local callee `local` of registration `registration`. Returns `true`
    /// if it was there, so the router registration should go.
    pub(crate) fn remove_callee(&mut self, registration: u64, local: u64) -> bool {
        match self.registrations.get(&registration) {
            Some(callee) if callee.local == local => {
                self.registrations.remove(&registration);
                true
            }
            _ => false,
        }
    }

    /// Ends the session: records `reason`, fails every pending request and drops the
    /// event and invocation channels (so subscriptions and registrations end).
    /// Does nothing if the session is already closed.
    pub(crate) fn close(&mut self, reason: &CloseReason) {
        if matches!(self.phase, Phase::Closed(_)) {
            return;
        }
        self.phase = Phase::Closed(reason.clone());
        fn err<T>(reason: &CloseReason) -> Result<T, Error> {
            Err(Error::from_close(reason))
        }
        for (_, sink) in self.calls.drain() {
            match sink {
                CallSink::Once(tx) => drop(tx.send(err(reason))),
                CallSink::Stream(tx) => drop(tx.try_send(err(reason))),
            }
        }
        for (_, tx) in self.publishes.drain() {
            let _ = tx.send(err(reason));
        }
        for (_, p) in self.subscribes.drain() {
            let _ = p.reply.send(err(reason));
        }
        for (_, pending) in self.unsubscribes.drain() {
            if let Some(tx) = pending.reply {
                let _ = tx.send(err(reason));
            }
        }
        self.unsubscribing.clear();
        for (_, p) in self.registers.drain() {
            let _ = p.reply.send(err(reason));
        }
        for (_, tx) in self.unregisters.drain() {
            let _ = tx.send(err(reason));
        }
        self.subscriptions.clear();
        self.registrations.clear();
        // Dropping the interrupt senders wakes `Invocation::interrupted`.
        self.invocations.clear();
    }

    /// Handles one message from the router. When the session ends (GOODBYE, ABORT,
    /// a protocol violation) the state is closed at once, so that nothing more is
    /// sent after our GOODBYE or ABORT.
    pub(crate) fn on_message(&mut self, message: Message) -> Action {
        let action = self.dispatch(message);
        match &action {
            Action::Close { reason, .. } => self.close(reason),
            Action::Violation(text) => self.close(&violation(text)),
            _ => {}
        }
        action
    }

    fn dispatch(&mut self, message: Message) -> Action {
        match self.phase {
            Phase::Closed(_) => return Action::Nothing,
            Phase::ShuttingDown => {
                return match message {
                    Message::Goodbye { .. } => Action::Close {
                        reason: CloseReason::Left,
                        reply: None,
                    },
                    Message::Abort {
                        details, reason, ..
                    } => Action::Close {
                        reason: CloseReason::Abort {
                            reason,
                            message: message_of(&details),
                        },
                        reply: None,
                    },
                    // Spec: after sending GOODBYE, everything else is ignored.
                    _ => Action::Nothing,
                };
            }
            Phase::Established => {}
        }
        match message {
            Message::Abort {
                details, reason, ..
            } => Action::Close {
                reason: CloseReason::Abort {
                    reason,
                    message: message_of(&details),
                },
                reply: None,
            },
            Message::Goodbye { details, reason } => Action::Close {
                reason: CloseReason::Goodbye {
                    reason,
                    message: message_of(&details),
                },
                reply: Some(Message::goodbye(error_uri::CLOSE_GOODBYE_AND_OUT)),
            },
            Message::Error {
                request_type,
                request,
                error,
                payload,
                ..
            } => self.on_error(request_type, request, error, &payload),
            Message::Result {
                request,
                details,
                payload,
            } => self.on_result(request, details, &payload),
            Message::Published {
                request,
                publication,
            } => {
                if let Some(tx) = self.publishes.remove(&request) {
                    let _ = tx.send(Ok(publication));
                }
                Action::Nothing
            }
            Message::Subscribed {
                request,
                subscription,
            } => self.on_subscribed(request, subscription),
            Message::Unsubscribed {
                request: 0,
                details,
            } => {
                // Revocation: the router ended the subscription. Dropping the
                // queues' senders ends the `Subscription`s once they are drained.
                let details = details.unwrap_or_default();
                match details.get("subscription").and_then(Value::as_u64) {
                    Some(id) => {
                        let reason = details
                            .get("reason")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        for subscriber in self.subscriptions.remove(&id).unwrap_or_default() {
                            subscriber.sink.status.revoke(reason.clone());
                        }
                        Action::Nothing
                    }
                    None => Action::Violation(
                        "UNSUBSCRIBED with request 0 names no subscription".into(),
                    ),
                }
            }
            Message::Unsubscribed { request, .. } => {
                if let Some(tx) = self.end_unsubscribe(request) {
                    let _ = tx.send(Ok(()));
                }
                Action::Nothing
            }
            Message::Registered {
                request,
                registration,
            } => {
                if let Some(p) = self.registers.remove(&request) {
                    if p.reply.send(Ok(registration)).is_ok() {
                        self.registrations.insert(
                            registration,
                            LocalCallee {
                                local: p.local,
                                invocations: p.invocations,
                                revoked: p.revoked,
                            },
                        );
                    }
                }
                Action::Nothing
            }
            Message::Unregistered {
                request: 0,
                details,
            } => {
                // Revocation: the router ended the registration. Dropping the
                // queue's sender ends the `Registration` once it is drained.
                let details = details.unwrap_or_default();
                match details.get("registration").and_then(Value::as_u64) {
                    Some(id) => {
                        if let Some(callee) = self.registrations.remove(&id) {
                            let reason = details
                                .get("reason")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            let _ = callee.revoked.set(reason);
                        }
                        Action::Nothing
                    }
                    None => Action::Violation(
                        "UNREGISTERED with request 0 names no registration".into(),
                    ),
                }
            }
            Message::Unregistered { request, .. } => {
                if let Some(tx) = self.unregisters.remove(&request) {
                    let _ = tx.send(Ok(()));
                }
                Action::Nothing
            }
            Message::Event {
                subscription,
                publication,
                details,
                payload,
            } => {
                let Some(subscribers) = self.subscriptions.get(&subscription) else {
                    // Late event for a subscription we just dropped.
                    return Action::Nothing;
                };
                let targets: Vec<_> = subscribers.iter().map(|s| s.sink.clone()).collect();
                let (args, kwargs) = decode_args(&payload).unwrap_or_else(|e| {
                    tracing::warn!("EVENT payload cannot be decoded: {e}");
                    Default::default()
                });
                Action::Events {
                    targets,
                    event: Event {
                        subscription,
                        publication,
                        args,
                        kwargs,
                        details,
                        payload,
                    },
                }
            }
            Message::Invocation {
                request,
                registration,
                details,
                payload,
            } => self.on_invocation(request, registration, details, payload),
            Message::Interrupt { request, options } => {
                // An INTERRUPT for an invocation already answered is a harmless race.
                if let Some(active) = self.invocations.get_mut(&request) {
                    let mode = InterruptMode::from_options(&options);
                    // No more chunks come after an interrupt.
                    active.chunks = None;
                    active.interrupt.send_if_modified(|current| {
                        if current.is_none() {
                            *current = Some(mode);
                            true
                        } else {
                            false
                        }
                    });
                }
                Action::Nothing
            }
            other => Action::Violation(format!(
                "{} is not allowed from a router in an established session",
                other.message_type().name()
            )),
        }
    }

    /// SUBSCRIBED: hands the subscription to its waiter and installs its queue.
    ///
    /// A router answers a repeated SUBSCRIBE with the subscription it already has.
    /// If that one is being unsubscribed (our UNSUBSCRIBE is in flight and, replies
    /// coming in order, reached the router after this SUBSCRIBE), the UNSUBSCRIBE
    /// will remove this subscriber too: subscribe again instead.
    fn on_subscribed(&mut self, request: u64, subscription: u64) -> Action {
        let Some(mut pending) = self.subscribes.remove(&request) else {
            return Action::Nothing;
        };
        if self.unsubscribing.contains_key(&subscription) {
            if pending.attempts >= MAX_RESUBSCRIBES {
                let _ = pending.reply.send(Err(Error::Protocol(format!(
                    "SUBSCRIBED keeps naming subscription {subscription}, which is being \
                     unsubscribed"
                ))));
                return Action::Nothing;
            }
            pending.attempts += 1;
            return Action::Resubscribe(pending);
        }
        if pending.reply.send(Ok(subscription)).is_ok() {
            // The waiter cannot drop its `Subscription` before we release the lock.
            self.subscriptions
                .entry(subscription)
                .or_default()
                .push(LocalSubscriber {
                    local: pending.local,
                    sink: pending.sink,
                });
            Action::Nothing
        } else if self.has_subscribers(subscription) {
            Action::Nothing
        } else {
            // Nobody waits for it any more: do not leave it behind at the router.
            Action::Unsubscribe { subscription }
        }
    }

    fn on_result(&mut self, request: u64, details: Dict, payload: &Payload) -> Action {
        let progress = details.get("progress").and_then(Value::as_bool) == Some(true);
        let Some(sink) = self.calls.get(&request) else {
            // A late answer to a call given up on.
            return Action::Nothing;
        };
        let result = decode_args(payload)
            .map(|(args, kwargs)| CallResult {
                args,
                kwargs,
                details,
            })
            .map_err(|e| Error::Protocol(format!("RESULT payload: {e}")));
        match sink {
            CallSink::Once(_) if progress => Action::Violation(format!(
                "progressive RESULT for call {request}, which did not ask for progressive results"
            )),
            CallSink::Once(_) => {
                if let Some(CallSink::Once(tx)) = self.calls.remove(&request) {
                    let _ = tx.send(result);
                }
                Action::Nothing
            }
            CallSink::Stream(target) => {
                let target = target.clone();
                let item = result.map(|r| {
                    if progress {
                        CallEvent::Progress(r)
                    } else {
                        CallEvent::Final(r)
                    }
                });
                if !progress || item.is_err() {
                    self.calls.remove(&request);
                }
                Action::CallItem { target, item }
            }
        }
    }

    fn on_invocation(
        &mut self,
        request: u64,
        registration: u64,
        details: Dict,
        payload: Payload,
    ) -> Action {
        let progress = details.get("progress").and_then(Value::as_bool) == Some(true);
        let decode = |payload: &Payload| {
            decode_args(payload).unwrap_or_else(|e| {
                tracing::warn!("INVOCATION payload cannot be decoded: {e}");
                Default::default()
            })
        };
        if let Some(active) = self.invocations.get_mut(&request) {
            // The same request ID again: a further chunk of a progressive call
            // invocation.
            if active.registration != registration {
                return Action::Violation(format!(
                    "INVOCATION {request} for registration {registration} reuses the ID of an \
                     invocation of registration {}",
                    active.registration
                ));
            }
            if active.interrupt.borrow().is_some() {
                // Sent before the router saw our answer to the interrupt: drop it.
                return Action::Nothing;
            }
            let Some(target) = active.chunks.clone() else {
                return Action::Violation(format!(
                    "INVOCATION {request} repeats the ID of an invocation in progress that \
                     takes no further chunks"
                ));
            };
            if !progress {
                active.chunks = None;
            }
            let (args, kwargs) = decode(&payload);
            return Action::Chunk {
                target,
                chunk: InvocationChunk {
                    args,
                    kwargs,
                    details,
                    payload,
                    last: !progress,
                },
            };
        }
        if self.recent_chunked_set.contains(&request) {
            // A late chunk of a progressive invocation already answered.
            return Action::Nothing;
        }
        let Some(callee) = self.registrations.get(&registration) else {
            if progress {
                self.remember_chunked(request);
            }
            return Action::RefuseInvocation { request };
        };
        let target = callee.invocations.clone();
        let (interrupt_tx, interrupt) = watch::channel(None);
        let (chunk_tx, chunks) = if progress {
            let (tx, rx) = mpsc::channel(self.queue_capacity.max(1));
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.invocations.insert(
            request,
            ActiveInvocation {
                registration,
                interrupt: interrupt_tx,
                chunks: chunk_tx,
            },
        );
        let (args, kwargs) = decode(&payload);
        Action::Invoke {
            target,
            invocation: InvocationData {
                request,
                registration,
                details,
                payload,
                args,
                kwargs,
                interrupt,
                chunks,
            },
        }
    }

    fn on_error(
        &mut self,
        request_type: MessageType,
        request: u64,
        uri: String,
        payload: &Payload,
    ) -> Action {
        let (args, kwargs) = decode_args(payload).unwrap_or_else(|e| {
            tracing::warn!("ERROR payload cannot be decoded: {e}");
            Default::default()
        });
        let error = Error::Wamp { uri, args, kwargs };
        match request_type {
            MessageType::Call => match self.calls.remove(&request) {
                Some(CallSink::Once(tx)) => drop(tx.send(Err(error))),
                Some(CallSink::Stream(target)) => {
                    return Action::CallItem {
                        target,
                        item: Err(error),
                    }
                }
                None => {}
            },
            MessageType::Publish => {
                if let Some(tx) = self.publishes.remove(&request) {
                    let _ = tx.send(Err(error));
                }
            }
            MessageType::Subscribe => {
                if let Some(p) = self.subscribes.remove(&request) {
                    let _ = p.reply.send(Err(error));
                }
            }
            MessageType::Unsubscribe => {
                if let Some(tx) = self.end_unsubscribe(request) {
                    let _ = tx.send(Err(error));
                }
            }
            MessageType::Register => {
                if let Some(p) = self.registers.remove(&request) {
                    let _ = p.reply.send(Err(error));
                }
            }
            MessageType::Unregister => {
                if let Some(tx) = self.unregisters.remove(&request) {
                    let _ = tx.send(Err(error));
                }
            }
            other => {
                return Action::Violation(format!(
                    "ERROR for a {} request cannot go to a client",
                    other.name()
                ))
            }
        }
        Action::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_proto::dict;

    fn call_pending(state: &mut State, id: u64) -> oneshot::Receiver<Result<CallResult, Error>> {
        let (tx, rx) = oneshot::channel();
        state.add_call(id, CallSink::Once(tx));
        rx
    }

    fn subscribe_pending(
        state: &mut State,
        id: u64,
    ) -> (
        oneshot::Receiver<Result<u64, Error>>,
        mpsc::Receiver<Event>,
        u64,
    ) {
        let (reply, rx) = oneshot::channel();
        let (sink, erx) = EventSink::channel(4);
        let local = state.next_local();
        state.add_subscribe(
            id,
            PendingSubscribe {
                local,
                sink,
                topic: "com.example.topic".into(),
                options: Dict::new(),
                reply,
                attempts: 0,
            },
        );
        (rx, erx, local)
    }

    #[test]
    fn result_completes_the_matching_call() {
        let mut st = State::new();
        let mut r1 = call_pending(&mut st, 1);
        let mut r2 = call_pending(&mut st, 2);
        let action = st.on_message(Message::Result {
            request: 2,
            details: Dict::new(),
            payload: Payload::new(vec![Value::from(5)], dict! {"k" => "v"}),
        });
        assert!(matches!(action, Action::Nothing));
        let res = r2.try_recv().expect("reply").expect("ok");
        assert_eq!(res.args, vec![Value::from(5)]);
        assert_eq!(res.kwargs, dict! {"k" => "v"});
        assert!(r1.try_recv().is_err());
        // A duplicate or unknown RESULT is ignored.
        assert!(matches!(
            st.on_message(Message::Result {
                request: 2,
                details: Dict::new(),
                payload: Payload::empty()
            }),
            Action::Nothing
        ));
        assert_eq!(st.pending_count(), 1);
    }

    #[test]
    fn error_fails_the_matching_request_by_type() {
        let mut st = State::new();
        let mut call = call_pending(&mut st, 1);
        let (ptx, mut prx) = oneshot::channel();
        st.add_publish(1, ptx);
        st.on_message(Message::error(
            MessageType::Publish,
            1,
            "wamp.error.not_authorized",
            Payload::from_args(vec![Value::from("no")]),
        ));
        assert!(
            call.try_recv().is_err(),
            "the CALL with the same id is untouched"
        );
        match prx.try_recv().expect("reply") {
            Err(Error::Wamp { uri, args, .. }) => {
                assert_eq!(uri, "wamp.error.not_authorized");
                assert_eq!(args, vec![Value::from("no")]);
            }
            other => panic!("unexpected {other:?}"),
        }
        st.on_message(Message::error(
            MessageType::Call,
            1,
            "wamp.error.no_such_procedure",
            Payload::empty(),
        ));
        let err = call.try_recv().expect("reply").expect_err("error");
        assert_eq!(err.uri(), Some("wamp.error.no_such_procedure"));
    }

    #[test]
    fn error_for_invocation_is_a_violation() {
        let mut st = State::new();
        let action = st.on_message(Message::error(
            MessageType::Invocation,
            1,
            "x.y",
            Payload::empty(),
        ));
        assert!(matches!(action, Action::Violation(_)));
    }

    #[test]
    fn events_reach_every_local_subscriber() {
        let mut st = State::new();
        let (mut a_reply, _a_events, _) = subscribe_pending(&mut st, 1);
        let (mut b_reply, _b_events, b_local) = subscribe_pending(&mut st, 2);
        st.on_message(Message::Subscribed {
            request: 1,
            subscription: 77,
        });
        st.on_message(Message::Subscribed {
            request: 2,
            subscription: 77,
        });
        assert_eq!(a_reply.try_recv().expect("a").expect("ok"), 77);
        assert_eq!(b_reply.try_recv().expect("b").expect("ok"), 77);
        let event = Message::Event {
            subscription: 77,
            publication: 9,
            details: Dict::new(),
            payload: Payload::from_args(vec![Value::from("hi")]),
        };
        match st.on_message(event.clone()) {
            Action::Events { targets, event } => {
                assert_eq!(targets.len(), 2);
                assert_eq!(event.publication, 9);
                assert_eq!(event.args, vec![Value::from("hi")]);
            }
            _ => panic!("expected events"),
        }
        // Removing one subscriber keeps the router subscription for the other.
        assert!(!st.remove_subscriber(77, b_local));
        match st.on_message(event.clone()) {
            Action::Events { targets, .. } => assert_eq!(targets.len(), 1),
            _ => panic!("expected events"),
        }
        assert!(!st.remove_subscriber(77, 12345), "unknown local");
        assert!(st.remove_subscriber(77, 1), "last subscriber");
        assert!(matches!(st.on_message(event), Action::Nothing));
    }

    #[test]
    fn subscribed_after_the_subscriber_gave_up_installs_nothing() {
        let mut st = State::new();
        let (reply, _events, _) = subscribe_pending(&mut st, 1);
        drop(reply);
        // Nobody else holds subscription 5: it is unsubscribed.
        assert!(matches!(
            st.on_message(Message::Subscribed {
                request: 1,
                subscription: 5,
            }),
            Action::Unsubscribe { subscription: 5 }
        ));
        let event = Message::Event {
            subscription: 5,
            publication: 1,
            details: Dict::new(),
            payload: Payload::empty(),
        };
        assert!(matches!(st.on_message(event), Action::Nothing));
    }

    #[test]
    fn revocation_ends_a_subscription() {
        let mut st = State::new();
        let (_reply, mut events, _) = subscribe_pending(&mut st, 1);
        let (_reply2, events2, _) = subscribe_pending(&mut st, 2);
        let sinks: Vec<_> = st.subscribes.values().map(|p| p.sink.clone()).collect();
        for request in [1, 2] {
            st.on_message(Message::Subscribed {
                request,
                subscription: 5,
            });
        }
        st.on_message(Message::Unsubscribed {
            request: 0,
            details: Some(dict! {"subscription" => 5u64, "reason" => "wamp.x"}),
        });
        for sink in &sinks {
            assert_eq!(sink.status_reason(), Some(Some("wamp.x".to_owned())));
        }
        drop(sinks);
        // Both queues' senders are gone.
        assert!(events.try_recv().is_err() && events.is_closed());
        assert!(events2.is_closed());
        let event = Message::Event {
            subscription: 5,
            publication: 1,
            details: Dict::new(),
            payload: Payload::empty(),
        };
        assert!(matches!(st.on_message(event), Action::Nothing));
        // Revoking an unknown subscription is harmless; naming none is a violation.
        assert!(matches!(
            st.on_message(Message::Unsubscribed {
                request: 0,
                details: Some(dict! {"subscription" => 6u64}),
            }),
            Action::Nothing
        ));
        assert!(matches!(
            st.on_message(Message::Unsubscribed {
                request: 0,
                details: Some(Dict::new()),
            }),
            Action::Violation(_)
        ));
    }

    #[test]
    fn subscribed_naming_a_subscription_being_unsubscribed_subscribes_again() {
        let mut st = State::new();
        let (_a, _a_events, a_local) = subscribe_pending(&mut st, 1);
        st.on_message(Message::Subscribed {
            request: 1,
            subscription: 5,
        });
        // The last local subscriber goes; UNSUBSCRIBE 2 is sent.
        assert!(st.remove_subscriber(5, a_local));
        st.add_unsubscribe(2, 5, None);
        // Meanwhile SUBSCRIBE 3 for the same topic was answered with subscription 5.
        let (mut b, _b_events, _) = subscribe_pending(&mut st, 3);
        let pending = match st.on_message(Message::Subscribed {
            request: 3,
            subscription: 5,
        }) {
            Action::Resubscribe(pending) => pending,
            _ => panic!("expected a resubscribe"),
        };
        assert_eq!(pending.topic, "com.example.topic");
        assert_eq!(pending.attempts, 1);
        assert!(b.try_recv().is_err(), "the waiter still waits");
        st.add_subscribe(4, pending);
        // UNSUBSCRIBED 2 first (replies in order), then SUBSCRIBED 4.
        st.on_message(Message::Unsubscribed {
            request: 2,
            details: None,
        });
        assert!(matches!(
            st.on_message(Message::Subscribed {
                request: 4,
                subscription: 6,
            }),
            Action::Nothing
        ));
        assert_eq!(b.try_recv().expect("reply").expect("ok"), 6);
        assert!(st.has_subscribers(6));
        assert!(st.unsubscribing.is_empty());
    }

    #[test]
    fn resubscribing_gives_up_after_a_few_attempts() {
        let mut st = State::new();
        st.add_unsubscribe(1, 5, None);
        let (mut reply, _events, _) = subscribe_pending(&mut st, 2);
        let mut request = 2;
        loop {
            match st.on_message(Message::Subscribed {
                request,
                subscription: 5,
            }) {
                Action::Resubscribe(pending) => {
                    request += 1;
                    st.add_subscribe(request, pending);
                }
                Action::Nothing => break,
                _ => panic!("unexpected action"),
            }
        }
        assert_eq!(request, 2 + u64::from(MAX_RESUBSCRIBES));
        assert!(matches!(reply.try_recv(), Ok(Err(Error::Protocol(_)))));
    }

    #[test]
    fn unsubscribe_error_and_forget_keep_the_bookkeeping_straight() {
        let mut st = State::new();
        let (tx, mut rx) = oneshot::channel();
        st.add_unsubscribe(1, 5, Some(tx));
        st.add_unsubscribe(2, 5, None);
        st.forget(RequestKind::Unsubscribe, 1);
        assert!(st.unsubscribing.contains_key(&5), "forgotten but in flight");
        assert!(rx.try_recv().is_err());
        st.on_message(Message::error(
            MessageType::Unsubscribe,
            1,
            "wamp.error.no_such_subscription",
            Payload::empty(),
        ));
        assert!(st.unsubscribing.contains_key(&5));
        st.on_message(Message::Unsubscribed {
            request: 2,
            details: None,
        });
        assert!(st.unsubscribing.is_empty());
        assert!(st.unsubscribes.is_empty());
    }

    #[test]
    fn invocations_go_to_the_registration_and_unknown_ones_are_refused() {
        let mut st = State::new();
        let (reply, mut reply_rx) = oneshot::channel();
        let (invocations, _inv_rx) = mpsc::channel(4);
        let local = st.next_local();
        st.add_register(
            3,
            PendingRegister {
                local,
                invocations,
                revoked: Revocation::default(),
                reply,
            },
        );
        st.on_message(Message::Registered {
            request: 3,
            registration: 40,
        });
        assert_eq!(reply_rx.try_recv().expect("reply").expect("ok"), 40);
        // INVOCATION ids need not be sequential.
        for request in [1000, 7, 123456] {
            match st.on_message(Message::Invocation {
                request,
                registration: 40,
                details: dict! {"caller" => 5u64},
                payload: Payload::new(vec![], dict! {"a" => 1}),
            }) {
                Action::Invoke { invocation, .. } => {
                    assert_eq!(invocation.request, request);
                    assert_eq!(invocation.kwargs, dict! {"a" => 1});
                    assert_eq!(invocation.details, dict! {"caller" => 5u64});
                }
                _ => panic!("expected an invocation"),
            }
        }
        assert!(matches!(
            st.on_message(Message::Invocation {
                request: 8,
                registration: 41,
                details: Dict::new(),
                payload: Payload::empty(),
            }),
            Action::RefuseInvocation { request: 8 }
        ));
        assert!(!st.remove_callee(40, local + 1));
        assert!(st.remove_callee(40, local));
        assert!(matches!(
            st.on_message(Message::Invocation {
                request: 9,
                registration: 40,
                details: Dict::new(),
                payload: Payload::empty(),
            }),
            Action::RefuseInvocation { request: 9 }
        ));
    }

    #[test]
    fn goodbye_from_router_is_answered_and_closes() {
        let mut st = State::new();
        match st.on_message(Message::Goodbye {
            details: dict! {"message" => "bye"},
            reason: "wamp.close.system_shutdown".into(),
        }) {
            Action::Close { reason, reply } => {
                assert_eq!(
                    reason,
                    CloseReason::Goodbye {
                        reason: "wamp.close.system_shutdown".into(),
                        message: Some("bye".into())
                    }
                );
                assert_eq!(reply, Some(Message::goodbye("wamp.close.goodbye_and_out")));
            }
            _ => panic!("expected close"),
        }
    }

    #[test]
    fn shutting_down_ignores_all_but_goodbye_and_abort() {
        let mut st = State::new();
        let mut call = call_pending(&mut st, 1);
        st.phase = Phase::ShuttingDown;
        assert!(matches!(
            st.on_message(Message::Result {
                request: 1,
                details: Dict::new(),
                payload: Payload::empty()
            }),
            Action::Nothing
        ));
        assert!(matches!(
            st.on_message(Message::Hello {
                realm: "r".into(),
                details: Dict::new()
            }),
            Action::Nothing
        ));
        match st.on_message(Message::goodbye("wamp.close.goodbye_and_out")) {
            Action::Close { reason, reply } => {
                assert_eq!(reason, CloseReason::Left);
                assert!(reply.is_none());
            }
            _ => panic!("expected close"),
        }
        st.close(&CloseReason::Left);
        assert!(matches!(call.try_recv(), Ok(Err(Error::Closed))));
    }

    #[test]
    fn close_fails_everything_pending() {
        let mut st = State::new();
        let mut call = call_pending(&mut st, 1);
        let (mut sub, mut events, _) = subscribe_pending(&mut st, 2);
        let (tx, mut unsub) = oneshot::channel();
        st.add_unsubscribe(3, 99, Some(tx));
        let reason = CloseReason::Abort {
            reason: "wamp.error.system_shutdown".into(),
            message: None,
        };
        st.close(&reason);
        assert_eq!(st.phase, Phase::Closed(reason.clone()));
        assert_eq!(st.pending_count(), 0);
        for err in [
            call.try_recv().expect("call").expect_err("err"),
            sub.try_recv().expect("sub").expect_err("err"),
            unsub.try_recv().expect("unsub").expect_err("err"),
        ] {
            assert_eq!(err.uri(), Some("wamp.error.system_shutdown"));
        }
        // The pending subscription's channel sender is gone.
        assert!(events.try_recv().is_err());
        // Closing again changes nothing.
        st.close(&CloseReason::TransportLost);
        assert_eq!(st.phase, Phase::Closed(reason));
        assert!(matches!(
            st.on_message(Message::goodbye("x")),
            Action::Nothing
        ));
    }

    #[test]
    fn router_only_messages_from_the_router_are_violations() {
        for message in [
            Message::Welcome {
                session: 1,
                details: Dict::new(),
            },
            Message::Hello {
                realm: "r".into(),
                details: Dict::new(),
            },
            Message::Challenge {
                method: "ticket".into(),
                extra: Dict::new(),
            },
            Message::Call {
                request: 1,
                options: Dict::new(),
                procedure: "p".into(),
                payload: Payload::empty(),
            },
        ] {
            let mut st = State::new();
            assert!(matches!(st.on_message(message), Action::Violation(_)));
        }
    }

    #[test]
    fn forgotten_requests_are_dropped() {
        let mut st = State::new();
        let _call = call_pending(&mut st, 1);
        assert!(st.remove_call(1));
        assert!(!st.remove_call(1));
        assert_eq!(st.pending_count(), 0);
        st.forget(RequestKind::Unregister, 99);
    }

    fn stream_pending(state: &mut State, id: u64) -> mpsc::Sender<Result<CallEvent, Error>> {
        let (tx, _rx) = mpsc::channel(4);
        state.add_call(id, CallSink::Stream(tx.clone()));
        tx
    }

    fn result(request: u64, progress: bool, n: i64) -> Message {
        let details = if progress {
            dict! {"progress" => true}
        } else {
            Dict::new()
        };
        Message::Result {
            request,
            details,
            payload: Payload::from_args(vec![Value::from(n)]),
        }
    }

    #[test]
    fn progressive_results_stay_pending_until_the_final_one() {
        let mut st = State::new();
        let _tx = stream_pending(&mut st, 1);
        for n in 0..3 {
            match st.on_message(result(1, true, n)) {
                Action::CallItem {
                    item: Ok(CallEvent::Progress(r)),
                    ..
                } => assert_eq!(r.args, vec![Value::from(n)]),
                _ => panic!("expected a progress item"),
            }
            assert!(st.has_call(1));
        }
        match st.on_message(result(1, false, 9)) {
            Action::CallItem {
                item: Ok(CallEvent::Final(r)),
                ..
            } => assert_eq!(r.args, vec![Value::from(9)]),
            _ => panic!("expected the final item"),
        }
        assert!(!st.has_call(1));
        // An ERROR ends a progressive call too.
        let _tx = stream_pending(&mut st, 2);
        st.on_message(result(2, true, 0));
        match st.on_message(Message::error(
            MessageType::Call,
            2,
            "wamp.error.canceled",
            Payload::empty(),
        )) {
            Action::CallItem { item: Err(e), .. } => assert!(e.is_canceled()),
            _ => panic!("expected an error item"),
        }
        assert_eq!(st.pending_count(), 0);
    }

    #[test]
    fn progressive_result_for_a_plain_call_is_a_violation() {
        let mut st = State::new();
        let _rx = call_pending(&mut st, 1);
        assert!(matches!(
            st.on_message(result(1, true, 0)),
            Action::Violation(_)
        ));
        assert!(matches!(st.phase, Phase::Closed(_)));
    }

    /// Installs a local callee for `registration`, as REGISTERED would.
    fn registered(st: &mut State, registration: u64) -> (mpsc::Receiver<Invocation>, Revocation) {
        let (invocations, rx) = mpsc::channel(4);
        let revoked = Revocation::default();
        let local = st.next_local();
        st.registrations.insert(
            registration,
            LocalCallee {
                local,
                invocations,
                revoked: revoked.clone(),
            },
        );
        (rx, revoked)
    }

    fn invocation(request: u64, registration: u64, progress: bool, n: i64) -> Message {
        let details = if progress {
            dict! {"progress" => true}
        } else {
            Dict::new()
        };
        Message::Invocation {
            request,
            registration,
            details,
            payload: Payload::from_args(vec![Value::from(n)]),
        }
    }

    #[test]
    fn chunks_of_a_progressive_invocation_follow_its_request_id() {
        let mut st = State::new();
        let (_rx, _) = registered(&mut st, 40);
        let Action::Invoke {
            invocation: data, ..
        } = st.on_message(invocation(7, 40, true, 0))
        else {
            panic!("expected an invocation");
        };
        assert!(data.chunks.is_some());
        for (n, progress) in [(1, true), (2, false)] {
            match st.on_message(invocation(7, 40, progress, n)) {
                Action::Chunk { chunk, .. } => {
                    assert_eq!(chunk.args, vec![Value::from(n)]);
                    assert_eq!(chunk.last, !progress);
                }
                _ => panic!("expected a chunk"),
            }
        }
        // After the last chunk the same ID again is a violation.
        assert!(matches!(
            st.on_message(invocation(7, 40, true, 3)),
            Action::Violation(_)
        ));
    }

    #[test]
    fn late_chunks_after_the_answer_are_dropped() {
        let mut st = State::new();
        let (_rx, _) = registered(&mut st, 40);
        assert!(matches!(
            st.on_message(invocation(7, 40, true, 0)),
            Action::Invoke { .. }
        ));
        st.end_invocation(7);
        assert_eq!(st.active_invocations(), 0);
        assert!(matches!(
            st.on_message(invocation(7, 40, true, 1)),
            Action::Nothing
        ));
        assert!(matches!(
            st.on_message(invocation(7, 40, false, 2)),
            Action::Nothing
        ));
        // Another registration's chunk under an active ID is a violation.
        let (_rx2, _) = registered(&mut st, 41);
        st.on_message(invocation(8, 40, true, 0));
        assert!(matches!(
            st.on_message(invocation(8, 41, true, 1)),
            Action::Violation(_)
        ));
    }

    #[test]
    fn a_plain_invocation_id_repeated_is_a_violation() {
        let mut st = State::new();
        let (_rx, _) = registered(&mut st, 40);
        st.on_message(invocation(7, 40, false, 0));
        assert!(matches!(
            st.on_message(invocation(7, 40, false, 1)),
            Action::Violation(_)
        ));
    }

    #[test]
    fn interrupt_reaches_the_invocation_and_stops_chunks() {
        let mut st = State::new();
        let (_rx, _) = registered(&mut st, 40);
        let Action::Invoke {
            invocation: data, ..
        } = st.on_message(invocation(7, 40, true, 0))
        else {
            panic!("expected an invocation");
        };
        assert_eq!(*data.interrupt.borrow(), None);
        st.on_message(Message::Interrupt {
            request: 7,
            options: dict! {"mode" => "kill"},
        });
        assert_eq!(*data.interrupt.borrow(), Some(InterruptMode::Kill));
        // A second INTERRUPT does not change the mode; unknown ones are ignored.
        st.on_message(Message::Interrupt {
            request: 7,
            options: Dict::new(),
        });
        assert_eq!(*data.interrupt.borrow(), Some(InterruptMode::Kill));
        assert!(matches!(
            st.on_message(Message::Interrupt {
                request: 99,
                options: Dict::new()
            }),
            Action::Nothing
        ));
        // Chunks racing the interrupt are dropped.
        assert!(matches!(
            st.on_message(invocation(7, 40, true, 1)),
            Action::Nothing
        ));
        assert_eq!(
            InterruptMode::from_options(&dict! {"mode" => "killnowait"}),
            InterruptMode::KillNoWait
        );
        assert_eq!(
            InterruptMode::from_options(&Dict::new()),
            InterruptMode::KillNoWait
        );
        // Closing the session drops the interrupt sender.
        st.close(&CloseReason::TransportLost);
        assert!(data.interrupt.has_changed().is_err());
    }

    #[test]
    fn registration_revocation_records_the_reason() {
        let mut st = State::new();
        let (mut rx, revoked) = registered(&mut st, 40);
        st.on_message(Message::Unregistered {
            request: 0,
            details: Some(dict! {"registration" => 40u64, "reason" => "wamp.error.unregistered"}),
        });
        assert_eq!(
            revoked.get(),
            Some(&Some("wamp.error.unregistered".to_owned()))
        );
        assert!(rx.try_recv().is_err());
        assert!(matches!(
            st.on_message(invocation(1, 40, false, 0)),
            Action::RefuseInvocation { request: 1 }
        ));
        assert!(matches!(
            st.on_message(Message::Unregistered {
                request: 0,
                details: Some(Dict::new()),
            }),
            Action::Violation(_)
        ));
    }

    #[test]
    fn opaque_payload_is_one_argument() {
        let payload = Payload::opaque(bytes::Bytes::from_static(b"\x01\x02"));
        let (args, kwargs) = decode_args(&payload).expect("decode");
        assert_eq!(
            args,
            vec![Value::Bytes(bytes::Bytes::from_static(b"\x01\x02"))]
        );
        assert!(kwargs.is_empty());
    }
}
