//! Interop with the real NNG: every protocol pair of ferry-sp against `nngcat` 1.5.2.
//!
//! Each case is one function `case(transport, side)` and runs four times (see `matrix!`):
//! over tcp and ipc, once with ferry listening and nngcat dialing and once the reverse.
//! Where a pattern has two roles there is one case per role, so ferry plays each side.
//!
//! nngcat behaviour the cases rely on (sp-wire.md §9):
//! - its dials are synchronous, so a ferry listener is bound before nngcat starts, and
//!   ferry dials an nngcat listener by retrying while the address refuses ([`dial_nngcat`]);
//! - `--quoted` prints one `"…"` line per message received (the default prints nothing);
//! - PUB, BUS and SURVEYOR drop what they send before a pipe is up on their side, so those
//!   nngcats repeat their message every second (`--interval 1 --count 3`) rather than rely on
//!   a start-up delay, and ferry answers the first copy it gets;
//! - REP/RESPONDENT reply only with `--data`; PUB/PUSH linger 200 ms after the last send;
//! - a receive timeout ends nngcat with status 0, so the cases check what it printed.
//!
//! Every wait is bounded: ferry sockets have send and receive timeouts, nngcat runs under
//! [`Proc::wait`], and a process still running when its handle drops is killed.

use ferry_sp::blocking::Socket;
use ferry_sp::{Error, Message, Protocol, SockOpt};
use ferry_testkit::{eventually, free_port, IpcDir, Output, Proc};
use std::time::Duration;

/// The bound of every wait: ferry's timeouts, connecting, and nngcat's run.
const LIMIT: Duration = Duration::from_secs(10);

/// What nngcat repeats for the protocols that drop messages sent before a pipe is up.
const EVERY_SECOND_3_TIMES: [&str; 4] = ["--interval", "1", "--count", "3"];

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Ipc,
}

/// Which side listens; the other dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Ferry,
    Nngcat,
}

/// Runs each `case(transport, side)` as four tests in a module named after the case.
macro_rules! matrix {
    (@tests $case:ident: $($test:ident($t:ident, $side:ident)),*) => {$(
        #[test]
        fn $test() {
            super::$case($t, $side)
        }
    )*};
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::Side::{Ferry, Nngcat};
            use super::Transport::{Ipc, Tcp};
            matrix!(@tests $case: tcp_ferry_listens(Tcp, Ferry), tcp_nngcat_listens(Tcp, Nngcat),
                ipc_ferry_listens(Ipc, Ferry), ipc_nngcat_listens(Ipc, Nngcat));
        }
    )*};
}

matrix! {
    ferry_req_nngcat_rep,
    ferry_rep_nngcat_req,
    ferry_rep_answers_several_nngcat_reqs,
    ferry_pub_nngcat_sub_filters,
    nngcat_pubs_ferry_sub_filters,
    ferry_push_nngcat_pull,
    nngcat_push_ferry_pull,
    ferry_surveyor_nngcat_respondent,
    nngcat_surveyor_ferry_respondent,
    bus,
    pair0,
    pair1,
    pair1_poly,
    protocol_mismatch,
}

/// A ferry socket whose sends and receives give up after [`LIMIT`].
fn socket(protocol: Protocol) -> Socket {
    let sock = Socket::new(protocol).expect("open socket");
    sock.set(SockOpt::RecvTimeout(Some(LIMIT))).expect("recv-timeout");
    sock.set(SockOpt::SendTimeout(Some(LIMIT))).expect("send-timeout");
    sock
}

fn text(m: Message) -> String {
    String::from_utf8(m.body.to_vec()).expect("utf-8 body")
}

fn recv_text(sock: &Socket) -> String {
    text(sock.recv().unwrap_or_else(|e| panic!("{} socket received nothing: {e}", sock.as_async().protocol())))
}

/// One nngcat process attached to a ferry socket.
struct Nngcat {
    proc: Proc,
    /// Where the two meet.
    url: String,
    /// Keeps the IPC socket's directory until the process is done.
    _dir: Option<IpcDir>,
}

