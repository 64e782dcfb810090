//! Messages going out ([`Message`], a builder over the wire type) and the pieces of a
//! received one that most programs read.

use ferry_proto::v1 as proto;
use std::time::Duration;

/// A message to publish: a body and optional headers, subject, key, priority, delay,
/// time-to-live, dedup id and request/reply fields.
///
/// ```
/// use ferry_client::Message;
/// use std::time::Duration;
///
/// let m = Message::new("order 42 paid")
///     .header("trace", "ab12")
///     .subject("orders.eu.paid")
///     .priority(5)
///     .delay(Duration::from_secs(2));
/// assert_eq!(m.body(), b"order 42 paid");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message(pub(crate) proto::Message);

impl Message {
    /// A message with this body.
    pub fn new(body: impl Into<Vec<u8>>) -> Message {
        Message(proto::Message { body: body.into().into(), ..proto::Message::default() })
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Message {
        self.0.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the subject that topic subscription filters match (`orders.eu.paid`).
    pub fn subject(mut self, subject: impl Into<String>) -> Message {
        self.0.subject = Some(subject.into());
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<String>) -> Message {
        self.0.key = Some(key.into());
        self
    }

    /// Queues deliver higher priorities first.
    pub fn priority(mut self, priority: u8) -> Message {
        self.0.priority = u32::from(priority);
        self
    }

    /// Delivers it no sooner than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Message {
        self.0.delay_ms = millis(delay);
        self
    }

    /// Drops it if it is not delivered within `ttl`.
    pub fn ttl(mut self, ttl: Duration) -> Message {
        self.0.ttl_ms = millis(ttl);
        self
    }

    /// Within the destination's dedup window, a second publish with this id is not stored
    /// again: this makes a retried publish safe.
    pub fn dedup_id(mut self, id: impl Into<String>) -> Message {
        self.0.dedup_id = Some(id.into());
        self
    }

    /// Request/reply: where the reply should go.
    pub fn reply_to(mut self, destination: impl Into<String>) -> Message {
        self.0.reply_to = Some(destination.into());
        self
    }

    /// Request/reply: what ties a reply to its request.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Message {
        self.0.correlation_id = Some(id.into());
        self
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }

    /// The message as it goes on the wire.
    pub fn into_proto(self) -> proto::Message {
        self.0
    }
}

impl From<proto::Message> for Message {
    fn from(m: proto::Message) -> Message {
        Message(m)
    }
}

impl From<&str> for Message {
    fn from(body: &str) -> Message {
        Message::new(body)
    }
}

impl From<String> for Message {
    fn from(body: String) -> Message {
        Message::new(body)
    }
}

impl From<Vec<u8>> for Message {
    fn from(body: Vec<u8>) -> Message {
        Message::new(body)
    }
}

impl From<&[u8]> for Message {
    fn from(body: &[u8]) -> Message {
        Message::new(body)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
