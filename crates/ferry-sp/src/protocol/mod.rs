//! Protocols: each file holds one socket type's state machine behind [`ProtoOps`]. The
//! socket core owns pipes and options; a protocol decides which pipe a send goes to and
//! which received message reaches which receiver.
//!
//! Adding a protocol means adding a file here, a [`Protocol`] variant with its numbers, and
//! one line in the `protocols!` list below.
//!
//! Raw mode (`Options::raw`, NNG's `nng_*_open_raw`) lives in the same files: each protocol
//! reads the flag once in [`ProtoOps::new`] and takes its raw path where the cooked one
//! would add, strip or act on a header. Raw sockets hand the header to the caller on
//! receive and take it from the caller on send, and keep no request state:
//!
//! | Protocol | raw receive: `Message::header` | raw send |
//! |---|---|---|
//! | REP, RESPONDENT | the pipe id, then the backtrace (hops over `ttl-max` dropped) | to the pipe the first header word names, with the rest of the header; dropped if that pipe is gone or full |
//! | REQ, SURVEYOR | the backtrace, ending with the request or survey id | header and body to one pipe, round-robin, waiting for room (REQ), or to every pipe (SURVEYOR) |
//! | PAIR v1 | the hop-count word as received (hops over `ttl-max` dropped) | needs one hop-count word below 255; sent incremented |
//! | BUS | the pipe id | to every pipe except the one the first header word names |
//! | SUB | empty; nothing is filtered | — |
//! | PAIR v0, PUB, PUSH, PULL | empty: these protocols have no header | as cooked |

mod bus;
mod pair0;
mod pair1;
mod parts;
mod publisher;
mod pull;
mod push;
mod rep;
mod req;
mod subscriber;
mod surveyor;

pub(crate) mod backtrace;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::{Options, SockOpt};
use crate::pipe::Pipe;
use crate::queue::wait_or_deadline;
use crate::socket::Shared;
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;

/// A context id; 0 is the socket's own context.
pub(crate) type CtxId = u32;

/// The socket types, with their wire numbers (sp-wire.md §1).
///
/// ```
/// use ferry_sp::Protocol;
/// assert_eq!(Protocol::Req.id(), 0x30);
/// assert_eq!(Protocol::Req.peer_id(), 0x31);
/// assert_eq!(Protocol::Surveyor.peer_name(), "respondent");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// PAIR v0: one peer, no header.
    Pair0,
    /// PAIR v1, monogamous: one peer, a hop-count header.
    Pair1,
    /// PAIR v1, polyamorous: many peers; receives say which pipe, sends choose one.
    Pair1Poly,
    /// REQ: sends requests, receives the matching replies; resends unanswered ones.
    Req,
    /// REP: receives requests, sends each reply back along the request's path.
    Rep,
    /// PUB: sends to every subscriber; never blocks, drops the oldest for slow ones.
    Pub,
    /// SUB: receives the messages whose body starts with a subscribed prefix.
    Sub,
    /// PUSH: sends each message to one puller, round-robin; blocks when none can take it.
    Push,
    /// PULL: receives from every pusher, fairly.
    Pull,
    /// SURVEYOR: sends a survey to every respondent and collects answers until the deadline.
    Surveyor,
    /// RESPONDENT: receives surveys and answers them.
    Respondent,
    /// BUS: sends to every directly connected peer; receives from all of them.
    Bus,
}

impl Protocol {
    /// Every protocol, in wire-number order.
    pub const ALL: [Protocol; 12] = [
        Protocol::Pair0,
        Protocol::Pair1,
        Protocol::Pair1Poly,
        Protocol::Pub,
        Protocol::Sub,
        Protocol::Req,
        Protocol::Rep,
        Protocol::Push,
        Protocol::Pull,
        Protocol::Surveyor,
        Protocol::Respondent,
        Protocol::Bus,
    ];

    /// The 16-bit number this socket announces in the handshake.
    pub fn id(self) -> u16 {
        match self {
            Protocol::Pair0 => 0x10,
            Protocol::Pair1 | Protocol::Pair1Poly => 0x11,
            Protocol::Pub => 0x20,
            Protocol::Sub => 0x21,
            Protocol::Req => 0x30,
            Protocol::Rep => 0x31,
            Protocol::Push => 0x50,
            Protocol::Pull => 0x51,
            Protocol::Surveyor => 0x62,
            Protocol::Respondent => 0x63,
            Protocol::Bus => 0x70,
        }
    }

