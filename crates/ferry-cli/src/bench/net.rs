//! `ferry bench broker <url>`: the same workloads against any broker the URL names (see
//! `super::target`), one run per durability mode, message size and number of producers,
//! repeated `--rounds` times; then a table (or `--json`) and optionally an SVG plot of
//! latency over time.

use super::broker::BrokerArgs;
use super::driver::{self, merge_series, Plan, RunResult, HEADER};
use super::report::{rate, size_label};
use super::target::{self, Workload};
use super::{dedup, Stop};
use anyhow::Context as _;
use ferry_broker::Durability;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// A durability mode as `--durability` spells it.
fn label(d: Durability) -> String {
    match d {
        Durability::Fsync => "fsync".into(),
        Durability::Interval(ms) => format!("interval:{ms}"),
        Durability::None => "none".into(),
    }
}

/// One line of the report: every round of one configuration.
struct Row {
    durability: Durability,
    size: usize,
    producers: u32,
    /// What the target does for `durability`.
    mode: String,
    runs: Vec<RunResult>,
    errors: Vec<String>,
}

/// The rounds of a row, summed up.
struct Summary {
    publish_per_sec: f64,
    e2e_per_sec: f64,
    published: u64,
    received: u64,
    expected: u64,
    foreign: u64,
    latency: Histogram<u64>,
    series: Vec<Histogram<u64>>,
}

impl Row {
    fn summary(&self) -> anyhow::Result<Option<Summary>> {
        if self.runs.is_empty() {
            return Ok(None);
        }
        let mut latency = driver::histogram(3);
        let mut series = Vec::new();
        for r in &self.runs {
            latency.add(&r.latency).context("merging latency histograms")?;
            merge_series(&mut series, &r.series)?;
        }
        let rates = |f: fn(&RunResult) -> f64| super::disk::median(&self.runs.iter().map(f).collect::<Vec<_>>());
        Ok(Some(Summary {
            publish_per_sec: rates(RunResult::publish_rate),
            e2e_per_sec: rates(RunResult::e2e_rate),
            published: self.runs.iter().map(|r| r.published).sum(),
            received: self.runs.iter().map(|r| r.received).sum(),
            expected: self.runs.iter().map(|r| r.expected).sum(),
            foreign: self.runs.iter().map(|r| r.foreign).sum(),
            latency,
            series,
        }))
    }
}

/// Latency percentiles in microseconds, or nothing without samples.
fn percentiles(h: &Histogram<u64>) -> Option<[f64; 5]> {
    if h.is_empty() {
        return None;
    }
    let q = |p: f64| h.value_at_quantile(p) as f64;
    Some([q(0.5), q(0.99), q(0.999), h.max() as f64, h.mean()])
}

