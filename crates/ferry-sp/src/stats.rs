//! Statistics: what a socket and each of its pipes has carried, dropped and refused.
//!
//! The counters are relaxed atomics bumped where the work already happens: a pipe's reader
//! and writer count once per batch (one add per counter for up to 1024 messages), drops are
//! counted one by one on the paths that drop, and dialers, listeners and handshakes count
//! their events. Nothing is locked or allocated per message; only [`Socket::stats`]
//! (which takes the pipe list's lock and allocates the snapshot) costs anything.
//!
//! Bytes are SP payload bytes: the protocol header plus the body, without the transport's
//! framing (length prefix, IPC type byte, WebSocket frame headers) or the handshake.
//!
//! [`Socket::stats`]: crate::Socket::stats

use crate::message::PipeId;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a message was dropped rather than delivered or sent.
///
/// ```
/// use ferry_sp::DropReason;
/// assert_eq!(DropReason::QueueFull.to_string(), "queue full");
/// assert_eq!(DropReason::ALL.len(), 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// A pipe's send queue was full: PUB dropped its oldest queued message for a slow
    /// subscriber (after waiting, if `ferry:pub-block-timeout` is set), and BUS, SURVEYOR,
    /// RESPONDENT and polyamorous PAIR v1 dropped the message for a busy peer.
    QueueFull,
    /// The socket's receive queue was full: SUB dropped its oldest message, BUS and a
    /// SURVEYOR's survey dropped the new one.
    RecvQueueFull,
    /// The message had taken more hops than `ttl-max` (REP, RESPONDENT, PAIR v1).
    TtlExceeded,
    /// The peer announced a message over `recv-size-max`; the pipe was closed.
    TooLarge,
    /// The peer sent a malformed header or frame; the pipe was closed.
    Malformed,
    /// A REQ received a reply to no request it is waiting for (late, duplicate, or
    /// abandoned).
    UnknownRequest,
    /// A SURVEYOR received a response after its survey ended, or to no survey of its own.
    SurveyExpired,
    /// A reply or directed send named a pipe that is gone (REP, RESPONDENT, polyamorous
    /// PAIR v1). Counted on the socket only.
    NoPipe,
}

impl DropReason {
    /// Every reason, in the order of [`Drops`]' fields.
    pub const ALL: [DropReason; 8] = [
        DropReason::QueueFull,
        DropReason::RecvQueueFull,
        DropReason::TtlExceeded,
        DropReason::TooLarge,
        DropReason::Malformed,
        DropReason::UnknownRequest,
        DropReason::SurveyExpired,
        DropReason::NoPipe,
    ];

