//! PULL (0x51), the receiving side of the pipeline pattern. Messages from all pushers are
//! queued in arrival order; a full queue stops reading from the pipes, which pushes back
//! on the pushers through TCP flow control.

use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::MsgQueue;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Pull {
    rq: MsgQueue<Message>,
}

impl ProtoOps for Pull {
    fn new(_: Protocol, opts: &Options) -> Self {
        Pull { rq: MsgQueue::new(opts.recv_buffer) }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, _: &Arc<Pipe>) -> Result<()> {
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, _: &Arc<Pipe>) {}

    async fn pipe_recv(&self, _: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        let mut m = Message::new(payload);
        m.pipe = Some(pipe.id);
        self.rq.push(m, None).await.map_err(|(e, _)| e)
    }

    fn try_send(&self, _: &Shared, _: CtxId, _: Message) -> Result<Option<Message>> {
        Err(unsupported("send", Protocol::Pull))
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        Ok(self.rq.try_pop())
    }

    async fn recv(&self, _: &Shared, _: CtxId, deadline: Option<Instant>) -> Result<Message> {
        self.rq.pop(deadline).await
    }

    fn options_changed(&self, opts: &Options) {
        self.rq.set_capacity(opts.recv_buffer);
    }

    fn close(&self) {
        self.rq.close();
    }
}
