//! Errors as gRPC sees them. Every failure is first an [`ApiError`] (the status and short
//! code REST answers with), so the two front doors agree on what went wrong; this maps the
//! HTTP status onto a gRPC status code, and keeps REST's short code in the `ferry-reason`
//! metadata entry (and in [`Error::reason`] inside streams), so that programs can tell
//! `not_found` from `subscription_not_found` without parsing messages.

use crate::api::ApiError;
use axum::http::StatusCode;
use ferry_proto::v1::Error;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata key that carries REST's short error code.
pub(crate) const REASON: &str = "ferry-reason";

/// The gRPC code for an error. 409 is `AlreadyExists`, except when the conflict is a state
/// the caller must change first (the last admin, an expired lease): `FailedPrecondition`.
fn code(e: &ApiError) -> Code {
    match e.status() {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
        // A message over the destination's size limit: retrying cannot help, the request
        // must change.
        StatusCode::PAYLOAD_TOO_LARGE => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT if e.code() == "already_exists" => Code::AlreadyExists,
        StatusCode::CONFLICT => Code::FailedPrecondition,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::INTERNAL_SERVER_ERROR => Code::Internal,
        _ => Code::Unknown,
    }
}

/// The status of a failed call, with the short code in `ferry-reason` and, when the
/// client may retry later, the seconds to wait in `retry-after`.
pub(crate) fn status(e: ApiError) -> Status {
    let mut s = Status::new(code(&e), e.message());
    if let Ok(reason) = MetadataValue::try_from(e.code()) {
        s.metadata_mut().insert(REASON, reason);
    }
    if let Some(secs) = e.retry_after_secs() {
        s.metadata_mut().insert("retry-after", MetadataValue::from(secs));
    }
    s
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        status(e)
    }
}

/// The same error as a stream message, where a status would end the stream.
pub(crate) fn stream_error(e: &ApiError) -> Error {
    Error { code: code(e) as i32, reason: e.code().to_string(), message: e.message().to_string() }
}

/// Failures of the broker map through [`ApiError`], as over REST.
pub(crate) fn broker(e: ferry_broker::Error) -> Status {
    status(ApiError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_grpc_codes_and_keep_their_reason() {
        let cases = [
            (ApiError::invalid("x"), Code::InvalidArgument, "invalid_argument"),
            (ApiError::unauthorized("x"), Code::Unauthenticated, "unauthorized"),
            (ApiError::forbidden("x"), Code::PermissionDenied, "forbidden"),
            (ApiError::new(StatusCode::CONFLICT, "last_admin", "x"), Code::FailedPrecondition, "last_admin"),
            (
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "x"),
                Code::ResourceExhausted,
                "rate_limited",
            ),
            (ApiError::internal("x"), Code::Internal, "internal"),
        ];
        for (e, want, reason) in cases {
            let s = status(e);
            assert_eq!(s.code(), want);
            assert_eq!(s.metadata().get(REASON).and_then(|v| v.to_str().ok()), Some(reason));
        }
        let not_found = ferry_broker::Error::NotFound { kind: None, name: "q".into() };
        assert_eq!(broker(not_found).code(), Code::NotFound);
        let exists = ferry_broker::Error::AlreadyExists { what: "queue".into(), name: "q".into() };
        assert_eq!(broker(exists).code(), Code::AlreadyExists);
        let too_large = ferry_broker::Error::MessageTooLarge { size: 2, max: 1 };
        assert_eq!(broker(too_large).code(), Code::InvalidArgument);
        assert_eq!(broker(ferry_broker::Error::Closed).code(), Code::Unavailable);
        let e = stream_error(&ApiError::forbidden("no"));
        assert_eq!((e.code, e.reason.as_str()), (Code::PermissionDenied as i32, "forbidden"));
    }
}