    /// A short lower-case description, as shown by `ferry cat -v`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue full",
            DropReason::RecvQueueFull => "recv queue full",
            DropReason::TtlExceeded => "over ttl-max",
            DropReason::TooLarge => "over recv-size-max",
            DropReason::Malformed => "malformed",
            DropReason::UnknownRequest => "unknown request id",
            DropReason::SurveyExpired => "survey expired",
            DropReason::NoPipe => "pipe gone",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dropped messages, by [`DropReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drops {
    /// [`DropReason::QueueFull`]
    pub queue_full: u64,
    /// [`DropReason::RecvQueueFull`]
    pub recv_queue_full: u64,
    /// [`DropReason::TtlExceeded`]
    pub ttl_exceeded: u64,
    /// [`DropReason::TooLarge`]
    pub too_large: u64,
    /// [`DropReason::Malformed`]
    pub malformed: u64,
    /// [`DropReason::UnknownRequest`]
    pub unknown_request: u64,
    /// [`DropReason::SurveyExpired`]
    pub survey_expired: u64,
    /// [`DropReason::NoPipe`]
    pub no_pipe: u64,
}

impl Drops {
    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::RecvQueueFull => self.recv_queue_full,
            DropReason::TtlExceeded => self.ttl_exceeded,
            DropReason::TooLarge => self.too_large,
            DropReason::Malformed => self.malformed,
            DropReason::UnknownRequest => self.unknown_request,
            DropReason::SurveyExpired => self.survey_expired,
            DropReason::NoPipe => self.no_pipe,
        }
    }

    /// All drops, whatever the reason.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }

    /// The reasons with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|r| (r, self.get(r))).filter(|(_, n)| *n > 0)
    }

    fn from_counts(c: &[AtomicU64; 8]) -> Drops {
        let n = |r: DropReason| c[r.index()].load(Ordering::Relaxed);
        Drops {
            queue_full: n(DropReason::QueueFull),
            recv_queue_full: n(DropReason::RecvQueueFull),
            ttl_exceeded: n(DropReason::TtlExceeded),
            too_large: n(DropReason::TooLarge),
            malformed: n(DropReason::Malformed),
            unknown_request: n(DropReason::UnknownRequest),
            survey_expired: n(DropReason::SurveyExpired),
            no_pipe: n(DropReason::NoPipe),
        }
    }
}

impl fmt::Display for Drops {
    /// `0`, or the non-zero reasons: `12 (queue full 10, over ttl-max 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.total())?;
        let mut sep = " (";
        for (r, n) in self.nonzero() {
            write!(f, "{sep}{r} {n}")?;
            sep = ", ";
        }
        if sep == ", " {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Connections that ended in the SP handshake, before they became pipes.
///
/// A listener's TLS handshakes and WebSocket upgrades happen in the transport, before the
/// connection reaches the socket: their failures are not counted here (nor in
/// [`SocketStats::accepted`]); a dialer's show as dial attempts without success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeFailures {
    /// The peer's 8-byte SP header was not an SP header.
    pub bad_header: u64,
    /// The peer speaks a protocol this socket cannot talk to.
    pub protocol_mismatch: u64,
    /// The peer did not finish the handshake within 10 s.
    pub timeout: u64,
    /// The protocol refused the peer (a PAIR socket that already has its one peer).
    pub refused: u64,
    /// The connection failed or closed during the handshake.
    pub io: u64,
}

impl HandshakeFailures {
    /// All handshake failures.
    pub fn total(&self) -> u64 {
        self.bad_header + self.protocol_mismatch + self.timeout + self.refused + self.io
    }
}

/// A snapshot of one pipe (connection), taken by [`Socket::stats`](crate::Socket::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeStats {
    /// The pipe's id, as in [`Message::pipe`](crate::Message::pipe).
    pub id: PipeId,
    /// The peer's address as the transport reports it (`127.0.0.1:40312`,
    /// `ipc:///tmp/x.ipc`, `ws://127.0.0.1:40312/sp`…).
    pub remote: String,
    /// The URL of the listener or dialer that made the pipe.
    pub url: String,
    /// Messages received from the peer, including those later dropped or filtered.
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Messages written to the peer.
    pub messages_out: u64,
    /// Payload bytes written.
    pub bytes_out: u64,
    /// Messages dropped on this pipe, by reason.
    pub drops: Drops,
    /// Messages a SUB did not deliver because no subscription matched (not drops).
    pub filtered: u64,
    /// Messages waiting in this pipe's send queue.
    pub send_queue: usize,
    /// How long the pipe has been up.
    pub age: Duration,
}

/// A snapshot of a socket's counters and of each of its pipes, taken by
/// [`Socket::stats`](crate::Socket::stats). Socket totals include pipes that have closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Messages received from peers, over all pipes.
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Messages written to peers.
    pub messages_out: u64,
    /// Payload bytes written.
    pub bytes_out: u64,
    /// Messages dropped, by reason, over all pipes and the socket itself.
    pub drops: Drops,
    /// Messages a SUB did not deliver because no subscription matched (not drops).
    pub filtered: u64,
    /// Messages waiting in the socket's receive queue (over all contexts).
    pub recv_queue: usize,
    /// Pipes added since the socket opened.
    pub pipes_added: u64,
    /// Pipes removed since the socket opened.
    pub pipes_removed: u64,
    /// Connections accepted by listeners, before the SP handshake (over tls+tcp and ws,
    /// after the TLS handshake or WebSocket upgrade).
    pub accepted: u64,
    /// Connection attempts by dialers, the first dial included.
    pub dial_attempts: u64,
    /// Dial attempts that became a pipe.
    pub dial_successes: u64,
    /// Successful dials that replaced a lost connection.
    pub reconnects: u64,
    /// Connections that failed their handshake, by cause.
    pub handshake_failures: HandshakeFailures,
    /// The pipes that are up, ordered by id.
    pub pipes: Vec<PipeStats>,
}

