//! A session's outbound queue: routing code appends encoded frames from any thread;
//! the connection's writer drains everything queued in one batch.
//!
//! The queue is bounded in messages and bytes, so a peer that reads slowly (or not at
//! all) never grows the router's memory without limit. What happens at the bound is
//! the [`SlowConsumerPolicy`]: either the connection is closed and its queue freed, or
//! EVENTs for it are dropped and counted while the session lives on. The writer is
//! woken only on the first push after it went idle, so a burst costs one wake-up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;

/// Bounds of one session's outbound queue.
#[derive(Clone, Copy, Debug)]
pub struct OutboxLimits {
    /// Most frames queued at once.
    pub max_messages: usize,
    /// Most bytes queued at once.
    pub max_bytes: usize,
    /// What happens when an EVENT would exceed the bounds.
    pub slow_consumer: SlowConsumerPolicy,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_messages: 64 * 1024,
            max_bytes: 64 * 1024 * 1024,
            slow_consumer: SlowConsumerPolicy::Disconnect,
        }
    }
}

/// What the router does with a session whose outbound queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlowConsumerPolicy {
    /// Close the connection and free its queue. The session's calls end as if it
    /// had left.
    #[default]
    Disconnect,
    /// Drop EVENTs that do not fit, counting them, and keep the session. Other
    /// messages (RESULTs, INVOCATIONs, replies) may use twice the bounds before the
    /// connection is closed as with `Disconnect`.
    DropEvents,
}

/// Why a frame was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The connection is closing or closed.
    #[error("session outbox is closed")]
    Closed,
    /// The queue was full; the outbox is now closed.
    #[error("session outbox overflowed")]
    Overflow,
    /// The queue was full and the policy is to drop EVENTs: this one was dropped,
    /// the session carries on.
    #[error("session outbox full: event dropped")]
    EventDropped,
}

/// What the writer got from [`Outbox::poll_drain`].
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Frames were moved into the batch; write them and drain again.
    Frames,
    /// Nothing more will come: flush what was written and close the connection.
    Closed(CloseCause),
}

/// Why an outbox was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The router ended the session (ABORT, GOODBYE, shutdown, kill).
    Router,
    /// The queue bound was exceeded.
    Overflow,
}

struct State {
    queue: Vec<Bytes>,
    queued_bytes: usize,
    closed: Option<CloseCause>,
    waker: Option<Waker>,
}

/// A bounded, batch-drained queue of encoded frames for one connection.
pub struct Outbox {
    state: Mutex<State>,
    limits: OutboxLimits,
    dropped: AtomicU64,
}

