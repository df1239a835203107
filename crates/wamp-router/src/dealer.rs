//! The dealer's tables: procedures, their registrations, and calls in flight.
//!
//! * Registrations are keyed by (match policy, URI). Finding the registration for a
//!   CALL is one hash lookup for exact registrations; prefix and wildcard
//!   registrations are scanned only when some exist (longest string prefix first,
//!   then the wildcard pattern whose literal components come earliest).
//! * A registration may be shared by several callees (`invoke` policy); each callee
//!   has its own `concurrency` bound and in-flight count.
//! * Pending calls are keyed by (callee session, INVOCATION request id), which is
//!   what YIELD and ERROR carry. CANCEL (rare) finds its call by a scan.
//! * Calls with a router-run timeout also sit in a min-heap of deadlines; calls
//!   without one never touch it. Heap entries are not removed when a call ends
//!   early: an entry whose call is gone (or has a later deadline) is skipped.
//! * Calls whose caller streams its input (progressive call invocations) are also
//!   indexed by (caller, CALL request id), so that further chunks reach the same
//!   invocation; once its input or the call ended, a bounded set of closed streams
//!   (kept until the caller leaves, or the oldest beyond 4096) makes late chunks
//!   disappear quietly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wamp_proto::error_uri as uri_err;
use wamp_proto::message::{Id, MessageType};
use wamp_proto::uri::{prefix_matches, wildcard_matches, MatchPolicy};
use wamp_proto::{dict, random_id, Dict, Message, Payload, Value};

use crate::meta::MetaNote;
use crate::session::SessionHandle;
use crate::{CallLimits, IdMap};

/// A call ended by the router's timer (CALL.Options.timeout).
pub const TIMEOUT: &str = "wamp.error.timeout";
/// The callee cannot take part in an advanced feature the CALL asks for.
pub const FEATURE_NOT_SUPPORTED: &str = "wamp.error.feature_not_supported";
/// REGISTER of a shared procedure with another invocation policy than its first
/// registrant's (the URI Autobahn and Crossbar.io use).
pub const DIFFERENT_INVOCATION_POLICY: &str =
    "wamp.error.procedure_exists_with_different_invocation_policy";
/// Revocation reason when another callee took a registration over (`force_reregister`).
pub const UNREGISTERED: &str = "wamp.error.unregistered";

/// Most closed progressive-invocation streams remembered (to drop late chunks).
const MAX_CLOSED_STREAMS: usize = 4096;

/// How a shared registration picks its callee (`REGISTER.Options.invoke`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InvokePolicy {
    /// One callee only (the default).
    #[default]
    Single,
    /// Callees in turn, in registration order.
    RoundRobin,
    /// A callee chosen at random.
    Random,
    /// The earliest registered callee.
    First,
    /// The latest registered callee.
    Last,
}

impl InvokePolicy {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "single" => Self::Single,
            "roundrobin" => Self::RoundRobin,
            "random" => Self::Random,
            "first" => Self::First,
            "last" => Self::Last,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::RoundRobin => "roundrobin",
            Self::Random => "random",
            Self::First => "first",
            Self::Last => "last",
        }
    }
}

/// How a CANCEL asks for its call to end (`CANCEL.Options.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CancelMode {
    /// Answer the caller now; tell the callee nothing.
    Skip,
    /// Interrupt the callee and answer the caller once the callee answered.
    Kill,
    /// Interrupt the callee and answer the caller now (the default, as Autobahn
    /// sends CANCEL without a mode).
    #[default]
    KillNoWait,
}

impl CancelMode {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "skip" => Self::Skip,
            "kill" => Self::Kill,
            "killnowait" => Self::KillNoWait,
            _ => return None,
        })
    }
}

/// One callee of a registration.
pub struct CalleeEntry {
    /// The callee session.
    pub session: Arc<SessionHandle>,
    /// Most invocations of this callee on this registration at once.
    pub concurrency: Option<usize>,
    /// Invocations of this callee on this registration in flight.
    pub in_flight: usize,
    /// REGISTER.Options.disclose_caller.
    pub disclose_caller: bool,
    /// REGISTER.Options.forward_timeout: the callee runs call timeouts itself.
    pub forward_timeout: bool,
}

