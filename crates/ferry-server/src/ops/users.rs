//! Who the caller is, and the accounts behind it, for every front door: turning a bearer
//! token or API key into a principal (with the per-principal rate limit), logging in (with
//! the lockout after failed logins), users and their permissions (admins only), and API
//! keys (each user their own; admins all).

use crate::api::{ApiError, AppState};
use crate::auth::{ApiKeyInfo, AuthError, Permissions, Principal, Role, UserInfo};
use axum::http::StatusCode;

/// The shortest password a user may be given.
pub(crate) const MIN_PASSWORD: usize = 8;
/// The longest label an API key may have.
pub(crate) const MAX_LABEL: usize = 200;

/// The principal a bearer token (a signed token or an `fk_` API key) speaks for, once the
/// principal's request rate allows one more request.
pub(crate) fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let principal = state.auth.verify(token).map_err(|e| ApiError::unauthorized(e.to_string()))?;
    take_rate(state, &principal.name)?;
    Ok(principal)
}

/// Counts one request against `name`'s rate (`limits.requests_per_second`); 429 with the
/// time to wait when there is no room.
pub(crate) fn take_rate(state: &AppState, name: &str) -> Result<(), ApiError> {
    match state.rate.as_ref().map(|r| r.take(name)) {
        Some(Err(wait)) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; try again in {} ms", wait.as_millis() + 1),
        )
        .with_retry_after(wait.as_secs() + 1)),
        _ => Ok(()),
    }
}

/// A name and password for a signed token and its lifetime in seconds.
pub(crate) async fn login(state: &AppState, username: String, password: String) -> Result<(String, u64), ApiError> {
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "username and password are required",
        ));
    }
    if let Some(wait) = state.logins.wait(&username) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_logins",
            format!("too many failed logins for this user; try again in {} s", wait.as_secs() + 1),
        ));
    }
    let auth = state.auth.clone();
    let name = username.clone();
    // argon2id is slow on purpose; keep it off the runtime's workers.
    let result = tokio::task::spawn_blocking(move || auth.login(&username, &password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match &result {
        Ok(_) => state.logins.succeeded(&name),
        Err(AuthError::BadCredentials) => state.logins.failed(&name),
        Err(_) => {}
    }
    result.map_err(|e| match e {
        AuthError::BadCredentials => ApiError::unauthorized("invalid username or password"),
        e => ApiError::internal(e.to_string()),
    })
}

fn admin_only(caller: &Principal) -> Result<(), ApiError> {
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

/// Every user (admins only).
pub(crate) fn list(state: &AppState, caller: &Principal) -> Result<Vec<UserInfo>, ApiError> {
    admin_only(caller)?;
    Ok(state.auth.users())
}

/// One user (admins only).
pub(crate) fn get(state: &AppState, caller: &Principal, name: &str) -> Result<UserInfo, ApiError> {
    admin_only(caller)?;
    state.auth.user(name).ok_or_else(|| no_user(name))
}

/// Creates or replaces a user (admins only); the user, and whether it is new.
pub(crate) async fn put(
    state: &AppState,
    caller: &Principal,
    name: &str,
    password: String,
    role: Option<Role>,
    permissions: Permissions,
) -> Result<(UserInfo, bool), ApiError> {
    admin_only(caller)?;
    ferry_broker::names::check(name)?;
    if password.len() < MIN_PASSWORD {
        return Err(ApiError::invalid(format!("password: at least {MIN_PASSWORD} characters")));
    }
    let existed = state.auth.user(name).is_some();
    let auth = state.auth.clone();
    let role = role.unwrap_or(Role::User);
    let n = name.to_string();
    // argon2id again: off the runtime's workers.
    tokio::task::spawn_blocking(move || auth.put_user(&n, &password, role, permissions))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(storage)?;
    let user = state.auth.user(name).ok_or_else(|| no_user(name))?;
    Ok((user, !existed))
}

/// Deletes a user (admins only; not the last admin).
pub(crate) fn delete(state: &AppState, caller: &Principal, name: &str) -> Result<(), ApiError> {
    admin_only(caller)?;
    if state.auth.delete_user(name).map_err(storage)? {
        Ok(())
    } else {
        Err(no_user(name))
    }
}

/// A user's permissions (admins only).
pub(crate) fn permissions(state: &AppState, caller: &Principal, name: &str) -> Result<Permissions, ApiError> {
    Ok(get(state, caller, name)?.permissions)
}

/// Replaces a user's permissions (admins only).
pub(crate) fn set_permissions(
    state: &AppState,
    caller: &Principal,
    name: &str,
    permissions: Permissions,
) -> Result<Permissions, ApiError> {
    admin_only(caller)?;
    if !state.auth.set_permissions(name, permissions.clone()).map_err(storage)? {
        return Err(no_user(name));
    }
    Ok(permissions)
}

/// Makes an API key for the caller: its description and the whole key, shown only now.
pub(crate) fn create_key(state: &AppState, caller: &Principal, label: &str) -> Result<(ApiKeyInfo, String), ApiError> {
    if label.len() > MAX_LABEL {
        return Err(ApiError::invalid(format!("label: at most {MAX_LABEL} characters")));
    }
    state.auth.create_key(&caller.name, label).map_err(|e| ApiError::internal(e.to_string()))
}

/// The caller's API keys; an admin's: everyone's.
pub(crate) fn keys(state: &AppState, caller: &Principal) -> Vec<ApiKeyInfo> {
    let owner = (caller.role != Role::Admin).then_some(caller.name.as_str());
    state.auth.keys(owner)
}

/// Deletes an API key (its owner or an admin).
pub(crate) fn delete_key(state: &AppState, caller: &Principal, id: &str) -> Result<(), ApiError> {
    let owner = state.auth.keys(None).into_iter().find(|k| k.id == id).map(|k| k.owner);
    match owner {
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no API key {id:?}"))),
        Some(o) if o != caller.name && caller.role != Role::Admin => {
            Err(ApiError::forbidden("only the key's owner or an admin may delete it"))
        }
        Some(_) => state.auth.delete_key(id).map(drop).map_err(|e| ApiError::internal(e.to_string())),
    }
}
