//! The vocabulary of the broker's API: destinations and their settings, messages going in
//! and coming out, where a subscription starts, and statistics.

use crate::error::{Error, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Queue or topic.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Competing consumers: each message goes to one of them and is gone once acked.
    Queue,
    /// Publish/subscribe: every subscription sees every message, kept by retention limits.
    Topic,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Queue => "queue",
            Kind::Topic => "topic",
        })
    }
}

/// When a publish to a destination is acknowledged, and with it every command that removes
/// its messages for good (acks, auto-acked receives): a message is never kept more durably
/// than its removal, nor the reverse.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After fdatasync (group-committed with every other write).
    #[default]
    Fsync,
    /// After the write reached the operating system, with an fdatasync at most this many
    /// milliseconds later: survives a crash of the broker; a machine crash loses at most
    /// the last interval.
    Interval(u64),
    /// After the write reached the operating system: survives a crash of the broker, not
    /// of the machine.
    None,
}

/// A destination's settings. Zero means "no limit" for the limits.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// When publishes are acknowledged.
    pub durability: Durability,
    /// The largest message body accepted, in bytes (default 1 MiB).
    pub max_message_size: u32,
    /// How long a received message stays invisible to other consumers unless acked,
    /// nacked or extended (default 30 s). For topics, the default of new subscriptions.
    pub visibility_timeout_ms: u64,
    /// Deliveries after which an unacked message moves to the dead-letter queue (default
    /// 10; 0: never).
    pub max_deliveries: u32,
    /// Where dead letters go (default `<name>.dlq`, created on first use).
    pub dead_letter_queue: Option<String>,
    /// How long a dedup id is remembered (default 2 minutes; 0: no deduplication).
    pub dedup_window_ms: u64,
    /// Topics: drop messages older than this.
    pub max_age_ms: u64,
    /// Topics: keep at most this many bytes of message bodies.
    pub max_bytes: u64,
    /// Topics: keep at most this many messages.
    pub max_messages: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            durability: Durability::Fsync,
            max_message_size: 1 << 20,
            visibility_timeout_ms: 30_000,
            max_deliveries: 10,
            dead_letter_queue: None,
            dedup_window_ms: 120_000,
            max_age_ms: 0,
            max_bytes: 0,
            max_messages: 0,
        }
    }
}

/// The largest body a destination may be set to accept.
pub const MAX_MESSAGE_SIZE_LIMIT: u32 = 64 << 20;

impl Settings {
    pub(crate) fn validate(&self, kind: Kind, name: &str) -> Result<()> {
        if self.max_message_size == 0 || self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return Err(Error::invalid(
                "max_message_size",
                format!("must be 1 byte to {MAX_MESSAGE_SIZE_LIMIT} bytes"),
            ));
        }
        if let Durability::Interval(ms) = self.durability {
            if ms == 0 || ms > 60_000 {
                return Err(Error::invalid("durability", "the sync interval must be 1 ms to 60 s"));
            }
        }
        if self.visibility_timeout_ms == 0 || self.visibility_timeout_ms > 12 * 3_600_000 {
            return Err(Error::invalid("visibility_timeout_ms", "must be 1 ms to 12 hours"));
        }
        if kind == Kind::Queue && (self.max_age_ms | self.max_bytes | self.max_messages) != 0 {
            return Err(Error::invalid("retention", "max_age_ms, max_bytes and max_messages apply to topics only"));
        }
        if let Some(dlq) = &self.dead_letter_queue {
            crate::names::check(dlq)?;
            if dlq == name {
                return Err(Error::invalid("dead_letter_queue", "cannot be the queue itself"));
            }
        }
        Ok(())
    }
}

