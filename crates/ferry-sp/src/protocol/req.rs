//! REQ (0x30): sends a request with a fresh id, then receives the reply with that id.
//!
//! - Ids start at a random value and count up (`0x8000_0000 | n`).
//! - A request goes to the next pipe with room, round-robin; with none, the send waits.
//! - An unanswered request is sent again after `req:resend-time` (60 s) while its context
//!   waits for the reply, and at once, on another pipe, when the pipe it went out on
//!   closes. With resend disabled, losing that pipe fails the receive with
//!   [`Error::ConnectionReset`].
//! - A new send on a context abandons its previous request ([`Error::Canceled`]); a receive
//!   with no request outstanding is [`Error::BadState`].
//! - Contexts share the socket's pipes and id space but keep their own request.
//!
//! Raw REQ (the worker-facing side of a REQ/REP device) keeps none of this: a send puts the
//! caller's header (the backtrace, ending with a request id) and body on the next pipe with
//! room, waiting for one as a request does, and is never resent; a reply is received with
//! its backtrace as the header, whatever its id. Its receive queue holds `recv-buffer`
//! replies (128 by default, as mangos' raw REQ) and pushes back on the pipes when full.

use super::backtrace::{self, IdAlloc};
use super::parts::{Inbox, RoundRobin};
use super::{send_when_ready, split_u32, unsupported, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::{Message, PipeId};
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::deadline_after;
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

struct Request {
    id: u32,
    /// The request as sent: id header plus body, kept for resending.
    wire: Message,
    /// The pipe it went out on; `None` while it waits for one.
    sent_on: Option<PipeId>,
    resend_at: Option<Instant>,
    reply: Option<Message>,
    failed: Option<fn() -> Error>,
}

struct Ctx {
    request: Option<Request>,
    /// Woken when the request is answered, fails or is replaced.
    changed: Arc<Notify>,
}

struct State {
    ids: IdAlloc,
    /// Outstanding request id → the context waiting for it.
    requests: HashMap<u32, CtxId>,
    ctxs: HashMap<CtxId, Ctx>,
    next_ctx: CtxId,
    pipes: RoundRobin,
    resend: Option<std::time::Duration>,
}

impl State {
    /// Sends the context's request on the next pipe with room, if it is waiting for one.
    fn dispatch(&mut self, ctx: CtxId) -> bool {
        let resend = self.resend;
        let Some(req) = self.ctxs.get_mut(&ctx).and_then(|c| c.request.as_mut()) else {
            return false;
        };
        if req.sent_on.is_some() {
            return true;
        }
        match self.pipes.try_send(req.wire.clone()) {
            Ok(pipe) => {
                req.sent_on = Some(pipe.id);
                req.resend_at = resend.and_then(deadline_after);
                true
            }
            Err(_) => false,
        }
    }

    /// Dispatches every request that waits for a pipe.
    fn dispatch_waiting(&mut self) {
        let waiting: Vec<CtxId> = self
            .ctxs
            .iter()
            .filter(|(_, c)| c.request.as_ref().is_some_and(|r| r.sent_on.is_none() && r.reply.is_none()))
            .map(|(id, _)| *id)
            .collect();
        for ctx in waiting {
            self.dispatch(ctx);
        }
    }

    /// Drops the context's request, if it is still the one with `id`.
    fn abandon(&mut self, ctx: CtxId, id: u32) {
        if let Some(c) = self.ctxs.get_mut(&ctx) {
            if c.request.as_ref().is_some_and(|r| r.id == id) {
                c.request = None;
            }
        }
        self.requests.remove(&id);
    }
}

pub(crate) struct Req {
    st: Mutex<State>,
    /// Raw mode's receive queue; `None` for a cooked socket.
    raw: Option<Inbox>,
}

impl Req {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_ctx() -> Ctx {
    Ctx { request: None, changed: Arc::new(Notify::new()) }
}

impl ProtoOps for Req {
    fn new(_: Protocol, opts: &Options) -> Self {
        let mut ctxs = HashMap::new();
        ctxs.insert(0, new_ctx());
        Req {
            st: Mutex::new(State {
                ids: IdAlloc::new(),
                requests: HashMap::new(),
                ctxs,
                next_ctx: 1,
                pipes: RoundRobin::default(),
                resend: opts.req_resend_time,
            }),
            raw: opts.raw.then(|| Inbox::new(opts)),
        }
    }

    fn buffers() -> (usize, usize) {
        (0, 0)
    }

    fn raw_buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        let mut st = self.st();
        st.pipes.add(pipe);
        st.dispatch_waiting();
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        let mut st = self.st();
        st.pipes.remove(pipe);
        let resend = st.resend.is_some();
        let mut lost = Vec::new();
        for (id, c) in st.ctxs.iter_mut() {
            if let Some(r) = c.request.as_mut().filter(|r| r.sent_on == Some(pipe.id) && r.reply.is_none()) {
                if resend {
                    r.sent_on = None;
                    lost.push(*id);
                } else {
                    r.failed = Some(|| Error::ConnectionReset);
                    c.changed.notify_waiters();
                }
            }
        }
        for ctx in lost {
            st.dispatch(ctx);
        }
    }

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, mut payload: Bytes) -> Result<()> {
        if let Some(inbox) = &self.raw {
            let (header, body) = backtrace::split_reply(payload)?;
            return inbox.deliver_with(pipe, header, body).await;
        }
        let id = split_u32(&mut payload).ok_or(Error::Protocol("reply shorter than its request id"))?;
        let mut st = self.st();
        let Some(ctx) = st.requests.get(&id).copied() else {
            // A late or duplicate reply.
            sh.stats.dropped(Some(&pipe.stats), DropReason::UnknownRequest);
            return Ok(());
        };
        if let Some(c) = st.ctxs.get_mut(&ctx) {
            if let Some(r) = c.request.as_mut().filter(|r| r.id == id && r.reply.is_none()) {
                let mut m = Message::new(payload);
                m.pipe = Some(pipe.id);
                r.reply = Some(m);
                c.changed.notify_waiters();
            }
        }
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        if self.raw.is_some() {
            let wire = Message::with_header(msg.header, msg.body);
            return Ok(self.st().pipes.try_send(wire).err());
        }
        // A request always takes the async path: it must allocate an id and may wait.
        Ok(Some(msg))
    }

    async fn send(&self, sh: &Shared, ctx: CtxId, msg: Message, deadline: Option<Instant>) -> Result<()> {
        if self.raw.is_some() {
            return send_when_ready(sh, deadline, msg, |m| self.try_send(sh, ctx, m)).await;
        }
        let id = {
            let mut st = self.st();
            let st = &mut *st;
            let c = st.ctxs.get_mut(&ctx).ok_or(Error::Closed)?;
            if let Some(old) = c.request.take() {
                st.requests.remove(&old.id);
                c.changed.notify_waiters();
            }
            let requests = &st.requests;
            let id = st.ids.next(|id| requests.contains_key(&id));
            let wire = Message::with_header(Bytes::copy_from_slice(&id.to_be_bytes()), msg.body);
            c.request = Some(Request { id, wire, sent_on: None, resend_at: None, reply: None, failed: None });
            st.requests.insert(id, ctx);
            id
        };
        let sent = super::wait_for_pipe(sh, deadline, || {
            let mut st = self.st();
            match st.ctxs.get(&ctx).and_then(|c| c.request.as_ref()) {
                Some(r) if r.id == id => st.dispatch(ctx).then_some(Ok(())),
                _ => Some(Err(Error::Canceled)),
            }
        })
        .await;
        match sent {
            Ok(r) => r,
            Err(e) => {
                self.st().abandon(ctx, id);
                Err(e)
            }
        }
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        self.raw.as_ref().map_or(Ok(None), Inbox::try_recv)
    }

    async fn recv(&self, sh: &Shared, ctx: CtxId, deadline: Option<Instant>) -> Result<Message> {
        if let Some(inbox) = &self.raw {
            return inbox.recv(deadline).await;
        }
        let (id, changed) = {
            let st = self.st();
            let c = st.ctxs.get(&ctx).ok_or(Error::Closed)?;
            let r = c.request.as_ref().ok_or(Error::BadState)?;
            (r.id, c.changed.clone())
        };
        // Boxed: the wait holds timers and waiters that would bloat every socket's recv future.
        Box::pin(async move {
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let ready = sh.ready.notified();
                tokio::pin!(ready);
                ready.as_mut().enable();
                let (wake_at, unsent) = {
                    let mut st = self.st();
                    let st = &mut *st;
                    let Some(r) = st.ctxs.get_mut(&ctx).and_then(|c| c.request.as_mut()).filter(|r| r.id == id) else {
                        return Err(if sh.is_closed() { Error::Closed } else { Error::Canceled });
                    };
                    if let Some(reply) = r.reply.take() {
                        st.abandon(ctx, id);
                        return Ok(reply);
                    }
                    if let Some(fail) = r.failed {
                        st.abandon(ctx, id);
                        return Err(fail());
                    }
                    if r.sent_on.is_some() && r.resend_at.is_some_and(|t| t <= Instant::now()) {
                        tracing::debug!(id = format_args!("{id:#010x}"), "resending unanswered request");
                        r.sent_on = None;
                    }
                    let unsent = !st.dispatch(ctx);
                    let resend_at = st.ctxs.get(&ctx).and_then(|c| c.request.as_ref()).and_then(|r| r.resend_at);
                    let wake_at = match (resend_at, deadline) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    (wake_at, unsent)
                };
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    self.st().abandon(ctx, id);
                    return Err(Error::Timeout);
                }
                let sleep = async {
                    match wake_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = notified => {}
                    _ = ready, if unsent => {}
                    _ = sleep => {}
                    _ = sh.closed.cancelled() => return Err(Error::Closed),
                }
            }
        })
        .await
    }

    fn open_context(&self, _: &Shared) -> Result<CtxId> {
        if self.raw.is_some() {
            return Err(unsupported("contexts on raw sockets", Protocol::Req));
        }
        let mut st = self.st();
        let id = st.next_ctx;
        st.next_ctx += 1;
        st.ctxs.insert(id, new_ctx());
        Ok(id)
    }

    fn close_context(&self, ctx: CtxId) {
        let mut st = self.st();
        if let Some(c) = st.ctxs.remove(&ctx) {
            if let Some(r) = c.request {
                st.requests.remove(&r.id);
            }
        }
    }

    fn recv_queue_len(&self) -> usize {
        let replies = self.st().ctxs.values().filter(|c| c.request.as_ref().is_some_and(|r| r.reply.is_some())).count();
        replies + self.raw.as_ref().map_or(0, Inbox::len)
    }

    fn options_changed(&self, opts: &Options) {
        self.st().resend = opts.req_resend_time;
        if let Some(inbox) = &self.raw {
            inbox.resize(opts);
        }
    }

    fn close(&self) {
        if let Some(inbox) = &self.raw {
            inbox.close();
        }
        for c in self.st().ctxs.values() {
            c.changed.notify_waiters();
        }
    }
}
