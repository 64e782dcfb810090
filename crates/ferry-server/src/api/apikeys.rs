//! `/v1/apikeys`: keys for services, used as `Authorization: Bearer fk_…` like a token.
//! A key acts as the user who made it, with that user's current permissions; the whole key
//! is shown once, at creation.

use super::{ApiError, AppState, Body, Caller};
use crate::auth::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes, relative to `/v1`.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/apikeys", get(list).post(create)).route("/apikeys/{id}", delete(remove))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(default)]
    label: String,
}

async fn create(State(state): State<AppState>, caller: Caller, Body(body): Body<Create>) -> Result<Response, ApiError> {
    if body.label.len() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            "label: at most 200 characters",
        ));
    }
    let (info, key) =
        state.auth.create_key(&caller.name, &body.label).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({ "key": key, "info": info }))).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Json<serde_json::Value> {
    let owner = (caller.role != Role::Admin).then_some(caller.name.as_str());
    Json(json!({ "apikeys": state.auth.keys(owner) }))
}

async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let owner = state.auth.keys(None).into_iter().find(|k| k.id == id).map(|k| k.owner);
    match owner {
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no API key {id:?}"))),
        Some(o) if o != caller.name && caller.role != Role::Admin => {
            Err(ApiError::forbidden("only the key's owner or an admin may delete it"))
        }
        Some(_) => {
            state.auth.delete_key(&id).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
