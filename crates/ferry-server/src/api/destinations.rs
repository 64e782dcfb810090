//! `/v1/queues` and `/v1/topics`: the same shape for both kinds (create, list, describe,
//! delete, purge, peek, publish, receive, ack, nack, extend), plus topic subscriptions.
//! The creator of a destination owns it; only the owner or an admin may delete or purge it.

use super::error::ErrorDetail;
use super::messages::{MessageOut, Publish};
use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::{Action, Principal, Role};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_broker::{DestinationInfo, Kind, Published, ReceiveRequest, Settings, StartAt, Stats, SubscriptionSettings};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::openapi::schema::Type;
use utoipa::ToSchema;

/// The routes, relative to `/v1`: the same set for queues and topics, then what only one
/// kind has (receiving from queues; subscriptions on topics).
pub(super) fn routes() -> Vec<Route> {
    let mut r = Vec::new();
    for (prefix, kind) in [("/queues", Kind::Queue), ("/topics", Kind::Topic)] {
        let one = format!("{prefix}/{{name}}");
        r.extend([
            Route::new(Verb::Get, prefix, "List the destinations the caller may see", move |s, c| list(s, c, kind))
                .gives_list::<DestinationInfo>(200),
            Route::new(Verb::Post, prefix, "Create one; the caller owns it", move |s, c, b| create(s, c, kind, b))
                .takes::<Create>()
                .gives::<DestinationInfo>(201),
            Route::new(Verb::Get, &one, "Settings and statistics", move |s, c, p| describe(s, c, p, kind))
                .gives::<DestinationInfo>(200),
            Route::new(Verb::Patch, &one, "Change the settings given", move |s, c, p, b| update(s, c, p, b, kind))
                .takes::<SettingsChange>()
                .gives::<DestinationInfo>(200),
            Route::new(Verb::Delete, &one, "Delete it (owner or admin)", move |s, c, p| remove(s, c, p, kind))
                .gives_nothing(204),
            Route::new(Verb::Post, format!("{one}/purge"), "Drop every message", move |s, c, p| purge(s, c, p, kind))
                .gives_nothing(204),
            Route::new(Verb::Get, format!("{one}/peek"), "Look without consuming", move |s, c, p, q| {
                peek(s, c, p, q, kind)
            })
            .query(&[
                ("from", Type::Integer, "the first offset (default 0)"),
                ("max", Type::Integer, "at most this many, 1 to 1000 (default 10)"),
            ])
            .gives::<Messages>(200),
            Route::new(Verb::Post, format!("{one}/messages"), "Publish one message or an array", move |s, c, p, b| {
                publish(s, c, p, b, kind)
            })
            .takes::<Publish>()
            .gives::<PublishedOut>(201),
        ]);
    }
    let q = "/queues/{name}";
    let s = "/topics/{name}/subscriptions/{sub}";
    // Settling leases: the same three actions on a queue and on a subscription.
    for (action, verb, summary) in [
        (Settle::Ack, "ack", "Ack leases"),
        (Settle::Nack, "nack", "Give leases back (optionally delayed)"),
        (Settle::Extend, "extend", "Extend leases"),
    ] {
        r.extend(
            [
                Route::new(Verb::Post, format!("{q}/{verb}"), summary, move |s, c, Path(n), b| {
                    settle(s, c, n, None, action, b)
                }),
                Route::new(Verb::Post, format!("{s}/{verb}"), summary, move |s, c, Path((n, sub)), b| {
                    settle(s, c, n, Some(sub), action, b)
                }),
            ]
            .map(|route| route.takes::<SettleBody>().gives::<SettleResults>(200)),
        );
    }
    r.extend([
        Route::new(Verb::Post, format!("{q}/receive"), "Receive (long-poll with wait_ms)", |s, c, Path(n), b| {
            receive(s, c, n, None, b)
        })
        .takes::<Receive>()
        .gives::<Messages>(200),
        Route::new(Verb::Get, format!("{q}/stream"), "Consume as Server-Sent Events", super::stream::queue)
            .query(super::stream::QUERY)
            .streams(200, "text/event-stream of messages"),
        Route::new(Verb::Get, format!("{q}/ws"), "Consume over a WebSocket, with credits", super::ws::queue)
            .query(super::ws::QUERY)
            .streams(101, "WebSocket: message frames out; credit, ack, nack and extend frames in"),
        Route::new(Verb::Get, "/topics/{name}/subscriptions", "List subscriptions", subscriptions)
            .gives::<Subscriptions>(200),
        Route::new(Verb::Post, "/topics/{name}/subscriptions", "Create a subscription", subscribe)
            .takes::<Subscribe>()
            .gives::<SubscriptionCreated>(201),
        Route::new(Verb::Delete, s, "Delete a subscription (owner or admin)", unsubscribe).gives_nothing(204),
        Route::new(
            Verb::Post,
            format!("{s}/receive"),
            "Receive (long-poll with wait_ms)",
            |s, c, Path((n, sub)), b| receive(s, c, n, Some(sub), b),
        )
        .takes::<Receive>()
        .gives::<Messages>(200),
        Route::new(Verb::Post, format!("{s}/seek"), "Move the subscription", seek).takes::<Seek>().gives_nothing(204),
        Route::new(Verb::Get, format!("{s}/stream"), "Consume as Server-Sent Events", super::stream::subscription)
            .query(super::stream::QUERY)
            .streams(200, "text/event-stream of messages"),
        Route::new(Verb::Get, format!("{s}/ws"), "Consume over a WebSocket, with credits", super::ws::subscription)
            .query(super::ws::QUERY)
            .streams(101, "WebSocket: message frames out; credit, ack, nack and extend frames in"),
    ]);
    r
}

