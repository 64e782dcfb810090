//! The broker's promise under SIGKILL: a child process runs publishers and acking consumers
//! in fsync mode and prints every acknowledged publish and every acknowledged ack. The parent
//! kills it at a random moment, 30 times, and after each restart checks that every
//! acknowledged publish was delivered (to the child, or to the parent draining the queue),
//! and that no message whose ack was acknowledged is ever delivered again. (A message the
//! child received and acked just before the kill, without printing the ack, counts as
//! delivered: the broker may rightly have settled it.)
//!
//! The child is this same test binary, started with `--ignored --exact crash_child`.

use ferry_broker::{Broker, BrokerOptions, Error, NewMessage, ReceiveRequest, Settings};
use ferry_testkit::LineChild;
use rand::Rng;
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

const CHILD_ENV: &str = "FERRY_BROKER_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "FERRY_BROKER_CRASH_ROUND";
const ROUNDS: usize = 30;

fn options() -> BrokerOptions {
    // Small segments and frequent snapshots, so that kills also land in those.
    BrokerOptions { snapshot_every: 200, segment_size: 32 << 10, pinned_segments: 2, recent_bytes: 64 << 10 }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[test]
#[ignore = "the child process of sigkill_under_load_keeps_every_promise"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let round: u64 = std::env::var(ROUND_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let broker = Broker::open_with(&dir, options()).await.unwrap();
        let settings = Settings { visibility_timeout_ms: 200, max_deliveries: 0, ..Settings::default() };
        match broker.create_queue("q", "test", settings).await {
            Ok(()) | Err(Error::AlreadyExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        say("READY".into());
        let mut tasks = Vec::new();
        for p in 0..4 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let body = format!("r{round}-p{p}-n{n}");
                    broker.publish("q", None, vec![NewMessage::new(body.clone())]).await.unwrap();
                    say(format!("PUB {body}"));
                }
            }));
        }
        for _ in 0..2 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let request = ReceiveRequest { max: 8, ..ReceiveRequest::default() };
                    let got = broker.receive("q", None, request, Duration::from_millis(100)).await.unwrap();
                    for m in &got {
                        say(format!("RECV {}", String::from_utf8_lossy(&m.message.body)));
                    }
                    let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
                    let results = broker.ack("q", None, &leases).await.unwrap();
                    for (m, r) in got.iter().zip(results) {
                        if r.is_ok() {
                            say(format!("ACK {}", String::from_utf8_lossy(&m.message.body)));
                        }
                    }
                }
            }));
        }
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    });
}

/// Receives and acks everything left in the queue (bounded), returning the bodies.
async fn drain(broker: &Broker) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..200 {
        if broker.describe("q").unwrap().stats.depth == 0 {
            return bodies;
        }
        let request = ReceiveRequest { max: 100, ..ReceiveRequest::default() };
        let got = broker.receive("q", None, request, Duration::from_millis(300)).await.unwrap();
        let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
        for r in broker.ack("q", None, &leases).await.unwrap() {
            r.unwrap();
        }
        bodies.extend(got.iter().map(|m| String::from_utf8_lossy(&m.message.body).into_owned()));
    }
    panic!("the queue did not drain: {:?}", broker.describe("q").unwrap().stats);
}

#[test]
fn sigkill_under_load_keeps_every_promise() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut rng = rand::thread_rng();
    let (mut published, mut delivered, mut acked) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut busy_rounds = 0;
    for round in 0..ROUNDS {
        let round_env = round.to_string();
        let env = [(CHILD_ENV, dir.path().as_os_str()), (ROUND_ENV, std::ffi::OsStr::new(&round_env))];
        let child = LineChild::self_test("crash_child", &env);
        child.wait_for("READY", Duration::from_secs(60)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..250)));
        let lines = child.kill(); // SIGKILL

        let (mut pubs, mut acks) = (0, 0);
        for line in lines {
            let line = line.trim_start_matches(|c| c != 'P' && c != 'R' && c != 'A').to_string();
            if let Some(b) = line.strip_prefix("PUB ") {
                published.insert(b.to_string());
                pubs += 1;
            } else if let Some(b) = line.strip_prefix("RECV ") {
                assert!(!acked.contains(b), "round {round}: {b} was delivered again after its ack was acknowledged");
                delivered.insert(b.to_string());
            } else if let Some(b) = line.strip_prefix("ACK ") {
                acked.insert(b.to_string());
                acks += 1;
            }
        }
        if pubs > 0 && acks > 0 {
            busy_rounds += 1;
        }

        rt.block_on(async {
            let broker = Broker::open_with(dir.path(), options()).await.unwrap();
            for body in drain(&broker).await {
                assert!(!acked.contains(&body), "round {round}: {body} came back after its ack was acknowledged");
                delivered.insert(body.clone());
                acked.insert(body);
            }
            let lost: Vec<&String> = published.difference(&delivered).collect();
            assert!(lost.is_empty(), "round {round}: acknowledged publishes lost: {lost:?}");
            broker.close().await.unwrap();
        });
    }
    assert!(busy_rounds > ROUNDS / 2, "only {busy_rounds} of {ROUNDS} kills landed while messages flowed");
}
