//! What `ferry cat` adds to nngcat, and the transports it gained: `-v` reports pipes and
//! statistics on standard error while standard output stays exactly nngcat's, and
//! `--stats-interval` repeats the statistics; ws://, wss:// and tls+tcp:// work against
//! the real nngcat 1.5.2 with its TLS flags (`--cert`, `--key`, `--cacert`, `--insecure`).
//! Every wait is bounded and every process is killed on drop.

use ferry_testkit::{eventually, Output, Proc, TestCerts};
use std::thread;
use std::time::Duration;

/// How long any one process may run before it is killed (and its test fails).
const LIMIT: Duration = Duration::from_secs(20);
const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A free loopback port for a listener, picked at random below the ephemeral range, where
/// the connections of parallel cases do not take it between the check and the bind.
fn port() -> u16 {
    use rand::Rng;
    loop {
        let p = rand::thread_rng().gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn ferry(args: &[&str]) -> Proc {
    Proc::spawn(FERRY, &[&["cat"], args].concat())
}

/// Waits until `p` accepts TCP connections on `port`; if it ends first or never does,
/// fails with what it printed.
fn started(mut p: Proc, port: u16) -> Proc {
    let listening = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if eventually(LIMIT, || !p.is_running() || listening()) && p.is_running() {
        return p;
    }
    panic!("nothing listens on port {port}: {:?}", p.kill());
}

/// The lines of standard error that start with `prefix`.
fn stderr_lines<'a>(o: &'a Output, prefix: &str) -> Vec<&'a str> {
    o.stderr.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// `pipe 0x1234abcd <what>: <rest>` → `<rest>`, if the line is about a pipe `what`.
fn pipe_line<'a>(line: &'a str, what: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("pipe 0x")?;
    let (id, rest) = rest.split_once(' ')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    rest.strip_prefix(what)?.strip_prefix(": ")
}

