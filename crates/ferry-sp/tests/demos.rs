//! The demo examples run as the programs they are: separate processes, checked by what
//! they print. `cargo test` builds the examples next to this test (`target/<profile>/examples`);
//! after building only this test (`cargo test --test demos`), build them with
//! `cargo build -p ferry-sp --examples`.

use ferry_testkit::{tcp_url, wait_for_ipc, wait_for_tcp, IpcDir, Output, Proc};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Three one-second rounds, process start-up and a loaded machine.
const NODE_LIMIT: Duration = Duration::from_secs(30);
/// Fifteen one-second messages, and the same slack.
const PUBSUB_LIMIT: Duration = Duration::from_secs(50);

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/demos-<hash> → target/<profile>/examples/<name>
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("examples").join(name);
    assert!(
        path.is_file(),
        "example {name} is not built at {}: run `cargo build -p ferry-sp --examples` (plain `cargo test` builds it)",
        path.display()
    );
    path
}

/// The messages of Go-style log lines (`<timestamp> <LEVEL> <message>`) on standard error.
fn log_messages(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter_map(|line| {
            let (_time, rest) = line.trim_start().split_once(' ')?;
            let (_level, message) = rest.trim_start().split_once(' ')?;
            Some(message)
        })
        .collect()
}

fn assert_success(who: &str, out: &Output) {
    assert!(out.success(), "{who} failed ({:?}):\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
}

/// Starts node 0, waits until it listens, starts node 1, and returns both outputs.
fn run_nodes(program: &str, url: &str, listening: impl Fn() -> bool) -> (Output, Output) {
    let first = Proc::spawn(example(program), &["0", url]);
    assert!(listening(), "node 0 did not start listening on {url}");
    let second = Proc::spawn(example(program), &["1", url]);
    let (first, second) = (first.wait(NODE_LIMIT), second.wait(NODE_LIMIT));
    assert_success("node 0", &first);
    assert_success("node 1", &second);
    (first, second)
}

/// What node `n` logs in the lock-step demo, after its set-up lines.
fn lockstep_log(n: u32) -> Vec<String> {
    let peer = 1 - n;
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(format!("Node {n} sends message {i} from node {n}."));
        expected.push(format!("Node {n} received message {i} from node {peer}."));
    }
    expected.push(format!("Node {n}: Done."));
    expected
}

fn assert_lockstep(url: &str, first: &Output, second: &Output) {
    assert_eq!(log_messages(first), lockstep_log(0));
    let second_log = log_messages(second);
    assert!(
        second_log[0].starts_with(&format!("Node 1 cannot listen on socket '{url}': address in use")),
        "{second_log:?}"
    );
    assert_eq!(second_log[1], "Trying to dial instead");
    assert_eq!(second_log[2..], lockstep_log(1));
}

#[test]
fn messaging_over_tcp() {
    let url = tcp_url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let (first, second) = run_nodes("messaging", &url, || wait_for_tcp(port, NODE_LIMIT));
    assert_lockstep(&url, &first, &second);
}

#[test]
fn messaging_over_ipc() {
    let dir = IpcDir::new();
    let url = dir.url("pair.ipc");
    let (first, second) = run_nodes("messaging", &url, || wait_for_ipc(&url, NODE_LIMIT));
    assert_lockstep(&url, &first, &second);
}

#[test]
fn messaging_concurrent_sends_and_receives_independently() {
    let url = tcp_url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let (first, second) = run_nodes("messaging_concurrent", &url, || wait_for_tcp(port, NODE_LIMIT));
    for (n, out) in [(0, &first), (1, &second)] {
        let log = log_messages(out);
        let peer = 1 - n;
        // Sending and receiving interleave freely; each in its own order, then done.
        let sends: Vec<&str> = log.iter().copied().filter(|m| m.contains(" sends ")).collect();
        let received: Vec<&str> = log.iter().copied().filter(|m| m.contains(" received ")).collect();
        let expected_sends: Vec<String> =
            (0..3).map(|i| format!("Node {n} sends message {i} from node {n}.")).collect();
        let expected_received: Vec<String> =
            (0..3).map(|i| format!("Node {n} received message {i} from node {peer}.")).collect();
        assert_eq!(sends, expected_sends);
        assert_eq!(received, expected_received);
        assert_eq!(log.last().copied(), Some(format!("Node {n}: Done.").as_str()));
    }
}

#[test]
fn messaging_without_arguments_prints_its_usage() {
    let program = example("messaging");
    let out = Proc::spawn(&program, &["0"]).wait(NODE_LIMIT);
    assert_success("messaging 0", &out);
    assert_eq!(log_messages(&out), [format!("Usage: {} 0|1 <url>", program.display())]);
}

#[test]
fn messaging_fails_when_it_can_neither_listen_nor_dial() {
    let out = Proc::spawn(example("messaging"), &["0", "gopher://nowhere"]).wait(NODE_LIMIT);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    let log = log_messages(&out);
    assert!(log[0].starts_with("Node 0 cannot listen on socket 'gopher://nowhere': bad url"), "{log:?}");
    assert_eq!(log[1], "Trying to dial instead");
    assert!(log[2].starts_with("Node 0: can neither listen nor dial on 'gopher://nowhere'"), "{log:?}");
}

#[test]
fn pubsub_clients_get_exactly_their_topics() {
    let mut cmd = Command::new(example("pubsub"));
    cmd.env("PUBSUB_URL", tcp_url());
    let out = Proc::spawn_cmd(cmd).wait(PUBSUB_LIMIT);
    assert_success("the pubsub server", &out);

    let topics = ["Technology", "Weather", "Finance"];
    let published: Vec<String> =
        (0..5).flat_map(|_| topics.map(|t| format!("Publishing a message for topic {t}"))).collect();
    assert_eq!(log_messages(&out), published);

    let received = |client: &str| -> Vec<&str> {
        let prefix = format!("Client {client} received: ");
        out.lines().into_iter().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
    };
    let messages = |wanted: &[&str]| -> Vec<String> {
        (0..5).flat_map(|_| wanted.iter().map(|t| format!("{t}|Message for {t}"))).collect()
    };
    assert_eq!(received("C1"), messages(&["Technology"]));
    assert_eq!(received("C2"), messages(&["Technology", "Weather"]));
    assert_eq!(received("C3"), messages(&["Finance"]));
}
