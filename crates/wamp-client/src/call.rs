//! The caller side of remote procedure calls (Advanced Profile included): call
//! options, in-flight calls with progressive results and canceling, and calls whose
//! arguments are sent in chunks (progressive call invocations).
//!
//! A call in flight is a [`CallStream`]: it yields [`CallEvent::Progress`] for every
//! progressive RESULT and ends with [`CallEvent::Final`] or an error. It can be
//! canceled ([`CallStream::cancel`]); dropping it before the end cancels the call
//! with mode `killnowait` (if the router offers call canceling) and forgets it.
//!
//! ```no_run
//! use std::time::Duration;
//! use wamp_client::{CallEvent, CallOptions, Payload, Session, Value};
//!
//! # async fn demo(session: Session) -> Result<(), wamp_client::Error> {
//! let options = CallOptions::new().timeout(Duration::from_secs(5)).disclose_me(true);
//! let mut call = session
//!     .call_progressive("com.example.count", Payload::from_args(vec![Value::from(3)]), options)
//!     .await?;
//! while let Some(event) = call.next().await {
//!     match event? {
//!         CallEvent::Progress(partial) => println!("progress: {:?}", partial.args),
//!         CallEvent::Final(result) => println!("done: {:?}", result.args),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use wamp_proto::{error_uri, Dict, Message, Payload, Value};

use crate::error::Error;
use crate::rpc::CallResult;
use crate::session::Shared;

/// `CALL.Options`: a typed builder over the options dict.
///
/// Every setter returns the builder; [`option`](Self::option) adds any other key
/// (unknown keys are ignored by routers). Converts from and into a [`Dict`], so
/// [`Session::call_with`](crate::Session::call_with) accepts either.
///
/// ```
/// use std::time::Duration;
/// use wamp_client::{CallOptions, Value};
///
/// let options = CallOptions::new().timeout(Duration::from_millis(1500)).disclose_me(true);
/// assert_eq!(options.as_dict().get("timeout"), Some(&Value::from(1500u64)));
/// assert_eq!(options.as_dict().get("disclose_me"), Some(&Value::from(true)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOptions {
    dict: Dict,
}

impl CallOptions {
    /// No options.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// `timeout`: the dealer (or a callee that handles timeouts) gives up after this
    /// long and the call fails with `wamp.error.timeout` ([`Error::is_timeout`]).
    ///
    /// Sent in whole milliseconds as the WAMP specification says (a fraction of a
    /// millisecond rounds up); zero removes the option (no timeout). Crossbar.io
    /// reads the value as seconds instead.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        let mut millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if Duration::from_millis(millis) < timeout {
            millis = millis.saturating_add(1);
        }
        if millis == 0 {
            self.dict.remove("timeout");
        } else {
            self.dict.insert("timeout".into(), Value::from(millis));
        }
        self
    }

    /// `receive_progress`: the caller takes progressive results.
    /// [`Session::call_progressive`](crate::Session::call_progressive) sets it.
    pub fn receive_progress(mut self, receive: bool) -> CallOptions {
        self.dict
            .insert("receive_progress".into(), Value::from(receive));
        self
    }

    /// `disclose_me`: asks the dealer to tell the callee who calls (caller
    /// identification). The router may refuse with
    /// `wamp.error.option_disallowed.disclose_me`.
    pub fn disclose_me(mut self, disclose: bool) -> CallOptions {
        self.dict
            .insert("disclose_me".into(), Value::from(disclose));
        self
    }

    /// Any other option, e.g. an implementation-specific `_key`.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> CallOptions {
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

    /// Whether `receive_progress` is `true`.
    pub(crate) fn wants_progress(&self) -> bool {
        self.dict.get("receive_progress").and_then(Value::as_bool) == Some(true)
    }
}

impl From<Dict> for CallOptions {
    fn from(dict: Dict) -> CallOptions {
        CallOptions { dict }
    }
}

impl From<CallOptions> for Dict {
    fn from(options: CallOptions) -> Dict {
        options.dict
    }
}

/// How to cancel a call (`CANCEL.Options.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelMode {
    /// The dealer answers the caller with `wamp.error.canceled` at once and drops
    /// the callee's answer; the callee is not told.
    Skip,
    /// The dealer interrupts the callee and passes on whatever the callee answers
    /// first (normally `wamp.error.canceled`, possibly the real result).
    Kill,
    /// The dealer interrupts the callee and answers the caller with
    /// `wamp.error.canceled` at once.
    KillNoWait,
}

impl CancelMode {
    /// The wire spelling: `skip`, `kill` or `killnowait`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelMode::Skip => "skip",
            CancelMode::Kill => "kill",
            CancelMode::KillNoWait => "killnowait",
        }
    }
}

/// One item of a [`CallStream`].
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// A progressive result (`RESULT.Details.progress = true`); more follow.
    Progress(CallResult),
    /// The final result; the call is over.
    Final(CallResult),
}

impl CallEvent {
    /// The result, progressive or final.
    pub fn result(&self) -> &CallResult {
        match self {
            CallEvent::Progress(r) | CallEvent::Final(r) => r,
        }
    }