pub(crate) fn run(args: &BrokerArgs) -> anyhow::Result<ExitCode> {
    let url = args.target.as_deref().context("give a broker URL, or --embedded")?;
    let endpoint = target::endpoint(url, args.ca_file.clone())?;
    let system = target::system(&endpoint)?;
    let mut sizes = args.sizes.clone();
    dedup(&mut sizes);
    if let Some(small) = sizes.iter().find(|s| **s < HEADER) {
        anyhow::bail!(
            "message size {small} is too small: over the network a message carries a {HEADER}-byte timestamp"
        );
    }
    let mut producers = args.producers.clone().unwrap_or_else(|| vec![4]);
    dedup(&mut producers);
    let mut modes = args.durability.clone().unwrap_or_else(|| vec![Durability::Fsync]);
    dedup(&mut modes);
    let (stop, warmup, rounds) = if args.quick {
        (Stop::Count(2_000), Duration::ZERO, 1)
    } else {
        let stop = match (args.count, args.duration) {
            (Some(n), _) => Stop::Count(n),
            (None, d) => Stop::Duration(d.unwrap_or(Duration::from_secs(5))),
        };
        (stop, args.warmup.unwrap_or(Duration::from_secs(1)), args.rounds.unwrap_or(1))
    };
    let bucket = match stop {
        Stop::Duration(d) => (d / 100).max(Duration::from_millis(10)),
        Stop::Count(_) => Duration::from_millis(50),
    };

    let mut rows = Vec::new();
    for &durability in &modes {
        for &size in &sizes {
            for &p in &producers {
                rows.push(Row {
                    durability,
                    size,
                    producers: p,
                    mode: String::new(),
                    runs: Vec::new(),
                    errors: Vec::new(),
                });
            }
        }
    }
    // Whole rounds repeat, so that drift on a shared machine hits every row alike.
    let mut plans = Vec::new();
    let pid = std::process::id();
    for round in 1..=rounds {
        for row in &rows {
            plans.push(Plan {
                workload: Workload {
                    name: format!("ferry-bench-{pid}-{}", plans.len() + 1),
                    pattern: args.pattern,
                    size: row.size,
                    durability: row.durability,
                    consumers: args.consumers,
                    prefetch: args.prefetch,
                    batch: args.batch as usize,
                    auto_ack: args.auto_ack,
                },
                producers: row.producers,
                stop,
                warmup,
                rate: args.rate,
                timeout: args.timeout,
                bucket,
                round,
            });
        }
    }

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    let bar = super::progress(plans.len() as u64);
    let outcome = runtime.block_on(target::run(&endpoint, &plans, |i, plan| {
        if i > 0 {
            bar.inc(1);
        }
        let w = &plan.workload;
        bar.set_message(format!(
            "round {}/{rounds}: {} {} {} × {} producers, {} consumers",
            plan.round,
            w.pattern,
            size_label(w.size),
            label(w.durability),
            plan.producers,
            w.consumers
        ));
    }));
    bar.finish_and_clear();
    // A task stuck in a broker's client must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let (described, results) = outcome?;
    for ((plan, mode), result) in plans.iter().zip(described).zip(results) {
        let w = &plan.workload;
        let Some(row) =
            rows.iter_mut().find(|r| r.durability == w.durability && r.size == w.size && r.producers == plan.producers)
        else {
            continue;
        };
        row.mode = mode;
        match result {
            Ok(r) => row.runs.push(r),
            Err(e) => {
                let e = format!("round {}: {e:#}", plan.round);
                eprintln!("ferry bench broker: {} {} {}: {e}", size_label(w.size), label(w.durability), plan.producers);
                row.errors.push(e);
            }
        }
    }

    let setup = Setup { endpoint: endpoint.display(), system, args, stop, warmup, rounds };
    if let Some(path) = &args.svg {
        let panels = rows
            .iter()
            .filter_map(|r| {
                let s = r.summary().ok()??;
                Some(super::svg::Panel {
                    title: format!("{} · {}", row_title(args, r), setup.system),
                    bucket_secs: bucket.as_secs_f64(),
                    points: s
                        .series
                        .iter()
                        .map(|h| {
                            (!h.is_empty()).then(|| {
                                [h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()].map(|v| v as f64)
                            })
                        })
                        .collect(),
                })
            })
            .collect::<Vec<_>>();
        let title = format!("ferry bench broker {} ({}): end-to-end latency over time", setup.endpoint, setup.system);
        std::fs::write(path, super::svg::plot(&title, &panels))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&setup, &rows)?)?);
    } else {
        print!("{}", to_table(&setup, &rows)?);
    }
    Ok(if rows.iter().any(|r| !r.errors.is_empty()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What the whole invocation was.
struct Setup<'a> {
    endpoint: String,
    system: &'static str,
    args: &'a BrokerArgs,
    stop: Stop,
    warmup: Duration,
    rounds: u32,
}

fn row_title(args: &BrokerArgs, r: &Row) -> String {
    format!(
        "{} {} {}, {} producers, {} consumers",
        args.pattern,
        size_label(r.size),
        label(r.durability),
        r.producers,
        args.consumers
    )
}

fn to_json(setup: &Setup<'_>, rows: &[Row]) -> anyhow::Result<Value> {
    let args = setup.args;
    let mut out = Vec::new();
    for r in rows {
        let mut row = json!({
            "pattern": args.pattern,
            "size": r.size,
            "durability": label(r.durability),
            "target_durability": r.mode,
            "producers": r.producers,
            "consumers": args.consumers,
        });
        if let Some(s) = r.summary()? {
            row["published"] = json!(s.published);
            row["received"] = json!(s.received);
            row["expected"] = json!(s.expected);
            row["lost"] = json!(s.expected.saturating_sub(s.received));
            row["foreign"] = json!(s.foreign);
            row["publish_per_sec"] = json!(s.publish_per_sec);
            row["end_to_end_per_sec"] = json!(s.e2e_per_sec);
            row["latency_us"] = match percentiles(&s.latency) {
                Some([p50, p99, p999, max, mean]) => json!({
                    "samples": s.latency.len(),
                    "p50": p50, "p99": p99, "p99_9": p999, "max": max, "mean": mean,
                }),
                None => Value::Null,
            };
            row["rounds"] = json!(r
                .runs
                .iter()
                .map(|run| json!({
                    "published": run.published,
                    "received": run.received,
                    "expected": run.expected,
                    "publish_seconds": run.publish_secs,
                    "end_to_end_seconds": run.e2e_secs,
                    "publish_per_sec": run.publish_rate(),
                    "end_to_end_per_sec": run.e2e_rate(),
                }))
                .collect::<Vec<_>>());
            let bucket = r.runs.first().map_or(0.0, |run| run.bucket.as_secs_f64());
            row["latency_over_time"] = json!(s
                .series
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.is_empty())
                .map(|(i, h)| json!({
                    "t": (i + 1) as f64 * bucket,
                    "samples": h.len(),
                    "p50_us": h.value_at_quantile(0.5),
                    "p99_us": h.value_at_quantile(0.99),
                    "max_us": h.max(),
                }))
                .collect::<Vec<_>>());
        }
        if !r.errors.is_empty() {
            row["errors"] = json!(r.errors);
        }
        out.push(row);
    }
    Ok(json!({
        "target": setup.endpoint,
        "system": setup.system,
        "release_build": !cfg!(debug_assertions),
        "load": match args.rate {
            Some(r) => json!({ "mode": "rate", "msgs_per_sec": r }),
            None => json!({ "mode": "saturation" }),
        },
        "stop": match setup.stop {
            Stop::Count(n) => json!({ "count": n }),
            Stop::Duration(d) => json!({ "seconds": d.as_secs_f64() }),
        },
        "warmup_seconds": setup.warmup.as_secs_f64(),
        "batch": args.batch,
        "prefetch": args.prefetch,
        "auto_ack": args.auto_ack,
        "rounds": setup.rounds,
        "rates": "publish_per_sec: timed messages confirmed ÷ time from the end of the warm-up to the last \
                  confirmation; end_to_end_per_sec: timed messages received (every subscription's copy) ÷ time \
                  to the last receipt; latency: receipt time − send time (fixed rate: intended send time)",
        "rows": out,
    }))
}

