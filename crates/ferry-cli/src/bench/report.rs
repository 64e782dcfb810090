//! Results, their ratios, and how they are shown: a table for people, JSON for scripts.
//!
//! Every ratio is ferry ÷ reference. For latency (time per round trip) lower is better,
//! so a ratio below 1 means ferry is faster; for throughput (messages per second) higher is
//! better, so a ratio above 1 means ferry is faster. Each row says which way it goes.

use super::{Stop, Transport};
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// REQ/REP round trips of `size`-byte messages.
    Latency { size: usize },
    /// A PUSH/PULL stream of `size`-byte messages.
    Throughput { size: usize },
}

impl Workload {
    pub(crate) fn label(self) -> String {
        match self {
            Workload::Latency { size } => format!("REQ/REP {}", size_label(size)),
            Workload::Throughput { size } => format!("PUSH/PULL {}", size_label(size)),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Workload::Latency { .. } => "reqrep_latency",
            Workload::Throughput { .. } => "pushpull_throughput",
        }
    }

    fn size(self) -> usize {
        match self {
            Workload::Latency { size } | Workload::Throughput { size } => size,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum System {
    Ferry,
    Floor,
    Nng,
}

impl System {
    /// The name in JSON, file names and addresses.
    pub(crate) fn key(self) -> &'static str {
        match self {
            System::Ferry => "ferry",
            System::Floor => "floor",
            System::Nng => "libnng",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            System::Ferry => "ferry",
            System::Floor => "raw floor",
            System::Nng => "libnng",
        }
    }
}

pub(crate) fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Round-trip times of one latency run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LatencyStats {
    pub(crate) samples: usize,
    pub(crate) median_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) min_us: f64,
    pub(crate) max_us: f64,
}

/// Messages received from the first timed one to the last, and the time between them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Throughput {
    pub(crate) messages: u64,
    pub(crate) seconds: f64,
    pub(crate) msgs_per_s: f64,
    pub(crate) mib_per_s: f64,
}

impl Throughput {
    /// `messages` arrived over `elapsed`, timed from the arrival of the first: so they
    /// span `messages - 1` intervals.
    pub(crate) fn new(messages: u64, elapsed: Duration, size: usize) -> anyhow::Result<Throughput> {
        let seconds = elapsed.as_secs_f64();
        if messages < 2 || seconds <= 0.0 {
            anyhow::bail!("too few messages to measure a rate ({messages} in {seconds:.6} s)");
        }
        let msgs_per_s = (messages - 1) as f64 / seconds;
        Ok(Throughput { messages, seconds, msgs_per_s, mib_per_s: msgs_per_s * size as f64 / (1 << 20) as f64 })
    }
}

/// The raw result of one round of one measurement.
pub(crate) enum Sample {
    /// Round-trip times in nanoseconds.
    Latency(Vec<u64>),
    Throughput(Throughput),
}

/// Throughput over several rounds: the median round, and every round for the record.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ThroughputSummary {
    pub(crate) msgs_per_s: f64,
    pub(crate) mib_per_s: f64,
    pub(crate) rounds: Vec<Throughput>,
}

/// What a measurement's rounds add up to: latency percentiles over every round's samples,
/// and the median throughput of the rounds (robust to one round hit by a noisy neighbour).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Summary {
    Latency(LatencyStats),
    Throughput(ThroughputSummary),
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=1).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl LatencyStats {
    fn from_samples(mut ns: Vec<u64>) -> Option<LatencyStats> {
        if ns.is_empty() {
            return None;
        }
        ns.sort_unstable();
        let us = |v: u64| v as f64 / 1_000.0;
        let mean = ns.iter().map(|v| *v as f64).sum::<f64>() / ns.len() as f64 / 1_000.0;
        Some(LatencyStats {
            samples: ns.len(),
            median_us: us(percentile(&ns, 0.5)),
            p99_us: us(percentile(&ns, 0.99)),
            mean_us: mean,
            min_us: us(ns[0]),
            max_us: us(ns[ns.len() - 1]),
        })
    }
}

