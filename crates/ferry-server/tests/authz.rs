//! The authorization matrix: every `/v1` route against every kind of caller (no token, a
//! bad token, an expired token, a user without permission, the destination's owner, an
//! admin). Callers without rights get 401 or 403 and change nothing; owners and admins get
//! through.

use ferry_server::auth::Auth;
use ferry_server::{Config, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const PASSWORD: &str = "authz-admin-password";

/// A server on its own runtime thread; stopped when dropped.
struct Running {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { http: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().into(), ..Config::default() };
    config.grpc.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.password = Some(PASSWORD.into());
    config.mom.rate_limits = false;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let server = Server::start(config).await.unwrap();
            addr_tx.send(server.local_addr()).unwrap();
            server
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("the server started");
    Running { addr, dir, stop: Some(stop), thread: Some(thread) }
}

/// One request over a fresh connection; returns the status and the body (empty for
/// streams and upgrades, whose bodies do not end).
fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(t) = token {
        head += &format!("Authorization: Bearer {t}\r\n");
    }
    if path.ends_with("/ws") {
        head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
        head += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    } else {
        head += "Connection: close\r\n";
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    head += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(head.as_bytes()).unwrap();
    // Read the head; the body only when its length is known (streams never end).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "{method} {path}: the connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .and_then(Result::ok);
    let Some(length) = length else { return (status, Value::Null) };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf[head_end..]).to_string();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let (status, body) =
        request(addr, "POST", "/v1/auth/token", None, Some(&json!({"username": user, "password": password})));
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The routes, with `{r}` standing for the caller's own name where each caller needs a
/// target of its own (creations and deletions). `own.*` belongs to the user "owner".
fn routes() -> Vec<(&'static str, String, Option<Value>)> {
    let q = "/v1/queues/own.q";
    let t = "/v1/topics/own.t";
    let s = format!("{t}/subscriptions/s1");
    let leases = json!({"leases": [1], "visibility_ms": 1000});
    vec![
        ("GET", "/v1/queues".into(), None),
        ("POST", "/v1/queues".into(), Some(json!({"name": "own.new-{r}"}))),
        ("GET", q.into(), None),
        ("PATCH", q.into(), Some(json!({"max_deliveries": 5}))),
        ("POST", format!("{q}/messages"), Some(json!({"body": "x"}))),
        ("GET", format!("{q}/peek"), None),
        ("POST", format!("{q}/receive"), Some(json!({}))),
        ("POST", format!("{q}/ack"), Some(leases.clone())),
        ("POST", format!("{q}/nack"), Some(leases.clone())),
        ("POST", format!("{q}/extend"), Some(leases.clone())),
        ("GET", format!("{q}/stream"), None),
        ("GET", format!("{q}/ws"), None),
        ("POST", format!("{q}/purge"), None),
        ("DELETE", "/v1/queues/own.del-{r}".into(), None),
        ("GET", "/v1/topics".into(), None),
        ("POST", "/v1/topics".into(), Some(json!({"name": "own.newt-{r}"}))),
        ("GET", t.into(), None),
        ("PATCH", t.into(), Some(json!({"max_age_ms": 60000}))),
        ("POST", format!("{t}/messages"), Some(json!({"body": "x"}))),
        ("GET", format!("{t}/peek"), None),
        ("POST", format!("{t}/purge"), None),
        ("GET", format!("{t}/subscriptions"), None),
        ("POST", format!("{t}/subscriptions"), Some(json!({"name": "s-{r}"}))),
        ("POST", format!("{s}/receive"), Some(json!({}))),
        ("POST", format!("{s}/ack"), Some(leases.clone())),
        ("POST", format!("{s}/nack"), Some(leases.clone())),
        ("POST", format!("{s}/extend"), Some(leases)),
        ("POST", format!("{s}/seek"), Some(json!({"to": "earliest"}))),
        ("GET", format!("{s}/stream"), None),
        ("GET", format!("{s}/ws"), None),
        ("DELETE", format!("{t}/subscriptions/del-{{r}}"), None),
        ("DELETE", "/v1/topics/own.delt-{r}".into(), None),
        ("GET", "/v1/users".into(), None),
        ("GET", "/v1/users/victim-{r}".into(), None),
        ("PUT", "/v1/users/made-{r}".into(), Some(json!({"password": "made-password-1"}))),
        ("GET", "/v1/users/victim-{r}/permissions".into(), None),
        ("PUT", "/v1/users/victim-{r}/permissions".into(), Some(json!({"publish": ["*"]}))),
        ("DELETE", "/v1/users/victim-{r}".into(), None),
        ("GET", "/v1/apikeys".into(), None),
        ("POST", "/v1/apikeys".into(), Some(json!({"label": "mine"}))),
        ("DELETE", "/v1/apikeys/{key-r}".into(), None),
    ]
}

/// What `role` must get on a route: a status class.
fn expected(role: &str, method: &str, path: &str) -> u16 {
    let users = path.starts_with("/v1/users");
    let keys = path.starts_with("/v1/apikeys");
    let listing = method == "GET" && (path == "/v1/queues" || path == "/v1/topics");
    match role {
        "none" | "bad" | "expired" => 401,
        "stranger" if listing || (keys && method != "DELETE") => 200,
        "stranger" => 403,
        "owner" if users => 403,
        _ => 200, // owner and admin: some 2xx (or 101 for WebSockets)
    }
}

/// What must not change when a caller without rights tries everything.
fn state(addr: SocketAddr, admin: &str) -> Value {
    let get = |path: &str| request(addr, "GET", path, Some(admin), None).1;
    let q = get("/v1/queues/own.q");
    let t = get("/v1/topics/own.t");
    json!({
        "queues": get("/v1/queues").as_array().map(|a| a.iter().map(|d| d["name"].clone()).collect::<Vec<_>>()),
        "topics": get("/v1/topics").as_array().map(|a| a.iter().map(|d| d["name"].clone()).collect::<Vec<_>>()),
        "q": [q["settings"].clone(), q["stats"]["depth"].clone(), q["stats"]["in_flight"].clone()],
        "t": [t["settings"].clone(), t["stats"]["depth"].clone(), t["subscriptions"].as_object().map(|s| s.keys().cloned().collect::<Vec<_>>())],
        "users": get("/v1/users"),
        // Strangers may make keys of their own; the owner's must stay.
        "keys": get("/v1/apikeys")["apikeys"].as_array().map(|a| a.iter().filter(|k| k["owner"] == "owner").count()),
    })
}

#[test]
fn every_route_against_every_kind_of_caller() {
    let server = serve();
    let addr = server.addr;
    let admin = login(addr, "admin", PASSWORD);
    let put_user = |name: &str, perms: Value| {
        let (status, body) = request(
            addr,
            "PUT",
            &format!("/v1/users/{name}"),
            Some(&admin),
            Some(&json!({"password": format!("{name}-password-1"), "permissions": perms})),
        );
        assert!(status == 200 || status == 201, "{status} {body}");
    };
    put_user("owner", json!({"manage": ["own.*"]}));
    put_user("stranger", json!({}));
    let roles = ["none", "bad", "expired", "stranger", "owner", "admin"];
    for r in roles {
        put_user(&format!("victim-{r}"), json!({}));
    }
    let owner = login(addr, "owner", "owner-password-1");
    let stranger = login(addr, "stranger", "stranger-password-1");
    // The expired token is signed with the server's real secret, so only its age is wrong.
    let (auth, _) = Auth::open(server.dir.path(), "admin", Some(PASSWORD), 1800).unwrap();
    let expired = auth.expired_token("owner", 120);

    // The owner's destinations, with one to delete per caller.
    let ok = |(status, body): (u16, Value)| assert!((200..300).contains(&status), "{status} {body}");
    ok(request(addr, "POST", "/v1/queues", Some(&owner), Some(&json!({"name": "own.q"}))));
    ok(request(addr, "POST", "/v1/topics", Some(&owner), Some(&json!({"name": "own.t"}))));
    ok(request(addr, "POST", "/v1/topics/own.t/subscriptions", Some(&owner), Some(&json!({"name": "s1"}))));
    ok(request(addr, "POST", "/v1/queues/own.q/messages", Some(&owner), Some(&json!({"body": "kept"}))));
    let mut keys = std::collections::HashMap::new();
    for r in roles {
        ok(request(addr, "POST", "/v1/queues", Some(&owner), Some(&json!({"name": format!("own.del-{r}")}))));
        ok(request(addr, "POST", "/v1/topics", Some(&owner), Some(&json!({"name": format!("own.delt-{r}")}))));
        let sub = json!({"name": format!("del-{r}")});
        ok(request(addr, "POST", "/v1/topics/own.t/subscriptions", Some(&owner), Some(&sub)));
        let (status, made) = request(addr, "POST", "/v1/apikeys", Some(&owner), Some(&json!({"label": r})));
        assert_eq!(status, 201, "{made}");
        keys.insert(r, made["info"]["id"].as_str().unwrap().to_string());
    }

    let before = state(addr, &admin);
    let mut failures = Vec::new();
    for role in roles {
        let token = match role {
            "none" => None,
            "bad" => Some("not-a-token".to_string()),
            "expired" => Some(expired.clone()),
            "stranger" => Some(stranger.clone()),
            "owner" => Some(owner.clone()),
            _ => Some(admin.clone()),
        };
        if role == "owner" {
            // Everything before this changed nothing.
            assert_eq!(state(addr, &admin), before, "a caller without rights changed something");
            // And a stranger's listings leave out what it may not see.
            let (_, listed) = request(addr, "GET", "/v1/queues", Some(&stranger), None);
            assert_eq!(listed, json!([]), "a stranger sees no queue");
        }
        for (method, path, body) in routes() {
            let path = path.replace("{key-r}", &keys[role]).replace("{r}", role);
            let body = body.map(|b| serde_json::from_str(&b.to_string().replace("{r}", role)).unwrap());
            let (status, answer) = request(addr, method, &path, token.as_deref(), body.as_ref());
            let want = expected(role, method, &path);
            let fine = match want {
                200 => (200..300).contains(&status) || (status == 101 && path.ends_with("/ws")),
                w => status == w,
            };
            if !fine {
                failures.push(format!("{role}: {method} {path} -> {status} (expected {want}) {answer}"));
            }
            if want >= 400 && fine && status != 401 {
                assert_eq!(answer["error"]["code"], "forbidden", "{role}: {method} {path}: {answer}");
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
