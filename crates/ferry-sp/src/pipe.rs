//! A [`Pipe`] is one connection of a socket after the handshake. It owns a send queue
//! that its writer task drains in batches, and a reader task that hands each received
//! payload to the protocol. Either task ending closes the pipe.

use crate::message::{Message, PipeId};
use crate::queue::MsgQueue;
use crate::socket::Core;
use crate::transport::{PipeReader, PipeWriter};
use std::collections::VecDeque;
use std::sync::Arc;
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
}

impl Pipe {
    pub(crate) fn new(id: PipeId, queue_len: usize, closed: CancellationToken, remote: String) -> Pipe {
        Pipe { id, queue: MsgQueue::new(queue_len), closed, remote }
    }

    /// Closes the pipe; idempotent and non-blocking. The tasks notice and finish.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.queue.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

fn tagged(pipe: &Pipe, payload: bytes::Bytes) -> Message {
    let mut m = Message::new(payload);
    m.pipe = Some(pipe.id);
    m
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
            batch.push_back(tagged(&pipe, first));
            while batch.len() < BATCH_MAX {
                match reader.next_buffered()? {
                    Some(payload) => batch.push_back(tagged(&pipe, payload)),
                    None => break,
                }
            }
            core.proto.pipe_recv_batch(&core.shared, &pipe, &mut batch).await?;
        }
    };
    let result: crate::Result<()> = tokio::select! {
        _ = pipe.closed.cancelled() => Ok(()),
        r = work => r,
    };
    if let Err(e) = result {
        tracing::debug!(pipe = %pipe.id, remote = %pipe.remote, error = %e, "pipe closed by reader");
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
            batch.clear();
        }
    };
    let result: crate::Result<()> = tokio::select! {
        _ = pipe.closed.cancelled() => Ok(()),
        r = work => r,
    };
    if let Err(e) = result {
        tracing::debug!(pipe = %pipe.id, remote = %pipe.remote, error = %e, "pipe closed by writer");
    }
    core.close_pipe(&pipe);
}