    /// Whether this is the final result.
    pub fn is_final(&self) -> bool {
        matches!(self, CallEvent::Final(_))
    }
}

/// Where the reader puts a call's outcome.
pub(crate) enum CallSink {
    /// A call without progressive results: one final result or error.
    Once(oneshot::Sender<Result<CallResult, Error>>),
    /// A call with progressive results: any number of progress items, then the
    /// final result or an error.
    Stream(mpsc::Sender<Result<CallEvent, Error>>),
}

/// The receiving end of a [`CallSink`].
enum CallSource {
    Once(oneshot::Receiver<Result<CallResult, Error>>),
    Stream(mpsc::Receiver<Result<CallEvent, Error>>),
}

/// A call in flight: its progressive results, then the final result or error.
///
/// Get one from [`Session::start_call`](crate::Session::start_call) or
/// [`Session::call_progressive`](crate::Session::call_progressive). Read it with
/// [`next`](Self::next) (or as a [`Stream`]), or wait for the final result only with
/// [`result`](Self::result).
///
/// Progressive results wait in a bounded queue
/// ([`ConnectOptions::queue_capacity`](crate::ConnectOptions::queue_capacity));
/// while it is full the session stops reading from the router, so consume them.
///
/// **Dropping** a call that has not ended forgets it at once (a late answer is
/// ignored) and, if the router announced `call_canceling`, sends CANCEL with mode
/// `killnowait`.
pub struct CallStream {
    request: u64,
    shared: Arc<Shared>,
    source: CallSource,
    /// The last item has been handed out.
    done: bool,
    /// An outcome decided locally (a `skip`/`killnowait` cancel), handed out next.
    local_end: Option<Error>,
    /// CANCEL was sent (no second one on drop).
    cancel_sent: bool,
}

impl std::fmt::Debug for CallStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStream")
            .field("request", &self.request)
            .field("done", &self.done)
            .finish()
    }
}

impl CallStream {
    pub(crate) fn new(
        request: u64,
        shared: Arc<Shared>,
        progressive: bool,
    ) -> (CallStream, CallSink) {
        let (source, sink) = if progressive {
            let (tx, rx) = mpsc::channel(shared.queue_capacity());
            (CallSource::Stream(rx), CallSink::Stream(tx))
        } else {
            let (tx, rx) = oneshot::channel();
            (CallSource::Once(rx), CallSink::Once(tx))
        };
        (
            CallStream {
                request,
                shared,
                source,
                done: false,
                local_end: None,
                cancel_sent: false,
            },
            sink,
        )
    }

    /// The CALL request ID.
    pub fn request_id(&self) -> u64 {
        self.request
    }

    /// Whether the call is over for this handle (the final item was handed out).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next progressive result, then the final result or error (ERROR from the
    /// dealer or callee is [`Error::Wamp`]); `None` after that.
    pub async fn next(&mut self) -> Option<Result<CallEvent, Error>> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Waits for the final result, skipping progressive results.
    pub async fn result(mut self) -> Result<CallResult, Error> {
        loop {
            match self.next().await {
                Some(Ok(CallEvent::Progress(_))) => {}
                Some(Ok(CallEvent::Final(result))) => return Ok(result),
                Some(Err(e)) => return Err(e),
                None => return Err(Error::Closed),
            }
        }
    }

    /// Cancels the call: sends `[CANCEL, request, {"mode": mode}]`.
    ///
    /// With [`CancelMode::Skip`] and [`CancelMode::KillNoWait`] the call ends here:
    /// [`next`](Self::next) returns `wamp.error.canceled` ([`Error::is_canceled`])
    /// and the dealer's answer is ignored. With [`CancelMode::Kill`] the call goes on
    /// until the callee answers, which the dealer passes on (normally
    /// `wamp.error.canceled`, possibly a result).
    ///
    /// Does nothing if the call is already over. Fails with [`Error::Unsupported`]
    /// (and sends nothing) if the router did not announce `call_canceling`.
    pub async fn cancel(&mut self, mode: CancelMode) -> Result<(), Error> {
        if self.done || self.local_end.is_some() {
            return Ok(());
        }
        if !self.shared.dealer_feature("call_canceling") {
            return Err(Error::Unsupported(
                "the router did not announce call_canceling".into(),
            ));
        }
        if !self.shared.state.lock().has_call(self.request) {
            // The outcome is already queued (or the session is over).
            return Ok(());
        }
        self.shared
            .send(&Message::Cancel {
                request: self.request,
                options: cancel_options(mode),
            })
            .await?;
        self.cancel_sent = true;
        if mode != CancelMode::Kill && self.shared.state.lock().remove_call(self.request) {
            self.local_end = Some(Error::Wamp {
                uri: error_uri::CANCELED.into(),
                args: Vec::new(),
                kwargs: Dict::new(),
            });
        }
        Ok(())
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<CallEvent, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(error) = self.local_end.take() {
            self.end();
            return Poll::Ready(Some(Err(error)));
        }
        let item = match &mut self.source {
            CallSource::Once(rx) => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(outcome)) => Some(outcome.map(CallEvent::Final)),
                Poll::Ready(Err(_)) => None,
            },
            CallSource::Stream(rx) => match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => item,
            },
        };
        let item = match item {
            Some(Ok(CallEvent::Progress(r))) => {
                return Poll::Ready(Some(Ok(CallEvent::Progress(r))))
            }
            Some(last) => last,
            // The sink went away without a last item: the session ended.
            None => Err(self.shared.close_error()),
        };
        self.end();
        Poll::Ready(Some(item))
    }

    /// Marks the call over and stops the reader from queueing more for it.
    fn end(&mut self) {
        self.done = true;
        match &mut self.source {
            CallSource::Once(rx) => rx.close(),
            CallSource::Stream(rx) => rx.close(),
        }
    }
}

