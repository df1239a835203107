//! Remote procedure calls: results, invocations, registrations.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{FutureExt, Stream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wamp_proto::{Dict, Message, MessageType, Payload, Value};

use crate::error::Error;
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

/// One INVOCATION for a procedure this session registered.
///
/// Answer it exactly once with [`yield_result`](Self::yield_result),
/// [`yield_payload`](Self::yield_payload) or [`error`](Self::error). Dropping it
/// unanswered sends nothing (the caller waits until the router gives up, or the
/// session ends).
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
        }
    }

    /// Answers with YIELD carrying `args` and `kwargs`.
    pub async fn yield_result(self, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.yield_payload(Payload::new(args, kwargs), Dict::new())
            .await
    }

    /// Answers with YIELD carrying any payload and `YIELD.Options`.
    pub async fn yield_payload(self, payload: Payload, options: Dict) -> Result<(), Error> {
        self.shared
            .send(&Message::Yield {
                request: self.request,
                options,
                payload,
            })
            .await
    }

    /// Answers with ERROR `uri`; the dealer passes it on to the caller.
    pub async fn error(self, uri: &str, args: Vec<Value>, kwargs: Dict) -> Result<(), Error> {
        self.shared
            .send(&Message::error(
                MessageType::Invocation,
                self.request,
                uri,
                Payload::new(args, kwargs),
            ))
            .await
    }
}

/// A registration: a stream of [`Invocation`]s.
///
/// Invocations wait in a bounded queue, like a [`Subscription`](crate::Subscription)'s
/// events. Ends (`None`) when the session ends or the router revokes the
/// registration. Dropping it unregisters (without waiting for the answer);
/// invocations still queued are then refused with `wamp.error.no_such_registration`.
pub struct Registration {
    id: u64,
    local: u64,
    invocations: mpsc::Receiver<Invocation>,
    shared: Arc<Shared>,
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
        shared: Arc<Shared>,
    ) -> Registration {
        Registration {
            id,
            local,
            invocations,
            shared,
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

    /// Sends UNREGISTER and waits for UNREGISTERED (an ERROR is [`Error::Wamp`]).
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
        let shared = invocation.shared.clone();
        let request = invocation.request;
        shared.send_detached(Message::error(
            MessageType::Invocation,
            request,
            wamp_proto::error_uri::NO_SUCH_REGISTRATION,
            Payload::empty(),
        ));
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
    task: JoinHandle<Option<Registration>>,
}

impl std::fmt::Debug for RegistrationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationHandle")
            .field("id", &self.id)
            .finish()
    }
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
                            return Some(registration);
                        }
                        // The handle was dropped: keep serving.
                        stop = None;
                    }
                    invocation = registration.next() => {
                        let mut invocation = invocation?;
                        let handler = handler.clone();
                        tokio::spawn(async move {
                            let args = std::mem::take(&mut invocation.args);
                            let kwargs = std::mem::take(&mut invocation.kwargs);
                            let outcome = AssertUnwindSafe(async { handler(args, kwargs).await })
                                .catch_unwind()
                                .await;
                            let _ = match outcome {
                                Ok(Ok((args, kwargs))) => invocation.yield_result(args, kwargs).await,
                                Ok(Err((uri, args, kwargs))) => invocation.error(&uri, args, kwargs).await,
                                Err(_) => {
                                    invocation
                                        .error("wamp.error.runtime_error", vec![Value::from("handler panicked")], Dict::new())
                                        .await
                                }
                            };
                        });
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
    /// handled are still answered.
    pub async fn unregister(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Some(registration)) => registration.unregister().await,
            _ => Err(Error::Closed),
        }
    }
}
