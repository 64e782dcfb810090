//! `ferry bench`: measures ferry side by side with its references.
//!
//! `ferry bench sp` runs REQ/REP round trips and PUSH/PULL streams over tcp, ipc and
//! inproc on three systems, one workload at a time and the three back to back, because a
//! shared machine drifts:
//!
//! - ferry (`sp`): ferry-sp sockets, both ends in this process;
//! - the floor (`floor`): the same traffic as 8-byte-length-framed messages on plain tokio
//!   streams, what any SP implementation over tokio has to pay at least;
//! - libnng (`nng`): a small C program compiled at run time against the system's libnng.
//!
//! ferry and the floor share one multi-thread tokio runtime; libnng runs in its own process.
//! The whole sequence runs `--rounds` times; `report` pools the rounds and turns them into
//! the table or JSON with ferry/libnng and ferry/floor ratios.

mod broker;
mod disk;
mod driver;
mod floor;
mod log;
mod net;
mod nng;
mod report;
mod sp;
mod svg;
mod target;

use anyhow::Context as _;
use ferry_testkit::TestCerts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use report::{Report, Sample, System, Workload};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// SP benchmarks: REQ/REP latency and PUSH/PULL throughput of ferry, a raw tokio
    /// floor and libnng, with ratios.
    Sp(SpArgs),
    /// Log benchmark: durable appends per second of ferry-log with 1, 16 and 256
    /// concurrent appenders, next to the disk's raw rate of one write + fdatasync per record.
    Log(log::LogArgs),
    /// Broker benchmark: drives a broker over the network (ferry REST, NATS core,
    /// JetStream, RabbitMQ: by URL) with N producers and M consumers, and reports publish
    /// rate, end-to-end rate and latency; or, with --embedded, the broker engine in this
    /// process next to the bare ferry-log append rate it builds on.
    Broker(broker::BrokerArgs),
}

#[derive(clap::Args)]
pub(crate) struct SpArgs {
    /// Transports to measure, comma-separated. ws and tls+tcp have no raw floor: their
    /// reference is libnng on the same transport.
    #[arg(long, value_delimiter = ',', default_value = "tcp,ipc,inproc,ws,tls+tcp")]
    transports: Vec<Transport>,
    /// PUSH/PULL message sizes, comma-separated; bytes, or with a k/KiB or m/MiB suffix.
    #[arg(long, value_delimiter = ',', default_value = "64,1KiB,64KiB", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// REQ/REP message size.
    #[arg(long, default_value = "64", value_parser = parse_size)]
    latency_size: usize,
    /// Round trips (REQ/REP) or messages (PUSH/PULL) per measurement, after the warm-up.
    /// Without it, each measurement runs for --duration instead.
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(2..))]
    count: Option<u64>,
    /// Seconds each measurement runs after its warm-up [default: 0.5].
    #[arg(long, value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// How many times the whole sequence of measurements runs. Latency percentiles are taken
    /// over the samples of every round, throughput is the median round [default: 3, with
    /// --quick 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: Option<u32>,
    /// A smoke run with small counts: checks that everything works; the numbers mean little.
    #[arg(long, conflicts_with_all = ["count", "duration"])]
    quick: bool,
    /// Seconds after which a measurement that has not finished is abandoned (on top of
    /// --duration).
    #[arg(long, default_value = "60", value_parser = parse_seconds)]
    timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Tcp,
    Ipc,
    Inproc,
    Ws,
    #[value(name = "tls+tcp")]
    #[serde(rename = "tls+tcp")]
    Tls,
}

impl Transport {
    /// Whether the raw floor has this transport: it frames bytes over plain streams only.
    pub(crate) fn has_floor(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Ipc | Transport::Inproc)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
            Transport::Inproc => "inproc",
            Transport::Ws => "ws",
            Transport::Tls => "tls+tcp",
        })
    }
}

/// The largest message size accepted, so that a typo cannot ask for gigabytes.
const SIZE_MAX: usize = 64 << 20;

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let n: usize = digits.parse().map_err(|_| format!("`{s}` is not a size (e.g. 64, 1KiB, 64k)"))?;
    let unit = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("unknown size suffix in `{s}` (use k/KiB or m/MiB)")),
    };
    match n.checked_mul(unit) {
        Some(v) if (1..=SIZE_MAX).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is out of range (1 byte to 64 MiB)")),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (0.001 to 86400 seconds)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// When a measurement stops: after a number of round trips or messages, or a time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    Count(u64),
    Duration(Duration),
}

