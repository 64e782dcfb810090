//! The logger exercise: `logger [-s url] [--file nats.log] [--durable logger] <subject>`
//! appends `[#i] [subject]: 'data'` to a file for each message on the topic, syncs the
//! file, and only then acks. A crash can repeat the last line, never lose one: what the
//! broker acknowledged to the publisher reaches the file.
//!
//! Pair it with `counter`, which publishes "1", "2", "3", ... without end.

mod common;

use ferry_client::{proto, Error};
use futures::StreamExt;
use std::io::Write;

const USAGE: &str = "usage: logger [-s grpc://host:port] [--file nats.log] [--durable logger] <subject>";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = common::args(USAGE, &["file", "durable"]);
    let [subject] = args.rest.as_slice() else { common::fail(USAGE) };
    let path = args.options.get("file").cloned().unwrap_or_else(|| "nats.log".into());
    let name = args.options.get("durable").cloned().unwrap_or_else(|| "logger".into());
    let client = common::connect(&args.url).await.unwrap_or_else(|e| common::fatal(e));
    match client.create_topic(subject, Default::default()).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => common::fatal(e),
    }
    // A durable subscription from the oldest kept message: the log misses nothing that
    // was published while the logger was down.
    let start = proto::StartAt { at: Some(proto::start_at::At::Earliest(true)) };
    match client.subscribe(subject, &name, Some(start)).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => common::fatal(e),
    }
    // Truncated at start, as the original's os.Create.
    let mut file = std::fs::File::create(&path).unwrap_or_else(|e| common::fatal(format!("{path}: {e}")));
    let mut messages = client.consumer(subject).subscription(name).start().await.unwrap_or_else(|e| common::fatal(e));
    common::log(args.timestamps, &format!("Logging [{subject}] to {path}"));
    let mut i = 0u64;
    loop {
        tokio::select! {
            next = messages.next() => match next {
                Some(Ok(m)) => {
                    i += 1;
                    let line = format!("[#{i}] [{subject}]: '{}'\n", String::from_utf8_lossy(m.body()));
                    if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.sync_data()) {
                        common::fatal(format!("{path}: {e}"));
                    }
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
}
