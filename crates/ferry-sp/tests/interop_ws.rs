//! ws:// and wss://: every case of the [`interop`] table against nngcat, then ferry against
//! ferry and against hand-driven peers: several sockets on one port, the upgrade refusals a
//! raw HTTP client sees, fragmentation both ways, and the size limit (sp-wire.md §5).
#![cfg(feature = "transport-ws")]

mod common;
mod interop;

use common::{assert_err, connect_at, listen, recv_text, round_trip, send, socket, until, within, QUIET, WAIT};
use ferry_sp::{Error, Message, Protocol, SockOpt};
use ferry_testkit::Proc;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

interop::nngcat_matrix!(ws: Ws, #[cfg(feature = "transport-tls")] wss: Wss);

/// Loopback ws on a port the system chooses.
const WS: &str = "ws://127.0.0.1:0/sp";

/// `host:port` of a `ws://host:port/path` URL.
fn authority(url: &str) -> &str {
    let rest = url.strip_prefix("ws://").unwrap_or_else(|| panic!("not a ws url: {url}"));
    rest.split('/').next().unwrap_or(rest)
}

/// A WebSocket client driven by hand, asking for `subprotocol`; frames it receives may be
/// at most `max_frame` bytes.
async fn raw_ws(url: &str, subprotocol: &str, max_frame: usize) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(authority(url)).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", subprotocol.parse().expect("header value"));
    let config = WebSocketConfig::default().max_frame_size(Some(max_frame)).max_message_size(None);
    let (ws, _) = within("the upgrade", tokio_tungstenite::client_async_with_config(request, tcp, Some(config)))
        .await
        .unwrap_or_else(|e| panic!("upgrade at {url}: {e}"));
    ws
}

