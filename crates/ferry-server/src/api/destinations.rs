//! `/v1/queues` and `/v1/topics`: the same shape for both kinds (create, list, describe,
//! delete, purge, peek, publish, receive, ack, nack, extend), plus topic subscriptions.
//! The creator of a destination owns it; only the owner or an admin may delete or purge it.

use super::messages::{MessageOut, Publish};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::{Action, Principal, Role};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ferry_broker::{DestinationInfo, Kind, ReceiveRequest, Settings, StartAt, SubscriptionSettings};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The routes, relative to `/v1`.
pub(super) fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for (prefix, kind) in [("/queues", Kind::Queue), ("/topics", Kind::Topic)] {
        r = r
            .route(prefix, get(move |s, c| list(s, c, kind)).post(move |s, c, b| create(s, c, kind, b)))
            .route(
                &format!("{prefix}/{{name}}"),
                get(move |s, c, p| describe(s, c, p, kind))
                    .delete(move |s, c, p| remove(s, c, p, kind))
                    .patch(move |s, c, p, b| update(s, c, p, b, kind)),
            )
            .route(&format!("{prefix}/{{name}}/purge"), post(move |s, c, p| purge(s, c, p, kind)))
            .route(&format!("{prefix}/{{name}}/peek"), get(move |s, c, p, q| peek(s, c, p, q, kind)))
            .route(&format!("{prefix}/{{name}}/messages"), post(move |s, c, p, b| publish(s, c, p, b, kind)));
    }
    r.route("/queues/{name}/receive", post(|s, c, Path(name), b| receive(s, c, name, None, b)))
        .route("/queues/{name}/ack", post(|s, c, Path(name), b| settle(s, c, name, None, Settle::Ack, b)))
        .route("/queues/{name}/nack", post(|s, c, Path(name), b| settle(s, c, name, None, Settle::Nack, b)))
        .route("/queues/{name}/extend", post(|s, c, Path(name), b| settle(s, c, name, None, Settle::Extend, b)))
        .route("/topics/{name}/subscriptions", get(subscriptions).post(subscribe))
        .route("/topics/{name}/subscriptions/{sub}", delete(unsubscribe))
        .route(
            "/topics/{name}/subscriptions/{sub}/receive",
            post(|s, c, Path((n, sub)), b| receive(s, c, n, Some(sub), b)),
        )
        .route(
            "/topics/{name}/subscriptions/{sub}/ack",
            post(|s, c, Path((n, sub)), b| settle(s, c, n, Some(sub), Settle::Ack, b)),
        )
        .route(
            "/topics/{name}/subscriptions/{sub}/nack",
            post(|s, c, Path((n, sub)), b| settle(s, c, n, Some(sub), Settle::Nack, b)),
        )
        .route(
            "/topics/{name}/subscriptions/{sub}/extend",
            post(|s, c, Path((n, sub)), b| settle(s, c, n, Some(sub), Settle::Extend, b)),
        )
        .route("/topics/{name}/subscriptions/{sub}/seek", post(seek))
        .route("/queues/{name}/stream", get(super::stream::queue))
        .route("/queues/{name}/ws", get(super::ws::queue))
        .route("/topics/{name}/subscriptions/{sub}/ws", get(super::ws::subscription))
        .route("/topics/{name}/subscriptions/{sub}/stream", get(super::stream::subscription))
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
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
) -> Result<Json<Value>, ApiError> {
    access(&state, &caller, &name, kind, Need::Do(Action::Consume))?;
    if q.max == 0 || q.max > 1000 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", "max must be 1 to 1000"));
    }
    let messages: Vec<MessageOut> = state.broker.peek(&name, q.from, q.max)?.into_iter().map(Into::into).collect();
    Ok(Json(json!({ "messages": messages })))
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
    Ok((StatusCode::CREATED, Json(json!({ "published": published }))).into_response())
}

#[derive(Deserialize, Default)]
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "messages": messages })))
}

#[derive(Clone, Copy)]
enum Settle {
    Ack,
    Nack,
    Extend,
}

#[derive(Deserialize, Default)]
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
) -> Result<Json<Value>, ApiError> {
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
    let results: Vec<Value> = body
        .leases
        .iter()
        .zip(results)
        .map(|(lease, r)| match r {
            Ok(()) => json!({ "lease": lease, "ok": true }),
            Err(e) => {
                let code = match e {
                    ferry_broker::Error::LeaseExpired { .. } => "lease_expired",
                    _ => "unknown_lease",
                };
                json!({ "lease": lease, "ok": false, "error": { "code": code, "message": e.to_string() } })
            }
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

async fn subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = access(&state, &caller, &name, Kind::Topic, Need::See)?;
    Ok(Json(json!({ "subscriptions": d.subscriptions })))
}

#[derive(Deserialize, Default)]
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
    state.broker.subscribe(&topic, &body.name, body.settings).await?;
    let d = info(&state, &topic, Kind::Topic)?;
    let stats = d.subscriptions.get(&body.name).cloned().unwrap_or_default();
    Ok((StatusCode::CREATED, Json(json!({ "name": body.name, "stats": stats }))).into_response())
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

#[derive(Deserialize, Default)]
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
