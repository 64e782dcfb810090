//! PUB/SUB behaviour: prefix filters, subscriptions, and what a slow subscriber loses.

mod common;

use common::{assert_err, connected, listen, recv_text, send, socket, RawPeer, QUIET, TCP};
use ferry_sp::{Error, Protocol, SockOpt, Socket};

/// A PUB and a SUB subscribed to `topics`, connected.
async fn subscribed(topics: &[&'static str]) -> (Socket, Socket) {
    let (publisher, sub) = connected(Protocol::Pub, Protocol::Sub).await;
    for t in topics {
        sub.set(SockOpt::Subscribe(t.as_bytes().into())).unwrap();
    }
    (publisher, sub)
}

/// Publishes each of `bodies`.
async fn publish(publisher: &Socket, bodies: &[&'static str]) {
    for b in bodies {
        send(publisher, *b).await;
    }
}

/// Receives `n` messages as text.
async fn receive(sub: &Socket, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(recv_text(sub).await);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_receives_only_the_prefixes_it_subscribed_to() {
    let (publisher, sub) = subscribed(&["weather.", "news"]).await;
    publish(&publisher, &["sports.goal", "weather.rain", "new", "newsflash", "weather", "news.end"]).await;
    // A pipe delivers in order, so anything unfiltered would show up among these three.
    assert_eq!(receive(&sub, 3).await, ["weather.rain", "newsflash", "news.end"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_empty_topic_matches_everything() {
    let (publisher, sub) = subscribed(&[""]).await;
    publish(&publisher, &["a", "", "bc"]).await;
    assert_eq!(receive(&sub, 3).await, ["a", "", "bc"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_without_subscriptions_receives_nothing() {
    let (publisher, sub) = subscribed(&[]).await;
    sub.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
    publish(&publisher, &["anything", ""]).await;
    assert_err!(sub.recv().await, Error::Timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_a_topic_and_an_unknown_topic_is_not_found() {
    let (publisher, sub) = subscribed(&["a", "b"]).await;
    assert_err!(sub.set(SockOpt::Unsubscribe("c".into())), Error::NotFound);
    sub.set(SockOpt::Unsubscribe("a".into())).unwrap();
    assert_err!(sub.set(SockOpt::Unsubscribe("a".into())), Error::NotFound);
    publish(&publisher, &["a1", "b1", "a2", "b2"]).await;
    assert_eq!(receive(&sub, 2).await, ["b1", "b2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_matching_message() {
    let publisher = socket(Protocol::Pub);
    let url = listen(&publisher, TCP).await;
    let mut subs = Vec::new();
    for topic in ["x", "y", "x"] {
        let sub = socket(Protocol::Sub);
        sub.set(SockOpt::Subscribe(topic.into())).unwrap();
        common::dial(&publisher, &sub, &url).await;
        subs.push(sub);
    }
    publish(&publisher, &["x1", "y1", "x2"]).await;
    assert_eq!(receive(&subs[0], 2).await, ["x1", "x2"]);
    assert_eq!(receive(&subs[1], 1).await, ["y1"]);
    assert_eq!(receive(&subs[2], 2).await, ["x1", "x2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_cannot_receive_and_sub_cannot_send() {
    let (publisher, sub) = subscribed(&[""]).await;
    assert_err!(publisher.recv().await, Error::NotSupported { op: "recv", protocol: "pub" });
    assert_err!(sub.send("x").await, Error::NotSupported { op: "send", protocol: "sub" });
}

/// A subscriber that does not read: PUB never blocks, keeps at most `send-buffer` (16)
/// messages queued for it and drops the oldest. The messages are large and the
/// subscriber's receive window small, so the connection fills up after a few messages and
/// the writer stays stuck until the subscriber reads: at the end the queue holds exactly
/// the newest 16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_drops_the_oldest_messages_for_a_slow_subscriber() {
    const COUNT: u32 = 128;
    const SIZE: usize = 256 * 1024;
    let publisher = socket(Protocol::Pub);
    assert_eq!(publisher.options().send_buffer, 16);
    let url = listen(&publisher, TCP).await;
    let mut slow = RawPeer::open_small_window(&url).await;
    slow.handshake(Protocol::Sub).await;
    common::until("pub has the subscriber's pipe", || publisher.pipe_count() == 1).await;

    for n in 0..COUNT {
        let mut body = vec![0u8; SIZE];
        body[..4].copy_from_slice(&n.to_be_bytes());
        send(&publisher, body).await;
    }

    let mut got: Vec<u32> = Vec::new();
    while got.last() != Some(&(COUNT - 1)) {
        let payload = slow.recv().await;
        assert_eq!(payload.len(), SIZE);
        got.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no duplicates: {got:?}");
    assert!(got.len() < COUNT as usize, "some messages were dropped: {got:?}");
    let newest: Vec<u32> = (COUNT - 16..COUNT).collect();
    assert!(got.ends_with(&newest), "the newest 16 all arrive: {got:?}");
}
