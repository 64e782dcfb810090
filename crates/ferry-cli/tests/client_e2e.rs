//! ferry-client against a real `ferry serve` process over gRPC: publish and consume with
//! acks, credits bounding what is in flight, request/reply, a reconnect across a server
//! restart (SIGKILL) with no acknowledged publish lost, and the auth failures.

use ferry_client::{proto, Backoff, Client, Error, Message};
use ferry_testkit::LineChild;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "test-password-1";
const LIMIT: Duration = Duration::from_secs(20);

/// A `ferry serve` process with its ports; killed when dropped.
struct Served {
    child: Option<LineChild>,
    http: u16,
    grpc: u16,
    dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let (http, grpc) = (ferry_testkit::free_port(), ferry_testkit::free_port());
        let mut served = Served { child: None, http, grpc, dir };
        served.spawn();
        served
    }

    /// Starts the process on the same data directory and ports.
    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(["serve", "--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--grpc", &format!("127.0.0.1:{}", self.grpc), "--data"])
            .arg(self.dir.path());
        cmd.env_remove("FERRY_HTTP").env_remove("FERRY_DATA").env_remove("FERRY_GRPC");
        cmd.env("FERRY_ADMIN_PASSWORD", PASSWORD);
        let child = LineChild::spawn(cmd);
        child.wait_for("listening on", LIMIT).expect("ferry serve started");
        assert!(ferry_testkit::wait_for_tcp(self.grpc, LIMIT), "gRPC port {} never opened", self.grpc);
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            child.kill();
        }
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.grpc)
    }

    async fn admin(&self) -> Client {
        Client::builder(self.url()).credentials("admin", PASSWORD).connect().await.unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_consume_with_acks() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("jobs", proto::Settings::default()).await.unwrap();
    let batch: Vec<Message> = (0..10).map(|i| Message::new(format!("job {i}")).header("n", i.to_string())).collect();
    let published = client.publish_batch("jobs", batch).await.unwrap();
    assert_eq!(published.len(), 10);
    assert_eq!(client.describe("jobs").await.unwrap().stats.unwrap().depth, 10);

    let mut consumer = client.consumer("jobs").credit(10).start().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let m = bounded("a delivery", consumer.next()).await.unwrap().unwrap();
        assert_eq!(m.delivery_count(), 1);
        assert_eq!(m.header("n"), Some(seen.len().to_string().as_str()));
        seen.push(String::from_utf8(m.body().to_vec()).unwrap());
        m.ack().await.unwrap();
    }
    assert_eq!(seen, (0..10).map(|i| format!("job {i}")).collect::<Vec<_>>());
    let stats = client.describe("jobs").await.unwrap().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.acked), (0, 0, 10));

    // A nack puts it back: the next delivery is the same message, delivered twice.
    client.publish("jobs", "again").await.unwrap();
    let m = bounded("a delivery", consumer.next()).await.unwrap().unwrap();
    m.nack(Duration::ZERO).await.unwrap();
    let m2 = bounded("a redelivery", consumer.next()).await.unwrap().unwrap();
    assert_eq!((m2.id(), m2.delivery_count(), m2.body()), (m.id(), 2, &b"again"[..]));
    m2.ack().await.unwrap();
    // Acking twice is refused with the lease named.
    assert!(matches!(m2.ack().await, Err(Error::Settle { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_bound_the_messages_in_flight() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("work", proto::Settings::default()).await.unwrap();
    client.publish_batch("work", (0..20).map(|i| Message::new(i.to_string()))).await.unwrap();

    let mut consumer = client.consumer("work").credit(3).start().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(bounded("a delivery", consumer.next()).await.unwrap().unwrap());
    }
    // A fourth would exceed the window.
    assert!(tokio::time::timeout(Duration::from_millis(300), consumer.next()).await.is_err());
    assert_eq!(client.describe("work").await.unwrap().stats.unwrap().in_flight, 3);

    held.remove(0).ack().await.unwrap();
    held.push(bounded("the freed slot", consumer.next()).await.unwrap().unwrap());
    assert!(tokio::time::timeout(Duration::from_millis(300), consumer.next()).await.is_err());

    consumer.add_credit(17).await.unwrap();
    for _ in 0..16 {
        held.push(bounded("a delivery after more credit", consumer.next()).await.unwrap().unwrap());
    }
    let ids: BTreeSet<u64> = held.iter().map(|m| m.id()).collect();
    assert_eq!(ids.len(), 19, "no message delivered twice");
    for m in &held {
        m.ack().await.unwrap();
    }
    let stats = client.describe("work").await.unwrap().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_ack_consumer_reads_everything_with_a_small_window() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("ticks", proto::Settings::default()).await.unwrap();
    client.publish_batch("ticks", (0..100).map(|i| Message::new(i.to_string()))).await.unwrap();

    let mut consumer = client.consumer("ticks").credit(4).auto_ack(true).start().await.unwrap();
    let first = bounded("a delivery", consumer.next()).await.unwrap().unwrap();
    assert!(first.delivery().lease.is_none());
    assert!(matches!(first.ack().await, Err(Error::InvalidArgument(_))), "nothing to ack");
    // Unread, the window stays spent: at most 4 were taken from the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = client.describe("ticks").await.unwrap().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (96, 0));
    // Reading grants the credits again, so a window of 4 carries all 100, in order.
    let mut seen = vec![String::from_utf8(first.body().to_vec()).unwrap()];
    while seen.len() < 100 {
        let m = bounded("a delivery", consumer.next()).await.unwrap().unwrap();
        seen.push(String::from_utf8(m.body().to_vec()).unwrap());
    }
    assert_eq!(seen, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    let stats = client.describe("ticks").await.unwrap().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.acked), (0, 0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acking_a_whole_window_at_once_does_not_stall_the_stream() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("bulk", proto::Settings::default()).await.unwrap();
    for _ in 0..3 {
        client.publish_batch("bulk", (0..1000).map(|i| Message::new(i.to_string()))).await.unwrap();
    }
    // A thousand acks sent together while deliveries keep coming: they share the stream
    // with the deliveries, and neither side may wait on the other.
    let mut consumer = client.consumer("bulk").credit(1000).start().await.unwrap();
    let mut acked = 0;
    while acked < 3000 {
        let mut window = Vec::new();
        while window.len() < 1000 {
            window.push(bounded("a delivery", consumer.next()).await.unwrap().unwrap());
        }
        let acks = futures::future::join_all(window.iter().map(|m| m.ack()));
        for r in bounded("a thousand acks", acks).await {
            r.unwrap();
        }
        acked += window.len();
    }
    let stats = client.describe("bulk").await.unwrap().stats.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.acked), (0, 0, 3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_consumer_returns_its_messages() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("q", proto::Settings::default()).await.unwrap();
    client.publish_batch("q", (0..4).map(|i| Message::new(i.to_string()))).await.unwrap();
    let mut first = client.consumer("q").credit(4).start().await.unwrap();
    for _ in 0..4 {
        bounded("a delivery", first.next()).await.unwrap().unwrap();
    }
    drop(first);
    // The server releases the unsettled leases when the stream ends: a new consumer gets
    // them at once, not after the 30 s visibility timeout.
    let mut second = client.consumer("q").credit(4).start().await.unwrap();
    for _ in 0..4 {
        let m = bounded("a redelivery", second.next()).await.unwrap().unwrap();
        assert_eq!(m.delivery_count(), 2);
        m.ack().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_through_a_queue() {
    let served = Served::start();
    let client = served.admin().await;
    client.create_queue("upper", proto::Settings::default()).await.unwrap();
    let responder = client.clone();
    let mut requests = responder.consumer("upper").start().await.unwrap();
    let serving = tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let text = String::from_utf8_lossy(request.body()).to_uppercase();
            responder.reply(&request, Message::new(text)).await.unwrap();
            request.ack().await.unwrap();
        }
    });
    let reply = bounded("a reply", client.request("upper", "hello", LIMIT)).await.unwrap();
    assert_eq!(reply.body(), b"HELLO");
    // Concurrent requests each get their own reply.
    let calls = (0..8).map(|i| {
        let c = client.clone();
        async move { c.request("upper", format!("call {i}"), LIMIT).await }
    });
    let replies = bounded("eight replies", futures::future::join_all(calls)).await;
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.unwrap().body(), format!("CALL {i}").as_bytes());
    }
    serving.abort();

    // Nobody answers: the caller gets a timeout, not a hang.
    client.create_queue("nobody", proto::Settings::default()).await.unwrap();
    let late = client.request("nobody", "anyone?", Duration::from_millis(300)).await;
    assert!(matches!(late, Err(Error::Timeout(_))), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_loses_no_acknowledged_publish() {
    let mut served = Served::start();
    let backoff = Backoff { attempts: 40, initial: Duration::from_millis(50), max: Duration::from_millis(500) };
    let client = Client::builder(served.url()).credentials("admin", PASSWORD).backoff(backoff).connect().await.unwrap();
    client.create_queue("ledger", proto::Settings::default()).await.unwrap();

    // Publishes carry dedup ids, so the client retries them across the outage, and a
    // retry of a publish that did land is not stored twice.
    let count = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = client.clone();
    let (acks, done) = (count.clone(), stop.clone());
    let publishing = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut unknown = Vec::new();
        let mut i = 0u32;
        while !done.load(Ordering::Relaxed) && i < 100_000 {
            let m = Message::new(i.to_string()).dedup_id(format!("m{i}"));
            match publisher.publish("ledger", m).await {
                Ok(_) => {
                    acked.push(i);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.is_transient() => unknown.push(i),
                Err(e) => panic!("publish {i}: {e}"),
            }
            i += 1;
        }
        (acked, unknown)
    });
    let reach = |n: u32| {
        let count = count.clone();
        bounded("publishes", async move {
            while count.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Kill the server mid-stream, without warning, and start it again on the same data.
    reach(50).await;
    served.kill();
    let at_kill = count.load(Ordering::Relaxed);
    served.spawn();
    reach(at_kill + 50).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, unknown) = bounded("the publisher", publishing).await.unwrap();
    assert!(acked.len() as u32 >= at_kill + 50, "{} acked, unknown: {unknown:?}", acked.len());

    // The same client, reconnected, reads everything back.
    let mut consumer = client.consumer("ledger").credit(500).start().await.unwrap();
    let mut stored = BTreeSet::new();
    let depth = client.describe("ledger").await.unwrap().stats.unwrap().depth;
    for _ in 0..depth {
        let m = bounded("a stored message", consumer.next()).await.unwrap().unwrap();
        let n: u32 = std::str::from_utf8(m.body()).unwrap().parse().unwrap();
        assert!(stored.insert(n), "message {n} stored twice");
        m.ack().await.unwrap();
    }
    let missing: Vec<u32> = acked.iter().copied().filter(|i| !stored.contains(i)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reconnects_after_a_restart() {
    let mut served = Served::start();
    let backoff = Backoff { attempts: 40, initial: Duration::from_millis(50), max: Duration::from_millis(500) };
    let client = Client::builder(served.url()).credentials("admin", PASSWORD).backoff(backoff).connect().await.unwrap();
    client.create_queue("events", proto::Settings::default()).await.unwrap();
    let mut consumer = client.consumer("events").start().await.unwrap();
    client.publish("events", "before").await.unwrap();
    let m = bounded("before the restart", consumer.next()).await.unwrap().unwrap();
    assert_eq!(m.body(), b"before");
    m.ack().await.unwrap();

    served.kill();
    served.spawn();
    client.publish("events", Message::new("after").dedup_id("after")).await.unwrap();
    // The stream broke; the consumer reports the outage (maybe) and comes back by itself.
    let after = bounded("after the restart", async {
        loop {
            match consumer.next().await {
                Some(Ok(m)) => break m,
                Some(Err(e)) if e.is_transient() => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert_eq!(after.body(), b"after");
    after.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_typed() {
    let served = Served::start();
    let admin = served.admin().await;
    let fail_fast = Backoff { attempts: 1, ..Backoff::default() };

    let wrong =
        Client::builder(served.url()).credentials("admin", "not-the-password").backoff(fail_fast).connect().await;
    assert!(matches!(wrong, Err(Error::Unauthenticated(_))), "{wrong:?}");

    let anonymous = Client::builder(served.url()).backoff(fail_fast).connect().await.unwrap();
    assert!(matches!(anonymous.list(None).await, Err(Error::Unauthenticated(_))));

    let forged = Client::builder(served.url()).token("not.a.token").connect().await.unwrap();
    assert!(matches!(forged.publish("x", "y").await, Err(Error::Unauthenticated(_))));

    admin.create_queue("private", proto::Settings::default()).await.unwrap();
    admin.put_user("sam", "sams-password", proto::Role::User, proto::Permissions::default()).await.unwrap();
    let sam = Client::builder(served.url()).credentials("sam", "sams-password").connect().await.unwrap();
    assert!(matches!(sam.publish("private", "hi").await, Err(Error::PermissionDenied(_))));
    assert!(matches!(sam.consumer("private").start().await, Err(Error::PermissionDenied(_))));
    assert!(matches!(sam.users().await, Err(Error::PermissionDenied(_))));
    assert!(matches!(admin.describe("no-such-queue").await, Err(Error::NotFound(_))));
    assert!(matches!(admin.create_queue("private", proto::Settings::default()).await, Err(Error::AlreadyExists(_))));

    // An API key acts as its owner.
    let key = sam.create_api_key("ci").await.unwrap().key;
    let by_key = Client::builder(served.url()).token(key).connect().await.unwrap();
    assert!(matches!(by_key.publish("private", "hi").await, Err(Error::PermissionDenied(_))));
    assert!(matches!(by_key.create_queue("sams", proto::Settings::default()).await, Err(Error::PermissionDenied(_))));

    // Unreachable: a clear error after the retries, not a hang.
    let port = ferry_testkit::free_port();
    let gone = Client::builder(format!("grpc://127.0.0.1:{port}")).backoff(fail_fast).connect().await;
    assert!(matches!(gone, Err(Error::Unavailable(_))), "{gone:?}");
}

/// An example program of ferry-client (`cargo test` builds them next to the tests).
fn example(name: &str, served: &Served, args: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join(name);
    assert!(path.exists(), "example {name} is not built: run `cargo build -p ferry-client --examples`");
    let mut cmd = Command::new(path);
    cmd.args(["-s", &served.url()]).args(args);
    cmd.env("FERRY_USER", "admin").env("FERRY_PASSWORD", PASSWORD).env_remove("FERRY_TOKEN");
    cmd
}

fn run(cmd: Command) -> String {
    let name = format!("{cmd:?}");
    let out = ferry_testkit::Proc::spawn_cmd(cmd).wait(LIMIT);
    assert!(out.success(), "{name} failed: {}", out.stderr);
    out.stdout
}

#[test]
fn demo_publisher_and_subscriber() {
    let served = Served::start();
    // Published before anyone listens: a new subscription starts at new messages, so the
    // subscriber below never sees it (NATS would have dropped it outright).
    let early = run(example("publisher", &served, &["greet", "too early"]));
    assert_eq!(early.trim(), "Published [greet] : 'too early'");
    let subscriber = LineChild::spawn(example("subscriber", &served, &["greet"]));
    subscriber.wait_for("Listening on [greet]", LIMIT).unwrap();
    run(example("publisher", &served, &["greet", "Some Message"]));
    run(example("publisher", &served, &["greet", "Another"]));
    subscriber.wait_for("[#1] Received on [greet]: 'Some Message'", LIMIT).unwrap();
    subscriber.wait_for("[#2] Received on [greet]: 'Another'", LIMIT).unwrap();
}

#[test]
fn demo_logger_writes_every_message_to_its_file() {
    let served = Served::start();
    let out = run(example("counter", &served, &["--count", "20", "--interval-ms", "0", "numbers"]));
    assert!(out.lines().last().is_some_and(|l| l == "Published [numbers] : '20'"), "{out}");
    let log = served.dir.path().join("numbers.log");
    let logger = LineChild::spawn(example("logger", &served, &["--file", log.to_str().unwrap(), "numbers"]));
    logger.wait_for("Logging [numbers]", LIMIT).unwrap();
    let expected: String = (1..=20).map(|i| format!("[#{i}] [numbers]: '{i}'\n")).collect();
    let complete = ferry_testkit::eventually(LIMIT, || std::fs::read_to_string(&log).is_ok_and(|s| s == expected));
    assert!(complete, "{:?}", std::fs::read_to_string(&log));
}

#[test]
fn demo_upper_rpc_sync_and_async() {
    let served = Served::start();
    let server = LineChild::spawn(example("upper", &served, &["serve"]));
    server.wait_for("Serving Upper.Uppercase", LIMIT).unwrap();
    let out = run(example("upper", &served, &["call", "hello"]));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["Upper.Uppercase(\"hello\") = \"HELLO\"", "Upper.Uppercase(\"hello\") = \"HELLO\" (async)"]
    );
}