/// A message as a producer hands it over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewMessage {
    /// The payload.
    pub body: Bytes,
    /// Application headers.
    pub headers: BTreeMap<String, String>,
    /// Dot-separated subject, matched by subscription filters (`a.*.c`, `a.>`).
    pub subject: Option<String>,
    /// An application key.
    pub key: Option<String>,
    /// Deliver no earlier than this many milliseconds after publishing.
    pub delay_ms: u64,
    /// Deliver no earlier than this time (milliseconds since the Unix epoch).
    pub deliver_at: Option<u64>,
    /// Drop the message if not delivered within this many milliseconds (0: never).
    pub ttl_ms: u64,
    /// Higher first; first in, first out within a priority.
    pub priority: u8,
    /// A second message with the same id within the dedup window is acknowledged but not
    /// stored.
    pub dedup_id: Option<String>,
    /// Where replies should go (request/reply through the broker).
    pub reply_to: Option<String>,
    /// Ties a reply to its request.
    pub correlation_id: Option<String>,
}

impl NewMessage {
    /// A message with only a body.
    pub fn new(body: impl Into<Bytes>) -> NewMessage {
        NewMessage { body: body.into(), ..NewMessage::default() }
    }
}

/// What a publish did with one message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The message id (the id of the earlier message, for a duplicate).
    pub id: u64,
    /// Its offset in the destination's stream.
    pub offset: u64,
    /// True if it was a duplicate within the dedup window and was not stored again.
    pub duplicate: bool,
}

/// Where a new topic subscription starts, or where a seek goes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Only messages published from now on.
    #[default]
    New,
    /// The oldest message still kept.
    Earliest,
    /// A stream offset.
    Offset(u64),
    /// The first message published at or after this time (milliseconds since the epoch).
    Time(u64),
}

/// A topic subscription's settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscriptionSettings {
    /// Where it starts.
    pub start: StartAt,
    /// Only messages whose subject matches (`a.*.c`, `a.>`).
    pub filter: Option<String>,
    /// Never deliver a consumer its own publications.
    pub no_local: bool,
    /// Visibility timeout of leases (default: the topic's).
    pub visibility_timeout_ms: Option<u64>,
    /// Deliveries before dead-lettering (default: the topic's).
    pub max_deliveries: Option<u32>,
}

/// A receive request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveRequest {
    /// At most this many messages (1 to 1000).
    pub max: u32,
    /// Lease duration (default: the destination's or subscription's visibility timeout).
    pub visibility_ms: Option<u64>,
    /// Remove messages as they are received, without leases: at-most-once delivery.
    pub auto_ack: bool,
    /// Who receives, for `no_local`.
    pub consumer: Option<String>,
}

impl Default for ReceiveRequest {
    fn default() -> Self {
        ReceiveRequest { max: 1, visibility_ms: None, auto_ack: false, consumer: None }
    }
}

/// The largest `max` of one receive.
pub const MAX_RECEIVE_BATCH: u32 = 1000;

impl ReceiveRequest {
    /// Checks `max` and `visibility_ms`.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max == 0 || self.max > MAX_RECEIVE_BATCH {
            return Err(Error::invalid("max", format!("must be 1 to {MAX_RECEIVE_BATCH}")));
        }
        if self.visibility_ms.is_some_and(|v| v == 0 || v > 12 * 3_600_000) {
            return Err(Error::invalid("visibility_ms", "must be 1 ms to 12 hours"));
        }
        Ok(())
    }
}

/// Statistics of a destination or subscription at one moment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Messages stored (queues: not yet acked, in flight included; topics: retained).
    pub depth: u64,
    /// Bytes of their bodies.
    pub bytes: u64,
    /// Messages leased and not yet settled.
    pub in_flight: u64,
    /// Deliveries so far (redeliveries included).
    pub delivered: u64,
    /// Acks so far (auto-acks included).
    pub acked: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Messages dropped because their TTL or the retention limits passed.
    pub expired: u64,
    /// Messages published (duplicates not counted).
    pub published: u64,
    /// Age of the oldest stored message, in milliseconds, at the time asked.
    pub oldest_age_ms: u64,
}

/// A destination's description.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationInfo {
    /// Its name.
    pub name: String,
    /// Queue or topic.
    pub kind: Kind,
    /// Who created it.
    pub owner: String,
    /// When (milliseconds since the epoch).
    pub created_at: u64,
    /// Its settings.
    pub settings: Settings,
    /// Its statistics.
    pub stats: Stats,
    /// Topics: the subscriptions, by name, with their statistics.
    pub subscriptions: BTreeMap<String, Stats>,
}
