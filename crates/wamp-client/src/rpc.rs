//! The callee side of remote procedure calls: registrations and their options,
//! invocations (with progressive results, chunked arguments, interrupts and caller
//! identification), and handler-served procedures. [`CallResult`] is the caller's
//! outcome of a call; the rest of the caller side lives in [`crate::call`].
//!
//! ```no_run
//! use wamp_client::{Dict, InterruptMode, RegisterOptions, MatchPolicy, Session, Value};
//!
//! # async fn demo(session: Session) -> Result<(), wamp_client::Error> {
//! let mut registration = session
//!     .register_with("com.example.", RegisterOptions::new().match_policy(MatchPolicy::Prefix))
//!     .await?;
//! while let Some(mut invocation) = registration.next().await {
//!     let procedure = invocation.procedure().unwrap_or_default().to_owned();
//!     if invocation.receive_progress() {
//!         invocation.progress(vec![Value::from("working")], Dict::new()).await?;
//!     }
//!     tokio::select! {
//!         mode = invocation.interrupted() => {
//!             if mode == InterruptMode::Kill {
//!                 invocation.error("wamp.error.canceled", vec![], Dict::new()).await?;
//!             }
//!         }
//!         () = tokio::time::sleep(std::time::Duration::from_millis(10)) => {
//!             invocation.yield_result(vec![Value::from(procedure)], Dict::new()).await?;
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{FutureExt, Stream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use wamp_proto::{error_uri, Dict, Message, MessageType, Payload, Value};

use crate::error::{Error, TIMEOUT_URI};
use crate::session::Shared;
use crate::state::{InvocationData, RequestKind};

/// The outcome of a successful call (RESULT).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallResult {
    /// Positional results (an opaque payload element is the only one).
    pub args: Vec<Value>,
    /// Keyword results.
    pub kwargs: Dict,
    /// `RESULT.Details`.
    pub details: Dict,
}

/// What a [`Session::register_fn`](crate::Session::register_fn) handler returns:
/// `Ok((args, kwargs))` to YIELD, `Err((error_uri, args, kwargs))` to answer ERROR.
pub type HandlerResult = Result<(Vec<Value>, Dict), (String, Vec<Value>, Dict)>;

/// How the dealer interrupts an invocation (`INTERRUPT.Options.mode`), after the
/// caller canceled the call, it timed out, or the caller left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterruptMode {
    /// The dealer waits for the callee's answer: answer ERROR `wamp.error.canceled`
    /// (or, if the work is done anyway, the result).
    Kill,
    /// The dealer has already answered the caller; no answer is needed, and this
    /// client does not send one.
    KillNoWait,
}

impl InterruptMode {
    /// Reads `INTERRUPT.Options.mode`. No mode (what Autobahn's CANCEL leads to)
    /// and unknown modes count as `killnowait`: the dealer does not wait.
    pub(crate) fn from_options(options: &Dict) -> InterruptMode {
        match options.get("mode").and_then(Value::as_str) {
            Some("kill") => InterruptMode::Kill,
            _ => InterruptMode::KillNoWait,
        }
    }
}

/// A further chunk of a progressive call invocation (an INVOCATION with the same
/// request ID as the first); see [`Invocation::next_chunk`].
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationChunk {
    /// Positional arguments (an opaque payload element is the only one).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// This chunk's `INVOCATION.Details`.
    pub details: Dict,
    /// The payload as received.
    pub payload: Payload,
    /// Whether this is the last chunk (no `Details.progress`).
    pub last: bool,
}

/// One INVOCATION for a procedure this session registered.
///
/// Answer it once with [`yield_result`](Self::yield_result),
/// [`yield_payload`](Self::yield_payload) or [`error`](Self::error); before that,
/// [`progress`](Self::progress) sends progressive results if the caller asked for
/// them. Dropping it unanswered sends nothing, except after an
/// [`InterruptMode::Kill`] interrupt: then ERROR `wamp.error.canceled` goes out.
///
/// After an [`InterruptMode::KillNoWait`] interrupt the answer methods send
/// nothing and return `Ok(())`: the dealer has already answered the caller.
pub struct Invocation {
    /// The INVOCATION request ID (router-chosen; need not be sequential).
    pub request: u64,
    /// The registration ID.
    pub registration: u64,
    /// Positional arguments (an opaque payload element is the only one).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// `INVOCATION.Details` (e.g. `caller`, `procedure`, `timeout`).
    pub details: Dict,
    /// The payload as received.
    pub payload: Payload,
    shared: Arc<Shared>,
    interrupt: watch::Receiver<Option<InterruptMode>>,
    chunks: Option<mpsc::Receiver<InvocationChunk>>,
    answered: bool,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("request", &self.request)
            .field("registration", &self.registration)
            .field("args", &self.args)
            .field("kwargs", &self.kwargs)
            .field("details", &self.details)
            .finish()
    }
}

