//! NATS, with the `async-nats` client; every producer and consumer has a connection of its
//! own.
//!
//! - `nats://`: core publish/subscribe on the subject `ferry-bench.<run>`. A queue run's
//!   consumers share a queue group; a fan-out run's consumers each subscribe. Nothing is
//!   stored and nothing acknowledged: a publish is done once the client has flushed it to
//!   the socket (per batch), and a consumer that falls behind loses messages (reported).
//! - `jetstream://`: a stream on that subject: file storage, or memory storage for
//!   `--durability none`. Publishes wait for the stream's acknowledgement (the batch in
//!   flight together); consumers pull from a durable consumer with explicit acks: one
//!   shared by every consumer of a queue run (work-queue retention), one per consumer in a
//!   fan-out run.

use super::{Endpoint, Pattern, Target, Workload};
use anyhow::Context as _;
use async_nats::jetstream;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use std::time::Duration;

/// Buffered messages per subscription before the client drops them: enough for any run
/// this benchmark makes at the speeds of this machine kind.
const SUBSCRIPTION_CAPACITY: usize = 1 << 22;

fn subject(w: &Workload) -> String {
    format!("ferry-bench.{}", w.name)
}

/// The server address for async-nats, with the credentials of the URL if any.
fn server_url(endpoint: &Endpoint) -> anyhow::Result<String> {
    let u = &endpoint.url;
    let auth = match (u.username(), u.password()) {
        ("", _) => String::new(),
        (user, Some(pw)) => format!("{user}:{pw}@"),
        (user, None) => format!("{user}@"),
    };
    Ok(format!("nats://{auth}{}", endpoint.host_port(4222)?))
}

/// A new connection.
async fn client(server: &str, display: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .connect(server)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {display}: {e}"))
}

/// Waits for one round trip through the server, so that a subscription made before it is
/// known to the server (a flush only waits for the socket write).
async fn round_trip(client: &async_nats::Client, w: &Workload) -> anyhow::Result<()> {
    let ping = format!("_ferry_bench.ping.{}", w.name);
    match tokio::time::timeout(Duration::from_secs(10), client.request(ping, Bytes::new())).await {
        Ok(_) => Ok(()), // "no responders" is the expected answer: it came back.
        Err(_) => anyhow::bail!("the server did not answer a request within 10 s"),
    }
}

/// Appends what `stream` has ready to `out` (at most `max`), waiting at most `wait` for
/// the first item.
async fn drain<S, T>(stream: &mut S, out: &mut Vec<T>, max: usize, wait: Duration) -> anyhow::Result<()>
where
    S: futures::Stream<Item = T> + Unpin,
{
    match tokio::time::timeout(wait, stream.next()).await {
        Err(_) => return Ok(()),
        Ok(None) => anyhow::bail!("the subscription ended"),
        Ok(Some(m)) => out.push(m),
    }
    while out.len() < max {
        match stream.next().now_or_never() {
            Some(Some(m)) => out.push(m),
            _ => break,
        }
    }
    Ok(())
}

/// NATS core.
pub(crate) struct NatsCore {
    server: String,
    display: String,
}

impl Target for NatsCore {
    type Producer = CoreProducer;
    type Consumer = CoreConsumer;
    const SYSTEM: &'static str = "nats";

    async fn connect(endpoint: &Endpoint) -> anyhow::Result<NatsCore> {
        let server = server_url(endpoint)?;
        let display = endpoint.display();
        client(&server, &display).await?;
        Ok(NatsCore { server, display })
    }

    fn durability(&self, w: &Workload) -> String {
        let none = if w.durable() { " (asked for durability: core NATS has none)" } else { "" };
        format!("NATS core: nothing stored or acknowledged; publish done once flushed to the socket{none}")
    }

    async fn prepare(&self, _: &Workload) -> anyhow::Result<()> {
        Ok(())
    }

    async fn producer(&self, w: &Workload, _: u32) -> anyhow::Result<CoreProducer> {
        Ok(CoreProducer { client: client(&self.server, &self.display).await?, subject: subject(w).into() })
    }

    async fn consumer(&self, w: &Workload, _: u32) -> anyhow::Result<CoreConsumer> {
        let client = client(&self.server, &self.display).await?;
        let sub = match w.pattern {
            Pattern::Queue => client.queue_subscribe(subject(w), "ferry-bench".into()).await?,
            Pattern::Fanout => client.subscribe(subject(w)).await?,
        };
        round_trip(&client, w).await?;
        Ok(CoreConsumer { _client: client, sub, max: w.prefetch as usize, got: Vec::new() })
    }

    async fn cleanup(&self, _: &Workload) -> anyhow::Result<()> {
        Ok(())
    }
}

pub(crate) struct CoreProducer {
    client: async_nats::Client,
    subject: async_nats::Subject,
}

impl super::Producer for CoreProducer {
    async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
        for b in batch {
            self.client.publish(self.subject.clone(), b.clone()).await?;
        }
        self.client.flush().await?;
        Ok(())
    }
}

pub(crate) struct CoreConsumer {
    _client: async_nats::Client,
    sub: async_nats::Subscriber,
    max: usize,
    got: Vec<async_nats::Message>,
}