impl CalleeEntry {
    fn available(&self, limits: &CallLimits) -> bool {
        self.concurrency.is_none_or(|max| self.in_flight < max)
            && self.session.invocations_in_flight.load(Ordering::Relaxed) < limits.per_callee
    }
}

/// One registration: a procedure (or pattern) and the callees that serve it.
pub struct Registration {
    /// The procedure URI or pattern.
    pub procedure: String,
    /// How `procedure` is matched.
    pub policy: MatchPolicy,
    /// How a callee is picked.
    pub invoke: InvokePolicy,
    /// The callees, in registration order (never empty while registered).
    pub callees: Vec<CalleeEntry>,
    /// Round-robin position.
    next: usize,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

/// What REGISTER asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterOptions {
    /// `match`.
    pub policy: MatchPolicy,
    /// `invoke`.
    pub invoke: InvokePolicy,
    /// `concurrency`.
    pub concurrency: Option<usize>,
    /// `disclose_caller`.
    pub disclose_caller: bool,
    /// `forward_timeout`.
    pub forward_timeout: bool,
    /// `force_reregister`: take the procedure over from its current callees.
    pub force_reregister: bool,
}

/// Whether a call, once cancelled with mode `kill`, waits for its callee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Running normally.
    Running,
    /// Interrupted (mode `kill`): the callee's answer becomes the caller's ERROR.
    Killing,
}

/// A call waiting for its callee's YIELD or ERROR.
pub struct PendingCall {
    /// Who called.
    pub caller: Arc<SessionHandle>,
    /// Who was invoked.
    pub callee: Arc<SessionHandle>,
    /// The caller's CALL request id (RESULT and ERROR mirror it).
    pub call_request: Id,
    /// The registration that was invoked.
    pub registration: Id,
    /// Progressive RESULTs may go to the caller (and the callee was told so).
    pub receive_progress: bool,
    /// Running or being killed.
    pub state: CallState,
    /// Router-run timeout: its length and the current deadline.
    pub timeout: Option<(Duration, Instant)>,
    /// The caller still streams input (progressive call invocations): the details
    /// every further INVOCATION chunk repeats.
    pub stream: Option<Box<Dict>>,
}

impl PendingCall {
    /// A plain call.
    pub fn new(
        caller: Arc<SessionHandle>,
        callee: Arc<SessionHandle>,
        call_request: Id,
        registration: Id,
    ) -> Self {
        PendingCall {
            caller,
            callee,
            call_request,
            registration,
            receive_progress: false,
            state: CallState::Running,
            timeout: None,
            stream: None,
        }
    }
}

/// Where a caller's streaming call (progressive invocations) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Open {
        callee: Id,
        invocation: Id,
    },
    /// The call ended; further chunks are dropped.
    Closed,
}

/// Registrations and pending calls of one realm.
#[derive(Default)]
pub struct Dealer {
    exact: HashMap<String, Id>,
    prefix: HashMap<String, Id>,
    wildcard: HashMap<String, Id>,
    registrations: IdMap<Id, Registration>,
    /// Keyed by (callee session, INVOCATION request id).
    pending: IdMap<(Id, Id), PendingCall>,
    /// Router-run call deadlines, keyed like `pending`.
    timers: BinaryHeap<Reverse<(Instant, Id, Id)>>,
    /// Pending calls with a router-run timeout.
    timed: usize,
    /// Streaming calls by (caller session, CALL request id).
    streams: IdMap<(Id, Id), Stream>,
    /// Closed streams, oldest first (bounds `streams`).
    closed_streams: VecDeque<(Id, Id)>,
    /// The realm's count of subscriptions that may receive meta events: meta
    /// events are recorded only while it is non-zero.
    pub(crate) meta_watch: Arc<AtomicUsize>,
    /// Registration meta events waiting to be published
    /// ([`Dealer::take_meta`]).
    notes: Vec<MetaNote>,
}

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Someone already registered the procedure and one side asks for `single` (or
    /// this very session registered it).
    AlreadyExists,
    /// The procedure is shared with another invocation policy.
    DifferentPolicy,
}

/// Why a call could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRefused {
    /// No registration matches.
    NoSuchProcedure,
    /// The caller has as many calls in flight as it may.
    CallerBusy,
    /// Every callee (or its registration) has as many invocations in flight as it may.
    CalleeBusy,
}

