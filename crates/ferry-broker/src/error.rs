//! The broker's error type. Every rejected command changes nothing; the variant says why.

use crate::types::Kind;
use serde::{Deserialize, Serialize};

/// A `Result` with the broker's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the broker refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Error {
    /// A destination or subscription name that does not match `^[A-Za-z0-9_.-]{1,255}$`,
    /// or is `.` or `..`.
    #[error("invalid name {name:?}: names are 1 to 255 characters of A-Z, a-z, 0-9, '_', '.' and '-', other than '.' and '..'")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// No destination of that name (or none of the kind the request needs).
    #[error("no {} named {name:?}", kind.map_or("destination".to_string(), |k| k.to_string()))]
    NotFound {
        /// The kind the request needed, if it needed one.
        kind: Option<Kind>,
        /// The name.
        name: String,
    },
    /// No subscription of that name on the topic.
    #[error("topic {topic:?} has no subscription named {name:?}")]
    SubscriptionNotFound {
        /// The topic.
        topic: String,
        /// The subscription.
        name: String,
    },
    /// A destination or subscription of that name exists already.
    #[error("{what} {name:?} already exists")]
    AlreadyExists {
        /// `"queue"`, `"topic"` or `"subscription"`.
        what: String,
        /// The name.
        name: String,
    },
    /// A message body larger than the destination allows.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A setting or argument that cannot work.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting or argument.
        name: String,
        /// Why.
        reason: String,
    },
    /// A lease that this subscription never granted, or one already settled.
    #[error("unknown lease {lease}")]
    UnknownLease {
        /// The lease id.
        lease: u64,
    },
    /// A lease whose visibility timeout passed; the message is available to others again.
    #[error("lease {lease} expired")]
    LeaseExpired {
        /// The lease id.
        lease: u64,
    },
    /// A receive on a topic without naming a subscription, or the reverse on a queue.
    #[error("{0}")]
    WrongKind(String),
    /// The broker's storage failed; the request may or may not have taken effect.
    #[error("storage: {0}")]
    Storage(String),
    /// The broker is shutting down.
    #[error("the broker is closed")]
    Closed,
}

impl Error {
    pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> Error {
        Error::Invalid { name: name.to_string(), reason: reason.into() }
    }
}

impl From<ferry_log::Error> for Error {
    fn from(e: ferry_log::Error) -> Error {
        match e {
            ferry_log::Error::Closed => Error::Closed,
            e => Error::Storage(e.to_string()),
        }
    }
}
