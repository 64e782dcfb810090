//! `/v1/queues` and `/v1/topics`: the same shape for both kinds (create, list, describe,
//! delete, purge, peek, publish, receive, ack, nack, extend), plus topic subscriptions.
//! The handlers decode and encode JSON; the rules (who may do what, defaults, bounds) are
//! in `crate::ops::destinations`, shared with gRPC.

use super::error::ErrorDetail;
use super::messages::{MessageOut, Publish};
use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::ops::destinations::{self as ops, Need};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_broker::{DestinationInfo, Kind, Published, Settings, StartAt, Stats, SubscriptionSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
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

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    kind: Kind,
) -> Result<Json<Vec<DestinationInfo>>, ApiError> {
    Ok(Json(ops::visible(&state, &caller, Some(kind))))
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
    let d = ops::create(&state, &caller, kind, &body.name, body.settings).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<Json<DestinationInfo>, ApiError> {
    Ok(Json(ops::access(&state, &caller, &name, kind, Need::See)?))
}

/// `PATCH`: changes the settings named in the body, keeping the others.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(changes): Body<Value>,
    kind: Kind,
) -> Result<Json<DestinationInfo>, ApiError> {
    Ok(Json(ops::update(&state, &caller, &name, kind, changes).await?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    ops::delete(&state, &caller, &name, kind).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    ops::purge(&state, &caller, &name, kind).await?;
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
    let messages = ops::peek(&state, &caller, &name, kind, q.from, q.max).await?.into_iter().map(Into::into).collect();
    Ok(Json(Messages { messages }))
}

async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Publish>,
    kind: Kind,
) -> Result<Response, ApiError> {
    let published = ops::publish(&state, &caller, &name, kind, || body.into_messages()).await?;
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
    let request = ops::Receive {
        max: body.max.unwrap_or(1),
        wait_ms: body.wait_ms.unwrap_or(0),
        visibility_ms: body.visibility_ms,
        auto_ack: body.auto_ack,
    };
    let got = ops::receive(&state, &caller, &name, sub.as_deref(), request).await?;
    Ok(Json(Messages { messages: got.into_iter().map(Into::into).collect() }))
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
    let action = match action {
        Settle::Ack => ops::Settle::Ack,
        Settle::Nack => ops::Settle::Nack { delay_ms: body.delay_ms },
        Settle::Extend => ops::Settle::Extend { visibility_ms: body.visibility_ms },
    };
    let results = ops::settle(&state, &caller, &name, sub.as_deref(), action, &body.leases)
        .await?
        .into_iter()
        .map(|s| SettleResult {
            lease: s.lease,
            ok: s.error.is_none(),
            error: s.error.map(|(code, message)| ErrorDetail { code: code.into(), message }),
        })
        .collect();
    Ok(Json(SettleResults { results }))
}

async fn subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Subscriptions>, ApiError> {
    Ok(Json(Subscriptions { subscriptions: ops::subscriptions(&state, &caller, &name)? }))
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
    let stats = ops::subscribe(&state, &caller, &topic, &body.name, body.settings).await?;
    Ok((StatusCode::CREATED, Json(SubscriptionCreated { name: body.name, stats })).into_response())
}

async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path((topic, sub)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::unsubscribe(&state, &caller, &topic, &sub).await?;
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
    ops::seek(&state, &caller, &topic, &sub, body.to).await?;
    Ok(StatusCode::NO_CONTENT)
}
