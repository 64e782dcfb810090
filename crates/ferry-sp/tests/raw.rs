//! Raw sockets: the header a raw socket hands over on receive and takes on send, for each
//! protocol that has one, and the request state raw sockets do not keep.

mod common;

use bytes::Bytes;
use common::{assert_err, listen, recv_text, send, socket, text, within, RawPeer, QUIET, TCP, WAIT};
use ferry_sp::{Error, Message, Protocol, SockOpt, Socket};
use std::time::Duration;

/// A raw socket whose waits are bounded, as `common::socket` makes cooked ones.
fn raw(protocol: Protocol) -> Socket {
    let s = Socket::new_raw(protocol).expect("open raw socket");
    s.set(SockOpt::RecvTimeout(Some(WAIT))).expect("set recv-timeout");
    s.set(SockOpt::SendTimeout(Some(WAIT))).expect("set send-timeout");
    s
}

/// The big-endian words of a header.
fn header_words(h: &[u8]) -> Vec<u32> {
    assert_eq!(h.len() % 4, 0, "a header of whole words: {h:02x?}");
    h.chunks(4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])).collect()
}

fn with_header(words: &[u32], body: &'static str) -> Message {
    let mut m = Message::new(body);
    m.header = Bytes::from(common::words(words, b""));
    m
}

async fn recv(s: &Socket) -> Message {
    s.recv().await.unwrap_or_else(|e| panic!("recv on {s:?}: {e}"))
}

