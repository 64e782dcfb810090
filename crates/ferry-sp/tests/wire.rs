//! The wire rules of sp-wire.md §2 and §3 as a peer sees them: the connection header, the
//! peer check, frame sizes and ipc message types. A peer that breaks a rule loses its own
//! connection; the socket goes on serving its other peers.

mod common;

use common::{
    assert_err, connect_at, connected, header, listen, recv_text, round_trip, send, socket, text, with_raw_peer, words,
    RawPeer, TCP,
};
use ferry_sp::{Error, Protocol, SockOpt};
use ferry_testkit::IpcDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_sends_its_header_first() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let mut peer = RawPeer::open(&url).await;
    // Before we say anything: the header of sp-wire.md §2, REP = 0x31.
    assert_eq!(peer.read_exact(8).await, [0x00, 0x53, 0x50, 0x00, 0x00, 0x31, 0x00, 0x00]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_connection_header_closes_that_connection() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    let url = listen(&rep, TCP).await;
    let good = header(Protocol::Req.id());
    let mut bad_magic = good;
    bad_magic[1] = b'X';
    let mut bad_version = good;
    bad_version[3] = 1;
    let mut bad_reserved = good;
    bad_reserved[7] = 1;
    for bad in [bad_magic, bad_version, bad_reserved] {
        let mut peer = RawPeer::open(&url).await;
        peer.write(&bad).await.unwrap();
        assert_eq!(peer.read_exact(8).await, header(Protocol::Rep.id()));
        peer.expect_closed().await;
    }
    round_trip(&req, &rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_the_wrong_protocol_is_closed_without_data() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    let url = listen(&rep, TCP).await;
    let mut peer = RawPeer::open(&url).await;
    peer.write(&header(Protocol::Pub.id())).await.unwrap();
    assert_eq!(peer.read_exact(8).await, header(Protocol::Rep.id()));
    peer.expect_closed().await;
    assert_eq!(rep.pipe_count(), 1, "only the REQ is a pipe");
    round_trip(&req, &rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialing_a_socket_of_the_wrong_protocol_fails() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let push = socket(Protocol::Push);
    assert_err!(push.dial(&url).await, Error::ProtocolMismatch { peer: 0x31, expected: 0x51 });
    assert_eq!(push.pipe_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_recv_size_max_closes_only_that_pipe() {
    let pull = socket(Protocol::Pull);
    pull.set(SockOpt::RecvSizeMax(1024)).unwrap();
    let push = socket(Protocol::Push);
    let url = connect_at(&pull, &push, TCP).await;

    let mut big = RawPeer::connect(&url, Protocol::Push).await;
    big.send(&[7u8; 1025]).await;
    big.expect_closed().await;

    send(&push, vec![1u8; 1024]).await; // the limit itself is allowed
    assert_eq!(pull.recv().await.unwrap().body.len(), 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipc_frame_of_an_unknown_type_closes_that_pipe() {
    let dir = IpcDir::new();
    let pull = socket(Protocol::Pull);
    let push = socket(Protocol::Push);
    let url = connect_at(&pull, &push, &dir.url("pull.ipc")).await;

    let mut raw = RawPeer::connect(&url, Protocol::Push).await;
    raw.send(b"typed").await; // type 1: in-band, delivered
    assert_eq!(recv_text(&pull).await, "typed");
    raw.write(b"\x02\x00\x00\x00\x00\x00\x00\x00\x01x").await.unwrap();
    raw.expect_closed().await;

    send(&push, "ipc still works").await;
    assert_eq!(recv_text(&pull).await, "ipc still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_closes_a_pipe_with_a_short_or_reserved_header() {
    let (poly, good) = connected(Protocol::Pair1Poly, Protocol::Pair1).await;
    let url = listen(&poly, TCP).await;
    let short: &[u8] = b"\x00\x00\x01";
    let reserved = words(&[0x0000_0101], b"x");
    for bad in [short, reserved.as_slice()] {
        let mut peer = RawPeer::connect(&url, Protocol::Pair1).await;
        peer.send(bad).await;
        peer.expect_closed().await;
    }
    send(&good, "ping").await;
    let m = poly.recv().await.unwrap();
    assert_eq!(text(&m), "ping");
    let mut reply = ferry_sp::Message::from("pong");
    reply.set_pipe(m.pipe());
    poly.send(reply).await.unwrap();
    assert_eq!(recv_text(&good).await, "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_counts_hops_on_the_wire() {
    let (pair, mut peer) = with_raw_peer(Protocol::Pair1, Protocol::Pair1).await;

    send(&pair, "abc").await;
    assert_eq!(peer.recv_wire().await, b"\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x01abc");

    // Hop count 0 (mangos) and up to ttl-max are delivered; 9 is dropped, the pipe stays.
    for (hops, body) in [(0, "zero"), (8, "eight"), (9, "nine"), (1, "one")] {
        peer.send(&words(&[hops], body.as_bytes())).await;
    }
    for expected in ["zero", "eight", "one"] {
        assert_eq!(recv_text(&pair).await, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair0_sends_the_bare_body() {
    let (pair, mut peer) = with_raw_peer(Protocol::Pair0, Protocol::Pair0).await;
    send(&pair, "abc").await;
    assert_eq!(peer.recv_wire().await, b"\x00\x00\x00\x00\x00\x00\x00\x03abc");
    peer.send(b"xyz").await;
    assert_eq!(recv_text(&pair).await, "xyz");
}
