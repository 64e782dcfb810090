//! PAIR v1 (0x11): like PAIR v0 plus a one-word header whose low byte counts hops, so that
//! pairs can be joined through devices. We send hop count 1, as NNG does for a direct peer,
//! and accept 0 (mangos sends 0).
//!
//! Polyamorous mode (NNG's `nng_pair1_open_poly`) accepts many peers: each received
//! message names its pipe, and a send goes to the pipe the message names (or the first
//! pipe). Poly sends never wait: a full or unknown pipe drops the message, as in NNG.

use super::pair0::OnePeer;
use super::push::RoundRobin;
use super::{split_u32, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::MsgQueue;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

const ONE_HOP: &[u8] = &[0, 0, 0, 1];

pub(crate) struct Pair1 {
    mono: Option<OnePeer>,
    poly: Mutex<RoundRobin>,
    rq: MsgQueue<Message>,
}

impl Pair1 {
    fn poly(&self) -> std::sync::MutexGuard<'_, RoundRobin> {
        self.poly.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProtoOps for Pair1 {
    fn new(protocol: Protocol, opts: &Options) -> Self {
        let mono = (protocol != Protocol::Pair1Poly).then(OnePeer::default);
        Pair1 { mono, poly: Mutex::new(RoundRobin::default()), rq: MsgQueue::new(opts.recv_buffer) }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        match &self.mono {
            Some(peer) => peer.attach(pipe),
            None => {
                self.poly().add(pipe);
                Ok(())
            }
        }
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        match &self.mono {
            Some(peer) => peer.detach(pipe),
            None => self.poly().remove(pipe),
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
        let mut m = Message::new(payload);
        m.pipe = Some(pipe.id);
        self.rq.push(m, None).await.map_err(|(e, _)| e)
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let wire = Message::with_header(Bytes::from_static(ONE_HOP), msg.body);
        match &self.mono {
            // Handed back without the header, which the next attempt adds again.
            Some(peer) => Ok(peer.try_send(wire).map(|w| Message::new(w.body))),
            None => {
                let poly = self.poly();
                let target = match msg.pipe {
                    Some(id) => poly.all().iter().find(|p| p.id == id),
                    None => poly.first(),
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
