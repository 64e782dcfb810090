//! PAIR behaviour: one peer at a time (v0, v1), sends that wait for the peer, and the
//! polyamorous PAIR v1 that routes by pipe.

mod common;

use common::{connected, listen, recv_text, round_trip, send, socket, star, text, RawPeer, TCP};
use ferry_sp::{Message, Protocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_is_monogamous_until_its_peer_leaves() {
    for proto in [Protocol::Pair0, Protocol::Pair1] {
        let (pair, first) = connected(proto, proto).await;
        let url = listen(&pair, TCP).await;

        let mut second = RawPeer::connect(&url, proto).await;
        second.expect_closed().await;
        assert_eq!(pair.pipe_count(), 1);
        round_trip(&pair, &first).await;

        first.close();
        common::until("the first peer's pipe is gone", || pair.pipe_count() == 0).await;
        let third = socket(proto);
        third.dial(&url).await.unwrap();
        round_trip(&pair, &third).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_send_waits_for_the_peer() {
    common::verify_send_waits_for_a_peer(Protocol::Pair0, Protocol::Pair0).await;
    common::verify_send_waits_for_a_peer(Protocol::Pair1, Protocol::Pair1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_send_without_a_peer_times_out() {
    common::verify_send_times_out_without_a_peer(Protocol::Pair0).await;
    common::verify_send_times_out_without_a_peer(Protocol::Pair1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poly_pair_answers_each_peer_on_its_own_pipe() {
    let (poly, peers) = star(Protocol::Pair1Poly, Protocol::Pair1, 3).await;
    for (i, p) in peers.iter().enumerate() {
        send(p, format!("peer {i}")).await;
        let m = poly.recv().await.unwrap();
        assert!(m.pipe().is_some());
        let mut reply = Message::from(format!("hello {}", text(&m)));
        reply.set_pipe(m.pipe());
        poly.send(reply).await.unwrap();
    }
    for (i, p) in peers.iter().enumerate() {
        assert_eq!(recv_text(p).await, format!("hello peer {i}"));
    }
}
