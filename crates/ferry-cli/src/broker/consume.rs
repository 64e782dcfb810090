//! Receiving, for queues and topic subscriptions alike: `recv` (one long poll, print, ack),
//! `recv --follow` (the same in a loop) and `ack`/`nack` by lease.
//!
//! `--follow` long-polls `…/receive` rather than reading the SSE stream: the stream leases
//! messages ahead of what has been printed (its buffer), so stopping after `--count` would
//! strand those leases until they time out, while a long poll asks for no more than is
//! still wanted. Each message is acked right after it is printed. Ctrl-C, the end of
//! standard input (when it is a terminal or a pipe) and `--count` stop it; messages leased
//! but not printed yet are given back (nacked) on the way out.

use super::http::{decode, path, Failure};
use super::message::{self, Columns, Received};
use super::{millis, parse_duration, print, print_json, Ctx};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages asked for per long poll with `--follow`.
const FOLLOW_BATCH: u32 = 16;
/// How long one long poll of `--follow` waits, well under the server's limit (60 s by
/// default).
const FOLLOW_WAIT: Duration = Duration::from_secs(10);
/// How long a stop waits for the message being printed and acked to finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A queue, or a subscription of a topic.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Queue(&'a str),
    Sub { topic: &'a str, sub: &'a str },
}

