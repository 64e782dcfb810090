//! What can go wrong, as one typed error: gRPC status codes become variants a program can
//! match on, and the server's message is kept.

use tonic::Code;

/// The result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed client call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to [`Client::builder`](crate::Client::builder) is not one the client
    /// can use.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached (after the retries the client makes).
    #[error("cannot reach the ferry server: {0}")]
    Unavailable(String),
    /// No credentials, or a bad or expired token.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// No such destination, subscription, user or key.
    #[error("not found: {0}")]
    NotFound(String),
    /// It exists already.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request was refused as malformed or out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Rate limited, or a limit was reached.
    #[error("limit reached: {0}")]
    ResourceExhausted(String),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A lease could not be settled: `unknown_lease` or `lease_expired`. The message will
    /// be delivered again.
    #[error("lease {lease}: {message} ({code})")]
    Settle {
        /// The lease.
        lease: u64,
        /// `unknown_lease` or `lease_expired`.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The consumer or client was closed.
    #[error("closed")]
    Closed,
    /// Any other status from the server.
    #[error("server error ({code:?}): {message}")]
    Server {
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },
}

impl Error {
    /// Whether trying again later may succeed: the server was unreachable or busy.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Timeout(_) | Error::ResourceExhausted(_))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let message = s.message().to_string();
        match s.code() {
            _ if is_transport(&s) => Error::Unavailable(message),
            Code::Unauthenticated => Error::Unauthenticated(message),
            Code::PermissionDenied => Error::PermissionDenied(message),
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument(message),
            Code::ResourceExhausted => Error::ResourceExhausted(message),
            Code::DeadlineExceeded => Error::Timeout(message),
            code => Error::Server { code, message },
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(e: tonic::transport::Error) -> Error {
        Error::Unavailable(chain(&e))
    }
}

/// A status that reports a refused or broken connection rather than a server's answer:
/// tonic reports those as `Unavailable`, or, when a stream breaks midway, as `Unknown`,
/// `Internal` or `Cancelled` with the cause (an h2 or I/O error) attached.
pub(crate) fn is_transport(s: &tonic::Status) -> bool {
    use std::error::Error as _;
    match s.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Internal | Code::Cancelled => {
            let m = s.message();
            s.source().is_some()
                || ["transport", "h2", "connection", "broken pipe", "reset"].iter().any(|w| m.contains(w))
        }
        _ => false,
    }
}

/// The error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