impl fmt::Display for SocketStats {
    /// One line: `in 3 msgs/27 B, out 3 msgs/27 B, drops 0, pipes 1 (added 1, removed 0)…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in {} msgs/{} B, out {} msgs/{} B, drops {}, filtered {}, recv queue {}, pipes {} (added {}, removed {}), \
             accepted {}, dials {} (ok {}, reconnects {}), handshake failures {}",
            self.messages_in,
            self.bytes_in,
            self.messages_out,
            self.bytes_out,
            self.drops,
            self.filtered,
            self.recv_queue,
            self.pipes.len(),
            self.pipes_added,
            self.pipes_removed,
            self.accepted,
            self.dial_attempts,
            self.dial_successes,
            self.reconnects,
            self.handshake_failures.total(),
        )
    }
}

impl fmt::Display for PipeStats {
    /// One line: `pipe 0x1234abcd 127.0.0.1:40312 (tcp://127.0.0.1:5555): in 3 msgs/27 B…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pipe {} {} ({}): in {} msgs/{} B, out {} msgs/{} B, drops {}, filtered {}, send queue {}, age {:.1} s",
            self.id,
            self.remote,
            self.url,
            self.messages_in,
            self.bytes_in,
            self.messages_out,
            self.bytes_out,
            self.drops,
            self.filtered,
            self.send_queue,
            self.age.as_secs_f64(),
        )
    }
}

