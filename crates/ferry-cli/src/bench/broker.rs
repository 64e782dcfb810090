//! `ferry bench broker`: its arguments, and `--embedded`: the broker engine in this process,
//! next to the bare ferry-log it writes to, measured in the same run. Over the network
//! (a URL instead of `--embedded`), `super::net` takes over.
//!
//! For each durability mode, message size and number of producers, a round measures:
//! - the log: `producers` tasks appending records of the size of an encoded publish
//!   command, the rate the engine can at best reach;
//! - publish: `producers` tasks publishing one message at a time to a queue;
//! - end to end: the same producers with two consumers receiving batches and acking, the
//!   rate at which messages come out and their latency from publish call to receipt.
//!
//! The engine's overhead is publish ÷ log: the share of the log's rate the broker keeps.

use super::disk::{closed_loop_rate, median, percentile, scratch, timing};
use super::target::Pattern;
use super::{dedup, parse_seconds, parse_size};
use anyhow::Context as _;
use bytes::Bytes;
use ferry_broker::{Broker, Durability, NewMessage, ReceiveRequest, Settings};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `ferry bench broker`: a broker over the network by URL, or `--embedded`.
#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).args(["target", "embedded"])),
    after_help = "Targets, by URL scheme:\n  \
        http://[user:password@]host:port     ferry's REST API (or https://; a token in FERRY_TOKEN)\n  \
        nats://host:port                     NATS core publish/subscribe (no persistence)\n  \
        jetstream://host:port                NATS JetStream: a stream, file storage (memory with --durability none)\n  \
        amqp://[user:password@]host:port     RabbitMQ: durable queue, persistent messages, publisher confirms\n\
        Examples:\n  \
        ferry bench broker http://admin:secret@127.0.0.1:8080 --durability fsync --producers 4 --consumers 2\n  \
        ferry bench broker nats://127.0.0.1:4222 --pattern fanout --consumers 4 --durability none\n  \
        ferry bench broker --embedded --dir /var/tmp"
)]
pub(crate) struct BrokerArgs {
    /// The broker to drive: http(s)://, nats://, jetstream:// or amqp:// (see below).
    #[arg(value_name = "URL")]
    pub(super) target: Option<String>,
    /// Run the broker engine inside this process instead, next to the bare log.
    #[arg(long, conflicts_with = "target")]
    embedded: bool,
    /// Directory for the embedded broker's data; it should be on the disk you care about.
    #[arg(long, default_value = ".", conflicts_with = "target")]
    dir: PathBuf,
    /// Message sizes, comma-separated; bytes, or with a k/KiB or m/MiB suffix. Over the
    /// network at least 17 bytes (the timestamp header).
    #[arg(long, value_delimiter = ',', default_value = "64,1KiB", value_parser = parse_size)]
    pub(super) sizes: Vec<usize>,
    /// Numbers of concurrent producers, comma-separated [default: 4; --embedded: 1,16].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) producers: Option<Vec<u32>>,
    /// Consumers: competing on the queue, or subscriptions of a fan-out (each gets every
    /// message). 0: publish only.
    #[arg(long, default_value = "2", value_parser = clap::value_parser!(u32).range(0..=10_000), conflicts_with = "embedded")]
    pub(super) consumers: u32,
    /// queue: competing consumers on one queue; fanout: every consumer gets every message
    /// (ferry topic with a subscription each, NATS subject, RabbitMQ fanout exchange).
    #[arg(long, value_enum, default_value = "queue", conflicts_with = "embedded")]
    pub(super) pattern: Pattern,
    /// Durability modes, comma-separated: fsync, none, interval:<ms> [default: fsync;
    /// --embedded: fsync,none]. ferry applies them to the queue or topic; JetStream maps
    /// none to memory storage and the others to file storage (whose fsync the server's
    /// sync_interval decides); RabbitMQ maps none to a transient queue and messages, the
    /// others to a durable queue and persistent messages; NATS core has none.
    #[arg(long, value_delimiter = ',', value_parser = parse_durability)]
    pub(super) durability: Option<Vec<Durability>>,
    /// Timed messages per run, over all producers (instead of --duration).
    #[arg(long, conflicts_with_all = ["duration", "embedded"], value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) count: Option<u64>,
    /// Seconds each measurement runs, after its warm-up [default: 5; --embedded: 1].
    #[arg(long, value_parser = parse_seconds)]
    pub(super) duration: Option<Duration>,
    /// Seconds of warm-up at the same load before each run; not counted [default: 1].
    #[arg(long, value_parser = parse_warmup, conflicts_with = "embedded")]
    pub(super) warmup: Option<Duration>,
    /// A fixed total rate in messages per second (open loop: latency counts from each
    /// message's intended send time). Without it, producers publish as fast as the broker
    /// confirms.
    #[arg(long, value_parser = parse_rate, conflicts_with = "embedded")]
    pub(super) rate: Option<f64>,
    /// Messages each producer publishes per call, in flight together until confirmed (one
    /// HTTP request, or that many publishes awaiting their acks or confirms).
    #[arg(long, default_value = "256", value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "embedded")]
    pub(super) batch: u32,
    /// Consumers take messages without acknowledging them (at most once): ferry's
    /// auto_ack receive, RabbitMQ's no-ack consume, a JetStream consumer with ack policy
    /// none. NATS core never acknowledges.
    #[arg(long, conflicts_with = "embedded")]
    pub(super) auto_ack: bool,
    /// Messages a consumer may hold unacknowledged: prefetch, or the receive batch.
    #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "embedded")]
    pub(super) prefetch: u32,
    /// How many times the whole sequence runs; the table shows medians [default: 3; over
    /// the network 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(super) rounds: Option<u32>,
    /// A smoke run: short and small (over the network, 2000 messages per run). Checks that
    /// everything works; the numbers mean little.
    #[arg(long, conflicts_with_all = ["duration", "rounds", "count"])]
    pub(super) quick: bool,
    /// Seconds that connecting, draining the last messages, or a --count run in all may
    /// take before the run is abandoned.
    #[arg(long, default_value = "60", value_parser = parse_seconds, conflicts_with = "embedded")]
    pub(super) timeout: Duration,
    /// PEM file of the certificate authorities for https:// [default: the system's].
    #[arg(long, conflicts_with = "embedded")]
    pub(super) ca_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    /// Also write a plot of latency over time (p50, p99, max per interval) to this SVG file.
    #[arg(long, value_name = "FILE", conflicts_with = "embedded")]
    pub(super) svg: Option<PathBuf>,
}

