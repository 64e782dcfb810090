//! `ferry bench log`: durable appends per second of ferry-log, next to the raw rate of the
//! same disk for one record per `write` + `fdatasync`, measured in the same run.
//!
//! For each record size and number of concurrent appenders, every round measures the raw
//! loop and then the log, back to back in fresh directories under `--dir`, so that drift on
//! a shared machine hits both alike. The ratio of each round is log ÷ raw; the
//! table shows the median over the rounds. Group commit is what makes the ratio large: one
//! sync covers every record queued while the previous one ran.

use super::disk::{closed_loop_rate, median, scratch, timing};
use super::{dedup, parse_seconds, parse_size};
use anyhow::Context as _;
use bytes::Bytes;
use ferry_log::{Durability, LogOptions};
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The acceptance target: 256 appenders of 64-byte records in fsync mode reach this many
/// times the raw one-record-per-fdatasync rate.
const TARGET: (usize, usize, f64) = (64, 256, 50.0);

#[derive(clap::Args)]
pub(crate) struct LogArgs {
    /// Directory to create the logs in. It should be on the disk you care about: a tmpfs
    /// makes fdatasync free and the numbers meaningless.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Record sizes, comma-separated; bytes, or with a k/KiB or m/MiB suffix.
    #[arg(long, value_delimiter = ',', default_value = "64,1KiB", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Numbers of concurrent appenders, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    appenders: Vec<u32>,
    /// Seconds each measurement runs, after a warm-up of a fifth of that [default: 1].
    #[arg(long, value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// How many times the whole sequence runs; the table shows medians [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: Option<u32>,
    /// Durability mode of the log: fsync, none, or interval:<milliseconds>.
    #[arg(long, default_value = "fsync", value_parser = parse_durability)]
    durability: Durability,
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
            let ms: u64 = ms.parse().map_err(|_| format!("`{ms}` is not a number of milliseconds"))?;
            if ms == 0 {
                return Err("the interval must be at least 1 ms".into());
            }
            Ok(Durability::Interval(Duration::from_millis(ms)))
        }
    }
}

fn durability_label(d: Durability) -> String {
    match d {
        Durability::Fsync => "fsync".into(),
        Durability::None => "none".into(),
        Durability::Interval(i) => format!("interval:{}", i.as_millis()),
    }
}

/// One row of the table: a size and a number of appenders, with one sample per round.
struct Row {
    size: usize,
    appenders: u32,
    log_rates: Vec<f64>,
    raw_rates: Vec<f64>,
    ratios: Vec<f64>,
}

pub(crate) fn run(args: &LogArgs) -> anyhow::Result<ExitCode> {
    let (duration, rounds) = timing(args.quick, args.duration, args.rounds);
    let mut sizes = args.sizes.clone();
    dedup(&mut sizes);
    let mut appenders = args.appenders.clone();
    dedup(&mut appenders);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    let mut rows: Vec<Row> = sizes
        .iter()
        .flat_map(|&size| {
            appenders.iter().map(move |&n| Row {
                size,
                appenders: n,
                log_rates: vec![],
                raw_rates: vec![],
                ratios: vec![],
            })
        })
        .collect();
    let bar = super::progress(rounds as u64 * rows.len() as u64);
    for round in 1..=rounds {
        for &size in &sizes {
            for row in rows.iter_mut().filter(|r| r.size == size) {
                // The raw rate right before each log run: this disk's speed drifts by 2×
                // within a minute, so only adjacent runs compare.
                bar.set_message(format!("round {round}/{rounds}: raw write+fdatasync, {size} B"));
                let raw = raw_rate(&args.dir, size, duration)?;
                bar.set_message(format!("round {round}/{rounds}: ferry-log, {size} B × {} appenders", row.appenders));
                let rate = runtime.block_on(log_rate(&args.dir, size, row.appenders, args.durability, duration))?;
                row.log_rates.push(rate);
                row.raw_rates.push(raw);
                row.ratios.push(rate / raw);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    runtime.shutdown_timeout(Duration::from_secs(1));
    let target =
        rows.iter().find(|r| (r.size, r.appenders as usize) == (TARGET.0, TARGET.1)).map(|r| median(&r.ratios));
    let fsync = args.durability == Durability::Fsync;
    if args.json {
        let out = json!({
            "durability": durability_label(args.durability),
            "rounds": rounds,
            "seconds_per_measurement": duration.as_secs_f64(),
            "dir": args.dir,
            "release_build": !cfg!(debug_assertions),
            "rows": rows.iter().map(|r| json!({
                "size": r.size,
                "appenders": r.appenders,
                "log_appends_per_sec": median(&r.log_rates),
                "raw_fdatasyncs_per_sec": median(&r.raw_rates),
                "ratio": median(&r.ratios),
                "ratio_per_round": r.ratios,
            })).collect::<Vec<_>>(),
            "target": target.filter(|_| fsync).map(|t| json!({ "ratio": t, "required": TARGET.2, "met": t >= TARGET.2 })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "ferry bench log: appends/s, durability {}, median of {rounds} round(s) × {:.1} s, in {}",
            durability_label(args.durability),
            duration.as_secs_f64(),
            args.dir.display()
        );
        if cfg!(debug_assertions) {
            let _ = writeln!(t, "note: this is a debug build: its numbers say little; build with --release");
        }
        let _ = writeln!(
            t,
            "{:>8} {:>10} {:>16} {:>22} {:>9}",
            "size", "appenders", "ferry-log /s", "raw write+fdatasync /s", "ratio"
        );
        for r in &rows {
            let _ = writeln!(
                t,
                "{:>8} {:>10} {:>16.0} {:>22.0} {:>8.1}×",
                r.size,
                r.appenders,
                median(&r.log_rates),
                median(&r.raw_rates),
                median(&r.ratios)
            );
        }
        if let (Some(ratio), true) = (target, fsync) {
            let verdict = if ratio >= TARGET.2 { "met" } else { "NOT met" };
            let _ = writeln!(
                t,
                "target: {} appenders × {} B reach ≥ {}× the raw rate: {ratio:.1}× ({verdict})",
                TARGET.1, TARGET.0, TARGET.2
            );
        }
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One record per `write` + `fdatasync`, in a loop: what a log without group commit pays.
fn raw_rate(dir: &Path, size: usize, duration: Duration) -> anyhow::Result<f64> {
    let tmp = scratch(dir, "raw")?;
    let path = tmp.path().join("raw");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    let record = vec![0x5au8; size + 24]; // a ferry-log record's header is 24 bytes
    let warm_end = Instant::now() + duration / 5;
    while Instant::now() < warm_end {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while n < 2 || start.elapsed() < duration {
        file.write_all(&record)?;
        file.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// `appenders` tasks appending `size`-byte records as fast as completions come back.
async fn log_rate(
    dir: &Path,
    size: usize,
    appenders: u32,
    durability: Durability,
    duration: Duration,
) -> anyhow::Result<f64> {
    let tmp = scratch(dir, "log")?;
    let log = LogOptions::new().durability(durability).open(tmp.path())?;
    let payload = Bytes::from(vec![0xa5u8; size]);
    let l = log.clone();
    let rate = closed_loop_rate(appenders, duration, move |_| {
        let (log, payload) = (l.clone(), payload.clone());
        async move {
            log.append(payload).await?;
            Ok(())
        }
    })
    .await?;
    log.close().await?;
    Ok(rate)
}
