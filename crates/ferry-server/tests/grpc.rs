//! The gRPC API from the outside, through the clients generated from `proto/ferry/v1`:
//! every Broker, Users and Auth call against an in-process server on 127.0.0.1 port 0,
//! consuming with credits, pipelined publishing, errors as gRPC status codes, health
//! checking, reflection and TLS. Every wait is bounded.

use ferry_proto::v1 as pb;
use ferry_proto::v1::auth_client::AuthClient;
use ferry_proto::v1::broker_client::BrokerClient;
use ferry_proto::v1::users_client::UsersClient;
use ferry_server::config::TlsConfig;
use ferry_server::{Config, Server, ServerError};
use pb::consume_request::Request as In;
use pb::consume_response::Response as Out;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const PASSWORD: &str = "grpc-admin-password";
const WAIT: Duration = Duration::from_secs(10);

/// A server on the test's runtime; stopped when dropped (or by `stop`).
struct Running {
    dir: tempfile::TempDir,
    url: String,
    /// The REST side's base URL.
    http: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    /// Stops the server and waits (bounded) until it has closed.
    async fn stop(mut self) -> Result<(), ServerError> {
        let _ = self.stop.take().map(|s| s.send(()));
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task).await.expect("the server stopped in time").expect("the server task")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { http: "127.0.0.1:0".parse().unwrap(), data_dir: dir.into(), ..Config::default() };
    c.grpc.enabled = true;
    c.grpc.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.password = Some(PASSWORD.into());
    c
}

async fn serve_with(change: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    change(&mut c);
    let server = Server::start(c).await.unwrap();
    let url = server.grpc_url().expect("gRPC is enabled");
    let http = server.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running { dir, url, http, stop: Some(stop), task: Some(task) }
}

async fn serve() -> Running {
    serve_with(|_| {}).await
}

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

type Broker = BrokerClient<InterceptedService<Channel, Bearer>>;
type Users = UsersClient<InterceptedService<Channel, Bearer>>;

async fn channel(url: &str) -> Channel {
    let endpoint = Channel::from_shared(url.to_string()).unwrap().timeout(Duration::from_secs(30));
    tokio::time::timeout(WAIT, endpoint.connect()).await.unwrap().unwrap()
}

fn bearer(token: Option<&str>) -> Bearer {
    Bearer(token.map(|t| format!("Bearer {t}").parse().unwrap()))
}

impl Running {
    async fn broker(&self, token: Option<&str>) -> Broker {
        BrokerClient::with_interceptor(channel(&self.url).await, bearer(token))
    }

    async fn users(&self, token: Option<&str>) -> Users {
        UsersClient::with_interceptor(channel(&self.url).await, bearer(token))
    }

    async fn login(&self, user: &str, password: &str) -> Result<String, Status> {
        let mut auth = AuthClient::new(channel(&self.url).await);
        let req = pb::LoginRequest { username: user.into(), password: password.into() };
        Ok(auth.login(req).await?.into_inner().access_token)
    }

    async fn admin(&self) -> String {
        self.login("admin", PASSWORD).await.unwrap()
    }

    /// Makes a user with `permissions` and returns its token.
    async fn user(&self, admin: &str, name: &str, permissions: pb::Permissions) -> String {
        let password = format!("{name}-password-1");
        let put = pb::PutUserRequest {
            name: name.into(),
            password: password.clone(),
            role: 0,
            permissions: Some(permissions),
        };
        self.users(Some(admin)).await.put_user(put).await.unwrap();
        self.login(name, &password).await.unwrap()
    }
}

fn queue(name: &str) -> pb::DestinationRef {
    pb::DestinationRef { name: name.into(), kind: pb::Kind::Queue as i32 }
}

fn message(body: &str) -> pb::Message {
    pb::Message { body: body.as_bytes().to_vec().into(), ..Default::default() }
}

fn publish(destination: &str, messages: Vec<pb::Message>) -> pb::PublishRequest {
    pb::PublishRequest { destination: destination.into(), messages, sequence: 0 }
}