/// How much of each workload to run, for every system alike.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) stop: Stop,
    /// Untimed round trips or messages before the timed ones.
    pub(crate) warmup: u64,
    /// When to give up on one measurement.
    pub(crate) timeout: Duration,
}

/// Decides, round by round, whether a timed loop goes on; `done` counts timed rounds.
/// A duration-bound loop runs at least twice, so that a rate always has an interval.
pub(crate) struct Rounds {
    stop: Stop,
    deadline: Instant,
}

impl Rounds {
    pub(crate) fn start(stop: Stop) -> Rounds {
        let d = match stop {
            Stop::Count(_) => Duration::ZERO,
            Stop::Duration(d) => d,
        };
        Rounds { stop, deadline: Instant::now() + d }
    }

    pub(crate) fn more(&self, done: u64) -> bool {
        match self.stop {
            Stop::Count(n) => done < n,
            Stop::Duration(_) => done < 2 || Instant::now() < self.deadline,
        }
    }
}

/// The sender's side of a throughput run: `warmup` messages, then the timed ones, the last
/// of which is marked so that the receiver knows when to stop its clock.
pub(crate) struct Schedule {
    plan: Plan,
    sent: u64,
    rounds: Option<Rounds>,
    finished: bool,
}

impl Schedule {
    pub(crate) fn new(plan: Plan) -> Schedule {
        Schedule { plan, sent: 0, rounds: None, finished: false }
    }

    /// The next message to send: `Some(true)` for the marked last one, `None` after it.
    pub(crate) fn next_is_last(&mut self) -> Option<bool> {
        if self.finished {
            return None;
        }
        self.sent += 1;
        if self.sent <= self.plan.warmup {
            return Some(false);
        }
        let timed = self.sent - self.plan.warmup; // 1 for the first timed message
        let rounds = self.rounds.get_or_insert_with(|| Rounds::start(self.plan.stop));
        // The marked message is one of the timed ones (count - 1 unmarked before it).
        self.finished = !rounds.more(timed);
        Some(self.finished)
    }
}

/// The receiver's side of a throughput run: it skips the warm-up, then times from the
/// first timed message to the marked last one, as the C program does for libnng.
pub(crate) struct Tally {
    size: usize,
    warmup: u64,
    received: u64,
    first: Option<Instant>,
}

impl Tally {
    pub(crate) fn new(size: usize, warmup: u64) -> Tally {
        Tally { size, warmup, received: 0, first: None }
    }

    /// Counts one received body; returns the result once the marked last one is in.
    pub(crate) fn record(&mut self, body: &[u8]) -> anyhow::Result<Option<report::Throughput>> {
        let now = Instant::now();
        if body.len() != self.size {
            anyhow::bail!("received a {}-byte message, expected {} bytes", body.len(), self.size);
        }
        if self.received == self.warmup {
            self.first = Some(now);
        }
        self.received += 1;
        if body.first() != Some(&1) {
            return Ok(None);
        }
        let first = self.first.context("the last message came before the warm-up ended")?;
        report::Throughput::new(self.received - self.warmup, now - first, self.size).map(Some)
    }
}

/// A message body of `size` bytes whose first byte says whether it is the last one.
pub(crate) fn body(size: usize, last: bool) -> Vec<u8> {
    let mut b = vec![0u8; size];
    if let Some(marker) = b.first_mut() {
        *marker = u8::from(last);
    }
    b
}