fn to_table(setup: &Setup<'_>, rows: &[Row]) -> anyhow::Result<String> {
    let args = setup.args;
    let mut t = String::new();
    let load = match args.rate {
        Some(r) => format!("fixed rate {} msg/s", rate(r)),
        None => "saturation".to_string(),
    };
    let stop = match setup.stop {
        Stop::Count(n) => format!("{n} messages per run"),
        Stop::Duration(d) => format!("{:.1} s per run", d.as_secs_f64()),
    };
    let build = if cfg!(debug_assertions) { "debug build (its numbers say little)" } else { "release build" };
    let _ = writeln!(t, "ferry bench broker {} ({}): {} pattern, {load}", setup.endpoint, setup.system, args.pattern);
    let _ = writeln!(
        t,
        "{stop} after {:.1} s warm-up; batch {}, prefetch {}{}; {} round(s), median rates; {build}",
        setup.warmup.as_secs_f64(),
        args.batch,
        args.prefetch,
        if args.auto_ack { ", consumers without acks" } else { "" },
        setup.rounds
    );
    let _ = writeln!(t);
    let header = [
        "durability",
        "size",
        "prod",
        "cons",
        "publish/s",
        "end-to-end/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "received/expected",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    let mut notes = Vec::new();
    for r in rows {
        let mut line =
            vec![label(r.durability), size_label(r.size), r.producers.to_string(), args.consumers.to_string()];
        match r.summary()? {
            Some(s) => {
                line.push(rate(s.publish_per_sec));
                if args.consumers == 0 {
                    line.extend(std::iter::repeat_n("-".to_string(), 6));
                } else {
                    line.push(rate(s.e2e_per_sec));
                    match percentiles(&s.latency) {
                        Some(p) => line.extend(p[..4].iter().map(|v| format!("{v:.0}"))),
                        None => line.extend(std::iter::repeat_n("-".to_string(), 4)),
                    }
                    line.push(format!("{}/{}", s.received, s.expected));
                    if s.received < s.expected {
                        notes.push(format!(
                            "{}: {} of {} messages never arrived",
                            row_title(args, r),
                            s.expected - s.received,
                            s.expected
                        ));
                    }
                }
                if s.foreign > 0 {
                    notes.push(format!(
                        "{}: {} messages without the benchmark's header",
                        row_title(args, r),
                        s.foreign
                    ));
                }
            }
            None => line.extend(std::iter::repeat_n("failed".to_string(), 7)),
        }
        table.push(line);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| table.iter().map(|l| l.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    for line in &table {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
            if c == 0 {
                let _ = write!(text, "{cell}{pad}  ");
            } else {
                let _ = write!(text, "{pad}{cell}  ");
            }
        }
        let _ = writeln!(t, "{}", text.trim_end());
    }
    let _ = writeln!(t);
    let mut seen = Vec::new();
    for r in rows {
        if !r.mode.is_empty() && !seen.contains(&(r.durability, &r.mode)) {
            seen.push((r.durability, &r.mode));
            let _ = writeln!(t, "{}: {}", label(r.durability), r.mode);
        }
    }
    let _ = writeln!(
        t,
        "publish/s: confirmed messages per second; end-to-end/s: messages received per second (in a fan-out, \
         every subscription's copy); latency: from {} to receipt",
        if args.rate.is_some() { "the intended send time" } else { "the publish call" }
    );
    for r in rows {
        for e in &r.errors {
            notes.push(format!("{} failed: {e}", row_title(args, r)));
        }
    }
    for n in notes {
        let _ = writeln!(t, "note: {n}");
    }
    Ok(t)
}
