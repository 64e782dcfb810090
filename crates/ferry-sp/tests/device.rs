//! Devices: a REQ/REP load balancer between clients and workers (ferry and nngcat), a BUS
//! relay, a PUB/SUB fan-out relay, a pipeline stage under back-pressure, and the sockets a
//! device refuses.

mod common;

use common::{assert_err, dial, listen, recv_text, send, socket, text, until, within, QUIET, TCP, WAIT};
use ferry_sp::{device, Error, Protocol, SockOpt, Socket};
use ferry_testkit::Proc;
use std::collections::HashMap;
use std::time::Duration;
use tokio::task::JoinHandle;

fn raw(protocol: Protocol) -> Socket {
    Socket::new_raw(protocol).expect("open raw socket")
}

/// A raw `front` and a raw `back` socket listening on loopback, joined by a running device;
/// returns both sockets, their addresses and the device's task.
async fn running_device(
    front: Protocol,
    back: Protocol,
) -> (Socket, String, Socket, String, JoinHandle<ferry_sp::Result<()>>) {
    let (f, b) = (raw(front), raw(back));
    let (fu, bu) = (listen(&f, TCP).await, listen(&b, TCP).await);
    let task = tokio::spawn(device(&f, &b));
    (f, fu, b, bu, task)
}

/// A REP worker that answers each request with `<request>|<name>` until its socket closes.
fn worker(rep: Socket, name: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(request) = rep.recv().await {
            let reply = format!("{}|{name}", text(&request));
            if rep.send(reply).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_answers_every_request_and_spreads_the_load() {
    const CLIENTS: usize = 2;
    const WORKERS: usize = 3;
    const REQUESTS: usize = 60;
    let (front, front_url, back, back_url, _device) = running_device(Protocol::Rep, Protocol::Req).await;

    for w in 0..WORKERS {
        let rep = socket(Protocol::Rep);
        dial(&back, &rep, &back_url).await;
        worker(rep, format!("w{w}"));
    }
    // All clients connect before any starts, so that a fast one that is done (and closes)
    // does not hide the next one's new pipe from `dial`.
    let mut reqs = Vec::new();
    for _ in 0..CLIENTS {
        let req = socket(Protocol::Req);
        dial(&front, &req, &front_url).await;
        reqs.push(req);
    }
    let mut clients = Vec::new();
    for (c, req) in reqs.into_iter().enumerate() {
        clients.push(tokio::spawn(async move {
            let mut answered_by = Vec::new();
            for i in 0..REQUESTS {
                let request = format!("c{c}-r{i}");
                req.send(request.clone()).await.expect("send request");
                let reply = text(&req.recv().await.expect("reply"));
                let (echo, by) = reply.split_once('|').unwrap_or_else(|| panic!("reply {reply:?}"));
                assert_eq!(echo, request, "the reply answers this client's request");
                answered_by.push(by.to_string());
            }
            answered_by
        }));
    }
    let mut per_worker: HashMap<String, usize> = HashMap::new();
    for c in clients {
        let answered_by = tokio::time::timeout(4 * WAIT, c).await.expect("clients done in time").expect("client task");
        assert_eq!(answered_by.len(), REQUESTS);
        for w in answered_by {
            *per_worker.entry(w).or_default() += 1;
        }
    }
    assert_eq!(per_worker.values().sum::<usize>(), CLIENTS * REQUESTS);
    assert_eq!(per_worker.len(), WORKERS, "every worker answered at least once: {per_worker:?}");
    assert!(per_worker.values().all(|&n| n < CLIENTS * REQUESTS), "no worker got everything: {per_worker:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_req_through_the_device_to_a_ferry_worker() {
    let (front, back) = (raw(Protocol::Rep), raw(Protocol::Req));
    let front_url = format!("tcp://127.0.0.1:{}", ferry_testkit::free_port());
    listen(&front, &front_url).await;
    let back_url = listen(&back, TCP).await;
    tokio::spawn(device(&front, &back));
    let rep = socket(Protocol::Rep);
    dial(&back, &rep, &back_url).await;
    worker(rep, "ferry".into());

    let out = tokio::task::spawn_blocking(move || {
        Proc::nngcat(&["--req0", "--dial", &front_url, "--data", "hello", "--quoted", "--recv-timeout", "5"])
            .wait(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert_eq!(out.lines(), vec!["\"hello|ferry\""], "nngcat printed {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_reflector_relays_among_all_nodes() {
    let relay = raw(Protocol::Bus);
    let url = listen(&relay, TCP).await;
    let device = tokio::spawn(device(&relay, &relay));
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let n = socket(Protocol::Bus);
        dial(&relay, &n, &url).await;
        nodes.push(n);
    }
    for (i, n) in nodes.iter().enumerate() {
        send(n, format!("from {i}")).await;
    }
    for (i, n) in nodes.iter().enumerate() {
        let mut got = vec![recv_text(n).await, recv_text(n).await];
        got.sort();
        let expected: Vec<String> = (0..3).filter(|&j| j != i).map(|j| format!("from {j}")).collect();
        assert_eq!(got, expected, "node {i} hears the others");
        n.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
        assert_err!(n.recv().await, Error::Timeout);
    }
    relay.close();
    within("the device ends when its socket closes", device).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_device_joins_two_buses() {
    let (left, l_url, right, r_url, _device) = running_device(Protocol::Bus, Protocol::Bus).await;
    let (a, b) = (socket(Protocol::Bus), socket(Protocol::Bus));
    dial(&left, &a, &l_url).await;
    dial(&right, &b, &r_url).await;
    send(&a, "over the bridge").await;
    assert_eq!(recv_text(&b).await, "over the bridge");
    send(&b, "and back").await;
    assert_eq!(recv_text(&a).await, "and back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_fan_out_relay() {
    let publisher = socket(Protocol::Pub);
    let pub_url = listen(&publisher, TCP).await;
    let (relay_sub, relay_pub) = (raw(Protocol::Sub), raw(Protocol::Pub));
    dial(&publisher, &relay_sub, &pub_url).await;
    let out_url = listen(&relay_pub, TCP).await;
    // Either order: the device forwards from the side that can receive.
    tokio::spawn(device(&relay_pub, &relay_sub));

    let (all, only_a) = (socket(Protocol::Sub), socket(Protocol::Sub));
    all.set(SockOpt::Subscribe(bytes::Bytes::new())).unwrap();
    only_a.set(SockOpt::Subscribe(bytes::Bytes::from_static(b"a"))).unwrap();
    dial(&relay_pub, &all, &out_url).await;
    dial(&relay_pub, &only_a, &out_url).await;

    for body in ["a1", "b1", "a2"] {
        send(&publisher, body).await;
    }
    for body in ["a1", "b1", "a2"] {
        assert_eq!(recv_text(&all).await, body);
    }
    assert_eq!(recv_text(&only_a).await, "a1");
    assert_eq!(recv_text(&only_a).await, "a2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_device_pushes_back_when_nobody_reads() {
    let (_front, front_url, back, back_url, _device) = running_device(Protocol::Pull, Protocol::Push).await;
    let (pusher, puller) = (socket(Protocol::Push), socket(Protocol::Pull));
    pusher.dial(&front_url).await.unwrap();
    dial(&back, &puller, &back_url).await;
    send(&pusher, "first").await;
    assert_eq!(recv_text(&puller).await, "first");

    // Nobody reads any more: the chain fills up and the pusher's sends start to time out,
    // after a bounded number of messages (queues and socket buffers, no unbounded growth).
    pusher.set(SockOpt::SendTimeout(Some(Duration::from_millis(300)))).unwrap();
    let chunk = bytes::Bytes::from(vec![7u8; 16 * 1024]);
    let mut sent = 0usize;
    let outcome = within("the pusher feels back-pressure", async {
        loop {
            match pusher.send(chunk.clone()).await {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 20_000, "20 000 messages of 16 KiB taken without back-pressure");
        }
    })
    .await;
    assert!(matches!(outcome, Error::Timeout), "{outcome}");
    // What was queued is still delivered, in order, once the puller reads again.
    assert_eq!(puller.recv().await.unwrap().body.len(), chunk.len());
}

#[tokio::test]
async fn device_refuses_cooked_and_mismatched_sockets() {
    let cooked = Socket::new(Protocol::Rep).unwrap();
    let err = device(&cooked, &raw(Protocol::Req)).await.unwrap_err();
    assert!(matches!(err, Error::NotRaw { protocol: "rep" }), "{err:?}");
    assert!(err.to_string().contains("raw"), "{err}");

    for (a, b) in [(Protocol::Rep, Protocol::Rep), (Protocol::Req, Protocol::Sub), (Protocol::Pub, Protocol::Push)] {
        let err = device(&raw(a), &raw(b)).await.unwrap_err();
        assert!(matches!(err, Error::NotPeers { .. }), "{a}/{b}: {err:?}");
        assert!(err.to_string().contains("not peers"), "{err}");
    }
    // A reflector needs a protocol that is its own peer.
    let req = raw(Protocol::Req);
    assert_err!(device(&req, &req).await, Error::NotPeers { .. });
}

#[tokio::test]
async fn device_ends_when_either_socket_closes() {
    for close_front in [true, false] {
        let (front, _, back, _, task) = running_device(Protocol::Sub, Protocol::Pub).await;
        until("the device is waiting", || !task.is_finished()).await;
        if close_front {
            front.close();
        } else {
            back.close();
        }
        within("the device ends", task).await.unwrap().unwrap();
    }
}
