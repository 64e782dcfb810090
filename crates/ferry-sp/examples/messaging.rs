//! The PAIR demo of Applied Go's "Messaging with mangos", on ferry: two nodes exchange
//! three messages over a PAIR socket.
//!
//! ```text
//! cargo run -p ferry-sp --example messaging -- 0 tcp://127.0.0.1:54545
//! cargo run -p ferry-sp --example messaging -- 1 tcp://127.0.0.1:54545    # second terminal
//! ```
//!
//! Whichever node starts first listens; the other finds the address taken and dials
//! instead. Then each node, three times, sends `message <i> from node <n>.`, waits for the
//! other node's message and pauses for a second. A send made before the peer is there
//! waits for it, so the first node's first message reaches the second node when it
//! connects. Waiting more than 10 s for the peer, to send or to receive, is an error, and
//! any error ends the node with exit status 1. `ipc://<path>` URLs work the same way
//! (exercise 1); `messaging_concurrent` is exercise 2.

use ferry_sp::{Protocol, SockOpt, Socket};
use std::future::Future;
use std::io::{stderr, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;
use tracing::{error, info};

/// How long a node waits for its peer, to send a message or to receive one.
const DEADLINE: Duration = Duration::from_secs(10);

/// Messages each node sends and receives.
pub(crate) const ROUNDS: usize = 3;

/// The pause after each round.
pub(crate) const PAUSE: Duration = Duration::from_secs(1);

pub(crate) type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> ExitCode {
    run_node(lockstep).await
}

/// Reads `<0|1> <url>`, opens the node's socket, runs `exchange` on it and reports.
pub(crate) async fn run_node<F, Fut>(exchange: F) -> ExitCode
where
    F: FnOnce(Socket, String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    init_log();
    let args: Vec<String> = std::env::args().collect();
    let [_, node, url, ..] = args.as_slice() else {
        // The original only logs this and exits normally.
        info!("Usage: {} 0|1 <url>", args.first().map_or("messaging", String::as_str));
        return ExitCode::SUCCESS;
    };
    let result = match open(node, url).await {
        Ok(sock) => exchange(sock, node.clone()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            info!("Node {node}: Done.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("Node {node}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Go's `log` output: a timestamp and the message, on standard error.
pub(crate) fn init_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(stderr).with_ansi(ansi).with_target(false).init();
}

/// Listens on `url`, or dials it if another node listens there already.
async fn open(node: &str, url: &str) -> Result<Socket> {
    let sock = Socket::new(Protocol::Pair0)?;
    sock.set(SockOpt::RecvTimeout(Some(DEADLINE)))?;
    sock.set(SockOpt::SendTimeout(Some(DEADLINE)))?;
    if let Err(e) = sock.listen(url).await {
        info!("Node {node} cannot listen on socket '{url}': {e}");
        info!("Trying to dial instead");
        if let Err(e) = sock.dial(url).await {
            return Err(format!("can neither listen nor dial on '{url}': {e}").into());
        }
    }
    Ok(sock)
}

/// The original exchange: send, receive, pause; three times.
async fn lockstep(sock: Socket, node: String) -> Result<()> {
    for i in 0..ROUNDS {
        send_message(&sock, &node, i).await?;
        receive_message(&sock, &node).await?;
        tokio::time::sleep(PAUSE).await;
    }
    Ok(())
}

/// Sends this node's message number `i`.
pub(crate) async fn send_message(sock: &Socket, node: &str, i: usize) -> Result<()> {
    let msg = format!("message {i} from node {node}.");
    info!("Node {node} sends {msg}");
    sock.send(msg).await.map_err(|e| format!("cannot send: {e}").into())
}

/// Receives the peer's next message.
pub(crate) async fn receive_message(sock: &Socket, node: &str) -> Result<()> {
    let msg = sock.recv().await.map_err(|e| format!("cannot receive: {e}"))?;
    info!("Node {node} received {}", String::from_utf8_lossy(&msg.body));
    Ok(())
}