/// Received or peeked messages.
#[derive(Serialize, ToSchema)]
pub(super) struct Messages {
    messages: Vec<MessageOut>,
}

/// Where published messages went.
#[derive(Serialize, ToSchema)]
struct PublishedOut {
    published: Vec<Published>,
}

/// The settings to change; any of [`Settings`]' fields.
#[derive(ToSchema)]
#[schema(as = SettingsChange)]
#[allow(dead_code)] // only describes the body, which is merged as JSON
struct SettingsChange(Settings);

/// One result per lease, in the order given.
#[derive(Serialize, ToSchema)]
struct SettleResults {
    results: Vec<SettleResult>,
}

#[derive(Serialize, ToSchema)]
struct SettleResult {
    lease: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize, ToSchema)]
struct Subscriptions {
    subscriptions: BTreeMap<String, Stats>,
}

#[derive(Serialize, ToSchema)]
struct SubscriptionCreated {
    name: String,
    stats: Stats,
}

/// Queues are consumed directly, topics through a subscription.
pub(super) fn kind_of(sub: Option<&str>) -> Kind {
    if sub.is_some() {
        Kind::Topic
    } else {
        Kind::Queue
    }
}

/// The destination, if it exists and is of `kind`.
fn info(state: &AppState, name: &str, kind: Kind) -> Result<DestinationInfo, ApiError> {
    match state.broker.describe(name) {
        Ok(d) if d.kind == kind => Ok(d),
        Ok(_) | Err(ferry_broker::Error::NotFound { .. }) => {
            Err(ferry_broker::Error::NotFound { kind: Some(kind), name: name.to_string() }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a caller needs on a destination.
#[derive(Clone, Copy)]
pub(super) enum Need {
    /// To see it (describe, list, subscriptions): any permission on its name.
    See,
    /// To publish to it or consume from it.
    Do(Action),
    /// To change, purge or delete it, or remove its subscriptions: manage permission.
    Own,
}

/// The destination, if it exists as `kind` (404 otherwise) and the caller may do `need`
/// to it (403 otherwise). Admins and the destination's owner may do everything.
pub(super) fn access(
    state: &AppState,
    caller: &Principal,
    name: &str,
    kind: Kind,
    need: Need,
) -> Result<DestinationInfo, ApiError> {
    let d = info(state, name, kind)?;
    if may(caller, &d, need) {
        return Ok(d);
    }
    let what = match need {
        Need::See => "see",
        Need::Do(Action::Publish) => "publish to",
        Need::Do(Action::Consume) => "consume from",
        Need::Do(Action::Manage) | Need::Own => "manage",
    };
    Err(ApiError::forbidden(format!("{} may not {what} {kind} {name} (owned by {})", caller.name, d.owner)))
}

fn may(caller: &Principal, d: &DestinationInfo, need: Need) -> bool {
    caller.role == Role::Admin
        || caller.name == d.owner
        || match need {
            Need::See => [Action::Publish, Action::Consume, Action::Manage].into_iter().any(|a| caller.may(a, &d.name)),
            Need::Do(action) => caller.may(action, &d.name),
            Need::Own => caller.may(Action::Manage, &d.name),
        }
}

/// Lists the destinations of `kind` the caller may see.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    kind: Kind,
) -> Result<Json<Vec<DestinationInfo>>, ApiError> {
    let mut out = Vec::new();
    for (name, k) in state.broker.list() {
        if k == kind {
            // A destination deleted meanwhile is simply left out.
            if let Ok(d) = state.broker.describe(&name) {
                if may(&caller, &d, Need::See) {
                    out.push(d);
                }
            }
        }
    }
    Ok(Json(out))
}

#[derive(ToSchema, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    #[schema(value_type = Option<Settings>)]
    settings: Option<Value>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    kind: Kind,
    Body(body): Body<Create>,
) -> Result<Response, ApiError> {
    if !caller.may(Action::Manage, &body.name) {
        return Err(ApiError::forbidden(format!("{} may not create {kind} {}", caller.name, body.name)));
    }
    let mut settings = body.settings.unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut settings {
        if !map.contains_key("durability") {
            let d = state.config.default_durability().map_err(ApiError::internal)?;
            map.insert("durability".into(), serde_json::to_value(d).map_err(|e| ApiError::internal(e.to_string()))?);
        }
    }
    let settings: Settings = serde_json::from_value(settings)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", e.to_string()))?;
    match kind {
        Kind::Queue => state.broker.create_queue(&body.name, &caller.name, settings).await?,
        Kind::Topic => state.broker.create_topic(&body.name, &caller.name, settings).await?,
    }
    Ok((StatusCode::CREATED, Json(info(&state, &body.name, kind)?)).into_response())
}

async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<Json<DestinationInfo>, ApiError> {
    Ok(Json(access(&state, &caller, &name, kind, Need::See)?))
}

/// `PATCH`: changes the settings named in the body, keeping the others.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(changes): Body<Value>,
    kind: Kind,
) -> Result<Json<DestinationInfo>, ApiError> {
    access(&state, &caller, &name, kind, Need::Own)?;
    let Value::Object(changes) = changes else {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "a JSON object of settings"));
    };
    let mut settings =
        serde_json::to_value(info(&state, &name, kind)?.settings).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Value::Object(current) = &mut settings {
        current.extend(changes);
    }
    let settings: Settings = serde_json::from_value(settings)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", e.to_string()))?;
    state.broker.update_settings(&name, settings).await?;
    Ok(Json(info(&state, &name, kind)?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    access(&state, &caller, &name, kind, Need::Own)?;
    state.broker.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    access(&state, &caller, &name, kind, Need::Own)?;
    state.broker.purge(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PeekQuery {
    #[serde(default)]
    from: u64,
    #[serde(default = "ten")]
    max: usize,
}

fn ten() -> usize {
    10
}

async fn peek(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PeekQuery>,
    kind: Kind,
) -> Result<Json<Messages>, ApiError> {
    access(&state, &caller, &name, kind, Need::Do(Action::Consume))?;
    if q.max == 0 || q.max > 1000 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", "max must be 1 to 1000"));
    }
    let messages: Vec<MessageOut> = state.broker.peek(&name, q.from, q.max)?.into_iter().map(Into::into).collect();
    Ok(Json(Messages { messages }))
}

async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Publish>,
    kind: Kind,
) -> Result<Response, ApiError> {
    access(&state, &caller, &name, kind, Need::Do(Action::Publish))?;
    let published = state.broker.publish(&name, Some(&caller.name), body.into_messages()?).await?;
    Ok((StatusCode::CREATED, Json(PublishedOut { published })).into_response())
}

#[derive(ToSchema, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Receive {
    max: Option<u32>,
    wait_ms: Option<u64>,
    visibility_ms: Option<u64>,
    #[serde(default)]
    auto_ack: bool,
}

