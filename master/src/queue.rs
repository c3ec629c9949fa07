//! The per-stream event queue: what the master has not yet written to a
//! subscriber (scheduler, operator SUBSCRIBE, agent link).
//!
//! Scheduler and operator streams are bounded (Mesos's MESOS-7748): a
//! subscriber that reads too slowly fills its queue, further events are
//! refused and its stream ends instead of growing the master's memory. The
//! scheduler reconnects and reconciles; an operator re-subscribes. The agent
//! link is unbounded: it carries the master's orders and the agent is
//! authenticated.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// Events queued for one subscriber, at most (the default of
/// `MasterConfig::subscriber_queue`).
pub const SUBSCRIBER_QUEUE: usize = 8_192;

#[derive(Default)]
struct Count {
    queued: AtomicUsize,
    overflowed: AtomicBool,
}

/// The master's end of a stream.
pub struct EventTx<T> {
    tx: mpsc::UnboundedSender<T>,
    count: Arc<Count>,
    cap: Option<usize>,
}

/// The HTTP response's end of a stream.
pub struct EventRx<T> {
    rx: mpsc::UnboundedReceiver<T>,
    count: Arc<Count>,
}

impl<T> fmt::Debug for EventTx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventTx")
            .field("queued", &self.count.queued.load(Ordering::Relaxed))
            .field("cap", &self.cap)
            .finish()
    }
}

/// A stream queue holding at most `cap` events (`None`: unbounded).
pub fn channel<T>(cap: Option<usize>) -> (EventTx<T>, EventRx<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(Count::default());
    (
        EventTx {
            tx,
            count: Arc::clone(&count),
            cap,
        },
        EventRx { rx, count },
    )
}

impl<T> EventTx<T> {
    /// Queues `event`; gives it back when the stream is gone or its queue
    /// is full (the stream then ends).
    pub fn send(&self, event: T) -> Result<(), T> {
        if self.count.overflowed.load(Ordering::Relaxed) {
            return Err(event);
        }
        let queued = self.count.queued.fetch_add(1, Ordering::Relaxed);
        if self.cap.is_some_and(|cap| queued >= cap) {
            self.count.queued.fetch_sub(1, Ordering::Relaxed);
            self.count.overflowed.store(true, Ordering::Relaxed);
            tracing::warn!(queued, "a subscriber reads too slowly: dropping its stream");
            return Err(event);
        }
        self.tx.send(event).map_err(|e| {
            self.count.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

impl<T> EventRx<T> {
    /// The next event; `None` once the stream is over (closed or
    /// overflowed).
    pub async fn recv(&mut self) -> Option<T> {
        if self.overflowed() {
            return None;
        }
        let event = self.rx.recv().await?;
        self.count.queued.fetch_sub(1, Ordering::Relaxed);
        if self.overflowed() {
            return None;
        }
        Some(event)
    }

    /// An event already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        if self.overflowed() {
            return None;
        }
        let event = self.rx.try_recv().ok()?;
        self.count.queued.fetch_sub(1, Ordering::Relaxed);
        Some(event)
    }

    /// Whether the stream ended because its queue overflowed.
    pub fn overflowed(&self) -> bool {
        self.count.overflowed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_ends_the_stream() {
        let (tx, mut rx) = channel(Some(2));
        assert!(tx.send(1).is_ok());
        assert!(tx.send(2).is_ok());
        assert_eq!(tx.send(3), Err(3));
        assert_eq!(tx.send(4), Err(4), "stays refused");
        assert_eq!(rx.recv().await, None, "the stream ends at once");
    }

    #[tokio::test]
    async fn a_reader_keeping_up_is_not_dropped() {
        let (tx, mut rx) = channel(Some(2));
        for i in 0..100 {
            assert!(tx.send(i).is_ok());
            assert_eq!(rx.recv().await, Some(i));
        }
        let (tx, mut rx) = channel(None);
        for i in 0..10_000 {
            assert!(tx.send(i).is_ok());
        }
        assert_eq!(rx.try_recv(), Some(0));
    }
}
