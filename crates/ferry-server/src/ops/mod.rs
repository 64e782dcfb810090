//! What the front doors do, written once. REST `/v1` and gRPC decode their requests their
//! own way, then call these functions, which check who may do what, check the arguments,
//! call the broker or the user store, and fail with an [`ApiError`] (a status and a short
//! code), which each front door turns into its own kind of error. A rule lives here so
//! that the two doors cannot drift apart.
//!
//! [`ApiError`]: crate::api::ApiError

pub(crate) mod destinations;
pub(crate) mod users;
