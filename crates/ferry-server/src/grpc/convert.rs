//! Between the protobuf messages of `ferry.v1` and the broker's and user store's types.
//! Whatever comes from the network is checked before it is converted (enum values the
//! server does not know, a priority over 255, a missing required field) and refused with
//! an `invalid_argument` [`ApiError`] naming the field; nothing here can panic.

use crate::api::ApiError;
use crate::auth::{ApiKeyInfo, Permissions, Role, UserInfo};
use crate::ops::destinations::Settled;
use ferry_broker::{DestinationInfo, Kind, NewMessage, Published, ReceivedMessage, Settings, StartAt, Stats};
use ferry_proto::v1 as pb;
use pb::start_at::At;
use serde_json::{json, Map, Value};

/// A destination kind that may be left unspecified (`None`: either kind).
pub(crate) fn kind(value: i32) -> Result<Option<Kind>, ApiError> {
    match pb::Kind::try_from(value) {
        Ok(pb::Kind::Unspecified) => Ok(None),
        Ok(pb::Kind::Queue) => Ok(Some(Kind::Queue)),
        Ok(pb::Kind::Topic) => Ok(Some(Kind::Topic)),
        Err(_) => Err(ApiError::invalid(format!("kind: unknown value {value}"))),
    }
}

/// A destination kind that must be given.
pub(crate) fn required_kind(value: i32) -> Result<Kind, ApiError> {
    kind(value)?.ok_or_else(|| ApiError::invalid("kind: KIND_QUEUE or KIND_TOPIC is required"))
}

fn kind_out(kind: Kind) -> i32 {
    match kind {
        Kind::Queue => pb::Kind::Queue as i32,
        Kind::Topic => pb::Kind::Topic as i32,
    }
}

/// The settings a request gives, as the JSON object of fields the shared create and update
/// merge (`crate::ops::destinations`): unset fields are left out, so that they take their
/// defaults on create and keep their values on update.
pub(crate) fn settings_given(s: pb::Settings) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let interval = s.durability_interval_ms;
    match pb::DurabilityMode::try_from(s.durability) {
        Ok(pb::DurabilityMode::Unspecified) => {}
        Ok(pb::DurabilityMode::Fsync) => {
            m.insert("durability".into(), json!("fsync"));
        }
        Ok(pb::DurabilityMode::None) => {
            m.insert("durability".into(), json!("none"));
        }
        Ok(pb::DurabilityMode::Interval) => {
            m.insert("durability".into(), json!({ "interval": interval }));
        }
        Err(_) => return Err(ApiError::invalid(format!("durability: unknown value {}", s.durability))),
    }
    if interval != 0 && s.durability != pb::DurabilityMode::Interval as i32 {
        return Err(ApiError::invalid("durability_interval_ms: only with DURABILITY_MODE_INTERVAL"));
    }
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(key.into(), v);
        }
    };
    put("max_message_size", s.max_message_size.map(Value::from));
    put("visibility_timeout_ms", s.visibility_timeout_ms.map(Value::from));
    put("max_deliveries", s.max_deliveries.map(Value::from));
    // "" clears it: no dead-letter queue.
    put("dead_letter_queue", s.dead_letter_queue.map(|q| if q.is_empty() { Value::Null } else { Value::from(q) }));
    put("dedup_window_ms", s.dedup_window_ms.map(Value::from));
    put("max_age_ms", s.max_age_ms.map(Value::from));
    put("max_bytes", s.max_bytes.map(Value::from));
    put("max_messages", s.max_messages.map(Value::from));
    Ok(Value::Object(m))
}

fn settings_out(s: &Settings) -> pb::Settings {
    let (durability, durability_interval_ms) = match s.durability {
        ferry_broker::Durability::Fsync => (pb::DurabilityMode::Fsync, 0),
        ferry_broker::Durability::Interval(ms) => (pb::DurabilityMode::Interval, ms),
        ferry_broker::Durability::None => (pb::DurabilityMode::None, 0),
    };
    pb::Settings {
        durability: durability as i32,
        durability_interval_ms,
        max_message_size: Some(s.max_message_size),
        visibility_timeout_ms: Some(s.visibility_timeout_ms),
        max_deliveries: Some(s.max_deliveries),
        dead_letter_queue: Some(s.dead_letter_queue.clone().unwrap_or_default()),
        dedup_window_ms: Some(s.dedup_window_ms),
        max_age_ms: Some(s.max_age_ms),
        max_bytes: Some(s.max_bytes),
        max_messages: Some(s.max_messages),
    }
}

pub(crate) fn stats(s: &Stats) -> pb::Stats {
    pb::Stats {
        depth: s.depth,
        bytes: s.bytes,
        in_flight: s.in_flight,
        delivered: s.delivered,
        acked: s.acked,
        dead_lettered: s.dead_lettered,
        expired: s.expired,
        published: s.published,
        oldest_age_ms: s.oldest_age_ms,
    }
}

pub(crate) fn destination(d: DestinationInfo) -> pb::Destination {
    pb::Destination {
        kind: kind_out(d.kind),
        owner: d.owner,
        created_at_ms: d.created_at,
        settings: Some(settings_out(&d.settings)),
        stats: Some(stats(&d.stats)),
        subscriptions: d.subscriptions.iter().map(|(name, s)| (name.clone(), stats(s))).collect(),
        name: d.name,
    }
}

