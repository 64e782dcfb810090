//! Authentication as the reference does it (FastAPI's `HTTPBearer` plus its JWT check),
//! over ferry's tokens and API keys: no `Authorization` header (or no credentials in it)
//! is 403 "Not authenticated", another scheme 403 "Invalid authentication credentials",
//! a bad token 401 "Invalid token", an expired one 401 "Token has expired", and a non-admin
//! on an admin route 403 "Forbidden: access denied".

use super::errors::MomError;
use crate::api::AppState;
use crate::auth::{AuthError, Principal, Role};
use axum::http::{header, HeaderMap, StatusCode};

/// The caller, from the request's bearer token.
pub(crate) fn user(state: &AppState, headers: &HeaderMap) -> Result<Principal, MomError> {
    let value = headers.get(header::AUTHORIZATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let value = value.unwrap_or_default();
    // Starlette splits at the first space and keeps the rest as it is.
    let (scheme, credentials) = value.split_once(' ').unwrap_or((&value, ""));
    if scheme.is_empty() || credentials.is_empty() {
        return Err(MomError::detail(StatusCode::FORBIDDEN, "Not authenticated"));
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MomError::detail(StatusCode::FORBIDDEN, "Invalid authentication credentials"));
    }
    state.auth.verify(credentials).map_err(|e| match e {
        AuthError::Expired => MomError::detail(StatusCode::UNAUTHORIZED, "Token has expired"),
        _ => MomError::detail(StatusCode::UNAUTHORIZED, "Invalid token"),
    })
}

/// The caller, who must be an admin.
pub(crate) fn admin(state: &AppState, headers: &HeaderMap) -> Result<Principal, MomError> {
    let user = user(state, headers)?;
    if user.role == Role::Admin {
        Ok(user)
    } else {
        Err(MomError::detail(StatusCode::FORBIDDEN, "Forbidden: access denied"))
    }
}
