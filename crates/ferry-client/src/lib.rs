//! An async Rust client for the ferry broker, over its gRPC API.
//!
//! - [`Client`]: connect, log in, publish, receive, manage destinations and users.
//! - [`Consumer`]: a `Stream` of [`Received`] messages with flow-control credits; each
//!   one is acked, nacked or extended on the same server stream.
//! - [`Client::request`] / [`Client::reply`]: request/reply through the broker.
//!
//! Calls that fail because the server cannot be reached are retried with backoff (a
//! publish only when it carries dedup ids, so a retry can never store a message twice);
//! consumers reconnect on their own. Errors are typed: [`Error`].
//!
//! ```no_run
//! use ferry_client::{Client, Message};
//! use futures::StreamExt;
//!
//! # async fn example() -> ferry_client::Result<()> {
//! let client = Client::builder("grpc://127.0.0.1:7601").credentials("admin", "secret-password").connect().await?;
//! client.create_queue("jobs", Default::default()).await?;
//! client.publish("jobs", Message::new("resize image 7").header("size", "1024")).await?;
//!
//! let mut jobs = client.consumer("jobs").credit(16).start().await?;
//! if let Some(job) = jobs.next().await {
//!     let job = job?;
//!     println!("got {}", String::from_utf8_lossy(job.body()));
//!     job.ack().await?;
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod client;
mod consumer;
mod error;
mod message;
mod reply;

pub use client::{Backoff, Client, ClientBuilder};
pub use consumer::{Consumer, ConsumerBuilder, Received};
pub use error::{Error, Result};
pub use message::Message;

/// The wire types of the gRPC API (`ferry.v1`), for settings, statistics and the calls
/// this crate does not wrap.
pub use ferry_proto::v1 as proto;
