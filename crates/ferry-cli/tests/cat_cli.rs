//! `ferry cat`'s command line against the real nngcat 1.5.2: output formats byte for byte,
//! data from `--file` and standard input, the address shorthands, `--async`, `--compat`,
//! `--recv-maxsz`, `-v`, and the messages and exit codes of failures. Independent cases
//! run in parallel threads; every wait is bounded and every process is killed on drop.

use ferry_testkit::{eventually, IpcDir, Output, Proc};
use std::path::Path;
use std::thread;
use std::time::Duration;

/// How long any one process may run before it is killed (and its test fails).
const LIMIT: Duration = Duration::from_secs(20);
const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A free loopback port for a listener, picked at random below the ephemeral range.
/// (`free_port()` hands out ephemeral ports, which the many connections of parallel cases
/// can take between the check and the bind.)
/// Never the same port twice in this process: two parallel cases on one port would have
/// one's dialer reach the other's listener, or find it already gone.
fn port() -> u16 {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let p = rand::thread_rng().gen_range(20_000..32_000);
        let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            given.push(p);
            return p;
        }
    }
}

fn tcp_url() -> String {
    format!("tcp://127.0.0.1:{}", port())
}

fn ferry(args: &[&str]) -> Proc {
    Proc::spawn(FERRY, &[&["cat"], args].concat())
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("tcp url with a port")
}

/// Whether something accepts connections at `url` (tcp or a ferry ipc listener) yet.
fn listening(url: &str) -> bool {
    match url.strip_prefix("ipc://") {
        Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        None => std::net::TcpStream::connect(("127.0.0.1", port_of(url))).is_ok(),
    }
}

/// Waits until `p` listens at `url`; if it ends first or never does, fails with what it
/// printed.
fn started(mut p: Proc, url: &str) -> Proc {
    if eventually(LIMIT, || !p.is_running() || listening(url)) && p.is_running() {
        return p;
    }
    panic!("nothing listens at {url}: {:?}", p.kill());
}

/// Starts `program args…` with its standard output going to the file `out` (the captured
/// output of `Proc` is decoded as text, which would hide bytes that are not UTF-8).
fn spawn_to_file(program: &str, args: &[&str], out: &Path) -> Proc {
    let out = out.to_str().expect("utf-8 path");
    let script = r#"out=$1; shift; exec "$@" > "$out""#;
    Proc::spawn("sh", &[&["-c", script, "sh", out, program], args].concat())
}

/// A message with every kind of byte the formats treat differently.
const MIXED: &[u8] = b"a\x00\x01\t\n\r\"\\ \x7f\x80\xffz";

#[test]
fn formats_match_nngcat_byte_for_byte() {
    let dir = IpcDir::new();
    let input = dir.path().join("mixed.bin");
    std::fs::write(&input, MIXED).unwrap();
    let input = input.to_str().unwrap();
    let quoted: &[u8] = b"\"a\\x00\\x01\\t\\n\\r\\\"\\\\ \\x7f\\x80\\xffz\"\n";
    let hex: &[u8] = b"\"\\x61\\x00\\x01\\x09\\x0a\\x0d\\x22\\x5c\\x20\\x7f\\x80\\xff\\x7a\"\n";
    let msgpack = [&[0xc4, MIXED.len() as u8][..], MIXED].concat();
    let cases: Vec<(&str, Vec<&str>, Vec<u8>)> = vec![
        ("quoted", vec!["--quoted"], quoted.repeat(2)),
        ("q", vec!["-Q"], quoted.repeat(2)),
        ("hex", vec!["--format", "hex"], hex.repeat(2)),
        ("ascii", vec!["-A"], b"a.....\"\\ ...z".repeat(2)),
        ("raw", vec!["--raw"], MIXED.repeat(2)),
        ("msgpack", vec!["--msgpack"], msgpack.repeat(2)),
        ("no", vec!["--format", "no"], Vec::new()),
        ("default", vec![], Vec::new()),
    ];
    thread::scope(|s| {
        for (name, fmt, want) in &cases {
            let dir = &dir;
            s.spawn(move || {
                // The same two messages from nngcat, to ferry and to nngcat.
                let mut got = Vec::new();
                for (who, program, pre) in [("ferry", FERRY, &["cat"][..]), ("nngcat", "nngcat", &[][..])] {
                    let url = tcp_url();
                    let out = dir.path().join(format!("{name}-{who}.out"));
                    let args = [pre, &["--pull0", "--listen", &url, "--count", "2"], &fmt[..]].concat();
                    let pull = spawn_to_file(program, &args, &out);
                    let pull = started(pull, &url);
                    let push = Proc::nngcat(&["--push0", "--dial", &url, "-F", input, "--count", "2"]).wait(LIMIT);
                    let pull = pull.wait(LIMIT);
                    assert!(push.success() && pull.success(), "{who} {name}: {push:?} {pull:?}");
                    got.push(std::fs::read(&out).unwrap());
                }
                assert_eq!(got[0], *want, "ferry, format {name}");
                assert_eq!(got[1], *want, "nngcat, format {name}");
            });
        }
    });
}