impl Summary {
    fn of(rounds: Vec<Sample>) -> Option<Summary> {
        let mut samples = Vec::new();
        let mut throughputs = Vec::new();
        for r in rounds {
            match r {
                Sample::Latency(ns) => samples.extend(ns),
                Sample::Throughput(t) => throughputs.push(t),
            }
        }
        if !throughputs.is_empty() {
            let mut rates: Vec<f64> = throughputs.iter().map(|t| t.msgs_per_s).collect();
            rates.sort_by(f64::total_cmp);
            let mid = rates.len() / 2;
            let median = if rates.len() % 2 == 1 { rates[mid] } else { (rates[mid - 1] + rates[mid]) / 2.0 };
            let mib = throughputs[0].mib_per_s / throughputs[0].msgs_per_s * median;
            return Some(Summary::Throughput(ThroughputSummary {
                msgs_per_s: median,
                mib_per_s: mib,
                rounds: throughputs,
            }));
        }
        LatencyStats::from_samples(samples).map(Summary::Latency)
    }
}

/// What the run was asked to do, echoed in the output.
pub(crate) struct Config {
    pub(crate) transports: Vec<Transport>,
    pub(crate) latency_stop: Stop,
    pub(crate) throughput_stop: Stop,
    pub(crate) rounds: u32,
    pub(crate) release_build: bool,
    pub(crate) runtime_workers: usize,
}

struct Entry {
    workload: Workload,
    transport: Transport,
    system: System,
    rounds: Vec<Sample>,
    errors: Vec<String>,
    /// Filled in by [`Report::finish`].
    summary: Option<Summary>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Median,
    P99,
    Rate,
}

/// One line of the table: one number per system and the two ratios.
#[derive(Serialize)]
struct Row {
    workload: &'static str,
    metric: &'static str,
    transport: Transport,
    size: usize,
    unit: &'static str,
    better: &'static str,
    ferry: Option<f64>,
    floor: Option<f64>,
    libnng: Option<f64>,
    ferry_over_libnng: Option<f64>,
    ferry_over_floor: Option<f64>,
    #[serde(skip)]
    label: String,
}

pub(crate) struct Report {
    config: Config,
    libnng: bool,
    notes: Vec<String>,
    entries: Vec<Entry>,
}

