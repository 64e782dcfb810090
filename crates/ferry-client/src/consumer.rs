//! [`Consumer`]: a stream of messages over the server's `Consume` call, with flow-control
//! credits, acks on the same stream, and reconnection with backoff.
//!
//! A task owns the gRPC stream. The consumer receives deliveries from it, and each
//! [`Received`] sends its ack, nack or extend to it; the task matches the server's
//! `settled` replies to them in order. When the stream breaks, the task reconnects; a
//! message received on the broken stream is then settled with a unary call.

use crate::client::{broker, settled, Client, Conn, Retry};
use crate::error::{Error, Result};
use crate::message::millis;
use ferry_proto::v1 as proto;
use futures::Stream;
use proto::consume_request::Request as Req;
use proto::consume_response::Response as Resp;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Options for a [`Consumer`]; made by [`Client::consumer`].
#[derive(Debug)]
pub struct ConsumerBuilder {
    conn: Conn,
    destination: String,
    subscription: Option<String>,
    credit: u32,
    visibility: Option<Duration>,
    auto_ack: bool,
}

impl Client {
    /// Starts building a consumer of a queue, or of a topic subscription with
    /// [`ConsumerBuilder::subscription`].
    ///
    /// ```no_run
    /// use ferry_client::Client;
    /// use futures::StreamExt;
    ///
    /// # async fn example(client: Client) -> ferry_client::Result<()> {
    /// let mut jobs = client.consumer("jobs").credit(32).start().await?;
    /// while let Some(job) = jobs.next().await {
    ///     let job = job?;
    ///     println!("{}", String::from_utf8_lossy(job.body()));
    ///     job.ack().await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn consumer(&self, destination: &str) -> ConsumerBuilder {
        ConsumerBuilder {
            conn: self.conn.clone(),
            destination: destination.to_string(),
            subscription: None,
            credit: 64,
            visibility: None,
            auto_ack: false,
        }
    }
}

impl ConsumerBuilder {
    /// Consumes the topic's subscription `name` (the destination is then a topic).
    pub fn subscription(mut self, name: impl Into<String>) -> ConsumerBuilder {
        self.subscription = Some(name.into());
        self
    }

    /// At most this many messages are delivered and not yet settled at any time
    /// (default 64). Zero waits for [`Consumer::add_credit`].
    pub fn credit(mut self, credit: u32) -> ConsumerBuilder {
        self.credit = credit;
        self
    }

    /// How long a delivered message stays invisible to other consumers unless settled
    /// (default: the destination's visibility timeout).
    pub fn visibility(mut self, visibility: Duration) -> ConsumerBuilder {
        self.visibility = Some(visibility);
        self
    }

    /// At-most-once delivery: the server settles each message as it sends it, so nothing
    /// is acked and nothing comes back (default: off, at least once). The credit is then
    /// the number of messages sent ahead of the reader; the consumer grants more as they
    /// are read. Messages in flight when the consumer stops or the connection breaks are
    /// lost.
    ///
    /// ```no_run
    /// use ferry_client::Client;
    /// use futures::StreamExt;
    ///
    /// # async fn example(client: Client) -> ferry_client::Result<()> {
    /// let mut ticks = client.consumer("prices").subscription("dashboard").auto_ack(true).start().await?;
    /// while let Some(tick) = ticks.next().await {
    ///     println!("{}", String::from_utf8_lossy(tick?.body()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn auto_ack(mut self, auto_ack: bool) -> ConsumerBuilder {
        self.auto_ack = auto_ack;
        self
    }

    /// Opens the stream. The first error (no such destination, no permission) comes
    /// from here; later ones come from the stream.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Unauthenticated`],
    /// [`Error::Unavailable`] (after the client's retries).
    pub async fn start(self) -> Result<Consumer> {
        let (commands, command_rx) = mpsc::channel(1024);
        // Unbounded, yet bounded in practice: the server sends at most `credit` unsettled
        // deliveries per stream, so this holds at most the credit window (twice that
        // around a reconnect), and the task never blocks on a slow reader while acks wait.
        let (deliveries, rx) = mpsc::unbounded_channel();
        let mut task = Task {
            conn: self.conn,
            start: proto::ConsumeStart {
                destination: self.destination,
                subscription: self.subscription,
                visibility_ms: self.visibility.map(millis),
                credit: self.credit,
                auto_ack: self.auto_ack,
            },
            commands: command_rx,
            deliveries,
            own_commands: commands.clone(),
            generation: 0,
        };
        let first = task.open().await?;
        tokio::spawn(task.run(first));
        let refill = self.auto_ack.then(|| Refill { every: (self.credit / 2).max(1), generation: 0, read: 0 });
        Ok(Consumer { rx, commands, refill })
    }
}

