//! The brokers `ferry bench broker <url>` can drive, chosen by the URL's scheme, behind one
//! small trait: a [`Target`] connects, prepares a run's destinations, and hands out
//! [`Producer`]s and [`Consumer`]s, each with a connection of its own; the driver
//! (`super::driver`) does the rest the same way for every broker.
//!
//! | scheme                | broker                       | module          |
//! |-----------------------|------------------------------|-----------------|
//! | `grpc://`, `grpcs://` | ferry's gRPC API             | [`ferry_grpc`]  |
//! | `http://`, `https://` | ferry's REST API (`/v1`)     | [`ferry_http`]  |
//! | `nats://`             | NATS core publish/subscribe  | [`nats`]        |
//! | `jetstream://`        | NATS JetStream               | [`nats`]        |
//! | `amqp://`             | RabbitMQ (AMQP 0-9-1)        | [`amqp`]        |
//!
//! Adding a broker is one new file with a type implementing [`Target`], its producer and
//! its consumer, and one line in [`run`] and [`system`].

pub(crate) mod amqp;
pub(crate) mod ferry_grpc;
pub(crate) mod ferry_http;
pub(crate) mod nats;

use super::driver::{self, Plan, RunResult};
use anyhow::Context as _;
use bytes::Bytes;
use ferry_broker::Durability;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Who receives each message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Pattern {
    /// Competing consumers on one queue: each message goes to one of them.
    Queue,
    /// Every consumer gets every message (a topic with one subscription per consumer).
    Fanout,
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pattern::Queue => "queue",
            Pattern::Fanout => "fanout",
        })
    }
}

/// What one run asks of a target's destinations.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    /// A name no other run uses: `[a-z0-9-]`, so that every broker accepts it.
    pub(crate) name: String,
    pub(crate) pattern: Pattern,
    /// Message body size in bytes.
    pub(crate) size: usize,
    /// When a publish counts as done, as ferry names it; each target says what it does
    /// for it in [`Target::durability`].
    pub(crate) durability: Durability,
    /// Consumers (queue) or subscriptions (fan-out); 0 for a publish-only run.
    pub(crate) consumers: u32,
    /// Messages a consumer may hold unacknowledged (prefetch, receive batch).
    pub(crate) prefetch: u32,
    /// Messages a producer publishes per call, all in flight together.
    pub(crate) batch: usize,
    /// Consumers take messages without acknowledging them (at most once).
    pub(crate) auto_ack: bool,
}

impl Workload {
    /// Whether the run asks for messages that outlive the broker's process and more.
    pub(crate) fn durable(&self) -> bool {
        self.durability != Durability::None
    }
}

/// Where a target is, and how to talk to it.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) url: url::Url,
    /// PEM roots for `https://` (default: the system's bundle).
    pub(crate) ca_file: Option<PathBuf>,
}

impl Endpoint {
    /// The URL without its password, for messages and reports.
    pub(crate) fn display(&self) -> String {
        let mut u = self.url.clone();
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        u.to_string().trim_end_matches('/').to_string()
    }

    /// `host:port`, with the scheme's default port if none is given.
    pub(crate) fn host_port(&self, default_port: u16) -> anyhow::Result<String> {
        let host = self.url.host_str().filter(|h| !h.is_empty()).context("the URL has no host")?;
        Ok(format!("{host}:{}", self.url.port().unwrap_or(default_port)))
    }
}

/// A broker the benchmark can drive. Every method that talks to the broker may fail with an
/// error; none may panic on what the network brings.
pub(crate) trait Target: Sized + Send + Sync + 'static {
    type Producer: Producer;
    type Consumer: Consumer;

    /// The short name in reports: `ferry-http`, `nats`, `jetstream`, `rabbitmq`.
    const SYSTEM: &'static str;

    /// Connects (and logs in) once, to check the broker is there and to prepare runs.
    fn connect(endpoint: &Endpoint) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// What this target does for the workload's durability, in words, for the report
    /// (e.g. "file storage, fsync per server sync_interval").
    fn durability(&self, w: &Workload) -> String;

    /// Creates the run's destinations: a queue, or a topic with `w.consumers`
    /// subscriptions.
    fn prepare(&self, w: &Workload) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Producer `n`, with a connection of its own.
    fn producer(&self, w: &Workload, n: u32) -> impl Future<Output = anyhow::Result<Self::Producer>> + Send;

    /// Consumer `n` (0-based): in a queue run every consumer reads the queue; in a fan-out
    /// run consumer `n` reads subscription `n`. Returns once the broker will deliver to it.
    fn consumer(&self, w: &Workload, n: u32) -> impl Future<Output = anyhow::Result<Self::Consumer>> + Send;

    /// Deletes what [`Target::prepare`] made.
    fn cleanup(&self, w: &Workload) -> impl Future<Output = anyhow::Result<()>> + Send;
}