/// The callee chosen for a CALL.
pub struct Route {
    /// The registration.
    pub registration: Id,
    /// The callee.
    pub callee: Arc<SessionHandle>,
    /// Matched by a prefix or wildcard pattern (INVOCATION names the procedure).
    pub pattern: bool,
    /// The callee asked for caller disclosure.
    pub disclose_caller: bool,
    /// The callee runs call timeouts itself.
    pub forward_timeout: bool,
}

/// What to do with a progressive YIELD.
pub enum Progress {
    /// Send this caller a progressive RESULT for its `call_request`.
    Deliver(Arc<SessionHandle>, Id),
    /// The invocation did not ask for progress: the callee broke the protocol.
    Violation,
    /// No such call (or it is being killed): drop it.
    Drop,
}

/// What a CALL with a request id of an earlier streaming call is.
pub enum Chunk {
    /// Not a chunk: a new call.
    NewCall,
    /// A chunk of an ended call: drop it.
    Drop,
    /// Forward as INVOCATION `invocation` on `registration` to `callee` with `details`.
    Forward {
        /// The callee.
        callee: Arc<SessionHandle>,
        /// The INVOCATION request id of the whole call.
        invocation: Id,
        /// The registration.
        registration: Id,
        /// INVOCATION details.
        details: Dict,
    },
}

impl Dealer {
    fn note(&mut self, note: MetaNote) {
        if self.meta_watch.load(Ordering::Relaxed) > 0 {
            self.notes.push(note);
        }
    }

