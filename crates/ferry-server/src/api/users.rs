//! `/v1/users`: accounts and their permissions, for admins only.

use super::spec::{Route, Verb};
use super::{ApiError, AppState, Body, Caller};
use crate::auth::{AuthError, Permissions, Role, UserInfo};
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

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage users"))
    }
}

fn storage(e: AuthError) -> ApiError {
    match e {
        AuthError::LastAdmin => ApiError::new(StatusCode::CONFLICT, "last_admin", e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}

fn no_user(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no user named {name:?}"))
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    Ok(Json(Users { users: state.auth.users() }).into_response())
}

async fn show(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let user = state.auth.user(&name).ok_or_else(|| no_user(&name))?;
    Ok(Json(user).into_response())
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
    admin_only(&caller)?;
    ferry_broker::names::check(&name)?;
    if body.password.len() < 8 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            "password: at least 8 characters",
        ));
    }
    let existed = state.auth.user(&name).is_some();
    let auth = state.auth.clone();
    let role = body.role.unwrap_or(Role::User);
    let n = name.clone();
    tokio::task::spawn_blocking(move || auth.put_user(&n, &body.password, role, body.permissions))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(storage)?;
    let user = state.auth.user(&name).ok_or_else(|| no_user(&name))?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(user)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_only(&caller)?;
    if state.auth.delete_user(&name).map_err(storage)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_user(&name))
    }
}

async fn permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    let user = state.auth.user(&name).ok_or_else(|| no_user(&name))?;
    Ok(Json(user.permissions).into_response())
}

async fn set_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Permissions>,
) -> Result<Response, ApiError> {
    admin_only(&caller)?;
    if !state.auth.set_permissions(&name, body.clone()).map_err(storage)? {
        return Err(no_user(&name));
    }
    Ok(Json(body).into_response())
}