impl Outbox {
    /// An empty outbox with the given bounds.
    pub fn new(limits: OutboxLimits) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: Vec::new(),
                queued_bytes: 0,
                closed: None,
                waker: None,
            }),
            limits,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues one frame that must be delivered (a reply, RESULT, INVOCATION...).
    /// On overflow the outbox closes itself and frees its queue.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let headroom = match self.limits.slow_consumer {
            SlowConsumerPolicy::Disconnect => 1,
            SlowConsumerPolicy::DropEvents => 2,
        };
        self.push_bounded(frame, headroom, false)
    }

    /// Queues an EVENT: at the bound it is dropped or the connection closed, as the
    /// [`SlowConsumerPolicy`] says.
    pub fn push_event(&self, frame: Bytes) -> Result<(), PushError> {
        let drop_on_full = self.limits.slow_consumer == SlowConsumerPolicy::DropEvents;
        self.push_bounded(frame, 1, drop_on_full)
    }

    fn push_bounded(
        &self,
        frame: Bytes,
        headroom: usize,
        drop_on_full: bool,
    ) -> Result<(), PushError> {
        let mut s = self.state.lock();
        if s.closed.is_some() {
            return Err(PushError::Closed);
        }
        let full = s.queue.len() >= self.limits.max_messages.saturating_mul(headroom)
            || s.queued_bytes + frame.len() > self.limits.max_bytes.saturating_mul(headroom);
        if full {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if drop_on_full {
                return Err(PushError::EventDropped);
            }
            s.closed = Some(CloseCause::Overflow);
            // Nothing queued will be written any more: free it now.
            let queue = std::mem::take(&mut s.queue);
            s.queued_bytes = 0;
            let waker = s.waker.take();
            drop(s);
            drop(queue);
            if let Some(w) = waker {
                w.wake();
            }
            return Err(PushError::Overflow);
        }
        s.queued_bytes += frame.len();
        s.queue.push(frame);
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues a last frame (ABORT, GOODBYE) and closes: the writer sends what is
    /// queued, then closes the connection. The bound does not apply to this frame.
    pub fn push_last(&self, frame: Bytes) {
        let waker = {
            let mut s = self.state.lock();
            if s.closed.is_some() {
                return;
            }
            s.queued_bytes += frame.len();
            s.queue.push(frame);
            s.closed = Some(CloseCause::Router);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Closes without a last frame.
    pub fn close(&self) {
        let waker = {
            let mut s = self.state.lock();
            s.closed.get_or_insert(CloseCause::Router);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the outbox is closed (nothing more will be accepted).
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Frames refused because the queue was full (dropped EVENTs, and the frame
    /// that overflowed it).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Moves every queued frame into `batch` (swapping buffers), or registers the
    /// waker when there is nothing to do.
    pub fn poll_drain(&self, cx: &mut Context<'_>, batch: &mut Vec<Bytes>) -> Poll<Drained> {
        let mut s = self.state.lock();
        if !s.queue.is_empty() {
            std::mem::swap(&mut s.queue, batch);
            s.queued_bytes = 0;
            return Poll::Ready(Drained::Frames);
        }
        if let Some(cause) = s.closed {
            return Poll::Ready(Drained::Closed(cause));
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ready once the queue overflowed. A writer blocked on a peer that does not read
    /// polls this beside its write, so an overflowing session is cut off at once.
    pub fn poll_overflowed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock();
        if s.closed == Some(CloseCause::Overflow) {
            return Poll::Ready(());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits until the queue overflows.
    pub async fn overflowed(&self) {
        std::future::poll_fn(|cx| self.poll_overflowed(cx)).await
    }

    /// Waits for frames and moves them into `batch` (which should be empty).
    pub async fn drain(&self, batch: &mut Vec<Bytes>) -> Drained {
        std::future::poll_fn(|cx| self.poll_drain(cx, batch)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicU64);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_once_per_idle_period_and_drains_in_one_batch() {
        let outbox = Outbox::new(OutboxLimits::default());
        let counter = Arc::new(CountingWaker(AtomicU64::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = Vec::new();
        assert!(outbox.poll_drain(&mut cx, &mut batch).is_pending());
        for i in 0..10u8 {
            outbox.push(Bytes::from(vec![i])).expect("push");
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            outbox.poll_drain(&mut cx, &mut batch),
            Poll::Ready(Drained::Frames)
        );
        assert_eq!(batch.len(), 10);
    }

    #[test]
    fn overflow_closes_and_counts() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 2,
            max_bytes: 1000,
            ..OutboxLimits::default()
        });
        outbox.push(Bytes::from_static(b"a")).expect("1");
        outbox.push(Bytes::from_static(b"b")).expect("2");
        assert_eq!(
            outbox.push(Bytes::from_static(b"c")),
            Err(PushError::Overflow)
        );
        assert_eq!(
            outbox.push(Bytes::from_static(b"d")),
            Err(PushError::Closed)
        );
        assert!(outbox.is_closed());
        assert_eq!(outbox.dropped(), 1);
        // The queue was freed at once: nothing is left to write.
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.poll_drain(&mut cx, &mut batch),
            Poll::Ready(Drained::Closed(CloseCause::Overflow))
        );
    }

    #[test]
    fn byte_bound_applies() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 100,
            max_bytes: 4,
            ..OutboxLimits::default()
        });
        outbox.push(Bytes::from_static(b"abc")).expect("fits");
        assert_eq!(
            outbox.push(Bytes::from_static(b"de")),
            Err(PushError::Overflow)
        );
    }

    #[test]
    fn last_frame_is_sent_then_closed() {
        let outbox = Outbox::new(OutboxLimits::default());
        outbox.push_last(Bytes::from_static(b"bye"));
        assert_eq!(
            outbox.push(Bytes::from_static(b"x")),
            Err(PushError::Closed)
        );
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.poll_drain(&mut cx, &mut batch),
            Poll::Ready(Drained::Frames)
        );
        assert_eq!(batch, vec![Bytes::from_static(b"bye")]);
    }

    #[test]
    fn drop_policy_drops_events_and_keeps_the_session() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 2,
            max_bytes: 1000,
            slow_consumer: SlowConsumerPolicy::DropEvents,
        });
        outbox.push_event(Bytes::from_static(b"e1")).expect("1");
        outbox.push_event(Bytes::from_static(b"e2")).expect("2");
        assert_eq!(
            outbox.push_event(Bytes::from_static(b"e3")),
            Err(PushError::EventDropped)
        );
        assert!(!outbox.is_closed());
        assert_eq!(outbox.dropped(), 1);
        // Replies get headroom beyond the event bound, then overflow closes.
        outbox.push(Bytes::from_static(b"r1")).expect("headroom 1");
        outbox.push(Bytes::from_static(b"r2")).expect("headroom 2");
        assert_eq!(
            outbox.push(Bytes::from_static(b"r3")),
            Err(PushError::Overflow)
        );
        assert!(outbox.is_closed());
    }

    #[test]
    fn disconnect_policy_closes_on_an_event_overflow() {
        let outbox = Outbox::new(OutboxLimits {
            max_messages: 1,
            max_bytes: 1000,
            slow_consumer: SlowConsumerPolicy::Disconnect,
        });
        outbox.push_event(Bytes::from_static(b"e1")).expect("1");
        assert_eq!(
            outbox.push_event(Bytes::from_static(b"e2")),
            Err(PushError::Overflow)
        );
        assert!(outbox.is_closed());
    }
}
