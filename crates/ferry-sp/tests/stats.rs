//! `Socket::stats`: traffic counted exactly, drops by reason (a slow subscriber, a full
//! receive queue, ttl-max, recv-size-max, malformed headers, late replies), PUB's opt-in
//! backpressure, failed handshakes, and dials and reconnects.

mod common;

use common::{
    connect, connected, listen, recv_text, send, socket, until, with_raw_peer, within, words, RawPeer, TCP, WAIT,
};
use ferry_sp::{DropReason, Error, PipeStats, Protocol, SockOpt, Socket, SocketStats};
use ferry_testkit::IpcDir;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many messages the PUB tests publish as fast as they can.
const BURST: u64 = 2000;

/// The one pipe a socket has.
fn only_pipe(stats: &SocketStats) -> &PipeStats {
    assert_eq!(stats.pipes.len(), 1, "expected one pipe: {stats:#?}");
    &stats.pipes[0]
}

/// A PUB with a connected SUB subscribed to everything.
async fn pub_and_sub() -> (Socket, Socket) {
    let (publisher, sub) = connected(Protocol::Pub, Protocol::Sub).await;
    sub.set(SockOpt::Subscribe("".into())).unwrap();
    (publisher, sub)
}

/// The runtime is single-threaded, so the PUB's pipe writer cannot run while the loop sends
/// (a PUB send never waits): the subscriber's queue fills and every further message pushes
/// the oldest out.
#[tokio::test]
async fn a_slow_subscriber_makes_pub_drop_and_count_the_oldest() {
    const N: u64 = BURST;
    let (publisher, sub) = pub_and_sub().await;
    for i in 0..N {
        send(&publisher, format!("m{i}")).await;
    }
    let stats = publisher.stats();
    let pipe = only_pipe(&stats);
    assert!(pipe.drops.queue_full > 0, "{pipe:#?}");
    assert_eq!(pipe.drops.nonzero().map(|(r, _)| r).collect::<Vec<_>>(), [DropReason::QueueFull]);
    assert_eq!(pipe.drops.get(DropReason::QueueFull).to_string(), pipe.drops.queue_full.to_string());
    assert_eq!(stats.drops, pipe.drops, "socket totals include the pipe's drops");

    // What was not dropped is written, and the subscriber counts exactly that.
    until("every message written or dropped", || {
        let s = publisher.stats();
        s.messages_out + s.drops.queue_full == N
    })
    .await;
    let out = publisher.stats().messages_out;
    assert!(out > 0);
    until("the subscriber read what was written", || sub.stats().messages_in == out).await;
    let sub_stats = sub.stats();
    assert_eq!(only_pipe(&sub_stats).messages_in, out);
    assert_eq!(sub_stats.drops.total(), 0, "the SUB's queue had room: {sub_stats:#?}");
    assert_eq!(sub_stats.recv_queue as u64, out, "nobody received yet");
    assert_eq!(recv_text(&sub).await, format!("m{}", N - out), "the newest messages survived");
}

/// The same workload with `ferry:pub-block-timeout`: each send waits for the subscriber, so
/// nothing is dropped, and every message arrives.
#[tokio::test]
async fn with_a_block_timeout_pub_waits_for_the_subscriber_instead_of_dropping() {
    const N: u64 = BURST;
    let (publisher, sub) = pub_and_sub().await;
    publisher.set(SockOpt::PubBlockTimeout(Some(WAIT))).unwrap();
    // The SUB's own queue holds everything, so that only the PUB could drop.
    sub.set(SockOpt::RecvBuffer(8192)).unwrap();
    let receiving = tokio::spawn({
        let sub = sub.clone();
        async move {
            let mut got = 0u64;
            while got < N {
                let m = sub.recv().await.expect("every message arrives");
                assert_eq!(m.body, format!("m{got}").as_bytes(), "in order, none missing");
                got += 1;
            }
            got
        }
    });
    within("the sends", async {
        for i in 0..N {
            send(&publisher, format!("m{i}")).await;
        }
    })
    .await;
    assert_eq!(within("the subscriber", receiving).await.unwrap(), N);
    let stats = publisher.stats();
    assert_eq!(stats.drops.total(), 0, "{stats:#?}");
    assert_eq!(stats.messages_out, N);
    assert_eq!(sub.stats().messages_in, N);
    assert_eq!(sub.stats().drops.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_timeout_is_a_pub_option_and_parses_from_its_name() {
    assert!(matches!(
        socket(Protocol::Sub).set(SockOpt::PubBlockTimeout(Some(WAIT))),
        Err(Error::InvalidOption { name: "ferry:pub-block-timeout", .. })
    ));
    let publisher = socket(Protocol::Pub);
    publisher.set(SockOpt::parse("ferry:pub-block-timeout", "250").unwrap()).unwrap();
    publisher.set(SockOpt::parse("ferry:pub-block-timeout", "-1").unwrap()).unwrap();
    assert_eq!(SockOpt::PubBlockTimeout(None).name(), "ferry:pub-block-timeout");
    // Without a subscriber a send with the option set still succeeds at once.
    publisher.set(SockOpt::PubBlockTimeout(Some(WAIT))).unwrap();
    within("a send with nobody to wait for", publisher.send("x")).await.unwrap();
}

/// A SUB counts what no subscription matched as filtered, not as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_counts_filtered_messages_apart_from_drops() {
    let (publisher, sub) = connected(Protocol::Pub, Protocol::Sub).await;
    sub.set(SockOpt::Subscribe("keep".into())).unwrap();
    for body in ["skip 1", "keep 1", "skip 2", "keep 2"] {
        send(&publisher, body).await;
    }
    assert_eq!(recv_text(&sub).await, "keep 1");
    assert_eq!(recv_text(&sub).await, "keep 2");
    until("four messages in", || sub.stats().messages_in == 4).await;
    let stats = sub.stats();
    assert_eq!((stats.filtered, only_pipe(&stats).filtered, stats.drops.total()), (2, 2, 0));
}

/// A full SUB receive queue drops its oldest message and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_receive_queue_counts_its_drops() {
    let (publisher, sub) = pub_and_sub().await;
    sub.set(SockOpt::RecvBuffer(2)).unwrap();
    for i in 0..5 {
        send(&publisher, format!("m{i}")).await;
    }
    until("five messages in", || sub.stats().messages_in == 5).await;
    let stats = sub.stats();
    assert_eq!((stats.drops.recv_queue_full, stats.recv_queue), (3, 2), "{stats:#?}");
    assert_eq!(only_pipe(&stats).drops.recv_queue_full, 3);
}

