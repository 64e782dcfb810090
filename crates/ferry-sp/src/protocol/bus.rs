//! BUS (0x70): a send goes to every directly connected peer; messages received are not
//! forwarded (a bus needs a full mesh). Neither direction blocks: a full pipe queue or a
//! full receive queue drops the message.
//!
//! Raw BUS is what a bus device is made of: a received message carries the id of its pipe
//! as its header, and a send whose header starts with a pipe id goes to every pipe except
//! that one, so that a device echoes nothing back to the sender (as NNG's raw BUS).

use super::parts::{pipe_word, take_pipe_word, Inbox, PipeList};
use super::{CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::PushError;
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Bus {
    pipes: PipeList,
    inbox: Inbox,
    raw: bool,
}

impl ProtoOps for Bus {
    fn new(_: Protocol, opts: &Options) -> Self {
        Bus { pipes: PipeList::default(), inbox: Inbox::new(opts), raw: opts.raw }
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

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        let header = if self.raw { pipe_word(pipe.id) } else { Bytes::new() };
        if self.inbox.deliver_or_drop(pipe, header, payload) {
            sh.stats.dropped(Some(&pipe.stats), DropReason::RecvQueueFull);
        }
        Ok(())
    }

    fn try_send(&self, sh: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let (skip, msg) = match take_pipe_word(&msg.header) {
            Some((sender, rest)) if self.raw => (Some(sender), Message::with_header(rest, msg.body)),
            _ if self.raw => (None, Message::with_header(msg.header, msg.body)),
            _ => (None, Message::new(msg.body)),
        };
        for p in self.pipes.lock().all().iter().filter(|p| Some(p.id) != skip) {
            if let Err(PushError::Full(_)) = p.queue.try_push(msg.clone()) {
                sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
            }
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

    fn recv_queue_len(&self) -> usize {
        self.inbox.len()
    }

    fn close(&self) {
        self.inbox.close();
    }
}
