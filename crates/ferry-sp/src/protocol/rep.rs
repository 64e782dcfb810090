//! REP (0x31) and RESPONDENT (0x63): the answering sides of request/reply and survey.
//! Both strip the backtrace from what they receive, remember it with the originating pipe
//! in the receiving context, and put it back on the reply, which goes to that pipe only.
//! More hops than `ttl-max` drops the message; a backtrace that never ends closes the pipe.
//!
//! They differ in two ways: a REP reply waits behind a busy pipe (as NNG does), a RESPONDENT
//! reply is dropped if its pipe is full; a reply whose pipe is gone is discarded silently
//! by both.
//!
//! Raw mode (the client-facing side of a device, NNG's xrep) keeps no reply state: a
//! request is received with its pipe id in front of the backtrace as the header, and a send
//! goes to the pipe its header's first word names, with the rest of the header in front of
//! the body. As in NNG, a raw reply is dropped if that pipe is gone or its queue is full,
//! so that one client that does not read cannot stall a device's replies to the others.

use super::backtrace;
use super::parts::take_pipe_word;
use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::{Message, PipeId};
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::{MsgQueue, PushError};
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Where a reply goes: the pipe and the backtrace of the request being answered.
struct ReplyTo {
    pipe: PipeId,
    backtrace: Bytes,
}

#[derive(Default)]
struct State {
    pipes: HashMap<PipeId, Arc<Pipe>>,
    /// Per context, the request received and not yet answered.
    ctxs: HashMap<CtxId, Option<ReplyTo>>,
    next_ctx: CtxId,
}

pub(crate) struct Responder {
    /// Requests in arrival order; `header` holds the backtrace.
    rq: MsgQueue<Message>,
    st: Mutex<State>,
    protocol: Protocol,
    raw: bool,
}

impl Responder {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers where the reply to a received request goes, and hands its body over; or,
    /// raw, hands over the request with its pipe id in front of its backtrace.
    fn accept(&self, ctx: CtxId, mut m: Message) -> Result<Message> {
        if self.raw {
            let id = m.pipe.ok_or(Error::Protocol("request without a pipe"))?;
            let mut header = BytesMut::with_capacity(4 + m.header.len());
            header.put_u32(id.get());
            header.extend_from_slice(&m.header);
            m.header = header.freeze();
            return Ok(m);
        }
        let pipe = m.pipe.ok_or(Error::Protocol("request without a pipe"))?;
        let backtrace = std::mem::take(&mut m.header);
        match self.st().ctxs.get_mut(&ctx) {
            Some(slot) => *slot = Some(ReplyTo { pipe, backtrace }),
            None => return Err(Error::Closed),
        }
        Ok(m)
    }
}

impl ProtoOps for Responder {
    fn new(protocol: Protocol, opts: &Options) -> Self {
        let mut st = State::default();
        st.ctxs.insert(0, None);
        st.next_ctx = 1;
        Responder { rq: MsgQueue::new(opts.recv_buffer), st: Mutex::new(st), protocol, raw: opts.raw }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.st().pipes.insert(pipe.id, pipe.clone());
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.st().pipes.remove(&pipe.id);
    }

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        match backtrace::split(payload, sh.ttl_max())? {
            None => {
                tracing::debug!(pipe = %pipe.id, "request over ttl-max dropped");
                sh.stats.dropped(Some(&pipe.stats), DropReason::TtlExceeded);
                Ok(())
            }
            Some((backtrace, body)) => {
                let mut m = Message::with_header(backtrace, body);
                m.pipe = Some(pipe.id);
                self.rq.push(m, None).await.map_err(|(e, _)| e)
            }
        }
    }

    fn try_recv(&self, _: &Shared, ctx: CtxId) -> Result<Option<Message>> {
        self.rq.try_pop().map(|m| self.accept(ctx, m)).transpose()
    }

    async fn recv(&self, _: &Shared, ctx: CtxId, deadline: Option<Instant>) -> Result<Message> {
        let m = self.rq.pop(deadline).await?;
        self.accept(ctx, m)
    }

    fn try_send(&self, sh: &Shared, ctx: CtxId, msg: Message) -> Result<Option<Message>> {
        if self.raw {
            let (id, backtrace) =
                take_pipe_word(&msg.header).ok_or(Error::BadHeader("the header must start with the pipe id"))?;
            match self.st().pipes.get(&id) {
                Some(pipe) => {
                    if let Err(PushError::Full(_)) = pipe.queue.try_push(Message::with_header(backtrace, msg.body)) {
                        sh.stats.dropped(Some(&pipe.stats), DropReason::QueueFull);
                    }
                }
                None => sh.stats.dropped(None, DropReason::NoPipe),
            }
            return Ok(None);
        }
        let mut st = self.st();
        let slot = st.ctxs.get_mut(&ctx).ok_or(Error::Closed)?;
        let to = slot.take().ok_or(Error::BadState)?;
        let Some(pipe) = st.pipes.get(&to.pipe).cloned() else {
            // The requester is gone; nobody is waiting for this reply.
            sh.stats.dropped(None, DropReason::NoPipe);
            return Ok(None);
        };
        match pipe.queue.try_push(Message::with_header(to.backtrace.clone(), msg.body)) {
            Err(PushError::Full(wire)) if self.protocol == Protocol::Rep => {
                // Keep the request so that the wait (or a later send) can still answer it.
                if let Some(slot) = st.ctxs.get_mut(&ctx) {
                    *slot = Some(to);
                }
                Ok(Some(Message::new(wire.body)))
            }
            Err(PushError::Full(_)) => {
                sh.stats.dropped(Some(&pipe.stats), DropReason::QueueFull);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn open_context(&self, _: &Shared) -> Result<CtxId> {
        if self.raw {
            return Err(unsupported("contexts on raw sockets", self.protocol));
        }
        let mut st = self.st();
        let id = st.next_ctx;
        st.next_ctx += 1;
        st.ctxs.insert(id, None);
        Ok(id)
    }

    fn close_context(&self, ctx: CtxId) {
        self.st().ctxs.remove(&ctx);
    }

    fn options_changed(&self, opts: &Options) {
        self.rq.set_capacity(opts.recv_buffer);
    }

    fn recv_queue_len(&self) -> usize {
        self.rq.len()
    }

    fn close(&self) {
        self.rq.close();
    }
}
