//! The one error type of the front doors: each error knows its HTTP status and a short
//! stable code. Over HTTP every error body is `{ "error": { "code", "message" } }`; gRPC
//! maps the same error onto a status code (`crate::grpc::status`).

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
    /// For 429: when the client may try again (`Retry-After`, in whole seconds).
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after_secs: None }
    }

    pub(crate) fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    /// `422 invalid_argument`: a request field out of range or missing.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument", message)
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
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
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
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
