//! SURVEYOR (0x62): sends a survey to every respondent and collects the answers that carry
//! its id until `surveyor:survey-time` (1 s) runs out. A receive waits at most until then
//! ([`Error::Timeout`]); after it, or with no survey, a receive is [`Error::BadState`].
//! Surveys are never resent. A new survey on a context abandons the previous one. Each
//! context keeps up to `recv-buffer` answers and drops the rest.
//!
//! Raw SURVEYOR (the respondent-facing side of a survey device) has no survey state and no
//! timer: a send puts the caller's header (backtrace and survey id) and body on every pipe
//! that has room, and every response is received with its backtrace as the header, into a
//! queue of `recv-buffer` that pushes back on the pipes when full.

use super::backtrace::{self, IdAlloc};
use super::parts::{Inbox, RoundRobin};
use super::{split_u32, unsupported, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::{deadline_after, MsgQueue, PushError};
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// A survey time too long for the clock ends about thirty years from now.
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86400 * 365 * 30)
}

struct Survey {
    id: u32,
    ends: Instant,
    answers: Arc<MsgQueue<Message>>,
}

struct State {
    ids: IdAlloc,
    surveys: HashMap<u32, CtxId>,
    ctxs: HashMap<CtxId, Option<Survey>>,
    next_ctx: CtxId,
    pipes: RoundRobin,
    recv_buffer: usize,
}

impl State {
    fn end_survey(&mut self, ctx: CtxId) {
        if let Some(Some(s)) = self.ctxs.get_mut(&ctx).map(Option::take) {
            self.surveys.remove(&s.id);
            s.answers.close();
        }
    }
}

pub(crate) struct Surveyor {
    st: Mutex<State>,
    /// Raw mode's receive queue; `None` for a cooked socket.
    raw: Option<Inbox>,
}

impl Surveyor {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProtoOps for Surveyor {
    fn new(_: Protocol, opts: &Options) -> Self {
        let mut ctxs = HashMap::new();
        ctxs.insert(0, None);
        Surveyor {
            st: Mutex::new(State {
                ids: IdAlloc::new(),
                surveys: HashMap::new(),
                ctxs,
                next_ctx: 1,
                pipes: RoundRobin::default(),
                recv_buffer: opts.recv_buffer,
            }),
            raw: opts.raw.then(|| Inbox::new(opts)),
        }
    }

    fn buffers() -> (usize, usize) {
        (16, 128)
    }

    fn pipe_queue_len(&self, opts: &Options) -> usize {
        opts.send_buffer
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.st().pipes.add(pipe);
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.st().pipes.remove(pipe);
    }

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, mut payload: Bytes) -> Result<()> {
        if let Some(inbox) = &self.raw {
            let (header, body) = backtrace::split_reply(payload)?;
            return inbox.deliver_with(pipe, header, body).await;
        }
        let id = split_u32(&mut payload).ok_or(Error::Protocol("survey response shorter than its id"))?;
        let st = self.st();
        let answers = st
            .surveys
            .get(&id)
            .and_then(|ctx| st.ctxs.get(ctx))
            .and_then(Option::as_ref)
            .filter(|s| s.id == id && s.ends > Instant::now())
            .map(|s| s.answers.clone());
        drop(st);
        let Some(answers) = answers else {
            sh.stats.dropped(Some(&pipe.stats), DropReason::SurveyExpired);
            return Ok(());
        };
        let mut m = Message::new(payload);
        m.pipe = Some(pipe.id);
        if let Err(PushError::Full(_)) = answers.try_push(m) {
            sh.stats.dropped(Some(&pipe.stats), DropReason::RecvQueueFull);
        }
        Ok(())
    }

    fn try_send(&self, sh: &Shared, ctx: CtxId, msg: Message) -> Result<Option<Message>> {
        if self.raw.is_some() {
            let wire = Message::with_header(msg.header, msg.body);
            for p in self.st().pipes.all() {
                if let Err(PushError::Full(_)) = p.queue.try_push(wire.clone()) {
                    sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
                }
            }
            return Ok(None);
        }
        let mut guard = self.st();
        let st = &mut *guard;
        if !st.ctxs.contains_key(&ctx) {
            return Err(Error::Closed);
        }
        st.end_survey(ctx);
        let surveys = &st.surveys;
        let id = st.ids.next(|id| surveys.contains_key(&id));
        let survey = Survey {
            id,
            ends: deadline_after(sh.opts().survey_time).unwrap_or_else(far_future),
            answers: Arc::new(MsgQueue::new(st.recv_buffer)),
        };
        st.surveys.insert(id, ctx);
        st.ctxs.insert(ctx, Some(survey));
        let wire = Message::with_header(Bytes::copy_from_slice(&id.to_be_bytes()), msg.body);
        for p in st.pipes.all() {
            // A busy respondent misses the survey rather than delaying the others.
            if let Err(PushError::Full(_)) = p.queue.try_push(wire.clone()) {
                sh.stats.dropped(Some(&p.stats), DropReason::QueueFull);
            }
        }
        Ok(None)
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        self.raw.as_ref().map_or(Ok(None), Inbox::try_recv)
    }

    async fn recv(&self, _: &Shared, ctx: CtxId, deadline: Option<Instant>) -> Result<Message> {
        if let Some(inbox) = &self.raw {
            return inbox.recv(deadline).await;
        }
        let (id, ends, answers) = {
            let mut st = self.st();
            let survey = st.ctxs.get(&ctx).ok_or(Error::Closed)?.as_ref().ok_or(Error::BadState)?;
            if survey.ends <= Instant::now() {
                st.end_survey(ctx);
                return Err(Error::BadState);
            }
            (survey.id, survey.ends, survey.answers.clone())
        };
        let until = deadline.map_or(ends, |d| d.min(ends));
        match answers.pop(Some(until)).await {
            Ok(m) => Ok(m),
            Err(Error::Closed) => {
                let replaced = self.st().ctxs.get(&ctx).and_then(Option::as_ref).is_some_and(|s| s.id != id);
                Err(if replaced { Error::Canceled } else { Error::Closed })
            }
            Err(e) => Err(e),
        }
    }

    fn open_context(&self, _: &Shared) -> Result<CtxId> {
        if self.raw.is_some() {
            return Err(unsupported("contexts on raw sockets", Protocol::Surveyor));
        }
        let mut st = self.st();
        let id = st.next_ctx;
        st.next_ctx += 1;
        st.ctxs.insert(id, None);
        Ok(id)
    }

    fn close_context(&self, ctx: CtxId) {
        let mut st = self.st();
        st.end_survey(ctx);
        st.ctxs.remove(&ctx);
    }

    fn recv_queue_len(&self) -> usize {
        let answers: usize = self.st().ctxs.values().flatten().map(|s| s.answers.len()).sum();
        answers + self.raw.as_ref().map_or(0, Inbox::len)
    }

    fn options_changed(&self, opts: &Options) {
        if let Some(inbox) = &self.raw {
            inbox.resize(opts);
        }
        let mut st = self.st();
        st.recv_buffer = opts.recv_buffer;
        for p in st.pipes.all() {
            p.queue.set_capacity(opts.send_buffer);
        }
    }

    fn close(&self) {
        if let Some(inbox) = &self.raw {
            inbox.close();
        }
        let mut st = self.st();
        let ctxs: Vec<CtxId> = st.ctxs.keys().copied().collect();
        for c in ctxs {
            st.end_survey(c);
        }
    }
}