    /// The number a peer must announce.
    pub fn peer_id(self) -> u16 {
        match self {
            Protocol::Pub => 0x21,
            Protocol::Sub => 0x20,
            Protocol::Req => 0x31,
            Protocol::Rep => 0x30,
            Protocol::Push => 0x51,
            Protocol::Pull => 0x50,
            Protocol::Surveyor => 0x63,
            Protocol::Respondent => 0x62,
            p => p.id(),
        }
    }

    /// NNG's name for the protocol (`"req"`, `"pair1"`…).
    pub fn name(self) -> &'static str {
        name_of(self.id())
    }

    /// NNG's name for the peer protocol.
    pub fn peer_name(self) -> &'static str {
        name_of(self.peer_id())
    }
}

fn name_of(id: u16) -> &'static str {
    match id {
        0x10 => "pair",
        0x11 => "pair1",
        0x20 => "pub",
        0x21 => "sub",
        0x30 => "req",
        0x31 => "rep",
        0x50 => "push",
        0x51 => "pull",
        0x62 => "surveyor",
        0x63 => "respondent",
        0x70 => "bus",
        _ => "unknown",
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Messages a pipe's send queue holds when the protocol has no `send-buffer` of its own
/// to size it: enough for the writer to batch, small enough to spread load fairly.
pub(crate) const PIPE_QUEUE: usize = 128;

/// What each protocol implements. The core calls these; it never looks at headers.
///
/// Pipe hooks run on the pipe's tasks and must not block: `add_pipe` may refuse the pipe
/// (PAIR's one-peer rule), `remove_pipe` is called once per pipe that was added.
pub(crate) trait ProtoOps: Send + Sync + Sized + 'static {
    fn new(protocol: Protocol, opts: &Options) -> Self;

    /// Default `(send-buffer, recv-buffer)`.
    fn buffers() -> (usize, usize);

    /// Default `(send-buffer, recv-buffer)` of a raw socket; by default as cooked.
    fn raw_buffers() -> (usize, usize) {
        Self::buffers()
    }

    fn pipe_queue_len(&self, opts: &Options) -> usize {
        opts.send_buffer.max(PIPE_QUEUE)
    }

    fn add_pipe(&self, sh: &Shared, pipe: &Arc<Pipe>) -> Result<()>;

    fn remove_pipe(&self, sh: &Shared, pipe: &Arc<Pipe>);

    /// A payload arrived. An error closes the pipe (malformed header). May wait for room
    /// in the receive queue, which pushes back on the peer through the transport.
    fn pipe_recv(&self, sh: &Shared, pipe: &Arc<Pipe>, payload: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// A batch of received messages, each tagged with `pipe`; must leave `batch` empty
    /// unless it fails. By default each goes through [`ProtoOps::pipe_recv`].
    fn pipe_recv_batch(
        &self,
        sh: &Shared,
        pipe: &Arc<Pipe>,
        batch: &mut VecDeque<Message>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            while let Some(m) = batch.pop_front() {
                self.pipe_recv(sh, pipe, m.body).await?;
            }
            Ok(())
        }
    }

    /// One attempt to send without waiting: `Ok(None)` when done (sent, queued or dropped
    /// by design), `Ok(Some(msg))` when the protocol must wait for a pipe or for room.
    fn try_send(&self, sh: &Shared, ctx: CtxId, msg: Message) -> Result<Option<Message>>;

    /// Sends, waiting as the protocol requires. By default: retries [`ProtoOps::try_send`]
    /// whenever a pipe is added or a pipe's writer makes room.
    fn send(
        &self,
        sh: &Shared,
        ctx: CtxId,
        msg: Message,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<()>> + Send {
        send_when_ready(sh, deadline, msg, move |m| self.try_send(sh, ctx, m))
    }

    /// One attempt to receive without waiting; `Ok(None)` when nothing is there yet.
    fn try_recv(&self, _sh: &Shared, _ctx: CtxId) -> Result<Option<Message>> {
        Ok(None)
    }

    fn recv(&self, sh: &Shared, ctx: CtxId, deadline: Option<Instant>) -> impl Future<Output = Result<Message>> + Send;

    fn open_context(&self, _sh: &Shared) -> Result<CtxId> {
        Err(Error::NotSupported { op: "contexts", protocol: "this" })
    }

    fn close_context(&self, _ctx: CtxId) {}

    /// Options only this protocol understands (subscribe, unsubscribe).
    fn set_option(&self, _sh: &Shared, opt: &SockOpt) -> Result<()> {
        Err(Error::InvalidOption { name: opt.name(), reason: "not an option of this protocol".into() })
    }

    /// Generic options changed (queue sizes).
    fn options_changed(&self, _opts: &Options) {}

    /// Messages received and waiting for `recv`, over all contexts (for statistics).
    fn recv_queue_len(&self) -> usize {
        0
    }

    /// The socket is closing: wake every waiter with [`Error::Closed`].
    fn close(&self);
}

macro_rules! protocols {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        /// One protocol's state, chosen when the socket is created. An enum rather than a
        /// trait object, so the per-message calls are static and allocate no futures.
        pub(crate) enum AnyProto { $($variant($ty)),* }

        macro_rules! each {
            ($self:ident, $p:ident => $e:expr) => { match $self { $(AnyProto::$variant($p) => $e),* } };
        }

        impl AnyProto {
            pub(crate) fn new(protocol: Protocol, opts: &Options) -> AnyProto {
                match protocol {
                    $(Protocol::$variant => AnyProto::$variant(<$ty>::new(protocol, opts)),)*
                }
            }

            pub(crate) fn buffers(protocol: Protocol, raw: bool) -> (usize, usize) {
                match protocol {
                    $(Protocol::$variant if raw => <$ty>::raw_buffers(),)*
                    $(Protocol::$variant => <$ty>::buffers(),)*
                }
            }
        }
    };
}

