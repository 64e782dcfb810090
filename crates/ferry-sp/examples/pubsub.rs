//! The PUB/SUB demo of Applied Go's "Messaging with mangos, Part 2", on ferry.
//!
//! ```text
//! cargo run -p ferry-sp --example pubsub
//! PUBSUB_URL=ipc:///tmp/pubsub.ipc cargo run -p ferry-sp --example pubsub
//! ```
//!
//! Without arguments the program is the server: it listens with a PUB socket, starts
//! itself three times as clients (`C1 Technology`, `C2 Technology Weather`, `C3 Finance`)
//! and publishes five rounds of `<topic>|Message for <topic>` over Technology, Weather and
//! Finance, one message a second. A client (`pubsub <name> <topic>...`) dials with a SUB
//! socket subscribed to its topics, which filters by prefix, and prints the
//! `5 × <number of topics>` messages it expects, giving up after 10 s without one.
//!
//! The address is `tcp://localhost:56565` unless `PUBSUB_URL` says otherwise. Unlike the
//! original, the server waits for all three clients to finish (it waited for the second
//! twice), and it starts publishing once the three have connected rather than hoping a
//! second is enough for them: a message published before a subscriber connects is lost.

use ferry_sp::{Protocol, SockOpt, Socket};
use std::io::{stderr, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;
use tracing::{error, info};

const DEFAULT_URL: &str = "tcp://localhost:56565";
const TOPICS: [&str; 3] = ["Technology", "Weather", "Finance"];
const CLIENTS: [&[&str]; 3] = [&["C1", "Technology"], &["C2", "Technology", "Weather"], &["C3", "Finance"]];
const ROUNDS: usize = 5;
/// How long a client waits for a message, and the server for its clients to connect.
const DEADLINE: Duration = Duration::from_secs(10);

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(stderr).with_ansi(ansi).with_target(false).init();
    let url = std::env::var("PUBSUB_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((name, topics)) => client(&url, name, topics).await,
        None => server(&url).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn server(url: &str) -> Result<()> {
    let publisher = Socket::new(Protocol::Pub)?;
    publisher.listen(url).await.map_err(|e| format!("cannot listen on {url}: {e}"))?;
    let mut clients = Vec::new();
    for args in CLIENTS {
        let child = tokio::process::Command::new(std::env::current_exe()?).args(args).kill_on_drop(true).spawn()?;
        clients.push((args[0], child));
    }
    tokio::time::timeout(DEADLINE, async {
        while publisher.pipe_count() < CLIENTS.len() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .map_err(|_| "the clients did not connect")?;

    for _ in 0..ROUNDS {
        for topic in TOPICS {
            tokio::time::sleep(Duration::from_secs(1)).await;
            info!("Publishing a message for topic {topic}");
            publisher.send(format!("{topic}|Message for {topic}")).await?;
        }
    }
    for (name, mut child) in clients {
        let status = child.wait().await?;
        if !status.success() {
            return Err(format!("client {name} failed: {status}").into());
        }
    }
    Ok(())
}

async fn client(url: &str, name: &str, topics: &[String]) -> Result<()> {
    let sub = Socket::new(Protocol::Sub)?;
    for topic in topics {
        sub.set(SockOpt::Subscribe(topic.clone().into()))?;
    }
    sub.set(SockOpt::RecvTimeout(Some(DEADLINE)))?;
    sub.dial(url).await.map_err(|e| format!("client {name} cannot dial {url}: {e}"))?;
    for _ in 0..ROUNDS * topics.len() {
        let msg = sub.recv().await.map_err(|e| format!("client {name} cannot receive: {e}"))?;
        println!("Client {name} received: {}", String::from_utf8_lossy(&msg.body));
    }
    Ok(())
}
