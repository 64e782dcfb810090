//! BUS behaviour: every direct peer hears a message, nobody forwards it.

mod common;

use common::{recv_text, send, star};
use ferry_sp::Protocol;

/// `hub` with `left` and `right` connected to it, and not to each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_reaches_every_direct_peer_and_does_not_forward() {
    let (hub, peers) = star(Protocol::Bus, Protocol::Bus, 2).await;
    let (left, right) = (&peers[0], &peers[1]);

    send(&hub, "to all").await;
    assert_eq!(recv_text(left).await, "to all");
    assert_eq!(recv_text(right).await, "to all");

    send(left, "from left").await;
    assert_eq!(recv_text(&hub).await, "from left");
    // Had the hub forwarded "from left", it would have queued it for `right` on receipt,
    // before this message.
    send(&hub, "after").await;
    assert_eq!(recv_text(right).await, "after");
    assert_eq!(recv_text(left).await, "after", "no echo back to the sender either");
}