/// A stream of [`Received`] messages. Dropping it ends the server stream; the server
/// then makes the unsettled messages available to other consumers.
#[derive(Debug)]
pub struct Consumer {
    rx: mpsc::UnboundedReceiver<Result<Received>>,
    commands: mpsc::Sender<Command>,
    /// With auto-ack: the credits used up by messages read, to grant again.
    refill: Option<Refill>,
}

/// Credits to grant again, counted per stream; granted once half the window is read.
#[derive(Debug)]
struct Refill {
    every: u32,
    generation: u64,
    read: u32,
}

impl Consumer {
    /// Counts a message read; with auto-ack, grants its credit again (in batches).
    fn read(&mut self, item: &Option<Result<Received>>) {
        let (Some(refill), Some(Ok(received))) = (self.refill.as_mut(), item) else { return };
        if received.generation != refill.generation {
            // A new stream started with a whole window.
            *refill = Refill { generation: received.generation, read: 0, ..*refill };
        }
        refill.read += 1;
        if refill.read >= refill.every {
            let grant = Command::Refill { credits: refill.read, generation: refill.generation };
            // When the task is busy, the count carries over to the next message read.
            if self.commands.try_send(grant).is_ok() {
                refill.read = 0;
            }
        }
    }
}

impl Consumer {
    /// The next message; `None` once the consumer has stopped for good (after an error
    /// that retrying cannot cure, which came as the item before).
    pub async fn recv(&mut self) -> Option<Result<Received>> {
        let item = self.rx.recv().await;
        self.read(&item);
        item
    }

    /// Widens the window of unsettled deliveries by `n`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the consumer has stopped.
    pub async fn add_credit(&self, n: u32) -> Result<()> {
        self.commands.send(Command::Credit(n)).await.map_err(|_| Error::Closed)
    }
}

impl Stream for Consumer {
    type Item = Result<Received>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.rx.poll_recv(cx));
        self.read(&item);
        Poll::Ready(item)
    }
}

/// A delivered message, to be settled with [`ack`](Received::ack) (done),
/// [`nack`](Received::nack) (deliver again) or kept longer with
/// [`extend`](Received::extend). Unsettled, it is delivered again after its visibility
/// timeout.
#[derive(Debug)]
pub struct Received {
    delivery: proto::Delivery,
    generation: u64,
    commands: mpsc::Sender<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Ack,
    Nack(u64),
    Extend(u64),
}

