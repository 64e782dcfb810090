//! The MOM routes and their handlers. Every handler goes through the steps in the order
//! FastAPI goes through them, because the order decides the answer to a request that is
//! wrong in more than one way: the body's JSON syntax, then authentication (401/403), then
//! validation of the path, query and body (422), then the rate limit (429: only requests
//! that get this far count), then the operation.
//!
//! Paths the API does not have get Starlette's answers: 405 when the path exists with
//! another method, a 307 redirect when it exists with the trailing slash toggled, else 404.

use super::errors::MomError;
use super::ops::{self, Outcome};
use super::request::Call;
use super::{bearer, validate, Mom, BASE_PATH};
use crate::api::AppState;
use crate::auth::{AuthError, Permissions, Role};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put, MethodRouter};
use axum::{Extension, Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Every route (method, path under [`BASE_PATH`]); `{x}` is one non-empty path segment.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("POST", "/login/"),
    ("GET", "/protected/"),
    ("GET", "/admin/protected/"),
    ("PUT", "/admin/users/create/"),
    ("DELETE", "/admin/users/remove/{user}"),
    ("PUT", "/admin/queue_topic/create/"),
    ("DELETE", "/admin/queue_topic/delete/{name}"),
    ("POST", "/queue_topic/subscribe/"),
    ("POST", "/queue_topic/unsubscribe/"),
    ("POST", "/queue_topic/send/"),
    ("POST", "/queue_topic/receive/"),
    ("GET", "/openapi.json"),
];

/// The OpenAPI document of these routes.
const OPENAPI: &str = include_str!("openapi.json");

type Mine = Extension<Arc<Mom>>;

pub(super) fn router() -> Router<AppState> {
    let route = |method_router: MethodRouter<AppState>| method_router.fallback(unmatched);
    Router::new()
        .route(&format!("{BASE_PATH}/"), route(get(home)))
        .route(&format!("{BASE_PATH}/login/"), route(post(login)))
        .route(&format!("{BASE_PATH}/protected/"), route(get(protected)))
        .route(&format!("{BASE_PATH}/admin/protected/"), route(get(admin_protected)))
        .route(&format!("{BASE_PATH}/admin/users/create/"), route(put(create_user)))
        .route(&format!("{BASE_PATH}/admin/users/remove/{{user}}"), route(delete(remove_user)))
        .route(&format!("{BASE_PATH}/admin/queue_topic/create/"), route(put(create)))
        .route(&format!("{BASE_PATH}/admin/queue_topic/delete/{{name}}"), route(delete(remove)))
        .route(&format!("{BASE_PATH}/queue_topic/subscribe/"), route(post(subscribe)))
        .route(&format!("{BASE_PATH}/queue_topic/unsubscribe/"), route(post(unsubscribe)))
        .route(&format!("{BASE_PATH}/queue_topic/send/"), route(post(send)))
        .route(&format!("{BASE_PATH}/queue_topic/receive/"), route(post(receive)))
        .route(&format!("{BASE_PATH}/openapi.json"), route(get(openapi)))
        .route(BASE_PATH, any(unmatched))
        .route(&format!("{BASE_PATH}/{{*rest}}"), any(unmatched))
}

/// The limits of the routes, per client IP and path.
#[derive(Clone, Copy)]
enum Limit {
    Home,
    Login,
    Protected,
    Users,
    Admin,
    Operations,
}

/// Counts the request against its route's limit.
fn limit(state: &AppState, mom: &Mom, call: &Call, which: Limit) -> Result<(), MomError> {
    let c = &state.config.mom;
    let per_minute = match which {
        Limit::Home => c.home_per_minute,
        Limit::Login => c.login_per_minute,
        Limit::Protected => c.protected_per_minute,
        Limit::Users => c.users_per_minute,
        Limit::Admin => c.admin_per_minute,
        Limit::Operations => c.operations_per_minute,
    };
    if !c.rate_limits || per_minute == 0 || mom.limiter.hit(&call.ip, &call.path, per_minute) {
        Ok(())
    } else {
        Err(MomError::RateLimited(per_minute))
    }
}

