//! The MOM operations over ferry's broker, with the reference's semantics and reply texts.
//!
//! - A MOM queue is a ferry queue. Send publishes one message whose body is the JSON
//!   encoding of the message (the reference stores `json.dumps(message)`); receive takes one
//!   message with auto-ack (removed on read, FIFO, competing consumers, at most once) and
//!   answers the decoded string, as the reference's clients get it. Receiving requires a
//!   subscription (see `subscribers`); sending does not.
//! - A MOM topic is a ferry topic; a MOM subscriber is the subscription `mom.<user>` on it,
//!   starting at new messages and with `no_local` set, so that a subscriber never receives
//!   what it published itself (the broker skips those, and remembers the skip).
//! - The owner of a queue or topic is subscribed from the start and cannot unsubscribe; only
//!   the owner may delete.
//! - ferry's permissions still apply on top of the reference's rules: a user without
//!   ferry's publish or consume permission for the name gets "Operation not allowed".
//!
//! Business failures are `Outcome`s (HTTP 200, `success: false`), as in the reference;
//! `MomError` is kept for what the reference would answer with 500.

use super::errors::MomError;
use super::subscribers::Subscribers;
use super::Mom;
use crate::api::AppState;
use crate::auth::{Action, Principal};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_broker::SubscriptionSettings;
use ferry_broker::{DestinationInfo, Error as BrokerError, Kind, NewMessage, ReceiveRequest, Settings, StartAt};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a queue or topic operation answers: `{"success", "message"}`, always HTTP 200.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    success: bool,
    message: Option<String>,
}

impl Outcome {
    fn ok(message: impl Into<String>) -> Outcome {
        Outcome { success: true, message: Some(message.into()) }
    }

    fn fail(message: impl Into<String>) -> Outcome {
        Outcome { success: false, message: Some(message.into()) }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        Json(json!({ "success": self.success, "message": self.message })).into_response()
    }
}

const NOT_ALLOWED: &str = "Operation not allowed";
const NOT_OWNER: &str = "Operation not allowed for non-owner";
// What the reference answers when no node holds the object (its location-transparency
// search came back empty); one ferry server is the whole cluster, so these are its "not
// found" texts for subscribe, unsubscribe, send and receive.
const NO_QUEUE_SUB: &str = "Queue does not exist in any node";
const NO_QUEUE_IO: &str = "La cola no existe en ningún nodo";
const NO_TOPIC: &str = "El tópico no existe en ningún nodo";

/// Topic subscriptions whose names start with this belong to MOM users; `/v1` cannot
/// create them (it can list, read and delete them).
pub(crate) const SUBSCRIPTION_PREFIX: &str = "mom.";

/// The name of `user`'s MOM subscription on a topic.
pub(crate) fn subscription_name(user: &str) -> String {
    format!("{SUBSCRIPTION_PREFIX}{user}")
}

/// The destination, if it exists and is of `kind`.
fn find(state: &AppState, name: &str, kind: Kind) -> Result<Option<DestinationInfo>, MomError> {
    match state.broker.describe(name) {
        Ok(d) if d.kind == kind => Ok(Some(d)),
        Ok(_) | Err(BrokerError::NotFound { .. }) => Ok(None),
        Err(e) => Err(MomError::internal(e)),
    }
}

/// The queues that exist now: the subscriber sets of the others are dropped.
fn queue_names(state: &AppState) -> HashSet<String> {
    state.broker.list().into_iter().filter(|(_, k)| *k == Kind::Queue).map(|(n, _)| n).collect()
}

/// Runs a subscriber-set change off the runtime's workers: it writes and syncs a file.
async fn blocking<R: Send + 'static>(
    subscribers: &Arc<Subscribers>,
    f: impl FnOnce(&Subscribers) -> Result<R, String> + Send + 'static,
) -> Result<R, MomError> {
    let subscribers = subscribers.clone();
    tokio::task::spawn_blocking(move || f(&subscribers)).await.map_err(MomError::internal)?.map_err(MomError::internal)
}

/// Whether `user` is subscribed to the queue `d`: its owner, or in its set.
fn queue_subscriber(mom: &Mom, d: &DestinationInfo, user: &str) -> Result<bool, MomError> {
    Ok(d.owner == user || mom.subscribers.contains(&d.name, d.created_at, user).map_err(MomError::internal)?)
}