protocols! {
    Pair0 => pair0::Pair0,
    Pair1 => pair1::Pair1,
    Pair1Poly => pair1::Pair1,
    Req => req::Req,
    Rep => rep::Responder,
    Pub => publisher::Pub,
    Sub => subscriber::Sub,
    Push => push::Push,
    Pull => pull::Pull,
    Surveyor => surveyor::Surveyor,
    Respondent => rep::Responder,
    Bus => bus::Bus,
}

impl AnyProto {
    pub(crate) fn pipe_queue_len(&self, opts: &Options) -> usize {
        each!(self, p => p.pipe_queue_len(opts))
    }
    pub(crate) fn add_pipe(&self, sh: &Shared, pipe: &Arc<Pipe>) -> Result<()> {
        each!(self, p => p.add_pipe(sh, pipe))
    }
    pub(crate) fn remove_pipe(&self, sh: &Shared, pipe: &Arc<Pipe>) {
        each!(self, p => p.remove_pipe(sh, pipe))
    }
    pub(crate) async fn pipe_recv_batch(
        &self,
        sh: &Shared,
        pipe: &Arc<Pipe>,
        batch: &mut VecDeque<Message>,
    ) -> Result<()> {
        each!(self, p => p.pipe_recv_batch(sh, pipe, batch).await)
    }
    pub(crate) fn try_send(&self, sh: &Shared, ctx: CtxId, msg: Message) -> Result<Option<Message>> {
        each!(self, p => p.try_send(sh, ctx, msg))
    }
    pub(crate) async fn send(&self, sh: &Shared, ctx: CtxId, msg: Message, deadline: Option<Instant>) -> Result<()> {
        each!(self, p => p.send(sh, ctx, msg, deadline).await)
    }
    pub(crate) fn try_recv(&self, sh: &Shared, ctx: CtxId) -> Result<Option<Message>> {
        each!(self, p => p.try_recv(sh, ctx))
    }
    pub(crate) async fn recv(&self, sh: &Shared, ctx: CtxId, deadline: Option<Instant>) -> Result<Message> {
        each!(self, p => p.recv(sh, ctx, deadline).await)
    }
    pub(crate) fn open_context(&self, sh: &Shared) -> Result<CtxId> {
        each!(self, p => p.open_context(sh))
    }
    pub(crate) fn close_context(&self, ctx: CtxId) {
        each!(self, p => p.close_context(ctx))
    }
    pub(crate) fn set_option(&self, sh: &Shared, opt: &SockOpt) -> Result<()> {
        each!(self, p => p.set_option(sh, opt))
    }
    pub(crate) fn options_changed(&self, opts: &Options) {
        each!(self, p => p.options_changed(opts))
    }
    pub(crate) fn recv_queue_len(&self) -> usize {
        each!(self, p => p.recv_queue_len())
    }
    pub(crate) fn close(&self) {
        each!(self, p => p.close())
    }
}

