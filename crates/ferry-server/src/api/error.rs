//! The one error type of the HTTP API: each variant knows its status, and every error body
//! is `{ "error": { "code", "message" } }`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// Every error body.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable code for programs, a message for people.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<ferry_broker::Error> for ApiError {
    fn from(e: ferry_broker::Error) -> ApiError {
        use ferry_broker::Error as E;
        let (status, code) = match &e {
            E::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid_name"),
            E::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            E::SubscriptionNotFound { .. } => (StatusCode::NOT_FOUND, "subscription_not_found"),
            E::AlreadyExists { .. } => (StatusCode::CONFLICT, "already_exists"),
            E::MessageTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "message_too_large"),
            E::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument"),
            E::UnknownLease { .. } => (StatusCode::NOT_FOUND, "unknown_lease"),
            E::LeaseExpired { .. } => (StatusCode::CONFLICT, "lease_expired"),
            E::WrongKind(_) => (StatusCode::BAD_REQUEST, "wrong_kind"),
            E::Closed => (StatusCode::SERVICE_UNAVAILABLE, "closed"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
