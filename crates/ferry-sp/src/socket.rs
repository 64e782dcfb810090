//! [`Socket`] and [`Context`]: the public face of a protocol plus its pipes.

use crate::endpoint::{self, Dialer, Listener};
use crate::error::{Error, Result};
use crate::events::{EventHub, PipeEvent, PipeEvents};
use crate::message::{Message, PipeId};
use crate::options::{Options, SockOpt};
use crate::pipe::{self, Pipe};
use crate::protocol::{AnyProto, CtxId, Protocol};
use crate::stats::{HandshakeFailure, PipeStats, SocketCounters, SocketStats};
use crate::transport::Conn;
use crate::url::Url;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What protocols share with the socket core.
pub(crate) struct Shared {
    opts: RwLock<Options>,
    /// Copies of the options read on every message, so the hot path reads one atomic
    /// instead of locking and copying all options.
    hot: HotOptions,
    /// Notified (to all waiters) when a pipe is added, removed, or its writer makes room.
    pub(crate) ready: Notify,
    /// Cancelled when the socket closes.
    pub(crate) closed: CancellationToken,
    /// Set when the socket closes; what the per-message paths check (the token's own check
    /// takes a lock).
    closing: AtomicBool,
    /// The socket's counters (each pipe has its own too).
    pub(crate) stats: SocketCounters,
    /// Pipe added/removed, for [`Socket::pipe_events`].
    pub(crate) events: EventHub,
}

impl Shared {
    pub(crate) fn new(opts: Options) -> Shared {
        Shared {
            hot: HotOptions::new(&opts),
            opts: RwLock::new(opts),
            ready: Notify::new(),
            closed: CancellationToken::new(),
            closing: AtomicBool::new(false),
            stats: SocketCounters::default(),
            events: EventHub::default(),
        }
    }

    pub(crate) fn opts(&self) -> Options {
        self.opts.read().map(|o| o.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// A standalone instance for unit tests of protocols.
    #[cfg(test)]
    pub(crate) fn for_test(opts: Options) -> Shared {
        Shared::new(opts)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(crate) fn ttl_max(&self) -> u8 {
        self.hot.ttl_max.load(Ordering::Relaxed)
    }
}

/// Per-message options as atomics; timeouts in nanoseconds, `u64::MAX` for none.
struct HotOptions {
    send_timeout: AtomicU64,
    recv_timeout: AtomicU64,
    ttl_max: AtomicU8,
}

impl HotOptions {
    fn new(opts: &Options) -> HotOptions {
        let hot =
            HotOptions { send_timeout: AtomicU64::new(0), recv_timeout: AtomicU64::new(0), ttl_max: AtomicU8::new(0) };
        hot.store(opts);
        hot
    }

    fn store(&self, opts: &Options) {
        let ns = |t: Option<Duration>| t.map_or(u64::MAX, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1));
        self.send_timeout.store(ns(opts.send_timeout), Ordering::Relaxed);
        self.recv_timeout.store(ns(opts.recv_timeout), Ordering::Relaxed);
        self.ttl_max.store(opts.ttl_max, Ordering::Relaxed);
    }

    fn deadline(timeout: &AtomicU64) -> Option<Instant> {
        match timeout.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => crate::queue::deadline_after(Duration::from_nanos(ns)),
        }
    }
}

pub(crate) struct Core {
    pub(crate) protocol: Protocol,
    pub(crate) proto: AnyProto,
    pub(crate) shared: Shared,
    pipes: Mutex<HashMap<PipeId, Arc<Pipe>>>,
}

impl Core {
    fn pipes(&self) -> std::sync::MutexGuard<'_, HashMap<PipeId, Arc<Pipe>>> {
        self.pipes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the handshake on a fresh connection from the endpoint at `url` and, if the peer
    /// fits, adds it as a pipe. Returns a token that is cancelled when the pipe closes.
    /// Failed handshakes are counted by cause.
    pub(crate) async fn start_pipe(self: &Arc<Self>, conn: Conn, url: &Url) -> Result<CancellationToken> {
        let result = self.try_start_pipe(conn, url).await;
        if let Err(e) = &result {
            let why = match e {
                Error::Protocol(_) => Some(HandshakeFailure::BadHeader),
                Error::ProtocolMismatch { .. } => Some(HandshakeFailure::ProtocolMismatch),
                Error::Timeout => Some(HandshakeFailure::Timeout),
                Error::Busy => Some(HandshakeFailure::Refused),
                Error::Io(_) => Some(HandshakeFailure::Io),
                _ => None,
            };
            if let Some(why) = why {
                self.shared.stats.handshake_failed(why);
            }
        }
        result
    }