async fn home(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Response, MomError> {
    limit(&state, &mom, &call, Limit::Home)?;
    Ok(Json("Welcome to MOM TET API!").into_response())
}

async fn login(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Response, MomError> {
    let body = call.body()?;
    let dto = validate::user_dto(&body)?;
    limit(&state, &mom, &call, Limit::Login)?;
    // ferry's protection against guessing passwords holds here as on /v1.
    if let Some(wait) = state.logins.wait(&dto.username) {
        return Err(MomError::detail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed logins for this user; try again in {} s", wait.as_secs() + 1),
        ));
    }
    let auth = state.auth.clone();
    let name = dto.username.clone();
    // argon2id is slow on purpose; keep it off the runtime's workers.
    let result = tokio::task::spawn_blocking(move || auth.login(&dto.username, &dto.password))
        .await
        .map_err(MomError::internal)?;
    match result {
        Ok((token, _ttl)) => {
            state.logins.succeeded(&name);
            Ok(Json(json!({ "access_token": token, "token_type": "Bearer" })).into_response())
        }
        Err(AuthError::BadCredentials) => {
            state.logins.failed(&name);
            Err(MomError::detail(StatusCode::UNAUTHORIZED, "Invalid username or password"))
        }
        Err(e) => Err(MomError::internal(e)),
    }
}

async fn protected(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Response, MomError> {
    let user = bearer::user(&state, &call.headers)?;
    limit(&state, &mom, &call, Limit::Protected)?;
    Ok(Json(format!("This is a protected endpoint. Welcome, {}!", user.name)).into_response())
}

async fn admin_protected(
    State(state): State<AppState>,
    Extension(mom): Mine,
    call: Call,
) -> Result<Response, MomError> {
    let user = bearer::admin(&state, &call.headers)?;
    limit(&state, &mom, &call, Limit::Protected)?;
    Ok(Json(format!("This is the protected admin endpoint. Welcome, {}!", user.name)).into_response())
}

/// Users made here get role user and may publish to and consume from everything, and
/// manage nothing: on `/v1` they can do what they can do here.
async fn create_user(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Response, MomError> {
    let body = call.body()?;
    bearer::admin(&state, &call.headers)?;
    let dto = validate::user_dto(&body)?;
    limit(&state, &mom, &call, Limit::Users)?;
    let auth = state.auth.clone();
    let name = dto.username.clone();
    let permissions = Permissions { publish: vec!["*".into()], consume: vec!["*".into()], manage: Vec::new() };
    // argon2id again: off the runtime's workers.
    let created =
        tokio::task::spawn_blocking(move || auth.create_user(&dto.username, &dto.password, Role::User, permissions))
            .await
            .map_err(MomError::internal)?
            .map_err(MomError::internal)?;
    if created {
        Ok(Json(format!("User {name} created successfully.")).into_response())
    } else {
        Err(MomError::detail(StatusCode::FORBIDDEN, "Username already exists"))
    }
}

async fn remove_user(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Response, MomError> {
    bearer::admin(&state, &call.headers)?;
    limit(&state, &mom, &call, Limit::Users)?;
    let name = call.last_segment();
    match state.auth.delete_user(&name) {
        Ok(true) => Ok(Json(format!("User {name} removed successfully.")).into_response()),
        Ok(false) => Ok(Json(format!("User {name} not found.")).into_response()),
        // The reference answers a refusal of its user service (a ValueError) with 403 and
        // the reason; it has no last-admin rule, so this is the nearest of its answers.
        Err(AuthError::LastAdmin) => Err(MomError::detail(
            StatusCode::FORBIDDEN,
            format!("User {name} is the last admin and cannot be removed."),
        )),
        Err(e) => Err(MomError::internal(e)),
    }
}

async fn create(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let body = call.body()?;
    let user = bearer::admin(&state, &call.headers)?;
    let dto = validate::queue_topic(&body)?;
    limit(&state, &mom, &call, Limit::Admin)?;
    ops::create(&state, &user, dto.kind, &dto.name).await
}

async fn remove(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let user = bearer::admin(&state, &call.headers)?;
    let kind = validate::mom_type_query(call.query_param("mom_type"))?;
    limit(&state, &mom, &call, Limit::Admin)?;
    let name = call.last_segment();
    if let Some(text) = validate::path_name_error(&name) {
        return Err(MomError::detail(StatusCode::FORBIDDEN, text));
    }
    ops::delete(&state, &mom, &user, kind, &name).await
}

async fn subscribe(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let body = call.body()?;
    let user = bearer::user(&state, &call.headers)?;
    let dto = validate::queue_topic(&body)?;
    limit(&state, &mom, &call, Limit::Operations)?;
    ops::subscribe(&state, &mom, &user, dto.kind, &dto.name).await
}

async fn unsubscribe(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let body = call.body()?;
    let user = bearer::user(&state, &call.headers)?;
    let dto = validate::queue_topic(&body)?;
    limit(&state, &mom, &call, Limit::Operations)?;
    ops::unsubscribe(&state, &mom, &user, dto.kind, &dto.name).await
}

async fn send(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let body = call.body()?;
    let user = bearer::user(&state, &call.headers)?;
    let dto = validate::message_queue_topic(&body)?;
    limit(&state, &mom, &call, Limit::Operations)?;
    ops::send(&state, &user, dto.kind, &dto.name, &dto.message).await
}

async fn receive(State(state): State<AppState>, Extension(mom): Mine, call: Call) -> Result<Outcome, MomError> {
    let body = call.body()?;
    let user = bearer::user(&state, &call.headers)?;
    let dto = validate::queue_topic(&body)?;
    limit(&state, &mom, &call, Limit::Operations)?;
    ops::receive(&state, &mom, &user, dto.kind, &dto.name).await
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Whether `path` (under the base path) fits `pattern` from [`ROUTES`].
fn fits(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == s.len()
        && p.iter().zip(&s).all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty()))
}

/// The methods of the route that `path` (a full path) is, if it is one.
fn methods_of(path: &str) -> Vec<&'static str> {
    let Some(rel) = path.strip_prefix(BASE_PATH).filter(|r| r.starts_with('/')) else { return Vec::new() };
    ROUTES.iter().filter(|(_, pattern)| fits(pattern, rel)).map(|(m, _)| *m).collect()
}

/// A request no handler took: Starlette's 405, 307 or 404.
async fn unmatched(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> MomError {
    let path = uri.path();
    let methods = methods_of(path);
    if !methods.is_empty() {
        let mut allow: Vec<&str> =
            methods.iter().flat_map(|&m| if m == "GET" { vec!["GET", "HEAD"] } else { vec![m] }).collect();
        allow.sort_unstable();
        return MomError::MethodNotAllowed(allow.join(", "));
    }
    // Starlette's redirect_slashes: strip every trailing slash, or add one.
    let toggled = if path.ends_with('/') { path.trim_end_matches('/').to_string() } else { format!("{path}/") };
    if methods_of(&toggled).is_empty() {
        return MomError::not_found();
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let location = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => {
            let scheme = if state.config.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{host}{toggled}{query}")
        }
        None => format!("{toggled}{query}"),
    };
    MomError::Redirect(location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn paths_fit_their_routes() {
        assert_eq!(methods_of("/api/v1.0.0/MomServer/"), ["GET"]);
        assert_eq!(methods_of("/api/v1.0.0/MomServer/admin/users/remove/bob"), ["DELETE"]);
        assert!(methods_of("/api/v1.0.0/MomServer/admin/users/remove/").is_empty());
        assert!(methods_of("/api/v1.0.0/MomServer/login").is_empty());
        assert!(methods_of("/api/v1.0.0/MomServer").is_empty());
        assert!(methods_of("/api/v1.0.0/MomServerX/").is_empty());
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .filter(|(_, p)| *p != "/openapi.json")
            .map(|(m, p)| (m.to_string(), format!("{BASE_PATH}{p}")))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
        // Every reference resolves.
        let text = OPENAPI;
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "missing schema {name}");
        }
    }
}