impl Report {
    pub(crate) fn new(config: Config) -> Report {
        Report { config, libnng: false, notes: Vec::new(), entries: Vec::new() }
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn set_libnng(&mut self, available: bool) {
        self.libnng = available;
    }

    pub(crate) fn add(
        &mut self,
        workload: Workload,
        transport: Transport,
        system: System,
        result: anyhow::Result<Sample>,
    ) {
        let at =
            self.entries.iter().position(|e| e.workload == workload && e.transport == transport && e.system == system);
        let entry = match at {
            Some(i) => &mut self.entries[i],
            None => {
                let e = Entry { workload, transport, system, rounds: Vec::new(), errors: Vec::new(), summary: None };
                self.entries.push(e);
                let last = self.entries.len() - 1;
                &mut self.entries[last]
            }
        };
        match result {
            Ok(sample) => entry.rounds.push(sample),
            Err(e) => entry.errors.push(format!("{e:#}")),
        }
    }

    /// Summarizes every measurement's rounds; call once all rounds are in.
    pub(crate) fn finish(&mut self) {
        for e in &mut self.entries {
            e.summary = Summary::of(std::mem::take(&mut e.rounds));
        }
    }

    /// Whether a ferry or floor measurement failed (libnng's failures are only noted: it is
    /// not ours to fix).
    pub(crate) fn own_failures(&self) -> bool {
        self.entries.iter().any(|e| e.system != System::Nng && !e.errors.is_empty())
    }

    fn value(&self, workload: Workload, transport: Transport, system: System, metric: Metric) -> Option<f64> {
        let e =
            self.entries.iter().find(|e| e.workload == workload && e.transport == transport && e.system == system)?;
        match (e.summary.as_ref()?, metric) {
            (Summary::Latency(l), Metric::Median) => Some(l.median_us),
            (Summary::Latency(l), Metric::P99) => Some(l.p99_us),
            (Summary::Throughput(t), Metric::Rate) => Some(t.msgs_per_s),
            _ => None,
        }
    }

    fn rows(&self) -> Vec<Row> {
        let mut seen: Vec<(Workload, Transport)> = Vec::new();
        for e in &self.entries {
            if !seen.contains(&(e.workload, e.transport)) {
                seen.push((e.workload, e.transport));
            }
        }
        let mut rows = Vec::new();
        for (workload, transport) in seen {
            let metrics: &[(Metric, &str, &str)] = match workload {
                Workload::Latency { .. } => {
                    &[(Metric::Median, "rtt_median", "RTT p50"), (Metric::P99, "rtt_p99", "RTT p99")]
                }
                Workload::Throughput { .. } => &[(Metric::Rate, "throughput", "")],
            };
            for &(metric, key, suffix) in metrics {
                let get = |s| self.value(workload, transport, s, metric);
                let (ferry, floor, libnng) = (get(System::Ferry), get(System::Floor), get(System::Nng));
                let ratio = |r: Option<f64>| Some(ferry? / r.filter(|v| *v > 0.0)?);
                let latency = metric != Metric::Rate;
                rows.push(Row {
                    workload: workload.key(),
                    metric: key,
                    transport,
                    size: workload.size(),
                    unit: if latency { "us" } else { "msg/s" },
                    better: if latency { "lower" } else { "higher" },
                    ferry,
                    floor,
                    libnng,
                    ferry_over_libnng: ratio(libnng),
                    ferry_over_floor: ratio(floor),
                    label: format!("{} {suffix}", workload.label()).trim_end().to_string(),
                });
            }
        }
        rows
    }

    /// The targets of the issue, checked against this run's numbers where they exist.
    fn targets(&self, rows: &[Row]) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut check = |what: String, ratio: Option<f64>, limit: f64, at_most: bool| {
            if let Some(r) = ratio {
                let met = if at_most { r <= limit } else { r >= limit };
                out.push(json!({ "target": what, "ratio": r, "limit": limit, "met": met }));
            }
        };
        for r in rows {
            if r.metric == "rtt_median" && r.transport == Transport::Tcp {
                check(format!("{} {} ≤ 0.7× libnng", r.transport, r.label), r.ferry_over_libnng, 0.7, true);
                check(format!("{} {} ≤ 2× raw floor", r.transport, r.label), r.ferry_over_floor, 2.0, true);
            }
            if r.metric == "throughput" && r.size == 64 {
                check(format!("{} {} ≥ 10× libnng", r.transport, r.label), r.ferry_over_libnng, 10.0, false);
                check(format!("{} {} ≥ 0.5× raw floor", r.transport, r.label), r.ferry_over_floor, 0.5, false);
            }
        }
        out
    }