#[tokio::test]
async fn raw_sockets_say_so() {
    for p in Protocol::ALL {
        let (cooked, raw) = (Socket::new(p).unwrap(), Socket::new_raw(p).unwrap());
        assert!(!cooked.is_raw() && !cooked.options().raw, "{p}");
        assert!(raw.is_raw() && raw.options().raw, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_rep_receives_pipe_and_backtrace_and_replies_reach_the_right_req() {
    let (rep, reqs) = star_raw_hub(Protocol::Rep, Protocol::Req, 2).await;
    let asking: Vec<_> = reqs
        .iter()
        .zip(["one", "two"])
        .map(|(req, body)| {
            common::spawn_on(req, move |req| async move {
                req.send(body).await?;
                req.recv().await
            })
        })
        .collect();
    let mut requests = vec![recv(&rep).await, recv(&rep).await];
    for r in &requests {
        let words = header_words(&r.header);
        assert_eq!(words.len(), 2, "pipe id, then request id");
        assert_eq!(Some(words[0]), r.pipe().map(|p| p.get()), "the first word is the pipe it came in on");
        assert!(words[0] & 0x8000_0000 == 0 && words[1] & 0x8000_0000 != 0);
    }
    // Answer in the opposite order: each reply still reaches the client that asked.
    requests.reverse();
    for mut r in requests {
        r.body = Bytes::from(format!("answer to {}", text(&r)));
        rep.send(r).await.unwrap();
    }
    for (asked, body) in asking.into_iter().zip(["one", "two"]) {
        let reply = within("the reply", asked).await.unwrap().unwrap();
        assert_eq!(text(&reply), format!("answer to {body}"));
    }
}

/// A raw socket of `hub` listening, with `n` cooked `peer` sockets dialed in.
async fn star_raw_hub(hub: Protocol, peer: Protocol, n: usize) -> (Socket, Vec<Socket>) {
    let hub = raw(hub);
    let url = listen(&hub, TCP).await;
    let mut peers = Vec::new();
    for _ in 0..n {
        let p = socket(peer);
        common::dial(&hub, &p, &url).await;
        peers.push(p);
    }
    (hub, peers)
}

#[tokio::test]
async fn raw_rep_wire_bytes_and_bad_headers() {
    let rep = raw(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let mut peer = RawPeer::connect(&url, Protocol::Req).await;
    // A request that came through one device already: a hop word, then the id.
    peer.send(&common::words(&[0x0000_0005, 0x8000_0007], b"hi")).await;
    let mut m = recv(&rep).await;
    let words = header_words(&m.header);
    assert_eq!(&words[1..], &[5, 0x8000_0007]);
    m.body = Bytes::from_static(b"re");
    rep.send(m).await.unwrap();
    assert_eq!(peer.recv().await, common::words(&[5, 0x8000_0007], b"re"), "the pipe id is taken off");

    // Hops over ttl-max are dropped, as cooked.
    rep.set(SockOpt::TtlMax(2)).unwrap();
    peer.send(&common::words(&[1, 2, 0x8000_0008], b"far")).await;
    peer.send(&common::words(&[1, 0x8000_0009], b"near")).await;
    assert_eq!(text(&recv(&rep).await), "near");

    assert_err!(rep.send(with_header(&[], "no pipe id")).await, Error::BadHeader(_));
    // A reply to a pipe that is gone is dropped, as a cooked reply is.
    rep.send(with_header(&[0x7fff_fff0, 0x8000_0001], "to nobody")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_req_sends_what_it_is_given_and_receives_any_reply() {
    let rep = socket(Protocol::Rep);
    let url = listen(&rep, TCP).await;
    let req_raw = raw(Protocol::Req);
    common::dial(&rep, &req_raw, &url).await;

    // No request state: a receive before any send just waits.
    req_raw.set(SockOpt::RecvTimeout(Some(Duration::from_millis(50)))).unwrap();
    assert_err!(req_raw.recv().await, Error::Timeout);
    req_raw.set(SockOpt::RecvTimeout(Some(WAIT))).unwrap();

    // Two requests in flight at once with ids of our choosing; both replies come back.
    req_raw.send(with_header(&[0x8000_0001], "first")).await.unwrap();
    req_raw.send(with_header(&[0x8000_0002], "second")).await.unwrap();
    for _ in 0..2 {
        let body = recv_text(&rep).await;
        send(&rep, format!("re: {body}")).await;
    }
    let mut got = vec![];
    for _ in 0..2 {
        let m = recv(&req_raw).await;
        got.push((header_words(&m.header), text(&m)));
    }
    got.sort();
    assert_eq!(got, vec![(vec![0x8000_0001], "re: first".to_string()), (vec![0x8000_0002], "re: second".to_string())]);
}

#[tokio::test]
async fn raw_req_passes_a_whole_backtrace_and_closes_on_garbage() {
    let req = raw(Protocol::Req);
    let url = listen(&req, TCP).await;
    let mut peer = RawPeer::connect(&url, Protocol::Rep).await;
    common::until("the raw REQ has the pipe", || req.pipe_count() == 1).await;
    req.send(with_header(&[3, 0x8000_0004], "job")).await.unwrap();
    assert_eq!(peer.recv().await, common::words(&[3, 0x8000_0004], b"job"));
    peer.send(&common::words(&[3, 0x8000_0004], b"done")).await;
    let m = recv(&req).await;
    assert_eq!((header_words(&m.header), text(&m)), (vec![3, 0x8000_0004], "done".to_string()));
    // A reply whose backtrace never ends closes the pipe.
    peer.send(&common::words(&[3], b"")).await;
    peer.expect_closed().await;
}

#[tokio::test]
async fn raw_sub_receives_everything_unfiltered() {
    let publisher = socket(Protocol::Pub);
    let url = listen(&publisher, TCP).await;
    let sub = raw(Protocol::Sub);
    common::dial(&publisher, &sub, &url).await;
    for body in ["alpha", "beta", ""] {
        send(&publisher, body).await;
    }
    for body in ["alpha", "beta", ""] {
        let m = recv(&sub).await;
        assert!(m.header.is_empty());
        assert_eq!(text(&m), body);
    }
    assert_err!(sub.set(SockOpt::Subscribe(Bytes::from_static(b"a"))), Error::InvalidOption { .. });
}

#[tokio::test]
async fn raw_surveyor_has_no_survey_timer() {
    let surveyor = raw(Protocol::Surveyor);
    surveyor.set(SockOpt::SurveyTime(Duration::from_millis(10))).unwrap();
    let url = listen(&surveyor, TCP).await;
    let respondent = socket(Protocol::Respondent);
    common::dial(&surveyor, &respondent, &url).await;
    surveyor.send(with_header(&[0x8000_0009], "how many?")).await.unwrap();
    assert_eq!(recv_text(&respondent).await, "how many?");
    // Long past the survey time, the answer is still received.
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&respondent, "three").await;
    let m = recv(&surveyor).await;
    assert_eq!((header_words(&m.header), text(&m)), (vec![0x8000_0009], "three".to_string()));
}

#[tokio::test]
async fn raw_respondent_routes_by_pipe() {
    let (respondent, surveyors) = star_raw_hub(Protocol::Respondent, Protocol::Surveyor, 2).await;
    send(&surveyors[1], "who?").await;
    let mut m = recv(&respondent).await;
    assert_eq!(header_words(&m.header).len(), 2);
    m.body = Bytes::from_static(b"me");
    respondent.send(m).await.unwrap();
    assert_eq!(recv_text(&surveyors[1]).await, "me");
}

#[tokio::test]
async fn raw_pair1_counts_hops_as_nng() {
    let (a, b) = (raw(Protocol::Pair1), raw(Protocol::Pair1));
    let url = listen(&a, TCP).await;
    common::dial(&a, &b, &url).await;
    // A send goes out with the hop count it is given plus one, and arrives as it was sent.
    b.send(with_header(&[1], "gamma")).await.unwrap();
    let m = recv(&a).await;
    assert_eq!((header_words(&m.header), text(&m)), (vec![2], "gamma".to_string()));

    assert_err!(b.send(Message::new("no header")).await, Error::BadHeader(_));
    assert_err!(b.send(with_header(&[0xdead_0000], "reserved bits")).await, Error::BadHeader(_));
    assert_err!(b.send(with_header(&[0xff], "no room for a hop")).await, Error::BadHeader(_));

    // Over ttl-max is dropped: 4 + 1 > 4, then 3 + 1 passes.
    a.set(SockOpt::TtlMax(4)).unwrap();
    b.send(with_header(&[4], "too far")).await.unwrap();
    b.send(with_header(&[3], "just right")).await.unwrap();
    let m = recv(&a).await;
    assert_eq!((header_words(&m.header), text(&m)), (vec![4], "just right".to_string()));
}

#[tokio::test]
async fn raw_pair1_talks_to_cooked_pair1() {
    let (cooked, rawp) = (socket(Protocol::Pair1), raw(Protocol::Pair1));
    let url = listen(&cooked, TCP).await;
    common::dial(&cooked, &rawp, &url).await;
    send(&cooked, "hello").await;
    let m = recv(&rawp).await;
    assert_eq!(header_words(&m.header), vec![1], "a cooked send is one hop");
    rawp.send(with_header(&[0], "back")).await.unwrap();
    assert_eq!(recv_text(&cooked).await, "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bus_header_is_the_pipe_and_a_send_skips_it() {
    let (hub, peers) = star_raw_hub(Protocol::Bus, Protocol::Bus, 2).await;
    let (left, right) = (&peers[0], &peers[1]);
    send(left, "from left").await;
    let m = recv(&hub).await;
    assert_eq!(header_words(&m.header), vec![m.pipe().unwrap().get()]);
    // Sent back out with its header: everyone but the sender.
    hub.send(m).await.unwrap();
    assert_eq!(recv_text(right).await, "from left");
    left.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
    assert_err!(left.recv().await, Error::Timeout);
    // Without a header it goes to all.
    hub.send("to all").await.unwrap();
    assert_eq!(recv_text(left).await, "to all");
    assert_eq!(recv_text(right).await, "to all");
}

#[tokio::test]
async fn contexts_on_raw_sockets_are_refused() {
    for p in [Protocol::Req, Protocol::Rep, Protocol::Surveyor, Protocol::Respondent] {
        assert!(Socket::new(p).unwrap().context().is_ok(), "{p} cooked has contexts");
        match Socket::new_raw(p).unwrap().context() {
            Err(e @ Error::NotSupported { .. }) => assert!(e.to_string().contains("raw"), "{e}"),
            other => panic!("{p}: expected NotSupported, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn raw_pipeline_and_pair0_work_as_cooked() {
    for (sender, receiver) in [(Protocol::Push, Protocol::Pull), (Protocol::Pair0, Protocol::Pair0)] {
        let (r, s) = (raw(receiver), raw(sender));
        let url = listen(&r, TCP).await;
        common::dial(&r, &s, &url).await;
        s.send("work").await.unwrap();
        let m = recv(&r).await;
        assert!(m.header.is_empty());
        assert_eq!(text(&m), "work");
    }
}
