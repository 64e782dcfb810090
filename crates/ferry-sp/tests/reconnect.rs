//! Dialers keep their connection up: they redial after the listener restarts, and a
//! background dial connects once a listener appears.

mod common;

use common::{answer, ask, listen, recv_text, send, socket, spawn_on, until, within, TCP};
use ferry_sp::{Protocol, SockOpt, Socket};
use ferry_testkit::{free_port, IpcDir};
use std::time::Duration;

/// Listens on `url` again; the old listener's port or file may take a moment to be let go.
async fn relisten(s: &Socket, url: &str) {
    within(&format!("listening on {url} again"), async {
        while s.listen(url).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn push_reconnects_after_the_listener_restarts(url: &str) {
    let old = socket(Protocol::Pull);
    let url = listen(&old, url).await;
    let push = socket(Protocol::Push);
    common::dial(&old, &push, &url).await;
    send(&push, "before").await;
    assert_eq!(recv_text(&old).await, "before");

    old.close();
    until("push notices the lost pipe", || push.pipe_count() == 0).await;
    let new = socket(Protocol::Pull);
    relisten(&new, &url).await;
    until("push has redialed", || push.pipe_count() == 1).await;
    send(&push, "after").await;
    assert_eq!(recv_text(&new).await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_reconnects_after_a_tcp_listener_restarts() {
    push_reconnects_after_the_listener_restarts(TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_reconnects_after_an_ipc_listener_restarts() {
    let dir = IpcDir::new();
    push_reconnects_after_the_listener_restarts(&dir.url("restart.ipc")).await;
}

/// The request outlives the REP that had it: the REQ resends it to the REP that listens
/// on the same address afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_survives_a_rep_restart() {
    let old = socket(Protocol::Rep);
    let url = listen(&old, TCP).await;
    let req = socket(Protocol::Req);
    req.set(SockOpt::ReqResendTime(Some(Duration::from_secs(60)))).unwrap();
    common::dial(&old, &req, &url).await;
    let asking = ask(&req, "survive this");
    assert_eq!(recv_text(&old).await, "survive this");
    old.close();

    let new = socket(Protocol::Rep);
    relisten(&new, &url).await;
    assert_eq!(recv_text(&new).await, "survive this");
    send(&new, "survived").await;
    assert_eq!(answer(asking).await, "survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_dial_connects_once_a_listener_appears() {
    let url = format!("tcp://127.0.0.1:{}", free_port());
    let push = socket(Protocol::Push);
    push.dial_in_background(&url).await.unwrap();
    let sending = spawn_on(&push, |push| async move { push.send("waited for you").await });
    let pull = socket(Protocol::Pull);
    listen(&pull, &url).await;
    assert_eq!(recv_text(&pull).await, "waited for you");
    within("the send", sending).await.unwrap().unwrap();
}
