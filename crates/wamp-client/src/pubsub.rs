//! Publish/subscribe: received events and subscriptions.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use wamp_proto::{Dict, Message, Payload, Value};

use crate::error::Error;
use crate::session::Shared;
use crate::state::RequestKind;

/// One EVENT.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The router's subscription ID.
    pub subscription: u64,
    /// The publication ID (the same for every receiver of one publication).
    pub publication: u64,
    /// Positional arguments (an opaque payload element is the only one).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// `EVENT.Details` (e.g. `publisher`, `topic` for pattern subscriptions).
    pub details: Dict,
    /// The payload as received.
    pub payload: Payload,
}

/// A subscription: a stream of [`Event`]s.
///
/// Events wait in a bounded queue ([`ConnectOptions::queue_capacity`]); while it is
/// full the session stops reading from the router, so consume events (or drop the
/// subscription). Ends (`None`) when the session ends or the router revokes the
/// subscription. Dropping it unsubscribes (without waiting for the answer).
///
/// [`ConnectOptions::queue_capacity`]: crate::ConnectOptions::queue_capacity
pub struct Subscription {
    id: u64,
    local: u64,
    events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
    active: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        local: u64,
        events: mpsc::Receiver<Event>,
        shared: Arc<Shared>,
    ) -> Subscription {
        Subscription {
            id,
            local,
            events,
            shared,
            active: true,
        }
    }

    /// The router's subscription ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next event; `None` once the subscription or session has ended.
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Unsubscribes. If other subscriptions of this session share the router
    /// subscription, only this one ends and nothing is sent; otherwise sends
    /// UNSUBSCRIBE and waits for UNSUBSCRIBED (an ERROR is [`Error::Wamp`]).
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        self.active = false;
        self.events.close();
        let shared = self.shared.clone();
        let last = shared.state.lock().remove_subscriber(self.id, self.local);
        if !last {
            return if shared.is_established() {
                Ok(())
            } else {
                Err(Error::Closed)
            };
        }
        let subscription = self.id;
        let (tx, rx) = oneshot::channel();
        let request = shared
            .request(
                |request| Message::Unsubscribe {
                    request,
                    subscription,
                    options: Dict::new(),
                },
                |state, request| state.add_unsubscribe(request, tx),
            )
            .await?;
        shared.wait(RequestKind::Unsubscribe, request, rx).await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let last = self
            .shared
            .state
            .lock()
            .remove_subscriber(self.id, self.local);
        if last {
            let subscription = self.id;
            self.shared
                .request_detached(move |request| Message::Unsubscribe {
                    request,
                    subscription,
                    options: Dict::new(),
                });
        }
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().events.poll_recv(cx)
    }
}
