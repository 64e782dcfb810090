//! `ferry serve` as a user meets it: a real server process on a free loopback port, driven
//! with a real HTTP client (ureq).

use ferry_testkit::LineChild;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "test-password-1";

struct Served {
    child: LineChild,
    url: String,
    _dir: tempfile::TempDir,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    serve_on(dir, &[])
}

fn serve_on(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Served {
    let (child, url) = start(dir.path(), env);
    Served { child, url, _dir: dir }
}

/// A server on a data directory the test keeps (for restarts).
fn serve_on_path(path: &std::path::Path) -> Served {
    let (child, url) = start(path, &[]);
    Served { child, url, _dir: tempfile::tempdir().unwrap() }
}

/// Starts `ferry serve` on a free port and waits (bounded) until it listens.
fn start(data: &std::path::Path, env: &[(&str, &str)]) -> (LineChild, String) {
    let port = ferry_testkit::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--grpc", "127.0.0.1:0", "--http", &format!("127.0.0.1:{port}"), "--data"]).arg(data);
    cmd.env_remove("FERRY_HTTP").env_remove("FERRY_DATA").env("FERRY_ADMIN_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = LineChild::spawn(cmd);
    child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    (child, format!("http://127.0.0.1:{port}"))
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl Served {
    fn token(&self, user: &str, password: &str) -> String {
        let (status, body) = call(
            "POST",
            &format!("{}/v1/auth/token", self.url),
            None,
            Some(json!({"username": user, "password": password})),
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    fn admin(&self) -> String {
        self.token("admin", PASSWORD)
    }

    fn v1(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        call(method, &format!("{}/v1{path}", self.url), Some(token), body)
    }
}

#[test]
fn health_and_authentication_come_first() {
    let s = serve();
    assert_eq!(call("GET", &format!("{}/healthz", s.url), None, None).0, 200);
    assert_eq!(call("GET", &format!("{}/readyz", s.url), None, None).0, 200);
    // Every /v1 resource, known or not, needs a token before anything else is looked at.
    for (method, path) in
        [("GET", "/v1/queues"), ("POST", "/v1/queues"), ("GET", "/v1/nothing-here"), ("DELETE", "/v1/topics/x")]
    {
        let (status, body) = call(method, &format!("{}{path}", s.url), None, None);
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, _) = call("GET", &format!("{}/v1/queues", s.url), Some("garbage"), None);
    assert_eq!(status, 401);
    let login = |u: &str, p: &str| {
        call("POST", &format!("{}/v1/auth/token", s.url), None, Some(json!({"username": u, "password": p})))
    };
    assert_eq!(login("admin", "wrong").0, 401);
    assert_eq!(login("nobody", PASSWORD).0, 401);
    assert_eq!(login("", "").0, 422);
    let t = s.admin();
    assert_eq!(s.v1("GET", "/queues", &t, None), (200, json!([])));
}

#[test]
fn a_queue_from_creation_to_deletion() {
    let s = serve();
    let t = s.admin();
    let (status, q) = s.v1(
        "POST",
        "/queues",
        &t,
        Some(json!({"name": "jobs", "settings": {"visibility_timeout_ms": 200, "max_deliveries": 2}})),
    );
    assert_eq!(status, 201, "{q}");
    assert_eq!(
        (q["name"].as_str(), q["kind"].as_str(), q["owner"].as_str()),
        (Some("jobs"), Some("queue"), Some("admin"))
    );
    assert_eq!(s.v1("POST", "/queues", &t, Some(json!({"name": "jobs"}))).0, 409);
    assert_eq!(s.v1("POST", "/queues", &t, Some(json!({"name": "bad name"}))).0, 400);
    assert_eq!(s.v1("POST", "/queues", &t, Some(json!({"name": "x", "settings": {"max_bytes": 5}}))).0, 422);

    // Publish one and a batch; priorities order delivery.
    let (status, p) = s.v1("POST", "/queues/jobs/messages", &t, Some(json!({"body": "low", "headers": {"k": "v"}})));
    assert_eq!(status, 201, "{p}");
    let batch = json!([{"body": "high", "priority": 9}, {"body_base64": "//4=", "priority": 5}]);
    assert_eq!(s.v1("POST", "/queues/jobs/messages", &t, Some(batch)).0, 201);
    let (_, got) = s.v1("POST", "/queues/jobs/receive", &t, Some(json!({"max": 10})));
    let msgs = got["messages"].as_array().unwrap();
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body_base64"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["aGlnaA==", "//4=", "bG93"]);
    assert_eq!(msgs[2]["headers"]["k"], "v");
    assert_eq!(msgs[1]["body"], Value::Null, "not UTF-8: base64 only");

    // Ack one, nack one, let one expire: it comes back with a higher delivery count.
    let lease = |i: usize| msgs[i]["lease"].as_u64().unwrap();
    let (_, acked) = s.v1("POST", "/queues/jobs/ack", &t, Some(json!({"leases": [lease(0), 999_999]})));
    assert_eq!(acked["results"][0]["ok"], true);
    assert_eq!(acked["results"][1]["error"]["code"], "unknown_lease");
    assert_eq!(s.v1("POST", "/queues/jobs/nack", &t, Some(json!({"leases": [lease(1)]}))).1["results"][0]["ok"], true);
    let (_, again) = s.v1("POST", "/queues/jobs/receive", &t, Some(json!({"max": 10, "wait_ms": 5000})));
    let again = again["messages"].as_array().unwrap().clone();
    assert!(!again.is_empty());
    assert!(again.iter().all(|m| m["delivery_count"] == 2), "{again:?}");

    // Settings change in place; bad ones are refused and change nothing.
    let (status, changed) = s.v1("PATCH", "/queues/jobs", &t, Some(json!({"max_deliveries": 7})));
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["settings"]["max_deliveries"].as_u64(), changed["settings"]["visibility_timeout_ms"].as_u64()),
        (Some(7), Some(200))
    );
    assert_eq!(s.v1("PATCH", "/queues/jobs", &t, Some(json!({"max_bytes": 9}))).0, 422);
    assert_eq!(s.v1("PATCH", "/queues/jobs", &t, Some(json!({"colour": "red"}))).0, 422);
    assert_eq!(s.v1("PATCH", "/queues/jobs", &t, Some(json!(5))).0, 422);
    assert_eq!(s.v1("GET", "/queues/jobs", &t, None).1["settings"]["max_deliveries"], 7);

    // Peek, describe, purge, delete.
    assert_eq!(s.v1("GET", "/queues/jobs/peek?max=5", &t, None).1["messages"].as_array().unwrap().len(), 2);
    let (_, d) = s.v1("GET", "/queues/jobs", &t, None);
    assert_eq!(d["stats"]["acked"], 1);
    assert_eq!(s.v1("POST", "/queues/jobs/purge", &t, None).0, 204);
    assert_eq!(s.v1("GET", "/queues/jobs", &t, None).1["stats"]["depth"], 0);
    assert_eq!(s.v1("DELETE", "/queues/jobs", &t, None).0, 204);
    assert_eq!(s.v1("GET", "/queues/jobs", &t, None).0, 404);
}

#[test]
fn redelivery_dead_letters_delay_and_dedup() {
    let s = serve();
    let t = s.admin();
    s.v1(
        "POST",
        "/queues",
        &t,
        Some(json!({"name": "q", "settings": {"visibility_timeout_ms": 100, "max_deliveries": 1}})),
    );
    s.v1("POST", "/queues/q/messages", &t, Some(json!({"body": "once"})));
    let (_, got) = s.v1("POST", "/queues/q/receive", &t, Some(json!({})));
    assert_eq!(got["messages"][0]["body"], "once");
    // Not acked: when its lease runs out, after its one delivery, it moves to q.dlq (made on
    // first use) with the reason, with no consumer needed on q to make that happen.
    let mut made = false;
    for _ in 0..200 {
        if s.v1("GET", "/queues/q.dlq", &t, None).0 == 200 {
            made = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(made, "q.dlq never appeared");
    assert_eq!(s.v1("GET", "/queues/q", &t, None).1["stats"]["dead_lettered"], 1);
    let (_, dead) = s.v1("POST", "/queues/q.dlq/receive", &t, Some(json!({"wait_ms": 10000})));
    assert_eq!(dead["messages"][0]["body"], "once", "{dead}");
    assert!(dead["messages"][0]["dead_letter_reason"].as_str().unwrap().contains("delivered 1 times"));

    s.v1("POST", "/queues", &t, Some(json!({"name": "later"})));
    s.v1(
        "POST",
        "/queues/later/messages",
        &t,
        Some(json!([{"body": "d", "delay_ms": 300, "dedup_id": "x"}, {"body": "dup", "dedup_id": "x"}])),
    );
    let (_, now) = s.v1("POST", "/queues/later/receive", &t, Some(json!({"max": 10})));
    assert_eq!(now["messages"], json!([]), "delayed, and the duplicate was not stored");
    let (_, soon) = s.v1("POST", "/queues/later/receive", &t, Some(json!({"max": 10, "wait_ms": 10000})));
    assert_eq!(soon["messages"][0]["body"], "d");
}

#[test]
fn topics_and_subscriptions() {
    let s = serve();
    let t = s.admin();
    assert_eq!(s.v1("POST", "/topics", &t, Some(json!({"name": "orders"}))).0, 201);
    s.v1("POST", "/topics/orders/messages", &t, Some(json!({"body": "before", "subject": "orders.1.paid"})));
    let sub = |name: &str, extra: Value| {
        let mut body = json!({"name": name});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s.v1("POST", "/topics/orders/subscriptions", &t, Some(body))
    };
    assert_eq!(sub("all", json!({"start": "earliest"})).0, 201);
    assert_eq!(sub("paid", json!({"start": "earliest", "filter": "orders.*.paid"})).0, 201);
    assert_eq!(sub("new", json!({})).0, 201);
    assert_eq!(sub("all", json!({})).0, 409);
    assert_eq!(sub("mom.alice", json!({})).1["error"]["code"], "reserved_name", "the MOM API's names");
    s.v1("POST", "/topics/orders/messages", &t, Some(json!({"body": "after", "subject": "orders.2.sent"})));
    let recv = |sub: &str| {
        let (status, body) =
            s.v1("POST", &format!("/topics/orders/subscriptions/{sub}/receive"), &t, Some(json!({"max": 10})));
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(recv("all"), ["before", "after"]);
    assert_eq!(recv("paid"), ["before"]);
    assert_eq!(recv("new"), ["after"]);
    let (_, subs) = s.v1("GET", "/topics/orders/subscriptions", &t, None);
    assert_eq!(subs["subscriptions"]["all"]["in_flight"], 2);
    assert_eq!(s.v1("POST", "/topics/orders/subscriptions/all/seek", &t, Some(json!({"to": "earliest"}))).0, 204);
    assert_eq!(recv("all"), ["before", "after"]);
    assert_eq!(s.v1("POST", "/topics/orders/subscriptions/none/receive", &t, Some(json!({}))).0, 404);
    assert_eq!(s.v1("DELETE", "/topics/orders/subscriptions/new", &t, None).0, 204);
    assert_eq!(s.v1("GET", "/queues/orders", &t, None).0, 404, "a topic is not a queue");
}

#[test]
fn bad_requests_get_the_right_status_and_change_nothing() {
    let s = serve_on(tempfile::tempdir().unwrap(), &[]);
    let t = s.admin();
    s.v1("POST", "/queues", &t, Some(json!({"name": "q", "settings": {"max_message_size": 16}})));
    let raw = |body: &str| {
        let r = ureq::post(&format!("{}/v1/queues/q/messages", s.url))
            .set("Authorization", &format!("Bearer {t}"))
            .send_string(body);
        match r {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(raw("{not json"), 400);
    assert_eq!(raw(r#"{"body": 5}"#), 422);
    assert_eq!(raw(r#"{"body": "x", "body_base64": "eA=="}"#), 422);
    assert_eq!(raw("[]"), 422);
    assert_eq!(raw(r#"{"body": "this is longer than sixteen bytes"}"#), 413);
    assert_eq!(s.v1("POST", "/queues/q/receive", &t, Some(json!({"max": 0}))).0, 422);
    assert_eq!(s.v1("POST", "/queues/q/receive", &t, Some(json!({"wait_ms": 999_999_999}))).0, 422);
    assert_eq!(s.v1("POST", "/queues/q/ack", &t, Some(json!({"leases": []}))).0, 422);
    assert_eq!(s.v1("GET", "/queues/q/peek?max=0", &t, None).0, 422);
    assert_eq!(s.v1("GET", "/queues/q", &t, None).1["stats"]["published"], 0);
}

#[test]
fn data_survives_a_restart_and_the_server_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("data");
    let mut s = serve_on_path(&keep);
    let t = s.admin();
    s.v1("POST", "/queues", &t, Some(json!({"name": "kept"})));
    s.v1("POST", "/queues/kept/messages", &t, Some(json!({"body": "still here"})));
    let status = Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = s.child.wait_exit(Duration::from_secs(30)).expect("ferry serve stopped on SIGTERM");
    assert!(exit.success(), "{exit:?}");

    // A different FERRY_ADMIN_PASSWORD on a later start changes nothing: the admin from the
    // first start is still there, with its password.
    let (child, url) = start(&keep, &[("FERRY_ADMIN_PASSWORD", "another-password")]);
    let s2 = Served { child, url, _dir: tempfile::tempdir().unwrap() };
    let t = s2.admin();
    let (_, got) = s2.v1("POST", "/queues/kept/receive", &t, Some(json!({})));
    assert_eq!(got["messages"][0]["body"], "still here");
}

#[test]
fn print_config_and_invalid_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--print-config"])
        .env("FERRY_ADMIN_PASSWORD", "do-not-print-me")
        .env_remove("FERRY_HTTP")
        .env_remove("FERRY_DATA")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("http = \"127.0.0.1:8080\""), "{text}");
    assert!(!text.contains("do-not-print-me"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ferry.toml");
    std::fs::write(&bad, "[limits]\nmax_body_bytes = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--config"])
        .arg(&bad)
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.max_body_bytes"));
}

#[test]
fn users_permissions_and_ownership() {
    let s = serve();
    let admin = s.admin();
    for name in ["orders.x", "other"] {
        assert_eq!(s.v1("POST", "/queues", &admin, Some(json!({"name": name}))).0, 201);
    }
    let perms = json!({"publish": ["orders.*"], "consume": ["orders.*"], "manage": ["alice.*"]});
    let (status, user) =
        s.v1("PUT", "/users/alice", &admin, Some(json!({"password": "alice-password", "permissions": perms})));
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["role"], "user");
    assert_eq!(s.v1("PUT", "/users/bob", &admin, Some(json!({"password": "short"}))).0, 422);
    let alice = s.token("alice", "alice-password");

    // What alice may do.
    assert_eq!(s.v1("POST", "/queues", &alice, Some(json!({"name": "alice.q"}))).0, 201);
    assert_eq!(s.v1("POST", "/queues/orders.x/messages", &alice, Some(json!({"body": "hi"}))).0, 201);
    assert_eq!(s.v1("POST", "/queues/orders.x/receive", &alice, Some(json!({}))).1["messages"][0]["body"], "hi");
    assert_eq!(s.v1("DELETE", "/queues/alice.q", &alice, None).0, 204, "she owns it");

    // What she may not, each a 403 that changes nothing.
    let forbidden = [
        ("POST", "/queues", Some(json!({"name": "bob.q"}))),
        ("POST", "/queues/other/messages", Some(json!({"body": "no"}))),
        ("POST", "/queues/other/receive", Some(json!({}))),
        ("GET", "/queues/other/peek", None),
        ("POST", "/queues/orders.x/purge", None),
        ("DELETE", "/queues/orders.x", None),
        ("GET", "/users", None),
        ("PUT", "/users/alice/permissions", Some(json!({"publish": ["*"]}))),
    ];
    for (method, path, body) in forbidden {
        let (status, err) = s.v1(method, path, &alice, body);
        assert_eq!(status, 403, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], "forbidden");
    }
    assert_eq!(s.v1("GET", "/queues/other", &admin, None).1["stats"]["published"], 0);
    assert_eq!(s.v1("GET", "/queues/bob.q", &admin, None).0, 404);

    // Admins see and change users; changes apply to live tokens at once.
    let (_, users) = s.v1("GET", "/users", &admin, None);
    assert_eq!(users["users"].as_array().unwrap().len(), 2);
    assert_eq!(s.v1("PUT", "/users/alice/permissions", &admin, Some(json!({"publish": ["*"]}))).0, 200);
    assert_eq!(s.v1("POST", "/queues/other/messages", &alice, Some(json!({"body": "now"}))).0, 201);
    assert_eq!(s.v1("DELETE", "/users/admin", &admin, None).0, 409, "the last admin stays");
    assert_eq!(s.v1("DELETE", "/users/alice", &admin, None).0, 204);
    assert_eq!(s.v1("GET", "/queues", &alice, None).0, 401, "a deleted user's token stops working");
    assert_eq!(s.v1("DELETE", "/users/alice", &admin, None).0, 404);
}

#[test]
fn server_sent_events_stream_messages_with_leases() {
    use std::io::BufRead;
    let s = serve();
    let t = s.admin();
    s.v1("POST", "/queues", &t, Some(json!({"name": "live"})));
    assert_eq!(s.v1("GET", "/queues/nope/stream", &t, None).0, 404, "errors come before the stream starts");
    let url = format!("{}/v1/queues/live/stream?batch=2", s.url);
    let auth = format!("Bearer {t}");
    let reader = std::thread::spawn(move || {
        let resp = ureq::get(&url).set("Authorization", &auth).timeout(Duration::from_secs(30)).call().unwrap();
        assert_eq!(resp.header("content-type"), Some("text/event-stream"));
        let mut events = Vec::new();
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let line = line.unwrap();
            if let Some(data) = line.strip_prefix("data: ") {
                events.push(serde_json::from_str::<Value>(data).unwrap());
                if events.len() == 3 {
                    break; // hanging up ends the stream
                }
            }
        }
        events
    });
    for body in ["one", "two", "three"] {
        s.v1("POST", "/queues/live/messages", &t, Some(json!({"body": body})));
    }
    let events = reader.join().unwrap();
    let bodies: Vec<&str> = events.iter().map(|e| e["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    let leases: Vec<u64> = events.iter().map(|e| e["lease"].as_u64().unwrap()).collect();
    let (_, acked) = s.v1("POST", "/queues/live/ack", &t, Some(json!({"leases": leases})));
    assert!(acked["results"].as_array().unwrap().iter().all(|r| r["ok"] == true), "{acked}");
}

#[test]
fn prometheus_metrics() {
    let s = serve();
    let t = s.admin();
    s.v1("POST", "/queues", &t, Some(json!({"name": "jobs"})));
    s.v1("POST", "/queues/jobs/messages", &t, Some(json!([{"body": "a"}, {"body": "b"}])));
    s.v1("POST", "/queues/jobs/receive", &t, Some(json!({})));
    let (status, text) = call("GET", &format!("{}/metrics", s.url), None, None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    for expected in [
        r#"ferry_destination_depth{destination="jobs",kind="queue"} 2"#,
        r#"ferry_destination_in_flight{destination="jobs",kind="queue"} 1"#,
        r#"ferry_destination_published_total{destination="jobs",kind="queue"} 2"#,
        r#"ferry_http_requests_total{method="POST",route="/v1/queues/{name}/messages",status="201"} 1"#,
        "ferry_http_request_seconds_bucket",
        r#"ferry_log_fsync_seconds_bucket{le="+Inf"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    // Creating the queue and publishing were durable, so the log synced at least twice.
    let syncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ferry_log_fsync_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fsync count in:\n{text}"));
    assert!(syncs >= 2, "{syncs}");
}

#[test]
fn metrics_can_be_kept_for_admins() {
    let s = serve_on(tempfile::tempdir().unwrap(), &[("FERRY_METRICS_PUBLIC", "false")]);
    let url = format!("{}/metrics", s.url);
    let t = s.admin();
    let (status, body) = s.v1("PUT", "/users/watcher", &t, Some(json!({"password": "watcher-pass-1"})));
    assert!(status == 200 || status == 201, "{status} {body}");
    let user = s.token("watcher", "watcher-pass-1");
    assert_eq!(call("GET", &url, None, None).0, 401);
    assert_eq!(call("GET", &url, Some("not-a-token"), None).0, 401);
    assert_eq!(call("GET", &url, Some(&user), None).0, 403);
    let (status, text) = call("GET", &url, Some(&t), None);
    assert_eq!(status, 200);
    assert!(text.as_str().unwrap().contains("ferry_http_requests_total"));
}

#[test]
fn repeated_failed_logins_are_locked_out() {
    let s = serve();
    let login = |p: &str| {
        call("POST", &format!("{}/v1/auth/token", s.url), None, Some(json!({"username": "admin", "password": p}))).0
    };
    for _ in 0..5 {
        assert_eq!(login("wrong-guess"), 401);
    }
    // Locked now: even the right password is refused until the lockout passes.
    assert_eq!(login(PASSWORD), 429);
    let (_, body) =
        call("POST", &format!("{}/v1/auth/token", s.url), None, Some(json!({"username": "admin", "password": "x"})));
    assert_eq!(body["error"]["code"], "too_many_failed_logins");
}

#[test]
fn api_keys_act_as_their_owner() {
    let s = serve();
    let admin = s.admin();
    let perms = json!({"publish": ["svc.*"], "consume": ["svc.*"]});
    s.v1("PUT", "/users/svc", &admin, Some(json!({"password": "svc-password", "permissions": perms})));
    s.v1("POST", "/queues", &admin, Some(json!({"name": "svc.in"})));
    let user = s.token("svc", "svc-password");
    let (status, made) = s.v1("POST", "/apikeys", &user, Some(json!({"label": "worker"})));
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    let id = made["info"]["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("fk_"));

    // The key works like the user's token, with the user's permissions.
    assert_eq!(s.v1("POST", "/queues/svc.in/messages", &key, Some(json!({"body": "k"}))).0, 201);
    assert_eq!(s.v1("POST", "/queues", &key, Some(json!({"name": "other"}))).0, 403);
    let (_, mine) = s.v1("GET", "/apikeys", &user, None);
    assert_eq!(mine["apikeys"][0]["label"], "worker");
    assert!(mine["apikeys"][0].get("key").is_none(), "the key itself is never shown again");
    // A wrong secret with a real id is refused; so is the key once deleted.
    let forged = format!("fk_{id}_{}", "x".repeat(40));
    assert_eq!(s.v1("GET", "/queues", &forged, None).0, 401);
    assert_eq!(s.v1("DELETE", &format!("/apikeys/{id}"), &user, None).0, 204);
    assert_eq!(s.v1("GET", "/queues", &key, None).0, 401);
    assert_eq!(s.v1("DELETE", &format!("/apikeys/{id}"), &admin, None).0, 404);
}

#[test]
fn websocket_streams_with_credits_and_settles() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let s = serve();
    let t = s.admin();
    s.v1("POST", "/queues", &t, Some(json!({"name": "w"})));
    for i in 0..5 {
        s.v1("POST", "/queues/w/messages", &t, Some(json!({"body": format!("m{i}")})));
    }
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // Errors come before the upgrade, with their status codes.
        let mut req = format!("ws://127.0.0.1:{port}/v1/queues/missing/ws").into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        match tokio_tungstenite::client_async(req, tcp).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
            other => panic!("expected a 404, got {other:?}"),
        }
        let url = format!("ws://127.0.0.1:{port}/v1/queues/w/ws?credit=2");
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
        // Two credits: two messages, then nothing until more credit comes.
        let a = next_json(&mut ws).await.unwrap();
        let b = next_json(&mut ws).await.unwrap();
        assert_eq!((a["body"].as_str(), b["body"].as_str()), (Some("m0"), Some("m1")));
        let quiet = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
        assert!(quiet.is_err(), "no credit, no message: {quiet:?}");
        ws.send(Message::Text(json!({"ack": [a["lease"], b["lease"]]}).to_string().into())).await.unwrap();
        let settled = loop {
            let v = next_json(&mut ws).await.unwrap();
            if v["type"] == "settled" {
                break v;
            }
        };
        assert_eq!(settled["results"], json!([{"ok": true}, {"ok": true}]));
        ws.send(Message::Text(json!({"credit": 3}).to_string().into())).await.unwrap();
        let mut bodies = Vec::new();
        while bodies.len() < 3 {
            let v = next_json(&mut ws).await.unwrap();
            if v["type"] == "message" {
                bodies.push(v["body"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(bodies, ["m2", "m3", "m4"]);
        ws.close(None).await.unwrap();
    });
    assert_eq!(s.v1("GET", "/queues/w", &t, None).1["stats"]["acked"], 2);
}

/// The next text frame as JSON, waiting at most 10 s.
async fn next_json<S>(ws: &mut S) -> Option<Value>
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.ok()??.ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            return serde_json::from_str(&t).ok();
        }
    }
}

#[test]
fn requests_beyond_the_rate_limit_get_429() {
    let s = serve_on(tempfile::tempdir().unwrap(), &[("FERRY_REQUESTS_PER_SECOND", "1")]);
    let t = s.admin();
    // A burst of 2 passes; more right after are refused, with Retry-After. (Five requests,
    // so that even a slow machine, refilling one a second, runs out.)
    let statuses: Vec<u16> = (0..5).map(|_| s.v1("GET", "/queues", &t, None).0).collect();
    assert_eq!(statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let retry_after = (0..10).find_map(|_| {
        match ureq::get(&format!("{}/v1/queues", s.url)).set("Authorization", &format!("Bearer {t}")).call() {
            Err(ureq::Error::Status(429, r)) => Some(r.header("retry-after").map(str::to_string)),
            _ => None,
        }
    });
    assert!(matches!(retry_after, Some(Some(_))), "a 429 carries Retry-After: {retry_after:?}");
}

#[test]
fn the_openapi_document_describes_every_route_it_is_served_with() {
    let s = serve();
    let t = s.admin();
    assert_eq!(call("GET", &format!("{}/v1/openapi.json", s.url), None, None).0, 401);
    let (status, doc) = s.v1("GET", "/openapi.json", &t, None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/auth/token", "post"),
        ("/v1/queues", "post"),
        ("/v1/queues/{name}/receive", "post"),
        ("/v1/topics/{name}/subscriptions/{sub}/seek", "post"),
        ("/v1/users/{name}/permissions", "put"),
        ("/v1/apikeys/{id}", "delete"),
        ("/v1/openapi.json", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["DestinationInfo", "Settings", "MessageIn", "MessageOut", "ErrorBody", "UserInfo", "Permissions"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let receive = &paths["/v1/queues/{name}/receive"]["post"];
    assert_eq!(receive["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Receive");
    assert!(receive["responses"]["401"].is_object() && receive["responses"]["404"].is_object());
    // Every route in the document is served: none falls through to "no such route".
    let mut count = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{name}", "zz-none").replace("{sub}", "zz").replace("{id}", "zz");
            let (status, body) = call(&method.to_uppercase(), &format!("{}{concrete}", s.url), Some(&t), None);
            assert!(
                !(status == 404 && body["error"]["message"] == "no such route"),
                "{method} {path} is documented but not routed"
            );
            count += 1;
        }
    }
    assert!(count >= 43, "{count} operations");
}

#[test]
fn competing_consumers_share_a_queue_and_each_message_goes_to_one() {
    let s = serve();
    let t = s.admin();
    assert_eq!(s.v1("POST", "/queues", &t, Some(json!({"name": "work"}))).0, 201);
    let batch: Vec<Value> = (0..60).map(|i| json!({"body": format!("m{i}")})).collect();
    assert_eq!(s.v1("POST", "/queues/work/messages", &t, Some(Value::Array(batch))).0, 201);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (url, t) = (s.url.clone(), t.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let (status, body) = call(
                        "POST",
                        &format!("{url}/v1/queues/work/receive"),
                        Some(&t),
                        Some(json!({"max": 4, "wait_ms": 200})),
                    );
                    assert_eq!(status, 200, "{body}");
                    let msgs = body["messages"].as_array().unwrap().clone();
                    if msgs.is_empty() {
                        return got;
                    }
                    let leases: Vec<Value> = msgs.iter().map(|m| m["lease"].clone()).collect();
                    let (status, _) =
                        call("POST", &format!("{url}/v1/queues/work/ack"), Some(&t), Some(json!({"leases": leases})));
                    assert_eq!(status, 200);
                    got.extend(msgs.iter().map(|m| m["body"].as_str().unwrap().to_string()));
                }
            })
        })
        .collect();
    let per_consumer: Vec<Vec<String>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    let mut all: Vec<String> = per_consumer.iter().flatten().cloned().collect();
    assert_eq!(all.len(), 60, "every message delivered exactly once");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "no message went to two consumers");
    assert_eq!(s.v1("GET", "/queues/work", &t, None).1["stats"]["depth"], 0);
}
