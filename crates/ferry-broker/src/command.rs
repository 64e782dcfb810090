//! Commands: every change to the broker's state, as it is written to the log and applied,
//! and what applying one returns.
//!
//! A command carries everything its effect depends on, the time included (stamped when it
//! is proposed), so that applying the same commands in the same order gives the same state
//! on any node and after any restart.

use crate::error::{Error, Result};
use crate::types::{Kind, NewMessage, Published, ReceiveRequest, Settings, StartAt, SubscriptionSettings};
use serde::{Deserialize, Serialize};

/// A change to the broker's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a queue or topic.
    CreateDestination {
        /// Time of the request.
        now: u64,
        /// Who creates it.
        owner: String,
        /// Its name.
        name: String,
        /// Queue or topic.
        kind: Kind,
        /// Its settings.
        settings: Settings,
    },
    /// Deletes a destination and its subscriptions.
    DeleteDestination {
        /// Its name.
        name: String,
    },
    /// Replaces a destination's settings. A queue's leases and dead-lettering follow the
    /// new values from now on; a topic's existing subscriptions keep their own.
    UpdateSettings {
        /// The destination.
        name: String,
        /// The new settings, whole.
        settings: Settings,
    },
    /// Removes every message of a destination.
    Purge {
        /// Time of the request.
        now: u64,
        /// Its name.
        name: String,
    },
    /// Publishes messages to a destination.
    Publish {
        /// Time of the request.
        now: u64,
        /// The destination.
        name: String,
        /// Who publishes, for `no_local` subscriptions.
        producer: Option<String>,
        /// The messages, in order.
        messages: Vec<NewMessage>,
    },
    /// Creates a named subscription on a topic.
    CreateSubscription {
        /// Time of the request.
        now: u64,
        /// The topic.
        topic: String,
        /// The subscription's name.
        name: String,
        /// Its settings.
        settings: SubscriptionSettings,
    },
    /// Deletes a subscription.
    DeleteSubscription {
        /// The topic.
        topic: String,
        /// The subscription's name.
        name: String,
    },
    /// Moves a subscription to another place in its topic, dropping its leases.
    Seek {
        /// Time of the request.
        now: u64,
        /// The topic.
        topic: String,
        /// The subscription's name.
        name: String,
        /// Where to.
        to: StartAt,
    },
    /// Leases (or, with auto-ack, takes) up to `max` messages.
    Receive {
        /// Time of the request.
        now: u64,
        /// The destination.
        name: String,
        /// The subscription (topics only).
        subscription: Option<String>,
        /// How many, for how long, by whom.
        request: ReceiveRequest,
    },
    /// Acks, nacks or extends leases.
    Settle {
        /// Time of the request.
        now: u64,
        /// The destination.
        name: String,
        /// The subscription (topics only).
        subscription: Option<String>,
        /// The leases.
        leases: Vec<u64>,
        /// What to do with them.
        action: SettleAction,
    },
    /// Brings every destination to time `now`: leases that ran out come back or move to
    /// their dead-letter queue, delayed messages come due, expired ones go. Written by the
    /// engine when a deadline passes with nobody else touching the destination.
    Tick {
        /// The time.
        now: u64,
    },
    /// Points messages at copies written later in the log, so that old segments can go.
    Relocate {
        /// For each message: destination, stream offset, and its slot in this command's
        /// `copies`.
        moves: Vec<(String, u64, u32)>,
        /// The messages' contents, copied from where they were.
        copies: Vec<NewMessage>,
    },
}

/// What to do with a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettleAction {
    /// Done: the message is removed (queues) or settled for the subscription (topics).
    Ack,
    /// Not done: the message is available again, after `delay_ms`.
    Nack {
        /// Wait this long before redelivering.
        delay_ms: u64,
    },
    /// Still working: the lease now ends `visibility_ms` from the request.
    Extend {
        /// The new lease duration.
        visibility_ms: u64,
    },
}

/// Where a message's content lives: the log record of the command that wrote it, and its
/// place among that command's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    /// The log sequence number of the command.
    pub index: u64,
    /// The message's position in the command's list.
    pub slot: u32,
}

/// A message handed to a consumer, without its content (which stays in the log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message id.
    pub id: u64,
    /// Its offset in the destination's stream.
    pub offset: u64,
    /// The lease to ack, nack or extend; `None` with auto-ack.
    pub lease: Option<u64>,
    /// How many times it has been delivered, this time included.
    pub delivery_count: u32,
    /// Where its content is.
    pub location: Location,
    /// When it was published.
    pub published_at: u64,
    /// Why it was dead-lettered, for messages in a dead-letter queue.
    pub dead_letter_reason: Option<String>,
}

/// What applying a command returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done, nothing to report.
    Done,
    /// One entry per published message.
    Published(Vec<Published>),
    /// The messages received.
    Received(Vec<Delivery>),
    /// One result per lease.
    Settled(Vec<Result<()>>),
    /// Refused; nothing changed.
    Failed(Error),
}

impl Command {
    /// The command's bytes in the log (MessagePack).
    pub fn encode(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec(self).map_err(|e| Error::Storage(format!("encoding a command: {e}")))
    }

    /// A command read back from the log.
    pub fn decode(bytes: &[u8]) -> Result<Command> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::Storage(format!("decoding a command: {e}")))
    }

    /// The message stored in `slot` of a command that stores messages.
    pub fn message(&self, slot: u32) -> Option<NewMessage> {
        match self {
            Command::Publish { messages, .. } | Command::Relocate { copies: messages, .. } => {
                messages.get(slot as usize).cloned()
            }
            _ => None,
        }
    }
}