fn parse_warmup(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_seconds(s)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (1.0..=100e6).contains(&r) => Ok(r),
        _ => Err(format!("`{s}`: a rate is 1 to 100000000 messages per second")),
    }
}

pub(super) fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "fsync" => Ok(Durability::Fsync),
        "none" => Ok(Durability::None),
        _ => {
            let ms = s.strip_prefix("interval:").ok_or_else(|| format!("`{s}`: use fsync, none or interval:<ms>"))?;
            match ms.parse::<u64>() {
                Ok(ms) if (1..=60_000).contains(&ms) => Ok(Durability::Interval(ms)),
                _ => Err(format!("`{ms}`: the interval is 1 to 60000 milliseconds")),
            }
        }
    }
}

fn label(d: Durability) -> String {
    match d {
        Durability::Fsync => "fsync".into(),
        Durability::Interval(ms) => format!("int:{ms}"),
        Durability::None => "none".into(),
    }
}

#[derive(Default)]
struct Row {
    durability: Option<Durability>,
    size: usize,
    producers: u32,
    log: Vec<f64>,
    publish: Vec<f64>,
    e2e: Vec<f64>,
    latencies_us: Vec<f64>,
    overhead: Vec<f64>,
}

pub(crate) fn run(args: &BrokerArgs) -> anyhow::Result<ExitCode> {
    if !args.embedded {
        return super::net::run(args);
    }
    let (duration, rounds) = timing(args.quick, args.duration, args.rounds);
    let mut sizes = args.sizes.clone();
    dedup(&mut sizes);
    let mut producers = args.producers.clone().unwrap_or_else(|| vec![1, 16]);
    dedup(&mut producers);
    let mut modes = args.durability.clone().unwrap_or_else(|| vec![Durability::Fsync, Durability::None]);
    dedup(&mut modes);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    let mut rows = Vec::new();
    for &d in &modes {
        for &size in &sizes {
            for &p in &producers {
                rows.push(Row { durability: Some(d), size, producers: p, ..Row::default() });
            }
        }
    }
    let bar = super::progress(rounds as u64 * rows.len() as u64);
    for round in 1..=rounds {
        for row in &mut rows {
            let d = row.durability.unwrap_or_default();
            bar.set_message(format!("round {round}/{rounds}: {} {} B × {}", label(d), row.size, row.producers));
            let m = runtime.block_on(measure(&args.dir, d, row.size, row.producers, duration))?;
            row.log.push(m.log);
            row.publish.push(m.publish);
            row.e2e.push(m.e2e);
            row.latencies_us.extend(m.latencies_us);
            row.overhead.push(m.publish / m.log);
            bar.inc(1);
        }
    }
    bar.set_message("memory per queued message");
    let queued = if args.quick { 20_000 } else { 200_000 };
    let per_message = runtime.block_on(memory_per_message(&args.dir, queued))?;
    bar.finish_and_clear();
    runtime.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        let out = json!({
            "rounds": rounds,
            "seconds_per_measurement": duration.as_secs_f64(),
            "release_build": !cfg!(debug_assertions),
            "bytes_per_queued_message": per_message,
            "rows": rows.iter().map(|r| json!({
                "durability": label(r.durability.unwrap_or_default()),
                "size": r.size,
                "producers": r.producers,
                "log_appends_per_sec": median(&r.log),
                "publish_per_sec": median(&r.publish),
                "end_to_end_per_sec": median(&r.e2e),
                "latency_p50_us": percentile(&r.latencies_us, 0.5),
                "latency_p99_us": percentile(&r.latencies_us, 0.99),
                "publish_over_log": median(&r.overhead),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut t = String::new();
        let _ =
            writeln!(t, "ferry bench broker --embedded: median of {rounds} round(s) × {:.1} s", duration.as_secs_f64());
        if cfg!(debug_assertions) {
            let _ = writeln!(t, "note: this is a debug build: its numbers say little; build with --release");
        }
        let _ = writeln!(
            t,
            "{:<6} {:>6} {:>9} {:>12} {:>12} {:>9} {:>12} {:>10} {:>10}",
            "mode", "size", "producers", "log /s", "publish /s", "pub/log", "end-to-end/s", "p50 µs", "p99 µs"
        );
        for r in &rows {
            let _ = writeln!(
                t,
                "{:<6} {:>6} {:>9} {:>12.0} {:>12.0} {:>8.2}× {:>12.0} {:>10.0} {:>10.0}",
                label(r.durability.unwrap_or_default()),
                r.size,
                r.producers,
                median(&r.log),
                median(&r.publish),
                median(&r.overhead),
                median(&r.e2e),
                percentile(&r.latencies_us, 0.5),
                percentile(&r.latencies_us, 0.99)
            );
        }
        let _ = writeln!(t, "pub/log: the broker's publish rate over ferry-log's bare append rate (1.0 = no overhead)");
        match per_message {
            Some(b) => {
                let _ = writeln!(t, "memory: {b:.0} bytes per queued message (resident memory growth over {queued} queued 64 B messages; bodies stay in the log)");
            }
            None => {
                let _ = writeln!(t, "memory: not measured (no /proc/self/status)");
            }
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

struct Measured {
    log: f64,
    publish: f64,
    e2e: f64,
    latencies_us: Vec<f64>,
}

async fn measure(
    dir: &Path,
    d: Durability,
    size: usize,
    producers: u32,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let payload = Bytes::from(vec![0x5au8; size]);
    // The bare log, with records as big as the engine's publish commands.
    let record = ferry_broker::Command::Publish {
        now: 0,
        name: "bench".into(),
        producer: None,
        messages: vec![NewMessage::new(payload.clone())],
    }
    .encode()?;
    let log_rate = {
        let tmp = scratch(dir, "broker-log")?;
        let log = ferry_log::Log::open(tmp.path())?;
        let record = Bytes::from(record);
        let l = log.clone();
        let r = closed_loop_rate(producers, duration, move |_| {
            let (log, record) = (l.clone(), record.clone());
            async move {
                match d {
                    Durability::Fsync => log.append(record).await?,
                    Durability::None | Durability::Interval(_) => log.append_unsynced(record).await?,
                };
                Ok(())
            }
        })
        .await?;
        log.close().await?;
        r
    };
    let settings = Settings { durability: d, ..Settings::default() };
    let publish_rate = {
        let tmp = scratch(dir, "broker-pub")?;
        let broker = Broker::open(tmp.path()).await?;
        broker.create_queue("bench", "bench", settings.clone()).await?;
        let b = broker.clone();
        let p = payload.clone();
        let r = closed_loop_rate(producers, duration, move |_| {
            let (broker, payload) = (b.clone(), p.clone());
            async move {
                broker.publish("bench", None, vec![NewMessage::new(payload)]).await?;
                Ok(())
            }
        })
        .await?;
        broker.purge("bench").await?;
        broker.close().await?;
        r
    };
    let (e2e, latencies_us) = end_to_end(dir, settings, size, producers, duration).await?;
    Ok(Measured { log: log_rate, publish: publish_rate, e2e, latencies_us })
}

/// Producers publish bodies that start with the time of the publish call; two consumers
/// receive and ack, recording each message's latency.
async fn end_to_end(
    dir: &Path,
    settings: Settings,
    size: usize,
    producers: u32,
    duration: Duration,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let tmp = scratch(dir, "broker-e2e")?;
    let broker = Broker::open(tmp.path()).await?;
    broker.create_queue("bench", "bench", settings).await?;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    // The producers' timed window, as `rate` draws it; the backlog drained after it does
    // not count.
    let (warm_end, end) = (epoch + duration / 5, epoch + duration / 5 + duration);
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let (broker, stop, received, latencies) = (broker.clone(), stop.clone(), received.clone(), latencies.clone());
        consumers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let request = ReceiveRequest { max: 100, ..ReceiveRequest::default() };
                let got = broker.receive("bench", None, request, Duration::from_millis(50)).await?;
                let now = Instant::now();
                let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
                if now >= warm_end && now < end {
                    received.fetch_add(got.len() as u64, Ordering::Relaxed);
                    for m in &got {
                        let mut t = [0u8; 8];
                        let n = m.message.body.len().min(8);
                        t[..n].copy_from_slice(&m.message.body[..n]);
                        let sent = Duration::from_nanos(u64::from_le_bytes(t));
                        mine.push(now.duration_since(epoch).saturating_sub(sent).as_secs_f64() * 1e6);
                    }
                }
                if !leases.is_empty() {
                    broker.ack("bench", None, &leases).await?;
                }
            }
            if let Ok(mut all) = latencies.lock() {
                all.extend(mine);
            }
            anyhow::Ok(())
        }));
    }
    let b = broker.clone();
    closed_loop_rate(producers, duration, move |_| {
        let broker = b.clone();
        async move {
            let mut body = vec![0u8; size.max(8)];
            body[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
            body.truncate(size.max(8));
            broker.publish("bench", None, vec![NewMessage::new(body)]).await?;
            Ok(())
        }
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    for c in consumers {
        c.await.context("consumer task failed")??;
    }
    let e2e = received.load(Ordering::Relaxed) as f64 / duration.as_secs_f64();
    broker.purge("bench").await?;
    broker.close().await?;
    let latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    Ok((e2e, latencies))
}

/// Resident memory of this process, from /proc/self/status (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// How much memory each queued message costs the broker: resident memory growth while
/// `count` 64-byte messages pile up unconsumed.
async fn memory_per_message(dir: &Path, count: usize) -> anyhow::Result<Option<f64>> {
    let tmp = scratch(dir, "broker-mem")?;
    let broker = Broker::open(tmp.path()).await?;
    broker.create_queue("bench", "bench", Settings { durability: Durability::None, ..Settings::default() }).await?;
    let before = resident_bytes();
    let batch: Vec<NewMessage> = (0..1000).map(|_| NewMessage::new(vec![0x5au8; 64])).collect();
    for _ in 0..count / 1000 {
        broker.publish("bench", None, batch.clone()).await?;
    }
    let after = resident_bytes();
    let depth = broker.describe("bench")?.stats.depth;
    broker.purge("bench").await?;
    broker.close().await?;
    Ok(before.zip(after).map(|(b, a)| a.saturating_sub(b) as f64 / depth.max(1) as f64))
}
