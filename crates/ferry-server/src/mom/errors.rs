//! The error answers of the MOM API, in the shapes the reference's framework gives them:
//! FastAPI's `{"detail": "<text>"}` for an HTTP error, `{"detail": [<pydantic error>, ...]}`
//! for a request that fails validation (422), and slowapi's `{"error": "Rate limit
//! exceeded: N per 1 minute"}` (429, with no `Retry-After`: slowapi sends none by default).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An answer other than the route's success.
#[derive(Debug)]
pub(crate) enum MomError {
    /// FastAPI's `HTTPException`: the status and `{"detail": text}`.
    Detail(StatusCode, String),
    /// A request validation error: 422 and `{"detail": errors}`.
    Invalid(Vec<Value>),
    /// slowapi's refusal, naming the limit per minute.
    RateLimited(u32),
    /// A route that exists with other methods: 405 `{"detail": "Method Not Allowed"}` and an
    /// `Allow` header.
    MethodNotAllowed(String),
    /// Starlette's `redirect_slashes`: 307 to the same path with the trailing slash toggled.
    Redirect(String),
}

impl MomError {
    pub(crate) fn detail(status: StatusCode, text: impl Into<String>) -> MomError {
        MomError::Detail(status, text.into())
    }

    /// An unexpected failure: the reference answers 500 with the exception's text.
    pub(crate) fn internal(e: impl std::fmt::Display) -> MomError {
        tracing::error!(error = %e, "MOM API request failed");
        MomError::Detail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    pub(crate) fn not_found() -> MomError {
        MomError::detail(StatusCode::NOT_FOUND, "Not Found")
    }
}

impl IntoResponse for MomError {
    fn into_response(self) -> Response {
        match self {
            MomError::Detail(status, text) => (status, Json(json!({ "detail": text }))).into_response(),
            MomError::Invalid(errors) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": errors }))).into_response()
            }
            MomError::RateLimited(per_minute) => (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "error": format!("Rate limit exceeded: {per_minute} per 1 minute") })),
            )
                .into_response(),
            MomError::MethodNotAllowed(allow) => {
                let mut resp =
                    (StatusCode::METHOD_NOT_ALLOWED, Json(json!({ "detail": "Method Not Allowed" }))).into_response();
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                resp
            }
            MomError::Redirect(location) => match HeaderValue::from_str(&location) {
                Ok(v) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, v)]).into_response(),
                // A location that cannot be a header (it came from the request, so this does
                // not happen in practice) is simply not redirected to.
                Err(_) => MomError::not_found().into_response(),
            },
        }
    }
}