/// The messages of a publish: at least one, each with a priority of 0 to 255.
pub(crate) fn messages(list: Vec<pb::Message>) -> Result<Vec<NewMessage>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid("messages: publish at least one"));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let priority = u8::try_from(m.priority)
                .map_err(|_| ApiError::invalid(format!("messages[{i}].priority: 0 to 255, not {}", m.priority)))?;
            Ok(NewMessage {
                body: m.body,
                headers: m.headers.into_iter().collect(),
                subject: m.subject,
                key: m.key,
                delay_ms: m.delay_ms,
                deliver_at: m.deliver_at_ms,
                ttl_ms: m.ttl_ms,
                priority,
                dedup_id: m.dedup_id,
                reply_to: m.reply_to,
                correlation_id: m.correlation_id,
            })
        })
        .collect()
}

pub(crate) fn published(p: Published) -> pb::Published {
    pb::Published { id: p.id, offset: p.offset, duplicate: p.duplicate }
}

pub(crate) fn delivery(r: ReceivedMessage) -> pb::Delivery {
    let m = r.message;
    pb::Delivery {
        id: r.id,
        offset: r.offset,
        lease: r.lease,
        delivery_count: r.delivery_count,
        published_at_ms: r.published_at,
        dead_letter_reason: r.dead_letter_reason,
        message: Some(pb::Message {
            body: m.body,
            headers: m.headers.into_iter().collect(),
            subject: m.subject,
            key: m.key,
            delay_ms: m.delay_ms,
            deliver_at_ms: m.deliver_at,
            ttl_ms: m.ttl_ms,
            priority: u32::from(m.priority),
            dedup_id: m.dedup_id,
            reply_to: m.reply_to,
            correlation_id: m.correlation_id,
        }),
    }
}

pub(crate) fn deliveries(list: Vec<ReceivedMessage>) -> pb::Deliveries {
    pb::Deliveries { deliveries: list.into_iter().map(delivery).collect() }
}

/// Where a subscription starts or a seek goes; `None` when the request leaves it out.
pub(crate) fn start_at(s: Option<pb::StartAt>) -> Option<StartAt> {
    Some(match s?.at? {
        At::New(_) => StartAt::New,
        At::Earliest(_) => StartAt::Earliest,
        At::Offset(o) => StartAt::Offset(o),
        At::TimeMs(t) => StartAt::Time(t),
    })
}

pub(crate) fn settled(list: Vec<Settled>) -> pb::SettleResponse {
    pb::SettleResponse {
        results: list
            .into_iter()
            .map(|s| {
                let (code, message) = s.error.unwrap_or_default();
                pb::SettleResult {
                    lease: s.lease,
                    ok: code.is_empty(),
                    error_code: code.to_string(),
                    error_message: message,
                }
            })
            .collect(),
    }
}

/// A role that may be left unspecified (`None`: the default, a user).
pub(crate) fn role(value: i32) -> Result<Option<Role>, ApiError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::User) => Ok(Some(Role::User)),
        Ok(pb::Role::Admin) => Ok(Some(Role::Admin)),
        Err(_) => Err(ApiError::invalid(format!("role: unknown value {value}"))),
    }
}

pub(crate) fn permissions(p: Option<pb::Permissions>) -> Permissions {
    let p = p.unwrap_or_default();
    Permissions { publish: p.publish, consume: p.consume, manage: p.manage }
}

pub(crate) fn permissions_out(p: Permissions) -> pb::Permissions {
    pb::Permissions { publish: p.publish, consume: p.consume, manage: p.manage }
}

pub(crate) fn user(u: UserInfo) -> pb::User {
    let role = match u.role {
        Role::Admin => pb::Role::Admin,
        Role::User => pb::Role::User,
    };
    pb::User { name: u.name, role: role as i32, permissions: Some(permissions_out(u.permissions)) }
}

pub(crate) fn api_key(k: ApiKeyInfo) -> pb::ApiKey {
    pb::ApiKey { id: k.id, owner: k.owner, label: k.label, created_at_ms: k.created_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused_not_truncated() {
        assert!(kind(7).is_err());
        assert!(required_kind(0).is_err());
        assert_eq!(kind(0).unwrap(), None);
        assert!(role(-1).is_err());
        let m = |priority| pb::Message { priority, ..Default::default() };
        let e = messages(vec![m(3), m(256)]).unwrap_err();
        assert!(e.message().contains("messages[1].priority"), "{}", e.message());
        assert_eq!(messages(vec![m(255)]).unwrap()[0].priority, 255);
        assert!(messages(vec![]).is_err());
        let bad = pb::Settings { durability: 9, ..Default::default() };
        assert!(settings_given(bad).is_err());
        let stray = pb::Settings { durability_interval_ms: 5, ..Default::default() };
        assert!(settings_given(stray).is_err());
    }

    #[test]
    fn settings_given_leave_out_what_is_unset() {
        let s = pb::Settings {
            durability: pb::DurabilityMode::Interval as i32,
            durability_interval_ms: 50,
            max_deliveries: Some(3),
            dead_letter_queue: Some(String::new()),
            ..Default::default()
        };
        let v = settings_given(s).unwrap();
        assert_eq!(v, json!({"durability": {"interval": 50}, "max_deliveries": 3, "dead_letter_queue": null}));
        let back: Settings = serde_json::from_value(v).unwrap();
        assert_eq!(back.durability, ferry_broker::Durability::Interval(50));
        assert_eq!(settings_out(&back).durability_interval_ms, 50);
    }
}