    /// Takes the registration meta events recorded so far.
    pub(crate) fn take_meta(&mut self) -> Vec<MetaNote> {
        if self.notes.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut self.notes)
        }
    }

    /// Ids of the registrations of one policy.
    pub fn ids(&self, policy: MatchPolicy) -> Vec<Id> {
        match policy {
            MatchPolicy::Exact => self.exact.values().copied().collect(),
            MatchPolicy::Prefix => self.prefix.values().copied().collect(),
            MatchPolicy::Wildcard => self.wildcard.values().copied().collect(),
        }
    }

    /// The registration of (`procedure`, `policy`), if any.
    pub fn find(&self, procedure: &str, policy: MatchPolicy) -> Option<Id> {
        match policy {
            MatchPolicy::Exact => self.exact.get(procedure).copied(),
            MatchPolicy::Prefix => self.prefix.get(procedure).copied(),
            MatchPolicy::Wildcard => self.wildcard.get(procedure).copied(),
        }
    }

    fn table(&mut self, policy: MatchPolicy) -> &mut HashMap<String, Id> {
        match policy {
            MatchPolicy::Exact => &mut self.exact,
            MatchPolicy::Prefix => &mut self.prefix,
            MatchPolicy::Wildcard => &mut self.wildcard,
        }
    }

    /// Registers `procedure` for `callee`, or adds `callee` to a shared registration.
    pub fn register(
        &mut self,
        procedure: &str,
        callee: &Arc<SessionHandle>,
        options: RegisterOptions,
    ) -> Result<Id, RegisterError> {
        let entry = CalleeEntry {
            session: callee.clone(),
            concurrency: options.concurrency,
            in_flight: 0,
            disclose_caller: options.disclose_caller,
            forward_timeout: options.forward_timeout,
        };
        if let Some(&existing) = self.table(options.policy).get(procedure) {
            if options.force_reregister {
                self.revoke(existing, None, UNREGISTERED);
            } else if let Some(reg) = self.registrations.get_mut(&existing) {
                // An existing `single` registration is the Basic Profile case; a
                // shared one asked for with another policy (`single` included) is
                // a policy conflict, as Autobahn and Crossbar report it.
                if reg.invoke == InvokePolicy::Single
                    || reg.callees.iter().any(|c| c.session.id == callee.id)
                {
                    return Err(RegisterError::AlreadyExists);
                }
                if reg.invoke != options.invoke {
                    return Err(RegisterError::DifferentPolicy);
                }
                reg.callees.push(entry);
                self.note(MetaNote::Add(callee.id, existing));
                return Ok(existing);
            }
        }
        let id = loop {
            let candidate = random_id();
            if !self.registrations.contains_key(&candidate) {
                break candidate;
            }
        };
        self.table(options.policy).insert(procedure.to_owned(), id);
        self.registrations.insert(
            id,
            Registration {
                procedure: procedure.to_owned(),
                policy: options.policy,
                invoke: options.invoke,
                callees: vec![entry],
                next: 0,
                created_ms: crate::meta::now_ms(),
            },
        );
        self.note(MetaNote::Create(callee.id, id));
        self.note(MetaNote::Add(callee.id, id));
        Ok(id)
    }

    /// Removes `callee` from a registration. Returns whether it was there.
    pub fn unregister(&mut self, registration: Id, callee: Id) -> bool {
        let Some(reg) = self.registrations.get_mut(&registration) else {
            return false;
        };
        let Some(index) = reg.callees.iter().position(|c| c.session.id == callee) else {
            return false;
        };
        reg.callees.remove(index);
        if reg.next > index {
            reg.next -= 1;
        }
        let empty = reg.callees.is_empty();
        self.note(MetaNote::Remove(callee, registration));
        if empty {
            self.delete_registration(registration);
            self.note(MetaNote::Delete(callee, registration));
        }
        true
    }

    fn delete_registration(&mut self, registration: Id) {
        if let Some(reg) = self.registrations.remove(&registration) {
            self.table(reg.policy).remove(&reg.procedure);
        }
    }

    /// The router takes a registration away from `callee` (all its callees when
    /// `None`), for example the meta API's `remove_callee` or `force_reregister`.
    /// Callees that announced `registration_revocation` get
    /// `UNREGISTERED [0, {registration, reason}]`. Their calls in flight go on.
    /// Returns how many callees were removed.
    pub fn revoke(&mut self, registration: Id, callee: Option<Id>, reason: &str) -> usize {
        let Some(reg) = self.registrations.get_mut(&registration) else {
            return 0;
        };
        let mut removed = Vec::new();
        let mut index = 0;
        while index < reg.callees.len() {
            if callee.is_none_or(|id| reg.callees[index].session.id == id) {
                removed.push(reg.callees.remove(index).session);
                if reg.next > index {
                    reg.next -= 1;
                }
            } else {
                index += 1;
            }
        }
        let empty = reg.callees.is_empty();
        for session in &removed {
            self.note(MetaNote::Remove(session.id, registration));
        }
        if empty {
            self.delete_registration(registration);
            let last = removed.last().map_or(0, |s| s.id);
            self.note(MetaNote::Delete(last, registration));
        }
        let notice = Message::Unregistered {
            request: 0,
            details: Some(dict! {
                "registration" => registration,
                "reason" => reason,
            }),
        };
        for session in &removed {
            if session.features.registration_revocation {
                let _ = session.send(&notice);
            }
        }
        removed.len()
    }

    /// The registration serving `procedure`: exact first, then the longest prefix,
    /// then the best wildcard. The bool says whether a pattern matched.
    pub fn lookup(&self, procedure: &str) -> Option<(Id, bool)> {
        if let Some(&id) = self.exact.get(procedure) {
            return Some((id, false));
        }
        if !self.prefix.is_empty() {
            let best = self
                .prefix
                .iter()
                .filter(|(p, _)| prefix_matches(p, procedure))
                .max_by_key(|(p, _)| p.len());
            if let Some((_, &id)) = best {
                return Some((id, true));
            }
        }
        if !self.wildcard.is_empty() {
            let mut best: Option<(&str, Id)> = None;
            for (pattern, &id) in &self.wildcard {
                if wildcard_matches(pattern, procedure)
                    && best.is_none_or(|(b, _)| wildcard_beats(pattern, b))
                {
                    best = Some((pattern, id));
                }
            }
            return best.map(|(_, id)| (id, true));
        }
        None
    }

    /// Picks the callee for a CALL of `procedure` by `caller`, checking the bounds.
    /// Nothing is counted until [`Dealer::start_call`].
    pub fn select(
        &mut self,
        procedure: &str,
        caller: &SessionHandle,
        limits: &CallLimits,
    ) -> Result<Route, CallRefused> {
        let (registration, pattern) = self.lookup(procedure).ok_or(CallRefused::NoSuchProcedure)?;
        let reg = self
            .registrations
            .get_mut(&registration)
            .ok_or(CallRefused::NoSuchProcedure)?;
        if caller.calls_in_flight.load(Ordering::Relaxed) >= limits.per_caller {
            return Err(CallRefused::CallerBusy);
        }
        let n = reg.callees.len();
        let index = match reg.invoke {
            InvokePolicy::Single | InvokePolicy::First => {
                (0..n).find(|&i| reg.callees[i].available(limits))
            }
            InvokePolicy::Last => (0..n).rev().find(|&i| reg.callees[i].available(limits)),
            InvokePolicy::RoundRobin => {
                let start = reg.next;
                let found = (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| reg.callees[i].available(limits));
                if let Some(i) = found {
                    reg.next = (i + 1) % n;
                }
                found
            }
            InvokePolicy::Random => {
                let available: Vec<usize> = (0..n)
                    .filter(|&i| reg.callees[i].available(limits))
                    .collect();
                if available.is_empty() {
                    None
                } else {
                    let pick = usize::try_from(random_id()).unwrap_or(0) % available.len();
                    Some(available[pick])
                }
            }
        };
        let entry = &reg.callees[index.ok_or(CallRefused::CalleeBusy)?];
        Ok(Route {
            registration,
            callee: entry.session.clone(),
            pattern,
            disclose_caller: entry.disclose_caller,
            forward_timeout: entry.forward_timeout,
        })
    }

    /// Records a call in flight (after [`Dealer::select`] chose its callee). Returns
    /// whether its deadline is now the realm's earliest (the timer must be told).
    pub fn start_call(&mut self, invocation: Id, call: PendingCall) -> bool {
        if let Some(reg) = self.registrations.get_mut(&call.registration) {
            if let Some(entry) = reg
                .callees
                .iter_mut()
                .find(|c| c.session.id == call.callee.id)
            {
                entry.in_flight += 1;
            }
        }
        call.caller.calls_in_flight.fetch_add(1, Ordering::Relaxed);
        call.callee
            .invocations_in_flight
            .fetch_add(1, Ordering::Relaxed);
        let mut earliest = false;
        if let Some((_, deadline)) = call.timeout {
            earliest = self
                .timers
                .peek()
                .is_none_or(|Reverse((first, ..))| deadline < *first);
            self.push_timer(deadline, call.callee.id, invocation);
            self.timed += 1;
        }
        if call.stream.is_some() {
            self.streams.insert(
                (call.caller.id, call.call_request),
                Stream::Open {
                    callee: call.callee.id,
                    invocation,
                },
            );
        }
        self.pending.insert((call.callee.id, invocation), call);
        earliest
    }

    fn push_timer(&mut self, deadline: Instant, callee: Id, invocation: Id) {
        // Entries of calls that ended early stay until their deadline; rebuild when
        // they outnumber the live ones.
        if self.timers.len() > 2 * self.timed + 1024 {
            let pending = &self.pending;
            self.timers.retain(|Reverse((at, c, i))| {
                pending
                    .get(&(*c, *i))
                    .and_then(|p| p.timeout)
                    .is_some_and(|(_, d)| d == *at)
            });
        }
        self.timers.push(Reverse((deadline, callee, invocation)));
    }

    /// Takes the pending call a callee's final YIELD or ERROR answers.
    pub fn finish_call(&mut self, callee: Id, invocation: Id) -> Option<PendingCall> {
        let call = self.pending.remove(&(callee, invocation))?;
        self.release(&call);
        Some(call)
    }

    /// A progressive YIELD: where it goes. A router-run timeout starts over.
    pub fn progress(&mut self, callee: Id, invocation: Id) -> Progress {
        let Some(call) = self.pending.get_mut(&(callee, invocation)) else {
            return Progress::Drop;
        };
        if !call.receive_progress {
            return Progress::Violation;
        }
        if call.state == CallState::Killing {
            return Progress::Drop;
        }
        let to = (call.caller.clone(), call.call_request);
        if let Some((length, deadline)) = &mut call.timeout {
            *deadline = Instant::now() + *length;
            let at = *deadline;
            self.push_timer(at, callee, invocation);
        }
        Progress::Deliver(to.0, to.1)
    }

    /// Undoes a started call's counts and indexes.
    fn release(&mut self, call: &PendingCall) {
        if let Some(reg) = self.registrations.get_mut(&call.registration) {
            if let Some(entry) = reg
                .callees
                .iter_mut()
                .find(|c| c.session.id == call.callee.id)
            {
                entry.in_flight = entry.in_flight.saturating_sub(1);
            }
        }
        call.caller.calls_in_flight.fetch_sub(1, Ordering::Relaxed);
        call.callee
            .invocations_in_flight
            .fetch_sub(1, Ordering::Relaxed);
        if call.timeout.is_some() {
            self.timed -= 1;
            if self.timed == 0 {
                self.timers.clear();
            }
        }
        if call.stream.is_some() {
            self.close_stream(call.caller.id, call.call_request);
        }
    }

    /// Remembers that the caller's stream `request` ended, so that its late chunks
    /// are dropped instead of starting new calls.
    pub fn close_stream(&mut self, caller: Id, request: Id) {
        self.streams.insert((caller, request), Stream::Closed);
        self.closed_streams.push_back((caller, request));
        while self.closed_streams.len() > MAX_CLOSED_STREAMS {
            if let Some(key) = self.closed_streams.pop_front() {
                if self.streams.get(&key) == Some(&Stream::Closed) {
                    self.streams.remove(&key);
                }
            }
        }
    }

    /// Whether a CALL `request` from `caller` continues a streaming call. `last`
    /// says the chunk ends the caller's input.
    pub fn chunk(&mut self, caller: Id, request: Id, last: bool) -> Chunk {
        // Plain calls pay one emptiness check here.
        if self.streams.is_empty() {
            return Chunk::NewCall;
        }
        let key = (caller, request);
        let Some(&stream) = self.streams.get(&key) else {
            return Chunk::NewCall;
        };
        let Stream::Open { callee, invocation } = stream else {
            return Chunk::Drop;
        };
        let Some(call) = self.pending.get_mut(&(callee, invocation)) else {
            self.close_stream(caller, request);
            return Chunk::Drop;
        };
        let mut details = if last {
            call.stream.take().map(|d| *d).unwrap_or_default()
        } else {
            call.stream.as_deref().cloned().unwrap_or_default()
        };
        if !last {
            details.insert("progress".into(), Value::Bool(true));
        }
        let chunk = Chunk::Forward {
            callee: call.callee.clone(),
            invocation,
            registration: call.registration,
            details,
        };
        if last {
            // Chunks after the last one are dropped too.
            self.close_stream(caller, request);
        }
        chunk
    }

    /// CANCEL of the caller's call `request`. Unknown or finished calls, and calls
    /// already being killed, are ignored.
    pub fn cancel(&mut self, caller: Id, request: Id, mode: CancelMode) {
        let key = match self.streams.get(&(caller, request)) {
            Some(Stream::Open { callee, invocation }) => Some((*callee, *invocation)),
            _ => self
                .pending
                .iter()
                .find(|(_, c)| c.caller.id == caller && c.call_request == request)
                .map(|(k, _)| *k),
        };
        let Some(key) = key else { return };
        let Some(call) = self.pending.get_mut(&key) else {
            return;
        };
        if call.state == CallState::Killing {
            return;
        }
        let mode = if call.callee.features.call_canceling {
            mode
        } else {
            CancelMode::Skip
        };
        if mode == CancelMode::Kill {
            call.state = CallState::Killing;
            let _ = call.callee.send(&interrupt(key.1, "kill", None));
            return;
        }
        let Some(call) = self.finish_call(key.0, key.1) else {
            return;
        };
        if mode == CancelMode::KillNoWait {
            let _ = call.callee.send(&interrupt(key.1, "killnowait", None));
        }
        let _ = call.caller.send(&call_error(
            call.call_request,
            uri_err::CANCELED,
            "the call was canceled",
        ));
    }

    /// Ends a call the router cannot carry on (a message too large to deliver):
    /// INTERRUPT (killnowait) to a callee that can cancel, ERROR `uri` to the caller.
    pub fn abort_call(&mut self, callee: Id, invocation: Id, uri: &str, text: &str) {
        let Some(call) = self.finish_call(callee, invocation) else {
            return;
        };
        if call.callee.features.call_canceling {
            let _ = call.callee.send(&interrupt(invocation, "killnowait", None));
        }
        let _ = call.caller.send(&call_error(call.call_request, uri, text));
    }

    /// The earliest router-run call deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// Ends the calls whose deadline is not after `now`: ERROR `wamp.error.timeout`
    /// to the caller, INTERRUPT (killnowait) to a callee that can cancel. Returns
    /// how many calls ended.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut ended = 0;
        while let Some(&Reverse((at, callee, invocation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let current = self
                .pending
                .get(&(callee, invocation))
                .and_then(|c| c.timeout)
                .is_some_and(|(_, deadline)| deadline == at);
            if !current {
                continue;
            }
            let Some(call) = self.finish_call(callee, invocation) else {
                continue;
            };
            ended += 1;
            if call.callee.features.call_canceling {
                let _ = call
                    .callee
                    .send(&interrupt(invocation, "killnowait", Some(TIMEOUT)));
            }
            let _ = call.caller.send(&call_error(
                call.call_request,
                TIMEOUT,
                "the call timed out",
            ));
        }
        ended
    }

    /// Removes everything a leaving session held. Returns the calls that were waiting
    /// on it as callee (their callers must be told). Calls it made as caller end
    /// here: a callee that can cancel gets INTERRUPT (killnowait), and late answers
    /// are dropped.
    pub fn remove_session(&mut self, session: Id) -> Vec<PendingCall> {
        let ids: Vec<Id> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.callees.iter().any(|c| c.session.id == session))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.unregister(id, session);
        }
        let mut orphaned = Vec::new();
        let keys: Vec<(Id, Id)> = self
            .pending
            .iter()
            .filter(|((callee, _), call)| *callee == session || call.caller.id == session)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(call) = self.finish_call(key.0, key.1) else {
                continue;
            };
            if call.caller.id == session {
                if key.0 != session && call.callee.features.call_canceling {
                    let _ = call.callee.send(&interrupt(key.1, "killnowait", None));
                }
            } else {
                orphaned.push(call);
            }
        }
        if !self.streams.is_empty() {
            self.streams.retain(|(caller, _), _| *caller != session);
            self.closed_streams.retain(|(caller, _)| *caller != session);
        }
        orphaned
    }

    /// Number of registrations.
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }

    /// Number of calls in flight.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Call state of any kind still held: pending calls, timer entries, streams.
    /// Zero once every session left.
    pub fn call_state_len(&self) -> usize {
        self.pending.len() + self.timers.len() + self.streams.len() + self.closed_streams.len()
    }

    /// A registration by id.
    pub fn registration(&self, id: Id) -> Option<&Registration> {
        self.registrations.get(&id)
    }
}