/// Sends a raw HTTP request head to `url`'s host and returns the answer's status line.
async fn http_status(url: &str, head: &str) -> String {
    let mut tcp = TcpStream::connect(authority(url)).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write request");
    let mut answer = Vec::new();
    within("the HTTP answer", tcp.read_to_end(&mut answer)).await.expect("read answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_string()
}

fn upgrade_request(target: &str, host: &str, subprotocol: Option<&str>) -> String {
    let protocol = subprotocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
}

/// A 1 KiB pattern repeated `n` times: large, printable, and with no two fragments alike.
fn big_text(n: usize) -> String {
    (0..n).map(|i| format!("{i:08}{}", "x".repeat(1016))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_share_one_port_by_path_until_the_last_one_closes() {
    let (a, b) = (socket(Protocol::Rep), socket(Protocol::Rep));
    let url_a = listen(&a, "ws://127.0.0.1:0/a").await;
    let port = url_a.strip_prefix("ws://127.0.0.1:").and_then(|r| r.strip_suffix("/a")).expect("bound url");
    let url_b = listen(&b, &format!("ws://127.0.0.1:{port}/b")).await;
    assert_eq!(url_b, format!("ws://127.0.0.1:{port}/b"));
    assert_err!(socket(Protocol::Rep).listen(&url_b).await, Error::AddrInUse(_));

    let (to_a, to_b) = (socket(Protocol::Req), socket(Protocol::Req));
    common::dial(&a, &to_a, &url_a).await;
    common::dial(&b, &to_b, &url_b).await;
    for (req, rep, name) in [(&to_a, &a, "a"), (&to_b, &b, "b")] {
        send(req, name).await;
        assert_eq!(recv_text(rep).await, name, "the request went to the socket serving /{name}");
        send(rep, format!("from {name}")).await;
        assert_eq!(recv_text(req).await, format!("from {name}"));
    }
    let nobody = format!("ws://127.0.0.1:{port}/c");
    assert_err!(socket(Protocol::Req).dial(&nobody).await, Error::UpgradeRefused { status: 404, .. });

    // The port stays up while one socket still serves it, and its path goes with a socket.
    a.close();
    assert_err!(socket(Protocol::Req).dial(&url_a).await, Error::UpgradeRefused { status: 404, .. });
    let late = socket(Protocol::Req);
    common::dial(&b, &late, &url_b).await;
    round_trip(&late, &b).await;

    // The last one takes the listener with it: the port is free again.
    b.close();
    let addr = format!("127.0.0.1:{port}");
    until("the shared listener stops", || std::net::TcpStream::connect(&addr).is_err()).await;
    let again = socket(Protocol::Rep);
    listen(&again, &url_a).await;
}

/// A path is free as soon as its listener or socket is closed, not when the accept task next
/// runs: a dial gets 404 at once, and another socket can take the path straight away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_listener_frees_its_path_at_once() {
    let keeper = socket(Protocol::Rep);
    let kept = listen(&keeper, "ws://127.0.0.1:0/kept").await;
    let url = kept.replace("/kept", "/freed");
    for round in 0..20 {
        let first = socket(Protocol::Rep);
        let listener = first.listen(&url).await.unwrap_or_else(|e| panic!("round {round}: listen: {e}"));
        if round % 2 == 0 {
            listener.close();
        } else {
            first.close();
        }
        assert_err!(socket(Protocol::Req).dial(&url).await, Error::UpgradeRefused { status: 404, .. });
        let second = socket(Protocol::Rep);
        listen(&second, &url).await;
        let req = socket(Protocol::Req);
        common::dial(&second, &req, &url).await;
        round_trip(&req, &second).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrades_get_400_or_404_and_the_listener_keeps_serving() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, WS).await;
    let host = authority(&url);

    let status = |target: &'static str, subprotocol: Option<&'static str>| {
        let head = upgrade_request(target, host, subprotocol);
        let url = url.clone();
        async move { http_status(&url, &head).await }
    };
    // A REP accepts only a dialer that asks for a REP.
    assert_eq!(status("/sp", Some("pub.sp.nanomsg.org")).await, "HTTP/1.1 400 Bad Request");
    assert_eq!(status("/sp", Some("req.sp.nanomsg.org")).await, "HTTP/1.1 400 Bad Request");
    assert_eq!(status("/sp", None).await, "HTTP/1.1 400 Bad Request");
    assert_eq!(status("/elsewhere", Some("rep.sp.nanomsg.org")).await, "HTTP/1.1 404 Not Found");
    assert_eq!(http_status(&url, "not http at all\r\n\r\n").await, "HTTP/1.1 400 Bad Request");
    assert_eq!(http_status(&url, &"A".repeat(10_000)).await, "HTTP/1.1 400 Bad Request");

    // A REQ dialing a PUB listener is refused the same way.
    let publisher = socket(Protocol::Pub);
    let pub_url = listen(&publisher, WS).await;
    assert_err!(socket(Protocol::Req).dial(&pub_url).await, Error::UpgradeRefused { status: 400, .. });

    assert_eq!(rep.pipe_count(), 0);
    let req = socket(Protocol::Req);
    common::dial(&rep, &req, &url).await;
    round_trip(&req, &rep).await;
}

/// NNG 1.5.2 dials a URL without a path with an empty request target (`GET  HTTP/1.1`);
/// that is `/`, and the 101 echoes the subprotocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_request_target_reaches_the_root_path() {
    let pull = socket(Protocol::Pull);
    let url = listen(&pull, "ws://127.0.0.1:0").await;
    assert!(url.ends_with('/'), "{url}");
    let host = authority(&url).to_string();
    let mut tcp = TcpStream::connect(&host).await.expect("connect");
    tcp.write_all(upgrade_request("", &host, Some("pull.sp.nanomsg.org")).as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 1024];
    let n = within("the 101", tcp.read(&mut answer)).await.expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{answer}");
    assert!(answer.contains("\r\nSec-WebSocket-Protocol: pull.sp.nanomsg.org\r\n"), "{answer}");
    assert!(answer.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{answer}");
    until("the pipe is up", || pull.pipe_count() == 1).await;
}

/// Over 64 KiB, ferry sends a binary frame and continuations of at most 64 KiB each (the
/// hand-driven peer refuses larger frames), and reassembles a message a peer fragments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_64_kib_go_in_fragments_and_come_back_whole() {
    let pair = socket(Protocol::Pair0);
    let url = listen(&pair, WS).await;
    let mut peer = raw_ws(&url, "pair.sp.nanomsg.org", 64 * 1024).await;
    until("the pipe is up", || pair.pipe_count() == 1).await;

    let big = big_text(300);
    send(&pair, big.clone()).await;
    let got = match within("the big message", peer.next()).await {
        Some(Ok(WsMessage::Binary(b))) => b,
        other => panic!("expected one binary message, got {other:?}"),
    };
    assert_eq!(got.len(), big.len());
    assert!(got == big.as_bytes(), "the message arrived altered");

    // Back in 1000-byte fragments.
    let chunks: Vec<&[u8]> = got.chunks(1000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = OpCode::Data(if i == 0 { Data::Binary } else { Data::Continue });
        let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
        peer.feed(WsMessage::Frame(frame)).await.expect("send a fragment");
    }
    peer.flush().await.expect("flush");
    assert_eq!(recv_text(&pair).await, big);

    // And ferry to ferry, 1 MiB each way.
    let (rep, req) = (socket(Protocol::Rep), socket(Protocol::Req));
    connect_at(&rep, &req, WS).await;
    let mib = big_text(1024);
    send(&req, mib.clone()).await;
    assert_eq!(recv_text(&rep).await, mib);
    send(&rep, mib.clone()).await;
    assert_eq!(recv_text(&req).await, mib);
}

/// A message over `recv-size-max` closes the pipe it came on, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_recv_size_max_closes_only_that_pipe() {
    let pull = socket(Protocol::Pull);
    pull.set(SockOpt::RecvSizeMax(100_000)).unwrap();
    let push = socket(Protocol::Push);
    let url = connect_at(&pull, &push, WS).await;

    let mut big = raw_ws(&url, "pull.sp.nanomsg.org", 1 << 20).await;
    until("the raw pipe is up", || pull.pipe_count() == 2).await;
    // Fragmented, so that only the running total tells.
    for i in 0..2 {
        let opcode = OpCode::Data(if i == 0 { Data::Binary } else { Data::Continue });
        let frame = Frame::message(vec![7u8; 50_001], opcode, i == 1);
        big.feed(WsMessage::Frame(frame)).await.expect("send a fragment");
    }
    big.flush().await.expect("flush");
    match within("ferry drops the connection", big.next()).await {
        None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => {}
        Some(Ok(m)) => panic!("expected the connection to close, got {m:?}"),
    }
    until("the oversized pipe is gone", || pull.pipe_count() == 1).await;

    send(&push, vec![1u8; 100_000]).await; // the limit itself is allowed
    assert_eq!(within("the largest allowed message", pull.recv()).await.unwrap().body.len(), 100_000);
    pull.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
    assert_err!(pull.recv().await, Error::Timeout);
}

