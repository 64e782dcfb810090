//! PUB (0x20): every message goes to every subscriber pipe. There are no subscription
//! messages on the wire; subscribers filter. A send never blocks: each pipe has a queue of
//! `send-buffer` messages (16) and drops its oldest message when a new one arrives and the
//! queue is full.

use super::parts::PipeList;
use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Pub {
    pipes: PipeList,
}

impl ProtoOps for Pub {
    fn new(_: Protocol, _: &Options) -> Self {
        Pub { pipes: PipeList::default() }
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

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let msg = Message::new(msg.body);
        for p in self.pipes.lock().all() {
            if p.queue.push_drop_oldest(msg.clone()).is_some() {
                tracing::trace!(pipe = %p.id, "slow subscriber: oldest message dropped");
            }
        }
        Ok(None)
    }

    async fn recv(&self, _: &Shared, _: CtxId, _: Option<Instant>) -> Result<Message> {
        Err(unsupported("recv", Protocol::Pub))
    }

    fn options_changed(&self, opts: &Options) {
        for p in self.pipes.lock().all() {
            p.queue.set_capacity(opts.send_buffer);
        }
    }

    fn close(&self) {}
}
