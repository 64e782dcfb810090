//! `Broker/Consume`: consuming over one bidirectional stream with flow-control credits.
//!
//! The client's first message is a `start` (what to consume, the first credits). The
//! server then keeps at most as many delivered, un-settled messages with the client as it
//! was granted credits: an ack or nack of one of them frees its credit, a `credit` message
//! grants more (up to [`MAX_CREDIT`] in all), an `extend` keeps a lease and its credit.
//! With `auto_ack` (at most once), messages are settled as they are taken: each delivery
//! uses up its credit, and only `credit` messages grant more.
//! Every ack, nack and extend is answered on the same stream with a `settled` message, in
//! request order.
//!
//! Receiving waits in the broker's long poll, on a task of its own, while the stream keeps
//! reading the client's messages, so acks are settled while no message is there to
//! deliver. The receive is a task rather than a future of this loop because the broker
//! applies commands in log order and a command reaches the apply through the future that
//! wrote it: a receive future left unpolled while the loop settles an ack would hold up
//! that ack (and every other writer of the broker), and one dropped half-way would hold
//! them up for good.
//!
//! When the client ends its side or goes away, or the server shuts down, the receive in
//! progress is let finish (it waits at most [`POLL`]), and every lease still out is nacked,
//! so that its message goes to another consumer now rather than when its visibility
//! timeout runs out.

use super::convert;
use super::status::broker;
use crate::api::AppState;
use crate::auth::Principal;
use crate::ops::destinations::{self as ops, Settle, MAX_LEASES};
use ferry_broker::{ReceiveRequest, ReceivedMessage};
use ferry_proto::v1 as pb;
use pb::consume_request::Request as In;
use pb::consume_response::Response as Out;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

/// The most credits a client may hold (granted and not used or freed).
const MAX_CREDIT: usize = 10_000;
/// The most messages taken from the broker in one receive: the broker's own limit. Each
/// receive is one command through the log, so a large credit window is filled with few.
const BATCH: usize = ferry_broker::MAX_RECEIVE_BATCH as usize;
/// How long one receive waits before it is asked again (the stream itself waits as long as
/// the client wants): also how long a closed stream may take to give its leases back.
const POLL: Duration = Duration::from_secs(1);
/// How long the client has to send its `start`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses buffered towards a slow client before the stream waits for it.
const OUTGOING: usize = 64;

type Tx = mpsc::Sender<Result<pb::ConsumeResponse, Status>>;

/// Starts serving one `Consume` call. The `start` message is read and checked before the
/// response begins, so that a missing destination or permission is the call's status (a
/// client sees it where it opens the stream); later errors end the stream with theirs.
pub(crate) async fn start(
    state: AppState,
    caller: Principal,
    mut inbound: Streaming<pb::ConsumeRequest>,
    stop: CancellationToken,
) -> Result<ReceiverStream<Result<pb::ConsumeResponse, Status>>, Status> {
    let first = tokio::select! {
        first = tokio::time::timeout(START_TIMEOUT, inbound.message()) => first
            .map_err(|_| Status::invalid_argument("no `start` message within 30 s"))??,
        () = stop.cancelled() => return Err(shutting_down()),
    };
    let Some(In::Start(start)) = first.and_then(|m| m.request) else {
        return Err(Status::invalid_argument("the first message of a Consume stream must be `start`"));
    };
    ops::consumable(&state, &caller, &start.destination, start.subscription.as_deref())?;
    let (tx, rx) = mpsc::channel(OUTGOING);
    tokio::spawn(async move {
        if let Err(status) = run(&state, &caller, start, inbound, &tx, &stop).await {
            // The client may have stopped reading; the status is not worth waiting for.
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Err(status))).await;
        }
    });
    Ok(ReceiverStream::new(rx))
}

async fn run(
    state: &AppState,
    caller: &Principal,
    start: pb::ConsumeStart,
    mut inbound: Streaming<pb::ConsumeRequest>,
    tx: &Tx,
    stop: &CancellationToken,
) -> Result<(), Status> {
    let mut consumer = Consumer {
        state: state.clone(),
        name: start.destination,
        sub: start.subscription,
        request: ReceiveRequest {
            max: 1,
            visibility_ms: start.visibility_ms,
            auto_ack: start.auto_ack,
            consumer: Some(caller.name.clone()),
        },
        credits: (start.credit as usize).min(MAX_CREDIT),
        outstanding: HashSet::new(),
        receiving: None,
    };
    let served = consumer.serve(&mut inbound, tx, stop).await;
    consumer.give_back().await;
    served
}

fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down")
}

struct Consumer {
    state: AppState,
    name: String,
    sub: Option<String>,
    /// The receive every delivery comes from (its `max` set per call).
    request: ReceiveRequest,
    /// Credits granted: how many un-settled deliveries the client may hold.
    credits: usize,
    /// Leases delivered on this stream and not yet settled.
    outstanding: HashSet<u64>,
    /// The receive in progress, if any.
    receiving: Option<JoinHandle<ferry_broker::Result<Vec<ReceivedMessage>>>>,
}

