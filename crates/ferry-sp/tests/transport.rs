//! Transports and addresses: tcp (IPv4, IPv6, wildcard, port 0), ipc (socket files) and
//! inproc, and the errors for addresses that cannot work.

mod common;

use common::{assert_err, connect_at, dial, listen, recv_text, round_trip, send, socket, until, TCP};
use ferry_sp::{Error, Protocol, Socket};
use ferry_testkit::{free_port, IpcDir};
use std::path::Path;

/// A REQ/REP round trip with REP listening on `url`; returns the bound address.
async fn round_trip_at(url: &str) -> String {
    let (rep, req) = (socket(Protocol::Rep), socket(Protocol::Req));
    let bound = connect_at(&rep, &req, url).await;
    round_trip(&req, &rep).await;
    bound
}

fn inproc_url(name: &str) -> String {
    // Names are process-wide; the test binary's tests run in parallel.
    format!("inproc://transport-{name}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_carries_messages() {
    let dir = IpcDir::new();
    round_trip_at(TCP).await;
    round_trip_at(&dir.url("rr.ipc")).await;
    round_trip_at(&inproc_url("rr")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_wildcard_port_zero_reports_the_chosen_port() {
    let pull = socket(Protocol::Pull);
    let listener = pull.listen("tcp://*:0").await.unwrap();
    let port = listener.port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(listener.url().to_string(), format!("tcp://*:{port}"));

    let push = socket(Protocol::Push);
    push.dial(&format!("tcp://127.0.0.1:{port}")).await.unwrap();
    send(&push, "via the wildcard").await;
    assert_eq!(recv_text(&pull).await, "via the wildcard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let bound = round_trip_at("tcp://[::1]:0").await;
    let port = bound.strip_prefix("tcp://[::1]:").unwrap().parse::<u16>().unwrap();
    assert_ne!(port, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_removes_a_stale_socket_file_before_binding() {
    let dir = IpcDir::new();
    let path = dir.path().join("stale.ipc");
    // A socket file nobody serves any more, as a crashed process leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    round_trip_at(&dir.url("stale.ipc")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_removes_its_socket_file_when_closed() {
    let dir = IpcDir::new();
    let (a, b) = (dir.path().join("a.ipc"), dir.path().join("b.ipc"));
    let s = socket(Protocol::Pull);
    let listener = listen_on(&s, &a).await;
    listen_on(&s, &b).await;

    listener.close();
    until("a.ipc removed after its listener closed", || !a.exists()).await;
    assert!(b.exists());
    s.close();
    until("b.ipc removed after its socket closed", || !b.exists()).await;
}

async fn listen_on(s: &Socket, path: &Path) -> ferry_sp::Listener {
    let l = s.listen(&format!("ipc://{}", path.display())).await.unwrap();
    assert!(path.exists());
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_rejected() {
    let s = socket(Protocol::Pair0);
    for url in [
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:99999",
        "tcp://::1:5",
        "tcp://h:1/path",
        "gopher://x:1",
        "ipc://",
        "inproc://",
        "nonsense",
    ] {
        assert_err!(s.listen(url).await, Error::BadUrl { .. });
        assert_err!(s.dial(url).await, Error::BadUrl { .. });
    }
    // A dialer needs somewhere to go.
    for url in ["tcp://*:5555", "tcp://127.0.0.1:0"] {
        assert_err!(s.dial(url).await, Error::BadUrl { .. });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_address_is_in_use() {
    let dir = IpcDir::new();
    let first = socket(Protocol::Pull);
    let tcp = listen(&first, TCP).await;
    let ipc = listen(&first, &dir.url("busy.ipc")).await;
    let inproc = listen(&first, &inproc_url("busy")).await;
    let second = socket(Protocol::Pull);
    for url in [&tcp, &ipc, &inproc] {
        assert_err!(second.listen(url).await, Error::AddrInUse(_));
    }
}

/// An inproc name is free as soon as its listener or socket is closed, not when the accept
/// task next runs: a dial is refused at once and the name can be bound again straight away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_inproc_listener_frees_its_name_at_once() {
    let url = inproc_url("freed");
    for round in 0..20 {
        let first = socket(Protocol::Pull);
        let listener = first.listen(&url).await.unwrap_or_else(|e| panic!("round {round}: listen: {e}"));
        if round % 2 == 0 {
            listener.close();
        } else {
            first.close();
        }
        assert_err!(socket(Protocol::Push).dial(&url).await, Error::ConnectionRefused(_));
        let second = socket(Protocol::Pull);
        listen(&second, &url).await;
        let push = socket(Protocol::Push);
        dial(&second, &push, &url).await;
        send(&push, "to the new listener").await;
        assert_eq!(recv_text(&second).await, "to the new listener");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_where_nobody_listens_is_refused() {
    let dir = IpcDir::new();
    let s = socket(Protocol::Push);
    for url in [format!("tcp://127.0.0.1:{}", free_port()), dir.url("nobody.ipc"), inproc_url("nobody")] {
        assert_err!(s.dial(&url).await, Error::ConnectionRefused(_));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_listen_in_a_missing_directory_says_so() {
    let dir = IpcDir::new();
    let url = format!("ipc://{}", dir.path().join("no-such-dir").join("x.ipc").display());
    let err = socket(Protocol::Pull).listen(&url).await.expect_err("listen must fail");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
        "a missing directory is not a refused connection: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_listens_and_dials_on_several_transports_at_once() {
    let dir = IpcDir::new();
    let pull = socket(Protocol::Pull);
    let urls =
        [listen(&pull, TCP).await, listen(&pull, &dir.url("many.ipc")).await, listen(&pull, &inproc_url("many")).await];
    let pushers: Vec<Socket> = urls.iter().map(|_| socket(Protocol::Push)).collect();
    for (push, url) in pushers.iter().zip(&urls) {
        dial(&pull, push, url).await;
    }
    for (i, push) in pushers.iter().enumerate() {
        send(push, format!("via-{i}")).await;
    }
    let mut got = Vec::new();
    for _ in 0..pushers.len() {
        got.push(recv_text(&pull).await);
    }
    got.sort();
    assert_eq!(got, vec!["via-0", "via-1", "via-2"]);

    // The first pusher now also dials a second puller: with two dialers it load-balances.
    let other = socket(Protocol::Pull);
    let other_url = listen(&other, TCP).await;
    dial(&other, &pushers[0], &other_url).await;
    send(&pushers[0], "x").await;
    send(&pushers[0], "y").await;
    let mut split = vec![recv_text(&pull).await, recv_text(&other).await];
    split.sort();
    assert_eq!(split, vec!["x", "y"]);
}
