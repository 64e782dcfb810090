//! `/v1/users`: accounts and their permissions, for admins only (the rules are in
//! `crate::ops::users`).

use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::{Permissions, Role, UserInfo};
use crate::ops::users;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes, relative to `/v1`.
pub(super) fn routes() -> Vec<Route> {
    let one = "/users/{name}";
    let perms = "/users/{name}/permissions";
    vec![
        Route::new(Verb::Get, "/users", "List users", list).gives::<Users>(200),
        Route::new(Verb::Get, one, "Show a user", show).gives::<UserInfo>(200),
        Route::new(Verb::Put, one, "Create (201) or replace a user", put).takes::<PutUser>().gives::<UserInfo>(201),
        Route::new(Verb::Delete, one, "Delete a user (not the last admin)", remove).gives_nothing(204),
        Route::new(Verb::Get, perms, "A user's permissions", permissions).gives::<Permissions>(200),
        Route::new(Verb::Put, perms, "Replace a user's permissions", set_permissions)
            .takes::<Permissions>()
            .gives::<Permissions>(200),
    ]
}

#[derive(Serialize, ToSchema)]
struct Users {
    users: Vec<UserInfo>,
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    Ok(Json(Users { users: users::list(&state, &caller)? }).into_response())
}

async fn show(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(users::get(&state, &caller, &name)?).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct PutUser {
    password: String,
    role: Option<Role>,
    #[serde(default)]
    permissions: Permissions,
}

/// Creates or replaces a user (201 when new).
async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<PutUser>,
) -> Result<Response, ApiError> {
    let (user, created) = users::put(&state, &caller, &name, body.password, body.role, body.permissions).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(user)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::delete(&state, &caller, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(users::permissions(&state, &caller, &name)?).into_response())
}

async fn set_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Permissions>,
) -> Result<Response, ApiError> {
    Ok(Json(users::set_permissions(&state, &caller, &name, body)?).into_response())
}
