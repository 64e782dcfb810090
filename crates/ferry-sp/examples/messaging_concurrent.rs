//! Exercise 2 of Applied Go's PAIR demo: the same two nodes as `messaging`, but each node
//! sends from its own task while its main loop receives, and the two meet again through
//! a "done" channel instead of taking turns.
//!
//! ```text
//! cargo run -p ferry-sp --example messaging_concurrent -- 0 ipc:///tmp/pair.ipc
//! cargo run -p ferry-sp --example messaging_concurrent -- 1 ipc:///tmp/pair.ipc
//! ```

// The node setup and the message format are the lock-step demo's; its `main` goes unused.
#[allow(dead_code)]
#[path = "messaging.rs"]
mod messaging;

use ferry_sp::Socket;
use messaging::{receive_message, run_node, send_message, Result, PAUSE, ROUNDS};
use std::process::ExitCode;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> ExitCode {
    run_node(concurrently).await
}

async fn concurrently(sock: Socket, node: String) -> Result<()> {
    let (done, sender_done) = oneshot::channel();
    tokio::spawn({
        let (sock, node) = (sock.clone(), node.clone());
        async move {
            let sent = async {
                for i in 0..ROUNDS {
                    send_message(&sock, &node, i).await?;
                    tokio::time::sleep(PAUSE).await;
                }
                Ok(())
            };
            let _ = done.send(sent.await);
        }
    });
    for _ in 0..ROUNDS {
        receive_message(&sock, &node).await?;
    }
    sender_done.await?
}
