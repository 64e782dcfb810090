//! The NATS-style one-shot publisher: `publisher [-s url] <subject> <message>` publishes
//! one message to the topic `<subject>` (creating it if it is missing), then exits.
//!
//! "What happens when you publish while there is no subscriber running?" With core NATS
//! the message is lost. With ferry the topic keeps it (within its retention limits): a
//! durable subscription that exists but is not connected gets it when its subscriber
//! comes back; a subscription made afterwards starts at new messages and does not.

mod common;

use ferry_client::{Error, Message};

const USAGE: &str = "usage: publisher [-s grpc://host:port] <subject> <message>";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = common::args(USAGE, &[]);
    let [subject, message] = args.rest.as_slice() else { common::fail(USAGE) };
    let client = common::connect(&args.url).await.unwrap_or_else(|e| common::fatal(e));
    let publish = || client.publish(subject, Message::new(message.as_str()).subject(subject.as_str()));
    let result = match publish().await {
        Err(Error::NotFound(_)) => match client.create_topic(subject, Default::default()).await {
            Ok(_) | Err(Error::AlreadyExists(_)) => publish().await,
            Err(e) => Err(e),
        },
        other => other,
    };
    if let Err(e) = result {
        common::fatal(e);
    }
    common::log(args.timestamps, &format!("Published [{subject}] : '{message}'"));
}
