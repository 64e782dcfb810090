//! [`MsgQueue`]: the one bounded async queue behind every socket's receive queue and
//! every pipe's send queue. It differs from a channel in what the protocols need: it can
//! drop the oldest entry (PUB, SUB), be resized while in use (`send-buffer`,
//! `recv-buffer`), and be drained in one lock by a pipe writer that batches.

use crate::error::Error;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

pub(crate) struct MsgQueue<T> {
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    cap: usize,
    closed: bool,
    /// Tasks waiting to pop / to push. Counted under the lock so that the other side
    /// notifies only when someone waits: on a busy queue no message pays for a wake-up.
    poppers: usize,
    pushers: usize,
}

/// Why a non-blocking push failed; the item is handed back.
pub(crate) enum PushError<T> {
    Full(T),
    Closed(T),
}

/// The instant `d` from now; `None` (no deadline) if that is beyond what the clock can
/// represent, so that a huge timeout means "wait forever" instead of a panic.
pub(crate) fn deadline_after(d: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Waits for `notified` or the deadline, whichever comes first.
pub(crate) async fn wait_or_deadline(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    match deadline {
        None => {
            notified.await;
            Ok(())
        }
        Some(d) => tokio::select! {
            _ = notified => Ok(()),
            _ = tokio::time::sleep_until(d) => Err(Error::Timeout),
        },
    }
}

/// Which waiter count a [`Waiting`] guard holds.
#[derive(Clone, Copy)]
enum Side {
    Pop,
    Push,
}

/// Keeps a task counted as waiting while it waits, and uncounts it however the wait ends
/// (woken, timed out, or its future dropped).
struct Waiting<'a, T> {
    queue: &'a MsgQueue<T>,
    side: Side,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut s = self.queue.lock();
        match self.side {
            Side::Pop => s.poppers -= 1,
            Side::Push => s.pushers -= 1,
        }
    }
}