/// A PULL with `-v` prints on standard output exactly what nngcat's does, and on standard
/// error the pipe it got (with the pusher's address), its removal and the statistics.
#[test]
fn verbose_reports_pipes_and_stats_on_stderr_and_leaves_stdout_alone() {
    let runs: Vec<(&str, Output, String)> = thread::scope(|s| {
        let handles: Vec<_> = ["ferry", "nngcat"]
            .into_iter()
            .map(|who| {
                s.spawn(move || {
                    let port = port();
                    let url = format!("tcp://127.0.0.1:{port}");
                    let args = ["--pull0", "--listen", &url, "-v", "--count", "1", "--quoted"];
                    let pull = if who == "ferry" { ferry(&args) } else { Proc::nngcat(&args) };
                    let pull = started(pull, port);
                    let push = Proc::nngcat(&["--push0", "--dial", &url, "--data", "hello"]).wait(LIMIT);
                    assert!(push.success(), "{push:?}");
                    (who, pull.wait(LIMIT), url)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (ferry_out, ferry_url) = (&runs[0].1, &runs[0].2);
    let (nngcat_out, nngcat_url) = (&runs[1].1, &runs[1].2);
    assert!(ferry_out.success(), "{ferry_out:?}");
    assert_eq!(ferry_out.stdout, format!("Listening at: {ferry_url}\n\"hello\"\n"));
    assert_eq!(ferry_out.stdout.replace(ferry_url, nngcat_url), nngcat_out.stdout, "stdout as nngcat's");

    let added: Vec<&str> = stderr_lines(ferry_out, "pipe ").into_iter().filter_map(|l| pipe_line(l, "added")).collect();
    assert_eq!(added.len(), 1, "{ferry_out:?}");
    // `<pusher's address> (<our URL>)`: the pusher dialed from an ephemeral port.
    let (remote, from) = added[0].split_once(' ').expect("remote and url");
    assert!(remote.starts_with("127.0.0.1:") && !remote.ends_with(&ferry_url[ferry_url.len() - 6..]), "{remote}");
    assert_eq!(from, format!("({ferry_url})"));
    let removed: Vec<&str> =
        stderr_lines(ferry_out, "pipe ").into_iter().filter_map(|l| pipe_line(l, "removed")).collect();
    assert_eq!(removed.len(), 1, "{ferry_out:?}");
    assert!(removed[0].starts_with(&format!("{remote} (")), "{removed:?}");
    let stats = stderr_lines(ferry_out, "stats: ");
    // "hello" is 5 bytes: PUSH/PULL carry no header.
    assert!(stats.iter().any(|l| l.starts_with("stats: in 1 msgs/5 B, out 0 msgs/0 B, drops 0")), "{ferry_out:?}");
}

/// A dialer's `-v` names the listener's address as the pipe's remote end, and counts what
/// it sent.
#[test]
fn verbose_on_a_dialer_names_the_listener() {
    let port = port();
    let url = format!("tcp://127.0.0.1:{port}");
    // The puller waits for a second message, so that the pipe is still up when the pusher
    // prints its final statistics; it is killed once the pusher is done.
    let pull = started(Proc::nngcat(&["--pull0", "--listen", &url, "--count", "2", "--quoted"]), port);
    let push = ferry(&["--push0", "--dial", &url, "--data", "hello", "--verbose"]).wait(LIMIT);
    let pull = pull.kill();
    assert_eq!(pull.stdout, "\"hello\"\n");
    assert!(push.success(), "{push:?}");
    assert_eq!(push.stdout, format!("Connected to: {url}\n"));
    let added: Vec<&str> = stderr_lines(&push, "pipe ").into_iter().filter_map(|l| pipe_line(l, "added")).collect();
    assert_eq!(added, [format!("127.0.0.1:{port} ({url})")], "{push:?}");
    assert!(stderr_lines(&push, "stats: ").iter().any(|l| l.contains("out 1 msgs/5 B")), "{push:?}");
    assert!(stderr_lines(&push, "stats: pipe 0x").iter().any(|l| l.contains(&format!("127.0.0.1:{port} ({url})"))));

    // Without -v, standard error stays empty.
    let port = self::port();
    let url = format!("tcp://127.0.0.1:{port}");
    let pull = started(Proc::nngcat(&["--pull0", "--listen", &url, "--count", "1"]), port);
    let quiet = ferry(&["--push0", "--dial", &url, "--data", "hello"]).wait(LIMIT);
    assert!(pull.wait(LIMIT).success());
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""), "{quiet:?}");
}

/// `--stats-interval` prints statistics while the command waits, without `-v`.
#[test]
fn stats_interval_prints_while_running() {
    let out = ferry(&["--pull0", "--listen", "tcp://127.0.0.1:0", "--stats-interval", "1", "--recv-timeout", "4"])
        .wait(LIMIT);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "");
    let stats = stderr_lines(&out, "stats: in 0 msgs/0 B");
    assert!(!stats.is_empty(), "{out:?}");
    assert!(stderr_lines(&out, "pipe ").is_empty(), "no pipe events without -v: {out:?}");

    let bad = ferry(&["--pull0", "--listen", "tcp://127.0.0.1:0", "--stats-interval", "soon"]).wait(LIMIT);
    assert_eq!((bad.status.and_then(|s| s.code()), bad.stderr.as_str()), (Some(1), "Integer argument expected.\n"));
}

/// Who plays which end of a REQ/REP exchange.
#[derive(Clone, Copy, Debug)]
enum Rep {
    Ferry,
    Nngcat,
}

/// A REP listening at `url` (port `port`) with `rep_tls`, and a REQ dialing it with
/// `req_tls`; ferry is the REP or the REQ. Both must print the other's message.
fn req_rep(rep_is: Rep, url: &str, port: u16, rep_tls: &[&str], req_tls: &[&str]) {
    let rep_args = [&["--rep0", "--listen", url, "--data", "world", "--count", "1", "--quoted"][..], rep_tls].concat();
    let req_args =
        [&["--req0", "--dial", url, "--data", "hello", "--quoted", "--recv-timeout", "10"][..], req_tls].concat();
    let (rep, req) = match rep_is {
        Rep::Ferry => (ferry(&rep_args), Proc::nngcat as fn(&[&str]) -> Proc),
        Rep::Nngcat => (Proc::nngcat(&rep_args), ferry as fn(&[&str]) -> Proc),
    };
    let rep = started(rep, port);
    let req = req(&req_args).wait(LIMIT);
    let rep = rep.wait(LIMIT);
    let label = format!("{rep_is:?} REP at {url}\nrep: {rep:?}\nreq: {req:?}");
    assert_eq!((rep.stdout.as_str(), req.stdout.as_str()), ("\"hello\"\n", "\"world\"\n"), "{label}");
    assert!(rep.success() && req.success(), "{label}");
}

fn path(p: std::path::PathBuf) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

#[test]
fn ws_against_nngcat_both_ways() {
    thread::scope(|s| {
        for rep in [Rep::Ferry, Rep::Nngcat] {
            s.spawn(move || {
                let port = port();
                req_rep(rep, &format!("ws://127.0.0.1:{port}/sp"), port, &[], &[]);
            });
        }
    });
}

#[test]
fn tls_tcp_and_wss_against_nngcat_with_its_tls_flags() {
    let certs = TestCerts::new();
    let (ca, cert, key) = (path(certs.ca_file()), path(certs.cert_file()), path(certs.key_file()));
    // nngcat's --cert alone reads the key from the same file.
    let both = certs.dir().join("cert-and-key.pem");
    std::fs::write(&both, format!("{}{}", certs.cert_pem, certs.key_pem)).unwrap();
    let both = path(both);
    let listener = ["--cert", cert.as_str(), "--key", key.as_str()];
    let one_file = ["--cert", both.as_str()];
    let verifying = ["--cacert", ca.as_str()];
    let insecure = ["--insecure"];
    type Case<'a> = (Rep, &'a str, &'a [&'a str], &'a [&'a str]);
    let cases: [Case<'_>; 6] = [
        (Rep::Ferry, "tls+tcp", &listener, &verifying),
        (Rep::Nngcat, "tls+tcp", &listener, &verifying),
        (Rep::Ferry, "tls+tcp", &one_file, &verifying),
        (Rep::Nngcat, "tls+tcp", &listener, &insecure),
        (Rep::Ferry, "wss", &listener, &verifying),
        (Rep::Nngcat, "wss", &one_file, &verifying),
    ];
    thread::scope(|s| {
        for (rep, scheme, rep_tls, req_tls) in cases {
            s.spawn(move || {
                let port = port();
                let path = if scheme == "wss" { "/sp" } else { "" };
                req_rep(rep, &format!("{scheme}://127.0.0.1:{port}{path}"), port, rep_tls, req_tls);
            });
        }
    });
}