impl Nngcat {
    /// Starts nngcat with `args` and connects it to `sock` over `transport`, `listens`
    /// listening. Returns once ferry's end is bound (ferry listens) or connected (ferry dials).
    fn attach(sock: &Socket, transport: Transport, listens: Side, args: &[&str]) -> Nngcat {
        let (url, dir) = address(transport, listens);
        match listens {
            Side::Ferry => {
                let url = sock.listen(&url).expect("ferry listens").url().to_string();
                Nngcat { proc: spawn(args, "--dial", &url), url, _dir: dir }
            }
            Side::Nngcat => {
                let mut proc = spawn(args, "--listen", &url);
                if let Err(e) = dial_nngcat(sock, &url, &mut proc) {
                    panic!("ferry cannot dial nngcat at {url}: {e}; nngcat: {:?}", proc.kill());
                }
                Nngcat { proc, url, _dir: dir }
            }
        }
    }

    /// Waits for nngcat to exit and returns the messages it printed (`--quoted`), unquoted.
    fn printed(self) -> Vec<String> {
        let out = self.proc.wait(LIMIT);
        unquote(&out).unwrap_or_else(|| panic!("nngcat printed something other than quoted lines: {out:?}"))
    }
}

/// A fresh address for `listens` to listen on: port 0 for ferry (it reports the port it
/// got), a free port for nngcat; for ipc, a socket file in a new directory.
fn address(transport: Transport, listens: Side) -> (String, Option<IpcDir>) {
    match transport {
        Transport::Tcp => {
            let port = if listens == Side::Ferry { 0 } else { free_port() };
            (format!("tcp://127.0.0.1:{port}"), None)
        }
        Transport::Ipc => {
            let dir = IpcDir::new();
            (dir.url("sp.ipc"), Some(dir))
        }
    }
}

fn spawn(args: &[&str], mode: &str, url: &str) -> Proc {
    let mut all = args.to_vec();
    all.extend([mode, url]);
    Proc::nngcat(&all)
}

/// nngcat's `--quoted` lines without the quotes (the cases send no characters it escapes).
fn unquote(out: &Output) -> Option<Vec<String>> {
    out.lines().iter().map(|l| l.strip_prefix('"')?.strip_suffix('"').map(str::to_string)).collect()
}

/// Dials an nngcat listener that may still be starting: retries while the address refuses
/// and nngcat runs, for up to [`LIMIT`], and returns the first other outcome.
fn dial_nngcat(sock: &Socket, url: &str, nngcat: &mut Proc) -> ferry_sp::Result<()> {
    let mut outcome = Err(Error::ConnectionRefused(url.to_string()));
    eventually(LIMIT, || {
        outcome = sock.dial(url).map(drop);
        !matches!(outcome, Err(Error::ConnectionRefused(_))) || !nngcat.is_running()
    });
    outcome
}

/// Waits until `sock` has `n` pipes: what ferry sends before that is not delivered.
fn wait_for_pipes(sock: &Socket, n: usize) {
    assert!(eventually(LIMIT, || sock.as_async().pipe_count() >= n), "no {n} pipe(s) to nngcat within {LIMIT:?}");
}

fn ferry_req_nngcat_rep(t: Transport, side: Side) {
    let req = socket(Protocol::Req);
    let rep = Nngcat::attach(&req, t, side, &["--rep0", "--data", "world", "--count", "1", "--quoted"]);
    req.send("hello").expect("send request");
    assert_eq!(recv_text(&req), "world");
    assert_eq!(rep.printed(), ["hello"]);
}

fn ferry_rep_nngcat_req(t: Transport, side: Side) {
    let rep = socket(Protocol::Rep);
    let req = Nngcat::attach(&rep, t, side, &["--req0", "--data", "hello", "--quoted", "--recv-timeout", "5"]);
    assert_eq!(recv_text(&rep), "hello");
    rep.send("world").expect("send reply");
    assert_eq!(req.printed(), ["world"]);
}

