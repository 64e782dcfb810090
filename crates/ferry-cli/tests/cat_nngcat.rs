//! `ferry cat` against the real nngcat 1.5.2, protocol by protocol: each nngcat recipe is
//! run with one of its two processes replaced by `ferry cat` (same arguments), with ferry
//! on either side, listening or dialing, over tcp and ipc. The variants of one protocol run
//! in parallel threads; every wait is bounded and every process is killed on drop.

use ferry_testkit::{eventually, IpcDir, Output, Proc};
use std::thread;
use std::time::Duration;

/// How long any one process may run before it is killed (and its test fails).
const LIMIT: Duration = Duration::from_secs(20);

/// A free loopback port for a listener, picked at random below the ephemeral range.
/// (`free_port()` hands out ephemeral ports, which the many connections of parallel cases
/// can take between the check and the bind.)
fn port() -> u16 {
    use rand::Rng;
    loop {
        let p = rand::thread_rng().gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Ferry,
    Nngcat,
}

impl Peer {
    fn spawn(self, args: &[String]) -> Proc {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match self {
            Peer::Ferry => Proc::spawn(env!("CARGO_BIN_EXE_ferry"), &[&["cat"], &args[..]].concat()),
            Peer::Nngcat => Proc::nngcat(&args),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Ipc,
}

/// An address to listen at: a free loopback port, or a socket file in a fresh directory.
struct Addr {
    url: String,
    port: Option<u16>,
    _dir: Option<IpcDir>,
}

impl Addr {
    fn new(t: Transport) -> Addr {
        match t {
            Transport::Tcp => {
                let port = port();
                Addr { url: format!("tcp://127.0.0.1:{port}"), port: Some(port), _dir: None }
            }
            Transport::Ipc => {
                let dir = IpcDir::new();
                Addr { url: dir.url("cat.ipc"), port: None, _dir: Some(dir) }
            }
        }
    }

    /// Whether `who` listens here yet. A TCP listener is probed with a connection. So is a
    /// ferry IPC listener, but not nngcat's: after a connection that closed before the SP
    /// handshake, NNG 1.5.2's IPC listener accepts later ones but never exchanges a message
    /// on them. For it the socket file must do, although it appears at bind(), a moment
    /// before listen(); see `listen_then_dial_once`.
    fn is_listening(&self, who: Peer) -> bool {
        let path = self.url.trim_start_matches("ipc://");
        match (self.port, who) {
            (Some(port), _) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            (None, Peer::Ferry) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            (None, Peer::Nngcat) => std::path::Path::new(path).exists(),
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Starts `listener` listening at a fresh address, waits until it listens, then starts
/// `dialer` dialing it (nngcat's dials are synchronous); returns (listener, dialer) output.
/// If another process took the port first, it starts over on another.
fn listen_then_dial(t: Transport, listener: (Peer, &[&str]), dialer: (Peer, &[&str])) -> (Output, Output) {
    for _ in 0..3 {
        match listen_then_dial_once(t, listener, dialer) {
            Ok(outputs) => return outputs,
            Err(l) if l.stderr.ends_with(": Address in use\n") => continue,
            Err(l) => panic!("{listener:?} did not listen: {l:?}"),
        }
    }
    panic!("no free address for {listener:?}");
}

/// One try of `listen_then_dial`; `Err` with the listener's output if it ended before it
/// listened.
fn listen_then_dial_once(
    t: Transport,
    listener: (Peer, &[&str]),
    dialer: (Peer, &[&str]),
) -> Result<(Output, Output), Output> {
    let addr = Addr::new(t);
    let mut largs = strings(listener.1);
    largs.extend(strings(&["--listen", &addr.url]));
    let mut l = listener.0.spawn(&largs);
    let up = eventually(LIMIT, || !l.is_running() || addr.is_listening(listener.0));
    if !up || !l.is_running() {
        return Err(l.kill());
    }
    let mut dargs = strings(dialer.1);
    dargs.extend(strings(&["--dial", &addr.url]));
    // A dial that came between an nngcat IPC listener's bind() and listen() is refused at
    // once, before anything else happened: then dial again, a few times.
    let mut attempts = 0;
    let d = loop {
        let d = dialer.0.spawn(&dargs).wait(LIMIT);
        attempts += 1;
        let refused = d.status.is_some() && d.stdout.is_empty() && d.stderr.ends_with(": Connection refused\n");
        if !(refused && addr.port.is_none() && attempts < 5) {
            break d;
        }
        thread::sleep(Duration::from_millis(100));
    };
    Ok((l.wait(LIMIT), d))
}

/// Runs a two-party recipe, roles `x` and `y`, in every arrangement: ferry as x or as y,
/// x or y listening, over tcp and ipc (for symmetric recipes ferry's role does not matter,
/// so only who listens varies). `check(label, x, y)` asserts on the outputs.
fn matrix(x: &[&str], y: &[&str], symmetric: bool, check: impl Fn(&str, &Output, &Output) + Sync) {
    let mut runs = Vec::new();
    for t in [Transport::Tcp, Transport::Ipc] {
        for ferry_is_x in [true, false] {
            if symmetric && !ferry_is_x {
                continue;
            }
            for x_listens in [true, false] {
                runs.push((t, ferry_is_x, x_listens));
            }
        }
    }
    thread::scope(|s| {
        for (t, ferry_is_x, x_listens) in runs {
            let check = &check;
            s.spawn(move || {
                let (px, py) = if ferry_is_x { (Peer::Ferry, Peer::Nngcat) } else { (Peer::Nngcat, Peer::Ferry) };
                let (ox, oy) = if x_listens {
                    listen_then_dial(t, (px, x), (py, y))
                } else {
                    let (l, d) = listen_then_dial(t, (py, y), (px, x));
                    (d, l)
                };
                let label = format!(
                    "{t:?}, x={px:?} {x:?}, y={py:?} {y:?}, {} listens\nx: {ox:?}\ny: {oy:?}",
                    if x_listens { "x" } else { "y" }
                );
                check(&label, &ox, &oy);
            });
        }
    });
}

#[test]
fn req_rep() {
    // sp-wire.md §9: `nngcat --rep0 --listen URL --data world --count 1 --quoted` and
    // `nngcat --req0 --dial URL --data hello --quoted --recv-timeout 2`.
    let rep = ["--rep0", "--data", "world", "--count", "1", "--quoted"];
    let req = ["--req0", "--data", "hello", "--quoted", "--recv-timeout", "10"];
    matrix(&rep, &req, false, |label, rep, req| {
        assert_eq!(rep.stdout, "\"hello\"\n", "{label}");
        assert_eq!(req.stdout, "\"world\"\n", "{label}");
        assert!(rep.success() && req.success(), "{label}");
    });
}

#[test]
fn req_rep_abbreviated_flags_and_count() {
    // nngcat accepts unambiguous prefixes: --req, --rep, --quo, --coun, --inter. With
    // --interval, a REQ only waits for a reply until the next send is due (and nngcat's REQ
    // needs --interval with --count: without it, it fails with "Cannot set recv timeout:
    // Invalid argument" whenever a send takes a millisecond or more). A listening REQ's
    // first send waits for a peer, possibly past the interval, so here the REQ dials.
    let rep = ["--rep", "--data", "pong", "--coun", "2", "--quo"];
    let req = ["--req", "--data", "ping", "--quo", "--count", "2", "--inter", "2", "--recv-timeout", "10"];
    let runs = [(Transport::Tcp, Peer::Ferry, Peer::Nngcat), (Transport::Ipc, Peer::Nngcat, Peer::Ferry)];
    thread::scope(|s| {
        for (t, rep_peer, req_peer) in runs {
            s.spawn(move || {
                let (rep, req) = listen_then_dial(t, (rep_peer, &rep), (req_peer, &req));
                let label = format!("{t:?}: rep {rep_peer:?} {rep:?}, req {req_peer:?} {req:?}");
                assert_eq!(rep.stdout, "\"ping\"\n\"ping\"\n", "{label}");
                assert_eq!(req.stdout, "\"pong\"\n\"pong\"\n", "{label}");
                assert!(rep.success() && req.success(), "{label}");
            });
        }
    });
}

#[test]
fn rep_without_data_only_prints() {
    // Without --data a REP prints requests and never answers, so the REQ times out: exit 0
    // and nothing printed.
    let rep = ["--rep0", "--count", "1", "--quoted"];
    let req = ["--req0", "--data", "unanswered", "--quoted", "--recv-timeout", "2"];
    matrix(&rep, &req, false, |label, rep, req| {
        assert_eq!(rep.stdout, "\"unanswered\"\n", "{label}");
        assert_eq!(req.stdout, "", "{label}");
        assert!(rep.success() && req.success(), "{label}");
    });
}

#[test]
fn pub_sub_with_subscribe() {
    // The publisher waits a second so that the subscriber's connection is up, and sends
    // every second, four times, in case the first ones raced it (a busy machine).
    let publisher = ["--pub", "--data", "tick", "--delay", "1", "--interval", "1", "--count", "4"];
    let subscriber = ["--sub", "--subscribe", "nomatch", "--subscribe", "ti", "--quoted", "--count", "1"];
    matrix(&publisher, &subscriber, false, |label, publisher, subscriber| {
        assert_eq!(subscriber.stdout, "\"tick\"\n", "{label}");
        assert!(publisher.success() && subscriber.success(), "{label}");
    });
}

#[test]
fn sub_filters_by_topic() {
    // Only messages that start with a subscribed topic are delivered: this subscriber
    // hears nothing and ends at its receive timeout. The publisher outlives that timeout,
    // so that a dialer started late on a loaded machine still finds it listening.
    let publisher = ["--pub0", "--data", "tick", "--delay", "1", "--interval", "1", "--count", "6"];
    let subscriber = ["--sub0", "--subscribe", "tock", "--quoted", "--recv-timeout", "4"];
    matrix(&publisher, &subscriber, false, |label, publisher, subscriber| {
        assert_eq!(subscriber.stdout, "", "{label}");
        assert!(publisher.success() && subscriber.success(), "{label}");
    });
}

#[test]
fn push_pull() {
    let push = ["--push", "--data", "job 1"];
    let pull = ["--pull", "--quoted", "--count", "1"];
    matrix(&push, &pull, false, |label, push, pull| {
        assert_eq!(pull.stdout, "\"job 1\"\n", "{label}");
        assert!(push.success() && pull.success(), "{label}");
    });
}

#[test]
fn surveyor_respondent() {
    // sp-wire.md §9: `nngcat --surveyor0 --listen URL --data q --delay 1 --quoted`; the
    // surveyor collects answers until the survey ends (1 s) and exits 0. The delay is 2 s
    // here, for a busy machine. (Repeating the survey with --interval is no help: nngcat's
    // receive loop can then compute a negative timeout, fail or hang.)
    let surveyor = ["--surveyor", "--data", "question", "--delay", "2", "--quoted"];
    let respondent = ["--respondent", "--data", "answer", "--count", "1", "--quoted"];
    matrix(&surveyor, &respondent, false, |label, surveyor, respondent| {
        assert_eq!(surveyor.stdout, "\"answer\"\n", "{label}");
        assert_eq!(respondent.stdout, "\"question\"\n", "{label}");
        assert!(surveyor.success() && respondent.success(), "{label}");
    });
}

fn pair_both_ways(flag: &str) {
    // Each side sends its data once, then prints what it receives until its timeout.
    let x = [flag, "--data", "from x", "--recv-timeout", "3", "--quoted"];
    let y = [flag, "--data", "from y", "--recv-timeout", "3", "--quoted"];
    matrix(&x, &y, true, |label, x, y| {
        assert_eq!(x.stdout, "\"from y\"\n", "{label}");
        assert_eq!(y.stdout, "\"from x\"\n", "{label}");
        assert!(x.success() && y.success(), "{label}");
    });
}

#[test]
fn pair0_both_ways() {
    pair_both_ways("--pair0");
}

#[test]
fn pair1_both_ways() {
    pair_both_ways("--pair1");
}

#[test]
fn bus_both_ways() {
    // BUS drops what it sends while no peer is connected, hence the delay; each side sends
    // once and prints what it hears until its timeout. (nngcat's --interval is no help
    // here: its receive loop can compute a negative timeout and fail with "Cannot set recv
    // timeout: Invalid argument".)
    let x = ["--bus", "--data", "from x", "--delay", "2", "--recv-timeout", "4", "--quoted"];
    let y = ["--bus0", "--data", "from y", "--delay", "2", "--recv-timeout", "4", "--quoted"];
    matrix(&x, &y, true, |label, x, y| {
        assert_eq!(x.stdout, "\"from y\"\n", "{label}");
        assert_eq!(y.stdout, "\"from x\"\n", "{label}");
        assert!(x.success() && y.success(), "{label}");
    });
}