/// nngcat sends a 200 KiB message in 64 KiB frames and ferry reassembles it; ferry's own
/// fragments reach nngcat whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_cross_to_and_from_nngcat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = big_text(200);
    let file = dir.path().join("big.txt");
    std::fs::write(&file, &big).expect("write the message file");

    let pull = socket(Protocol::Pull);
    let url = listen(&pull, WS).await;
    let file_arg = file.to_str().expect("utf-8 path");
    let pusher = Proc::nngcat(&["--push0", "--file", file_arg, "--count", "1", "--dial", &url]);
    let got = within("nngcat's message", pull.recv()).await.expect("receive");
    assert!(got.body == big.as_bytes(), "nngcat's 200 KiB message arrived altered");
    let out = tokio::task::spawn_blocking(move || pusher.wait(WAIT)).await.expect("join");
    assert!(out.success(), "nngcat push: {out:?}");

    let push = socket(Protocol::Push);
    let url = listen(&push, WS).await;
    let puller = Proc::nngcat(&["--pull0", "--raw", "--count", "1", "--recv-timeout", "5", "--dial", &url]);
    until("nngcat's pipe is up", || push.pipe_count() == 1).await;
    send(&push, Message::from(big.clone())).await;
    let out = tokio::task::spawn_blocking(move || puller.wait(WAIT)).await.expect("join");
    assert!(out.stdout == big, "nngcat printed {} bytes instead of ferry's {}: {out:?}", out.stdout.len(), big.len());
}

#[cfg(feature = "transport-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_to_ferry_over_wss() {
    let certs = ferry_testkit::TestCerts::new();
    let (rep, req) = (socket(Protocol::Rep), socket(Protocol::Req));
    common::use_certs(&rep, &certs);
    common::use_certs(&req, &certs);
    let url = connect_at(&rep, &req, "wss://127.0.0.1:0/secure").await;
    assert!(url.starts_with("wss://127.0.0.1:") && url.ends_with("/secure"), "{url}");
    round_trip(&req, &rep).await;
    let big = big_text(200);
    send(&req, big.clone()).await;
    assert_eq!(recv_text(&rep).await, big);
}
