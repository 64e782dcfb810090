//! BUS (0x70): a send goes to every directly connected peer; messages received are not
//! forwarded (a bus needs a full mesh). Neither direction blocks: a full pipe queue or a
//! full receive queue drops the message.

use super::push::RoundRobin;
use super::{CtxId, ProtoOps, Protocol};
use crate::error::Result;
use crate::message::Message;
use crate::options::Options;
use crate::pipe::Pipe;
use crate::queue::MsgQueue;
use crate::socket::Shared;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

pub(crate) struct Bus {
    pipes: Mutex<RoundRobin>,
    rq: MsgQueue<Message>,
}

impl Bus {
    fn pipes(&self) -> std::sync::MutexGuard<'_, RoundRobin> {
        self.pipes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProtoOps for Bus {
    fn new(_: Protocol, opts: &Options) -> Self {
        Bus { pipes: Mutex::new(RoundRobin::default()), rq: MsgQueue::new(opts.recv_buffer) }
    }

    fn buffers() -> (usize, usize) {
        (16, 16)
    }

    fn pipe_queue_len(&self, opts: &Options) -> usize {
        opts.send_buffer
    }

    fn add_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        self.pipes().add(pipe);
        Ok(())
    }

    fn remove_pipe(&self, _: &Shared, pipe: &Arc<Pipe>) {
        self.pipes().remove(pipe);
    }

    async fn pipe_recv(&self, _: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> Result<()> {
        let mut m = Message::new(payload);
        m.pipe = Some(pipe.id);
        let _ = self.rq.try_push(m);
        Ok(())
    }

    fn try_send(&self, _: &Shared, _: CtxId, msg: Message) -> Result<Option<Message>> {
        let msg = Message::new(msg.body);
        for p in self.pipes().all() {
            let _ = p.queue.try_push(msg.clone());
        }
        Ok(None)
    }

    fn try_recv(&self, _: &Shared, _: CtxId) -> Result<Option<Message>> {
        Ok(self.rq.try_pop())
    }

    async fn recv(&self, _: &Shared, _: CtxId, deadline: Option<Instant>) -> Result<Message> {
        self.rq.pop(deadline).await
    }

    fn options_changed(&self, opts: &Options) {
        self.rq.set_capacity(opts.recv_buffer);
        for p in self.pipes().all() {
            p.queue.set_capacity(opts.send_buffer);
        }
    }

    fn close(&self) {
        self.rq.close();
    }
}
