//! PUSH (0x50), the sending side of the pipeline pattern (PULL receives). Each message goes
//! to one puller, round-robin over the pipes that have room; with none, a send waits
//! (`send-timeout`) and never drops.

use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::PushError;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Pipes in round-robin order, with the index of the next one to try.
#[derive(Default)]
pub(crate) struct RoundRobin {
    pipes: Vec<Arc<Pipe>>,
    next: usize,
}

impl RoundRobin {
    pub(crate) fn add(&mut self, pipe: &Arc<Pipe>) {
        self.pipes.push(pipe.clone());
    }

    pub(crate) fn remove(&mut self, pipe: &Arc<Pipe>) {
        self.pipes.retain(|p| p.id != pipe.id);
    }

    pub(crate) fn first(&self) -> Option<&Arc<Pipe>> {
        self.pipes.first()
    }

    pub(crate) fn all(&self) -> &[Arc<Pipe>] {
        &self.pipes
    }

    /// Queues `msg` on the next pipe with room; hands it back if every pipe is full.
    pub(crate) fn try_send(&mut self, mut msg: Message) -> Result<Arc<Pipe>, Message> {
        let n = self.pipes.len();
        for i in 0..n {
            let idx = (self.next + i) % n;
            match self.pipes[idx].queue.try_push(msg) {
                Ok(()) => {
                    self.next = (idx + 1) % n;
                    return Ok(self.pipes[idx].clone());
                }
                Err(PushError::Full(m) | PushError::Closed(m)) => msg = m,
            }
        }
        Err(msg)
    }
}

pub(crate) struct Push {
    pipes: Mutex<RoundRobin>,
}

impl Push {
    fn pipes(&self) -> std::sync::MutexGuard<'_, RoundRobin> {
        self.pipes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProtoOps for Push {
    fn new(_: Protocol, _: &Options) -> Self {
        Push { pipes: Mutex::new(RoundRobin::default()) }
    }

    fn buffers() -> (usize, usize) {
        (0, 0)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.pipes().add(pipe);
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.pipes().remove(pipe);
    }

    async fn pipe_recv(&self, _: &Shared, _: &Arc<Pipe>, _: Bytes) -> Result<()> {
        // A puller has nothing to say; NNG discards anything it sends.
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        Ok(self.pipes().try_send(Message::new(msg.body)).err())
    }

    async fn recv(&self, _: &Shared, _: CtxId, _: Option<Instant>) -> Result<Message> {
        Err(unsupported("recv", Protocol::Push))
    }

    fn close(&self) {}
}
