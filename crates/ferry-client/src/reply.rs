//! Request/reply through the broker: [`Client::request`] publishes a message carrying a
//! reply queue and a correlation id, and waits for the reply that carries the same id;
//! [`Client::reply`] answers a request.
//!
//! Each client makes one reply queue, `reply.<random>`, on its first request (the caller
//! needs manage permission on that name), and deletes it when its last clone is dropped.
//! One consumer on it routes replies to the waiting requests.

use crate::client::{Client, Conn};
use crate::consumer::Received;
use crate::error::{Error, Result};
use crate::message::Message;
use ferry_proto::v1 as proto;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Received>>>>;

/// A client's reply queue and the requests waiting on it.
pub(crate) struct Replies {
    queue: String,
    waiting: Waiting,
    router: tokio::task::AbortHandle,
    conn: Conn,
}

impl Replies {
    async fn start(client: &Client) -> Result<Replies> {
        let queue = format!("reply.{:016x}", rand::random::<u64>());
        // Replies matter only while someone waits: no fsync, no dedup, no dead letters.
        let settings = proto::Settings {
            durability: proto::DurabilityMode::None.into(),
            dedup_window_ms: Some(0),
            max_deliveries: Some(0),
            ..proto::Settings::default()
        };
        client.create_queue(&queue, settings).await?;
        let mut consumer = match client.consumer(&queue).credit(256).start().await {
            Ok(c) => c,
            Err(e) => {
                let _ = client.delete(&queue).await;
                return Err(e);
            }
        };
        let waiting: Waiting = Arc::default();
        let routes = waiting.clone();
        let router = tokio::spawn(async move {
            while let Some(next) = consumer.next().await {
                let Ok(reply) = next else { continue };
                // A reply is consumed once, whoever waits for it; a late one (its request
                // timed out) is dropped here.
                let _ = reply.ack().await;
                let waiter = reply.correlation_id().and_then(|id| routes.lock().ok()?.remove(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply);
                }
            }
        })
        .abort_handle();
        Ok(Replies { queue, waiting, router, conn: client.conn.clone() })
    }

    fn forget(&self, id: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(id);
        }
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.router.abort();
        // Best effort: a queue left behind by a crashed client is harmless, just untidy.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let conn = self.conn.clone();
            let name = std::mem::take(&mut self.queue);
            runtime.spawn(async move { conn.delete_destination(&name).await });
        }
    }
}

impl Client {
    /// Sends `message` to `destination` as a request and waits up to `timeout` for the
    /// reply, which a responder sends with [`Client::reply`]. The reply comes back
    /// already acked.
    ///
    /// ```no_run
    /// use ferry_client::{Client, Message};
    /// use std::time::Duration;
    ///
    /// # async fn example(client: Client) -> ferry_client::Result<()> {
    /// let reply = client.request("upper", Message::new("hello"), Duration::from_secs(5)).await?;
    /// assert_eq!(reply.body(), b"HELLO");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when no reply came in time; the errors of [`Client::publish`];
    /// [`Error::PermissionDenied`] if the caller may not create its reply queue.
    pub async fn request(&self, destination: &str, message: impl Into<Message>, timeout: Duration) -> Result<Received> {
        let replies = self.replies.get_or_try_init(|| Replies::start(self)).await?;
        let id = format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        replies.waiting.lock().map_err(|_| Error::Closed)?.insert(id.clone(), tx);
        let message = message.into().reply_to(replies.queue.clone()).correlation_id(id.clone());
        if let Err(e) = self.publish(destination, message).await {
            replies.forget(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                replies.forget(&id);
                Err(Error::Timeout(format!("no reply from {destination} within {timeout:?}")))
            }
        }
    }

    /// Answers a request received from a consumer: publishes `message` to the request's
    /// reply queue with its correlation id. Ack the request afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if the request has no reply queue; the errors of
    /// [`Client::publish`].
    pub async fn reply(&self, request: &Received, message: impl Into<Message>) -> Result<proto::Published> {
        let to = request
            .reply_to()
            .ok_or_else(|| Error::InvalidArgument("the message has no reply_to: it is not a request".into()))?;
        let mut message = message.into();
        if let Some(id) = request.correlation_id() {
            message = message.correlation_id(id);
        }
        self.publish(to, message).await
    }
}