#[derive(Debug)]
enum Command {
    /// Widens the window.
    Credit(u32),
    /// Grants again the credits that auto-acked messages of stream `generation` used up.
    Refill {
        credits: u32,
        generation: u64,
    },
    Settle {
        lease: u64,
        how: Settle,
        generation: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Received {
    /// The message body.
    pub fn body(&self) -> &[u8] {
        self.message().map(|m| m.body.as_ref()).unwrap_or_default()
    }

    /// The message as published: body, headers, subject, key, request/reply fields.
    pub fn message(&self) -> Option<&proto::Message> {
        self.delivery.message.as_ref()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message()?.headers.get(name).map(String::as_str)
    }

    /// The message id.
    pub fn id(&self) -> u64 {
        self.delivery.id
    }

    /// Deliveries so far, this one included.
    pub fn delivery_count(&self) -> u32 {
        self.delivery.delivery_count
    }

    /// Everything the server sent about this delivery.
    pub fn delivery(&self) -> &proto::Delivery {
        &self.delivery
    }

    /// Where a reply should go, for requests.
    pub fn reply_to(&self) -> Option<&str> {
        self.message()?.reply_to.as_deref()
    }

    /// What ties a reply to its request.
    pub fn correlation_id(&self) -> Option<&str> {
        self.message()?.correlation_id.as_deref()
    }

    /// The message is done: it is removed (from a queue) or settled for this
    /// subscription (of a topic).
    ///
    /// # Errors
    ///
    /// [`Error::Settle`] if the lease expired or is unknown (the message will be, or
    /// was, delivered again); [`Error::Unavailable`] if the outcome is unknown.
    pub async fn ack(&self) -> Result<()> {
        self.settle(Settle::Ack).await
    }

    /// Makes the message available again after `delay`.
    ///
    /// # Errors
    ///
    /// As [`Received::ack`].
    pub async fn nack(&self, delay: Duration) -> Result<()> {
        self.settle(Settle::Nack(millis(delay))).await
    }

    /// Keeps the message invisible to other consumers for `visibility` from now.
    ///
    /// # Errors
    ///
    /// As [`Received::ack`].
    pub async fn extend(&self, visibility: Duration) -> Result<()> {
        self.settle(Settle::Extend(millis(visibility))).await
    }

    async fn settle(&self, how: Settle) -> Result<()> {
        let Some(lease) = self.delivery.lease else {
            return Err(Error::InvalidArgument("this delivery has no lease (auto-acked)".into()));
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Settle { lease, how, generation: self.generation, reply };
        self.commands.send(command).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

struct Task {
    conn: Conn,
    start: proto::ConsumeStart,
    commands: mpsc::Receiver<Command>,
    deliveries: mpsc::UnboundedSender<Result<Received>>,
    /// Given to each [`Received`], so that it can reach this task.
    own_commands: mpsc::Sender<Command>,
    /// Counts streams: a settle of a delivery from an earlier stream goes by unary call.
    generation: u64,
}

/// One open `Consume` stream.
struct Open {
    /// Unbounded so that the task never waits to send while the server waits for it to
    /// read (a deadlock once both sides' buffers fill); bounded in practice, since settles
    /// are coalesced and only unsettled deliveries, at most the credit window, settle.
    requests: mpsc::UnboundedSender<proto::ConsumeRequest>,
    responses: tonic::Streaming<proto::ConsumeResponse>,
}

/// The most leases one settle request carries (the server's limit).
const MAX_SETTLE: usize = 1000;

/// Why a stream ended.
enum End {
    /// The consumer was dropped.
    Dropped,
    /// The stream broke or the server ended it: reconnect.
    Broken(Error),
}

impl Task {
    /// Opens a stream with the current credit window, retrying transient failures.
    async fn open(&mut self) -> Result<Open> {
        let backoff = self.conn.backoff();
        let mut attempt = 1;
        let mut logged_in_again = false;
        loop {
            match self.try_open().await {
                Ok(open) => {
                    self.generation += 1;
                    return Ok(open);
                }
                Err(Error::Unauthenticated(_)) if !logged_in_again && self.conn.has_credentials() => {
                    logged_in_again = true;
                    self.conn.login().await?;
                }
                Err(e) if e.is_transient() && attempt < backoff.attempts => {
                    tokio::time::sleep(backoff.wait(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_open(&self) -> Result<Open> {
        let (requests, rx) = mpsc::unbounded_channel();
        let start = proto::ConsumeRequest { request: Some(Req::Start(self.start.clone())) };
        requests.send(start).map_err(|_| Error::Closed)?;
        let mut request = tonic::Request::new(UnboundedReceiverStream::new(rx));
        self.conn.authorize(request.metadata_mut())?;
        // The server checks the start request before it sends its response headers, so
        // a missing destination or permission fails here rather than on the stream.
        let responses = broker(self.conn.channel()).consume(request).await?.into_inner();
        Ok(Open { requests, responses })
    }

    async fn run(mut self, first: Open) {
        let mut open = first;
        loop {
            let end = self.serve(&mut open).await;
            let error = match end {
                End::Dropped => return,
                End::Broken(e) => e,
            };
            if !error.is_transient() {
                let _ = self.deliveries.send(Err(error));
                return;
            }
            tracing::debug!(%error, "consume stream broke; reconnecting");
            // Keep trying while the consumer lives; tell the reader after each round of
            // attempts, so that a long outage is not silent.
            open = loop {
                match self.open().await {
                    Ok(open) => break open,
                    Err(e) if e.is_transient() => {
                        if self.deliveries.send(Err(e)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = self.deliveries.send(Err(e));
                        return;
                    }
                }
            };
        }
    }

    /// Runs one stream until it ends.
    async fn serve(&mut self, open: &mut Open) -> End {
        // Each settle request sent and not answered yet: its leases and who waits on each.
        let mut waiting: VecDeque<Vec<oneshot::Sender<Result<()>>>> = VecDeque::new();
        let mut next: Option<Command> = None;
        let closed = || End::Broken(Error::Unavailable("the consume stream closed".into()));
        let end = loop {
            let command = match next.take() {
                Some(c) => Some(c),
                None => tokio::select! {
                    // The reader dropped the consumer (the commands channel stays open while
                    // any `Received` can still settle, so it cannot tell).
                    () = self.deliveries.closed() => break End::Dropped,
                    command = self.commands.recv() => match command {
                        None => break End::Dropped,
                        some => some,
                    },
                    message = open.responses.message() => {
                        match self.response(message, &mut waiting) {
                            Ok(()) => continue,
                            Err(end) => break end,
                        }
                    }
                },
            };
            match command {
                None => continue,
                Some(Command::Credit(n)) => {
                    self.start.credit = self.start.credit.saturating_add(n);
                    if open.requests.send(proto::ConsumeRequest { request: Some(Req::Credit(n)) }).is_err() {
                        break closed();
                    }
                }
                // A stream opened since starts with a whole window of its own.
                Some(Command::Refill { generation, .. }) if generation != self.generation => {}
                Some(Command::Refill { credits, .. }) => {
                    if open.requests.send(proto::ConsumeRequest { request: Some(Req::Credit(credits)) }).is_err() {
                        break closed();
                    }
                }
                Some(Command::Settle { lease, how, generation, reply }) if generation == self.generation => {
                    // Coalesce the settles already queued with the same action into one
                    // request: a consumer acking a batch costs one round trip, not one each.
                    let mut leases = vec![lease];
                    let mut replies = vec![reply];
                    while leases.len() < MAX_SETTLE {
                        match self.commands.try_recv() {
                            Ok(Command::Settle { lease, how: h, generation, reply })
                                if h == how && generation == self.generation =>
                            {
                                leases.push(lease);
                                replies.push(reply);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if open.requests.send(settle_request(leases, how)).is_err() {
                        for reply in replies {
                            let _ = reply.send(Err(Error::Unavailable("the consume stream closed".into())));
                        }
                        break closed();
                    }
                    waiting.push_back(replies);
                }
                Some(Command::Settle { lease, how, reply, .. }) => {
                    // From a stream that broke: the lease may still be good.
                    let conn = self.conn.clone();
                    let start = self.start.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(settle_unary(&conn, &start, lease, how).await);
                    });
                }
            }
        };
        for replies in waiting {
            for reply in replies {
                let _ = reply.send(Err(Error::Unavailable("the stream broke before the server answered".into())));
            }
        }
        end
    }

    /// Handles one message from the server.
    fn response(
        &mut self,
        message: std::result::Result<Option<proto::ConsumeResponse>, tonic::Status>,
        waiting: &mut VecDeque<Vec<oneshot::Sender<Result<()>>>>,
    ) -> std::result::Result<(), End> {
        match message {
            Ok(Some(proto::ConsumeResponse { response: Some(Resp::Delivery(delivery)) })) => {
                let received = Received { delivery, generation: self.generation, commands: self.own_commands.clone() };
                self.deliveries.send(Ok(received)).map_err(|_| End::Dropped)
            }
            Ok(Some(proto::ConsumeResponse { response: Some(Resp::Settled(r)) })) => {
                if let Some(replies) = waiting.pop_front() {
                    // One result per lease, in the order sent.
                    let mut results = r.results.into_iter();
                    for reply in replies {
                        let result = match results.next() {
                            Some(one) => settled(vec![one]),
                            None => Err(Error::Server {
                                code: tonic::Code::Internal,
                                message: "fewer settle results than leases".into(),
                            }),
                        };
                        let _ = reply.send(result);
                    }
                }
                Ok(())
            }
            Ok(Some(proto::ConsumeResponse { response: None })) => Ok(()),
            Ok(None) => Err(End::Broken(Error::Unavailable("the server ended the consume stream".into()))),
            Err(status) => Err(End::Broken(Error::from(status))),
        }
    }
}

fn settle_request(leases: Vec<u64>, how: Settle) -> proto::ConsumeRequest {
    let request = match how {
        Settle::Ack => Req::Ack(proto::LeaseList { leases }),
        Settle::Nack(delay_ms) => Req::Nack(proto::NackLeases { leases, delay_ms }),
        Settle::Extend(visibility_ms) => Req::Extend(proto::ExtendLeases { leases, visibility_ms }),
    };
    proto::ConsumeRequest { request: Some(request) }
}

async fn settle_unary(conn: &Conn, start: &proto::ConsumeStart, lease: u64, how: Settle) -> Result<()> {
    let (delay_ms, visibility_ms) = match how {
        Settle::Ack => (0, 0),
        Settle::Nack(d) => (d, 0),
        Settle::Extend(v) => (0, v),
    };
    let request = proto::SettleRequest {
        destination: start.destination.clone(),
        subscription: start.subscription.clone(),
        leases: vec![lease],
        delay_ms,
        visibility_ms,
    };
    let results = conn
        .call(Retry::Yes, true, request, |ch, r| async move {
            match how {
                Settle::Ack => broker(ch).ack(r).await,
                Settle::Nack(_) => broker(ch).nack(r).await,
                Settle::Extend(_) => broker(ch).extend(r).await,
            }
        })
        .await?;
    settled(results.results)
}