/// Three nngcat REQs, two requests each, on their own pipes: every reply must go back to
/// the pipe its request came from.
fn ferry_rep_answers_several_nngcat_reqs(t: Transport, side: Side) {
    let rep = socket(Protocol::Rep);
    let names = ["a", "b", "c"];
    let reqs = names.map(|name| {
        let args = ["--req0", "--data", name, "--count", "2", "--interval", "1", "--quoted", "--recv-timeout", "5"];
        Nngcat::attach(&rep, t, side, &args)
    });
    let mut requests = Vec::new();
    for _ in 0..2 * names.len() {
        let request = recv_text(&rep);
        rep.send(format!("re:{request}")).expect("send reply");
        requests.push(request);
    }
    requests.sort();
    assert_eq!(requests, ["a", "a", "b", "b", "c", "c"]);
    for (name, req) in names.iter().zip(reqs) {
        assert_eq!(req.printed(), [format!("re:{name}"), format!("re:{name}")], "replies to nngcat {name}");
    }
}

/// nngcat SUB subscribed to `weather.` prints only the matching messages of a ferry PUB.
fn ferry_pub_nngcat_sub_filters(t: Transport, side: Side) {
    let publisher = socket(Protocol::Pub);
    let args = ["--sub0", "--subscribe", "weather.", "--quoted", "--count", "2", "--recv-timeout", "5"];
    let sub = Nngcat::attach(&publisher, t, side, &args);
    // nngcat subscribes before it dials or listens, and bytes sent after ferry's handshake
    // wait in the stream until nngcat's pipe reads them: once the pipe is up, none is lost.
    wait_for_pipes(&publisher, 1);
    for m in ["sports.goal", "weather.rain", "sports.match", "weather.sun"] {
        publisher.send(m).expect("publish");
    }
    assert_eq!(sub.printed(), ["weather.rain", "weather.sun"]);
}

/// A ferry SUB subscribed to `weather.` with two nngcat PUBs, one on that topic and one
/// not, receives only the matching one's messages. Both pipes are up while each publisher
/// sends its message three times, so a filter that lets `sports.goal` through shows.
fn nngcat_pubs_ferry_sub_filters(t: Transport, side: Side) {
    let sub = socket(Protocol::Sub);
    sub.set(SockOpt::Subscribe("weather.".into())).expect("subscribe");
    let pubs = ["sports.goal", "weather.rain"].map(|data| {
        let args = [&["--pub0", "--data", data][..], &EVERY_SECOND_3_TIMES].concat();
        Nngcat::attach(&sub, t, side, &args)
    });
    wait_for_pipes(&sub, 2);
    let mut got = vec![recv_text(&sub)];
    for p in pubs {
        let out = p.proc.wait(LIMIT);
        assert!(out.success(), "nngcat pub: {out:?}");
    }
    // Both publishers are done, so what they sent has arrived; collect the rest.
    sub.set(SockOpt::RecvTimeout(Some(Duration::from_millis(300)))).expect("recv-timeout");
    while let Ok(m) = sub.recv() {
        got.push(text(m));
    }
    assert!(got.iter().all(|m| m == "weather.rain"), "unsubscribed topic delivered: {got:?}");
}

fn ferry_push_nngcat_pull(t: Transport, side: Side) {
    let push = socket(Protocol::Push);
    let pull = Nngcat::attach(&push, t, side, &["--pull0", "--quoted", "--count", "3", "--recv-timeout", "5"]);
    let jobs = ["job-1", "job-2", "job-3"];
    for job in jobs {
        push.send(job).expect("push");
    }
    assert_eq!(pull.printed(), jobs);
}

fn nngcat_push_ferry_pull(t: Transport, side: Side) {
    let pull = socket(Protocol::Pull);
    let push = Nngcat::attach(&pull, t, side, &["--push0", "--data", "job", "--count", "3"]);
    let got: Vec<String> = (0..3).map(|_| recv_text(&pull)).collect();
    assert_eq!(got, ["job", "job", "job"]);
    assert!(push.printed().is_empty());
}

fn ferry_surveyor_nngcat_respondent(t: Transport, side: Side) {
    let surveyor = socket(Protocol::Surveyor);
    surveyor.set(SockOpt::SurveyTime(LIMIT)).expect("survey-time");
    let respondent =
        Nngcat::attach(&surveyor, t, side, &["--respondent0", "--data", "yes", "--count", "1", "--quoted"]);
    // A survey goes only to the respondents connected when it is sent.
    wait_for_pipes(&surveyor, 1);
    surveyor.send("lunch?").expect("send survey");
    assert_eq!(recv_text(&surveyor), "yes");
    assert_eq!(respondent.printed(), ["lunch?"]);
}