/// Waits until `attempt` yields a value, re-trying whenever a pipe is added or a pipe's
/// writer makes room; fails with [`Error::Timeout`] at the deadline and [`Error::Closed`]
/// when the socket closes. This is how blocking sends wait for a peer.
pub(crate) async fn wait_for_pipe<T: Send>(
    sh: &Shared,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Option<T> + Send,
) -> Result<T> {
    // Fast path: most sends find room at once and need no waiter registered. The slow path
    // is boxed so that the common case's future stays small.
    if sh.is_closed() {
        return Err(Error::Closed);
    }
    if let Some(v) = attempt() {
        return Ok(v);
    }
    Box::pin(async move {
        loop {
            let notified = sh.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if sh.is_closed() {
                return Err(Error::Closed);
            }
            if let Some(v) = attempt() {
                return Ok(v);
            }
            tokio::select! {
                r = wait_or_deadline(notified, deadline) => r?,
                _ = sh.closed.cancelled() => return Err(Error::Closed),
            }
        }
    })
    .await
}

/// Sends `msg` through `try_send`, retrying as [`wait_for_pipe`] does until it is taken.
pub(crate) async fn send_when_ready(
    sh: &Shared,
    deadline: Option<Instant>,
    msg: Message,
    mut try_send: impl FnMut(Message) -> Result<Option<Message>> + Send,
) -> Result<()> {
    let mut msg = Some(msg);
    wait_for_pipe(sh, deadline, || match try_send(msg.take()?) {
        Ok(None) => Some(Ok(())),
        Ok(Some(m)) => {
            msg = Some(m);
            None
        }
        Err(e) => Some(Err(e)),
    })
    .await?
}

/// The error for an operation a protocol does not have.
pub(crate) fn unsupported(op: &'static str, protocol: Protocol) -> Error {
    Error::NotSupported { op, protocol: protocol.name() }
}

/// Takes the leading big-endian u32 of a payload.
pub(crate) fn split_u32(payload: &mut Bytes) -> Option<u32> {
    if payload.len() < 4 {
        return None;
    }
    let word = payload.split_to(4);
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PipeId;
    use proptest::prelude::*;
    use tokio_util::sync::CancellationToken;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a peer sends, every protocol either takes it or rejects it (closing that
        /// pipe); it never panics, and a closed socket wakes nobody into a panic either.
        #[test]
        fn any_payload_is_taken_or_rejected_never_a_panic(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 1..24),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                for (protocol, raw) in Protocol::ALL.into_iter().flat_map(|p| [(p, false), (p, true)]) {
                    let mut opts = Options::with_buffers(4, 4);
                    opts.raw = raw;
                    let sh = Shared::for_test(opts.clone());
                    let proto = AnyProto::new(protocol, &opts);
                    let pipe = Arc::new(Pipe::new(PipeId(7), 4, CancellationToken::new(), "test".into()));
                    let _ = proto.add_pipe(&sh, &pipe);
                    // Open a request or survey so that replies have something to match; raw
                    // sockets get a header that names the pipe.
                    let mut question = Message::new("question");
                    question.header = Bytes::copy_from_slice(&[&pipe.id.0.to_be_bytes()[..], &[0x80, 0, 0, 1]].concat());
                    let _ = proto.try_send(&sh, 0, question);
                    let mut batch: VecDeque<Message> = payloads
                        .iter()
                        .map(|p| {
                            let mut m = Message::new(Bytes::copy_from_slice(p));
                            m.pipe = Some(pipe.id);
                            m
                        })
                        .collect();
                    // Full inboxes would wait for a reader; closing makes them give up.
                    proto.close();
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        proto.pipe_recv_batch(&sh, &pipe, &mut batch),
                    )
                    .await
                    .expect("pipe_recv must not hang once the socket is closed");
                    proto.remove_pipe(&sh, &pipe);
                }
            });
        }
    }
}
