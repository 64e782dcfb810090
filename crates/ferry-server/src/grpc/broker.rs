//! `ferry.v1.Broker`: destinations, publishing (unary and `PublishStream`), receiving and
//! settling, subscriptions and statistics. Each method converts its request, calls the
//! rule shared with REST in `crate::ops::destinations`, and converts the answer.

use super::auth::caller;
use super::convert;
use super::status::stream_error;
use crate::api::AppState;
use crate::auth::Principal;
use crate::ops::destinations::{self as ops, Need, Settle};
use ferry_broker::{Kind, SubscriptionSettings};
use ferry_proto::v1 as pb;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// Publish requests of one `PublishStream` in progress at once: enough for the log's group
/// commit to write many of them with one fdatasync, few enough to bound what one stream
/// holds.
const PUBLISH_IN_FLIGHT: usize = 64;

pub(crate) struct BrokerService {
    state: AppState,
    /// Cancelled when the server shuts down: streams end.
    stop: CancellationToken,
}

impl BrokerService {
    pub(crate) fn new(state: AppState, stop: CancellationToken) -> BrokerService {
        BrokerService { state, stop }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::broker_server::Broker for BrokerService {
    async fn list_destinations(
        &self,
        request: Request<pb::ListDestinationsRequest>,
    ) -> Reply<pb::ListDestinationsResponse> {
        let caller = caller(&request)?;
        let kind = convert::kind(request.get_ref().kind)?;
        let destinations = ops::visible(&self.state, &caller, kind).into_iter().map(convert::destination).collect();
        Ok(Response::new(pb::ListDestinationsResponse { destinations }))
    }

    async fn create_destination(&self, request: Request<pb::CreateDestinationRequest>) -> Reply<pb::Destination> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let kind = convert::required_kind(r.kind)?;
        let settings = r.settings.map(convert::settings_given).transpose()?;
        let d = ops::create(&self.state, &caller, kind, &r.name, settings).await?;
        Ok(Response::new(convert::destination(d)))
    }

    async fn describe_destination(&self, request: Request<pb::DestinationRef>) -> Reply<pb::Destination> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let d = ops::access(&self.state, &caller, &r.name, convert::kind(r.kind)?, Need::See)?;
        Ok(Response::new(convert::destination(d)))
    }