    fn failures(&self) -> Vec<String> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.errors.iter().map(|err| format!("{} {} {}: {err}", e.system.label(), e.transport, e.workload.label()))
            })
            .collect()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let rows = self.rows();
        let stop = |s: Stop| match s {
            Stop::Count(n) => json!({ "count": n }),
            Stop::Duration(d) => json!({ "seconds": d.as_secs_f64() }),
        };
        let measurements: Vec<_> = self
            .entries
            .iter()
            .map(|e| {
                let mut m = json!({
                    "workload": e.workload.key(),
                    "size": e.workload.size(),
                    "transport": e.transport,
                    "system": e.system.key(),
                });
                if let Some(summary) = &e.summary {
                    m["result"] = json!(summary);
                }
                if !e.errors.is_empty() {
                    m["errors"] = json!(e.errors);
                }
                m
            })
            .collect();
        json!({
            "config": {
                "transports": self.config.transports,
                "reqrep": stop(self.config.latency_stop),
                "pushpull": stop(self.config.throughput_stop),
                "rounds": self.config.rounds,
                "release_build": self.config.release_build,
                "runtime_workers": self.config.runtime_workers,
            },
            "libnng": self.libnng,
            "ratios": "ferry / reference; latency rows: lower is better (< 1: ferry faster); \
                       throughput rows: higher is better (> 1: ferry faster)",
            "rows": rows,
            "targets": self.targets(&rows),
            "measurements": measurements,
            "notes": self.notes,
        })
    }

    pub(crate) fn to_table(&self) -> String {
        let rows = self.rows();
        let mut out = String::new();
        let stop = |s: Stop| match s {
            Stop::Count(n) => format!("{n} per measurement"),
            Stop::Duration(d) => format!("{:.3} s per measurement", d.as_secs_f64()),
        };
        let build = if self.config.release_build { "release" } else { "debug" };
        let _ = writeln!(
            out,
            "ferry bench sp: {build} build, {} runtime workers; REQ/REP {}, PUSH/PULL {}; {} round(s)",
            self.config.runtime_workers,
            stop(self.config.latency_stop),
            stop(self.config.throughput_stop),
            self.config.rounds,
        );
        let _ = writeln!(out, "latency: percentiles over the samples of every round; throughput: the median round");
        let _ = writeln!(out, "ratios are ferry ÷ reference:");
        let _ = writeln!(out, "  latency rows (µs per round trip): lower is better, ratio < 1 means ferry is faster");
        let _ = writeln!(out, "  throughput rows (messages/s):     higher is better, ratio > 1 means ferry is faster");
        let _ = writeln!(out);
        let mut header = vec!["workload", "transport", "ferry", "raw floor"];
        if self.libnng {
            header.extend(["libnng", "ferry/libnng"]);
        }
        header.extend(["ferry/floor", "better"]);
        let mut table: Vec<Vec<String>> = vec![header.into_iter().map(str::to_string).collect()];
        for r in &rows {
            let cell = |system: System, v: Option<f64>| match v {
                Some(v) if r.unit == "us" => format!("{v:.1}"),
                Some(v) => rate(v),
                None if self.failed(r, system) => "failed".to_string(),
                None => "-".to_string(),
            };
            let ratio = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}×"));
            let mut line = vec![
                format!("{} ({})", r.label, if r.unit == "us" { "µs" } else { "msg/s" }),
                r.transport.to_string(),
                cell(System::Ferry, r.ferry),
                cell(System::Floor, r.floor),
            ];
            if self.libnng {
                line.extend([cell(System::Nng, r.libnng), ratio(r.ferry_over_libnng)]);
            }
            line.extend([ratio(r.ferry_over_floor), r.better.to_string()]);
            table.push(line);
        }
        let columns = table[0].len();
        let widths: Vec<usize> =
            (0..columns).map(|c| table.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        for line in &table {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                // Names left-aligned, numbers right-aligned.
                if c < 2 || c == columns - 1 {
                    let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        }
        let targets = self.targets(&rows);
        if !targets.is_empty() {
            let _ = writeln!(out, "\ntargets:");
            for t in &targets {
                let met = if t["met"].as_bool() == Some(true) { "met" } else { "MISSED" };
                let ratio = t["ratio"].as_f64().unwrap_or(f64::NAN);
                let _ = writeln!(out, "  {:<48} {ratio:>8.2}×  {met}", t["target"].as_str().unwrap_or(""));
            }
        }
        let failures = self.failures();
        if !failures.is_empty() {
            let _ = writeln!(out, "\nfailed:");
            for f in failures {
                let _ = writeln!(out, "  {f}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        out
    }

    fn failed(&self, row: &Row, system: System) -> bool {
        self.entries.iter().any(|e| {
            e.system == system
                && e.transport == row.transport
                && e.workload.key() == row.workload
                && e.workload.size() == row.size
                && e.summary.is_none()
                && !e.errors.is_empty()
        })
    }
}

/// A rate with an SI suffix: 812, 25.1k, 1.23M.
pub(crate) fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
    }

    #[test]
    fn throughput_counts_intervals_between_messages() {
        let t = Throughput::new(11, Duration::from_secs(2), 1024).unwrap();
        assert_eq!(t.msgs_per_s, 5.0);
        assert!(Throughput::new(1, Duration::from_secs(1), 1).is_err());
    }

    #[test]
    fn rounds_pool_latency_samples_and_take_the_median_throughput() {
        let t = |n: u64| Sample::Throughput(Throughput::new(n + 1, Duration::from_secs(1), 1).unwrap());
        let Some(Summary::Throughput(s)) = Summary::of(vec![t(10), t(1000), t(30)]) else { panic!("throughput") };
        assert_eq!(s.msgs_per_s, 30.0);
        let l = Summary::of(vec![Sample::Latency(vec![1000, 3000]), Sample::Latency(vec![2000])]);
        let Some(Summary::Latency(l)) = l else { panic!("latency") };
        assert_eq!((l.samples, l.median_us), (3, 2.0));
        assert!(Summary::of(Vec::new()).is_none());
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_label(64), "64 B");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1500), "1500 B");
        assert_eq!(rate(25_100.0), "25.1k");
    }
}