fn settle(destination: &str, leases: Vec<u64>) -> pb::SettleRequest {
    pb::SettleRequest { destination: destination.into(), leases, ..Default::default() }
}

fn receive(destination: &str, max: u32, wait_ms: u64) -> pb::ReceiveRequest {
    pb::ReceiveRequest { destination: destination.into(), max, wait_ms, ..Default::default() }
}

fn body(d: &pb::Delivery) -> String {
    String::from_utf8_lossy(&d.message.as_ref().unwrap().body).to_string()
}

fn reason(s: &Status) -> &str {
    s.metadata().get("ferry-reason").and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn create_queue(b: &mut Broker, name: &str) -> pb::Destination {
    let req = pb::CreateDestinationRequest { name: name.into(), kind: pb::Kind::Queue as i32, settings: None };
    b.create_destination(req).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_from_creation_to_deletion() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    let settings = pb::Settings { visibility_timeout_ms: Some(30_000), ..Default::default() };
    let req =
        pb::CreateDestinationRequest { name: "jobs".into(), kind: pb::Kind::Queue as i32, settings: Some(settings) };
    let q = b.create_destination(req.clone()).await.unwrap().into_inner();
    assert_eq!((q.name.as_str(), q.kind, q.owner.as_str()), ("jobs", pb::Kind::Queue as i32, "admin"));
    let qs = q.settings.unwrap();
    assert_eq!(qs.durability, pb::DurabilityMode::Fsync as i32, "the server's default durability");
    assert_eq!(qs.max_deliveries, Some(10), "unset settings take their defaults");
    let e = b.create_destination(req).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::AlreadyExists, "already_exists"));
    // Names no REST path could carry are refused here too, so every queue is reachable there.
    for name in [".", ".."] {
        let dot = pb::CreateDestinationRequest { name: name.into(), kind: pb::Kind::Queue as i32, settings: None };
        let e = b.create_destination(dot).await.unwrap_err();
        assert_eq!((e.code(), reason(&e)), (Code::InvalidArgument, "invalid_name"), "{name:?}");
    }

    // A batch; priorities order delivery.
    let mut high = message("high");
    high.priority = 9;
    high.headers.insert("k".into(), "v".into());
    let batch = vec![message("low"), high, message("later-low")];
    let published = b.publish(publish("jobs", batch)).await.unwrap().into_inner().published;
    assert_eq!(published.len(), 3);
    let got = b.receive(receive("jobs", 10, 0)).await.unwrap().into_inner().deliveries;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), ["high", "low", "later-low"]);
    assert_eq!(got[0].message.as_ref().unwrap().headers["k"], "v");
    let leases: Vec<u64> = got.iter().map(|d| d.lease.unwrap()).collect();
    let acked = b.ack(settle("jobs", leases.clone())).await.unwrap().into_inner().results;
    assert!(acked.iter().all(|r| r.ok), "{acked:?}");
    let again = b.ack(settle("jobs", leases)).await.unwrap().into_inner().results;
    assert!(again.iter().all(|r| !r.ok && r.error_code == "unknown_lease"), "{again:?}");
    let d = b.describe_destination(queue("jobs")).await.unwrap().into_inner();
    assert_eq!(d.stats.unwrap().depth, 0);

    // A nack redelivers at once, counting the delivery.
    b.publish(publish("jobs", vec![message("again")])).await.unwrap();
    let first = b.receive(receive("jobs", 1, 1000)).await.unwrap().into_inner().deliveries.remove(0);
    let nacked = b.nack(settle("jobs", vec![first.lease.unwrap()])).await.unwrap().into_inner().results;
    assert!(nacked[0].ok);
    let second = b.receive(receive("jobs", 1, 5000)).await.unwrap().into_inner().deliveries.remove(0);
    assert_eq!((second.id, second.delivery_count), (first.id, 2));
    let mut extend = settle("jobs", vec![second.lease.unwrap()]);
    let e = b.extend(extend.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "extend needs visibility_ms: {e}");
    extend.visibility_ms = 60_000;
    assert!(b.extend(extend).await.unwrap().into_inner().results[0].ok);

    // Peek sees it without leasing it; settings change one at a time.
    let peek = pb::PeekRequest { name: "jobs".into(), kind: 0, from_offset: 0, max: 0 };
    let peeked = b.peek(peek).await.unwrap().into_inner().deliveries;
    assert_eq!((peeked.len(), peeked[0].lease), (1, None));
    let change = pb::Settings { max_deliveries: Some(5), ..Default::default() };
    let update = pb::UpdateDestinationRequest { name: "jobs".into(), kind: 0, settings: Some(change) };
    let updated = b.update_destination(update).await.unwrap().into_inner().settings.unwrap();
    assert_eq!((updated.max_deliveries, updated.visibility_timeout_ms), (Some(5), Some(30_000)));
    let stats = b.get_stats(pb::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!((stats.queues, stats.totals.unwrap().depth), (1, 1));

    b.purge(queue("jobs")).await.unwrap();
    assert_eq!(b.describe_destination(queue("jobs")).await.unwrap().into_inner().stats.unwrap().depth, 0);
    b.delete_destination(queue("jobs")).await.unwrap();
    let e = b.describe_destination(queue("jobs")).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::NotFound, "not_found"));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_subscriptions_and_seek() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    let req = pb::CreateDestinationRequest { name: "orders".into(), kind: pb::Kind::Topic as i32, settings: None };
    b.create_destination(req).await.unwrap();
    b.publish(publish("orders", vec![message("one"), message("two")])).await.unwrap();
    let sub = |name: &str| pb::SubscribeRequest { topic: "orders".into(), name: name.into(), ..Default::default() };
    let late = b.subscribe(sub("late")).await.unwrap().into_inner();
    assert_eq!((late.name.as_str(), late.stats.unwrap().depth), ("late", 0));
    let from_late = pb::ReceiveRequest { subscription: Some("late".into()), ..receive("orders", 10, 0) };
    assert!(b.receive(from_late.clone()).await.unwrap().into_inner().deliveries.is_empty(), "starts at new");
    let earliest = pb::StartAt { at: Some(pb::start_at::At::Earliest(true)) };
    let seek = pb::SeekRequest { topic: "orders".into(), name: "late".into(), to: Some(earliest) };
    b.seek(seek).await.unwrap();
    let got = b.receive(from_late).await.unwrap().into_inner().deliveries;
    assert_eq!(got.iter().map(body).collect::<Vec<_>>(), ["one", "two"]);
    let listed = b.list_subscriptions(pb::TopicRef { topic: "orders".into() }).await.unwrap().into_inner();
    assert!(listed.subscriptions.contains_key("late"));

    let e = b.subscribe(sub("mom.someone")).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::InvalidArgument, "reserved_name"));
    let e = b.seek(pb::SeekRequest { topic: "orders".into(), name: "late".into(), to: None }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    b.unsubscribe(pb::SubscriptionRef { topic: "orders".into(), name: "late".into() }).await.unwrap();
    let e = b.receive(pb::ReceiveRequest { subscription: Some("late".into()), ..receive("orders", 1, 0) }).await;
    assert_eq!(e.unwrap_err().code(), Code::NotFound);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_what_the_caller_may_see() {
    let s = serve().await;
    let admin = s.admin().await;
    let ann = s.user(&admin, "ann", pb::Permissions { manage: vec!["ann.*".into()], ..Default::default() }).await;
    let bob = s.user(&admin, "bob", pb::Permissions::default()).await;
    create_queue(&mut s.broker(Some(&ann)).await, "ann.q").await;
    create_queue(&mut s.broker(Some(&admin)).await, "other").await;
    let s = &s;
    let names = |token: String| async move {
        let list = s.broker(Some(&token)).await.list_destinations(pb::ListDestinationsRequest { kind: 0 }).await;
        list.unwrap().into_inner().destinations.into_iter().map(|d| d.name).collect::<Vec<_>>()
    };
    assert_eq!(names(ann.clone()).await, ["ann.q"]);
    assert!(names(bob.clone()).await.is_empty());
    assert_eq!(names(admin.clone()).await, ["ann.q", "other"]);
    let stats = s.broker(Some(&bob)).await.get_stats(pb::StatsRequest {}).await.unwrap().into_inner();
    assert_eq!((stats.queues, stats.topics), (0, 0), "totals cover only what the caller may see");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_permissions_and_api_keys() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut users = s.users(Some(&admin)).await;
    let carl = pb::PutUserRequest {
        name: "carl".into(),
        password: "carl-password-1".into(),
        role: pb::Role::User as i32,
        permissions: Some(pb::Permissions { publish: vec!["carl.*".into()], ..Default::default() }),
    };
    let made = users.put_user(carl.clone()).await.unwrap().into_inner();
    assert_eq!((made.name.as_str(), made.role), ("carl", pb::Role::User as i32));
    let short = pb::PutUserRequest { password: "short".into(), ..carl };
    assert_eq!(users.put_user(short).await.unwrap_err().code(), Code::InvalidArgument);
    let listed = users.list_users(pb::ListUsersRequest {}).await.unwrap().into_inner().users;
    assert_eq!(listed.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["admin", "carl"]);
    let perms = pb::Permissions { manage: vec!["carl.*".into()], ..Default::default() };
    let set = pb::SetPermissionsRequest { name: "carl".into(), permissions: Some(perms.clone()) };
    users.set_permissions(set).await.unwrap();
    let got = users.get_permissions(pb::UserRef { name: "carl".into() }).await.unwrap().into_inner();
    assert_eq!(got, perms);
    assert_eq!(users.get_user(pb::UserRef { name: "nobody".into() }).await.unwrap_err().code(), Code::NotFound);

    // An API key acts as its owner.
    let carl_token = s.login("carl", "carl-password-1").await.unwrap();
    let mut carls = s.users(Some(&carl_token)).await;
    let e = carls.list_users(pb::ListUsersRequest {}).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::PermissionDenied, "forbidden"));
    let key = carls.create_api_key(pb::CreateApiKeyRequest { label: "ci".into() }).await.unwrap().into_inner();
    assert!(key.key.starts_with("fk_"), "{}", key.key);
    let long = pb::CreateApiKeyRequest { label: "x".repeat(201) };
    assert_eq!(carls.create_api_key(long).await.unwrap_err().code(), Code::InvalidArgument);
    let mut by_key = s.broker(Some(&key.key)).await;
    assert_eq!(create_queue(&mut by_key, "carl.jobs").await.owner, "carl");
    let keys = carls.list_api_keys(pb::ListApiKeysRequest {}).await.unwrap().into_inner().keys;
    assert_eq!(keys.len(), 1);
    let id = key.info.unwrap().id;
    carls.delete_api_key(pb::ApiKeyRef { id }).await.unwrap();
    let e = by_key.list_destinations(pb::ListDestinationsRequest { kind: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "a deleted key stops working");

    users.delete_user(pb::UserRef { name: "carl".into() }).await.unwrap();
    let e = users.delete_user(pb::UserRef { name: "admin".into() }).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::FailedPrecondition, "last_admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_the_right_status_codes() {
    let s = serve().await;
    let admin = s.admin().await;
    let list = pb::ListDestinationsRequest { kind: 0 };

    let e = s.broker(None).await.list_destinations(list).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("authorization"), "{e}");
    let e = s.broker(Some("not-a-token")).await.list_destinations(list).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::Unauthenticated, "unauthorized"));
    // Signed with the server's own secret: only its age is wrong.
    let (auth, _) = ferry_server::auth::Auth::open(s.dir.path(), "admin", Some(PASSWORD), 1800).unwrap();
    let expired = auth.expired_token("admin", 120);
    let e = s.broker(Some(&expired)).await.list_destinations(list).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("expired"), "{e}");
    assert_eq!(s.login("admin", "wrong-password").await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(
        s.users(None).await.list_users(pb::ListUsersRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "mine").await;
    let stranger = s.user(&admin, "stranger", pb::Permissions::default()).await;
    let mut st = s.broker(Some(&stranger)).await;
    let e = st.publish(publish("mine", vec![message("x")])).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::PermissionDenied, "forbidden"));
    let e = st.receive(receive("mine", 1, 0)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = st.purge(queue("mine")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = b.describe_destination(queue("no-such-queue")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = b.publish(publish("no-such-queue", vec![message("x")])).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Arguments out of range change nothing.
    let mut loud = message("x");
    loud.priority = 300;
    let e = b.publish(publish("mine", vec![loud])).await.unwrap_err();
    assert_eq!((e.code(), reason(&e)), (Code::InvalidArgument, "invalid_argument"));
    assert!(e.message().contains("priority"), "{e}");
    assert_eq!(b.publish(publish("mine", vec![])).await.unwrap_err().code(), Code::InvalidArgument);
    let e = b.receive(receive("mine", 1, 999_999_999)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "wait beyond the server's limit: {e}");
    assert_eq!(b.receive(receive("mine", 5000, 0)).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(b.ack(settle("mine", vec![])).await.unwrap_err().code(), Code::InvalidArgument);
    let bad_kind = pb::CreateDestinationRequest { name: "k".into(), kind: 9, settings: None };
    assert_eq!(b.create_destination(bad_kind).await.unwrap_err().code(), Code::InvalidArgument);
    let bad_name = pb::CreateDestinationRequest { name: "bad name".into(), kind: 1, settings: None };
    assert_eq!(b.create_destination(bad_name).await.unwrap_err().code(), Code::InvalidArgument);
    let stats = b.describe_destination(queue("mine")).await.unwrap().into_inner().stats.unwrap();
    assert_eq!(stats.published, 0);
}

/// Reads the next response of a consume stream (bounded).
async fn next(stream: &mut tonic::Streaming<pb::ConsumeResponse>, within: Duration) -> Option<Out> {
    match tokio::time::timeout(within, stream.message()).await {
        Ok(Ok(Some(m))) => m.response,
        Ok(Ok(None)) => panic!("the consume stream ended"),
        Ok(Err(status)) => panic!("the consume stream failed: {status}"),
        Err(_) => None,
    }
}

/// Collects `n` deliveries (answers to settles in between are checked and skipped).
async fn deliveries(stream: &mut tonic::Streaming<pb::ConsumeResponse>, n: usize) -> Vec<pb::Delivery> {
    let mut got = Vec::new();
    while got.len() < n {
        match next(stream, WAIT).await {
            Some(Out::Delivery(d)) => got.push(d),
            Some(Out::Settled(s)) => assert!(s.results.iter().all(|r| r.ok), "{s:?}"),
            None => panic!("only {} of {n} deliveries came", got.len()),
        }
    }
    got
}

fn ack(leases: impl IntoIterator<Item = u64>) -> pb::ConsumeRequest {
    pb::ConsumeRequest { request: Some(In::Ack(pb::LeaseList { leases: leases.into_iter().collect() })) }
}

fn credit(n: u32) -> pb::ConsumeRequest {
    pb::ConsumeRequest { request: Some(In::Credit(n)) }
}

fn start(destination: &str, credit: u32) -> pb::ConsumeRequest {
    let start = pb::ConsumeStart { destination: destination.into(), credit, ..Default::default() };
    pb::ConsumeRequest { request: Some(In::Start(start)) }
}

async fn consume(
    b: &mut Broker,
    destination: &str,
    credit: u32,
) -> (mpsc::Sender<pb::ConsumeRequest>, tonic::Streaming<pb::ConsumeResponse>) {
    let (tx, rx) = mpsc::channel(16);
    tx.send(start(destination, credit)).await.unwrap();
    let stream = b.consume(ReceiverStream::new(rx)).await.unwrap().into_inner();
    (tx, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_sends_no_more_than_the_credits_granted() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "work").await;
    let batch = (0..20).map(|i| message(&format!("m{i}"))).collect();
    b.publish(publish("work", batch)).await.unwrap();

    let (tx, mut stream) = consume(&mut b, "work", 3).await;
    let mut held = deliveries(&mut stream, 3).await;
    // A negative check, so a short bounded wait: no fourth delivery without credit.
    assert!(next(&mut stream, Duration::from_millis(300)).await.is_none(), "a 4th delivery beyond 3 credits");

    // An ack frees exactly one credit.
    let first = held.remove(0);
    tx.send(ack([first.lease.unwrap()])).await.unwrap();
    match next(&mut stream, WAIT).await {
        Some(Out::Settled(s)) => assert_eq!((s.results.len(), s.results[0].ok), (1, true)),
        other => panic!("expected the ack's answer first, got {other:?}"),
    }
    held.extend(deliveries(&mut stream, 1).await);
    assert!(next(&mut stream, Duration::from_millis(300)).await.is_none(), "more than one after one ack");

    // Ten more credits: ten more deliveries, then, acking as they come, the rest.
    tx.send(credit(10)).await.unwrap();
    held.extend(deliveries(&mut stream, 10).await);
    assert_eq!(held.len(), 13);
    let mut seen: HashSet<String> = held.iter().map(body).collect();
    seen.insert(body(&first));
    tx.send(ack(held.iter().map(|d| d.lease.unwrap()))).await.unwrap();
    let rest = deliveries(&mut stream, 6).await;
    seen.extend(rest.iter().map(body));
    assert_eq!(seen.len(), 20, "every message once");
    tx.send(ack(rest.iter().map(|d| d.lease.unwrap()))).await.unwrap();
    loop {
        match next(&mut stream, WAIT).await {
            Some(Out::Settled(s)) if s.results.len() == 6 => break,
            Some(Out::Settled(_)) => {}
            other => panic!("expected the last ack's answer, got {other:?}"),
        }
    }
    let depth = b.describe_destination(queue("work")).await.unwrap().into_inner().stats.unwrap().depth;
    assert_eq!(depth, 0);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_consume_spends_a_credit_per_message_and_leaves_nothing_leased() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "ticks").await;
    let batch = (0..8).map(|i| message(&format!("t{i}"))).collect();
    b.publish(publish("ticks", batch)).await.unwrap();

    let (tx, rx) = mpsc::channel(16);
    let start = pb::ConsumeStart { destination: "ticks".into(), credit: 3, auto_ack: true, ..Default::default() };
    tx.send(pb::ConsumeRequest { request: Some(In::Start(start)) }).await.unwrap();
    let mut stream = b.consume(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let first = deliveries(&mut stream, 3).await;
    assert!(first.iter().all(|d| d.lease.is_none()), "auto-acked deliveries have no lease: {first:?}");
    // Nothing is leased and nothing comes back, so the spent credits stay spent.
    let stats = b.describe_destination(queue("ticks")).await.unwrap().into_inner().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (5, 0));
    assert!(next(&mut stream, Duration::from_millis(300)).await.is_none(), "a 4th delivery beyond 3 credits");
    tx.send(credit(5)).await.unwrap();
    let rest = deliveries(&mut stream, 5).await;
    let bodies: Vec<String> = first.iter().chain(&rest).map(body).collect();
    assert_eq!(bodies, (0..8).map(|i| format!("t{i}")).collect::<Vec<_>>());
    let stats = b.describe_destination(queue("ticks")).await.unwrap().into_inner().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.acked), (0, 0, 8));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_consume_stream_gives_its_leases_back() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "handoff").await; // visibility timeout 30 s: only a nack is this quick
    b.publish(publish("handoff", vec![message("a"), message("b")])).await.unwrap();
    let (tx, mut stream) = consume(&mut b, "handoff", 5).await;
    let held = deliveries(&mut stream, 2).await;
    drop(tx);
    drop(stream);
    let (_tx2, mut again) = consume(&mut b, "handoff", 5).await;
    let redelivered = deliveries(&mut again, 2).await;
    let ids = |v: &[pb::Delivery]| v.iter().map(|d| d.id).collect::<HashSet<_>>();
    assert_eq!(ids(&redelivered), ids(&held));
    assert!(redelivered.iter().all(|d| d.delivery_count == 2));

    // The first message must be a start; consuming needs the consume permission.
    let (tx3, rx3) = mpsc::channel(1);
    tx3.send(credit(1)).await.unwrap();
    let status = b.consume(ReceiverStream::new(rx3)).await.expect_err("a consume without start fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let stranger = s.user(&admin, "stranger", pb::Permissions::default()).await;
    let mut st = s.broker(Some(&stranger)).await;
    // Refused as the call's status, before any stream: the start is checked first.
    let (tx4, rx4) = mpsc::channel(1);
    tx4.send(start("handoff", 1)).await.unwrap();
    let status = tokio::time::timeout(WAIT, st.consume(ReceiverStream::new(rx4))).await.unwrap().err();
    assert_eq!(status.map(|s| s.code()), Some(Code::PermissionDenied));

    // A graceful stop does not wait for open consume streams.
    s.stop().await.unwrap();
    let end = tokio::time::timeout(WAIT, again.message()).await.unwrap();
    assert!(matches!(&end, Err(s) if s.code() == Code::Unavailable) || matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_stream_pipelines_and_answers_every_request() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "fast").await;
    let mut requests: Vec<pb::PublishRequest> = (0..50u64)
        .map(|seq| pb::PublishRequest {
            sequence: seq,
            ..publish("fast", (0..10).map(|i| message(&format!("{seq}-{i}"))).collect())
        })
        .collect();
    requests.insert(25, pb::PublishRequest { sequence: 1000, ..publish("nowhere", vec![message("x")]) });
    let mut answers = b.publish_stream(tokio_stream::iter(requests)).await.unwrap().into_inner();
    let mut seen = HashSet::new();
    let mut failed = Vec::new();
    while let Some(r) = tokio::time::timeout(WAIT, answers.message()).await.unwrap().unwrap() {
        assert!(seen.insert(r.sequence), "sequence {} answered twice", r.sequence);
        match r.error {
            Some(e) => failed.push((r.sequence, e.code, e.reason)),
            None => assert_eq!(r.published.len(), 10),
        }
    }
    assert_eq!(seen.len(), 51);
    assert_eq!(failed, [(1000, Code::NotFound as i32, "not_found".to_string())]);
    let depth = b.describe_destination(queue("fast")).await.unwrap().into_inner().stats.unwrap().depth;
    assert_eq!(depth, 500);

    // A stream the client keeps open does not hold up a graceful stop.
    let (tx, rx) = mpsc::channel(1);
    tx.send(pb::PublishRequest { sequence: 1, ..publish("fast", vec![message("last")]) }).await.unwrap();
    let mut open = b.publish_stream(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let first = tokio::time::timeout(WAIT, open.message()).await.unwrap().unwrap().unwrap();
    assert_eq!((first.sequence, first.error), (1, None));
    s.stop().await.unwrap();
    let end = tokio::time::timeout(WAIT, open.message()).await.unwrap();
    assert!(matches!(&end, Err(s) if s.code() == Code::Unavailable) || matches!(end, Ok(None)), "{end:?}");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checking_and_reflection_work_without_a_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let s = serve().await;
    let mut health = HealthClient::new(channel(&s.url).await);
    for service in ["", "ferry.v1.Broker", "ferry.v1.Users", "ferry.v1.Auth"] {
        let req = tonic_health::pb::HealthCheckRequest { service: service.into() };
        let status = health.check(req).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let mut reflection = ServerReflectionClient::new(channel(&s.url).await);
    let ask = |request| ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let asks = [
        ask(MessageRequest::ListServices(String::new())),
        // What grpcurl asks before it can call a method: the file that defines it.
        ask(MessageRequest::FileContainingSymbol("ferry.v1.Broker.Publish".into())),
    ];
    let mut answers = reflection.server_reflection_info(tokio_stream::iter(asks)).await.unwrap().into_inner();
    let answer = tokio::time::timeout(WAIT, answers.message()).await.unwrap().unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["ferry.v1.Broker", "ferry.v1.Users", "ferry.v1.Auth", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let answer = tokio::time::timeout(WAIT, answers.message()).await.unwrap().unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("no descriptor for ferry.v1.Broker.Publish: {answer:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    // Older tools (grpcurl before 1.9) ask the v1alpha service.
    use tonic_reflection::pb::v1alpha;
    let mut old = v1alpha::server_reflection_client::ServerReflectionClient::new(channel(&s.url).await);
    let ask = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = old.server_reflection_info(tokio_stream::iter([ask])).await.unwrap().into_inner();
    let answer = tokio::time::timeout(WAIT, answers.message()).await.unwrap().unwrap().unwrap();
    assert!(format!("{answer:?}").contains("ferry.v1.Broker"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_is_served_over_tls_with_the_http_certificate() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let certs = ferry_testkit::TestCerts::new();
    let s = serve_with(|c| c.tls = Some(TlsConfig { cert_file: certs.cert_file(), key_file: certs.key_file() })).await;
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&certs.ca_pem)).domain_name("127.0.0.1");
    let endpoint = Channel::from_shared(s.url.clone()).unwrap().tls_config(tls).unwrap();
    let channel = tokio::time::timeout(WAIT, endpoint.connect()).await.unwrap().unwrap();
    let mut auth = AuthClient::new(channel.clone());
    let login = pb::LoginRequest { username: "admin".into(), password: PASSWORD.into() };
    let token = auth.login(login).await.unwrap().into_inner().access_token;
    let mut b = BrokerClient::with_interceptor(channel, bearer(Some(&token)));
    create_queue(&mut b, "secure").await;

    // A plain-text client gets nowhere on the TLS port.
    let plain = s.url.replace("https://", "http://");
    let endpoint = Channel::from_shared(plain).unwrap().timeout(Duration::from_secs(5));
    if let Ok(Ok(ch)) = tokio::time::timeout(WAIT, endpoint.connect()).await {
        let login = pb::LoginRequest { username: "admin".into(), password: PASSWORD.into() };
        assert!(AuthClient::new(ch).login(login).await.is_err());
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_grpc_port_fails_startup_and_grpc_can_stay_off() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.grpc.listen = taken.local_addr().unwrap();
    let err = Server::start(c).await.err().expect("a taken port is refused");
    assert!(err.to_string().contains(&taken.local_addr().unwrap().to_string()), "{err}");

    let mut c = config(dir.path());
    c.grpc.enabled = false;
    let server = Server::start(c).await.unwrap();
    assert_eq!((server.grpc_addr(), server.grpc_url()), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_counted_in_the_metrics_by_method_and_code() {
    let s = serve().await;
    let admin = s.admin().await;
    let mut b = s.broker(Some(&admin)).await;
    create_queue(&mut b, "jobs").await;
    for body in ["a", "b"] {
        b.publish(publish("jobs", vec![message(body)])).await.unwrap();
    }
    let e = b.publish(publish("nowhere", vec![message("c")])).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = s.broker(None).await.publish(publish("jobs", vec![message("d")])).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let url = format!("{}/metrics", s.http);
    let text = tokio::task::spawn_blocking(move || ureq::get(&url).call().unwrap().into_string().unwrap());
    let text = tokio::time::timeout(WAIT, text).await.unwrap().unwrap();
    for expected in [
        r#"ferry_grpc_calls_total{method="/ferry.v1.Auth/Login",code="OK"} 1"#,
        r#"ferry_grpc_calls_total{method="/ferry.v1.Broker/Publish",code="OK"} 2"#,
        r#"ferry_grpc_calls_total{method="/ferry.v1.Broker/Publish",code="NOT_FOUND"} 1"#,
        r#"ferry_grpc_calls_total{method="/ferry.v1.Broker/Publish",code="UNAUTHENTICATED"} 1"#,
        r#"ferry_grpc_call_seconds_count{method="/ferry.v1.Broker/CreateDestination",code="OK"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}