/// A spawned task that is aborted when dropped, so that a measurement abandoned at its
/// timeout leaves nothing running behind it.
pub(crate) struct Task<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    pub(crate) fn spawn(f: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task(tokio::spawn(f))
    }

    pub(crate) async fn join(mut self) -> anyhow::Result<T> {
        (&mut self.0).await.context("benchmark task failed")
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where one measurement takes place: fresh names, so that no run reuses another's address.
pub(crate) struct Site {
    pub(crate) transport: Transport,
    pub(crate) ipc_path: PathBuf,
    pub(crate) inproc_name: String,
    /// A port that was free a moment ago, for ws and tls+tcp: libnng reports the bound port
    /// of a `:0` listener only for plain tcp.
    pub(crate) port: u16,
    /// The certificates of tls+tcp runs.
    pub(crate) certs: Option<Arc<TestCerts>>,
}

impl Site {
    fn new(transport: Transport, dir: &Path, system: System, n: usize, certs: Option<Arc<TestCerts>>) -> Site {
        let name = format!("{}-{n}", system.key());
        let port = match transport {
            Transport::Ws | Transport::Tls => {
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port())
            }
            _ => 0,
        };
        Site {
            transport,
            ipc_path: dir.join(format!("{name}.ipc")),
            inproc_name: format!("ferry-bench-{name}"),
            port,
            certs,
        }
    }

    /// The SP address to listen on (tcp port 0: the system picks one).
    pub(crate) fn sp_url(&self) -> String {
        match self.transport {
            Transport::Tcp => "tcp://127.0.0.1:0".to_string(),
            Transport::Ipc => format!("ipc://{}", self.ipc_path.display()),
            Transport::Inproc => format!("inproc://{}", self.inproc_name),
            Transport::Ws => format!("ws://127.0.0.1:{}/ferry-bench", self.port),
            Transport::Tls => format!("tls+tcp://127.0.0.1:{}", self.port),
        }
    }
}

/// The number of messages that warms a throughput run up without taking long: about 8 MiB.
fn throughput_warmup(size: usize) -> u64 {
    ((8 << 20) / size as u64).clamp(16, 10_000)
}

struct Settings {
    transports: Vec<Transport>,
    workloads: Vec<Workload>,
    latency_stop: Stop,
    throughput_stop: Stop,
    rounds: u32,
    timeout: Duration,
}

impl Settings {
    fn from_args(args: &SpArgs) -> Settings {
        let mut transports = args.transports.clone();
        dedup(&mut transports);
        let mut sizes = args.sizes.clone();
        dedup(&mut sizes);
        let mut workloads = vec![Workload::Latency { size: args.latency_size }];
        workloads.extend(sizes.into_iter().map(|size| Workload::Throughput { size }));
        let (latency_stop, throughput_stop) = match (args.quick, args.count, args.duration) {
            (true, _, _) => (Stop::Count(200), Stop::Count(1_000)),
            (false, Some(n), _) => (Stop::Count(n), Stop::Count(n)),
            (false, None, d) => {
                let d = d.unwrap_or(Duration::from_millis(500));
                (Stop::Duration(d), Stop::Duration(d))
            }
        };
        let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
        Settings { transports, workloads, latency_stop, throughput_stop, rounds, timeout: args.timeout }
    }

    fn plan(&self, workload: Workload) -> Plan {
        let (stop, most) = match workload {
            Workload::Latency { .. } => (self.latency_stop, 1_000),
            Workload::Throughput { size } => (self.throughput_stop, throughput_warmup(size)),
        };
        let (warmup, timeout) = match stop {
            Stop::Count(n) => ((n / 10).clamp(1, most), self.timeout),
            Stop::Duration(d) => (most, self.timeout + d),
        };
        Plan { stop, warmup, timeout }
    }
}

/// The progress bar every benchmark shows on stderr, for `len` measurements.
pub(crate) fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn dedup<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen = Vec::with_capacity(v.len());
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
}

pub(crate) fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Sp(args) => run_sp(&args),
        BenchCommand::Log(args) => log::run(&args),
        BenchCommand::Broker(args) => broker::run(&args),
    }
}

