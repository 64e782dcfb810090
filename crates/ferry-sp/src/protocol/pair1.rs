//! PAIR v1 (0x11): like PAIR v0 plus a one-word header whose low byte counts hops, so that
//! pairs can be joined through devices. We send hop count 1, as NNG does for a direct peer,
//! and accept 0 (mangos sends 0).
//!
//! Polyamorous mode (NNG's `nng_pair1_open_poly`) accepts many peers: each received
//! message names its pipe, and a send goes to the pipe the message names (or the first
//! pipe). Poly sends never wait: a full or unknown pipe drops the message, as in NNG.
//!
//! Raw PAIR v1 (a device's side of a pair) hands over the hop-count word as it arrived and
//! sends the word it is given plus one, so that each device on the way counts one hop; a
//! send whose header is not one word below 255 fails with [`Error::BadHeader`], as NNG's
//! fails with `NNG_EPROTO`. Over-`ttl-max` messages are dropped in both modes.

use super::parts::{Inbox, OnePeer, PipeList};
use super::{split_u32, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::PushError;
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

/// Every hop-count word a send can put on the wire, so that sending allocates nothing.
static HOPS: [[u8; 4]; 256] = {
    let mut words = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        words[n] = [0, 0, 0, n as u8];
        n += 1;
    }
    words
};

/// The header a raw send puts on the wire: the hop count it was given, plus one.
fn next_hop(header: &[u8]) -> Result<Bytes> {
    let word: [u8; 4] = header.try_into().map_err(|_| Error::BadHeader("PAIR v1 needs one 4-byte hop-count word"))?;
    match u32::from_be_bytes(word) {
        hops @ 0..=0xfe => Ok(Bytes::from_static(&HOPS[hops as usize + 1])),
        _ => Err(Error::BadHeader("PAIR v1 hop count must be below 255")),
    }
}

enum Peers {
    Mono(OnePeer),
    Poly(PipeList),
}

pub(crate) struct Pair1 {
    peers: Peers,
    inbox: Inbox,
    raw: bool,
}

impl ProtoOps for Pair1 {
    fn new(protocol: Protocol, opts: &Options) -> Self {
        let peers = if protocol == Protocol::Pair1Poly {
            Peers::Poly(PipeList::default())
        } else {
            Peers::Mono(OnePeer::default())
        };
        Pair1 { peers, inbox: Inbox::new(opts), raw: opts.raw }
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
        let word = payload.slice(..payload.len().min(4));
        let hops = split_u32(&mut payload).ok_or(Error::Protocol("PAIR v1 message shorter than its header"))?;
        if hops > 0xff {
            return Err(Error::Protocol("PAIR v1 header with non-zero reserved bits"));
        }
        if hops > u32::from(sh.ttl_max()) {
            tracing::debug!(pipe = %pipe.id, hops, "PAIR v1 message over ttl-max dropped");
            sh.stats.dropped(Some(&pipe.stats), DropReason::TtlExceeded);
            return Ok(());
        }
        let header = if self.raw { word } else { Bytes::new() };
        self.inbox.deliver_with(pipe, header, payload).await
    }

    fn try_send(&self, sh: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        // Cooked sends count the hop to the direct peer (0 + 1), as NNG's do.
        let hop = if self.raw { next_hop(&msg.header)? } else { Bytes::from_static(&HOPS[1]) };
        let wire = Message::with_header(hop, msg.body);
        match &self.peers {
            // Handed back with the caller's header, from which the next attempt starts again.
            Peers::Mono(peer) => Ok(peer.try_send(wire).map(|w| Message::with_header(msg.header, w.body))),
            Peers::Poly(pipes) => {
                let pipes = pipes.lock();
                let target = match msg.pipe {
                    Some(id) => pipes.all().iter().find(|p| p.id == id),
                    None => pipes.first(),
                };
                match target {
                    // Dropped when full, never blocking: one slow peer must not stall the rest.
                    Some(p) => {
                        if let Err(PushError::Full(_)) = p.queue.try_push(wire) {
                            sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
                        }
                    }
                    None => sh.stats.dropped(None, DropReason::NoPipe),
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

    fn recv_queue_len(&self) -> usize {
        self.inbox.len()
    }

    fn close(&self) {
        self.inbox.close();
    }
}
