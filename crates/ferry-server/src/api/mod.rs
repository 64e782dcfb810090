//! The HTTP API: `fn router(state) -> Router`, the `/v1` routes behind one authentication
//! layer, and the pieces every handler shares (state, principal, JSON bodies, errors).

mod apikeys;
mod destinations;
mod error;
mod messages;
pub(crate) mod metrics;
mod ratelimit;
mod spec;
mod stream;
mod throttle;
mod users;
mod ws;

pub use error::ApiError;

use crate::auth::{Auth, Principal};
use crate::config::Config;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use ferry_broker::Broker;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spec::{Route, Verb};
use std::sync::{Arc, OnceLock};
use utoipa::ToSchema;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) broker: Broker,
    pub(crate) auth: Arc<Auth>,
    pub(crate) config: Arc<Config>,
    pub(crate) http_metrics: Arc<metrics::HttpMetrics>,
    pub(crate) logins: Arc<throttle::LoginThrottle>,
    pub(crate) rate: Option<Arc<ratelimit::RateLimiter>>,
}

impl AppState {
    /// State over an open broker and user store.
    pub fn new(broker: Broker, auth: Arc<Auth>, config: Arc<Config>) -> AppState {
        let rate = ratelimit::RateLimiter::new(config.limits.requests_per_second, config.limits.burst).map(Arc::new);
        AppState { broker, auth, config, http_metrics: Arc::default(), logins: Arc::default(), rate }
    }
}

/// A JSON request body; an empty body reads as the type's default. Syntax errors are 400,
/// well-formed bodies of the wrong shape 422, bodies over the limit 413.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_body" };
            ApiError::new(status, code, r.body_text())
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes).map(Body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string())
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
        })
    }
}

/// Checks the bearer token of every `/v1` request before anything else happens, and hands
/// the principal to the handler.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = bearer_token(req.headers()) else {
        return ApiError::unauthorized("an Authorization: Bearer <token> header is required").into_response();
    };
    match crate::ops::users::authenticate(&state, token) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header (a signed token or an API key).
pub(crate) fn bearer_token(headers: &header::HeaderMap) -> Option<&str> {
    bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization` value, `Bearer <token>`: the one syntax HTTP and gRPC
/// metadata share.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer ").map(str::trim)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

/// A signed token and how long it lasts.
#[derive(Serialize, ToSchema)]
struct Token {
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until it expires.
    expires_in: u64,
}

/// `POST /v1/auth/token`: name and password for a signed token.
async fn token(State(state): State<AppState>, Body(login): Body<Login>) -> Result<Response, ApiError> {
    let (access_token, expires_in) = crate::ops::users::login(&state, login.username, login.password).await?;
    Ok(Json(Token { access_token, token_type: "Bearer".into(), expires_in }).into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    // The OpenAPI document describes the route table it is served from, itself included.
    let document = Arc::new(OnceLock::<String>::new());
    let served = document.clone();
    let openapi = Route::new(Verb::Get, "/openapi.json", "This document (OpenAPI 3.1)", move || async move {
        ([(header::CONTENT_TYPE, "application/json")], served.get().cloned().unwrap_or_default())
    })
    .streams(200, "application/json: the OpenAPI document");
    let mut routes = destinations::routes();
    routes.extend(users::routes());
    routes.extend(apikeys::routes());
    routes.push(openapi);
    let public = vec![Route::new(Verb::Post, "/auth/token", "Log in: a name and password for a token", token)
        .public()
        .takes::<Login>()
        .gives::<Token>(200)];
    let all: Vec<&Route> = public.iter().chain(&routes).collect();
    let _ = document.set(serde_json::to_string_pretty(&spec::document(all)).unwrap_or_default());

    let v1 =
        spec::router(routes, "").fallback(not_found).layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(metrics::metrics))
        .merge(spec::router(public, "/v1"))
        .nest("/v1", v1);
    if state.config.mom.enabled {
        // Full paths under /api/v1.0.0/MomServer, merged rather than nested: the API has a
        // route at `{base}/` (with its slash), which nesting cannot express.
        app = app.merge(crate::mom::routes(&state));
    }
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .with_state(state)
}

/// The principal of a `/v1` request, put there by [`authenticate`].
pub(crate) type Caller = axum::Extension<Principal>;
