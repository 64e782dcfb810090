//! The logger exercise's publisher: `counter [-s url] [--interval-ms 100] [--count N]
//! <subject>` publishes "1", "2", "3", ... to the topic, without end unless `--count`.

mod common;

use ferry_client::{Error, Message};
use std::time::Duration;

const USAGE: &str = "usage: counter [-s grpc://host:port] [--interval-ms 100] [--count N] <subject>";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = common::args(USAGE, &["interval-ms", "count"]);
    let [subject] = args.rest.as_slice() else { common::fail(USAGE) };
    let number = |name: &str, default: u64| match args.options.get(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| common::fail(USAGE)),
    };
    let interval = Duration::from_millis(number("interval-ms", 100));
    let count = number("count", u64::MAX);
    let client = common::connect(&args.url).await.unwrap_or_else(|e| common::fatal(e));
    match client.create_topic(subject, Default::default()).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => common::fatal(e),
    }
    for i in 1..=count {
        let message = Message::new(i.to_string()).subject(subject.as_str());
        if let Err(e) = client.publish(subject, message).await {
            common::fatal(e);
        }
        common::log(args.timestamps, &format!("Published [{subject}] : '{i}'"));
        tokio::time::sleep(interval).await;
    }
}
