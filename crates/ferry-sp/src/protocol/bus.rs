//! BUS (0x70): a send goes to every directly connected peer; messages received are not
//! forwarded (a bus needs a full mesh). Neither direction blocks: a full pipe queue or a
//! full receive queue drops the message.

use super::parts::{Inbox, PipeList};
use super::{CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Bus {
    pipes: PipeList,
    inbox: Inbox,
}

impl ProtoOps for Bus {
    fn new(_: Protocol, opts: &Options) -> Self {
        Bus { pipes: PipeList::default(), inbox: Inbox::new(opts) }
    }

    fn buffers() -> (usize, usize) {
        (16, 16)
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

    async fn pipe_recv(&self, _: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        self.inbox.deliver_or_drop(pipe, payload);
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let msg = Message::new(msg.body);
        for p in self.pipes.lock().all() {
            let _ = p.queue.try_push(msg.clone());
        }
        Ok(None)
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        self.inbox.try_recv()
    }

    async fn recv(&self, _: &Shared, _: CtxId, deadline: Option<Instant>) -> Result<Message> {
        self.inbox.recv(deadline).await
    }

    fn options_changed(&self, opts: &Options) {
        self.inbox.resize(opts);
        for p in self.pipes.lock().all() {
            p.queue.set_capacity(opts.send_buffer);
        }
    }

    fn close(&self) {
        self.inbox.close();
    }
}
