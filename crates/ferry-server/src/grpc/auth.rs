//! Who a gRPC call comes from: the `authorization: Bearer <token or fk_ API key>`
//! metadata entry, checked by an interceptor before the call reaches its service, the same
//! way and with the same per-principal rate limit as REST's `Authorization` header. The
//! principal travels to the method in the request's extensions.

use super::status::status;
use crate::api::{self, ApiError, AppState};
use crate::auth::Principal;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The interceptor in front of `Broker` and `Users` (not `Auth`: logging in needs no token).
#[derive(Clone)]
pub(crate) struct Authenticate(pub(crate) AppState);

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = request.metadata().get("authorization").map(|v| v.to_str());
        let token = match value {
            Some(Ok(v)) => api::bearer(v),
            _ => None,
        };
        let Some(token) = token else {
            return Err(status(ApiError::unauthorized(
                "an `authorization: Bearer <token>` metadata entry is required (a token from \
                 ferry.v1.Auth/Login or an API key)",
            )));
        };
        let principal = crate::ops::users::authenticate(&self.0, token).map_err(status)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The principal the interceptor found for this call.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    // Every authenticated service sits behind the interceptor; a call without a principal
    // would be a wiring mistake, refused rather than served anonymously.
    request.extensions().get::<Principal>().cloned().ok_or_else(|| Status::unauthenticated("not authenticated"))
}