/// `PUT /admin/queue_topic/create/` (the caller is an admin).
pub(crate) async fn create(state: &AppState, user: &Principal, kind: Kind, name: &str) -> Result<Outcome, MomError> {
    let durability = state.config.default_durability().map_err(MomError::internal)?;
    let settings = Settings { durability, ..Settings::default() };
    let created = match kind {
        Kind::Queue => state.broker.create_queue(name, &user.name, settings).await,
        Kind::Topic => state.broker.create_topic(name, &user.name, settings).await,
    };
    match created {
        Ok(()) => {}
        // One name space in ferry: a queue and a topic cannot share a name.
        Err(BrokerError::AlreadyExists { .. }) => {
            return Ok(Outcome::fail(if kind == Kind::Queue { "Queue exists" } else { "Topic exists" }));
        }
        Err(e @ (BrokerError::InvalidName { .. } | BrokerError::Invalid { .. })) => {
            return Ok(Outcome::fail(e.to_string()));
        }
        Err(e) => return Err(MomError::internal(e)),
    }
    if kind == Kind::Queue {
        // The owner is subscribed by being the owner: nothing to record.
        return Ok(Outcome::ok(format!("Queue {name} created successfully")));
    }
    // The creator is subscribed at once, as the reference does it in the same transaction;
    // if that fails, the topic goes too.
    if let Err(e) = state.broker.subscribe(name, &subscription_name(&user.name), mom_subscription()).await {
        if let Err(undo) = state.broker.delete(name).await {
            tracing::error!(topic = name, error = %undo, "cannot remove a topic whose creation failed halfway");
        }
        return Err(MomError::internal(e));
    }
    Ok(Outcome::ok(format!("Topic {name} created successfully")))
}

fn mom_subscription() -> SubscriptionSettings {
    SubscriptionSettings { start: StartAt::New, no_local: true, ..SubscriptionSettings::default() }
}

/// `DELETE /admin/queue_topic/delete/{name}` (the caller is an admin; only the owner may).
pub(crate) async fn delete(
    state: &AppState,
    mom: &Mom,
    user: &Principal,
    kind: Kind,
    name: &str,
) -> Result<Outcome, MomError> {
    let missing = || match kind {
        Kind::Queue => Outcome::fail("Queue does not exist"),
        Kind::Topic => Outcome::fail(format!("Topic {name} does not exist")),
    };
    let Some(d) = find(state, name, kind)? else { return Ok(missing()) };
    if d.owner != user.name {
        return Ok(Outcome::fail(NOT_OWNER));
    }
    match state.broker.delete(name).await {
        Ok(()) => {}
        Err(BrokerError::NotFound { .. }) => return Ok(missing()),
        Err(e) => return Err(MomError::internal(e)),
    }
    if kind == Kind::Topic {
        return Ok(Outcome::ok("Topic deleted successfully"));
    }
    let queues = queue_names(state);
    if let Err(e) = blocking(&mom.subscribers, move |s| s.prune(&queues)).await {
        // The queue is gone all the same, and a stale set is never used: sets remember
        // the creation time of their queue.
        tracing::warn!(queue = name, error = ?e, "cannot drop the subscribers of a deleted queue");
    }
    Ok(Outcome::ok(format!("Queue '{name}' deleted successfully")))
}

/// `POST /queue_topic/subscribe/`.
pub(crate) async fn subscribe(
    state: &AppState,
    mom: &Mom,
    user: &Principal,
    kind: Kind,
    name: &str,
) -> Result<Outcome, MomError> {
    let u = &user.name;
    match kind {
        Kind::Queue => {
            let Some(d) = find(state, name, kind)? else { return Ok(Outcome::fail(NO_QUEUE_SUB)) };
            if !user.may(Action::Consume, name) {
                return Ok(Outcome::fail(NOT_ALLOWED));
            }
            if queue_subscriber(mom, &d, u)? {
                return Ok(Outcome::fail("User is subscribed"));
            }
            let (queue, who, queues) = (name.to_string(), u.clone(), queue_names(state));
            let added = blocking(&mom.subscribers, move |s| s.add(&queue, d.created_at, &who, &queues)).await?;
            Ok(if added {
                Outcome::ok(format!("User {u} subscribed to {name}"))
            } else {
                Outcome::fail("User is subscribed")
            })
        }
        Kind::Topic => {
            let Some(d) = find(state, name, kind)? else { return Ok(Outcome::fail(NO_TOPIC)) };
            if !user.may(Action::Consume, name) {
                return Ok(Outcome::fail(NOT_ALLOWED));
            }
            let already = || Outcome::fail(format!("User {u} is already subscribed to topic {name}"));
            let sub = subscription_name(u);
            if d.subscriptions.contains_key(&sub) {
                return Ok(already());
            }
            match state.broker.subscribe(name, &sub, mom_subscription()).await {
                Ok(()) => Ok(Outcome::ok(format!("User {u} subscribed to topic {name}"))),
                Err(BrokerError::AlreadyExists { .. }) => Ok(already()),
                Err(BrokerError::NotFound { .. }) => Ok(Outcome::fail(NO_TOPIC)),
                Err(e @ BrokerError::InvalidName { .. }) => Ok(Outcome::fail(e.to_string())),
                Err(e) => Err(MomError::internal(e)),
            }
        }
    }
}