async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    name: String,
    sub: Option<String>,
    Body(body): Body<Receive>,
) -> Result<Json<Messages>, ApiError> {
    access(&state, &caller, &name, kind_of(sub.as_deref()), Need::Do(Action::Consume))?;
    let wait = body.wait_ms.unwrap_or(0);
    if wait > state.config.limits.max_wait_ms {
        let max = state.config.limits.max_wait_ms;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            format!("wait_ms is at most {max}"),
        ));
    }
    let request = ReceiveRequest {
        max: body.max.unwrap_or(1),
        visibility_ms: body.visibility_ms,
        auto_ack: body.auto_ack,
        consumer: Some(caller.name.clone()),
    };
    let got = state.broker.receive(&name, sub.as_deref(), request, Duration::from_millis(wait)).await?;
    let messages: Vec<MessageOut> = got.into_iter().map(Into::into).collect();
    Ok(Json(Messages { messages }))
}

#[derive(Clone, Copy)]
enum Settle {
    Ack,
    Nack,
    Extend,
}

#[derive(ToSchema, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettleBody {
    leases: Vec<u64>,
    #[serde(default)]
    delay_ms: u64,
    visibility_ms: Option<u64>,
}

async fn settle(
    State(state): State<AppState>,
    caller: Caller,
    name: String,
    sub: Option<String>,
    action: Settle,
    Body(body): Body<SettleBody>,
) -> Result<Json<SettleResults>, ApiError> {
    access(&state, &caller, &name, kind_of(sub.as_deref()), Need::Do(Action::Consume))?;
    if body.leases.is_empty() || body.leases.len() > 1000 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", "leases: 1 to 1000 lease ids"));
    }
    let b = &state.broker;
    let sub = sub.as_deref();
    let results = match action {
        Settle::Ack => b.ack(&name, sub, &body.leases).await?,
        Settle::Nack => b.nack(&name, sub, &body.leases, Duration::from_millis(body.delay_ms)).await?,
        Settle::Extend => {
            let v = body.visibility_ms.ok_or_else(|| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", "visibility_ms is required")
            })?;
            b.extend(&name, sub, &body.leases, Duration::from_millis(v)).await?
        }
    };
    let results: Vec<SettleResult> = body
        .leases
        .iter()
        .zip(results)
        .map(|(lease, r)| match r {
            Ok(()) => SettleResult { lease: *lease, ok: true, error: None },
            Err(e) => {
                let code = match e {
                    ferry_broker::Error::LeaseExpired { .. } => "lease_expired",
                    _ => "unknown_lease",
                };
                SettleResult {
                    lease: *lease,
                    ok: false,
                    error: Some(ErrorDetail { code: code.into(), message: e.to_string() }),
                }
            }
        })
        .collect();
    Ok(Json(SettleResults { results }))
}