pub(crate) trait Producer: Send + 'static {
    /// Publishes the batch, all messages in flight together, and returns once the broker
    /// has confirmed every one as the workload's durability asks.
    fn publish(&mut self, batch: &[Bytes]) -> impl Future<Output = anyhow::Result<()>> + Send;
}

pub(crate) trait Consumer: Send + 'static {
    /// Appends received message bodies to `out`: at most the workload's prefetch, waiting
    /// at most `wait` for the first (none is fine).
    fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Acknowledges everything received so far that is not acknowledged yet.
    fn ack(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The schemes, for `--help` and errors.
pub(crate) const SCHEMES: &str = "grpc(s)://[user:password@]host:port (ferry gRPC), \
     http(s)://[user:password@]host:port (ferry REST), nats://host:port (NATS core), \
     jetstream://host:port (NATS JetStream), amqp://[user:password@]host:port[/vhost] (RabbitMQ)";

/// Parses a target URL.
pub(crate) fn endpoint(url: &str, ca_file: Option<PathBuf>) -> anyhow::Result<Endpoint> {
    let url = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL; use {SCHEMES}"))?;
    Ok(Endpoint { url, ca_file })
}

/// The system name of the target a URL selects.
pub(crate) fn system(endpoint: &Endpoint) -> anyhow::Result<&'static str> {
    Ok(match endpoint.url.scheme() {
        "grpc" | "grpcs" => ferry_grpc::FerryGrpc::SYSTEM,
        "http" | "https" => ferry_http::FerryHttp::SYSTEM,
        "nats" => nats::NatsCore::SYSTEM,
        "jetstream" => nats::JetStream::SYSTEM,
        "amqp" => amqp::Rabbit::SYSTEM,
        other => anyhow::bail!("unknown scheme `{other}://`; use {SCHEMES}"),
    })
}

/// Connects to the target the URL selects, then runs every plan on it in turn, calling
/// `each` before each run.
pub(crate) async fn run(
    endpoint: &Endpoint,
    plans: &[Plan],
    each: impl FnMut(usize, &Plan),
) -> anyhow::Result<(Vec<String>, Vec<anyhow::Result<RunResult>>)> {
    match endpoint.url.scheme() {
        "grpc" | "grpcs" => run_on::<ferry_grpc::FerryGrpc>(endpoint, plans, each).await,
        "http" | "https" => run_on::<ferry_http::FerryHttp>(endpoint, plans, each).await,
        "nats" => run_on::<nats::NatsCore>(endpoint, plans, each).await,
        "jetstream" => run_on::<nats::JetStream>(endpoint, plans, each).await,
        "amqp" => run_on::<amqp::Rabbit>(endpoint, plans, each).await,
        other => anyhow::bail!("unknown scheme `{other}://`; use {SCHEMES}"),
    }
}

/// Runs the plans on one kind of target; returns what the target does for each plan's
/// durability and each run's result.
async fn run_on<T: Target>(
    endpoint: &Endpoint,
    plans: &[Plan],
    mut each: impl FnMut(usize, &Plan),
) -> anyhow::Result<(Vec<String>, Vec<anyhow::Result<RunResult>>)> {
    let target = std::sync::Arc::new(T::connect(endpoint).await?);
    let mut results = Vec::with_capacity(plans.len());
    let mut modes = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        each(i, plan);
        modes.push(target.durability(&plan.workload));
        results.push(driver::run(target.clone(), plan).await);
    }
    Ok((modes, results))
}
