//! [`Client`]: one HTTP/2 connection to a ferry server, shared by every call and consumer
//! made from it, with authentication, retries with backoff and the unary calls.

use crate::error::{chain, Error, Result};
use crate::message::{millis, Message};
use crate::reply::Replies;
use ferry_proto::v1 as proto;
use ferry_proto::v1::auth_client::AuthClient;
use ferry_proto::v1::broker_client::BrokerClient;
use ferry_proto::v1::users_client::UsersClient;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The largest message the client sends or accepts: the largest body a destination can
/// be set to accept (64 MiB), plus room for the envelope.
const MAX_MESSAGE: usize = (64 << 20) + (1 << 20);

/// How the client retries calls that failed because the server could not be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { attempts: 8, initial: Duration::from_millis(50), max: Duration::from_secs(2) }
    }
}

impl Backoff {
    /// The wait before attempt `n + 1` (n ≥ 1), with jitter so that many clients
    /// reconnecting at once spread out.
    pub(crate) fn wait(&self, n: u32) -> Duration {
        let base = self.initial.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(self.max);
        let jitter = rand::random::<f64>() * 0.25;
        base.mul_f64(1.0 + jitter).min(self.max)
    }
}

/// Options for [`Client`]; made by [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    credentials: Option<(String, String)>,
    ca_pem: Option<Vec<u8>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    backoff: Backoff,
}

impl ClientBuilder {
    /// Authenticates with a token or API key (`fk_…`) as a Bearer credential.
    pub fn token(mut self, token: impl Into<String>) -> ClientBuilder {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with a name and password: the client logs in at connect, and again
    /// when its token expires.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> ClientBuilder {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Trusts this CA certificate (PEM) for `grpcs://` servers, instead of the system's.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> ClientBuilder {
        self.ca_pem = Some(pem.into());
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a unary call may take, waits included (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.request_timeout = timeout;
        self
    }

    /// How calls are retried when the server cannot be reached.
    pub fn backoff(mut self, backoff: Backoff) -> ClientBuilder {
        self.backoff = Backoff { attempts: backoff.attempts.max(1), ..backoff };
        self
    }

    /// Connects (retrying with backoff) and logs in if credentials were given.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::Unavailable`] when the server cannot be reached,
    /// [`Error::Unauthenticated`] for bad credentials.
    pub async fn connect(self) -> Result<Client> {
        let (endpoint, tls) = endpoint(&self.url)?;
        let mut endpoint = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        if tls {
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &self.ca_pem {
                config = config.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| Error::InvalidUrl { url: self.url.clone(), reason: chain(&e) })?;
        }
        let mut attempt = 1;
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(e) if attempt < self.backoff.attempts => {
                    tracing::debug!(url = %self.url, attempt, error = %chain(&e), "connect failed; retrying");
                    tokio::time::sleep(self.backoff.wait(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(Error::Unavailable(format!("{}: {}", self.url, chain(&e)))),
            }
        };
        let conn = Conn(Arc::new(Inner {
            channel,
            token: RwLock::new(self.token),
            credentials: self.credentials,
            request_timeout: self.request_timeout,
            backoff: self.backoff,
        }));
        if conn.0.credentials.is_some() {
            conn.login().await?;
        }
        Ok(Client { conn, replies: Arc::default() })
    }
}

/// `grpc://host:port` (plain) or `grpcs://host:port` (TLS); `http://` and `https://`
/// mean the same. A user and password in the URL are not taken: use
/// [`ClientBuilder::credentials`], so that passwords stay out of logged URLs.
fn endpoint(url: &str) -> Result<(Endpoint, bool)> {
    let bad = |reason: &str| Error::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected grpc://host:port or grpcs://host:port"))?;
    let tls = match scheme {
        "grpc" | "http" => false,
        "grpcs" | "https" => true,
        _ => return Err(bad("the scheme must be grpc, grpcs, http or https")),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad("expected host:port with no path"));
    }
    if authority.contains('@') {
        return Err(bad("put credentials in ClientBuilder::credentials or ::token, not in the URL"));
    }
    let http = format!("{}://{authority}", if tls { "https" } else { "http" });
    let endpoint = Endpoint::from_shared(http).map_err(|e| bad(&chain(&e)))?;
    Ok((endpoint, tls))
}

/// A connection to a ferry server. Cheap to clone: clones share the connection.
///
/// ```no_run
/// use ferry_client::{Client, Message};
///
/// # async fn example() -> ferry_client::Result<()> {
/// let client = Client::builder("grpc://127.0.0.1:7601").credentials("admin", "secret-password").connect().await?;
/// client.create_queue("jobs", Default::default()).await?;
/// let published = client.publish("jobs", Message::new("resize image 7")).await?;
/// println!("stored as message {}", published.id);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) conn: Conn,
    /// The reply queue of [`Client::request`], made on first use and removed when the last
    /// clone of the client is dropped. Tasks hold a [`Conn`], never a `Client`, so that
    /// they do not keep it alive.
    pub(crate) replies: Arc<tokio::sync::OnceCell<Replies>>,
}

