//! `/metrics` in the Prometheus text format: the broker's destinations (depth, bytes,
//! in-flight, and the published, delivered, acked, dead-lettered and expired totals, per
//! destination and per subscription), the HTTP API's requests by route and status and the
//! gRPC API's calls by method and code, with their latency, and the log's fdatasync
//! latency. It answers without a token unless
//! `metrics.public` is off, and then only to admins.

use super::{bearer_token, ApiError, AppState};
use crate::auth::Role;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestLabels {
    destination: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubLabels {
    destination: String,
    subscription: String,
}

/// The APIs' own counters, updated by a middleware on every HTTP request and gRPC call.
pub(crate) struct HttpMetrics {
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    calls: Family<CallLabels, Counter>,
    call_latency: Family<CallLabels, Histogram>,
}

fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            calls: Family::default(),
            call_latency: Family::new_with_constructor(latency_buckets),
        }
    }
}

/// Counts a request and times it. The route is the matched pattern (`/v1/queues/{name}`),
/// so names do not multiply the series.
pub(super) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = RouteLabels { method, route, status: resp.status().as_u16() };
    state.http_metrics.requests.get_or_create(&labels).inc();
    state.http_metrics.latency.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    resp
}

/// Counts a gRPC call by method and status code, and times it to its response headers.
///
/// The code is the one in the response headers: a call that fails before answering carries
/// its status there (tonic's trailers-only response); one that answers is counted as `OK`,
/// even a stream that later ends with an error. Methods that no service has
/// (`UNIMPLEMENTED`) count as `unmatched`, so that clients cannot multiply the series.
pub(crate) async fn track_grpc(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let code = match resp.headers().get("grpc-status").map(|v| v.as_bytes()) {
        None | Some(b"0") => tonic::Code::Ok,
        Some(v) => tonic::Code::from_bytes(v),
    };
    let method = if code == tonic::Code::Unimplemented { "unmatched".to_string() } else { path };
    let labels = CallLabels { method, code: code_name(code) };
    state.http_metrics.calls.get_or_create(&labels).inc();
    state.http_metrics.call_latency.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    resp
}

/// The names the gRPC specification gives the codes.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The log's fdatasync histogram, as the log keeps it (it has no Prometheus dependency).
#[derive(Debug)]
struct SyncLatency(ferry_log::SyncStats);

impl EncodeMetric for SyncLatency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // The encoder wants counts per bucket and a final +Inf bucket (f64::MAX).
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|&(bound, cumulative)| {
                let n = cumulative.saturating_sub(below);
                below = cumulative;
                (bound, n)
            })
            .collect();
        buckets.push((f64::MAX, self.0.count.saturating_sub(below)));
        encoder.encode_histogram::<NoLabelSet>(self.0.sum.as_secs_f64(), self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// `GET /metrics`.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.metrics.public {
        let principal = match bearer_token(&headers).map(|t| state.auth.verify(t)) {
            None => {
                return ApiError::unauthorized("an Authorization: Bearer <token> header is required").into_response()
            }
            Some(Err(e)) => return ApiError::unauthorized(e.to_string()).into_response(),
            Some(Ok(p)) => p,
        };
        if principal.role != Role::Admin {
            return ApiError::new(StatusCode::FORBIDDEN, "forbidden", "/metrics is for admins on this server")
                .into_response();
        }
    }
    let mut registry = Registry::with_prefix("ferry");
    let gauge = || Family::<DestLabels, Gauge<u64, AtomicU64>>::default();
    let counter = || Family::<DestLabels, Counter>::default();
    let (depth, bytes, in_flight) = (gauge(), gauge(), gauge());
    let (published, delivered, acked, dead, expired) = (counter(), counter(), counter(), counter(), counter());
    let sub_depth = Family::<SubLabels, Gauge<u64, AtomicU64>>::default();
    let sub_in_flight = Family::<SubLabels, Gauge<u64, AtomicU64>>::default();
    for (name, _) in state.broker.list() {
        let Ok(d) = state.broker.describe(&name) else { continue };
        let l = DestLabels { destination: name.clone(), kind: d.kind.to_string() };
        depth.get_or_create(&l).set(d.stats.depth);
        bytes.get_or_create(&l).set(d.stats.bytes);
        in_flight.get_or_create(&l).set(d.stats.in_flight);
        published.get_or_create(&l).inc_by(d.stats.published);
        delivered.get_or_create(&l).inc_by(d.stats.delivered);
        acked.get_or_create(&l).inc_by(d.stats.acked);
        dead.get_or_create(&l).inc_by(d.stats.dead_lettered);
        expired.get_or_create(&l).inc_by(d.stats.expired);
        for (sub, s) in &d.subscriptions {
            let l = SubLabels { destination: name.clone(), subscription: sub.clone() };
            sub_depth.get_or_create(&l).set(s.depth);
            sub_in_flight.get_or_create(&l).set(s.in_flight);
        }
    }
    registry.register("destination_depth", "Messages stored", depth);
    registry.register("destination_bytes", "Bytes of stored message bodies", bytes);
    registry.register("destination_in_flight", "Messages leased and not settled", in_flight);
    registry.register("destination_published", "Messages published", published);
    registry.register("destination_delivered", "Deliveries, redeliveries included", delivered);
    registry.register("destination_acked", "Messages acked", acked);
    registry.register("destination_dead_lettered", "Messages moved to a dead-letter queue", dead);
    registry.register("destination_expired", "Messages dropped by TTL or retention", expired);
    registry.register("subscription_pending", "Messages a subscription has yet to deliver", sub_depth);
    registry.register("subscription_in_flight", "Messages a subscription has leased", sub_in_flight);
    registry.register("http_requests", "HTTP requests by route and status", state.http_metrics.requests.clone());
    registry.register("http_request_seconds", "HTTP request latency", state.http_metrics.latency.clone());
    registry.register("grpc_calls", "gRPC calls by method and status code", state.http_metrics.calls.clone());
    registry.register(
        "grpc_call_seconds",
        "gRPC call latency, to the response headers",
        state.http_metrics.call_latency.clone(),
    );
    registry.register(
        "log_fsync_seconds",
        "fdatasync latency of the broker's log",
        SyncLatency(state.broker.sync_stats()),
    );
    let mut text = String::new();
    match encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
