//! The one error type of ferry-sp. Each variant is an outcome a caller can act on;
//! I/O failures keep their source.

use std::io;

/// What can go wrong on a socket, a dialer or a listener.
///
/// The variants follow NNG's error codes where one exists (`NNG_ETIMEDOUT` is
/// [`Error::Timeout`], `NNG_ESTATE` is [`Error::BadState`], …), so that a program ported
/// from NNG keeps its error handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A send or receive did not complete within its timeout.
    #[error("timed out")]
    Timeout,
    /// The socket (or context) was closed, locally.
    #[error("socket closed")]
    Closed,
    /// The operation is not valid now, e.g. a REP reply without a request, or a
    /// SURVEYOR receive with no survey running.
    #[error("operation not valid in the current state")]
    BadState,
    /// The operation is not supported by this protocol, e.g. receiving on PUB.
    #[error("{op} is not supported by {protocol} sockets")]
    NotSupported {
        /// The operation that was attempted.
        op: &'static str,
        /// The protocol of the socket.
        protocol: &'static str,
    },
    /// A non-blocking operation could not complete at once.
    #[error("operation would block")]
    WouldBlock,
    /// The peer speaks a protocol this socket cannot talk to.
    #[error("peer speaks protocol {peer:#06x}, expected {expected:#06x}")]
    ProtocolMismatch {
        /// The protocol number the peer announced.
        peer: u16,
        /// The protocol number this socket accepts.
        expected: u16,
    },
    /// The peer sent something that is not the SP protocol.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A message exceeds `recv-size-max`.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The announced size.
        size: u64,
        /// The configured limit.
        max: usize,
    },
    /// The address is already bound by another socket or process.
    #[error("address in use: {0}")]
    AddrInUse(String),
    /// Nobody listens at the address.
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    /// A WebSocket listener answered the upgrade with an HTTP error instead of
    /// `101 Switching Protocols`: 400 when it does not speak the protocol this socket needs
    /// (sp-wire.md §5), 404 when nothing listens on the URL's path.
    #[error("websocket upgrade at {url} refused: HTTP {status}")]
    UpgradeRefused {
        /// The URL dialed.
        url: String,
        /// The HTTP status of the answer.
        status: u16,
    },
    /// The connection carrying a pending request went away and resending is disabled.
    #[error("connection reset")]
    ConnectionReset,
    /// The request was replaced by a newer one on the same context.
    #[error("operation canceled")]
    Canceled,
    /// The URL cannot be used.
    #[error("bad url {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An option value is out of range or of the wrong kind for this socket.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The NNG name of the option.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Unsubscribing a topic that was never subscribed.
    #[error("no such subscription")]
    NotFound,
    /// The PAIR socket already has its one peer.
    #[error("socket already has a peer")]
    Busy,
    /// A raw send whose header the protocol cannot put on the wire: a PAIR v1 header that is
    /// not one hop-count word below 255, or a REP/RESPONDENT header without the pipe id in
    /// front.
    #[error("raw send with a bad header: {0}")]
    BadHeader(&'static str),
    /// [`device`](crate::device) was given a cooked socket; devices forward headers, which
    /// only raw sockets ([`Socket::new_raw`](crate::Socket::new_raw)) expose.
    #[error("a device needs raw sockets, and this {protocol} socket is cooked (open it with Socket::new_raw)")]
    NotRaw {
        /// The protocol of the cooked socket.
        protocol: &'static str,
    },
    /// [`device`](crate::device) was given two sockets that are not each other's peers
    /// (a REQ/REP device takes a raw REP and a raw REQ, a BUS device two raw BUS sockets).
    #[error("a device joins peers, and {a} and {b} are not peers of each other")]
    NotPeers {
        /// The protocol of the first socket.
        a: &'static str,
        /// The protocol of the second socket.
        b: &'static str,
    },
    /// An I/O error from the operating system.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Maps an I/O error from connecting to the typed variant a user acts on: nobody
    /// listening (including a missing IPC socket file) is [`Error::ConnectionRefused`].
    pub(crate) fn from_connect_io(err: io::Error, addr: &str) -> Error {
        match err.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Error::ConnectionRefused(addr.to_string()),
            _ => Error::Io(err),
        }
    }

    /// Maps an I/O error from binding: [`Error::AddrInUse`], or the I/O error itself (a
    /// missing directory stays "no such file or directory").
    pub(crate) fn from_bind_io(err: io::Error, addr: &str) -> Error {
        match err.kind() {
            io::ErrorKind::AddrInUse => Error::AddrInUse(addr.to_string()),
            _ => Error::Io(err),
        }
    }
}
