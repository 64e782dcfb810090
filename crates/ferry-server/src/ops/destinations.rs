//! Queues, topics and subscriptions, for every front door: who may see or change a
//! destination, creating with the server's default durability, changing only the settings
//! given, publishing, receiving (the long poll bounded by `limits.max_wait_ms`), settling
//! leases, peeking, and subscriptions (whose `mom.` names belong to the MOM-compatible API).
//!
//! The creator of a destination owns it; an owner or an admin may do everything to it,
//! anyone else needs a permission pattern that matches its name.

use crate::api::{ApiError, AppState};
use crate::auth::{Action, Principal, Role};
use axum::http::StatusCode;
use ferry_broker::{
    DestinationInfo, Kind, NewMessage, Published, ReceiveRequest, ReceivedMessage, Settings, StartAt, Stats,
    SubscriptionSettings,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The most leases one settle request may name.
pub(crate) const MAX_LEASES: usize = 1000;
/// The most messages one peek may return.
pub(crate) const MAX_PEEK: usize = 1000;

/// Queues are consumed directly, topics through a subscription.
pub(crate) fn kind_of(sub: Option<&str>) -> Kind {
    if sub.is_some() {
        Kind::Topic
    } else {
        Kind::Queue
    }
}

/// The destination, if it exists and is of `kind` (any kind for `None`).
pub(crate) fn info(state: &AppState, name: &str, kind: impl Into<Option<Kind>>) -> Result<DestinationInfo, ApiError> {
    let kind = kind.into();
    match state.broker.describe(name) {
        Ok(d) if kind.is_none_or(|k| d.kind == k) => Ok(d),
        Ok(_) | Err(ferry_broker::Error::NotFound { .. }) => {
            Err(ferry_broker::Error::NotFound { kind, name: name.to_string() }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a caller needs on a destination.
#[derive(Clone, Copy)]
pub(crate) enum Need {
    /// To see it (describe, list, subscriptions): any permission on its name.
    See,
    /// To publish to it or consume from it.
    Do(Action),
    /// To change, purge or delete it, or remove its subscriptions: manage permission.
    Own,
}

/// The destination, if it exists as `kind` (404 otherwise) and the caller may do `need`
/// to it (403 otherwise), with its settings and statistics.
pub(crate) fn access(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
    need: Need,
) -> Result<DestinationInfo, ApiError> {
    let kind = kind.into();
    check(state, caller, name, kind, need)?;
    info(state, name, kind)
}

/// As [`access`], without the description: from the destination's kind and owner alone,
/// which cost nothing to look up, where statistics cost a walk of every subscription. This
/// is the check of every publish, receive and settle.
pub(crate) fn check(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
    need: Need,
) -> Result<(), ApiError> {
    let kind = kind.into();
    let (found, owner) = match state.broker.owner(name) {
        Ok((k, owner)) if kind.is_none_or(|want| k == want) => (k, owner),
        Ok(_) | Err(ferry_broker::Error::NotFound { .. }) => {
            return Err(ferry_broker::Error::NotFound { kind, name: name.to_string() }.into())
        }
        Err(e) => return Err(e.into()),
    };
    if may(caller, name, &owner, need) {
        return Ok(());
    }
    let what = match need {
        Need::See => "see",
        Need::Do(Action::Publish) => "publish to",
        Need::Do(Action::Consume) => "consume from",
        Need::Do(Action::Manage) | Need::Own => "manage",
    };
    Err(ApiError::forbidden(format!("{} may not {what} {found} {name} (owned by {owner})", caller.name)))
}

/// Whether the caller may do `need` to the destination `name` owned by `owner`. Admins and
/// the owner may do everything.
pub(crate) fn may(caller: &Principal, name: &str, owner: &str, need: Need) -> bool {
    caller.role == Role::Admin
        || caller.name == owner
        || match need {
            Need::See => [Action::Publish, Action::Consume, Action::Manage].into_iter().any(|a| caller.may(a, name)),
            Need::Do(action) => caller.may(action, name),
            Need::Own => caller.may(Action::Manage, name),
        }
}

/// The destinations of `kind` (both kinds for `None`) the caller may see, by name.
pub(crate) fn visible(state: &AppState, caller: &Principal, kind: Option<Kind>) -> Vec<DestinationInfo> {
    state
        .broker
        .list()
        .into_iter()
        .filter(|(_, k)| kind.is_none_or(|want| *k == want))
        // A destination deleted meanwhile is simply left out.
        .filter_map(|(name, _)| state.broker.describe(&name).ok())
        .filter(|d| may(caller, &d.name, &d.owner, Need::See))
        .collect()
}

fn invalid_settings(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", e.to_string())
}

/// Creates a destination owned by the caller. `settings` is a JSON object of the settings
/// given (any of [`Settings`]' fields); the others take their defaults, and the durability
/// the server's default rather than the broker's.
pub(crate) async fn create(
    state: &AppState,
    caller: &Principal,
    kind: Kind,
    name: &str,
    settings: Option<Value>,
) -> Result<DestinationInfo, ApiError> {
    if !caller.may(Action::Manage, name) {
        return Err(ApiError::forbidden(format!("{} may not create {kind} {name}", caller.name)));
    }
    let mut settings = settings.unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut settings {
        if !map.contains_key("durability") {
            let d = state.config.default_durability().map_err(ApiError::internal)?;
            map.insert("durability".into(), serde_json::to_value(d).map_err(|e| ApiError::internal(e.to_string()))?);
        }
    }
    let settings: Settings = serde_json::from_value(settings).map_err(invalid_settings)?;
    match kind {
        Kind::Queue => state.broker.create_queue(name, &caller.name, settings).await?,
        Kind::Topic => state.broker.create_topic(name, &caller.name, settings).await?,
    }
    info(state, name, kind)
}

/// Changes the settings named in `changes` (a JSON object), keeping the others.
pub(crate) async fn update(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
    changes: Value,
) -> Result<DestinationInfo, ApiError> {
    let kind = kind.into();
    let current = access(state, caller, name, kind, Need::Own)?;
    let Value::Object(changes) = changes else {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "a JSON object of settings"));
    };
    let mut settings = serde_json::to_value(current.settings).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Value::Object(current) = &mut settings {
        current.extend(changes);
    }
    let settings: Settings = serde_json::from_value(settings).map_err(invalid_settings)?;
    state.broker.update_settings(name, settings).await?;
    info(state, name, kind)
}

/// Deletes a destination (owner, manage permission or admin).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
) -> Result<(), ApiError> {
    check(state, caller, name, kind, Need::Own)?;
    Ok(state.broker.delete(name).await?)
}

/// Drops every message of a destination (owner, manage permission or admin).
pub(crate) async fn purge(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
) -> Result<(), ApiError> {
    check(state, caller, name, kind, Need::Own)?;
    Ok(state.broker.purge(name).await?)
}

/// Up to `max` (1 to [`MAX_PEEK`]) stored messages from `from` on, without consuming them.
pub(crate) async fn peek(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
    from: u64,
    max: usize,
) -> Result<Vec<ReceivedMessage>, ApiError> {
    check(state, caller, name, kind, Need::Do(Action::Consume))?;
    if max == 0 || max > MAX_PEEK {
        return Err(ApiError::invalid(format!("max must be 1 to {MAX_PEEK}")));
    }
    Ok(state.broker.peek(name, from, max).await?)
}

/// Publishes as the caller. `messages` decodes the request's messages; it runs after the
/// permission check, so that a caller without rights learns nothing from its errors.
pub(crate) async fn publish(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: impl Into<Option<Kind>>,
    messages: impl FnOnce() -> Result<Vec<NewMessage>, ApiError>,
) -> Result<Vec<Published>, ApiError> {
    check(state, caller, name, kind, Need::Do(Action::Publish))?;
    let messages = messages()?;
    Ok(state.broker.publish(name, Some(&caller.name), messages).await?)
}

/// A receive request, with each front door's defaults already applied.
pub(crate) struct Receive {
    pub(crate) max: u32,
    pub(crate) wait_ms: u64,
    pub(crate) visibility_ms: Option<u64>,
    pub(crate) auto_ack: bool,
}

/// Receives from a queue or a topic's subscription, waiting up to `wait_ms` (at most
/// `limits.max_wait_ms`) for the first message.
pub(crate) async fn receive(
    state: &AppState,
    caller: &Principal,
    name: &str,
    sub: Option<&str>,
    r: Receive,
) -> Result<Vec<ReceivedMessage>, ApiError> {
    check(state, caller, name, kind_of(sub), Need::Do(Action::Consume))?;
    let max_wait = state.config.limits.max_wait_ms;
    if r.wait_ms > max_wait {
        return Err(ApiError::invalid(format!("wait_ms is at most {max_wait}")));
    }
    let request = ReceiveRequest {
        max: r.max,
        visibility_ms: r.visibility_ms,
        auto_ack: r.auto_ack,
        consumer: Some(caller.name.clone()),
    };
    Ok(state.broker.receive(name, sub, request, Duration::from_millis(r.wait_ms)).await?)
}

/// Checks, before a stream starts, that the caller may consume from the queue or the
/// topic's subscription and that the subscription exists.
pub(crate) fn consumable(
    state: &AppState,
    caller: &Principal,
    name: &str,
    sub: Option<&str>,
) -> Result<DestinationInfo, ApiError> {
    let d = access(state, caller, name, kind_of(sub), Need::Do(Action::Consume))?;
    if let Some(s) = sub {
        if !d.subscriptions.contains_key(s) {
            return Err(ferry_broker::Error::SubscriptionNotFound { topic: name.into(), name: s.into() }.into());
        }
    }
    Ok(d)
}

/// What to do with leases.
#[derive(Clone, Copy)]
pub(crate) enum Settle {
    /// Done: the messages are gone.
    Ack,
    /// Redeliver, no sooner than `delay_ms` from now.
    Nack { delay_ms: u64 },
    /// Keep invisible for `visibility_ms` more (required).
    Extend { visibility_ms: Option<u64> },
}

/// The outcome of settling one lease: `error` is a short code (`unknown_lease`,
/// `lease_expired`) and a message.
pub(crate) struct Settled {
    pub(crate) lease: u64,
    pub(crate) error: Option<(&'static str, String)>,
}

/// Settles leases (1 to [`MAX_LEASES`]) on a queue or a topic's subscription; one outcome
/// per lease, in the order given.
pub(crate) async fn settle(
    state: &AppState,
    caller: &Principal,
    name: &str,
    sub: Option<&str>,
    action: Settle,
    leases: &[u64],
) -> Result<Vec<Settled>, ApiError> {
    check(state, caller, name, kind_of(sub), Need::Do(Action::Consume))?;
    settle_leases(state, name, sub, action, leases).await
}

/// [`settle`] for a stream that checked the caller's access once, at its start.
pub(crate) async fn settle_leases(
    state: &AppState,
    name: &str,
    sub: Option<&str>,
    action: Settle,
    leases: &[u64],
) -> Result<Vec<Settled>, ApiError> {
    if leases.is_empty() || leases.len() > MAX_LEASES {
        return Err(ApiError::invalid(format!("leases: 1 to {MAX_LEASES} lease ids")));
    }
    let b = &state.broker;
    let results = match action {
        Settle::Ack => b.ack(name, sub, leases).await?,
        Settle::Nack { delay_ms } => b.nack(name, sub, leases, Duration::from_millis(delay_ms)).await?,
        Settle::Extend { visibility_ms } => {
            let v = visibility_ms.ok_or_else(|| ApiError::invalid("visibility_ms is required"))?;
            b.extend(name, sub, leases, Duration::from_millis(v)).await?
        }
    };
    Ok(leases
        .iter()
        .zip(results)
        .map(|(lease, r)| Settled {
            lease: *lease,
            error: r.err().map(|e| {
                let code = match e {
                    ferry_broker::Error::LeaseExpired { .. } => "lease_expired",
                    _ => "unknown_lease",
                };
                (code, e.to_string())
            }),
        })
        .collect())
}

/// A topic's subscriptions and their statistics.
pub(crate) fn subscriptions(
    state: &AppState,
    caller: &Principal,
    topic: &str,
) -> Result<BTreeMap<String, Stats>, ApiError> {
    Ok(access(state, caller, topic, Kind::Topic, Need::See)?.subscriptions)
}

/// Creates a subscription on a topic; returns its statistics.
pub(crate) async fn subscribe(
    state: &AppState,
    caller: &Principal,
    topic: &str,
    name: &str,
    settings: SubscriptionSettings,
) -> Result<Stats, ApiError> {
    check(state, caller, topic, Kind::Topic, Need::Do(Action::Consume))?;
    if name.starts_with(crate::mom::SUBSCRIPTION_PREFIX) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved_name",
            format!(
                "subscription names starting with {:?} belong to the MOM-compatible API",
                crate::mom::SUBSCRIPTION_PREFIX
            ),
        ));
    }
    state.broker.subscribe(topic, name, settings).await?;
    let d = info(state, topic, Kind::Topic)?;
    Ok(d.subscriptions.get(name).cloned().unwrap_or_default())
}

/// Deletes a subscription (the topic's owner, manage permission or admin).
pub(crate) async fn unsubscribe(state: &AppState, caller: &Principal, topic: &str, name: &str) -> Result<(), ApiError> {
    check(state, caller, topic, Kind::Topic, Need::Own)?;
    Ok(state.broker.unsubscribe(topic, name).await?)
}

/// Moves a subscription to an offset or a time.
pub(crate) async fn seek(
    state: &AppState,
    caller: &Principal,
    topic: &str,
    name: &str,
    to: StartAt,
) -> Result<(), ApiError> {
    check(state, caller, topic, Kind::Topic, Need::Do(Action::Consume))?;
    Ok(state.broker.seek(topic, name, to).await?)
}