fn detail_bool(details: &Dict, key: &str) -> bool {
    details.get(key).and_then(Value::as_bool) == Some(true)
}

impl Invocation {
    pub(crate) fn new(data: InvocationData, shared: Arc<Shared>) -> Invocation {
        Invocation {
            request: data.request,
            registration: data.registration,
            args: data.args,
            kwargs: data.kwargs,
            details: data.details,
            payload: data.payload,
            shared,
            interrupt: data.interrupt,
            chunks: data.chunks,
            answered: false,
        }
    }

    /// The caller's session ID (`Details.caller`), if the dealer disclosed it.
    pub fn caller(&self) -> Option<u64> {
        self.details.get("caller").and_then(Value::as_u64)
    }

    /// The caller's authid (`Details.caller_authid`), if disclosed.
    pub fn caller_authid(&self) -> Option<&str> {
        self.details.get("caller_authid").and_then(Value::as_str)
    }

    /// The caller's authrole (`Details.caller_authrole`), if disclosed.
    pub fn caller_authrole(&self) -> Option<&str> {
        self.details.get("caller_authrole").and_then(Value::as_str)
    }

    /// The procedure actually called (`Details.procedure`); the dealer sends it for
    /// prefix and wildcard registrations.
    pub fn procedure(&self) -> Option<&str> {
        self.details.get("procedure").and_then(Value::as_str)
    }

    /// The call timeout the dealer forwarded (`Details.timeout`, milliseconds), if
    /// any. The callee should then answer ERROR `wamp.error.timeout` when it runs
    /// out; [`Session::register_fn`](crate::Session::register_fn) handlers do so
    /// automatically.
    pub fn timeout(&self) -> Option<Duration> {
        self.details
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
    }

    /// Whether the caller takes progressive results (`Details.receive_progress`),
    /// so [`progress`](Self::progress) may be used.
    pub fn receive_progress(&self) -> bool {
        detail_bool(&self.details, "receive_progress")
    }

    /// Whether this is a progressive call invocation (`Details.progress`): further
    /// chunks of arguments follow, see [`next_chunk`](Self::next_chunk).
    pub fn is_progressive(&self) -> bool {
        detail_bool(&self.details, "progress")
    }

    /// The next chunk of a progressive call invocation; `None` once the last chunk
    /// has been returned, if the invocation is not progressive, or after an
    /// interrupt or the end of the session.
    ///
    /// Chunks wait in a bounded queue; while it is full the session stops reading
    /// from the router.
    pub async fn next_chunk(&mut self) -> Option<InvocationChunk> {
        let chunk = self.chunks.as_mut()?.recv().await;
        if chunk.as_ref().is_none_or(|c| c.last) {
            self.chunks = None;
        }
        chunk
    }

    /// Sends a progressive result: YIELD with `Options.progress = true`. Any number
    /// may precede the final answer.
    ///
    /// Fails with [`Error::Unsupported`], sending nothing, if the caller did not ask
    /// for progressive results ([`receive_progress`](Self::receive_progress)).
    pub async fn progress(&self, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.progress_payload(Payload::new(args, kwargs)).await
    }

    /// Like [`progress`](Self::progress) with any payload.
    pub async fn progress_payload(&self, payload: Payload) -> Result<(), Error> {
        if !self.receive_progress() {
            return Err(Error::Unsupported(
                "the caller did not ask for progressive results".into(),
            ));
        }
        if self.interrupt() == Some(InterruptMode::KillNoWait) {
            return Ok(());
        }
        let mut options = Dict::new();
        options.insert("progress".into(), Value::from(true));
        self.shared
            .send(&Message::Yield {
                request: self.request,
                options,
                payload,
            })
            .await
    }

    /// How the dealer interrupted this invocation, if it did.
    pub fn interrupt(&self) -> Option<InterruptMode> {
        *self.interrupt.borrow()
    }

