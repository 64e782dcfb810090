//! Pipe events: a stream of "pipe added" and "pipe removed" for whoever asks with
//! [`Socket::pipe_events`](crate::Socket::pipe_events).
//!
//! Events go through a [`tokio::sync::broadcast`] channel. Subscribing is opt-in: while
//! nobody holds a [`PipeEvents`], the socket checks one counter and builds no event. Every
//! receiver sees every event sent after it subscribed, unless it falls more than
//! [`EVENT_BUFFER`] events behind: then the oldest are overwritten and its next
//! [`PipeEvents::recv`] reports how many it missed ([`EventRecvError::Lagged`]) before
//! going on with the oldest event still held. Events never wait for a slow receiver.

use crate::message::PipeId;
use std::fmt;
use tokio::sync::broadcast;

/// How many events a receiver may fall behind before it misses some.
pub const EVENT_BUFFER: usize = 1024;

/// A pipe (connection) of a socket came or went.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipeEvent {
    /// A connection finished its handshake and became a pipe.
    Added {
        /// The new pipe.
        pipe: PipeId,
        /// The peer's address as the transport reports it.
        remote: String,
        /// The URL of the listener or dialer that made the pipe.
        url: String,
    },
    /// A pipe closed.
    Removed {
        /// The pipe that closed.
        pipe: PipeId,
        /// The peer's address, as in [`PipeEvent::Added`].
        remote: String,
        /// Why it closed.
        reason: RemoveReason,
    },
}

impl PipeEvent {
    /// The pipe the event is about.
    pub fn pipe(&self) -> PipeId {
        match self {
            PipeEvent::Added { pipe, .. } | PipeEvent::Removed { pipe, .. } => *pipe,
        }
    }
}

impl fmt::Display for PipeEvent {
    /// `pipe 0x1234abcd added: 127.0.0.1:40312 (tcp://127.0.0.1:5555)` or
    /// `pipe 0x1234abcd removed: 127.0.0.1:40312 (peer closed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeEvent::Added { pipe, remote, url } => write!(f, "pipe {pipe} added: {remote} ({url})"),
            PipeEvent::Removed { pipe, remote, reason } => write!(f, "pipe {pipe} removed: {remote} ({reason})"),
        }
    }
}

/// Why a pipe closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoveReason {
    /// This socket closed.
    SocketClosed,
    /// The peer ended the connection.
    PeerClosed,
    /// The peer broke the protocol (a malformed header or frame, a message over
    /// `recv-size-max`); the text says how.
    Protocol(String),
    /// The connection failed; the text is the I/O error.
    Io(String),
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveReason::SocketClosed => f.write_str("socket closed"),
            RemoveReason::PeerClosed => f.write_str("peer closed"),
            RemoveReason::Protocol(why) => write!(f, "protocol error: {why}"),
            RemoveReason::Io(why) => write!(f, "i/o error: {why}"),
        }
    }
}

/// Why [`PipeEvents::recv`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventRecvError {
    /// The receiver fell too far behind and missed this many events; receiving again goes
    /// on with the oldest event still held.
    Lagged(u64),
    /// The socket closed and every event it sent has been received.
    Closed,
}

impl fmt::Display for EventRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventRecvError::Lagged(n) => write!(f, "missed {n} pipe events"),
            EventRecvError::Closed => f.write_str("socket closed"),
        }
    }
}

impl std::error::Error for EventRecvError {}

/// What travels in the channel: the events, then one end marker when the socket closes.
#[derive(Clone, Debug)]
enum Item {
    Event(PipeEvent),
    End,
}

/// The sending side, kept by the socket.
pub(crate) struct EventHub {
    tx: broadcast::Sender<Item>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub { tx: broadcast::channel(EVENT_BUFFER).0 }
    }
}

