//! REQ/REP behaviour: resend, contexts, backtraces and the REP's checks on what it receives.

mod common;

use common::{
    answer, ask, assert_err, connect, connected, listen, recv_text, round_trip, send, socket, text, with_raw_peer,
    within, words, RawPeer, TCP,
};
use ferry_sp::{Error, Protocol, SockOpt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_reply_round_trip() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    round_trip(&req, &rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_resends_an_unanswered_request_after_the_resend_time() {
    let (req, mut rep) = with_raw_peer(Protocol::Req, Protocol::Rep).await;
    req.set(SockOpt::ReqResendTime(Some(Duration::from_millis(100)))).unwrap();

    let asking = ask(&req, "anyone?");
    let first = rep.recv().await;
    let again = rep.recv().await; // not answered, so it comes again: the same id and body
    assert_eq!(again, first);
    assert_eq!(&first[4..], b"anyone?");
    assert_ne!(first[0] & 0x80, 0, "the request id has its top bit set");

    let mut reply = first[..4].to_vec();
    reply.extend_from_slice(b"here");
    rep.send(&reply).await;
    assert_eq!(answer(asking).await, "here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_resends_at_once_on_another_pipe_when_its_pipe_closes() {
    let req = socket(Protocol::Req);
    // The timer would resend only after a minute; the test waits at most WAIT.
    req.set(SockOpt::ReqResendTime(Some(Duration::from_secs(60)))).unwrap();
    let (rep_a, rep_b) = (socket(Protocol::Rep), socket(Protocol::Rep));
    connect(&rep_a, &req).await;
    connect(&rep_b, &req).await;

    let asking = ask(&req, "work");
    let (first, holder, other) = tokio::select! {
        m = rep_a.recv() => (m, &rep_a, &rep_b),
        m = rep_b.recv() => (m, &rep_b, &rep_a),
    };
    assert_eq!(text(&first.unwrap()), "work");
    holder.close(); // the REP that got the request goes away without answering

    assert_eq!(recv_text(other).await, "work", "resent at once to the other REP");
    send(other, "done").await;
    assert_eq!(answer(asking).await, "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_without_resend_fails_with_connection_reset_when_its_pipe_closes() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    req.set(SockOpt::ReqResendTime(None)).unwrap();
    send(&req, "doomed").await;
    assert_eq!(recv_text(&rep).await, "doomed");
    rep.close();
    assert_err!(req.recv().await, Error::ConnectionReset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_recv_without_a_request_is_bad_state_and_rep_send_without_one_too() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    assert_err!(req.recv().await, Error::BadState);
    assert_err!(rep.send("unasked").await, Error::BadState);
    // A reply is owed once per request.
    send(&req, "q").await;
    recv_text(&rep).await;
    send(&rep, "a").await;
    assert_err!(rep.send("a again").await, Error::BadState);
    assert_eq!(recv_text(&req).await, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_recv_times_out_without_a_reply() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    req.set(SockOpt::RecvTimeout(Some(Duration::from_millis(100)))).unwrap();
    send(&req, "unanswered").await;
    assert_eq!(recv_text(&rep).await, "unanswered");
    assert_err!(req.recv().await, Error::Timeout);
}

// Single-threaded, so that `yield_now` is enough for the spawned receive to be waiting.
#[tokio::test]
async fn a_new_request_on_a_context_cancels_the_pending_one() {
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    let ctx = Arc::new(req.context().unwrap());
    ctx.send("first").await.unwrap();
    let waiting = tokio::spawn({
        let ctx = ctx.clone();
        async move { ctx.recv().await }
    });
    tokio::task::yield_now().await;
    assert_eq!(recv_text(&rep).await, "first");
    ctx.send("second").await.unwrap();
    assert_err!(within("the cancelled receive", waiting).await.unwrap(), Error::Canceled);

    send(&rep, "late answer to first").await; // dropped: nobody waits for that id
    assert_eq!(recv_text(&rep).await, "second");
    send(&rep, "answer to second").await;
    assert_eq!(text(&ctx.recv().await.unwrap()), "answer to second");
}

/// Many REQ contexts in flight at once against a REP whose contexts work concurrently:
/// each REP worker holds its request until all workers have one (a REP that served one
/// request at a time would never get past the barrier), and every reply must match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_serve_concurrent_requests() {
    const WORKERS: usize = 4;
    const REQUESTS: usize = 32;
    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    let barrier = Arc::new(Barrier::new(WORKERS));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (ctx, barrier) = (rep.context().unwrap(), barrier.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..REQUESTS / WORKERS {
                let m = ctx.recv().await?;
                barrier.wait().await;
                ctx.send(format!("reply to {}", text(&m))).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    let mut clients = Vec::new();
    for i in 0..REQUESTS {
        let ctx = req.context().unwrap();
        clients.push(tokio::spawn(async move {
            ctx.send(format!("request {i}")).await?;
            let reply = ctx.recv().await?;
            Ok::<_, Error>((i, text(&reply)))
        }));
    }
    for c in clients {
        let (i, reply) = within("a client's reply", c).await.unwrap().unwrap();
        assert_eq!(reply, format!("reply to request {i}"));
    }
    for w in workers {
        within("a worker", w).await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_drops_a_request_over_the_ttl_and_keeps_the_pipe() {
    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    // Eight hops and the request id: nine words, one more than ttl-max allows.
    let nine: Vec<u32> = (1..=8).chain([0x8000_0002]).collect();
    req.send(&words(&nine, b"too far")).await;
    req.send(&words(&[0x8000_0001], b"hello")).await;

    // Messages on a pipe arrive in order, so had the first been kept it would come first.
    assert_eq!(recv_text(&rep).await, "hello");
    send(&rep, "world").await;
    assert_eq!(req.recv_wire().await, b"\x00\x00\x00\x00\x00\x00\x00\x09\x80\x00\x00\x01world");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_sends_the_whole_backtrace_back_with_the_reply() {
    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    // Seven hops pushed by devices plus the id: exactly ttl-max words, so it is delivered.
    let backtrace: Vec<u32> = (1..=7).chain([0x8000_0abc]).collect();
    req.send(&words(&backtrace, b"via devices")).await;
    assert_eq!(recv_text(&rep).await, "via devices");
    send(&rep, "back along the path").await;
    assert_eq!(req.recv().await, words(&backtrace, b"back along the path"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_max_sets_how_many_hops_rep_accepts() {
    let (rep, mut req) = with_raw_peer(Protocol::Rep, Protocol::Req).await;
    rep.set(SockOpt::TtlMax(1)).unwrap();
    req.send(&words(&[7, 0x8000_0001], b"one hop")).await;
    req.send(&words(&[0x8000_0002], b"direct")).await;
    assert_eq!(recv_text(&rep).await, "direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_closes_only_the_pipe_whose_backtrace_never_ends() {
    let (rep, good) = connected(Protocol::Rep, Protocol::Req).await;
    let url = listen(&rep, TCP).await;
    let mut bad = RawPeer::connect(&url, Protocol::Req).await;
    bad.send(&words(&[1, 2], b"")).await; // hop words only, no word with the top bit
    bad.expect_closed().await;
    round_trip(&good, &rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_closes_a_pipe_that_replies_without_an_id_and_resends_elsewhere() {
    let (req, mut bad) = with_raw_peer(Protocol::Req, Protocol::Rep).await;
    let url = listen(&req, TCP).await;
    let asking = ask(&req, "question");
    assert_eq!(&bad.recv().await[4..], b"question");

    let rep = socket(Protocol::Rep);
    common::dial(&req, &rep, &url).await;
    bad.send(b"\x80\x00").await; // shorter than a request id
    bad.expect_closed().await;

    assert_eq!(recv_text(&rep).await, "question");
    send(&rep, "answer").await;
    assert_eq!(answer(asking).await, "answer");
}