impl Consumer {
    async fn serve(
        &mut self,
        inbound: &mut Streaming<pb::ConsumeRequest>,
        tx: &Tx,
        stop: &CancellationToken,
    ) -> Result<(), Status> {
        loop {
            let room = self.credits.saturating_sub(self.outstanding.len());
            if self.receiving.is_none() && room > 0 {
                self.receiving = Some(self.receive(room.min(BATCH)));
            }
            tokio::select! {
                () = stop.cancelled() => return Err(shutting_down()),
                next = inbound.message() => match next {
                    Ok(Some(m)) => self.handle(m, tx, stop).await?,
                    // The client finished, or went away.
                    Ok(None) | Err(_) => return Ok(()),
                },
                got = async {
                    match self.receiving.as_mut() {
                        Some(task) => task.await,
                        None => std::future::pending().await,
                    }
                }, if self.receiving.is_some() => {
                    self.receiving = None;
                    let got = got.map_err(|e| Status::internal(e.to_string()))?.map_err(broker)?;
                    if self.request.auto_ack {
                        // Nothing to settle: the credits are spent.
                        self.credits = self.credits.saturating_sub(got.len());
                    }
                    for m in got {
                        if let Some(lease) = m.lease {
                            self.outstanding.insert(lease);
                        }
                        let out = pb::ConsumeResponse { response: Some(Out::Delivery(convert::delivery(m))) };
                        if !send(tx, out, stop).await? {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Starts a receive of up to `max` messages on a task of its own.
    fn receive(&self, max: usize) -> JoinHandle<ferry_broker::Result<Vec<ReceivedMessage>>> {
        let broker = self.state.broker.clone();
        let (name, sub) = (self.name.clone(), self.sub.clone());
        // `max` is at most BATCH, which fits.
        let request = ReceiveRequest { max: u32::try_from(max).unwrap_or(1), ..self.request.clone() };
        tokio::spawn(async move { broker.receive(&name, sub.as_deref(), request, POLL).await })
    }

    /// One client message after the start.
    async fn handle(&mut self, m: pb::ConsumeRequest, tx: &Tx, stop: &CancellationToken) -> Result<(), Status> {
        let (action, leases) = match m.request {
            Some(In::Credit(n)) => {
                self.credits = self.credits.saturating_add(n as usize).min(MAX_CREDIT);
                return Ok(());
            }
            Some(In::Ack(l)) => (Settle::Ack, l.leases),
            Some(In::Nack(n)) => (Settle::Nack { delay_ms: n.delay_ms }, n.leases),
            // 0 is proto3's "unset": extending by nothing is no extension.
            Some(In::Extend(e)) => {
                (Settle::Extend { visibility_ms: Some(e.visibility_ms).filter(|&v| v > 0) }, e.leases)
            }
            Some(In::Start(_)) => return Err(Status::invalid_argument("`start` comes once, first")),
            None => return Err(Status::invalid_argument("an empty Consume request")),
        };
        let settled = ops::settle_leases(&self.state, &self.name, self.sub.as_deref(), action, &leases).await?;
        if !matches!(action, Settle::Extend { .. }) {
            // Acked or nacked, or no longer ours (unknown, expired): the credit is free.
            for lease in &leases {
                self.outstanding.remove(lease);
            }
        }
        let out = pb::ConsumeResponse { response: Some(Out::Settled(convert::settled(settled))) };
        send(tx, out, stop).await?;
        Ok(())
    }

    /// Waits for the receive in progress, then nacks every lease still out, so that their
    /// messages are redelivered now. (Nacking first would let that receive take them again,
    /// for nobody.)
    async fn give_back(&mut self) {
        if let Some(task) = self.receiving.take() {
            if let Ok(Ok(got)) = task.await {
                self.outstanding.extend(got.iter().filter_map(|m| m.lease));
            }
        }
        let leases: Vec<u64> = self.outstanding.drain().collect();
        for chunk in leases.chunks(MAX_LEASES) {
            let nack = Settle::Nack { delay_ms: 0 };
            if let Err(e) = ops::settle_leases(&self.state, &self.name, self.sub.as_deref(), nack, chunk).await {
                // They come back anyway when their visibility timeout runs out.
                tracing::debug!(destination = %self.name, error = e.message(), "cannot nack a closed stream's leases");
            }
        }
    }
}

/// Sends a response, waiting while the client is slow; `false` when the client is gone.
async fn send(tx: &Tx, out: pb::ConsumeResponse, stop: &CancellationToken) -> Result<bool, Status> {
    tokio::select! {
        sent = tx.send(Ok(out)) => Ok(sent.is_ok()),
        () = stop.cancelled() => Err(shutting_down()),
    }
}