impl EventHub {
    /// Whether anyone listens; callers skip building events when not.
    pub(crate) fn wanted(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends `event` to every receiver; builds it only if there is one.
    pub(crate) fn send(&self, event: impl FnOnce() -> PipeEvent) {
        if self.wanted() {
            // Fails only when the last receiver went away since the check: nobody to tell.
            let _ = self.tx.send(Item::Event(event()));
        }
    }

    /// The socket closed: receivers end after the events already sent.
    pub(crate) fn end(&self) {
        let _ = self.tx.send(Item::End);
    }

    /// A receiver of the events sent from now on; `closed` says the socket is already
    /// closed, so that the receiver ends at once.
    pub(crate) fn subscribe(&self, closed: bool) -> PipeEvents {
        PipeEvents { rx: self.tx.subscribe(), ended: closed }
    }
}

/// The pipe events of one socket, from [`Socket::pipe_events`](crate::Socket::pipe_events).
///
/// Each `PipeEvents` receives every event sent after it was created; see the module
/// docs for what happens to one that falls behind.
pub struct PipeEvents {
    rx: broadcast::Receiver<Item>,
    ended: bool,
}

impl fmt::Debug for PipeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeEvents").field("pending", &self.rx.len()).field("ended", &self.ended).finish()
    }
}

impl PipeEvents {
    /// The next event.
    ///
    /// # Errors
    ///
    /// [`EventRecvError::Lagged`] once after this receiver missed events;
    /// [`EventRecvError::Closed`] when the socket has closed and every event before that
    /// has been received (including the `Removed` of each pipe the close ended).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is never lost by dropping the future.
    pub async fn recv(&mut self) -> Result<PipeEvent, EventRecvError> {
        if self.ended {
            return Err(EventRecvError::Closed);
        }
        match self.rx.recv().await {
            Ok(Item::Event(e)) => Ok(e),
            Ok(Item::End) | Err(broadcast::error::RecvError::Closed) => {
                self.ended = true;
                Err(EventRecvError::Closed)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => Err(EventRecvError::Lagged(n)),
        }
    }

    /// The next event if one is already there, without waiting; `None` if none is.
    ///
    /// # Errors
    ///
    /// As [`PipeEvents::recv`].
    pub fn try_recv(&mut self) -> Option<Result<PipeEvent, EventRecvError>> {
        if self.ended {
            return Some(Err(EventRecvError::Closed));
        }
        match self.rx.try_recv() {
            Ok(Item::Event(e)) => Some(Ok(e)),
            Ok(Item::End) | Err(broadcast::error::TryRecvError::Closed) => {
                self.ended = true;
                Some(Err(EventRecvError::Closed))
            }
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(EventRecvError::Lagged(n))),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(n: u32) -> PipeEvent {
        PipeEvent::Added { pipe: PipeId(n), remote: "r".into(), url: "u".into() }
    }

    #[tokio::test]
    async fn nothing_is_built_without_a_receiver() {
        let hub = EventHub::default();
        hub.send(|| unreachable!("no receiver, no event"));
        let mut rx = hub.subscribe(false);
        hub.send(|| added(1));
        hub.end();
        assert_eq!(rx.recv().await, Ok(added(1)));
        assert_eq!(rx.recv().await, Err(EventRecvError::Closed));
        assert_eq!(rx.recv().await, Err(EventRecvError::Closed));
        assert!(matches!(hub.subscribe(true).try_recv(), Some(Err(EventRecvError::Closed))));
    }

    #[tokio::test]
    async fn a_slow_receiver_learns_how_many_it_missed() {
        let hub = EventHub::default();
        let mut rx = hub.subscribe(false);
        for n in 0..(EVENT_BUFFER as u32 + 5) {
            hub.send(|| added(n));
        }
        assert_eq!(rx.recv().await, Err(EventRecvError::Lagged(5)));
        assert_eq!(rx.recv().await, Ok(added(5)));
        assert!(rx.try_recv().is_some());
    }

    #[test]
    fn events_read_well() {
        let removed =
            PipeEvent::Removed { pipe: PipeId(1), remote: "1.2.3.4:5".into(), reason: RemoveReason::PeerClosed };
        assert_eq!(removed.to_string(), "pipe 0x00000001 removed: 1.2.3.4:5 (peer closed)");
        assert_eq!(added(2).to_string(), "pipe 0x00000002 added: r (u)");
        assert_eq!(removed.pipe(), PipeId(1));
    }
}