impl Stream for CallStream {
    type Item = Result<CallEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl Drop for CallStream {
    fn drop(&mut self) {
        if self.done || self.local_end.is_some() {
            return;
        }
        let pending = self.shared.state.lock().remove_call(self.request);
        if pending && !self.cancel_sent && self.shared.dealer_feature("call_canceling") {
            self.shared.send_detached(Message::Cancel {
                request: self.request,
                options: cancel_options(CancelMode::KillNoWait),
            });
        }
    }
}

fn cancel_options(mode: CancelMode) -> Dict {
    let mut options = Dict::new();
    options.insert("mode".into(), Value::from(mode.as_str()));
    options
}

/// A call whose arguments go out in chunks (progressive call invocations): every
/// chunk is a CALL with the same request ID and `Options.progress = true`, the last
/// one without it.
///
/// Get one from [`Session::start_progressive_call`](crate::Session::start_progressive_call),
/// which sends the first chunk. Send more with [`send`](Self::send), the last with
/// [`finish`](Self::finish), which returns the [`CallStream`] of the results.
/// Progressive results can already arrive while chunks are still being sent: read
/// them with [`next`](Self::next).
///
/// Dropping it before [`finish`](Self::finish) cancels the call like dropping a
/// [`CallStream`].
///
/// ```no_run
/// # async fn demo(session: wamp_client::Session) -> Result<(), wamp_client::Error> {
/// use wamp_client::{CallOptions, Dict, Payload, Value};
/// let mut upload = session
///     .start_progressive_call("com.example.upload", Payload::from_args(vec![Value::from("part 1")]),
///                             CallOptions::new())
///     .await?;
/// upload.send(vec![Value::from("part 2")], Dict::new()).await?;
/// let result = upload.finish(vec![Value::from("part 3")], Dict::new()).await?.result().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ProgressiveCall {
    procedure: String,
    stream: CallStream,
}

impl ProgressiveCall {
    pub(crate) fn new(procedure: String, stream: CallStream) -> ProgressiveCall {
        ProgressiveCall { procedure, stream }
    }

    /// The CALL request ID shared by every chunk.
    pub fn request_id(&self) -> u64 {
        self.stream.request
    }

    /// Sends one more chunk (CALL with `progress: true`).
    ///
    /// If the call has already ended (an error, a cancel), nothing is sent: its
    /// outcome comes from [`next`](Self::next).
    pub async fn send(&mut self, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.send_payload(Payload::new(args, kwargs)).await
    }

    /// Like [`send`](Self::send) with any payload.
    pub async fn send_payload(&mut self, payload: Payload) -> Result<(), Error> {
        let mut options = Dict::new();
        options.insert("progress".into(), Value::from(true));
        self.send_chunk(options, payload).await
    }

    /// Sends the last chunk (CALL without `progress`) and returns the call's results.
    pub async fn finish(self, args: Vec<Value>, kwargs: Dict) -> Result<CallStream, Error> {
        self.finish_payload(Payload::new(args, kwargs)).await
    }

    /// Like [`finish`](Self::finish) with any payload.
    pub async fn finish_payload(mut self, payload: Payload) -> Result<CallStream, Error> {
        self.send_chunk(Dict::new(), payload).await?;
        Ok(self.stream)
    }

    /// The next progressive result (or the call's early end) while chunks are still
    /// being sent; see [`CallStream::next`].
    pub async fn next(&mut self) -> Option<Result<CallEvent, Error>> {
        self.stream.next().await
    }

    /// Cancels the call; see [`CallStream::cancel`].
    pub async fn cancel(&mut self, mode: CancelMode) -> Result<(), Error> {
        self.stream.cancel(mode).await
    }

    async fn send_chunk(&mut self, options: Dict, payload: Payload) -> Result<(), Error> {
        let stream = &self.stream;
        if stream.done
            || stream.local_end.is_some()
            || !stream.shared.state.lock().has_call(stream.request)
        {
            return Ok(());
        }
        stream
            .shared
            .send(&Message::Call {
                request: stream.request,
                options,
                procedure: self.procedure.clone(),
                payload,
            })
            .await
    }
}