impl Source<'_> {
    fn path(&self, action: &str) -> String {
        match self {
            Source::Queue(q) => path(&["queues", q, action]),
            Source::Sub { topic, sub } => path(&["topics", topic, "subscriptions", sub, action]),
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct RecvArgs {
    /// At most this many messages, 1 to 1000 [default: 1; with --follow, per request: 16]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max: Option<u32>,
    /// Wait this long for a first message (e.g. 20s; at most the server's limit, 60 s by
    /// default) [default: 0; with --follow, per request: 10s]
    #[arg(long, value_parser = parse_duration)]
    wait: Option<Duration>,
    /// Leave the messages leased instead of acking them: `ack` or `nack` them by lease, or
    /// they are delivered again when the lease runs out
    #[arg(long)]
    no_ack: bool,
    /// How long the lease lasts [default: the visibility timeout of the queue or
    /// subscription]
    #[arg(long, value_parser = parse_duration)]
    visibility: Option<Duration>,
    /// Keep receiving, printing and acking each message as it comes, until Ctrl-C, the end
    /// of standard input (when it is a terminal or a pipe), or --count messages
    #[arg(long)]
    follow: bool,
    /// With --follow: stop after this many messages
    #[arg(long, requires = "follow")]
    count: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SettleArgs {
    /// Lease ids, as `recv --no-ack` shows them
    #[arg(required = true, num_args = 1..)]
    leases: Vec<u64>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct NackArgs {
    #[command(flatten)]
    settle: SettleArgs,
    /// Deliver them again only after this long
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
}

#[derive(Deserialize)]
struct SettleResults {
    results: Vec<SettleResult>,
}

#[derive(Deserialize)]
struct SettleResult {
    lease: u64,
    ok: bool,
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

pub(crate) fn recv(ctx: &Ctx, source: Source<'_>, args: &RecvArgs) -> Result<(), Failure> {
    if args.follow {
        return follow(ctx, source, args);
    }
    let got = receive(ctx, source, args, args.max.unwrap_or(1), args.wait.unwrap_or(Duration::ZERO))?;
    let printed = message::print_messages(ctx, &got, args.no_ack, "no messages");
    if args.no_ack {
        return printed;
    }
    if let Err(e) = printed {
        // Nothing reached the reader: let the messages go to another consumer now.
        let _ = settle(ctx, source, "nack", &leases(&got), json!({}));
        return Err(e);
    }
    let failed = settle(ctx, source, "ack", &leases(&got), json!({}))?;
    not_acked(&failed)
}

/// One `…/receive` request.
fn receive(
    ctx: &Ctx,
    source: Source<'_>,
    args: &RecvArgs,
    max: u32,
    wait: Duration,
) -> Result<Vec<(Value, Received)>, Failure> {
    let mut body = json!({ "max": max, "wait_ms": millis(wait) });
    if let Some(v) = args.visibility {
        body["visibility_ms"] = json!(millis(v));
    }
    let answer = ctx.client.call("POST", &source.path("receive"), Some(&body), wait)?;
    message::messages(answer)
}

fn leases(msgs: &[(Value, Received)]) -> Vec<u64> {
    msgs.iter().filter_map(|(_, m)| m.lease).collect()
}

/// Acks or nacks `leases`; the leases that failed, with the reason.
fn settle(ctx: &Ctx, source: Source<'_>, verb: &str, leases: &[u64], extra: Value) -> Result<Vec<String>, Failure> {
    let mut failed = Vec::new();
    // The API takes at most 1000 leases per request.
    for chunk in leases.chunks(1000) {
        let mut body = extra.clone();
        body["leases"] = json!(chunk);
        let SettleResults { results } = decode(ctx.client.post(&source.path(verb), &body)?)?;
        failed.extend(results.into_iter().filter(|r| !r.ok).map(|r| {
            let why = r.error.map_or_else(|| "refused".to_string(), |e| e.message);
            format!("lease {}: {why}", r.lease)
        }));
    }
    Ok(failed)
}

fn not_acked(failed: &[String]) -> Result<(), Failure> {
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::NotAcked(format!(
        "{} message(s) not acked, and so to be delivered again: {}",
        failed.len(),
        failed.join("; ")
    )))
}

/// `ack`: acks leases by id.
pub(crate) fn ack(ctx: &Ctx, source: Source<'_>, args: &SettleArgs) -> Result<(), Failure> {
    settle_cmd(ctx, source, "ack", args, None)
}

/// `nack`: gives leases back by id.
pub(crate) fn nack(ctx: &Ctx, source: Source<'_>, args: &NackArgs) -> Result<(), Failure> {
    settle_cmd(ctx, source, "nack", &args.settle, args.delay)
}

fn settle_cmd(
    ctx: &Ctx,
    source: Source<'_>,
    verb: &str,
    args: &SettleArgs,
    delay: Option<Duration>,
) -> Result<(), Failure> {
    let extra = match delay {
        Some(d) => json!({ "delay_ms": millis(d) }),
        None => json!({}),
    };
    let failed = settle(ctx, source, verb, &args.leases, extra)?;
    let ok = args.leases.len() - failed.len();
    if ctx.json {
        print_json(&json!({ "ok": ok, "failed": failed }))?;
    } else {
        let done = if verb == "ack" { "acked" } else { "gave back" };
        print(&format!("{done} {ok} of {} message(s)\n", args.leases.len()))?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::NotAcked(format!("{} lease(s) failed: {}", failed.len(), failed.join("; "))))
    }
}

/// Stops `--follow` from another thread (Ctrl-C, end of input) without cutting a message
/// in half: the loop holds `busy` while it prints and acks, and checks `stopping` between
/// messages.
#[derive(Default)]
struct Stopper {
    stopping: AtomicBool,
    code: AtomicU8,
    busy: Mutex<()>,
}

impl Stopper {
    /// Asks the loop to stop, waits (bounded) for the message in hand, then ends the
    /// process: a loop blocked in a long poll would otherwise hold the stop up to its wait.
    fn stop(&self, code: u8) -> ! {
        self.code.store(code, Ordering::SeqCst);
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.busy.try_lock() {
                Ok(_guard) => std::process::exit(i32::from(code)),
                Err(std::sync::TryLockError::Poisoned(_)) => std::process::exit(i32::from(code)),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() >= deadline => {
                    std::process::exit(i32::from(code))
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn stopping(&self) -> Option<u8> {
        self.stopping.load(Ordering::SeqCst).then(|| self.code.load(Ordering::SeqCst))
    }
}

/// Starts the threads that stop `--follow`: Ctrl-C (exit status 130) and, when standard
/// input is a terminal or a pipe, its end (status 0). Input from /dev/null or a file is
/// not watched, so `ferry … --follow &` in a script keeps running.
fn watch_for_stop(stopper: &Arc<Stopper>) {
    // The handler is in place before the first message is received: an interrupt from
    // then on always stops cleanly.
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        let interrupt = {
            let _entered = rt.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        };
        if let Ok(mut interrupt) = interrupt {
            let s = stopper.clone();
            std::thread::spawn(move || {
                if rt.block_on(interrupt.recv()).is_some() {
                    s.stop(130);
                }
            });
        }
    }
    if stdin_is_interactive_or_pipe() {
        let s = stopper.clone();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            s.stop(0);
        });
    }
}

fn stdin_is_interactive_or_pipe() -> bool {
    use std::io::IsTerminal as _;
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::FileTypeExt as _;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return true;
    }
    let Ok(fd) = stdin.as_fd().try_clone_to_owned() else { return false };
    let Ok(meta) = std::fs::File::from(fd).metadata() else { return false };
    let t = meta.file_type();
    t.is_fifo() || t.is_socket()
}

fn follow(ctx: &Ctx, source: Source<'_>, args: &RecvArgs) -> Result<(), Failure> {
    let stopper = Arc::new(Stopper::default());
    watch_for_stop(&stopper);
    let columns = Columns::stream(args.no_ack);
    let mut table = columns.table().streamed(&[6, 6]);
    let mut printed: u64 = 0;
    let batch = u64::from(args.max.unwrap_or(FOLLOW_BATCH));
    let wait = args.wait.unwrap_or(FOLLOW_WAIT);
    loop {
        let wanted = match args.count {
            Some(c) if printed >= c => return Ok(()),
            Some(c) => batch.min(c - printed),
            None => batch,
        };
        // `wanted` is at most `batch`, itself at most 1000.
        let got = receive(ctx, source, args, u32::try_from(wanted).unwrap_or(FOLLOW_BATCH), wait)?;
        let _busy = stopper.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, (json, m)) in got.iter().enumerate() {
            let give_back = |from: usize| {
                let _ = settle(ctx, source, "nack", &leases(&got[from..]), json!({}));
            };
            if let Some(code) = stopper.stopping() {
                give_back(i);
                return Err(Failure::Stopped(code));
            }
            let line = if ctx.json {
                serde_json::to_string(json).map_err(|e| Failure::Other(e.to_string()))? + "\n"
            } else {
                table.row(columns.row(m))
            };
            if let Err(e) = print(&line) {
                give_back(i);
                return Err(e);
            }
            if let (false, Some(lease)) = (args.no_ack, m.lease) {
                for f in settle(ctx, source, "ack", &[lease], json!({}))? {
                    eprintln!("ferry: message {} not acked, and so to be delivered again: {f}", m.id);
                }
            }
            printed += 1;
        }
    }
}