/// Two counters that one task updates together, on a cache line of their own so that a
/// pipe's reader and writer (often on different threads) do not contend.
#[derive(Default)]
#[repr(align(64))]
struct Flow {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Flow {
    fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (self.messages.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// What both a pipe and a socket count.
#[derive(Default)]
pub(crate) struct Traffic {
    incoming: Flow,
    outgoing: Flow,
    drops: [AtomicU64; 8],
    filtered: AtomicU64,
}

impl Traffic {
    pub(crate) fn received(&self, messages: u64, bytes: u64) {
        self.incoming.add(messages, bytes);
    }

    pub(crate) fn sent(&self, messages: u64, bytes: u64) {
        self.outgoing.add(messages, bytes);
    }

    fn dropped(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn filtered(&self) {
        self.filtered.fetch_add(1, Ordering::Relaxed);
    }
}

/// A pipe's counters.
pub(crate) type PipeCounters = Traffic;

/// The socket's counters: its traffic totals and the connection lifecycle.
#[derive(Default)]
pub(crate) struct SocketCounters {
    pub(crate) traffic: Traffic,
    pipes_added: AtomicU64,
    pipes_removed: AtomicU64,
    accepted: AtomicU64,
    dial_attempts: AtomicU64,
    dial_successes: AtomicU64,
    reconnects: AtomicU64,
    /// bad header, mismatch, timeout, refused, io.
    handshakes: [AtomicU64; 5],
}

/// Why a handshake failed, for [`SocketCounters::handshake_failed`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum HandshakeFailure {
    BadHeader,
    ProtocolMismatch,
    Timeout,
    Refused,
    Io,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl SocketCounters {
    /// A message dropped on `pipe` (or on the socket itself) for `reason`.
    pub(crate) fn dropped(&self, pipe: Option<&PipeCounters>, reason: DropReason) {
        if let Some(p) = pipe {
            p.dropped(reason);
        }
        self.traffic.dropped(reason);
    }

    /// A message received on `pipe` that no subscription matched.
    pub(crate) fn filtered(&self, pipe: &PipeCounters) {
        pipe.filtered();
        self.traffic.filtered();
    }

    pub(crate) fn pipe_added(&self) {
        bump(&self.pipes_added);
    }

    pub(crate) fn pipe_removed(&self) {
        bump(&self.pipes_removed);
    }

    pub(crate) fn accepted(&self) {
        bump(&self.accepted);
    }

    pub(crate) fn dial_attempt(&self) {
        bump(&self.dial_attempts);
    }

    /// A dial became a pipe; `reconnect` when it replaced one the dialer had lost.
    pub(crate) fn dial_success(&self, reconnect: bool) {
        bump(&self.dial_successes);
        if reconnect {
            bump(&self.reconnects);
        }
    }

    pub(crate) fn handshake_failed(&self, why: HandshakeFailure) {
        bump(&self.handshakes[why as usize]);
    }

    /// The socket-level part of a snapshot; the caller adds the queue depth and pipes.
    pub(crate) fn snapshot(&self) -> SocketStats {
        let t = &self.traffic;
        let (messages_in, bytes_in) = t.incoming.get();
        let (messages_out, bytes_out) = t.outgoing.get();
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let h = |why: HandshakeFailure| n(&self.handshakes[why as usize]);
        SocketStats {
            messages_in,
            bytes_in,
            messages_out,
            bytes_out,
            drops: Drops::from_counts(&t.drops),
            filtered: n(&t.filtered),
            recv_queue: 0,
            pipes_added: n(&self.pipes_added),
            pipes_removed: n(&self.pipes_removed),
            accepted: n(&self.accepted),
            dial_attempts: n(&self.dial_attempts),
            dial_successes: n(&self.dial_successes),
            reconnects: n(&self.reconnects),
            handshake_failures: HandshakeFailures {
                bad_header: h(HandshakeFailure::BadHeader),
                protocol_mismatch: h(HandshakeFailure::ProtocolMismatch),
                timeout: h(HandshakeFailure::Timeout),
                refused: h(HandshakeFailure::Refused),
                io: h(HandshakeFailure::Io),
            },
            pipes: Vec::new(),
        }
    }
}

/// The counting part of a pipe's snapshot; the caller fills in who the pipe is.
pub(crate) struct PipeTraffic {
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
    pub(crate) drops: Drops,
    pub(crate) filtered: u64,
}

impl Traffic {
    pub(crate) fn snapshot(&self) -> PipeTraffic {
        let (messages_in, bytes_in) = self.incoming.get();
        let (messages_out, bytes_out) = self.outgoing.get();
        PipeTraffic {
            messages_in,
            bytes_in,
            messages_out,
            bytes_out,
            drops: Drops::from_counts(&self.drops),
            filtered: self.filtered.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_on_the_pipe_and_the_socket() {
        let sock = SocketCounters::default();
        let pipe = PipeCounters::default();
        sock.dropped(Some(&pipe), DropReason::QueueFull);
        sock.dropped(Some(&pipe), DropReason::QueueFull);
        sock.dropped(None, DropReason::NoPipe);
        sock.filtered(&pipe);
        let p = pipe.snapshot();
        assert_eq!((p.drops.queue_full, p.drops.no_pipe, p.drops.total(), p.filtered), (2, 0, 2, 1));
        let s = sock.snapshot();
        assert_eq!((s.drops.queue_full, s.drops.no_pipe, s.drops.total(), s.filtered), (2, 1, 3, 1));
        assert_eq!(s.drops.to_string(), "3 (queue full 2, pipe gone 1)");
        assert_eq!(Drops::default().to_string(), "0");
    }

    #[test]
    fn every_reason_has_its_own_slot() {
        let pipe = PipeCounters::default();
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
            for _ in 0..=i {
                pipe.dropped(r);
            }
        }
        let d = pipe.snapshot().drops;
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(d.get(r), i as u64 + 1, "{r}");
        }
    }

    #[test]
    fn traffic_and_lifecycle_add_up() {
        let sock = SocketCounters::default();
        sock.traffic.received(3, 30);
        sock.traffic.sent(2, 20);
        sock.dial_attempt();
        sock.dial_attempt();
        sock.dial_success(false);
        sock.dial_success(true);
        sock.handshake_failed(HandshakeFailure::BadHeader);
        sock.handshake_failed(HandshakeFailure::Timeout);
        let s = sock.snapshot();
        assert_eq!((s.messages_in, s.bytes_in, s.messages_out, s.bytes_out), (3, 30, 2, 20));
        assert_eq!((s.dial_attempts, s.dial_successes, s.reconnects), (2, 2, 1));
        assert_eq!((s.handshake_failures.bad_header, s.handshake_failures.timeout), (1, 1));
        assert_eq!(s.handshake_failures.total(), 2);
    }
}
