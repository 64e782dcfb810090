//! The gRPC API (tonic), on a port of its own: `ferry.v1.Broker`, `ferry.v1.Users` and
//! `ferry.v1.Auth` from `proto/ferry/v1`, with gRPC health checking (`grpc.health.v1`) and
//! server reflection (v1 and v1alpha), so that grpcurl and other generic tools work
//! without the .proto files.
//!
//! The services decode protobuf (`convert`), call the same rules as REST
//! (`crate::ops`) and map errors onto gRPC codes (`status`). `auth` checks the bearer
//! token of every call but `Auth/Login`; `consume` is the bidirectional consume stream with
//! credits. TLS, when configured, is `[tls]`'s certificate, with ALPN `h2`.
//!
//! Streams end when the server shuts down (consume streams with `UNAVAILABLE`, after giving
//! their leases back), so that a graceful stop never waits on a client that keeps a stream
//! open.

mod auth;
mod broker;
mod consume;
mod convert;
mod status;
mod users;

use crate::api::AppState;
use crate::listener::HttpListener;
use crate::ServerError;
use ferry_proto::v1::auth_server::AuthServer;
use ferry_proto::v1::broker_server::BrokerServer;
use ferry_proto::v1::users_server::UsersServer;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// The gRPC side of a server, built before it serves (a broken descriptor set fails
/// `Server::start`, not the first call).
pub(crate) struct Grpc {
    routes: Routes,
    health: HealthReporter,
}

/// The services health checking reports on; "" is the server as a whole.
const SERVICES: [&str; 4] = [
    "",
    ferry_proto::v1::broker_server::SERVICE_NAME,
    ferry_proto::v1::users_server::SERVICE_NAME,
    ferry_proto::v1::auth_server::SERVICE_NAME,
];

impl Grpc {
    /// The services over `state`; their streams end when `stop` is cancelled.
    pub(crate) async fn new(state: &AppState, stop: &CancellationToken) -> Result<Grpc, ServerError> {
        // Requests are limited like HTTP bodies; replies are not (a peek or a receive of
        // large messages may be larger than any request).
        let limit = state.config.limits.max_body_bytes;
        let authenticate = auth::Authenticate(state.clone());
        let broker =
            BrokerServer::new(broker::BrokerService::new(state.clone(), stop.clone())).max_decoding_message_size(limit);
        let users = UsersServer::new(users::UsersService(state.clone())).max_decoding_message_size(limit);
        let login = AuthServer::new(users::AuthService(state.clone())).max_decoding_message_size(limit);
        let reflection = |e: tonic_reflection::server::Error| ServerError::Io {
            what: "building gRPC server reflection".into(),
            source: std::io::Error::other(e),
        };
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ferry_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(reflection)?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ferry_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(reflection)?;
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in SERVICES {
            health.set_service_status(name, ServingStatus::Serving).await;
        }
        let routes = Routes::new(InterceptedService::new(broker, authenticate.clone()))
            .add_service(InterceptedService::new(users, authenticate))
            .add_service(login)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let track = axum::middleware::from_fn_with_state(state.clone(), crate::api::metrics::track_grpc);
        let routes = Routes::from(routes.into_axum_router().layer(track));
        Ok(Grpc { routes, health })
    }

    /// Serves on `listener` until `stop` is cancelled, then finishes the calls in flight.
    pub(crate) async fn serve(self, listener: HttpListener, stop: CancellationToken) -> Result<(), ServerError> {
        let health = self.health;
        let signal = async move {
            stop.cancelled().await;
            // Watchers (load balancers) see the server go before its port does.
            for name in SERVICES {
                health.set_service_status(name, ServingStatus::NotServing).await;
            }
        };
        let mut server = tonic::transport::Server::builder();
        let router = server.add_routes(self.routes);
        let served = match listener {
            HttpListener::Plain(tcp) => {
                let incoming = tonic::transport::server::TcpIncoming::from(tcp).with_nodelay(Some(true));
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
            HttpListener::Tls(tls) => {
                // The listener's own tasks did the handshakes, each with a time limit.
                let incoming = futures::stream::unfold(tls, |mut tls| async move {
                    let (stream, _) = tls.accept().await;
                    Some((Ok::<_, std::io::Error>(stream), tls))
                });
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        };
        served.map_err(|e| ServerError::Io { what: "serving gRPC".into(), source: std::io::Error::other(e) })
    }
}
