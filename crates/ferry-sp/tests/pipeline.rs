//! PUSH/PULL behaviour: round-robin, blocking sends, fair queueing.

mod common;

use common::{assert_err, connected, listen, recv_text, send, socket, star, within, TCP};
use ferry_sp::{Error, Protocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_round_robins_across_pullers() {
    let (push, pullers) = star(Protocol::Push, Protocol::Pull, 3).await;
    for i in 0..9 {
        send(&push, i.to_string()).await;
    }
    let mut all = Vec::new();
    for pull in &pullers {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(recv_text(pull).await.parse::<u32>().unwrap());
        }
        // Every third message, whichever of the three turns this puller has.
        assert_eq!(got, [got[0], got[0] + 3, got[0] + 6], "puller got {got:?}");
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(all, (0..9).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_without_a_puller_times_out() {
    common::verify_send_times_out_without_a_peer(Protocol::Push).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_waits_for_a_puller_and_then_delivers() {
    common::verify_send_waits_for_a_peer(Protocol::Push, Protocol::Pull).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_takes_from_every_pusher_in_each_ones_order() {
    const EACH: usize = 20;
    let pull = socket(Protocol::Pull);
    let url = listen(&pull, TCP).await;
    let mut senders = Vec::new();
    for p in 0..3 {
        let push = socket(Protocol::Push);
        common::dial(&pull, &push, &url).await;
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                push.send(format!("{p} {i}")).await?;
            }
            Ok::<_, Error>(push)
        }));
    }
    let mut next = [0usize; 3];
    for _ in 0..3 * EACH {
        let m = recv_text(&pull).await;
        let (p, i) = m.split_once(' ').unwrap();
        let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[p], "pusher {p}'s messages in order");
        next[p] += 1;
    }
    assert_eq!(next, [EACH; 3]);
    for s in senders {
        within("a pusher", s).await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_cannot_receive_and_pull_cannot_send() {
    let (pull, push) = connected(Protocol::Pull, Protocol::Push).await;
    assert_err!(push.recv().await, Error::NotSupported { op: "recv", protocol: "push" });
    assert_err!(pull.send("x").await, Error::NotSupported { op: "send", protocol: "pull" });
    assert_err!(push.context(), Error::NotSupported { protocol: "push", .. });
}