#[test]
fn ferry_sends_file_stdin_and_dashed_data_exactly() {
    let dir = IpcDir::new();
    let input = dir.path().join("mixed.bin");
    std::fs::write(&input, MIXED).unwrap();
    let input = input.to_str().unwrap();
    let hex = "\"\\x61\\x00\\x01\\x09\\x0a\\x0d\\x22\\x5c\\x20\\x7f\\x80\\xff\\x7a\"\n";
    let stdin_script = format!(r#"exec "$0" cat --push0 --dial "$1" -F - < {input}"#);
    type Sender<'a> = Box<dyn Fn(&str) -> Proc + Sync + 'a>;
    let cases: Vec<(&str, Sender<'_>, &str)> = vec![
        ("file", Box::new(|url| ferry(&["--push0", "--dial", url, "--file", input])), hex),
        ("stdin", Box::new(|url| Proc::spawn("sh", &["-c", &stdin_script, FERRY, url])), hex),
        ("dash", Box::new(|url| ferry(&["--push0", "--dial", url, "-D", "-x"])), "\"\\x2d\\x78\"\n"),
    ];
    thread::scope(|s| {
        for (name, push, want) in &cases {
            s.spawn(move || {
                let url = tcp_url();
                let pull = Proc::nngcat(&["--pull0", "--listen", &url, "--hex", "--count", "1"]);
                let pull = started(pull, &url);
                let push = push(&url).wait(LIMIT);
                let pull = pull.wait(LIMIT);
                assert_eq!(pull.stdout, *want, "{name}: {push:?}");
                assert!(push.success() && pull.success(), "{name}: {push:?} {pull:?}");
            });
        }
    });
}

#[test]
fn address_shorthands_and_aliases() {
    thread::scope(|s| {
        // -L/-l PORT: tcp://127.0.0.1:PORT.
        s.spawn(|| {
            let port = port().to_string();
            let rep = ferry(&["--rep0", "-L", &port, "--data", "world", "--count", "1", "-Q"]);
            let rep = started(rep, &format!("tcp://127.0.0.1:{port}"));
            let req =
                Proc::nngcat(&["--req0", "-l", &port, "--data", "hello", "-Q", "--recv-timeout", "5"]).wait(LIMIT);
            let rep = rep.wait(LIMIT);
            assert_eq!((rep.stdout.as_str(), req.stdout.as_str()), ("\"hello\"\n", "\"world\"\n"), "{rep:?} {req:?}");
        });
        // -X/-x PATH: ipc:///PATH.
        s.spawn(|| {
            let dir = IpcDir::new();
            let path = dir.path().join("x.ipc");
            let path = path.to_str().unwrap();
            let pull = ferry(&["--pull0", "-X", path, "--count", "1", "-A"]);
            let pull = started(pull, &format!("ipc://{path}"));
            let push = Proc::nngcat(&["--push0", "-x", path, "--data", "via ipc"]).wait(LIMIT);
            let pull = pull.wait(LIMIT);
            assert_eq!(pull.stdout, "via ipc", "{push:?} {pull:?}");
        });
        // --bind/--connect, nanocat's names.
        s.spawn(|| {
            let url = tcp_url();
            let pull = Proc::nngcat(&["--pull0", "--bind", &url, "--count", "1", "--quoted"]);
            let pull = started(pull, &url);
            let push = ferry(&["--push", "--connect", &url, "--data", "nanocat"]).wait(LIMIT);
            let pull = pull.wait(LIMIT);
            assert_eq!(pull.stdout, "\"nanocat\"\n", "{push:?} {pull:?}");
        });
    });
}

#[test]
fn async_compat_pair_and_recv_maxsz() {
    thread::scope(|s| {
        // --async: the dial waits in the background for a listener that comes later.
        s.spawn(|| {
            let url = tcp_url();
            let pull = ferry(&["--pull0", "--dial", &url, "--async", "--count", "1", "--quoted"]);
            let push = Proc::nngcat(&["--push0", "--listen", &url, "--data", "late"]).wait(LIMIT);
            let pull = pull.wait(LIMIT);
            assert_eq!(pull.stdout, "\"late\"\n", "{push:?} {pull:?}");
            assert!(pull.success() && push.success());
        });
        // --compat: --pair is PAIR v0, and the dial is asynchronous.
        s.spawn(|| {
            let url = tcp_url();
            let pair = ferry(&["--pair", "--compat", "--dial", &url, "--recv-timeout", "4", "--quoted"]);
            let peer = Proc::nngcat(&["--pair0", "--listen", &url, "--data", "v0", "--recv-timeout", "1"]).wait(LIMIT);
            let pair = pair.wait(LIMIT);
            assert_eq!(pair.stdout, "\"v0\"\n", "{peer:?} {pair:?}");
            assert!(pair.success() && peer.success());
        });
        // --pair without --compat is PAIR v1 (nngcat 1.5.2 ignores --pair: a bug).
        s.spawn(|| {
            let url = tcp_url();
            let pair = ferry(&["--pair", "--listen", &url, "--count", "1", "--quoted"]);
            let pair = started(pair, &url);
            let peer = Proc::nngcat(&["--pair1", "--dial", &url, "--data", "v1", "--recv-timeout", "1"]).wait(LIMIT);
            let pair = pair.wait(LIMIT);
            assert_eq!(pair.stdout, "\"v1\"\n", "{peer:?} {pair:?}");
        });
        // -Z: a bigger message drops that connection; a small one from the next gets through.
        s.spawn(|| {
            let url = tcp_url();
            let pull =
                ferry(&["--pull0", "--listen", &url, "-Z", "4", "--count", "1", "--quoted", "--recv-timeout", "8"]);
            let pull = started(pull, &url);
            let big = Proc::nngcat(&["--push0", "--dial", &url, "--data", "too big"]).wait(LIMIT);
            let small = Proc::nngcat(&["--push0", "--dial", &url, "--data", "ok"]).wait(LIMIT);
            let pull = pull.wait(LIMIT);
            assert_eq!(pull.stdout, "\"ok\"\n", "{big:?} {small:?} {pull:?}");
        });
    });
}

#[test]
fn verbose_prints_addresses_and_version() {
    let pull = ferry(&["--pull0", "--listen", "tcp://127.0.0.1:0", "-v", "--recv-timeout", "1"]).wait(LIMIT);
    let port = pull.stdout.strip_prefix("Listening at: tcp://127.0.0.1:").and_then(|p| p.strip_suffix('\n'));
    assert!(port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p != 0)), "{pull:?}");
    assert!(pull.success());

    let url = tcp_url();
    let nng = Proc::nngcat(&["--pull0", "--listen", &url, "--count", "1"]);
    let nng = started(nng, &url);
    let push = ferry(&["--push0", "--dial", &url, "--data", "x", "-q", "--verbose"]).wait(LIMIT);
    assert_eq!(push.stdout, format!("Connected to: {url}\n"));
    assert!(nng.wait(LIMIT).success());

    let version = ferry(&["-V"]).wait(LIMIT);
    assert_eq!(version.stdout, format!("{}\n", env!("CARGO_PKG_VERSION")));
    assert!(version.success());
}

