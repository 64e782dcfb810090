//! PUB (0x20): every message goes to every subscriber pipe. There are no subscription
//! messages on the wire; subscribers filter. By default a send never blocks: each pipe has a
//! queue of `send-buffer` messages (16) and drops its oldest message when a new one arrives
//! and the queue is full.
//!
//! With ferry's own `ferry:pub-block-timeout` set, a send that finds a subscriber's queue
//! full waits up to that long for room (other subscribers get the message at once), then
//! drops that queue's oldest message as above. Either way the send succeeds, and every
//! drop is counted ([`DropReason::QueueFull`]).

use super::parts::PipeList;
use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::{Options, SockOpt};
use crate::pipe::Pipe;
use crate::queue::{deadline_after, PushError};
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// `block` when sends never wait (NNG's behaviour, the default).
const NEVER: u64 = u64::MAX;

pub(crate) struct Pub {
    pipes: PipeList,
    /// `ferry:pub-block-timeout` in nanoseconds, or [`NEVER`]: one atomic read per send.
    block: AtomicU64,
}

impl Pub {
    fn block_timeout(&self) -> Option<Duration> {
        match self.block.load(Ordering::Relaxed) {
            NEVER => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Queues on every pipe, dropping the oldest message of full queues.
    fn send_dropping_oldest(&self, sh: &Shared, msg: &Message) {
        for p in self.pipes.lock().all() {
            if p.queue.push_drop_oldest(msg.clone()).is_some() {
                tracing::trace!(pipe = %p.id, "slow subscriber: oldest message dropped");
                sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
            }
        }
    }
}

impl ProtoOps for Pub {
    fn new(_: Protocol, _: &Options) -> Self {
        Pub { pipes: PipeList::default(), block: AtomicU64::new(NEVER) }
    }

    fn buffers() -> (usize, usize) {
        (16, 0)
    }

    fn pipe_queue_len(&self, opts: &Options) -> usize {
        opts.send_buffer
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.pipes.add(pipe);
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.pipes.remove(pipe);
    }

    async fn pipe_recv(&self, _: &Shared, _: &Arc<Pipe>, _: Bytes) -> Result<()> {
        Ok(())
    }

    fn try_send(&self, sh: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let msg = Message::new(msg.body);
        if self.block.load(Ordering::Relaxed) != NEVER {
            // A send that may wait takes the async path: `send` below.
            return Ok(Some(msg));
        }
        self.send_dropping_oldest(sh, &msg);
        Ok(None)
    }

    /// Only with a block timeout: queue where there is room at once, then wait for room in
    /// the full queues one after the other, all against one deadline, and drop the oldest
    /// message of those still full at the end.
    async fn send(&self, sh: &Shared, _: CtxId, msg: Message, deadline: Option<Instant>) -> Result<()> {
        let Some(wait) = self.block_timeout() else {
            // The option was cleared since `try_send` looked.
            self.send_dropping_oldest(sh, &msg);
            return Ok(());
        };
        let until = match (deadline_after(wait), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut full = Vec::new();
        for p in self.pipes.lock().all() {
            if let Err(PushError::Full(_)) = p.queue.try_push(msg.clone()) {
                full.push(p.clone());
            }
        }
        for p in full {
            // Otherwise queued, or the pipe closed meanwhile.
            if let Err((Error::Timeout, m)) = p.queue.push(msg.clone(), until).await {
                if p.queue.push_drop_oldest(m).is_some() {
                    tracing::trace!(pipe = %p.id, "slow subscriber: oldest message dropped after waiting");
                    sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
                }
            }
        }
        Ok(())
    }

    async fn recv(&self, _: &Shared, _: CtxId, _: Option<Instant>) -> Result<Message> {
        Err(unsupported("recv", Protocol::Pub))
    }

    fn set_option(&self, _: &Shared, opt: &SockOpt) -> Result<()> {
        match opt {
            SockOpt::PubBlockTimeout(t) => {
                let ns = t.map_or(NEVER, |d| u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1).min(NEVER - 1));
                self.block.store(ns, Ordering::Relaxed);
                Ok(())
            }
            other => Err(Error::InvalidOption { name: other.name(), reason: "not an option of pub sockets".into() }),
        }
    }

    fn options_changed(&self, opts: &Options) {
        for p in self.pipes.lock().all() {
            p.queue.set_capacity(opts.send_buffer);
        }
    }

    fn close(&self) {}
}
