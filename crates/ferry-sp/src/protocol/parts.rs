//! Pieces several protocols are built from: a round-robin pipe list, the single peer of a
//! monogamous socket, and the inbox of received messages.

use crate::error::{Error, Result};
use crate::message::{Message, PipeId};
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::{MsgQueue, PushError};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// A [`RoundRobin`] behind its own lock, for protocols with no other state to guard.
#[derive(Default)]
pub(crate) struct PipeList(Mutex<RoundRobin>);

impl PipeList {
    pub(crate) fn lock(&self) -> MutexGuard<'_, RoundRobin> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, pipe: &Arc<Pipe>) {
        self.lock().add(pipe);
    }

    pub(crate) fn remove(&self, pipe: &Arc<Pipe>) {
        self.lock().remove(pipe);
    }
}

/// The one peer of a monogamous socket (PAIR).
#[derive(Default)]
pub(crate) struct OnePeer(Mutex<Option<Arc<Pipe>>>);

impl OnePeer {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Pipe>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `pipe` as the peer, or refuses it with [`Error::Busy`] while another is up.
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

/// Received messages waiting for `recv`, each tagged with the pipe it came from. Its size
/// is `recv-buffer`; what happens when it is full is the protocol's choice.
pub(crate) struct Inbox(MsgQueue<Message>);

impl Inbox {
    pub(crate) fn new(opts: &Options) -> Inbox {
        Inbox(MsgQueue::new(opts.recv_buffer))
    }

    fn tagged(pipe: &Pipe, header: Bytes, body: Bytes) -> Message {
        let mut m = Message::with_header(header, body);
        m.pipe = Some(pipe.id);
        m
    }

    /// Queues, waiting for room: the pipe stops being read, which pushes back on the peer.
    pub(crate) async fn deliver(&self, pipe: &Pipe, payload: Bytes) -> Result<()> {
        self.deliver_with(pipe, Bytes::new(), payload).await
    }

    /// [`Inbox::deliver`] with a header, for raw sockets.
    pub(crate) async fn deliver_with(&self, pipe: &Pipe, header: Bytes, body: Bytes) -> Result<()> {
        self.0.push(Self::tagged(pipe, header, body), None).await.map_err(|(e, _)| e)
    }

    /// Queues a batch of tagged messages, waiting for room for all of them.
    pub(crate) async fn deliver_all(&self, batch: &mut VecDeque<Message>) -> Result<()> {
        self.0.push_all(batch, None).await
    }

    /// Queues, dropping the oldest message when full (a slow reader sees the newest).
    /// Returns whether a message was dropped.
    pub(crate) fn deliver_dropping_oldest(&self, pipe: &Pipe, payload: Bytes) -> bool {
        self.0.push_drop_oldest(Self::tagged(pipe, Bytes::new(), payload)).is_some()
    }

    /// Queues, or drops this message when full. Returns whether it was dropped.
    pub(crate) fn deliver_or_drop(&self, pipe: &Pipe, header: Bytes, body: Bytes) -> bool {
        matches!(self.0.try_push(Self::tagged(pipe, header, body)), Err(PushError::Full(_)))
    }

    /// Messages waiting (for statistics).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn try_recv(&self) -> Result<Option<Message>> {
        Ok(self.0.try_pop())
    }

    pub(crate) async fn recv(&self, deadline: Option<Instant>) -> Result<Message> {
        self.0.pop(deadline).await
    }

    pub(crate) fn resize(&self, opts: &Options) {
        self.0.set_capacity(opts.recv_buffer);
    }

    pub(crate) fn close(&self) {
        self.0.close();
    }
}

/// A pipe id as the one-word header raw REP, RESPONDENT and BUS sockets put in front of what
/// they receive (the top bit is clear: pipe ids are below 2^31).
pub(crate) fn pipe_word(id: PipeId) -> Bytes {
    Bytes::copy_from_slice(&id.0.to_be_bytes())
}

/// Splits the pipe id off the front of a raw send's header: `(pipe, rest of the header)`.
pub(crate) fn take_pipe_word(header: &Bytes) -> Option<(PipeId, Bytes)> {
    let word: [u8; 4] = header.get(..4)?.try_into().ok()?;
    Some((PipeId(u32::from_be_bytes(word)), header.slice(4..)))
}
