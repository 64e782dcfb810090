//! `ferry bench broker --embedded`: the broker engine in this process, next to the bare
//! ferry-log it writes to, measured in the same run.
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

#[derive(clap::Args)]
pub(crate) struct BrokerArgs {
    /// Run the broker engine inside this process (the only mode so far).
    #[arg(long, required = true)]
    embedded: bool,
    /// Directory for the broker's data; it should be on the disk you care about.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Message sizes, comma-separated; bytes, or with a k/KiB or m/MiB suffix.
    #[arg(long, value_delimiter = ',', default_value = "64,1KiB", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Numbers of concurrent producers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    producers: Vec<u32>,
    /// Durability modes, comma-separated: fsync, none, interval:<ms>.
    #[arg(long, value_delimiter = ',', default_value = "fsync,none", value_parser = parse_durability)]
    durability: Vec<Durability>,
    /// Seconds each measurement runs, after a warm-up of a fifth of that [default: 1].
    #[arg(long, value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// How many times the whole sequence runs; the table shows medians [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: Option<u32>,
    /// A smoke run: one short round. Checks that everything works; the numbers mean little.
    #[arg(long, conflicts_with_all = ["duration", "rounds"])]
    quick: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
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
    let _ = args.embedded;
    let (duration, rounds) = timing(args.quick, args.duration, args.rounds);
    let mut sizes = args.sizes.clone();
    dedup(&mut sizes);
    let mut producers = args.producers.clone();
    dedup(&mut producers);
    let mut modes = args.durability.clone();
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