impl super::Consumer for CoreConsumer {
    async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
        drain(&mut self.sub, &mut self.got, self.max, wait).await?;
        out.extend(self.got.drain(..).map(|m| m.payload));
        Ok(())
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// NATS JetStream.
pub(crate) struct JetStream {
    server: String,
    display: String,
    js: jetstream::Context,
}

/// The durable consumer that consumer `n` reads.
fn durable(w: &Workload, n: u32) -> String {
    match w.pattern {
        Pattern::Queue => "c".to_string(),
        Pattern::Fanout => format!("s{n}"),
    }
}

impl Target for JetStream {
    type Producer = JsProducer;
    type Consumer = JsConsumer;
    const SYSTEM: &'static str = "jetstream";

    async fn connect(endpoint: &Endpoint) -> anyhow::Result<JetStream> {
        let server = server_url(endpoint)?;
        let display = endpoint.display();
        let js = jetstream::new(client(&server, &display).await?);
        Ok(JetStream { server, display, js })
    }

    fn durability(&self, w: &Workload) -> String {
        let acks = if w.auto_ack && w.consumers > 0 { "; consumers with ack policy none" } else { "" };
        if w.durable() {
            format!(
                "JetStream file storage: publish acked once written (fsync per the server's sync_interval: \
                 every 2 min by default, or always){acks}"
            )
        } else {
            format!("JetStream memory storage: publish acked once stored in memory{acks}")
        }
    }

    async fn prepare(&self, w: &Workload) -> anyhow::Result<()> {
        let config = jetstream::stream::Config {
            name: w.name.clone(),
            subjects: vec![subject(w)],
            storage: if w.durable() {
                jetstream::stream::StorageType::File
            } else {
                jetstream::stream::StorageType::Memory
            },
            retention: match w.pattern {
                Pattern::Queue => jetstream::stream::RetentionPolicy::WorkQueue,
                Pattern::Fanout => jetstream::stream::RetentionPolicy::Limits,
            },
            num_replicas: 1,
            ..Default::default()
        };
        let stream = self
            .js
            .create_stream(config)
            .await
            .map_err(|e| anyhow::anyhow!("creating stream {} (is JetStream enabled?): {e}", w.name))?;
        let consumers = match w.pattern {
            Pattern::Queue => w.consumers.min(1),
            Pattern::Fanout => w.consumers,
        };
        for n in 0..consumers {
            let name = durable(w, n);
            let config = jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: if w.auto_ack {
                    jetstream::consumer::AckPolicy::None
                } else {
                    jetstream::consumer::AckPolicy::Explicit
                },
                max_ack_pending: i64::from(w.prefetch) * i64::from(w.consumers.max(1)),
                ..Default::default()
            };
            stream.create_consumer(config).await.map_err(|e| anyhow::anyhow!("creating consumer {name}: {e}"))?;
        }
        Ok(())
    }

    async fn producer(&self, w: &Workload, _: u32) -> anyhow::Result<JsProducer> {
        let client = client(&self.server, &self.display).await?;
        let js = jetstream::context::ContextBuilder::new()
            .max_ack_inflight(w.batch.max(1))
            .backpressure_on_inflight(true)
            .build(client);
        Ok(JsProducer { js, subject: subject(w).into(), acks: Vec::with_capacity(w.batch) })
    }

    async fn consumer(&self, w: &Workload, n: u32) -> anyhow::Result<JsConsumer> {
        let js = jetstream::new(client(&self.server, &self.display).await?);
        let stream = js.get_stream(&w.name).await.map_err(|e| anyhow::anyhow!("stream {}: {e}", w.name))?;
        let name = durable(w, n);
        let consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer(&name).await.map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(w.prefetch as usize)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("consuming {name}: {e}"))?;
        Ok(JsConsumer {
            messages,
            max: w.prefetch as usize,
            auto_ack: w.auto_ack,
            got: Vec::new(),
            pending: Vec::new(),
        })
    }

    async fn cleanup(&self, w: &Workload) -> anyhow::Result<()> {
        self.js.delete_stream(&w.name).await.map_err(|e| anyhow::anyhow!("deleting stream {}: {e}", w.name))?;
        Ok(())
    }
}

pub(crate) struct JsProducer {
    js: jetstream::Context,
    subject: async_nats::Subject,
    acks: Vec<jetstream::context::PublishAckFuture>,
}

impl super::Producer for JsProducer {
    async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
        for b in batch {
            let ack = self.js.publish(self.subject.clone(), b.clone()).await.context("publishing")?;
            self.acks.push(ack);
        }
        for ack in self.acks.drain(..) {
            ack.await.context("waiting for the publish acknowledgement")?;
        }
        Ok(())
    }
}

pub(crate) struct JsConsumer {
    messages: jetstream::consumer::pull::Stream,
    max: usize,
    auto_ack: bool,
    got: Vec<Result<jetstream::Message, jetstream::consumer::pull::MessagesError>>,
    pending: Vec<jetstream::Message>,
}

impl super::Consumer for JsConsumer {
    async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
        drain(&mut self.messages, &mut self.got, self.max, wait).await?;
        for m in self.got.drain(..) {
            let m = m.map_err(|e| anyhow::anyhow!("receiving: {e}"))?;
            out.push(m.message.payload.clone());
            if !self.auto_ack {
                self.pending.push(m);
            }
        }
        Ok(())
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        for m in self.pending.drain(..) {
            m.ack().await.map_err(|e| anyhow::anyhow!("acking: {e}"))?;
        }
        Ok(())
    }
}
