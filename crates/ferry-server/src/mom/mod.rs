//! The MOM-compatible HTTP API under `/api/v1.0.0/MomServer`: the routes of an existing
//! MOM server (FastAPI + Redis), served over ferry's own data so that that server's clients
//! work against ferry unchanged. Its users are ferry's users, its queues and topics are
//! ferry's queues and topics (visible under `/v1`), and its tokens are ferry's tokens.
//!
//! The reference's quirks are reproduced on purpose, because its clients depend on them:
//! business failures are HTTP 200 with `{"success": false, "message"}`, errors are
//! FastAPI's `{"detail": ...}`, validation errors are pydantic's, rate limits are slowapi's
//! fixed windows per client IP and path, and the paths keep their trailing slashes (with
//! Starlette's 307 redirect when a client leaves one out or adds one).
//!
//! What lives where: `routes` puts the pieces together; `routing` has the route
//! table, the handlers and the 404/405/307 answers; `ops` maps each MOM operation onto the
//! broker; `request`, `bearer` and `validate` read a request the way FastAPI does (body,
//! bearer token, pydantic models); `errors` shapes the error bodies; `ratelimit` is the
//! fixed-window limiter; `subscribers` keeps the queue subscriber sets, the one piece of MOM
//! state ferry's broker has no place for.

mod bearer;
mod errors;
mod ops;
mod ratelimit;
mod request;
mod routing;
mod subscribers;
mod validate;

pub(crate) use ops::SUBSCRIPTION_PREFIX;

use crate::api::AppState;
use axum::{Extension, Router};
use std::sync::Arc;

/// Where the API lives: `/api/{API_VERSION}/{API_NAME}` of the reference.
pub const BASE_PATH: &str = "/api/v1.0.0/MomServer";

/// What the MOM handlers share beyond [`AppState`]: the rate limiter and the queue
/// subscriber sets.
pub(crate) struct Mom {
    limiter: ratelimit::FixedWindow,
    subscribers: Arc<subscribers::Subscribers>,
}

/// The MOM routes, with their full paths (merge them into the top-level router). Reads the
/// queue subscriber sets from the data directory; if that fails, it is logged and retried
/// on the next request that needs them, which answers 500 until then.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let mom = Arc::new(Mom {
        limiter: ratelimit::FixedWindow::default(),
        subscribers: Arc::new(subscribers::Subscribers::open(&state.config.data_dir)),
    });
    routing::router().layer(Extension(mom))
}
