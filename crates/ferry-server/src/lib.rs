//! `ferry serve`: the broker behind its front doors.
//!
//! [`Server::start`] opens the data directory (the broker's log and snapshots, the user
//! store, the token secret), binds the HTTP listener (and the gRPC one, when `[grpc]` is
//! enabled) and serves [`api::router`] and the gRPC services until the shutdown future
//! completes; then it stops accepting, finishes the requests in flight and closes the
//! broker cleanly.
//!
//! REST and gRPC are two encodings of one API: both call the rules in `ops` (who may do
//! what, defaults, bounds), and both report failures as an [`api::ApiError`].
//!
//! ```no_run
//! # async fn example() -> Result<(), ferry_server::ServerError> {
//! let config = ferry_server::Config::default();
//! let server = ferry_server::Server::start(config).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
mod grpc;
mod listener;
pub mod mom;
mod ops;

pub use config::{Config, ConfigError};
pub use listener::ClientAddr;

use auth::Auth;
use axum::extract::{ConnectInfo, Request};
use ferry_broker::Broker;
use listener::{Alpn, HttpListener};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The broker's data could not be opened or closed.
    #[error("broker: {0}")]
    Broker(#[from] ferry_broker::Error),
    /// The user store could not be opened.
    #[error("users: {0}")]
    Auth(#[from] auth::AuthError),
    /// The listener could not be bound, or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A started server: bound, with its data open.
pub struct Server {
    listener: HttpListener,
    /// The gRPC listener and services, when enabled.
    grpc: Option<(HttpListener, grpc::Grpc)>,
    /// Cancelled once, when serving stops: HTTP, gRPC and their streams all stop on it.
    stop: CancellationToken,
    state: api::AppState,
    broker: Broker,
    generated_password: Option<String>,
}

impl Server {
    /// Validates `config`, opens the data directory and binds the HTTP listener, and the
    /// gRPC listener when `[grpc]` is enabled.
    ///
    /// # Errors
    ///
    /// [`ServerError`] naming what failed.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        config.validate()?;
        // The port and the TLS files first: a bad one fails before the data is touched.
        let listener = HttpListener::bind(config.http, config.tls.as_ref(), Alpn::Http1).await?;
        let grpc_listener = match config.grpc.enabled {
            true => Some(HttpListener::bind(config.grpc.listen, config.tls.as_ref(), Alpn::H2).await?),
            false => None,
        };
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|source| ServerError::Io { what: format!("creating {}", dir.display()), source })?;
        let broker = Broker::open(dir.join("broker")).await?;
        let (auth, generated_password) = {
            let (dir, user, password, ttl) =
                (dir.clone(), config.admin.user.clone(), config.admin.password.clone(), config.auth.token_ttl_secs);
            tokio::task::spawn_blocking(move || Auth::open(&dir, &user, password.as_deref(), ttl)).await.map_err(
                |e| ServerError::Io { what: "opening the user store".into(), source: std::io::Error::other(e) },
            )??
        };
        let state = api::AppState::new(broker.clone(), Arc::new(auth), Arc::new(config));
        let stop = CancellationToken::new();
        let grpc = match grpc_listener {
            Some(l) => Some((l, grpc::Grpc::new(&state, &stop).await?)),
            None => None,
        };
        Ok(Server { listener, grpc, stop, state, broker, generated_password })
    }

    /// The address the HTTP listener is bound to (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        axum::serve::Listener::local_addr(&self.listener).unwrap_or(self.state.config.http)
    }

    /// The base URL clients use: `https://…` with TLS, `http://…` without.
    pub fn url(&self) -> String {
        let scheme = if self.listener.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The address the gRPC listener is bound to (port 0 resolved), if gRPC is enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.grpc.as_ref()?;
        Some(axum::serve::Listener::local_addr(listener).unwrap_or(self.state.config.grpc.listen))
    }

    /// The gRPC endpoint clients use, `https://…` with TLS, `http://…` without, if gRPC is
    /// enabled.
    pub fn grpc_url(&self) -> Option<String> {
        let scheme = if self.grpc.as_ref()?.0.is_tls() { "https" } else { "http" };
        Some(format!("{scheme}://{}", self.grpc_addr()?))
    }

    /// The admin password made at first start, if one was: print it once.
    pub fn generated_password(&self) -> Option<&str> {
        self.generated_password.as_deref()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Serves HTTP (and gRPC) until `shutdown` completes, then lets the requests in flight
    /// finish and closes the broker cleanly. If one of the two stops with an error, the
    /// other is stopped too.
    ///
    /// # Errors
    ///
    /// [`ServerError::Io`] if serving fails, [`ServerError::Broker`] if closing does.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        let stop = self.stop;
        // Handlers that want the client's address take `ConnectInfo<SocketAddr>`, whichever
        // listener (plain or TLS) the connection came through.
        let app = api::router(self.state).layer(axum::middleware::map_request(|mut req: Request| async move {
            if let Some(&ConnectInfo(ClientAddr(addr))) = req.extensions().get::<ConnectInfo<ClientAddr>>() {
                req.extensions_mut().insert(ConnectInfo(addr));
            }
            req
        }));
        let http = async {
            let served = axum::serve(self.listener, app.into_make_service_with_connect_info::<ClientAddr>())
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .await;
            stop.cancel();
            served.map_err(|source| ServerError::Io { what: "serving HTTP".into(), source })
        };
        let grpc = async {
            let Some((listener, grpc)) = self.grpc else { return Ok(()) };
            let served = grpc.serve(listener, stop.clone()).await;
            stop.cancel();
            served
        };
        let trigger = async {
            tokio::select! {
                () = shutdown => stop.cancel(),
                () = stop.cancelled() => {}
            }
        };
        let (http, grpc, ()) = tokio::join!(http, grpc, trigger);
        let closed = self.broker.close().await;
        http?;
        grpc?;
        closed.map_err(ServerError::from)
    }
}
