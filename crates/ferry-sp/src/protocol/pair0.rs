//! PAIR v0 (0x10): two peers, no header. Monogamous: a second connection completes the
//! handshake and is then closed. A send waits until the peer is there and has room.

use super::parts::{Inbox, OnePeer};
use super::{CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::socket::Shared;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::Instant;

pub(crate) struct Pair0 {
    peer: OnePeer,
    inbox: Inbox,
}

impl ProtoOps for Pair0 {
    fn new(_: Protocol, opts: &Options) -> Self {
        Pair0 { peer: OnePeer::default(), inbox: Inbox::new(opts) }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.peer.attach(pipe)
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.peer.detach(pipe);
    }

    async fn pipe_recv(&self, _: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        self.inbox.deliver(pipe, payload).await
    }

    async fn pipe_recv_batch(&self, _: &Shared, _: &Arc<Pipe>, batch: &mut VecDeque<Message>) -> Result<()> {
        self.inbox.deliver_all(batch).await
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        Ok(self.peer.try_send(Message::new(msg.body)))
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
