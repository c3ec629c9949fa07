//! The per-stream event queue: what the master has not yet written to a
//! subscriber (scheduler, operator SUBSCRIBE, agent link).
//!
//! Scheduler and operator streams are bounded (Mesos's MESOS-7748): a
//! subscriber that reads too slowly fills its queue, further events are
//! refused and its stream ends instead of growing the master's memory. The
//! scheduler reconnects and reconciles; an operator re-subscribes. The agent
//! link is unbounded: it carries the master's orders and the agent is
//! authenticated.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, mpsc};

/// Events queued for one subscriber, at most (the default of
/// `MasterConfig::subscriber_queue`).
pub const SUBSCRIBER_QUEUE: usize = 8_192;

struct Count<T> {
    queued: AtomicUsize,
    overflowed: AtomicBool,
    backlog: Mutex<Backlog<T>>,
    /// Woken when the backlog gains an event (a permit is kept when no
    /// receiver waits, so none is lost).
    backlog_ready: Notify,
}

/// Answers the master owes a subscriber that may wait until it has read
/// what came before (RECONCILE answers: a framework with 20,000 tasks gets
/// 20,000 at once). Keyed (by task id): a newer answer replaces an older
/// one in place, and a live event about the same key removes it, so a
/// stale answer never follows a newer update. Not counted against the
/// queue's cap; bounded by the limit each insert names.
struct Backlog<T> {
    order: VecDeque<String>,
    events: HashMap<String, T>,
}

impl<T> Default for Count<T> {
    fn default() -> Self {
        Count {
            queued: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            backlog: Mutex::new(Backlog {
                order: VecDeque::new(),
                events: HashMap::new(),
            }),
            backlog_ready: Notify::new(),
        }
    }
}

/// The master's end of a stream.
pub struct EventTx<T> {
    tx: mpsc::UnboundedSender<T>,
    count: Arc<Count<T>>,
    cap: Option<usize>,
}

/// The HTTP response's end of a stream.
pub struct EventRx<T> {
    rx: mpsc::UnboundedReceiver<T>,
    count: Arc<Count<T>>,
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

impl<T> Count<T> {
    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog<T>> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn overflow(&self, queued: usize) {
        self.overflowed.store(true, Ordering::Relaxed);
        tracing::warn!(queued, "a subscriber reads too slowly: dropping its stream");
        // A receiver waiting on an empty queue learns it at once.
        self.backlog_ready.notify_one();
    }
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
            self.count.overflow(queued);
            return Err(event);
        }
        self.tx.send(event).map_err(|e| {
            self.count.queued.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }

    /// Queues `event` in the backlog under `key`, replacing an undelivered
    /// event with the same key. The stream ends (as on overflow) when the
    /// backlog would hold more than `limit` keys.
    pub fn send_backlog(&self, key: String, event: T, limit: usize) -> Result<(), T> {
        if self.count.overflowed.load(Ordering::Relaxed) || self.tx.is_closed() {
            return Err(event);
        }
        let mut backlog = self.count.backlog();
        if let Some(slot) = backlog.events.get_mut(&key) {
            *slot = event;
        } else {
            if backlog.events.len() >= limit {
                let held = backlog.events.len();
                drop(backlog);
                self.count.overflow(held);
                return Err(event);
            }
            backlog.order.push_back(key.clone());
            backlog.events.insert(key, event);
        }
        drop(backlog);
        self.count.backlog_ready.notify_one();
        Ok(())
    }

    /// Drops the backlog's undelivered event for `key`: a newer event about
    /// the same thing was just queued ahead of it.
    pub fn supersede(&self, key: &str) {
        let mut backlog = self.count.backlog();
        if backlog.events.remove(key).is_some() {
            // Its key stays in `order` and is skipped when reached; trim
            // what is dead at the front now so `order` stays short.
            while let Some(front) = backlog.order.front() {
                if backlog.events.contains_key(front) {
                    break;
                }
                backlog.order.pop_front();
            }
        }
    }
}

impl<T> EventRx<T> {
    /// The next event; `None` once the stream is over (closed or
    /// overflowed). Queued events come first, then the backlog.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(event) = self.try_recv() {
                return Some(event);
            }
            if self.overflowed() {
                return None;
            }
            tokio::select! {
                event = self.rx.recv() => {
                    let event = event?;
                    self.count.queued.fetch_sub(1, Ordering::Relaxed);
                    if self.overflowed() {
                        return None;
                    }
                    return Some(event);
                }
                () = self.count.backlog_ready.notified() => {}
            }
        }
    }

    /// An event already queued (or in the backlog), without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        if self.overflowed() {
            return None;
        }
        if let Ok(event) = self.rx.try_recv() {
            self.count.queued.fetch_sub(1, Ordering::Relaxed);
            return Some(event);
        }
        self.pop_backlog()
    }

    fn pop_backlog(&self) -> Option<T> {
        let mut backlog = self.count.backlog();
        while let Some(key) = backlog.order.pop_front() {
            if let Some(event) = backlog.events.remove(&key) {
                return Some(event);
            }
        }
        None
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
    async fn the_backlog_waits_behind_the_queue_and_is_not_capped_by_it() {
        let (tx, mut rx) = channel(Some(2));
        for i in 0..1_000 {
            assert!(tx.send_backlog(format!("t{i}"), i, 10_000).is_ok());
        }
        assert!(tx.send(-1).is_ok());
        assert_eq!(rx.recv().await, Some(-1), "queued events come first");
        for i in 0..1_000 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_backlog_entry_is_replaced_or_superseded_never_delivered_stale() {
        let (tx, mut rx) = channel(Some(8));
        tx.send_backlog("a".into(), 1, 10).unwrap();
        tx.send_backlog("b".into(), 2, 10).unwrap();
        tx.send_backlog("a".into(), 3, 10).unwrap();
        tx.supersede("b");
        assert_eq!(rx.recv().await, Some(3), "replaced in place");
        assert_eq!(rx.try_recv(), None, "superseded");
        tx.send_backlog("b".into(), 4, 10).unwrap();
        assert_eq!(rx.recv().await, Some(4));
    }

    #[tokio::test]
    async fn a_backlog_past_its_limit_ends_the_stream() {
        let (tx, mut rx) = channel(Some(8));
        tx.send_backlog("a".into(), 1, 1).unwrap();
        assert_eq!(tx.send_backlog("b".into(), 2, 1), Err(2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_the_backlog_and_by_an_overflow() {
        let (tx, mut rx) = channel(Some(1));
        let reader = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send_backlog("a".into(), 7, 10).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send_backlog("b".into(), 8, 0).unwrap_err();
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!((first, second), (Some(7), None));
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
