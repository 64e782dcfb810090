//! Streaming consume over Server-Sent Events: `GET /v1/queues/{name}/stream` and
//! `GET /v1/topics/{name}/subscriptions/{sub}/stream`. Each message is an event named
//! `message` whose data is the message JSON (lease included, to ack over REST).
//!
//! Flow control is a bounded buffer per client: the task that receives for the client
//! waits while the buffer is full, so a slow client takes no more leases than it reads,
//! and never slows anyone else. When the client goes away, the task stops; the leases it
//! held expire and their messages are redelivered.

use super::messages::MessageOut;
use super::spec::QueryParam;
use super::{ApiError, AppState, Caller};
use crate::auth::Action;
use crate::ops::destinations::{check, kind_of, Need};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ferry_broker::ReceiveRequest;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa::openapi::schema::Type;

/// Messages buffered per client before the stream stops taking more.
const BUFFER: usize = 64;

/// The query parameters, for the API document.
pub(super) const QUERY: &[QueryParam] = &[
    ("batch", Type::Integer, "messages per receive (default 16)"),
    ("visibility_ms", Type::Integer, "lease duration (default: the destination's)"),
    ("auto_ack", Type::Boolean, "remove messages as they are sent, without leases"),
];

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    /// Messages per receive (default 16).
    #[serde(default = "sixteen")]
    batch: u32,
    visibility_ms: Option<u64>,
    #[serde(default)]
    auto_ack: bool,
}

fn sixteen() -> u32 {
    16
}

pub(super) async fn queue(
    state: State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    stream(state, caller, name, None, q).await
}

pub(super) async fn subscription(
    state: State<AppState>,
    caller: Caller,
    Path((name, sub)): Path<(String, String)>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    stream(state, caller, name, Some(sub), q).await
}

async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    name: String,
    sub: Option<String>,
    q: StreamQuery,
) -> Result<Response, ApiError> {
    check(&state, &caller, &name, kind_of(sub.as_deref()), Need::Do(Action::Consume))?;
    let request = ReceiveRequest {
        max: q.batch,
        visibility_ms: q.visibility_ms,
        auto_ack: q.auto_ack,
        consumer: Some(caller.name.clone()),
    };
    // The first receive checks everything (destination, subscription, arguments) before
    // the response starts, so errors still get their status code.
    let first = state.broker.receive(&name, sub.as_deref(), request.clone(), Duration::ZERO).await?;
    let (tx, rx) = mpsc::channel::<Event>(BUFFER);
    let broker = state.broker.clone();
    tokio::spawn(async move {
        let mut batch = first;
        loop {
            for m in batch {
                let data = serde_json::to_string(&MessageOut::from(m)).unwrap_or_default();
                if tx.send(Event::default().event("message").data(data)).await.is_err() {
                    return; // the client went away
                }
            }
            if tx.is_closed() {
                return;
            }
            batch = match broker.receive(&name, sub.as_deref(), request.clone(), Duration::from_secs(15)).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Event::default().event("error").data(e.to_string())).await;
                    return;
                }
            };
        }
    });
    let events =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}