    async fn update_destination(&self, request: Request<pb::UpdateDestinationRequest>) -> Reply<pb::Destination> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let kind = convert::kind(r.kind)?;
        let changes = convert::settings_given(r.settings.unwrap_or_default())?;
        let d = ops::update(&self.state, &caller, &r.name, kind, changes).await?;
        Ok(Response::new(convert::destination(d)))
    }

    async fn delete_destination(&self, request: Request<pb::DestinationRef>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        ops::delete(&self.state, &caller, &r.name, convert::kind(r.kind)?).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn purge(&self, request: Request<pb::DestinationRef>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        ops::purge(&self.state, &caller, &r.name, convert::kind(r.kind)?).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn peek(&self, request: Request<pb::PeekRequest>) -> Reply<pb::Deliveries> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        // 0 means the default, as REST's absent `max`.
        let max = if r.max == 0 { 10 } else { r.max as usize };
        let got = ops::peek(&self.state, &caller, &r.name, convert::kind(r.kind)?, r.from_offset, max).await?;
        Ok(Response::new(convert::deliveries(got)))
    }

    async fn publish(&self, request: Request<pb::PublishRequest>) -> Reply<pb::PublishResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let published =
            ops::publish(&self.state, &caller, &r.destination, None, || convert::messages(r.messages)).await?;
        Ok(Response::new(pb::PublishResponse {
            published: published.into_iter().map(convert::published).collect(),
            sequence: r.sequence,
            error: None,
        }))
    }

    type PublishStreamStream = ReceiverStream<Result<pb::PublishResponse, Status>>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishRequest>>,
    ) -> Reply<Self::PublishStreamStream> {
        let caller = Arc::new(caller(&request)?);
        let (tx, rx) = mpsc::channel(PUBLISH_IN_FLIGHT);
        tokio::spawn(publish_stream(self.state.clone(), caller, request.into_inner(), tx, self.stop.clone()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn receive(&self, request: Request<pb::ReceiveRequest>) -> Reply<pb::Deliveries> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let receive = ops::Receive {
            // 0 means 1, as REST's absent `max`.
            max: r.max.max(1),
            wait_ms: r.wait_ms,
            visibility_ms: r.visibility_ms,
            auto_ack: r.auto_ack,
        };
        // Bounded by `limits.max_wait_ms`, a long poll may delay a shutdown as long as it
        // does over REST. It is not cut short: a receive dropped half-way through its write
        // would stall the broker's ordered apply (see `consume`).
        let got = ops::receive(&self.state, &caller, &r.destination, r.subscription.as_deref(), receive).await?;
        Ok(Response::new(convert::deliveries(got)))
    }

    async fn ack(&self, request: Request<pb::SettleRequest>) -> Reply<pb::SettleResponse> {
        self.settle(request, |_| Settle::Ack).await
    }

    async fn nack(&self, request: Request<pb::SettleRequest>) -> Reply<pb::SettleResponse> {
        self.settle(request, |r| Settle::Nack { delay_ms: r.delay_ms }).await
    }

    async fn extend(&self, request: Request<pb::SettleRequest>) -> Reply<pb::SettleResponse> {
        // 0 is proto3's "unset", and extending by nothing is no extension: required.
        self.settle(request, |r| Settle::Extend { visibility_ms: Some(r.visibility_ms).filter(|&v| v > 0) }).await
    }

    type ConsumeStream = ReceiverStream<Result<pb::ConsumeResponse, Status>>;

    async fn consume(&self, request: Request<Streaming<pb::ConsumeRequest>>) -> Reply<Self::ConsumeStream> {
        let caller = caller(&request)?;
        let stream = super::consume::start(self.state.clone(), caller, request.into_inner(), self.stop.clone()).await?;
        Ok(Response::new(stream))
    }

    async fn list_subscriptions(&self, request: Request<pb::TopicRef>) -> Reply<pb::ListSubscriptionsResponse> {
        let caller = caller(&request)?;
        let subs = ops::subscriptions(&self.state, &caller, &request.get_ref().topic)?;
        let subscriptions = subs.iter().map(|(name, s)| (name.clone(), convert::stats(s))).collect();
        Ok(Response::new(pb::ListSubscriptionsResponse { subscriptions }))
    }

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Reply<pb::Subscription> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let settings = SubscriptionSettings {
            start: convert::start_at(r.start).unwrap_or_default(),
            filter: r.filter,
            no_local: r.no_local,
            visibility_timeout_ms: r.visibility_timeout_ms,
            max_deliveries: r.max_deliveries,
        };
        let stats = ops::subscribe(&self.state, &caller, &r.topic, &r.name, settings).await?;
        Ok(Response::new(pb::Subscription { topic: r.topic, name: r.name, stats: Some(convert::stats(&stats)) }))
    }

    async fn unsubscribe(&self, request: Request<pb::SubscriptionRef>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        ops::unsubscribe(&self.state, &caller, &r.topic, &r.name).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn seek(&self, request: Request<pb::SeekRequest>) -> Reply<pb::Empty> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let to = convert::start_at(r.to)
            .ok_or_else(|| crate::api::ApiError::invalid("to: new, earliest, offset or time_ms is required"))?;
        ops::seek(&self.state, &caller, &r.topic, &r.name, to).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn get_stats(&self, request: Request<pb::StatsRequest>) -> Reply<pb::ServerStats> {
        let caller = caller(&request)?;
        let mut out = pb::ServerStats { totals: Some(pb::Stats::default()), ..Default::default() };
        let mut t = pb::Stats::default();
        for d in ops::visible(&self.state, &caller, None) {
            match d.kind {
                Kind::Queue => out.queues += 1,
                Kind::Topic => out.topics += 1,
            }
            out.subscriptions += d.subscriptions.len() as u64;
            let s = &d.stats;
            t.depth = t.depth.saturating_add(s.depth);
            t.bytes = t.bytes.saturating_add(s.bytes);
            t.in_flight = t.in_flight.saturating_add(s.in_flight);
            t.delivered = t.delivered.saturating_add(s.delivered);
            t.acked = t.acked.saturating_add(s.acked);
            t.dead_lettered = t.dead_lettered.saturating_add(s.dead_lettered);
            t.expired = t.expired.saturating_add(s.expired);
            t.published = t.published.saturating_add(s.published);
            t.oldest_age_ms = t.oldest_age_ms.max(s.oldest_age_ms);
        }
        out.totals = Some(t);
        Ok(Response::new(out))
    }
}

impl BrokerService {
    async fn settle(
        &self,
        request: Request<pb::SettleRequest>,
        action: impl FnOnce(&pb::SettleRequest) -> Settle,
    ) -> Reply<pb::SettleResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let action = action(&r);
        let settled =
            ops::settle(&self.state, &caller, &r.destination, r.subscription.as_deref(), action, &r.leases).await?;
        Ok(Response::new(convert::settled(settled)))
    }
}