fn run_sp(args: &SpArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_args(args);
    let dir = std::env::temp_dir();
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))?;
    let mut report = Report::new(report::Config {
        transports: settings.transports.clone(),
        latency_stop: settings.latency_stop,
        throughput_stop: settings.throughput_stop,
        rounds: settings.rounds,
        release_build: !cfg!(debug_assertions),
        runtime_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if cfg!(debug_assertions) {
        report.note("this is a debug build: its numbers say little; build with --release to measure".to_string());
    }
    let nng = match nng::prepare(dir.path()) {
        Ok(nng) => Some(nng),
        Err(why) => {
            eprintln!("ferry bench: note: {why}");
            report.note(why);
            None
        }
    };
    report.set_libnng(nng.is_some());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    // Made once, when a tls+tcp run needs them: a new authority and a server certificate.
    let certs = settings.transports.contains(&Transport::Tls).then(|| Arc::new(TestCerts::new()));
    runtime.block_on(measure_all(&settings, nng.as_ref(), dir.path(), certs, &mut report));
    report.finish();
    // A task stuck in a ferry bug must not keep the process alive once the report is out.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json()).context("encoding the report as JSON")?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(if report.own_failures() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn measure_all(
    settings: &Settings,
    nng: Option<&nng::Nng>,
    dir: &Path,
    certs: Option<Arc<TestCerts>>,
    report: &mut Report,
) {
    let systems: Vec<System> = [System::Ferry, System::Floor, System::Nng]
        .into_iter()
        .filter(|s| *s != System::Nng || nng.is_some())
        .collect();
    let runs_per_workload: usize = settings
        .transports
        .iter()
        .map(|t| systems.iter().filter(|s| **s != System::Floor || t.has_floor()).count())
        .sum();
    let total = settings.rounds as usize * settings.workloads.len() * runs_per_workload;
    let bar = progress(total as u64);
    let mut n = 0;
    // Whole rounds repeat, and within a round the systems run back to back for each
    // workload and transport, so that drift on a shared machine hits all columns alike.
    for round in 1..=settings.rounds {
        for &workload in &settings.workloads {
            let plan = settings.plan(workload);
            for &transport in &settings.transports {
                for &system in systems.iter().filter(|s| **s != System::Floor || transport.has_floor()) {
                    n += 1;
                    let what = format!("{transport} {} · {}", workload.label(), system.label());
                    bar.set_message(format!("round {round}/{}: {what}", settings.rounds));
                    let site = Site::new(transport, dir, system, n, certs.clone());
                    let run = measure(system, workload, &site, plan, nng);
                    // A little past the plan's timeout, so that the libnng driver, which
                    // watches the same deadline, can report what it saw first.
                    let limit = plan.timeout + Duration::from_secs(5);
                    let result = match tokio::time::timeout(limit, run).await {
                        Ok(r) => r,
                        Err(_) => Err(anyhow::anyhow!("no result after {:.1} s; abandoned", limit.as_secs_f64())),
                    };
                    if let Err(e) = &result {
                        bar.suspend(|| eprintln!("ferry bench: round {round}: {what} failed: {e:#}"));
                    }
                    report.add(workload, transport, system, result);
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
}

async fn measure(
    system: System,
    workload: Workload,
    site: &Site,
    plan: Plan,
    nng: Option<&nng::Nng>,
) -> anyhow::Result<Sample> {
    match (workload, system) {
        (Workload::Latency { size }, System::Ferry) => Ok(Sample::Latency(sp::latency(site, size, plan).await?)),
        (Workload::Latency { size }, System::Floor) => Ok(Sample::Latency(floor::latency(site, size, plan).await?)),
        (Workload::Throughput { size }, System::Ferry) => {
            Ok(Sample::Throughput(sp::throughput(site, size, plan).await?))
        }
        (Workload::Throughput { size }, System::Floor) => {
            Ok(Sample::Throughput(floor::throughput(site, size, plan).await?))
        }
        (_, System::Nng) => {
            let nng = nng.context("libnng is not available")?;
            match workload {
                Workload::Latency { size } => Ok(Sample::Latency(nng.latency(site, size, plan).await?)),
                Workload::Throughput { size } => Ok(Sample::Throughput(nng.throughput(site, size, plan).await?)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("12x").is_err());
    }

    #[test]
    fn a_counted_schedule_marks_its_last_message() {
        let plan = Plan { stop: Stop::Count(3), warmup: 2, timeout: Duration::from_secs(1) };
        let mut s = Schedule::new(plan);
        let got: Vec<bool> = std::iter::from_fn(|| s.next_is_last()).collect();
        assert_eq!(got, [false, false, false, false, true]);
    }

    #[tokio::test]
    async fn a_timed_schedule_sends_at_least_two_timed_messages() {
        let plan = Plan { stop: Stop::Duration(Duration::from_millis(1)), warmup: 1, timeout: Duration::from_secs(1) };
        let mut s = Schedule::new(plan);
        let got: Vec<bool> = std::iter::from_fn(|| s.next_is_last()).collect();
        assert!(got.len() >= 3);
        assert_eq!(got.iter().filter(|last| **last).count(), 1);
        assert_eq!(got.last(), Some(&true));
    }
}
