//! PAIR v0 (0x10): two peers, no header. Monogamous: a second connection completes the
//! handshake and is then closed. A send waits until the peer is there and has room.

use super::{CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::{MsgQueue, PushError};
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// The one peer of a monogamous socket.
#[derive(Default)]
pub(crate) struct OnePeer(Mutex<Option<Arc<Pipe>>>);

impl OnePeer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Pipe>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn attach(&self, pipe: &Arc<Pipe>) -> Result<()> {
        let mut peer = self.lock();
        if peer.as_ref().is_some_and(|p| !p.is_closed()) {
            return Err(Error::Busy);
        }
        *peer = Some(pipe.clone());
        Ok(())
    }

    pub(crate) fn detach(&self, pipe: &Arc<Pipe>) {
        let mut peer = self.lock();
        if peer.as_ref().is_some_and(|p| p.id == pipe.id) {
            *peer = None;
        }
    }

    /// Queues `msg` on the peer; hands it back if there is no peer or no room.
    pub(crate) fn try_send(&self, msg: Message) -> Option<Message> {
        let Some(peer) = self.lock().clone() else {
            return Some(msg);
        };
        match peer.queue.try_push(msg) {
            Ok(()) => None,
            Err(PushError::Full(m) | PushError::Closed(m)) => Some(m),
        }
    }
}

pub(crate) struct Pair0 {
    peer: OnePeer,
    rq: MsgQueue<Message>,
}

impl ProtoOps for Pair0 {
    fn new(_: Protocol, opts: &Options) -> Self {
        Pair0 { peer: OnePeer::default(), rq: MsgQueue::new(opts.recv_buffer) }
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
        let mut m = Message::new(payload);
        m.pipe = Some(pipe.id);
        self.rq.push(m, None).await.map_err(|(e, _)| e)
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        Ok(self.peer.try_send(Message::new(msg.body)))
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