/// Runs one `PublishStream`: reads requests while fewer than [`PUBLISH_IN_FLIGHT`] are in
/// progress, publishes them concurrently (so that the group commit batches them), and
/// answers each as it becomes durable, with its `sequence`. A failed request gets an
/// answer with `error` set; the stream goes on. When the client ends its side (or the
/// server shuts down) the requests in progress are still answered, then the stream ends.
///
/// Each publish runs on a task of its own. The broker applies commands in log order, and
/// a command reaches the apply through the future that wrote it: a publish future left
/// unpolled while this loop waits for a slow client would hold up every other writer of the
/// broker, and one dropped half-way (the client gone) would hold them up for good.
async fn publish_stream(
    state: AppState,
    caller: Arc<Principal>,
    mut inbound: Streaming<pb::PublishRequest>,
    tx: mpsc::Sender<Result<pb::PublishResponse, Status>>,
    stop: CancellationToken,
) {
    let mut running = FuturesUnordered::new();
    let mut reading = true;
    let mut stopped = false;
    while reading || !running.is_empty() {
        tokio::select! {
            next = inbound.message(), if reading && running.len() < PUBLISH_IN_FLIGHT => match next {
                Ok(Some(r)) => {
                    let sequence = r.sequence;
                    let task = tokio::spawn(publish_one(state.clone(), caller.clone(), r));
                    running.push(async move {
                        task.await.unwrap_or_else(|e| pb::PublishResponse {
                            published: Vec::new(),
                            sequence,
                            error: Some(stream_error(&crate::api::ApiError::internal(e.to_string()))),
                        })
                    });
                }
                // The client finished, or went away: answer what is in progress.
                Ok(None) | Err(_) => reading = false,
            },
            Some(answer) = running.next() => {
                let sent = tokio::select! {
                    biased;
                    sent = tx.send(Ok(answer)) => sent.is_ok(),
                    // A client that stops reading does not hold up a shutdown.
                    () = stop.cancelled() => false,
                };
                if !sent {
                    return; // nobody is listening any more
                }
            }
            () = stop.cancelled(), if reading => {
                reading = false;
                stopped = true;
            }
            else => break,
        }
    }
    if stopped {
        let status = Err(Status::unavailable("the server is shutting down"));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tx.send(status)).await;
    }
}

/// One request of a `PublishStream`: counted against the caller's request rate like one
/// REST publish, then published.
async fn publish_one(state: AppState, caller: Arc<Principal>, r: pb::PublishRequest) -> pb::PublishResponse {
    let sequence = r.sequence;
    let result = match crate::ops::users::take_rate(&state, &caller.name) {
        Ok(()) => ops::publish(&state, &caller, &r.destination, None, || convert::messages(r.messages)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(published) => pb::PublishResponse {
            published: published.into_iter().map(convert::published).collect(),
            sequence,
            error: None,
        },
        Err(e) => pb::PublishResponse { published: Vec::new(), sequence, error: Some(stream_error(&e)) },
    }
}
