//! PAIR v1 (0x11): like PAIR v0 plus a one-word header whose low byte counts hops, so that
//! pairs can be joined through devices. We send hop count 1, as NNG does for a direct peer,
//! and accept 0 (mangos sends 0).
//!
//! Polyamorous mode (NNG's `nng_pair1_open_poly`) accepts many peers: each received
//! message names its pipe, and a send goes to the pipe the message names (or the first
//! pipe). Poly sends never wait: a full or unknown pipe drops the message, as in NNG.

use super::parts::{Inbox, OnePeer, PipeList};
use super::{split_u32, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

const ONE_HOP: &[u8] = &[0, 0, 0, 1];

enum Peers {
    Mono(OnePeer),
    Poly(PipeList),
}

pub(crate) struct Pair1 {
    peers: Peers,
    inbox: Inbox,
}

impl ProtoOps for Pair1 {
    fn new(protocol: Protocol, opts: &Options) -> Self {
        let peers = if protocol == Protocol::Pair1Poly {
            Peers::Poly(PipeList::default())
        } else {
            Peers::Mono(OnePeer::default())
        };
        Pair1 { peers, inbox: Inbox::new(opts) }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        match &self.peers {
            Peers::Mono(peer) => peer.attach(pipe),
            Peers::Poly(pipes) => {
                pipes.add(pipe);
                Ok(())
            }
        }
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        match &self.peers {
            Peers::Mono(peer) => peer.detach(pipe),
            Peers::Poly(pipes) => pipes.remove(pipe),
        }
    }

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, mut payload: Bytes) -> Result<()> {
        let hops = split_u32(&mut payload).ok_or(Error::Protocol("PAIR v1 message shorter than its header"))?;
        if hops > 0xff {
            return Err(Error::Protocol("PAIR v1 header with non-zero reserved bits"));
        }
        if hops > u32::from(sh.ttl_max()) {
            tracing::debug!(pipe = %pipe.id, hops, "PAIR v1 message over ttl-max dropped");
            return Ok(());
        }
        self.inbox.deliver(pipe, payload).await
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let wire = Message::with_header(Bytes::from_static(ONE_HOP), msg.body);
        match &self.peers {
            // Handed back without the header, which the next attempt adds again.
            Peers::Mono(peer) => Ok(peer.try_send(wire).map(|w| Message::new(w.body))),
            Peers::Poly(pipes) => {
                let pipes = pipes.lock();
                let target = match msg.pipe {
                    Some(id) => pipes.all().iter().find(|p| p.id == id),
                    None => pipes.first(),
                };
                if let Some(p) = target {
                    // Dropped when full, never blocking: one slow peer must not stall the rest.
                    let _ = p.queue.try_push(wire);
                }
                Ok(None)
            }
        }
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

    fn close(&self) {
        self.inbox.close();
    }
}
