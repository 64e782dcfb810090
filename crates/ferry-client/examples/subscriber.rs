//! The NATS-style subscriber: `subscriber [-s url] [-t] [--durable name] <subject>`
//! listens on the topic `<subject>` and prints `[#i] Received on [subject]: 'data'` for
//! each message, acking it. Without `--durable` its subscription lives as long as the
//! program (it is removed on Ctrl-C); with it, messages published while it is away wait.

mod common;

use ferry_client::{proto, Client, Error};
use futures::StreamExt;

const USAGE: &str = "usage: subscriber [-s grpc://host:port] [-t] [--durable name] <subject>";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = common::args(USAGE, &["durable"]);
    let durable = args.options.get("durable").cloned();
    let [subject] = args.rest.as_slice() else { common::fail(USAGE) };
    let client = common::connect(&args.url).await.unwrap_or_else(|e| common::fatal(e));
    let name = durable.clone().unwrap_or_else(|| format!("sub-{:08x}", rand_u32()));
    subscribe(&client, subject, &name).await.unwrap_or_else(|e| common::fatal(e));
    let mut messages =
        client.consumer(subject).subscription(name.clone()).start().await.unwrap_or_else(|e| common::fatal(e));
    common::log(args.timestamps, &format!("Listening on [{subject}]"));
    let mut i = 0u64;
    loop {
        tokio::select! {
            next = messages.next() => match next {
                Some(Ok(m)) => {
                    i += 1;
                    let data = String::from_utf8_lossy(m.body());
                    let subj = m.message().and_then(|m| m.subject.clone()).unwrap_or_else(|| subject.clone());
                    common::log(args.timestamps, &format!("[#{i}] Received on [{subj}]: '{data}'"));
                    if let Err(e) = m.ack().await {
                        eprintln!("ack: {e}");
                    }
                }
                Some(Err(e)) if e.is_transient() => eprintln!("{e}; still trying"),
                Some(Err(e)) => common::fatal(e),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if durable.is_none() {
        let _ = client.unsubscribe(subject, &name).await;
    }
}

/// Makes the topic if it is missing, and the subscription if it is missing.
async fn subscribe(client: &Client, topic: &str, name: &str) -> Result<(), Error> {
    match client.create_topic(topic, Default::default()).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    let start = proto::StartAt { at: Some(proto::start_at::At::New(true)) };
    match client.subscribe(topic, name, Some(start)).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        ^ std::process::id()
}