    async fn try_start_pipe(self: &Arc<Self>, conn: Conn, url: &Url) -> Result<CancellationToken> {
        let opts = self.shared.opts();
        let remote = conn.remote.clone();
        let handshake = conn.establish(self.protocol, opts.recv_size_max);
        let (peer, reader, writer) = match handshake.instrument(tracing::debug_span!("handshake", %remote)).await {
            Ok(halves) => halves,
            Err(e) => {
                tracing::debug!(%remote, error = %e, "handshake failed");
                return Err(e);
            }
        };
        if peer != self.protocol.peer_id() {
            tracing::debug!(%remote, peer, "peer protocol mismatch; closing");
            return Err(Error::ProtocolMismatch { peer, expected: self.protocol.peer_id() });
        }
        let pipe = {
            let mut pipes = self.pipes();
            if self.shared.is_closed() {
                return Err(Error::Closed);
            }
            let id = loop {
                let id = PipeId(rand::thread_rng().gen_range(1..=0x7fff_ffff));
                if !pipes.contains_key(&id) {
                    break id;
                }
            };
            let queue_len = self.proto.pipe_queue_len(&opts);
            // A root span: the pipe outlives the dial or accept that made it.
            let span = tracing::debug_span!(parent: None, "pipe", id = %id, %remote, %url, protocol = %self.protocol);
            let pipe = Pipe::new(id, queue_len, self.shared.closed.child_token(), remote);
            let pipe = Arc::new(pipe.with_origin(url.to_string(), span));
            // The protocol accepts the pipe under the same lock that makes it count, so a
            // pipe that `pipe_count` reports can be sent to, and a refused one never counts.
            if let Err(e) = self.proto.add_pipe(&self.shared, &pipe) {
                drop(pipes);
                pipe.close();
                tracing::debug!(remote = %pipe.remote, error = %e, "pipe refused by protocol");
                return Err(e);
            }
            pipes.insert(id, pipe.clone());
            self.shared.stats.pipe_added();
            // Sent under the lock, so that a pipe's `Removed` never overtakes its `Added`.
            self.shared.events.send(|| PipeEvent::Added {
                pipe: pipe.id,
                remote: pipe.remote.clone(),
                url: pipe.url.clone(),
            });
            pipe
        };
        pipe.span.in_scope(|| tracing::debug!("pipe added"));
        self.shared.ready.notify_waiters();
        let token = pipe.closed.clone();
        let span = pipe.span.clone();
        tokio::spawn(pipe::run_reader(self.clone(), pipe.clone(), reader).instrument(span.clone()));
        tokio::spawn(pipe::run_writer(self.clone(), pipe, writer).instrument(span));
        Ok(token)
    }

    /// Closes a pipe and tells the protocol; idempotent. The reason recorded on the pipe
    /// (by the task that failed) goes into the `Removed` event.
    pub(crate) fn close_pipe(&self, pipe: &Arc<Pipe>) {
        let removed = {
            let mut pipes = self.pipes();
            let removed = pipes.remove(&pipe.id).is_some();
            if removed {
                self.shared.stats.pipe_removed();
                // Under the lock, so that every `Removed` goes out before the socket's end
                // marker (see `close`).
                self.shared.events.send(|| PipeEvent::Removed {
                    pipe: pipe.id,
                    remote: pipe.remote.clone(),
                    reason: pipe.close_reason(),
                });
            }
            removed
        };
        pipe.close();
        if removed {
            pipe.span.in_scope(|| tracing::debug!(reason = %pipe.close_reason(), "pipe removed"));
            self.proto.remove_pipe(&self.shared, pipe);
            self.shared.ready.notify_waiters();
        }
    }

