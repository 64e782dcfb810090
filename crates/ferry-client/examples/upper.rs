//! The RPC demo, `Upper.Uppercase`, served through a broker queue instead of net/rpc:
//!
//! - `upper [-s url] serve` answers requests on the queue `upper` with the upper-cased text;
//! - `upper [-s url] call <text>` makes one synchronous call, then one asynchronous call
//!   (started, then awaited, as Go's `client.Go` and `<-call.Done`).
//!
//! The caller needs manage permission on `reply.*` for its reply queue.

mod common;

use ferry_client::{Client, Error, Message};
use futures::StreamExt;
use std::time::Duration;

const USAGE: &str = "usage: upper [-s grpc://host:port] serve | call <text>";
const QUEUE: &str = "upper";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = common::args(USAGE, &[]);
    let client = common::connect(&args.url).await.unwrap_or_else(|e| common::fatal(e));
    match args.rest.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["serve"] => serve(&client, args.timestamps).await,
        ["call", text] => call(&client, text).await,
        _ => common::fail(USAGE),
    }
}

async fn serve(client: &Client, timestamps: bool) {
    match client.create_queue(QUEUE, Default::default()).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => common::fatal(e),
    }
    let mut requests = client.consumer(QUEUE).start().await.unwrap_or_else(|e| common::fatal(e));
    common::log(timestamps, &format!("Serving Upper.Uppercase on [{QUEUE}]"));
    while let Some(next) = requests.next().await {
        let request = match next {
            Ok(r) => r,
            Err(e) if e.is_transient() => continue,
            Err(e) => common::fatal(e),
        };
        let upper = String::from_utf8_lossy(request.body()).to_uppercase();
        match client.reply(&request, Message::new(upper)).await {
            Ok(_) => {
                let _ = request.ack().await;
            }
            // No reply queue: not a request; drop it rather than redeliver it forever.
            Err(Error::InvalidArgument(_)) => {
                let _ = request.ack().await;
            }
            Err(e) => {
                eprintln!("reply: {e}");
                let _ = request.nack(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn call(client: &Client, text: &str) {
    let timeout = Duration::from_secs(10);
    let reply = client.request(QUEUE, Message::new(text), timeout).await.unwrap_or_else(|e| common::fatal(e));
    println!("Upper.Uppercase({text:?}) = {:?}", String::from_utf8_lossy(reply.body()));
    // The asynchronous call: started now, awaited later.
    let pending = {
        let client = client.clone();
        let text = text.to_string();
        tokio::spawn(async move { client.request(QUEUE, Message::new(text), timeout).await })
    };
    let reply = match pending.await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => common::fatal(e),
        Err(e) => common::fatal(e),
    };
    println!("Upper.Uppercase({text:?}) = {:?} (async)", String::from_utf8_lossy(reply.body()));
}
