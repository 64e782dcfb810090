//! SUB (0x21): receives what publishers send and keeps the messages whose body starts with
//! one of its subscriptions (byte prefixes; the empty prefix matches all). With no
//! subscription nothing is delivered. A full receive queue drops its oldest message, so a
//! slow subscriber sees the newest data (NNG's `sub:prefnew`).
//!
//! Raw SUB filters nothing: it receives every message (what a PUB/SUB device forwards), and
//! refuses subscriptions.

use super::parts::Inbox;
use super::{unsupported, CtxId, ProtoOps, Protocol};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::{Options, SockOpt};
use crate::pipe::Pipe;
use crate::socket::Shared;
use crate::stats::DropReason;
use bytes::Bytes;
use std::sync::{Arc, RwLock};
use tokio::time::Instant;

pub(crate) struct Sub {
    topics: RwLock<Vec<Bytes>>,
    inbox: Inbox,
    raw: bool,
}

impl Sub {
    fn matches(&self, body: &[u8]) -> bool {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics.iter().any(|t| body.starts_with(t))
    }
}

impl ProtoOps for Sub {
    fn new(_: Protocol, opts: &Options) -> Self {
        Sub { topics: RwLock::new(Vec::new()), inbox: Inbox::new(opts), raw: opts.raw }
    }

    fn buffers() -> (usize, usize) {
        (0, 128)
    }

    fn add_pipe(&self, _: &Shared, _: &Arc<Pipe>) -> Result<()> {
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, _: &Arc<Pipe>) {}

    async fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        if self.raw || self.matches(&payload) {
            if self.inbox.deliver_dropping_oldest(pipe, payload) {
                sh.stats.dropped(Some(&pipe.stats), DropReason::RecvQueueFull);
            }
        } else {
            sh.stats.filtered(&pipe.stats);
        }
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, _: Message) -> Result<Option<Message>> {
        Err(unsupported("send", Protocol::Sub))
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        self.inbox.try_recv()
    }

    async fn recv(&self, _: &Shared, _: CtxId, deadline: Option<Instant>) -> Result<Message> {
        self.inbox.recv(deadline).await
    }

    fn set_option(&self, _: &Shared, opt: &SockOpt) -> Result<()> {
        if self.raw && matches!(opt, SockOpt::Subscribe(_) | SockOpt::Unsubscribe(_)) {
            let reason = "raw sub sockets receive everything and take no subscriptions".into();
            return Err(Error::InvalidOption { name: opt.name(), reason });
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        match opt {
            SockOpt::Subscribe(t) => {
                if !topics.contains(t) {
                    topics.push(t.clone());
                }
                Ok(())
            }
            SockOpt::Unsubscribe(t) => {
                let before = topics.len();
                topics.retain(|x| x != t);
                if topics.len() == before {
                    Err(Error::NotFound)
                } else {
                    Ok(())
                }
            }
            other => Err(Error::InvalidOption { name: other.name(), reason: "not an option of sub sockets".into() }),
        }
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
