//! Interop with the real NNG: every protocol pair of ferry-sp against `nngcat` 1.5.2, over
//! any transport. `interop_nngcat.rs` (tcp, ipc), `interop_ws.rs` (ws, wss) and
//! `interop_tls.rs` (tls+tcp) each run this one table through [`nngcat_matrix!`].
//!
//! Each case is one function `case(transport, side)`; the matrix runs it for every
//! transport it is given, once with ferry listening and nngcat dialing and once the
//! reverse. Where a pattern has two roles there is one case per role, so ferry plays each
//! side.
//!
//! nngcat behaviour the cases rely on (sp-wire.md §9):
//! - its dials are synchronous, so a ferry listener is bound before nngcat starts, and
//!   ferry dials an nngcat listener by retrying while the address refuses ([`dial_nngcat`]);
//! - `--quoted` prints one `"…"` line per message received (the default prints nothing);
//! - PUB, BUS and SURVEYOR drop what they send before a pipe is up on their side, so those
//!   nngcats repeat their message every second (`--interval 1 --count 3`) rather than rely on
//!   a start-up delay, and ferry answers the first copy it gets;
//! - PAIR instead holds its first send until a pipe is up, but the clock of `--interval`
//!   starts before that send: a peer that connects more than an interval late makes the
//!   next receive timeout negative and nngcat exits with "Cannot set recv timeout". Those
//!   nngcats send once (`--count 1`) within a long interval, and stop listening for the
//!   answer `--recv-timeout` after the last message ([`PAIR_ONCE`]);
//! - REP/RESPONDENT reply only with `--data`; PUB/PUSH linger 200 ms after the last send;
//! - a receive timeout ends nngcat with status 0, so the cases check what it printed.
//!
//! Over tls+tcp and wss both ends use one fresh [`TestCerts`] per connection: the listener
//! shows the server certificate, the dialer checks it against the authority.
//!
//! Every wait is bounded: ferry sockets have send and receive timeouts, nngcat runs under
//! [`Proc::wait`], and a process still running when its handle drops is killed.

// Each interop binary runs its own transports; helpers for the others go unused there.
#![allow(dead_code)]

use ferry_sp::blocking::Socket;
use ferry_sp::{Error, Message, Pem, Protocol, SockOpt};
use ferry_testkit::{eventually, free_port, IpcDir, Output, Proc, TestCerts};
use std::time::Duration;

/// The bound of every wait: ferry's timeouts, connecting, and nngcat's run.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// What nngcat repeats for the protocols that drop messages sent before a pipe is up.
const EVERY_SECOND_3_TIMES: [&str; 4] = ["--interval", "1", "--count", "3"];

/// What a PAIR nngcat sends with: once, when its pipe is up within 10 s, then it prints
/// what arrives until 3 s pass without a message.
const PAIR_ONCE: [&str; 6] = ["--interval", "10", "--count", "1", "--recv-timeout", "3"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Ipc,
    Ws,
    Wss,
    Tls,
}

impl Transport {
    fn uses_tls(self) -> bool {
        matches!(self, Transport::Wss | Transport::Tls)
    }

    fn is_websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
}

/// Which side listens; the other dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Ferry,
    Nngcat,
}