    pub(crate) fn close(&self) {
        if self.shared.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.closed.cancel();
        self.proto.close();
        let pipes: Vec<_> = self.pipes().values().cloned().collect();
        for p in pipes {
            self.close_pipe(&p);
        }
        // Every pipe has been removed, and its event sent, by now.
        self.shared.events.end();
        self.shared.ready.notify_waiters();
    }

    fn stats(&self) -> SocketStats {
        let mut stats = self.shared.stats.snapshot();
        stats.recv_queue = self.proto.recv_queue_len();
        let mut pipes: Vec<PipeStats> = self.pipes().values().map(|p| p.snapshot()).collect();
        pipes.sort_by_key(|p| p.id);
        stats.pipes = pipes;
        stats
    }

    // Sends and receives try the protocol's synchronous path first. Only when that would
    // block is the async path started, boxed, so that the common case allocates nothing and
    // the future a caller holds stays small.

    async fn send(&self, ctx: CtxId, msg: Message) -> Result<()> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        let Some(msg) = self.proto.try_send(&self.shared, ctx, msg)? else {
            return Ok(());
        };
        let deadline = HotOptions::deadline(&self.shared.hot.send_timeout);
        Box::pin(self.proto.send(&self.shared, ctx, msg, deadline)).await
    }

    async fn recv(&self, ctx: CtxId) -> Result<Message> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        if let Some(m) = self.proto.try_recv(&self.shared, ctx)? {
            return Ok(m);
        }
        let deadline = HotOptions::deadline(&self.shared.hot.recv_timeout);
        Box::pin(self.proto.recv(&self.shared, ctx, deadline)).await
    }
}

/// Closes the core when the last user handle goes away (pipe tasks hold the core too,
/// so the core's own drop would never run while connections exist).
struct Owner(Arc<Core>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// An SP socket: one protocol and any number of listeners and dialers.
///
/// `Socket` is cheap to clone and every clone is the same socket, so it can be used from
/// many tasks at once. It closes when [`Socket::close`] is called or the last clone (and
/// [`Context`]) is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
/// use ferry_sp::{Protocol, Socket};
/// let rep = Socket::new(Protocol::Rep)?;
/// rep.listen("inproc://doc-socket").await?;
/// let req = Socket::new(Protocol::Req)?;
/// req.dial("inproc://doc-socket").await?;
///
/// req.send("ping").await?;
/// let request = rep.recv().await?;
/// assert_eq!(&request.body[..], b"ping");
/// rep.send("pong").await?;
/// assert_eq!(&req.recv().await?.body[..], b"pong");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Socket {
    core: Arc<Core>,
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("protocol", &self.core.protocol).finish_non_exhaustive()
    }
}

impl Socket {
    /// Opens a socket of the given protocol with NNG's default options.
    pub fn new(protocol: Protocol) -> Result<Socket> {
        Socket::open(protocol, false)
    }

    /// Opens a raw socket, as NNG's `nng_*_open_raw`: it exposes the protocol header in
    /// [`Message::header`] on receive, takes it from there on send, and keeps no request
    /// state (no request ids, resends, reply routing, survey timer or SUB filter). Raw
    /// sockets are what [`device`](crate::device)s are made of; the header of each protocol
    /// is in the table of the [crate docs](crate#raw-sockets-and-devices).
    ///
    /// # Errors
    ///
    /// None today; the `Result` is kept for symmetry with [`Socket::new`].
    ///
    /// # Examples
    ///
    /// A raw REP sees the pipe id and the backtrace in front of a request; the reply goes
    /// back to the requester with that header:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
    /// use ferry_sp::{Protocol, Socket};
    /// let rep = Socket::new_raw(Protocol::Rep)?;
    /// assert!(rep.is_raw());
    /// rep.listen("inproc://doc-raw-rep").await?;
    /// let req = Socket::new(Protocol::Req)?;
    /// req.dial("inproc://doc-raw-rep").await?;
    ///
    /// req.send("ping").await?;
    /// let mut request = rep.recv().await?;
    /// assert_eq!(request.header.len(), 8); // pipe id, request id
    /// request.body = "pong".into();
    /// rep.send(request).await?;
    /// assert_eq!(&req.recv().await?.body[..], b"pong");
    /// # Ok(()) }
    /// ```
    pub fn new_raw(protocol: Protocol) -> Result<Socket> {
        Socket::open(protocol, true)
    }