    /// Resolves when the dealer interrupts this invocation (INTERRUPT), with the
    /// mode; at once if it already has. Also resolves, with
    /// [`InterruptMode::KillNoWait`], when the session ends: no answer can reach the
    /// caller then.
    ///
    /// For [`InterruptMode::Kill`] answer ERROR `wamp.error.canceled` (or just drop
    /// the invocation, which sends that).
    pub async fn interrupted(&self) -> InterruptMode {
        let mut rx = self.interrupt.clone();
        let outcome = rx.wait_for(Option::is_some).await.map(|mode| *mode);
        match outcome {
            Ok(Some(mode)) => mode,
            _ => self.interrupt().unwrap_or(InterruptMode::KillNoWait),
        }
    }

    /// Answers with YIELD carrying `args` and `kwargs`.
    pub async fn yield_result(self, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.yield_payload(Payload::new(args, kwargs), Dict::new())
            .await
    }

    /// Answers with YIELD carrying any payload and `YIELD.Options`. This is the
    /// final answer; use [`progress`](Self::progress) for progressive results.
    pub async fn yield_payload(mut self, payload: Payload, options: Dict) -> Result<(), Error> {
        if !self.finish() {
            return Ok(());
        }
        self.shared
            .send(&Message::Yield {
                request: self.request,
                options,
                payload,
            })
            .await
    }

    /// Answers with ERROR `uri`; the dealer passes it on to the caller.
    pub async fn error(mut self, uri: &str, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        if !self.finish() {
            return Ok(());
        }
        self.shared
            .send(&Message::error(
                MessageType::Invocation,
                self.request,
                uri,
                Payload::new(args, kwargs),
            ))
            .await
    }

    /// Marks the invocation answered and forgets it. Returns whether an answer
    /// should be sent (not after a `killnowait` interrupt).
    fn finish(&mut self) -> bool {
        self.answered = true;
        self.chunks = None;
        self.shared.state.lock().end_invocation(self.request);
        self.interrupt() != Some(InterruptMode::KillNoWait)
    }

    /// Answers ERROR `wamp.error.no_such_registration` (the registration's queue is
    /// closed), without waiting.
    pub(crate) fn refuse(mut self) {
        if self.finish() {
            self.shared.send_detached(Message::error(
                MessageType::Invocation,
                self.request,
                error_uri::NO_SUCH_REGISTRATION,
                Payload::empty(),
            ));
        }
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.shared.state.lock().end_invocation(self.request);
        if self.interrupt() == Some(InterruptMode::Kill) {
            self.shared.send_detached(Message::error(
                MessageType::Invocation,
                self.request,
                error_uri::CANCELED,
                Payload::empty(),
            ));
        }
    }
}

/// `REGISTER.Options.match` and `SUBSCRIBE.Options.match`: how the registered or
/// subscribed URI matches called procedures or published topics (pattern-based
/// registration and subscription).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchPolicy {
    /// The URI itself (the default).
    Exact,
    /// Every URI that starts with the registered or subscribed string.
    Prefix,
    /// Empty URI components match any one component (`com.example..get`).
    Wildcard,
}

impl MatchPolicy {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPolicy::Exact => "exact",
            MatchPolicy::Prefix => "prefix",
            MatchPolicy::Wildcard => "wildcard",
        }
    }
}

/// `REGISTER.Options.invoke`: which callee of a shared registration gets a call
/// (shared registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvokePolicy {
    /// Only one callee may register (the default).
    Single,
    /// The callees in turn.
    RoundRobin,
    /// A callee picked at random.
    Random,
    /// The callee that registered first.
    First,
    /// The callee that registered last.
    Last,
}

impl InvokePolicy {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InvokePolicy::Single => "single",
            InvokePolicy::RoundRobin => "roundrobin",
            InvokePolicy::Random => "random",
            InvokePolicy::First => "first",
            InvokePolicy::Last => "last",
        }
    }
}

/// `REGISTER.Options`: a typed builder over the options dict.
///
/// Converts from and into a [`Dict`], so
/// [`Session::register_with`](crate::Session::register_with) accepts either.
///
/// ```
/// use wamp_client::{InvokePolicy, MatchPolicy, RegisterOptions, Value};
///
/// let options = RegisterOptions::new()
///     .match_policy(MatchPolicy::Wildcard)
///     .invoke(InvokePolicy::RoundRobin)
///     .concurrency(4)
///     .disclose_caller(true);
/// assert_eq!(options.as_dict().get("match"), Some(&Value::from("wildcard")));
/// assert_eq!(options.as_dict().get("invoke"), Some(&Value::from("roundrobin")));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegisterOptions {
    dict: Dict,
}