async fn exact_req_rep_counts(url: &str) {
    let (rep, req) = (socket(Protocol::Rep), socket(Protocol::Req));
    let url = common::connect_at(&rep, &req, url).await;
    for _ in 0..3 {
        send(&req, "hello").await;
        assert_eq!(recv_text(&rep).await, "hello");
        send(&rep, "world!").await;
        assert_eq!(recv_text(&req).await, "world!");
    }
    // A request is its 4-byte id plus "hello" (9 B), a reply the id plus "world!" (10 B).
    let (requests, replies) = ((3, 27), (3, 30));
    let traffic = |s: &SocketStats| ((s.messages_out, s.bytes_out), (s.messages_in, s.bytes_in));
    until("the REQ's counts", || traffic(&req.stats()) == (requests, replies)).await;
    until("the REP's counts", || traffic(&rep.stats()) == (replies, requests)).await;
    for (s, url_side) in [(req.stats(), "dialer"), (rep.stats(), "listener")] {
        let p = only_pipe(&s);
        assert_eq!(
            ((p.messages_out, p.bytes_out), (p.messages_in, p.bytes_in)),
            traffic(&s),
            "one pipe: the {url_side}'s pipe carries the socket's totals"
        );
        assert_eq!(p.url, url);
        assert_eq!((p.drops.total(), p.send_queue), (0, 0));
        assert_eq!((s.pipes_added, s.pipes_removed, s.recv_queue), (1, 0, 0));
    }
    let (r, q) = (rep.stats(), req.stats());
    assert_eq!((r.accepted, r.dial_attempts), (1, 0));
    assert_eq!((q.accepted, q.dial_attempts, q.dial_successes, q.reconnects), (0, 1, 1, 0));
    assert!(q.to_string().starts_with("in 3 msgs/30 B, out 3 msgs/27 B, drops 0"), "{q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_rep_counts_are_exact_over_tcp() {
    exact_req_rep_counts(TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_rep_counts_are_exact_over_ipc() {
    let dir = IpcDir::new();
    exact_req_rep_counts(&dir.url("counts.ipc")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_rep_counts_are_exact_over_inproc() {
    exact_req_rep_counts("inproc://stats-exact-counts").await;
}

/// Something that is not SP connects: the listener counts the connection and the bad
/// header, and makes no pipe of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_sp_header_is_counted_as_a_handshake_failure() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let mut raw = tokio::net::TcpStream::connect(url.trim_start_matches("tcp://")).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    // The listener answers with its own header, then closes.
    within("the listener closes", raw.read_to_end(&mut Vec::new())).await.ok();
    until("the bad header counted", || rep.stats().handshake_failures.bad_header == 1).await;
    let stats = rep.stats();
    assert_eq!((stats.accepted, stats.pipes_added, stats.handshake_failures.total()), (1, 0, 1));
}

/// A peer of the wrong protocol is counted on both ends: by the listener it reached and by
/// the dialer whose dial failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_mismatch_is_counted_on_both_ends() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let push = socket(Protocol::Push);
    assert!(matches!(push.dial(&url).await, Err(Error::ProtocolMismatch { .. })));
    let mut raw = RawPeer::open(&url).await;
    raw.write(&common::header(Protocol::Pub.id())).await.unwrap();
    assert_eq!(raw.read_exact(8).await, common::header(Protocol::Rep.id()));
    raw.expect_closed().await;
    until("both mismatches counted", || rep.stats().handshake_failures.protocol_mismatch == 2).await;
    let p = push.stats();
    assert_eq!((p.dial_attempts, p.dial_successes, p.handshake_failures.protocol_mismatch), (1, 0, 1));
    assert_eq!(rep.stats().pipes_added, 0);
}

/// A second peer of a PAIR socket is refused after its handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pair_peer_is_counted() {
    let (pair, _first) = connected(Protocol::Pair0, Protocol::Pair0).await;
    let url = pair.stats().pipes[0].url.clone();
    let second = socket(Protocol::Pair0);
    // The dialer's handshake succeeds before the listener refuses it, and the dialer then
    // redials (to be refused again) until it is closed.
    let _ = second.dial(&url).await;
    until("the refusal counted", || pair.stats().handshake_failures.refused >= 1).await;
    second.close();
    assert_eq!(pair.pipe_count(), 1);
}

async fn relisten(s: &Socket, url: &str) {
    within(&format!("listening on {url} again"), async {
        while s.listen(url).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A dialer whose listener goes away and comes back counts its attempts, the failed ones
/// in between included, and one reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_are_counted() {
    let old = socket(Protocol::Pull);
    let push = socket(Protocol::Push);
    let url = connect(&old, &push).await;
    let first = push.stats();
    assert_eq!((first.dial_attempts, first.dial_successes, first.reconnects), (1, 1, 0));

    old.close();
    until("push notices the lost pipe", || push.pipe_count() == 0).await;
    // Let the dialer fail against the closed port at least once.
    until("a failed redial", || push.stats().dial_attempts >= 2).await;
    let new = socket(Protocol::Pull);
    relisten(&new, &url).await;
    until("push has redialed", || push.pipe_count() == 1).await;
    let stats = push.stats();
    assert_eq!((stats.dial_successes, stats.reconnects), (2, 1), "{stats:#?}");
    assert!(stats.dial_attempts >= 3, "{stats:#?}");
    assert_eq!((stats.pipes_added, stats.pipes_removed), (2, 1));
    send(&push, "after").await;
    assert_eq!(recv_text(&new).await, "after");
}

/// A peer that breaks the protocol has its pipe closed, and the message it sent is counted
/// as dropped with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_messages_are_counted() {
    let pull = socket(Protocol::Pull);
    pull.set(SockOpt::RecvSizeMax(16)).unwrap();
    let url = listen(&pull, TCP).await;
    let mut pusher = RawPeer::connect(&url, Protocol::Push).await;
    pusher.send(&[0u8; 100]).await;
    pusher.expect_closed().await;
    until("too large counted", || pull.stats().drops.too_large == 1).await;
    assert_eq!(pull.stats().pipes_removed, 1);

    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    // Backtrace words that never end (no word with the top bit set).
    req.send(&words(&[1, 2], b"")).await;
    req.expect_closed().await;
    until("malformed counted", || rep.stats().drops.malformed == 1).await;
}

/// Messages a protocol drops while keeping the pipe: over ttl-max, a reply nobody asked
/// for, a survey response after the survey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_drops_that_keep_the_pipe_are_counted() {
    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    let nine: Vec<u32> = (1..9).chain([0x8000_0001]).collect();
    req.send(&words(&nine, b"too far")).await;
    until("over ttl-max counted", || rep.stats().drops.ttl_exceeded == 1).await;
    assert_eq!(only_pipe(&rep.stats()).drops.ttl_exceeded, 1);

    let (req, mut rep) = with_raw_peer(Protocol::Req, Protocol::Rep).await;
    rep.send(&words(&[0x8000_0001], b"nobody asked")).await;
    until("unknown request counted", || req.stats().drops.unknown_request == 1).await;
    assert_eq!(req.pipe_count(), 1, "the pipe stays");

    let (surveyor, mut respondent) = with_raw_peer(Protocol::Surveyor, Protocol::Respondent).await;
    respondent.send(&words(&[0x8000_0001], b"too late")).await;
    until("survey expired counted", || surveyor.stats().drops.survey_expired == 1).await;
}

/// REP's reply to a requester that is gone is counted on the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_vanished_requester_is_counted() {
    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    req.send(&words(&[0x8000_0007], b"question")).await;
    assert_eq!(recv_text(&rep).await, "question");
    drop(req);
    until("the requester's pipe gone", || rep.pipe_count() == 0).await;
    send(&rep, "answer").await;
    let stats = rep.stats();
    assert_eq!((stats.drops.no_pipe, stats.drops.total()), (1, 1));
    assert!(stats.pipes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_fresh_socket_are_zero() {
    let s = Socket::new(Protocol::Bus).unwrap();
    assert_eq!(s.stats(), SocketStats::default());
    assert_eq!(s.stats().to_string().split(", ").next(), Some("in 0 msgs/0 B"));
}