    fn open(protocol: Protocol, raw: bool) -> Result<Socket> {
        let (send_buffer, recv_buffer) = AnyProto::buffers(protocol, raw);
        let mut opts = Options::with_buffers(send_buffer, recv_buffer);
        opts.raw = raw;
        let core = Arc::new(Core {
            protocol,
            proto: AnyProto::new(protocol, &opts),
            shared: Shared::new(opts),
            pipes: Mutex::new(HashMap::new()),
        });
        Ok(Socket { owner: Arc::new(Owner(core.clone())), core })
    }

    /// The socket's protocol.
    pub fn protocol(&self) -> Protocol {
        self.core.protocol
    }

    /// Whether the socket was opened with [`Socket::new_raw`].
    pub fn is_raw(&self) -> bool {
        self.core.shared.opts().raw
    }

    /// The socket core, for [`device`](crate::device).
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Listens on `url` (`tcp://host:port`, `tcp://*:0`, `ipc://path`, `inproc://name`,
    /// `ws://host:port/path`, `wss://…`, `tls+tcp://host:port`). Returns once bound;
    /// connections are accepted in the background.
    ///
    /// WebSocket listeners on one host and port share it: each socket serves its own path.
    pub async fn listen(&self, url: &str) -> Result<Listener> {
        self.check_open()?;
        endpoint::listen(&self.core, url.parse::<Url>()?).await
    }

    /// Dials `url` and waits for the first connection, like NNG's default (blocking) dial:
    /// if nobody listens it fails with [`Error::ConnectionRefused`] and does not retry.
    /// Once connected, the dialer reconnects whenever the connection is lost.
    pub async fn dial(&self, url: &str) -> Result<Dialer> {
        self.check_open()?;
        endpoint::dial(&self.core, url.parse::<Url>()?, true).await
    }

    /// Dials `url` in the background, retrying with jittered exponential backoff until it
    /// connects (NNG's non-blocking dial). Fails only for a bad URL.
    pub async fn dial_in_background(&self, url: &str) -> Result<Dialer> {
        self.check_open()?;
        endpoint::dial(&self.core, url.parse::<Url>()?, false).await
    }

    /// Sends a message, waiting up to `send-timeout` when the protocol must block.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
        self.core.send(0, msg.into()).await
    }