/// Whether wildcard pattern `a` is a better match than `b` (both matched the same
/// URI, so both have its component count): at the first component where one is
/// literal and the other a wildcard, the literal one wins.
fn wildcard_beats(a: &str, b: &str) -> bool {
    for (x, y) in a.split('.').zip(b.split('.')) {
        match (x.is_empty(), y.is_empty()) {
            (false, true) => return true,
            (true, false) => return false,
            _ => {}
        }
    }
    false
}

fn interrupt(invocation: Id, mode: &str, reason: Option<&str>) -> Message {
    let mut options = dict! { "mode" => mode };
    if let Some(reason) = reason {
        options.insert("reason".into(), Value::from(reason));
    }
    Message::Interrupt {
        request: invocation,
        options,
    }
}

/// ERROR for a CALL, with an explanation.
pub fn call_error(request: Id, uri: &str, text: &str) -> Message {
    Message::error(
        MessageType::Call,
        request,
        uri,
        Payload::from_args(vec![Value::from(text)]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_precedence_follows_the_spec_examples() {
        assert!(wildcard_beats("a1.b2.c33..e5", "a1.b2..d4.e5"));
        assert!(!wildcard_beats("a1.b2..d4.e5", "a1.b2.c33..e5"));
        assert!(wildcard_beats("a1.b2..d4.e5..g7", "a1.b2..d4..f6.g7"));
        assert!(!wildcard_beats("a.b", "a.b"));
    }
}
