//! `/v1/apikeys`: keys for services, used as `Authorization: Bearer fk_…` like a token.
//! A key acts as the user who made it, with that user's current permissions; the whole key
//! is shown once, at creation.

use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::ApiKeyInfo;
use crate::ops::users;
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
    let (info, key) = users::create_key(&state, &caller, &body.label)?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, info })).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Json<ApiKeys> {
    Json(ApiKeys { apikeys: users::keys(&state, &caller) })
}

async fn remove(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    users::delete_key(&state, &caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
