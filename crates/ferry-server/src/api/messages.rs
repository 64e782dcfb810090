//! Messages as JSON: what a client publishes and what it receives. A body travels as text
//! (`body`) when it is UTF-8, or as base64 (`body_base64`) when it is not.

use super::ApiError;
use base64::Engine as _;
use bytes::Bytes;
use ferry_broker::{NewMessage, ReceivedMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A message to publish.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageIn {
    body: Option<String>,
    body_base64: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    subject: Option<String>,
    key: Option<String>,
    #[serde(default)]
    delay_ms: u64,
    deliver_at: Option<u64>,
    #[serde(default)]
    ttl_ms: u64,
    #[serde(default)]
    priority: u8,
    dedup_id: Option<String>,
    reply_to: Option<String>,
    correlation_id: Option<String>,
}

/// One message or a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Publish {
    Batch(Vec<MessageIn>),
    One(Box<MessageIn>),
}

impl Default for Publish {
    fn default() -> Self {
        Publish::Batch(Vec::new())
    }
}

impl Publish {
    pub(crate) fn into_messages(self) -> Result<Vec<NewMessage>, ApiError> {
        let list = match self {
            Publish::Batch(v) => v,
            Publish::One(m) => vec![*m],
        };
        if list.is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "publish a message object or a non-empty array of them",
            ));
        }
        list.into_iter().map(MessageIn::into_new).collect()
    }
}

impl MessageIn {
    fn into_new(self) -> Result<NewMessage, ApiError> {
        let invalid = |m: &str| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
        let body = match (self.body, self.body_base64) {
            (Some(text), None) => Bytes::from(text),
            (None, Some(b64)) => {
                Bytes::from(B64.decode(b64.as_bytes()).map_err(|e| invalid(&format!("body_base64: {e}")))?)
            }
            (None, None) => Bytes::new(),
            (Some(_), Some(_)) => return Err(invalid("give body or body_base64, not both")),
        };
        Ok(NewMessage {
            body,
            headers: self.headers,
            subject: self.subject,
            key: self.key,
            delay_ms: self.delay_ms,
            deliver_at: self.deliver_at,
            ttl_ms: self.ttl_ms,
            priority: self.priority,
            dedup_id: self.dedup_id,
            reply_to: self.reply_to,
            correlation_id: self.correlation_id,
        })
    }
}

/// A received (or peeked) message.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageOut {
    id: u64,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<u64>,
    delivery_count: u32,
    published_at: u64,
    /// The body as text, if it is UTF-8.
    body: Option<String>,
    /// The body in base64, always.
    body_base64: String,
    headers: BTreeMap<String, String>,
    subject: Option<String>,
    key: Option<String>,
    priority: u8,
    reply_to: Option<String>,
    correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_reason: Option<String>,
}

impl From<ReceivedMessage> for MessageOut {
    fn from(r: ReceivedMessage) -> MessageOut {
        let m = r.message;
        MessageOut {
            id: r.id,
            offset: r.offset,
            lease: r.lease,
            delivery_count: r.delivery_count,
            published_at: r.published_at,
            body: std::str::from_utf8(&m.body).ok().map(str::to_string),
            body_base64: B64.encode(&m.body),
            headers: m.headers,
            subject: m.subject,
            key: m.key,
            priority: m.priority,
            reply_to: m.reply_to,
            correlation_id: m.correlation_id,
            dead_letter_reason: r.dead_letter_reason,
        }
    }
}