/// The connection and credentials: what calls and the tasks behind consumers share.
#[derive(Clone)]
pub(crate) struct Conn(Arc<Inner>);

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

struct Inner {
    channel: Channel,
    token: RwLock<Option<String>>,
    credentials: Option<(String, String)>,
    request_timeout: Duration,
    backoff: Backoff,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Whether a failed call may be sent again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, and writes that are safe to repeat.
    Yes,
    /// Publishes without dedup ids: a retry could store the message twice.
    No,
}

impl Client {
    /// Starts building a client for `url`: `grpc://host:port`, or `grpcs://host:port`
    /// for TLS.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            credentials: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            backoff: Backoff::default(),
        }
    }

    /// Connects to `url` without credentials (set `FERRY_TOKEN`-style tokens with
    /// [`Client::builder`] instead when the server wants them).
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        Client::builder(url).connect().await
    }

    /// Publishes one message to a queue or topic, returning once the destination's
    /// durability is met (by default: on disk, fsynced).
    ///
    /// A message with a [dedup id](Message::dedup_id) is retried while the server cannot
    /// be reached; one without is not, since a retry could store it twice.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::InvalidArgument`] (too
    /// large, bad fields), [`Error::Unavailable`].
    pub async fn publish(&self, destination: &str, message: impl Into<Message>) -> Result<proto::Published> {
        let mut published = self.publish_batch(destination, vec![message.into()]).await?;
        published.pop().ok_or_else(|| Error::Server { code: tonic::Code::Internal, message: "empty reply".into() })
    }

    /// Publishes a batch in one call: all are stored, or none.
    ///
    /// # Errors
    ///
    /// As [`Client::publish`].
    pub async fn publish_batch(
        &self,
        destination: &str,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<Vec<proto::Published>> {
        let messages: Vec<proto::Message> = messages.into_iter().map(Message::into_proto).collect();
        let retry = if messages.iter().all(|m| m.dedup_id.is_some()) { Retry::Yes } else { Retry::No };
        let request = proto::PublishRequest { destination: destination.to_string(), messages, sequence: 0 };
        let response = self.conn.call(retry, true, request, |ch, r| async move { broker(ch).publish(r).await }).await?;
        Ok(response.published)
    }

    /// Receives up to `max` messages from a queue (or a topic's `subscription`), waiting up
    /// to `wait` for the first. Each must be acked with [`Client::ack`] before its
    /// visibility timeout, or it is delivered again. For a steady flow use
    /// [`Client::consumer`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::InvalidArgument`].
    pub async fn receive(
        &self,
        destination: &str,
        subscription: Option<&str>,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<proto::Delivery>> {
        self.receive_with(proto::ReceiveRequest {
            destination: destination.to_string(),
            subscription: subscription.map(str::to_string),
            max,
            wait_ms: millis(wait),
            visibility_ms: None,
            auto_ack: false,
        })
        .await
    }

    /// Receives with every option of the wire request: a lease duration, or `auto_ack`
    /// (at-most-once: the messages are gone as they are received, with no leases).
    ///
    /// # Errors
    ///
    /// As [`Client::receive`].
    pub async fn receive_with(&self, request: proto::ReceiveRequest) -> Result<Vec<proto::Delivery>> {
        // A retried auto-ack receive could lose the messages of the first attempt.
        let retry = if request.auto_ack { Retry::No } else { Retry::Yes };
        let r = self.conn.call(retry, true, request, |ch, r| async move { broker(ch).receive(r).await }).await?;
        Ok(r.deliveries)
    }

    /// Acks leases from [`Client::receive`]: the messages are done.
    ///
    /// # Errors
    ///
    /// [`Error::Settle`] for the first lease that could not be acked (unknown or expired).
    pub async fn ack(&self, destination: &str, subscription: Option<&str>, leases: &[u64]) -> Result<()> {
        let request = proto::SettleRequest {
            destination: destination.to_string(),
            subscription: subscription.map(str::to_string),
            leases: leases.to_vec(),
            delay_ms: 0,
            visibility_ms: 0,
        };
        let r = self.conn.call(Retry::Yes, true, request, |ch, r| async move { broker(ch).ack(r).await }).await?;
        settled(r.results)
    }

    /// Creates a queue that the caller owns. Unset settings take the server's defaults.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::PermissionDenied`], [`Error::InvalidArgument`].
    pub async fn create_queue(&self, name: &str, settings: proto::Settings) -> Result<proto::Destination> {
        self.create(name, proto::Kind::Queue, settings).await
    }

    /// Creates a topic that the caller owns.
    ///
    /// # Errors
    ///
    /// As [`Client::create_queue`].
    pub async fn create_topic(&self, name: &str, settings: proto::Settings) -> Result<proto::Destination> {
        self.create(name, proto::Kind::Topic, settings).await
    }

    async fn create(&self, name: &str, kind: proto::Kind, settings: proto::Settings) -> Result<proto::Destination> {
        let request =
            proto::CreateDestinationRequest { name: name.to_string(), kind: kind.into(), settings: Some(settings) };
        self.conn.call(Retry::No, true, request, |ch, r| async move { broker(ch).create_destination(r).await }).await
    }

    /// A destination's settings and statistics.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn describe(&self, name: &str) -> Result<proto::Destination> {
        let request = proto::DestinationRef { name: name.to_string(), kind: proto::Kind::Unspecified.into() };
        self.conn.call(Retry::Yes, true, request, |ch, r| async move { broker(ch).describe_destination(r).await }).await
    }

    /// The destinations the caller may see; `None` for both kinds.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`], [`Error::Unauthenticated`].
    pub async fn list(&self, kind: Option<proto::Kind>) -> Result<Vec<proto::Destination>> {
        let request = proto::ListDestinationsRequest { kind: kind.unwrap_or(proto::Kind::Unspecified).into() };
        let r = self
            .conn
            .call(Retry::Yes, true, request, |ch, r| async move { broker(ch).list_destinations(r).await })
            .await?;
        Ok(r.destinations)
    }

    /// Deletes a destination and its messages.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.conn.delete_destination(name).await
    }

    /// Drops every message of a destination.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn purge(&self, name: &str) -> Result<()> {
        let request = proto::DestinationRef { name: name.to_string(), kind: proto::Kind::Unspecified.into() };
        self.conn.call(Retry::Yes, true, request, |ch, r| async move { broker(ch).purge(r).await }).await?;
        Ok(())
    }

    /// Subscribes to a topic as `name`, starting at `start` (`None`: new messages only).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::AlreadyExists`], [`Error::PermissionDenied`].
    pub async fn subscribe(
        &self,
        topic: &str,
        name: &str,
        start: Option<proto::StartAt>,
    ) -> Result<proto::Subscription> {
        let request = proto::SubscribeRequest {
            topic: topic.to_string(),
            name: name.to_string(),
            start,
            ..proto::SubscribeRequest::default()
        };
        self.subscribe_with(request).await
    }

    /// Subscribes with every option of the wire request (filter, no-local, timeouts).
    ///
    /// # Errors
    ///
    /// As [`Client::subscribe`].
    pub async fn subscribe_with(&self, request: proto::SubscribeRequest) -> Result<proto::Subscription> {
        self.conn.call(Retry::No, true, request, |ch, r| async move { broker(ch).subscribe(r).await }).await
    }

    /// Removes a subscription.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn unsubscribe(&self, topic: &str, name: &str) -> Result<()> {
        let request = proto::SubscriptionRef { topic: topic.to_string(), name: name.to_string() };
        self.conn.call(Retry::No, true, request, |ch, r| async move { broker(ch).unsubscribe(r).await }).await?;
        Ok(())
    }

    /// Moves a subscription to `to`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::InvalidArgument`].
    pub async fn seek(&self, topic: &str, name: &str, to: proto::StartAt) -> Result<()> {
        let request = proto::SeekRequest { topic: topic.to_string(), name: name.to_string(), to: Some(to) };
        self.conn.call(Retry::Yes, true, request, |ch, r| async move { broker(ch).seek(r).await }).await?;
        Ok(())
    }

    /// Totals over the destinations the caller may see.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`], [`Error::Unauthenticated`].
    pub async fn stats(&self) -> Result<proto::ServerStats> {
        self.conn
            .call(Retry::Yes, true, proto::StatsRequest {}, |ch, r| async move { broker(ch).get_stats(r).await })
            .await
    }

    /// Creates or replaces a user (admins only).
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`], [`Error::InvalidArgument`] (name, password under 8
    /// characters).
    pub async fn put_user(
        &self,
        name: &str,
        password: &str,
        role: proto::Role,
        permissions: proto::Permissions,
    ) -> Result<proto::User> {
        let request = proto::PutUserRequest {
            name: name.to_string(),
            password: password.to_string(),
            role: role.into(),
            permissions: Some(permissions),
        };
        self.conn.call(Retry::Yes, true, request, |ch, r| async move { UsersClient::new(ch).put_user(r).await }).await
    }

    /// Deletes a user (admins only; not the last admin).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let request = proto::UserRef { name: name.to_string() };
        self.conn
            .call(Retry::No, true, request, |ch, r| async move { UsersClient::new(ch).delete_user(r).await })
            .await?;
        Ok(())
    }

    /// Every user (admins only).
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`].
    pub async fn users(&self) -> Result<Vec<proto::User>> {
        let r = self
            .conn
            .call(Retry::Yes, true, proto::ListUsersRequest {}, |ch, r| async move {
                UsersClient::new(ch).list_users(r).await
            })
            .await?;
        Ok(r.users)
    }

    /// Replaces a user's permissions (admins only).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::PermissionDenied`].
    pub async fn set_permissions(&self, name: &str, permissions: proto::Permissions) -> Result<proto::Permissions> {
        let request = proto::SetPermissionsRequest { name: name.to_string(), permissions: Some(permissions) };
        self.conn
            .call(Retry::Yes, true, request, |ch, r| async move { UsersClient::new(ch).set_permissions(r).await })
            .await
    }

    /// Makes an API key for the caller: use it with [`ClientBuilder::token`]. The whole
    /// key is returned only here.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a label over 200 characters.
    pub async fn create_api_key(&self, label: &str) -> Result<proto::CreatedApiKey> {
        let request = proto::CreateApiKeyRequest { label: label.to_string() };
        self.conn
            .call(Retry::No, true, request, |ch, r| async move { UsersClient::new(ch).create_api_key(r).await })
            .await
    }
}