/// `POST /queue_topic/unsubscribe/`. Leaving needs no ferry permission.
pub(crate) async fn unsubscribe(
    state: &AppState,
    mom: &Mom,
    user: &Principal,
    kind: Kind,
    name: &str,
) -> Result<Outcome, MomError> {
    let u = &user.name;
    match kind {
        Kind::Queue => {
            let Some(d) = find(state, name, kind)? else { return Ok(Outcome::fail(NO_QUEUE_SUB)) };
            if d.owner == *u {
                return Ok(Outcome::fail("User is the owner of the queue and cannot unsubscribe"));
            }
            let (queue, who, queues) = (name.to_string(), u.clone(), queue_names(state));
            let removed = blocking(&mom.subscribers, move |s| s.remove(&queue, d.created_at, &who, &queues)).await?;
            Ok(if removed {
                Outcome::ok(format!("User {u} unsubscribed from {name}"))
            } else {
                Outcome::fail("User is not subscribed")
            })
        }
        Kind::Topic => {
            let Some(d) = find(state, name, kind)? else { return Ok(Outcome::fail(NO_TOPIC)) };
            if d.owner == *u {
                return Ok(Outcome::fail("User is the owner of the topic and cannot unsubscribe"));
            }
            let not_subscribed = || Outcome::fail(format!("User {u} is not subscribed to topic {name}"));
            let sub = subscription_name(u);
            if !d.subscriptions.contains_key(&sub) {
                return Ok(not_subscribed());
            }
            match state.broker.unsubscribe(name, &sub).await {
                Ok(()) => Ok(Outcome::ok(format!("User {u} unsubscribed from topic {name}"))),
                Err(BrokerError::SubscriptionNotFound { .. }) => Ok(not_subscribed()),
                Err(BrokerError::NotFound { .. }) => Ok(Outcome::fail(NO_TOPIC)),
                Err(e) => Err(MomError::internal(e)),
            }
        }
    }
}

/// `POST /queue_topic/send/`: no subscription needed.
pub(crate) async fn send(
    state: &AppState,
    user: &Principal,
    kind: Kind,
    name: &str,
    message: &str,
) -> Result<Outcome, MomError> {
    let missing = if kind == Kind::Queue { NO_QUEUE_IO } else { NO_TOPIC };
    if find(state, name, kind)?.is_none() {
        return Ok(Outcome::fail(missing));
    }
    if !user.may(Action::Publish, name) {
        return Ok(Outcome::fail(NOT_ALLOWED));
    }
    let body = serde_json::to_string(message).map_err(MomError::internal)?;
    // The broker records the producer: topic subscriptions skip their own user's messages.
    match state.broker.publish(name, Some(&user.name), vec![NewMessage::new(body)]).await {
        Ok(_) if kind == Kind::Queue => Ok(Outcome::ok("Message enqueued successfully")),
        Ok(_) => Ok(Outcome::ok(format!("Message published to topic {name}"))),
        Err(BrokerError::NotFound { .. }) => Ok(Outcome::fail(missing)),
        Err(e @ BrokerError::MessageTooLarge { .. }) => Ok(Outcome::fail(e.to_string())),
        Err(e) => Err(MomError::internal(e)),
    }
}

/// `POST /queue_topic/receive/`: one message, or `null` when there is none.
pub(crate) async fn receive(
    state: &AppState,
    mom: &Mom,
    user: &Principal,
    kind: Kind,
    name: &str,
) -> Result<Outcome, MomError> {
    let (missing, not_subscribed) = match kind {
        Kind::Queue => (NO_QUEUE_IO, "User is not subscribed"),
        Kind::Topic => (NO_TOPIC, "User is not subscribed to this topic"),
    };
    let Some(d) = find(state, name, kind)? else { return Ok(Outcome::fail(missing)) };
    if !user.may(Action::Consume, name) {
        return Ok(Outcome::fail(NOT_ALLOWED));
    }
    let sub = subscription_name(&user.name);
    let subscribed = match kind {
        Kind::Queue => queue_subscriber(mom, &d, &user.name)?,
        Kind::Topic => d.subscriptions.contains_key(&sub),
    };
    if !subscribed {
        return Ok(Outcome::fail(not_subscribed));
    }
    let request = ReceiveRequest { max: 1, visibility_ms: None, auto_ack: true, consumer: Some(user.name.clone()) };
    let sub = (kind == Kind::Topic).then_some(sub.as_str());
    match state.broker.receive(name, sub, request, Duration::ZERO).await {
        Ok(got) => {
            let message = got.into_iter().next().and_then(|m| payload(&m.message.body));
            Ok(Outcome { success: true, message })
        }
        Err(BrokerError::NotFound { .. }) => Ok(Outcome::fail(missing)),
        Err(BrokerError::SubscriptionNotFound { .. }) => Ok(Outcome::fail(not_subscribed)),
        Err(e) => Err(MomError::internal(e)),
    }
}

/// What a receiver gets for a stored body: the string a MOM sender sent (the body is its
/// JSON encoding); for anything else (say a `/v1` publication), the body as text. An empty
/// message is `null`, as the reference's route maps `""` to `None`.
fn payload(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice(body) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_come_back_as_sent() {
        assert_eq!(payload(br#""Hello, World!""#).as_deref(), Some("Hello, World!"));
        assert_eq!(payload(br#""\"quoted\" \u00fc""#).as_deref(), Some("\"quoted\" ü"));
        assert_eq!(payload(br#""""#), None, "an empty message reads as null");
        assert_eq!(payload(b"plain text from /v1").as_deref(), Some("plain text from /v1"));
        assert_eq!(payload(br#"{"a":1}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(payload(b""), None);
    }
}
