//! Durability through the server: publishers and consumers work over HTTP while `ferry
//! serve` is SIGKILLed at random moments, 20 times. Every publish that got its 201 must be
//! delivered in the end, and no message whose ack got its 200 may be delivered again.

use ferry_testkit::LineChild;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const PASSWORD: &str = "crash-password-1";
const ROUNDS: usize = 20;
const PUBLISHERS: usize = 2;

fn start(data: &std::path::Path) -> (LineChild, String) {
    let port = ferry_testkit::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--grpc", "127.0.0.1:0", "--http", &format!("127.0.0.1:{port}"), "--data"]).arg(data);
    cmd.env_remove("FERRY_HTTP").env_remove("FERRY_DATA").env("FERRY_ADMIN_PASSWORD", PASSWORD);
    let child = LineChild::spawn(cmd);
    child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    (child, format!("http://127.0.0.1:{port}"))
}

/// A request; `None` when the server is gone (connection refused or reset, no answer).
fn call(url: &str, token: &str, body: Value) -> Option<(u16, Value)> {
    let req = ureq::post(url).timeout(Duration::from_secs(10)).set("Authorization", &format!("Bearer {token}"));
    let resp = match req.send_json(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(_)) => return None,
    };
    let status = resp.status();
    let value = resp.into_json().ok()?;
    Some((status, value))
}

#[derive(Default)]
struct Ledger {
    /// Bodies whose publish was answered 201.
    published: BTreeSet<String>,
    /// Bodies whose ack was answered ok.
    acked: HashSet<String>,
    /// Bodies whose ack was sent when the server died: it may or may not have been applied.
    ack_unknown: HashSet<String>,
    /// What must never happen, described.
    violations: Vec<String>,
}

impl Ledger {
    /// Whether an acknowledged publish has been neither acked nor possibly acked: lost, if
    /// the drain cannot find it.
    fn gone(&self, body: &str) -> bool {
        !self.acked.contains(body) && !self.ack_unknown.contains(body)
    }
}

/// Receives and acks until the server goes away; returns the bodies it saw.
fn consume(base: &str, key: &str, ledger: &Mutex<Ledger>, wait_ms: u64, until: Option<Instant>) -> usize {
    let mut seen = 0;
    loop {
        if until.is_some_and(|u| Instant::now() >= u) {
            return seen;
        }
        let Some((200, got)) =
            call(&format!("{base}/v1/queues/work/receive"), key, json!({"max": 20, "wait_ms": wait_ms}))
        else {
            return seen;
        };
        let msgs = got["messages"].as_array().cloned().unwrap_or_default();
        if msgs.is_empty() && until.is_none() {
            continue;
        }
        let mut leases = Vec::new();
        let mut bodies = Vec::new();
        for m in &msgs {
            let body = m["body"].as_str().unwrap_or_default().to_string();
            if ledger.lock().unwrap().acked.contains(&body) {
                ledger.lock().unwrap().violations.push(format!("{body} was delivered again after its ack"));
            }
            leases.push(m["lease"].as_u64().unwrap_or(0));
            bodies.push(body);
        }
        seen += bodies.len();
        if leases.is_empty() {
            continue;
        }
        let Some((200, settled)) = call(&format!("{base}/v1/queues/work/ack"), key, json!({"leases": leases})) else {
            ledger.lock().unwrap().ack_unknown.extend(bodies);
            return seen;
        };
        let mut ledger = ledger.lock().unwrap();
        for (body, result) in bodies.into_iter().zip(settled["results"].as_array().cloned().unwrap_or_default()) {
            if result["ok"] == true {
                ledger.acked.insert(body);
            }
        }
    }
}

#[test]
fn acknowledged_work_survives_sigkill_of_the_server() {
    let data = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::thread_rng();

    // Set up once: the queue, and an API key (cheap to check, unlike a password login).
    let (server, base) = start(data.path());
    let login = ureq::post(&format!("{base}/v1/auth/token"))
        .timeout(Duration::from_secs(30))
        .send_json(json!({"username": "admin", "password": PASSWORD}))
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    let (status, _) = call(
        &format!("{base}/v1/queues"),
        &token,
        json!({"name": "work", "settings": {"visibility_timeout_ms": 1000}}),
    )
    .unwrap();
    assert_eq!(status, 201);
    let (status, made) = call(&format!("{base}/v1/apikeys"), &token, json!({"label": "crash"})).unwrap();
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    server.kill();

    for round in 0..ROUNDS {
        let (server, base) = start(data.path());
        let mut workers = Vec::new();
        for p in 0..PUBLISHERS {
            let (base, key, ledger) = (base.clone(), key.clone(), ledger.clone());
            workers.push(thread::spawn(move || {
                for i in 0.. {
                    let body = format!("r{round}-p{p}-{i}");
                    match call(&format!("{base}/v1/queues/work/messages"), &key, json!({"body": body})) {
                        Some((201, _)) => {
                            ledger.lock().unwrap().published.insert(body);
                        }
                        _ => return,
                    }
                }
            }));
        }
        {
            let (base, key, ledger) = (base.clone(), key.clone(), ledger.clone());
            workers.push(thread::spawn(move || {
                consume(&base, &key, &ledger, 50, None);
            }));
        }
        thread::sleep(Duration::from_millis(rng.gen_range(150..700)));
        server.kill(); // SIGKILL, mid-traffic
        for w in workers {
            w.join().unwrap();
        }
    }

    // Restart once more and drain: every acknowledged publish must be there or acked.
    let (server, base) = start(data.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = {
            let l = ledger.lock().unwrap();
            l.published.iter().filter(|b| l.gone(b)).count()
        };
        if missing == 0 || Instant::now() >= deadline {
            break;
        }
        // Leases taken before the last kill expire after the visibility timeout (1 s).
        consume(&base, &key, &ledger, 1000, Some(Instant::now() + Duration::from_secs(2)));
    }
    server.kill();

    let l = ledger.lock().unwrap();
    eprintln!(
        "{ROUNDS} kills: {} publishes acknowledged, {} acks acknowledged, {} acks cut off",
        l.published.len(),
        l.acked.len(),
        l.ack_unknown.len()
    );
    // Only the acks in flight at a kill can be uncertain: one batch per kill at most.
    assert!(l.ack_unknown.len() <= ROUNDS * 20, "{}", l.ack_unknown.len());
    assert!(l.published.len() > ROUNDS, "the publishers got work through: {}", l.published.len());
    let lost: Vec<&String> = l.published.iter().filter(|b| l.gone(b)).take(10).collect();
    assert!(lost.is_empty(), "acknowledged publishes lost: {lost:?} (of {})", l.published.len());
    assert!(l.violations.is_empty(), "{:?}", &l.violations[..l.violations.len().min(10)]);
}
