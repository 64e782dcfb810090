//! Streaming consume over WebSocket, with credits: `GET /v1/queues/{name}/ws` and
//! `GET /v1/topics/{name}/subscriptions/{sub}/ws`.
//!
//! The server sends `{"type":"message", …}` frames (the message JSON, lease included) while
//! the client has credit; each message uses one. The client sends:
//! - `{"credit": n}` to allow n more messages (the `credit` query parameter sets the first
//!   allowance, default 16);
//! - `{"ack": [leases]}`, `{"nack": [leases], "delay_ms": n}`, `{"extend": [leases],
//!   "visibility_ms": n}`, answered with `{"type":"settled","results":[…]}`.
//!
//! A client that stops granting credit gets nothing more and holds no more leases, so it
//! never slows anyone else.

use super::messages::MessageOut;
use super::spec::QueryParam;
use super::{ApiError, AppState, Caller};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use ferry_broker::ReceiveRequest;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use utoipa::openapi::schema::Type;

/// The most credit a client may hold.
const MAX_CREDIT: usize = 10_000;

/// The query parameters, for the API document.
pub(super) const QUERY: &[QueryParam] = &[
    ("credit", Type::Integer, "messages the server may send before the client grants more (default 16)"),
    ("visibility_ms", Type::Integer, "lease duration (default: the destination's)"),
];

#[derive(Deserialize)]
pub(super) struct WsQuery {
    #[serde(default = "sixteen")]
    credit: u32,
    visibility_ms: Option<u64>,
}

fn sixteen() -> u32 {
    16
}

pub(super) async fn queue(
    state: State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    open(state, caller, name, None, q, upgrade)
}

pub(super) async fn subscription(
    state: State<AppState>,
    caller: Caller,
    Path((name, sub)): Path<(String, String)>,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    open(state, caller, name, Some(sub), q, upgrade)
}

/// Checks everything before the upgrade, so that errors keep their status codes.
fn open(
    State(state): State<AppState>,
    caller: Caller,
    name: String,
    sub: Option<String>,
    q: WsQuery,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    crate::ops::destinations::consumable(&state, &caller, &name, sub.as_deref())?;
    let request =
        ReceiveRequest { max: 1, visibility_ms: q.visibility_ms, auto_ack: false, consumer: Some(caller.name.clone()) };
    let credit = (q.credit as usize).min(MAX_CREDIT);
    Ok(upgrade.on_upgrade(move |socket| serve(socket, state, name, sub, request, credit)))
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    name: String,
    sub: Option<String>,
    request: ReceiveRequest,
    credit: usize,
) {
    let (mut sink, mut frames) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Value>(64);
    let writer = tokio::spawn(async move {
        while let Some(v) = outgoing.recv().await {
            if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                return;
            }
        }
    });
    let credits = Arc::new(Semaphore::new(credit));
    let receiver = {
        let (state, name, sub, credits, out) = (state.clone(), name.clone(), sub.clone(), credits.clone(), out.clone());
        tokio::spawn(async move {
            loop {
                // Wait for at least one credit, then take as many as are there (up to 100).
                let Ok(first) = credits.acquire().await else { return };
                first.forget();
                let mut n = 1u32;
                while n < 100 && credits.try_acquire().map(|p| p.forget()).is_ok() {
                    n += 1;
                }
                let request = ReceiveRequest { max: n, ..request.clone() };
                let got = match state.broker.receive(&name, sub.as_deref(), request, Duration::from_secs(15)).await {
                    Ok(got) => got,
                    Err(e) => {
                        let _ = out.send(json!({ "type": "error", "message": e.to_string() })).await;
                        return;
                    }
                };
                credits.add_permits(n as usize - got.len());
                for m in got {
                    let mut v = serde_json::to_value(MessageOut::from(m)).unwrap_or(Value::Null);
                    if let Value::Object(map) = &mut v {
                        map.insert("type".into(), "message".into());
                    }
                    if out.send(v).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    while let Some(Ok(frame)) = frames.next().await {
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let reply = match serde_json::from_str::<Value>(&text) {
            Ok(cmd) => command(&state, &name, sub.as_deref(), &credits, cmd).await,
            Err(e) => Some(json!({ "type": "error", "message": format!("not JSON: {e}") })),
        };
        if let Some(reply) = reply {
            if out.send(reply).await.is_err() {
                break;
            }
        }
    }
    receiver.abort();
    drop(out);
    let _ = writer.await;
}

/// One client frame: credit, ack, nack or extend.
async fn command(state: &AppState, name: &str, sub: Option<&str>, credits: &Semaphore, cmd: Value) -> Option<Value> {
    let leases = |key: &str| -> Option<Vec<u64>> { serde_json::from_value(cmd.get(key)?.clone()).ok() };
    let number = |key: &str| cmd.get(key).and_then(Value::as_u64);
    let b = &state.broker;
    let results = if let Some(n) = number("credit") {
        let room = MAX_CREDIT.saturating_sub(credits.available_permits());
        credits.add_permits((n as usize).min(room));
        return None;
    } else if let Some(l) = leases("ack") {
        b.ack(name, sub, &l).await
    } else if let Some(l) = leases("nack") {
        b.nack(name, sub, &l, Duration::from_millis(number("delay_ms").unwrap_or(0))).await
    } else if let Some(l) = leases("extend") {
        match number("visibility_ms") {
            Some(v) => b.extend(name, sub, &l, Duration::from_millis(v)).await,
            None => return Some(json!({ "type": "error", "message": "extend needs visibility_ms" })),
        }
    } else {
        return Some(json!({ "type": "error", "message": "expected credit, ack, nack or extend" }));
    };
    Some(match results {
        Ok(r) => {
            let r: Vec<Value> = r
                .into_iter()
                .map(|x| match x {
                    Ok(()) => json!({ "ok": true }),
                    Err(e) => json!({ "ok": false, "error": e.to_string() }),
                })
                .collect();
            json!({ "type": "settled", "results": r })
        }
        Err(e) => json!({ "type": "error", "message": e.to_string() }),
    })
}