impl RegisterOptions {
    /// No options: exact match, single callee.
    pub fn new() -> RegisterOptions {
        RegisterOptions::default()
    }

    /// `match`: exact, prefix or wildcard.
    pub fn match_policy(self, policy: MatchPolicy) -> RegisterOptions {
        self.option("match", policy.as_str())
    }

    /// `invoke`: the shared-registration policy.
    pub fn invoke(self, policy: InvokePolicy) -> RegisterOptions {
        self.option("invoke", policy.as_str())
    }

    /// `concurrency`: at most this many invocations in flight for this callee
    /// (Crossbar.io extension; at least 1).
    pub fn concurrency(self, limit: u32) -> RegisterOptions {
        self.option("concurrency", u64::from(limit))
    }

    /// `disclose_caller`: every invocation carries the caller's identity.
    pub fn disclose_caller(self, disclose: bool) -> RegisterOptions {
        self.option("disclose_caller", disclose)
    }

    /// `force_reregister`: take the procedure over from its current callees, which
    /// the dealer then revokes (Crossbar.io extension).
    pub fn force_reregister(self, force: bool) -> RegisterOptions {
        self.option("force_reregister", force)
    }

    /// `forward_timeout`: the callee handles call timeouts itself, so the dealer
    /// forwards `timeout` in INVOCATION.Details ([`Invocation::timeout`]).
    pub fn forward_timeout(self, forward: bool) -> RegisterOptions {
        self.option("forward_timeout", forward)
    }

    /// Any other option.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> RegisterOptions {
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

impl From<Dict> for RegisterOptions {
    fn from(dict: Dict) -> RegisterOptions {
        RegisterOptions { dict }
    }
}

impl From<RegisterOptions> for Dict {
    fn from(options: RegisterOptions) -> Dict {
        options.dict
    }
}

/// Set once when the router revokes a registration: the reason, if it gave one.
pub(crate) type Revocation = Arc<OnceLock<Option<String>>>;

/// A registration: a stream of [`Invocation`]s.
///
/// Invocations wait in a bounded queue, like a [`Subscription`](crate::Subscription)'s
/// events. Ends (`None`) when the session ends or the router revokes the
/// registration ([`revocation_reason`](Self::revocation_reason)). Dropping it
/// unregisters (without waiting for the answer); invocations still queued are then
/// refused with `wamp.error.no_such_registration`.
pub struct Registration {
    id: u64,
    local: u64,
    invocations: mpsc::Receiver<Invocation>,
    shared: Arc<Shared>,
    revoked: Revocation,
    active: bool,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

impl Registration {
    pub(crate) fn new(
        id: u64,
        local: u64,
        invocations: mpsc::Receiver<Invocation>,
        revoked: Revocation,
        shared: Arc<Shared>,
    ) -> Registration {
        Registration {
            id,
            local,
            invocations,
            shared,
            revoked,
            active: true,
        }
    }

    /// The router's registration ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next invocation; `None` once the registration or session has ended.
    pub async fn next(&mut self) -> Option<Invocation> {
        self.invocations.recv().await
    }

    /// Whether the router revoked the registration (`[UNREGISTERED, 0, Details]`).
    pub fn is_revoked(&self) -> bool {
        self.revoked.get().is_some()
    }

    /// Why the router revoked the registration (`Details.reason`, e.g.
    /// `wamp.error.unregistered`), if it did and said why.
    pub fn revocation_reason(&self) -> Option<&str> {
        self.revoked.get().and_then(Option::as_deref)
    }