fn nngcat_surveyor_ferry_respondent(t: Transport, side: Side) {
    let respondent = socket(Protocol::Respondent);
    let args = [&["--surveyor0", "--data", "lunch?", "--quoted"][..], &EVERY_SECOND_3_TIMES].concat();
    let surveyor = Nngcat::attach(&respondent, t, side, &args);
    assert_eq!(recv_text(&respondent), "lunch?");
    respondent.send("yes").expect("answer");
    assert_eq!(surveyor.printed(), ["yes"]);
}

/// The symmetric patterns: nngcat sends `hi` (every second, three times), ferry answers the
/// first copy with `hello` on the pipe it came from, and nngcat prints that answer once.
fn exchange(protocol: Protocol, nngcat_protocol: &str, t: Transport, side: Side) {
    let sock = socket(protocol);
    let args = [&[nngcat_protocol, "--data", "hi", "--quoted"][..], &EVERY_SECOND_3_TIMES].concat();
    let peer = Nngcat::attach(&sock, t, side, &args);
    let hi = sock.recv().expect("nngcat's message");
    let mut hello = Message::from("hello");
    hello.set_pipe(hi.pipe());
    assert_eq!(text(hi), "hi");
    sock.send(hello).expect("answer");
    assert_eq!(peer.printed(), ["hello"]);
}

fn bus(t: Transport, side: Side) {
    exchange(Protocol::Bus, "--bus0", t, side)
}

fn pair0(t: Transport, side: Side) {
    exchange(Protocol::Pair0, "--pair0", t, side)
}

fn pair1(t: Transport, side: Side) {
    exchange(Protocol::Pair1, "--pair1", t, side)
}

/// A polyamorous ferry PAIR v1 talks to NNG's monogamous one; the answer goes to the pipe
/// named in the message.
fn pair1_poly(t: Transport, side: Side) {
    exchange(Protocol::Pair1Poly, "--pair1", t, side)
}

/// A PUB peer is not a REQ. Dialing one fails with a protocol mismatch; when one dials in,
/// no pipe comes up, nothing is delivered, and the listener keeps serving the right peers.
fn protocol_mismatch(t: Transport, side: Side) {
    let rep = socket(Protocol::Rep);
    if side == Side::Nngcat {
        let (url, _dir) = address(t, side);
        let mut publisher = spawn(&["--pub0", "--data", "x", "--delay", "30"], "--listen", &url);
        match dial_nngcat(&rep, &url, &mut publisher) {
            Err(Error::ProtocolMismatch { peer: 0x20, expected: 0x30 }) => {}
            other => panic!("REP dialing a PUB: expected a protocol mismatch, got {other:?}"),
        }
        assert_eq!(rep.as_async().pipe_count(), 0);
        return;
    }
    // Keep the ipc directory (`_dir`) for the second peer.
    let Nngcat { proc: publisher, url, _dir } =
        Nngcat::attach(&rep, t, side, &["--pub0", "--data", "not a request", "--count", "3"]);
    let out = publisher.wait(LIMIT);
    assert!(out.success() && out.stdout.is_empty(), "nngcat pub: {out:?}");
    assert_eq!(rep.as_async().pipe_count(), 0, "a pipe to nngcat's PUB");
    rep.set(SockOpt::RecvTimeout(Some(Duration::from_millis(300)))).expect("recv-timeout");
    assert!(matches!(rep.recv(), Err(Error::Timeout)), "REP received from a PUB");
    rep.set(SockOpt::RecvTimeout(Some(LIMIT))).expect("recv-timeout");
    let req = Proc::nngcat(&["--req0", "--dial", &url, "--data", "hello", "--quoted", "--recv-timeout", "5"]);
    assert_eq!(recv_text(&rep), "hello");
    rep.send("world").expect("send reply");
    assert_eq!(req.wait(LIMIT).lines(), ["\"world\""]);
}