impl Conn {
    pub(crate) fn backoff(&self) -> Backoff {
        self.0.backoff
    }

    /// Deletes a destination (the reply queue, on drop).
    pub(crate) async fn delete_destination(&self, name: &str) -> Result<()> {
        let request = proto::DestinationRef { name: name.to_string(), kind: proto::Kind::Unspecified.into() };
        self.call(Retry::No, true, request, |ch, r| async move { broker(ch).delete_destination(r).await }).await?;
        Ok(())
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.0.credentials.is_some()
    }

    /// Logs in with the credentials given to the builder, replacing the token.
    pub(crate) async fn login(&self) -> Result<()> {
        let Some((user, password)) = self.0.credentials.clone() else {
            return Err(Error::Unauthenticated("no credentials to log in with".into()));
        };
        let message = proto::LoginRequest { username: user, password };
        // Its own retry loop rather than `call`, which logs in again on expiry.
        let mut attempt = 1;
        let token = loop {
            match AuthClient::new(self.channel()).login(self.request(message.clone(), false)?).await {
                Ok(response) => break response.into_inner(),
                Err(status) => match Error::from(status) {
                    Error::Unavailable(_) if attempt < self.0.backoff.attempts => {
                        tokio::time::sleep(self.0.backoff.wait(attempt)).await;
                        attempt += 1;
                    }
                    e => return Err(e),
                },
            }
        };
        if let Ok(mut t) = self.0.token.write() {
            *t = Some(token.access_token);
        }
        Ok(())
    }

