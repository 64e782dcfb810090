//! ferry's gRPC API (`grpc://`, `grpcs://`), through ferry-client: a queue, or a topic with a
//! subscription per consumer, created with the run's durability; producers publish each
//! batch with one `Publish` call (answered once the batch is as durable as the
//! destination's mode says); consumers read a `Consume` stream with the workload's prefetch
//! as credits and ack on the same stream (or, with auto-ack, call `Receive` with
//! `auto_ack`: one response carries a whole batch, where an auto-ack `Consume` stream
//! sends a gRPC message per delivery and measured 0.6× as fast). Every producer and
//! consumer has an HTTP/2 connection of its own.
//!
//! Credentials come from the URL (`grpc://user:password@host:port`) or from `FERRY_TOKEN`.

use super::{Endpoint, Pattern, Target, Workload};
use anyhow::Context as _;
use bytes::Bytes;
use ferry_broker::Durability;
use ferry_client::{proto, Client, Message, Received};
use futures::{FutureExt as _, StreamExt as _};
use std::time::Duration;

/// ferry over gRPC.
pub(crate) struct FerryGrpc {
    url: String,
    credentials: Credentials,
    ca_pem: Option<Vec<u8>>,
    admin: Client,
}

#[derive(Clone)]
enum Credentials {
    Login(String, String),
    Token(String),
}

impl FerryGrpc {
    /// A client with a connection of its own.
    async fn client(&self) -> anyhow::Result<Client> {
        client(&self.url, &self.credentials, self.ca_pem.as_deref()).await
    }
}

async fn client(url: &str, credentials: &Credentials, ca_pem: Option<&[u8]>) -> anyhow::Result<Client> {
    let mut builder = Client::builder(url);
    builder = match credentials {
        Credentials::Login(user, password) => builder.credentials(user.clone(), password.clone()),
        Credentials::Token(token) => builder.token(token.clone()),
    };
    if let Some(pem) = ca_pem {
        builder = builder.ca_certificate(pem);
    }
    builder.connect().await.with_context(|| format!("connecting to {url}"))
}

fn durability(d: Durability) -> (i32, u64) {
    match d {
        Durability::Fsync => (proto::DurabilityMode::Fsync.into(), 0),
        Durability::Interval(ms) => (proto::DurabilityMode::Interval.into(), ms),
        Durability::None => (proto::DurabilityMode::None.into(), 0),
    }
}

impl Target for FerryGrpc {
    type Producer = GrpcProducer;
    type Consumer = GrpcConsumer;
    const SYSTEM: &'static str = "ferry-grpc";

    async fn connect(endpoint: &Endpoint) -> anyhow::Result<FerryGrpc> {
        let u = &endpoint.url;
        let tls = u.scheme() == "grpcs";
        let url = format!("{}://{}", if tls { "grpcs" } else { "grpc" }, endpoint.host_port(7601)?);
        let user = super::ferry_http::percent_decode(u.username());
        let credentials = if !user.is_empty() {
            Credentials::Login(user, super::ferry_http::percent_decode(u.password().unwrap_or("")))
        } else if let Some(token) = std::env::var("FERRY_TOKEN").ok().filter(|t| !t.is_empty()) {
            Credentials::Token(token)
        } else {
            anyhow::bail!(
                "{}: give credentials in the URL (grpc://user:password@host:port) or a token in FERRY_TOKEN",
                endpoint.display()
            );
        };
        let ca_pem = match &endpoint.ca_file {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
            None => None,
        };
        let admin = client(&url, &credentials, ca_pem.as_deref()).await?;
        Ok(FerryGrpc { url, credentials, ca_pem, admin })
    }

    fn durability(&self, w: &Workload) -> String {
        super::ferry_http::describe_durability(w)
    }

    async fn prepare(&self, w: &Workload) -> anyhow::Result<()> {
        let (mode, interval) = durability(w.durability);
        let settings =
            proto::Settings { durability: mode, durability_interval_ms: interval, ..proto::Settings::default() };
        match w.pattern {
            Pattern::Queue => drop(self.admin.create_queue(&w.name, settings).await?),
            Pattern::Fanout => {
                self.admin.create_topic(&w.name, settings).await?;
                for n in 0..w.consumers {
                    self.admin.subscribe(&w.name, &format!("s{n}"), None).await?;
                }
            }
        }
        Ok(())
    }

    async fn producer(&self, w: &Workload, _n: u32) -> anyhow::Result<GrpcProducer> {
        Ok(GrpcProducer { client: self.client().await?, destination: w.name.clone() })
    }

    async fn consumer(&self, w: &Workload, n: u32) -> anyhow::Result<GrpcConsumer> {
        let client = self.client().await?;
        let subscription = (w.pattern == Pattern::Fanout).then(|| format!("s{n}"));
        let stream = if w.auto_ack {
            None
        } else {
            let mut builder = client.consumer(&w.name).credit(w.prefetch.max(1));
            if let Some(s) = &subscription {
                builder = builder.subscription(s.clone());
            }
            Some(builder.start().await?)
        };
        Ok(GrpcConsumer {
            client,
            destination: w.name.clone(),
            subscription,
            max: w.prefetch.clamp(1, 1000),
            stream,
            unacked: Vec::new(),
        })
    }

    async fn cleanup(&self, w: &Workload) -> anyhow::Result<()> {
        self.admin.delete(&w.name).await?;
        Ok(())
    }
}

pub(crate) struct GrpcProducer {
    client: Client,
    destination: String,
}

impl super::Producer for GrpcProducer {
    async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
        let messages = batch.iter().map(|b| Message::new(b.to_vec()));
        self.client.publish_batch(&self.destination, messages).await?;
        Ok(())
    }
}

pub(crate) struct GrpcConsumer {
    client: Client,
    destination: String,
    subscription: Option<String>,
    max: u32,
    /// The Consume stream; `None` with auto-ack, which uses unary receives.
    stream: Option<ferry_client::Consumer>,
    unacked: Vec<Received>,
}

impl super::Consumer for GrpcConsumer {
    async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
        let Some(stream) = &mut self.stream else {
            let request = proto::ReceiveRequest {
                destination: self.destination.clone(),
                subscription: self.subscription.clone(),
                max: self.max,
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                visibility_ms: None,
                auto_ack: true,
            };
            for d in self.client.receive_with(request).await? {
                out.push(d.message.map(|m| m.body).unwrap_or_default());
            }
            return Ok(());
        };
        let first = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => return Ok(()),
            Ok(None) => anyhow::bail!("the consume stream ended"),
            Ok(Some(m)) => m?,
        };
        out.push(Bytes::copy_from_slice(first.body()));
        self.unacked.push(first);
        // Whatever else has arrived already, without waiting.
        while (self.unacked.len() as u32) < self.max {
            let Some(Some(m)) = stream.next().now_or_never() else { break };
            let m = m?;
            out.push(Bytes::copy_from_slice(m.body()));
            self.unacked.push(m);
        }
        Ok(())
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        // Pipelined on the stream: all sent, then all answered in order.
        let unacked = std::mem::take(&mut self.unacked);
        for result in futures::future::join_all(unacked.iter().map(Received::ack)).await {
            result?;
        }
        Ok(())
    }
}