/// A dialer that cannot verify the listener fails, as nngcat's does, and a TLS flag given
/// twice or naming a missing file fails with nngcat's message.
#[test]
fn tls_failures_match_nngcat() {
    let certs = TestCerts::new();
    let cert = path(certs.cert_file());
    let port = port();
    let url = format!("tls+tcp://127.0.0.1:{port}");
    let rep = started(
        ferry(&["--rep0", "--listen", &url, "--cert", &cert, "--key", &path(certs.key_file()), "--recv-timeout", "8"]),
        port,
    );
    // The wrong authority: the handshake fails, so the dial does.
    let stranger = TestCerts::new();
    let wrong_ca = path(stranger.ca_file());
    for who in ["ferry", "nngcat"] {
        let args = ["--req0", "--dial", url.as_str(), "--data", "x", "--cacert", wrong_ca.as_str()];
        let out = if who == "ferry" { ferry(&args) } else { Proc::nngcat(&args) }.wait(LIMIT);
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{who}: {out:?}");
        assert!(out.stderr.starts_with(&format!("Unable to dial on {url}: ")), "{who}: {out:?}");
    }
    drop(rep);

    let twice = ["--req0", "--dial", "tls+tcp://127.0.0.1:1", "--data", "x", "--cert", &cert, "--cert", &cert];
    let missing = ["--req0", "--dial", "tls+tcp://127.0.0.1:1", "--data", "x", "--cacert", "/nonexistent/ferry-ca"];
    for args in [&twice[..], &missing[..]] {
        let ours = ferry(args).wait(LIMIT);
        let theirs = Proc::nngcat(args).wait(LIMIT);
        let outcome = |o: &Output| (o.status.and_then(|s| s.code()), o.stdout.clone(), o.stderr.clone());
        assert_eq!(outcome(&ours), outcome(&theirs), "{args:?}");
        assert_eq!(ours.status.and_then(|s| s.code()), Some(1));
    }
}
