//! `/v1/apikeys`: keys for services, used as `Authorization: Bearer fk_…` like a token.
//! A key acts as the user who made it, with that user's current permissions; the whole key
//! is shown once, at creation.

use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::{ApiKeyInfo, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes, relative to `/v1`.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new(Verb::Get, "/apikeys", "The caller's keys (an admin's: all)", list).gives::<ApiKeys>(200),
        Route::new(Verb::Post, "/apikeys", "Make a key; the whole key is shown only here", create)
            .takes::<Create>()
            .gives::<CreatedKey>(201),
        Route::new(Verb::Delete, "/apikeys/{id}", "Delete a key (its owner or an admin)", remove).gives_nothing(204),
    ]
}

#[derive(Serialize, ToSchema)]
struct ApiKeys {
    apikeys: Vec<ApiKeyInfo>,
}

#[derive(Serialize, ToSchema)]
struct CreatedKey {
    /// The key, `fk_<id>_<secret>`: use it as a Bearer token.
    key: String,
    info: ApiKeyInfo,
}

#[derive(Deserialize, Default, ToSchema)]
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
    Ok((StatusCode::CREATED, Json(CreatedKey { key, info })).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Json<ApiKeys> {
    let owner = (caller.role != Role::Admin).then_some(caller.name.as_str());
    Json(ApiKeys { apikeys: state.auth.keys(owner) })
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
