//! PULL (0x51), the receiving side of the pipeline pattern. Messages from all pushers are
//! queued in arrival order; a full queue stops reading from the pipes, which pushes back
//! on the pushers through TCP flow control.

use super::parts::Inbox;
use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::socket::Shared;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Pull {
    inbox: Inbox,
}

impl ProtoOps for Pull {
    fn new(_: Protocol, opts: &Options) -> Self {
        Pull { inbox: Inbox::new(opts) }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, _: &Arc<Pipe>) -> Result<()> {
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, _: &Arc<Pipe>) {}

    async fn pipe_recv(&self, _: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        self.inbox.deliver(pipe, payload).await
    }

    async fn pipe_recv_batch(&self, _: &Shared, _: &Arc<Pipe>, batch: &mut VecDeque<Message>) -> Result<()> {
        self.inbox.deliver_all(batch).await
    }

    fn try_send(&self, _: &Shared, _: CtxId, _: Message) -> Result<Option<Message>> {
        Err(unsupported("send", Protocol::Pull))
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        self.inbox.try_recv()
    }

    async fn recv(&self, _: &Shared, _: CtxId, deadline: Option<Instant>) -> Result<Message> {
        self.inbox.recv(deadline).await
    }

    fn options_changed(&self, opts: &Options) {
        self.inbox.resize(opts);
    }

    fn recv_queue_len(&self) -> usize {
        self.inbox.len()
    }

    fn close(&self) {
        self.inbox.close();
    }
}