/// `nngcat_matrix!(tcp: Tcp, ipc: Ipc)` runs every case over each transport named, as a
/// module per case holding a module per transport with `ferry_listens` and
/// `nngcat_listens`: e.g. `bus::ws::nngcat_listens`. A transport may carry attributes, such
/// as the `#[cfg]` of the feature it needs.
macro_rules! nngcat_matrix {
    (@transport $case:ident, $(#[$attr:meta])* $name:ident: $t:ident) => {
        $(#[$attr])*
        mod $name {
            use crate::interop::{Side, Transport};

            #[test]
            fn ferry_listens() {
                crate::interop::$case(Transport::$t, Side::Ferry)
            }

            #[test]
            fn nngcat_listens() {
                crate::interop::$case(Transport::$t, Side::Nngcat)
            }
        }
    };
    (@case $case:ident [$($(#[$attr:meta])* $name:ident: $t:ident),*]) => {
        mod $case {
            $($crate::interop::nngcat_matrix!(@transport $case, $(#[$attr])* $name: $t);)*
        }
    };
    (@cases $transports:tt: $($case:ident),*) => {
        $($crate::interop::nngcat_matrix!(@case $case $transports);)*
    };
    ($($(#[$attr:meta])* $name:ident: $t:ident),* $(,)?) => {
        $crate::interop::nngcat_matrix!(@cases [$($(#[$attr])* $name: $t),*]:
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
            protocol_mismatch
        );
    };
}
pub(crate) use nngcat_matrix;

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

/// Where ferry and one nngcat meet, and what keeps the address usable until both are done.
struct Meeting {
    url: String,
    /// The IPC socket's directory.
    dir: Option<IpcDir>,
    /// The TLS certificates both ends use.
    certs: Option<TestCerts>,
}

impl Meeting {
    /// A fresh address for `listens` to listen on: port 0 for ferry (it reports the port it
    /// got), a free port for nngcat; for ipc, a socket file in a new directory.
    fn new(transport: Transport, listens: Side) -> Meeting {
        let port = || if listens == Side::Ferry { 0 } else { free_port() };
        let (url, dir) = match transport {
            Transport::Tcp => (format!("tcp://127.0.0.1:{}", port()), None),
            Transport::Tls => (format!("tls+tcp://127.0.0.1:{}", port()), None),
            Transport::Ws => (format!("ws://127.0.0.1:{}/sp", port()), None),
            Transport::Wss => (format!("wss://127.0.0.1:{}/sp", port()), None),
            Transport::Ipc => {
                let dir = IpcDir::new();
                (dir.url("sp.ipc"), Some(dir))
            }
        };
        Meeting { url, dir, certs: transport.uses_tls().then(TestCerts::new) }
    }

    /// Gives `sock` the certificate and authority, for listening and for dialing.
    fn configure(&self, sock: &Socket) {
        if let Some(certs) = &self.certs {
            let (cert, key) = (Pem::from(certs.cert_pem.as_str()), Pem::from(certs.key_pem.as_str()));
            sock.set(SockOpt::TlsCertKey { cert, key }).expect("tls-cert-key-file");
            sock.set(SockOpt::TlsCa(Pem::File(certs.ca_file()))).expect("tls-ca-file");
        }
    }

    /// Starts nngcat with `args`, `mode` (`--dial` or `--listen`) at `url`, and the
    /// certificate files if there are any.
    fn spawn(&self, args: &[&str], mode: &str, url: &str) -> Proc {
        let files = self.certs.as_ref().map(|c| [c.cert_file(), c.key_file(), c.ca_file()]);
        let files = files.as_ref().map(|f| f.each_ref().map(|p| p.to_str().expect("utf-8 temp path")));
        let mut all = args.to_vec();
        if let Some([cert, key, ca]) = files {
            all.extend(["--cert", cert, "--key", key, "--cacert", ca]);
        }
        all.extend([mode, url]);
        Proc::nngcat(&all)
    }
}

/// One nngcat process attached to a ferry socket.
struct Nngcat {
    proc: Proc,
    /// Where the two meet; keeps the address's directory and certificates.
    meeting: Meeting,
}

impl Nngcat {
    /// Starts nngcat with `args` and connects it to `sock` over `transport`, `listens`
    /// listening. Returns once ferry's end is bound (ferry listens) or connected (ferry dials).
    fn attach(sock: &Socket, transport: Transport, listens: Side, args: &[&str]) -> Nngcat {
        let mut meeting = Meeting::new(transport, listens);
        meeting.configure(sock);
        match listens {
            Side::Ferry => {
                meeting.url = sock.listen(&meeting.url).expect("ferry listens").url().to_string();
                Nngcat { proc: meeting.spawn(args, "--dial", &meeting.url), meeting }
            }
            Side::Nngcat => {
                let mut proc = meeting.spawn(args, "--listen", &meeting.url);
                if let Err(e) = dial_nngcat(sock, &meeting.url, &mut proc) {
                    panic!("ferry cannot dial nngcat at {}: {e}; nngcat: {:?}", meeting.url, proc.kill());
                }
                Nngcat { proc, meeting }
            }
        }
    }

    /// Waits for nngcat to exit and returns the messages it printed (`--quoted`), unquoted.
    fn printed(self) -> Vec<String> {
        let out = self.proc.wait(LIMIT);
        unquote(&out).unwrap_or_else(|| panic!("nngcat printed something other than quoted lines: {out:?}"))
    }
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

pub(crate) fn ferry_req_nngcat_rep(t: Transport, side: Side) {
    let req = socket(Protocol::Req);
    let rep = Nngcat::attach(&req, t, side, &["--rep0", "--data", "world", "--count", "1", "--quoted"]);
    req.send("hello").expect("send request");
    assert_eq!(recv_text(&req), "world");
    assert_eq!(rep.printed(), ["hello"]);
}

pub(crate) fn ferry_rep_nngcat_req(t: Transport, side: Side) {
    let rep = socket(Protocol::Rep);
    let req = Nngcat::attach(&rep, t, side, &["--req0", "--data", "hello", "--quoted", "--recv-timeout", "5"]);
    assert_eq!(recv_text(&rep), "hello");
    rep.send("world").expect("send reply");
    assert_eq!(req.printed(), ["world"]);
}

/// Three nngcat REQs, two requests each, on their own pipes: every reply must go back to
/// the pipe its request came from.
pub(crate) fn ferry_rep_answers_several_nngcat_reqs(t: Transport, side: Side) {
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
pub(crate) fn ferry_pub_nngcat_sub_filters(t: Transport, side: Side) {
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
pub(crate) fn nngcat_pubs_ferry_sub_filters(t: Transport, side: Side) {
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

pub(crate) fn ferry_push_nngcat_pull(t: Transport, side: Side) {
    let push = socket(Protocol::Push);
    let pull = Nngcat::attach(&push, t, side, &["--pull0", "--quoted", "--count", "3", "--recv-timeout", "5"]);
    let jobs = ["job-1", "job-2", "job-3"];
    for job in jobs {
        push.send(job).expect("push");
    }
    assert_eq!(pull.printed(), jobs);
}

pub(crate) fn nngcat_push_ferry_pull(t: Transport, side: Side) {
    let pull = socket(Protocol::Pull);
    let push = Nngcat::attach(&pull, t, side, &["--push0", "--data", "job", "--count", "3"]);
    let got: Vec<String> = (0..3).map(|_| recv_text(&pull)).collect();
    assert_eq!(got, ["job", "job", "job"]);
    assert!(push.printed().is_empty());
}

pub(crate) fn ferry_surveyor_nngcat_respondent(t: Transport, side: Side) {
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

pub(crate) fn nngcat_surveyor_ferry_respondent(t: Transport, side: Side) {
    let respondent = socket(Protocol::Respondent);
    let args = [&["--surveyor0", "--data", "lunch?", "--quoted"][..], &EVERY_SECOND_3_TIMES].concat();
    let surveyor = Nngcat::attach(&respondent, t, side, &args);
    assert_eq!(recv_text(&respondent), "lunch?");
    respondent.send("yes").expect("answer");
    assert_eq!(surveyor.printed(), ["yes"]);
}

/// The symmetric patterns: nngcat sends `hi` (BUS every second, three times; PAIR once),
/// ferry answers the first copy with `hello` on the pipe it came from, and nngcat prints
/// that answer once.
fn exchange(protocol: Protocol, nngcat_protocol: &str, t: Transport, side: Side) {
    let sock = socket(protocol);
    let repeat: &[&str] = if protocol == Protocol::Bus { &EVERY_SECOND_3_TIMES } else { &PAIR_ONCE };
    let args = [&[nngcat_protocol, "--data", "hi", "--quoted"][..], repeat].concat();
    let peer = Nngcat::attach(&sock, t, side, &args);
    let hi = sock.recv().expect("nngcat's message");
    let mut hello = Message::from("hello");
    hello.set_pipe(hi.pipe());
    assert_eq!(text(hi), "hi");
    sock.send(hello).expect("answer");
    assert_eq!(peer.printed(), ["hello"]);
}

pub(crate) fn bus(t: Transport, side: Side) {
    exchange(Protocol::Bus, "--bus0", t, side)
}

pub(crate) fn pair0(t: Transport, side: Side) {
    exchange(Protocol::Pair0, "--pair0", t, side)
}

pub(crate) fn pair1(t: Transport, side: Side) {
    exchange(Protocol::Pair1, "--pair1", t, side)
}

/// A polyamorous ferry PAIR v1 talks to NNG's monogamous one; the answer goes to the pipe
/// named in the message.
pub(crate) fn pair1_poly(t: Transport, side: Side) {
    exchange(Protocol::Pair1Poly, "--pair1", t, side)
}

/// A PUB peer is not a REQ. Dialing one fails; when one dials in, no pipe comes up, nothing
/// is delivered, and the listener keeps serving the right peers.
///
/// Over a byte stream the SP headers meet and the mismatch shows as the PUB's number. Over
/// ws the listener refuses the upgrade with 400 (sp-wire.md §5), so the dialer learns only
/// that, and nngcat's synchronous dial fails where over tcp its pipe is dropped later.
pub(crate) fn protocol_mismatch(t: Transport, side: Side) {
    let rep = socket(Protocol::Rep);
    if side == Side::Nngcat {
        let meeting = Meeting::new(t, side);
        meeting.configure(&rep);
        let mut publisher = meeting.spawn(&["--pub0", "--data", "x", "--delay", "30"], "--listen", &meeting.url);
        match dial_nngcat(&rep, &meeting.url, &mut publisher) {
            Err(Error::UpgradeRefused { status: 400, .. }) if t.is_websocket() => {}
            Err(Error::ProtocolMismatch { peer: 0x20, expected: 0x30 }) if !t.is_websocket() => {}
            other => panic!("REP dialing a PUB over {t:?}: expected a refusal, got {other:?}"),
        }
        assert_eq!(rep.as_async().pipe_count(), 0);
        return;
    }
    // Keep the meeting (the ipc directory, the certificates) for the second peer.
    let Nngcat { proc: publisher, meeting } =
        Nngcat::attach(&rep, t, side, &["--pub0", "--data", "not a request", "--count", "3"]);
    let out = publisher.wait(LIMIT);
    if t.is_websocket() {
        assert!(!out.success() && out.stderr.contains("Unable to dial"), "nngcat pub: {out:?}");
    } else {
        assert!(out.success() && out.stdout.is_empty(), "nngcat pub: {out:?}");
    }
    assert_eq!(rep.as_async().pipe_count(), 0, "a pipe to nngcat's PUB");
    rep.set(SockOpt::RecvTimeout(Some(Duration::from_millis(300)))).expect("recv-timeout");
    assert!(matches!(rep.recv(), Err(Error::Timeout)), "REP received from a PUB");
    rep.set(SockOpt::RecvTimeout(Some(LIMIT))).expect("recv-timeout");
    let req = meeting.spawn(&["--req0", "--data", "hello", "--quoted", "--recv-timeout", "5"], "--dial", &meeting.url);
    assert_eq!(recv_text(&rep), "hello");
    rep.send("world").expect("send reply");
    assert_eq!(req.wait(LIMIT).lines(), ["\"world\""]);
}