    /// A request with the bearer credential and the call deadline.
    pub(crate) fn request<T>(&self, message: T, authenticated: bool) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.0.request_timeout);
        if authenticated {
            self.authorize(request.metadata_mut())?;
        }
        Ok(request)
    }

    pub(crate) fn authorize(&self, metadata: &mut tonic::metadata::MetadataMap) -> Result<()> {
        let token = self.0.token.read().ok().and_then(|t| t.clone());
        if let Some(token) = token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Error::InvalidArgument("the token has characters a header cannot carry".into()))?;
            metadata.insert("authorization", value);
        }
        Ok(())
    }

    pub(crate) fn channel(&self) -> Channel {
        self.0.channel.clone()
    }

    /// Makes a unary call, retrying with backoff while the server cannot be reached (if
    /// `retry` allows) and logging in again once if the token has expired.
    pub(crate) async fn call<T, R, F, Fut>(&self, retry: Retry, authenticated: bool, message: T, f: F) -> Result<R>
    where
        T: Clone,
        F: Fn(Channel, tonic::Request<T>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<R>, tonic::Status>>,
    {
        let mut attempt = 1;
        let mut logged_in_again = false;
        loop {
            let request = self.request(message.clone(), authenticated)?;
            let status = match f(self.channel(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => status,
            };
            let error = Error::from(status);
            match &error {
                Error::Unauthenticated(_) if authenticated && !logged_in_again && self.0.credentials.is_some() => {
                    logged_in_again = true;
                    self.login().await?;
                }
                Error::Unavailable(_) if retry == Retry::Yes && attempt < self.0.backoff.attempts => {
                    tracing::debug!(attempt, %error, "call failed; retrying");
                    tokio::time::sleep(self.0.backoff.wait(attempt)).await;
                    attempt += 1;
                }
                _ => return Err(error),
            }
        }
    }
}

/// The broker stub over `channel`, with the client's message size limits.
pub(crate) fn broker(channel: Channel) -> BrokerClient<Channel> {
    BrokerClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
}

/// `Ok` if every lease was settled, else the first failure.
pub(crate) fn settled(results: Vec<proto::SettleResult>) -> Result<()> {
    match results.into_iter().find(|r| !r.ok) {
        None => Ok(()),
        Some(r) => Err(Error::Settle { lease: r.lease, code: r.error_code, message: r.error_message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(matches!(endpoint("grpc://127.0.0.1:7601"), Ok((_, false))));
        assert!(matches!(endpoint("grpcs://broker.example:443/"), Ok((_, true))));
        for bad in ["127.0.0.1:7601", "nats://x:1", "grpc://", "grpc://h:1/path", "grpc://u:p@h:1"] {
            assert!(matches!(endpoint(bad), Err(Error::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let b = Backoff { attempts: 10, initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let first = b.wait(1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125), "{first:?}");
        let third = b.wait(3);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(500), "{third:?}");
        assert_eq!(b.wait(30), Duration::from_secs(1));
    }

    #[test]
    fn settle_results_name_the_first_failure() {
        let ok = proto::SettleResult { lease: 1, ok: true, ..Default::default() };
        let bad = proto::SettleResult {
            lease: 2,
            ok: false,
            error_code: "lease_expired".into(),
            error_message: "gone".into(),
        };
        assert_eq!(settled(vec![ok.clone()]), Ok(()));
        assert!(matches!(settled(vec![ok, bad]), Err(Error::Settle { lease: 2, .. })));
    }
}