    /// Sends UNREGISTER and waits for UNREGISTERED (an ERROR is [`Error::Wamp`]).
    /// A registration the router revoked is already gone: nothing is sent.
    pub async fn unregister(mut self) -> Result<(), Error> {
        self.active = false;
        self.invocations.close();
        let shared = self.shared.clone();
        if !shared.state.lock().remove_callee(self.id, self.local) {
            return if shared.is_established() {
                Ok(())
            } else {
                Err(Error::Closed)
            };
        }
        refuse_queued(&mut self.invocations);
        let registration = self.id;
        let (tx, rx) = oneshot::channel();
        let request = shared
            .request(
                |request| Message::Unregister {
                    request,
                    registration,
                    options: Dict::new(),
                },
                |state, request| state.add_unregister(request, tx),
            )
            .await?;
        shared.wait(RequestKind::Unregister, request, rx).await
    }
}

/// Answers invocations left in a closed queue with ERROR, so their callers do not hang.
fn refuse_queued(queue: &mut mpsc::Receiver<Invocation>) {
    while let Ok(invocation) = queue.try_recv() {
        invocation.refuse();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        self.invocations.close();
        refuse_queued(&mut self.invocations);
        if self.shared.state.lock().remove_callee(self.id, self.local) {
            let registration = self.id;
            self.shared
                .request_detached(move |request| Message::Unregister {
                    request,
                    registration,
                    options: Dict::new(),
                });
        }
    }
}

impl Stream for Registration {
    type Item = Invocation;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Invocation>> {
        self.get_mut().invocations.poll_recv(cx)
    }
}

/// A procedure served by a handler task, from
/// [`Session::register_fn`](crate::Session::register_fn).
///
/// Dropping the handle leaves the handler running until the session ends; call
/// [`unregister`](Self::unregister) to stop it.
pub struct RegistrationHandle {
    id: u64,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Registration>,
}

impl std::fmt::Debug for RegistrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationHandle")
            .field("id", &self.id)
            .finish()
    }
}

/// How a handler-served invocation ended.
enum Outcome {
    Done(std::thread::Result<HandlerResult>),
    Interrupted,
    TimedOut,
}

/// Runs `handler` for one invocation and answers it: with its result, ERROR
/// `wamp.error.canceled` if the dealer interrupts with mode `kill` (the handler
/// future is dropped), nothing for `killnowait`, ERROR `wamp.error.timeout` when a
/// forwarded timeout runs out, `wamp.error.runtime_error` if it panics.
async fn serve<F, Fut>(handler: Arc<F>, mut invocation: Invocation)
where
    F: Fn(Vec<Value>, Dict) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let args = std::mem::take(&mut invocation.args);
    let kwargs = std::mem::take(&mut invocation.kwargs);
    let timeout = invocation.timeout();
    let outcome = {
        let work = AssertUnwindSafe(async { handler(args, kwargs).await }).catch_unwind();
        let deadline = async {
            match timeout {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = invocation.interrupted() => Outcome::Interrupted,
            outcome = work => Outcome::Done(outcome),
            () = deadline => Outcome::TimedOut,
        }
    };
    let _ = match outcome {
        Outcome::Done(Ok(Ok((args, kwargs)))) => invocation.yield_result(args, kwargs).await,
        Outcome::Done(Ok(Err((uri, args, kwargs)))) => invocation.error(&uri, args, kwargs).await,
        Outcome::Done(Err(_)) => {
            invocation
                .error(
                    "wamp.error.runtime_error",
                    vec![Value::from("handler panicked")],
                    Dict::new(),
                )
                .await
        }
        Outcome::Interrupted => {
            // `error` sends nothing after a `killnowait` interrupt.
            invocation
                .error(error_uri::CANCELED, Vec::new(), Dict::new())
                .await
        }
        Outcome::TimedOut => invocation.error(TIMEOUT_URI, Vec::new(), Dict::new()).await,
    };
}

impl RegistrationHandle {
    pub(crate) fn spawn<F, Fut>(mut registration: Registration, handler: F) -> RegistrationHandle
    where
        F: Fn(Vec<Value>, Dict) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let id = registration.id();
        let handler = Arc::new(handler);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut stop = Some(stop_rx);
            loop {
                let stop_signal = async {
                    match stop.as_mut() {
                        Some(rx) => rx.await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    stopped = stop_signal => {
                        if stopped {
                            return registration;
                        }
                        // The handle was dropped: keep serving.
                        stop = None;
                    }
                    invocation = registration.next() => {
                        // `None`: the session ended or the router revoked the registration.
                        let Some(invocation) = invocation else {
                            return registration;
                        };
                        tokio::spawn(serve(handler.clone(), invocation));
                    }
                }
            }
        });
        RegistrationHandle {
            id,
            stop: Some(stop_tx),
            task,
        }
    }

    /// The router's registration ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Stops the handler and unregisters the procedure. Invocations already being
    /// handled are still answered. Succeeds without sending anything if the router
    /// has revoked the registration.
    pub async fn unregister(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(registration) => registration.unregister().await,
            Err(_) => Err(Error::Closed),
        }
    }
}
