//! A session's outbound queue: routing code appends encoded frames from any thread;
//! the connection's writer drains everything queued in one batch.
//!
//! The queue is bounded in messages and bytes. When a push would exceed the bound,
//! the outbox is marked overflowed and closed: the connection ends with a reason
//! rather than letting a slow reader grow the router's memory. The writer is woken
//! only on the first push after it went idle, so a burst costs one wake-up.

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
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_messages: 64 * 1024,
            max_bytes: 64 * 1024 * 1024,
        }
    }
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

    /// Queues one frame. On overflow the outbox closes itself.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let waker = {
            let mut s = self.state.lock();
            if s.closed.is_some() {
                return Err(PushError::Closed);
            }
            if s.queue.len() >= self.limits.max_messages
                || s.queued_bytes + frame.len() > self.limits.max_bytes
            {
                s.closed = Some(CloseCause::Overflow);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                let waker = s.waker.take();
                drop(s);
                if let Some(w) = waker {
                    w.wake();
                }
                return Err(PushError::Overflow);
            }
            s.queued_bytes += frame.len();
            s.queue.push(frame);
            s.waker.take()
        };
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

    /// Frames refused because the queue was full.
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
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.poll_drain(&mut cx, &mut batch),
            Poll::Ready(Drained::Frames)
        );
        batch.clear();
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
}