    /// Receives a message, waiting up to `recv-timeout`.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv(0).await
    }

    /// Opens an independent context (REQ, REP, SURVEYOR, RESPONDENT): its own request or
    /// survey state over the socket's pipes, so that many can be in flight at once.
    /// Other protocols, and raw sockets, have no contexts: [`Error::NotSupported`].
    pub fn context(&self) -> Result<Context> {
        self.check_open()?;
        let id = self.core.proto.open_context(&self.core.shared).map_err(|e| match e {
            Error::NotSupported { op, .. } => Error::NotSupported { op, protocol: self.core.protocol.name() },
            e => e,
        })?;
        Ok(Context { core: self.core.clone(), _owner: self.owner.clone(), id })
    }

    /// Sets an option.
    pub fn set(&self, opt: SockOpt) -> Result<()> {
        opt.validate()?;
        let mut opts = self.core.shared.opts();
        if opt.apply(&mut opts) {
            *self.core.shared.opts.write().unwrap_or_else(|e| e.into_inner()) = opts.clone();
            self.core.shared.hot.store(&opts);
            self.core.proto.options_changed(&opts);
            Ok(())
        } else {
            self.core.proto.set_option(&self.core.shared, &opt)
        }
    }

    /// The current values of the generic options.
    pub fn options(&self) -> Options {
        self.core.shared.opts()
    }

    /// How many pipes (connections) are up.
    pub fn pipe_count(&self) -> usize {
        self.core.pipes().len()
    }

    /// A snapshot of the socket's counters and of each pipe that is up: messages and
    /// payload bytes in and out, drops by [`DropReason`](crate::DropReason), queue depths,
    /// dials, reconnects and failed handshakes. See [`SocketStats`] for every field.
    ///
    /// Counting costs the socket a few relaxed atomic adds per batch of messages; only this
    /// call takes a lock (the pipe list's) and allocates.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
    /// use ferry_sp::{Protocol, Socket};
    /// let rep = Socket::new(Protocol::Rep)?;
    /// rep.listen("inproc://doc-stats").await?;
    /// let req = Socket::new(Protocol::Req)?;
    /// req.dial("inproc://doc-stats").await?;
    ///
    /// req.send("ping").await?;
    /// rep.recv().await?;
    /// let stats = rep.stats();
    /// // A request is its 4-byte id plus the body.
    /// assert_eq!((stats.messages_in, stats.bytes_in), (1, 8));
    /// assert_eq!(stats.pipes.len(), 1);
    /// assert_eq!(stats.pipes[0].url, "inproc://doc-stats");
    /// assert_eq!(stats.drops.total(), 0);
    /// assert_eq!(req.stats().dial_successes, 1);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> SocketStats {
        self.core.stats()
    }

    /// Subscribes to the socket's pipe events: [`PipeEvent::Added`] when a connection
    /// becomes a pipe, [`PipeEvent::Removed`] (with the reason) when it closes. Each
    /// receiver gets the events from the moment it subscribed; after the socket closes it
    /// gets the remaining ones, then [`EventRecvError::Closed`](crate::EventRecvError).
    ///
    /// Nothing is built for events while no receiver exists. A receiver that falls more than
    /// [`EVENT_BUFFER`](crate::EVENT_BUFFER) events behind misses the oldest and is told how
    /// many ([`EventRecvError::Lagged`](crate::EventRecvError)); the socket never waits
    /// for it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
    /// use ferry_sp::{PipeEvent, Protocol, Socket};
    /// let pull = Socket::new(Protocol::Pull)?;
    /// let mut events = pull.pipe_events();
    /// pull.listen("inproc://doc-events").await?;
    ///
    /// let push = Socket::new(Protocol::Push)?;
    /// push.dial("inproc://doc-events").await?;
    /// let Ok(PipeEvent::Added { pipe, url, .. }) = events.recv().await else { panic!() };
    /// assert_eq!(url, "inproc://doc-events");
    ///
    /// push.close();
    /// match events.recv().await {
    ///     Ok(PipeEvent::Removed { pipe: gone, .. }) => assert_eq!(gone, pipe),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pipe_events(&self) -> PipeEvents {
        self.core.shared.events.subscribe(self.core.shared.is_closed())
    }

    /// Closes the socket: listeners and dialers stop, pipes close, and every pending
    /// operation fails with [`Error::Closed`].
    ///
    /// Messages still queued for sending are discarded, as in NNG 1.x (there is no linger).
    /// A program that sends and then exits should wait for an answer (REQ/REP, SURVEYOR) or
    /// give its pipes a moment to write, as `nngcat` does.
    pub fn close(&self) {
        self.core.close();
    }

    fn check_open(&self) -> Result<()> {
        if self.core.shared.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

/// An independent request/reply or survey state machine on a socket.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
/// use ferry_sp::{Protocol, Socket};
/// let rep = Socket::new(Protocol::Rep)?;
/// rep.listen("inproc://doc-context").await?;
/// let req = Socket::new(Protocol::Req)?;
/// req.dial("inproc://doc-context").await?;
/// let (a, b) = (req.context()?, req.context()?);
/// a.send("one").await?;
/// b.send("two").await?;
/// for _ in 0..2 {
///     let m = rep.recv().await?;
///     rep.send(m.body).await?; // echo
/// }
/// assert_eq!(&b.recv().await?.body[..], b"two");
/// assert_eq!(&a.recv().await?.body[..], b"one");
/// # Ok(()) }
/// ```
pub struct Context {
    core: Arc<Core>,
    _owner: Arc<Owner>,
    id: CtxId,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("protocol", &self.core.protocol).field("id", &self.id).finish()
    }
}

impl Context {
    /// Sends on this context (a request, a reply, a survey…).
    pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
        self.core.send(self.id, msg.into()).await
    }

    /// Receives on this context.
    pub async fn recv(&self) -> Result<Message> {
        self.core.recv(self.id).await
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.core.proto.close_context(self.id);
    }
}
