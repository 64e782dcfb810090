//! `Socket::pipe_events`: each pipe is announced when it is added and when it is removed,
//! with the peer's address, the endpoint's URL and why it went; a closing socket ends the
//! stream after the last `Removed`.

mod common;

use common::{listen, socket, within, TCP};
use ferry_sp::{EventRecvError, PipeEvent, PipeEvents, PipeId, Protocol, RemoveReason};
use ferry_testkit::IpcDir;

async fn next(events: &mut PipeEvents) -> PipeEvent {
    within("a pipe event", events.recv()).await.unwrap_or_else(|e| panic!("no event: {e}"))
}

/// The `Added` that must come next; returns its pipe, remote address and URL.
async fn added(events: &mut PipeEvents) -> (PipeId, String, String) {
    match next(events).await {
        PipeEvent::Added { pipe, remote, url } => (pipe, remote, url),
        other => panic!("expected a pipe to be added, got {other:?}"),
    }
}

/// The `Removed` that must come next; returns its pipe, remote address and reason.
async fn removed(events: &mut PipeEvents) -> (PipeId, String, RemoveReason) {
    match next(events).await {
        PipeEvent::Removed { pipe, remote, reason } => (pipe, remote, reason),
        other => panic!("expected a pipe to be removed, got {other:?}"),
    }
}

/// A PULL listens on `url` and a PUSH dials it, both watching their events; then the PUSH
/// closes. Returns the remote addresses each side reported (listener's view, dialer's view).
async fn added_then_removed(url: &str) -> (String, String) {
    let pull = socket(Protocol::Pull);
    let mut pull_events = pull.pipe_events();
    let url = listen(&pull, url).await;
    let push = socket(Protocol::Push);
    let mut push_events = push.pipe_events();
    push.dial(&url).await.unwrap();

    let (pull_pipe, from_push, pull_url) = added(&mut pull_events).await;
    let (push_pipe, from_pull, push_url) = added(&mut push_events).await;
    assert_eq!((pull_url.as_str(), push_url.as_str()), (url.as_str(), url.as_str()));
    // The events name the pipes the stats show.
    assert_eq!(pull.stats().pipes[0].id, pull_pipe);
    assert_eq!(pull.stats().pipes[0].remote, from_push);
    assert_eq!(push.stats().pipes[0].id, push_pipe);

    push.close();
    assert_eq!(removed(&mut pull_events).await, (pull_pipe, from_push.clone(), RemoveReason::PeerClosed));
    assert_eq!(removed(&mut push_events).await, (push_pipe, from_pull.clone(), RemoveReason::SocketClosed));
    assert_eq!(within("the end of the events", push_events.recv()).await, Err(EventRecvError::Closed));
    assert!(pull_events.try_recv().is_none(), "nothing more on the listener");
    (from_push, from_pull)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipes_are_announced_added_then_removed() {
    let (from_push, from_pull) = added_then_removed(TCP).await;
    // The listener sees the dialer's ephemeral port; the dialer sees the listener's address.
    assert!(from_push.starts_with("127.0.0.1:"), "{from_push}");
    assert_ne!(from_push, from_pull);
    let pull_port = from_pull.strip_prefix("127.0.0.1:").expect("the listener's address").parse::<u16>();
    assert!(pull_port.is_ok_and(|p| p != 0), "{from_pull}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_pipes_are_announced_added_then_removed() {
    let dir = IpcDir::new();
    let url = dir.url("events.ipc");
    let (from_push, from_pull) = added_then_removed(&url).await;
    assert_eq!((from_push.as_str(), from_pull.as_str()), (url.as_str(), url.as_str()));
}

/// Closing a socket removes every pipe, each announced, and then ends the stream; a
/// receiver made after the close ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_socket_announces_every_removal_then_ends() {
    let (hub, peers) = common::star(Protocol::Bus, Protocol::Bus, 3).await;
    let mut events = hub.pipe_events();
    hub.close();
    let mut gone = Vec::new();
    for _ in 0..3 {
        let (pipe, _, reason) = removed(&mut events).await;
        assert_eq!(reason, RemoveReason::SocketClosed);
        gone.push(pipe);
    }
    gone.sort();
    gone.dedup();
    assert_eq!(gone.len(), 3);
    assert_eq!(within("the end", events.recv()).await, Err(EventRecvError::Closed));
    assert_eq!(within("a late receiver", hub.pipe_events().recv()).await, Err(EventRecvError::Closed));
    let stats = hub.stats();
    assert_eq!((stats.pipes_added, stats.pipes_removed), (3, 3));
    drop(peers);
}

/// A pipe the peer breaks is removed with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_error_is_the_reason_given() {
    let rep = socket(Protocol::Rep);
    let mut events = rep.pipe_events();
    let url = listen(&rep, TCP).await;
    let mut req = common::RawPeer::connect(&url, Protocol::Req).await;
    let (pipe, _, _) = added(&mut events).await;
    req.send(&common::words(&[1], b"")).await;
    let (gone, _, reason) = removed(&mut events).await;
    assert_eq!(gone, pipe);
    assert!(matches!(reason, RemoveReason::Protocol(_)), "{reason:?}");
    assert!(reason.to_string().starts_with("protocol error: "), "{reason}");
}