/// Exit code, standard output and standard error.
fn outcome(o: &Output) -> (Option<i32>, &str, &str) {
    (o.status.and_then(|s| s.code()), o.stdout.as_str(), o.stderr.as_str())
}

#[test]
fn failures_and_timeouts_match_nngcat() {
    let refused = tcp_url();
    let dir = IpcDir::new();
    let missing_ipc = dir.url("missing.ipc");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_url = format!("tcp://127.0.0.1:{}", busy.local_addr().unwrap().port());
    let r = refused.as_str();
    let cases: Vec<Vec<&str>> = vec![
        // Endpoints.
        vec!["--req0", "--dial", r, "--data", "x"],
        vec!["--pull0", "--dial", &missing_ipc],
        vec!["--pull0", "--listen", &busy_url],
        vec!["--pull0", "--dial", "foo://x"],
        vec!["--pull0", "--dial", "no-scheme"],
        vec!["--pull0", "--dial", "tcp://nohost"],
        vec!["--pull0", "--listen", "tcp://127.0.0.1:99999"],
        vec!["--pull0", "--listen", "ipc:///nonexistent-ferry-dir/x.ipc"],
        vec!["--pull0", "-l", "99999"],
        // Flags.
        vec!["--req0", "--data", "x"],
        vec!["--dial", r, "--data", "x"],
        vec!["--req0", "--rep0", "--dial", r],
        vec!["--req0", "--dial", r],
        vec!["--surveyor", "--dial", r],
        vec!["--sub0", "--dial", r, "--data", "x"],
        vec!["--pull0", "--dial", r, "--interval", "1"],
        vec!["--pub0", "--dial", r, "--data", "x", "--quoted"],
        vec!["--pull0", "--dial", r, "--hex", "--raw"],
        vec!["--pull0", "--dial", r, "--format", "text"],
        vec!["--pull0", "--dial", r, "--count", "abc"],
        vec!["--pull0", "--dial", r, "--count", ""],
        vec!["--pull0", "--dial", r, "--count", "-1"],
        vec!["--push0", "--dial", r, "--data", "x", "--delay", "86401"],
        vec!["--req0", "--dial", r, "--subscribe", "t", "--data", "x"],
        vec!["--req0", "--dial", r, "-F", "/nonexistent/ferry-cat-input"],
        vec!["--req0", "--dial", r, "-D", "x", "-D", "y"],
        vec!["--pair1", "--compat", "--dial", r],
        vec!["--pair0", "--compat", "--async", "--dial", r],
        vec!["--bus0", "--dial", r, "--interval", "1"],
        // At run time.
        vec!["--rep0", "--listen", "tcp://127.0.0.1:0", "--data", "x", "--recv-timeout", "1"],
        vec!["--req0", "--dial", r, "--async", "--data", "x", "--send-timeout", "1"],
        // A receive timeout, or the end of a survey, is a normal end: exit 0.
        vec!["--pull0", "--listen", "tcp://127.0.0.1:0", "--quoted", "--recv-timeout", "1"],
        vec!["--surveyor0", "--listen", "tcp://127.0.0.1:0", "--data", "q", "--quoted"],
        vec!["--sub", "--dial", r, "--async", "--recv-timeout", "1"],
    ];
    thread::scope(|s| {
        for args in &cases {
            s.spawn(move || {
                let ours = ferry(args).wait(LIMIT);
                let theirs = Proc::nngcat(args).wait(LIMIT);
                assert_eq!(outcome(&ours), outcome(&theirs), "ferry cat {args:?}");
                assert!(theirs.status.is_some(), "nngcat {args:?} did not finish: {theirs:?}");
                let code = theirs.status.and_then(|s| s.code());
                // Every case either fails with a message or ends normally in silence.
                let failed = code == Some(1);
                assert_eq!(failed, !theirs.stderr.is_empty(), "{args:?}: {theirs:?}");
            });
        }
    });
    // The failures that every nngcat user meets, spelled out.
    let refused_out = ferry(&["--req0", "--dial", r, "--data", "x"]).wait(LIMIT);
    assert_eq!(refused_out.stderr, format!("Unable to dial on {r}: Connection refused\n"));
    assert_eq!(refused_out.status.and_then(|s| s.code()), Some(1));
    let bad = ferry(&["--pull0", "--dial", "foo://x"]).wait(LIMIT);
    assert_eq!(bad.stderr, "Unable to create dialer for foo://x: Not supported\n");
    assert_eq!(bad.status.and_then(|s| s.code()), Some(1));
    drop(busy);
}
