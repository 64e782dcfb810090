//! PUSH (0x50), the sending side of the pipeline pattern (PULL receives). Each message goes
//! to one puller, round-robin over the pipes that have room; with none, a send waits
//! (`send-timeout`) and never drops.

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

pub(crate) struct Push {
    pipes: PipeList,
}

impl ProtoOps for Push {
    fn new(_: Protocol, _: &Options) -> Self {
        Push { pipes: PipeList::default() }
    }

    fn buffers() -> (usize, usize) {
        (0, 0)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.pipes.add(pipe);
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.pipes.remove(pipe);
    }

    async fn pipe_recv(&self, _: &Shared, _: &Arc<Pipe>, _: Bytes) -> Result<()> {
        // A puller has nothing to say; NNG discards anything it sends.
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        Ok(self.pipes.lock().try_send(Message::new(msg.body)).err())
    }

    async fn recv(&self, _: &Shared, _: CtxId, _: Option<Instant>) -> Result<Message> {
        Err(unsupported("recv", Protocol::Push))
    }

    fn close(&self) {}
}
