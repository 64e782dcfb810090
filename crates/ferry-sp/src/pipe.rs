//! A [`Pipe`] is one connection of a socket after the handshake. It owns a send queue
//! that its writer task drains in batches, and a reader task that hands each received
//! payload to the protocol. Either task ending closes the pipe.
//!
//! Both tasks run inside the pipe's tracing span (`pipe`, with its id, remote address, URL
//! and protocol), so their events carry who the pipe is. Each counts its traffic once per
//! batch into the pipe's and the socket's counters ([`crate::stats`]).

use crate::error::Error;
use crate::events::RemoveReason;
use crate::message::{Message, PipeId};
use crate::queue::MsgQueue;
use crate::socket::Core;
use crate::stats::{DropReason, PipeCounters, PipeStats};
use crate::transport::{PipeReader, PipeWriter};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// The most messages a writer takes from its queue for one batch.
const BATCH_MAX: usize = 1024;

pub(crate) struct Pipe {
    pub(crate) id: PipeId,
    /// Messages waiting for the writer.
    pub(crate) queue: MsgQueue<Message>,
    /// Cancelled when the pipe closes, for whatever reason.
    pub(crate) closed: CancellationToken,
    pub(crate) remote: String,
    /// The URL of the listener or dialer that made the pipe.
    pub(crate) url: String,
    pub(crate) stats: PipeCounters,
    pub(crate) span: tracing::Span,
    opened: std::time::Instant,
    /// Why the pipe closed, set by whoever closes it first.
    close_reason: OnceLock<RemoveReason>,
}

impl Pipe {
    pub(crate) fn new(id: PipeId, queue_len: usize, closed: CancellationToken, remote: String) -> Pipe {
        Pipe {
            id,
            queue: MsgQueue::new(queue_len),
            closed,
            remote,
            url: String::new(),
            stats: PipeCounters::default(),
            span: tracing::Span::none(),
            opened: std::time::Instant::now(),
            close_reason: OnceLock::new(),
        }
    }

    /// Names the endpoint that made the pipe and the span its tasks run in.
    pub(crate) fn with_origin(mut self, url: String, span: tracing::Span) -> Pipe {
        self.url = url;
        self.span = span;
        self
    }

    /// Closes the pipe; idempotent and non-blocking. The tasks notice and finish.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.queue.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Records why the pipe is closing, unless a reason was recorded already.
    pub(crate) fn closing_because(&self, reason: RemoveReason) {
        let _ = self.close_reason.set(reason);
    }

    /// Why the pipe closed; with no reason recorded it was its socket closing.
    pub(crate) fn close_reason(&self) -> RemoveReason {
        self.close_reason.get().cloned().unwrap_or(RemoveReason::SocketClosed)
    }

    pub(crate) fn snapshot(&self) -> PipeStats {
        let t = self.stats.snapshot();
        PipeStats {
            id: self.id,
            remote: self.remote.clone(),
            url: self.url.clone(),
            messages_in: t.messages_in,
            bytes_in: t.bytes_in,
            messages_out: t.messages_out,
            bytes_out: t.bytes_out,
            drops: t.drops,
            filtered: t.filtered,
            send_queue: self.queue.len(),
            age: self.opened.elapsed(),
        }
    }
}

fn tagged(pipe: &Pipe, payload: bytes::Bytes) -> Message {
    let mut m = Message::new(payload);
    m.pipe = Some(pipe.id);
    m
}

/// What an error that ends a pipe's task says about why the pipe closed.
fn reason_for(e: &Error) -> RemoveReason {
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => RemoveReason::PeerClosed,
        Error::Io(io) => RemoveReason::Io(io.to_string()),
        Error::Closed => RemoveReason::SocketClosed,
        other => RemoveReason::Protocol(other.to_string()),
    }
}

/// Runs the reader: every payload goes to the protocol, which may wait (backpressure)
/// or reject it (which closes this pipe).
pub(crate) async fn run_reader(core: Arc<Core>, pipe: Arc<Pipe>, mut reader: PipeReader) {
    let work = async {
        let mut batch = VecDeque::new();
        loop {
            // Everything already complete in the read buffer goes to the protocol together:
            // one lock and one wake-up per batch instead of per message.
            let first = reader.read_frame().await?;
            let mut bytes = first.len();
            batch.push_back(tagged(&pipe, first));
            while batch.len() < BATCH_MAX {
                match reader.next_buffered()? {
                    Some(payload) => {
                        bytes += payload.len();
                        batch.push_back(tagged(&pipe, payload));
                    }
                    None => break,
                }
            }
            // Counted per batch: one add per counter, however many messages.
            let (n, bytes) = (batch.len() as u64, bytes as u64);
            pipe.stats.received(n, bytes);
            core.shared.stats.traffic.received(n, bytes);
            core.proto.pipe_recv_batch(&core.shared, &pipe, &mut batch).await?;
        }
    };
    let result: crate::Result<()> = tokio::select! {
        _ = pipe.closed.cancelled() => Ok(()),
        r = work => r,
    };
    if let Err(e) = result {
        let dropped = match e {
            Error::MessageTooLarge { .. } => Some(DropReason::TooLarge),
            Error::Protocol(_) => Some(DropReason::Malformed),
            _ => None,
        };
        if let Some(reason) = dropped {
            core.shared.stats.dropped(Some(&pipe.stats), reason);
        }
        tracing::debug!(error = %e, "pipe closed by reader");
        pipe.closing_because(reason_for(&e));
    }
    core.close_pipe(&pipe);
}

/// Runs the writer: waits for a message, takes everything else queued with it, and writes
/// the batch with as few system calls as it can.
pub(crate) async fn run_writer(core: Arc<Core>, pipe: Arc<Pipe>, mut writer: PipeWriter) {
    let work = async {
        let mut batch = Vec::with_capacity(64);
        loop {
            let first = pipe.queue.pop(None).await?;
            batch.push(first);
            pipe.queue.drain_into(&mut batch, BATCH_MAX);
            // Senders blocked on a full queue may go on while this batch is written.
            core.shared.ready.notify_waiters();
            writer.write_batch(&batch).await?;
            let bytes: usize = batch.iter().map(Message::len).sum();
            let (n, bytes) = (batch.len() as u64, bytes as u64);
            pipe.stats.sent(n, bytes);
            core.shared.stats.traffic.sent(n, bytes);
            batch.clear();
        }
    };
    let result: crate::Result<()> = tokio::select! {
        _ = pipe.closed.cancelled() => Ok(()),
        r = work => r,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "pipe closed by writer");
        pipe.closing_because(reason_for(&e));
    }
    core.close_pipe(&pipe);
}