async fn subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Subscriptions>, ApiError> {
    let d = access(&state, &caller, &name, Kind::Topic, Need::See)?;
    Ok(Json(Subscriptions { subscriptions: d.subscriptions }))
}

#[derive(ToSchema, Deserialize, Default)]
struct Subscribe {
    name: String,
    #[serde(flatten)]
    settings: SubscriptionSettings,
}

async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(topic): Path<String>,
    Body(body): Body<Subscribe>,
) -> Result<Response, ApiError> {
    access(&state, &caller, &topic, Kind::Topic, Need::Do(Action::Consume))?;
    if body.name.starts_with(crate::mom::SUBSCRIPTION_PREFIX) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reserved_name",
            format!(
                "subscription names starting with {:?} belong to the MOM-compatible API",
                crate::mom::SUBSCRIPTION_PREFIX
            ),
        ));
    }
    state.broker.subscribe(&topic, &body.name, body.settings).await?;
    let d = info(&state, &topic, Kind::Topic)?;
    let stats = d.subscriptions.get(&body.name).cloned().unwrap_or_default();
    Ok((StatusCode::CREATED, Json(SubscriptionCreated { name: body.name, stats })).into_response())
}

async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, sub)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access(&state, &caller, &topic, Kind::Topic, Need::Own)?;
    state.broker.unsubscribe(&topic, &sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(ToSchema, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Seek {
    to: StartAt,
}

async fn seek(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, sub)): Path<(String, String)>,
    Body(body): Body<Seek>,
) -> Result<StatusCode, ApiError> {
    access(&state, &caller, &topic, Kind::Topic, Need::Do(Action::Consume))?;
    state.broker.seek(&topic, &sub, body.to).await?;
    Ok(StatusCode::NO_CONTENT)
}