impl<T> MsgQueue<T> {
    /// A queue holding at most `cap` items (0 behaves as 1: one message in hand).
    pub(crate) fn new(cap: usize) -> MsgQueue<T> {
        MsgQueue {
            state: Mutex::new(State { items: VecDeque::new(), cap: cap.max(1), closed: false, poppers: 0, pushers: 0 }),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a single VecDeque operation), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the caller as waiting on `side`; the caller must have enabled its
    /// `Notified` before taking the lock that this is called under.
    fn waiting<'a>(&'a self, s: &mut State<T>, side: Side) -> Waiting<'a, T> {
        match side {
            Side::Pop => s.poppers += 1,
            Side::Push => s.pushers += 1,
        }
        Waiting { queue: self, side }
    }

    /// How many items are queued now (for statistics).
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn set_capacity(&self, cap: usize) {
        self.lock().cap = cap.max(1);
        self.writable.notify_waiters();
    }

    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let s = self.lock();
        if s.closed {
            return Err(PushError::Closed(item));
        }
        if s.items.len() >= s.cap {
            return Err(PushError::Full(item));
        }
        self.push_locked(s, item);
        Ok(())
    }

    /// Appends under the held lock, releases it, then wakes a popper if one waits.
    fn push_locked(&self, mut s: std::sync::MutexGuard<'_, State<T>>, item: T) {
        s.items.push_back(item);
        let wake = s.poppers > 0;
        drop(s);
        if wake {
            self.readable.notify_one();
        }
    }

    /// Pushes, dropping the oldest entry when full. Returns the dropped entry, or the
    /// item itself if the queue is closed.
    pub(crate) fn push_drop_oldest(&self, item: T) -> Option<T> {
        let mut s = self.lock();
        if s.closed {
            return Some(item);
        }
        let dropped = if s.items.len() >= s.cap { s.items.pop_front() } else { None };
        self.push_locked(s, item);
        dropped
    }

    /// Pushes, waiting for space until the deadline.
    pub(crate) async fn push(&self, item: T, deadline: Option<Instant>) -> Result<(), (Error, T)>
    where
        T: Send,
    {
        match self.try_push(item) {
            Ok(()) => Ok(()),
            Err(PushError::Closed(i)) => Err((Error::Closed, i)),
            // Boxed so that the common case carries no waiter or timer in its future.
            Err(PushError::Full(i)) => Box::pin(self.push_slow(i, deadline)).await,
        }
    }

    async fn push_slow(&self, item: T, deadline: Option<Instant>) -> Result<(), (Error, T)>
    where
        T: Send,
    {
        let mut one = VecDeque::from([item]);
        match self.push_all(&mut one, deadline).await {
            Ok(()) => Ok(()),
            // push_all fails only while items remain, so the item is handed back.
            Err(e) => one.pop_front().map_or(Ok(()), |i| Err((e, i))),
        }
    }

    /// Pushes items from the front of `items` under one lock, as many as fit, waiting for
    /// room until all are in or the deadline passes; one wake-up for the whole batch. On an
    /// error, what was not pushed stays in `items`.
    pub(crate) async fn push_all(&self, items: &mut VecDeque<T>, deadline: Option<Instant>) -> Result<(), Error>
    where
        T: Send,
    {
        loop {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = {
                let mut s = self.lock();
                if s.closed {
                    return Err(Error::Closed);
                }
                let room = s.cap.saturating_sub(s.items.len()).min(items.len());
                s.items.extend(items.drain(..room));
                if room > 0 && s.poppers > 0 {
                    // One wake-up; a woken popper passes it on while items remain.
                    self.readable.notify_one();
                }
                if items.is_empty() {
                    return Ok(());
                }
                self.waiting(&mut s, Side::Push)
            };
            wait_or_deadline(notified, deadline).await?;
        }
    }

    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut s = self.lock();
        let item = s.items.pop_front()?;
        // notify_one keeps at most one permit, so pass the wake-up on while items remain.
        let wake_popper = !s.items.is_empty() && s.poppers > 0;
        // Wake blocked pushers only once the queue is half empty, so that a full queue
        // drains in a batch instead of waking its producer for every single message.
        let wake_pusher = s.pushers > 0 && s.items.len() <= s.cap / 2;
        drop(s);
        if wake_popper {
            self.readable.notify_one();
        }
        if wake_pusher {
            self.writable.notify_waiters();
        }
        Some(item)
    }

    /// Pops, waiting until the deadline. Items queued before close are still handed out.
    pub(crate) async fn pop(&self, deadline: Option<Instant>) -> Result<T, Error>
    where
        T: Send,
    {
        match self.try_pop() {
            Some(item) => Ok(item),
            None => Box::pin(self.pop_slow(deadline)).await,
        }
    }

    async fn pop_slow(&self, deadline: Option<Instant>) -> Result<T, Error> {
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = {
                let mut s = self.lock();
                if !s.items.is_empty() {
                    drop(s);
                    if let Some(item) = self.try_pop() {
                        return Ok(item);
                    }
                    continue;
                }
                if s.closed {
                    return Err(Error::Closed);
                }
                self.waiting(&mut s, Side::Pop)
            };
            wait_or_deadline(notified, deadline).await?;
        }
    }

    /// Moves up to `max` items into `out` under one lock; returns how many.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>, max: usize) -> usize {
        let mut s = self.lock();
        let n = s.items.len().min(max);
        out.extend(s.items.drain(..n));
        let wake = n > 0 && s.pushers > 0;
        drop(s);
        if wake {
            self.writable.notify_waiters();
        }
        n
    }

    /// Closes the queue: pushes fail, waiters wake. Returns what was still queued.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut s = self.lock();
        s.closed = true;
        let rest = std::mem::take(&mut s.items);
        drop(s);
        self.readable.notify_waiters();
        self.writable.notify_waiters();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn drop_oldest_keeps_newest() {
        let q = MsgQueue::new(2);
        assert!(q.push_drop_oldest(1).is_none());
        assert!(q.push_drop_oldest(2).is_none());
        assert_eq!(q.push_drop_oldest(3), Some(1));
        assert_eq!(q.try_pop(), Some(2));
        assert_eq!(q.try_pop(), Some(3));
    }

    #[tokio::test]
    async fn blocked_push_resumes_after_pop_and_times_out_otherwise() {
        let q = Arc::new(MsgQueue::new(1));
        q.try_push(1).ok();
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(matches!(q.push(2, Some(soon)).await, Err((Error::Timeout, 2))));
        let q2 = q.clone();
        let t = tokio::spawn(async move { q2.push(3, None).await.is_ok() });
        assert_eq!(q.pop(None).await.unwrap(), 1);
        assert!(t.await.unwrap());
        assert_eq!(q.pop(None).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn push_all_fills_what_fits_then_waits_for_room() {
        let q = Arc::new(MsgQueue::new(2));
        let q2 = q.clone();
        let t = tokio::spawn(async move {
            let mut batch: std::collections::VecDeque<u32> = (1..=5).collect();
            q2.push_all(&mut batch, None).await.map(|_| batch.len())
        });
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(q.pop(Some(Instant::now() + Duration::from_secs(5))).await.unwrap());
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(t.await.unwrap().unwrap(), 0);
    }

    #[tokio::test]
    async fn close_wakes_waiters() {
        let q: Arc<MsgQueue<u8>> = Arc::new(MsgQueue::new(4));
        let q2 = q.clone();
        let t = tokio::spawn(async move { q2.pop(None).await });
        tokio::task::yield_now().await;
        q.close();
        assert!(matches!(t.await.unwrap(), Err(Error::Closed)));
    }
}
