//! The MOM-compatible API of `ferry serve` (`/api/v1.0.0/MomServer`) against a real server
//! process on a free loopback port, route by route, as the reference server's own route
//! tests exercise it, quirks included: business failures are 200 with `success: false`,
//! errors are FastAPI's `{"detail"}`, validation errors pydantic's, rate limits slowapi's.
//! Also: its data is ferry's data (`/v1` sees it and vice versa), and it survives a restart.

use ferry_testkit::LineChild;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "test-password-1";
const BASE: &str = "/api/v1.0.0/MomServer";

struct Served {
    child: LineChild,
    url: String,
    data: std::path::PathBuf,
    dir: tempfile::TempDir,
}

/// A server on a fresh data directory, with the MOM rate limits off unless `config` (a TOML
/// text) says otherwise: the functional tests make more requests than the default limits
/// allow per minute.
fn serve() -> Served {
    serve_with("[mom]\nrate_limits = false\n", &[])
}

fn serve_with(config: &str, env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config_file = dir.path().join("ferry.toml");
    std::fs::write(&config_file, config).unwrap();
    let (child, url) = start(&data, &config_file, env);
    Served { child, url, data, dir }
}

/// Starts `ferry serve` on a free port and waits (bounded) until it listens.
fn start(data: &Path, config: &Path, env: &[(&str, &str)]) -> (LineChild, String) {
    let port = ferry_testkit::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--grpc", "127.0.0.1:0", "--http", &format!("127.0.0.1:{port}"), "--config"])
        .arg(config)
        .arg("--data")
        .arg(data);
    for var in ["FERRY_HTTP", "FERRY_DATA", "FERRY_MOM", "FERRY_MOM_RATE_LIMITS", "FERRY_REQUESTS_PER_SECOND"] {
        cmd.env_remove(var);
    }
    cmd.env("FERRY_ADMIN_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = LineChild::spawn(cmd);
    child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    (child, format!("http://127.0.0.1:{port}"))
}

/// An answer: status, JSON body (or the text as a JSON string), and the headers the tests
/// look at.
#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
    location: Option<String>,
    allow: Option<String>,
    retry_after: Option<String>,
}

/// Sends one request, following no redirect. `auth` is the whole `Authorization` value;
/// `body` is sent with `content_type` (JSON when `None`).
fn send(method: &str, url: &str, auth: Option<&str>, body: Option<&str>, content_type: Option<&str>) -> Resp {
    let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(30)).build();
    let mut req = agent.request(method, url);
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    let result = match body {
        Some(b) => req.set("Content-Type", content_type.unwrap_or("application/json")).send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let header = |name: &str| resp.header(name).map(str::to_string);
    let (status, location, allow, retry_after) =
        (resp.status(), header("location"), header("allow"), header("retry-after"));
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp { status, body, location, allow, retry_after }
}

impl Served {
    /// A MOM request with a bearer token (or none) and a JSON body (or none).
    fn mom(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let body = body.map(|b| b.to_string());
        send(method, &format!("{}{BASE}{path}", self.url), auth.as_deref(), body.as_deref(), None)
    }

    /// A MOM operation that answers `{success, message}` with 200.
    fn op(&self, path: &str, token: &str, body: Value) -> (bool, Value) {
        self.op_as("POST", path, token, Some(body))
    }

    fn op_as(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (bool, Value) {
        let r = self.mom(method, path, Some(token), body);
        assert_eq!(r.status, 200, "{method} {path}: {r:?}");
        let success = r.body["success"].as_bool().unwrap_or_else(|| panic!("{path}: no success in {}", r.body));
        (success, r.body["message"].clone())
    }

    fn login(&self, user: &str, password: &str) -> String {
        let r = self.mom("POST", "/login/", None, Some(json!({"username": user, "password": password})));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["token_type"], "Bearer");
        r.body["access_token"].as_str().unwrap().to_string()
    }

    fn admin(&self) -> String {
        self.login("admin", PASSWORD)
    }

    /// Creates a MOM user (role user) and logs it in.
    fn user(&self, admin: &str, name: &str) -> String {
        let r =
            self.mom("PUT", "/admin/users/create/", Some(admin), Some(json!({"username": name, "password": "123"})));
        assert_eq!((r.status, r.body.clone()), (200, json!(format!("User {name} created successfully."))));
        self.login(name, "123")
    }

    fn create(&self, admin: &str, name: &str, kind: &str) -> (bool, Value) {
        self.op_as("PUT", "/admin/queue_topic/create/", admin, Some(json!({"name": name, "type": kind})))
    }

    fn v1(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let r =
            send(method, &format!("{}/v1{path}", self.url), Some(&format!("Bearer {token}")), body.as_deref(), None);
        (r.status, r.body)
    }
}

fn detail(r: &Resp) -> (u16, Value) {
    (r.status, r.body["detail"].clone())
}

#[test]
fn root_login_and_the_protected_routes() {
    // The default rate limits, for the last part.
    let s = serve_with("", &[]);
    let home = s.mom("GET", "/", None, None);
    assert_eq!((home.status, home.body), (200, json!("Welcome to MOM TET API!")));
    // The reference's client asks for the base URL without its slash: a 307 to it.
    let r = send("GET", &format!("{}{BASE}", s.url), None, None, None);
    assert_eq!(r.status, 307);
    assert_eq!(r.location.as_deref(), Some(format!("{}{BASE}/", s.url).as_str()));

    // Login.
    let admin = s.admin();
    let r = s.mom("POST", "/login/", None, Some(json!({"username": "admin", "password": "wrong"})));
    assert_eq!(detail(&r), (401, json!("Invalid username or password")));
    let r = s.mom("POST", "/login/", None, Some(json!({"username": "nobody", "password": PASSWORD})));
    assert_eq!(detail(&r), (401, json!("Invalid username or password")));
    let r = s.mom("POST", "/login/", None, Some(json!({"username": "bob", "password": "x"})));
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"detail": [{"type": "string_too_short", "loc": ["body", "username"],
                               "msg": "String should have at least 5 characters", "input": "bob",
                               "ctx": {"min_length": 5}}]})
        )
    );
    let r = s.mom("POST", "/login/", None, None);
    assert_eq!(
        (r.status, r.body),
        (422, json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]}))
    );
    let r = send("POST", &format!("{}{BASE}/login/", s.url), None, Some("{\"username\": "), None);
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["type"], "json_invalid");
    assert_eq!(r.body["detail"][0]["msg"], "JSON decode error");

    // Protected routes.
    let r = s.mom("GET", "/protected/", Some(&admin), None);
    assert_eq!((r.status, r.body), (200, json!("This is a protected endpoint. Welcome, admin!")));
    let r = s.mom("GET", "/admin/protected/", Some(&admin), None);
    assert_eq!((r.status, r.body), (200, json!("This is the protected admin endpoint. Welcome, admin!")));

    // Unauthorized: no header, another scheme, a bad token, an expired one.
    let url = format!("{}{BASE}/protected/", s.url);
    assert_eq!(detail(&send("GET", &url, None, None, None)), (403, json!("Not authenticated")));
    assert_eq!(detail(&send("GET", &url, Some("Bearer"), None, None)), (403, json!("Not authenticated")));
    let basic = send("GET", &url, Some("Basic YWRtaW46eA=="), None, None);
    assert_eq!(detail(&basic), (403, json!("Invalid authentication credentials")));
    assert_eq!(detail(&send("GET", &url, Some("Bearer garbage"), None, None)), (401, json!("Invalid token")));
    let (auth, _) =
        ferry_server::auth::Auth::open(&s.data, "admin", Some(PASSWORD), 1800).expect("the server's user store");
    let expired = format!("Bearer {}", auth.expired_token("admin", 10));
    assert_eq!(detail(&send("GET", &url, Some(&expired), None, None)), (401, json!("Token has expired")));

    // Forbidden: a user on an admin route.
    let user = s.user(&admin, "noadmin");
    let r = s.mom("GET", "/admin/protected/", Some(&user), None);
    assert_eq!(detail(&r), (403, json!("Forbidden: access denied")));

    // One account, one kind of token: a /v1 token works here, a MOM token on /v1.
    let body = json!({"username": "admin", "password": PASSWORD}).to_string();
    let r = send("POST", &format!("{}/v1/auth/token", s.url), None, Some(&body), None);
    let (status, v1) = (r.status, r.body);
    assert_eq!(status, 200, "{v1}");
    let v1_token = v1["access_token"].as_str().unwrap();
    let r = s.mom("GET", "/protected/", Some(v1_token), None);
    assert_eq!((r.status, r.body), (200, json!("This is a protected endpoint. Welcome, admin!")));
    assert_eq!(s.v1("GET", "/queues", &user, None), (200, json!([])));

    // The default limit of /protected/ is 5 a minute per client; only requests that got
    // past authentication counted (2 so far, above). One more is admin's, two are noadmin's.
    for token in [&admin, &user, &user] {
        assert_eq!(s.mom("GET", "/protected/", Some(token), None).status, 200);
    }
    let r = s.mom("GET", "/protected/", Some(&admin), None);
    assert_eq!((r.status, r.body.clone()), (429, json!({"error": "Rate limit exceeded: 5 per 1 minute"})), "{r:?}");
    assert_eq!(r.retry_after, None);
    // The limit is per path: the admin route has its own count.
    assert_eq!(s.mom("GET", "/admin/protected/", Some(&admin), None).status, 200);
}

#[test]
fn admin_user_management() {
    let s = serve();
    let admin = s.admin();
    let create = |token: Option<&str>, body: Value| s.mom("PUT", "/admin/users/create/", token, Some(body));

    // Create, then the duplicate.
    let user = s.user(&admin, "noadmin");
    let r = create(Some(&admin), json!({"username": "noadmin", "password": "other"}));
    assert_eq!(detail(&r), (403, json!("Username already exists")));
    s.login("noadmin", "123");
    // On /v1 the user is an ordinary user who may publish and consume anything.
    let (status, info) = s.v1("GET", "/users/noadmin", &admin, None);
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["role"], "user");
    assert_eq!(info["permissions"], json!({"publish": ["*"], "consume": ["*"], "manage": []}));

    // Username validation: 5 to 20 characters of [a-zA-Z0-9_-].
    let r = create(Some(&admin), json!({"username": "abc", "password": "x"}));
    assert_eq!((r.status, r.body["detail"][0]["type"].clone()), (422, json!("string_too_short")));
    let r = create(Some(&admin), json!({"username": "a".repeat(21), "password": "x"}));
    assert_eq!(r.body["detail"][0]["type"], "string_too_long");
    let r = create(Some(&admin), json!({"username": "bad user", "password": "x"}));
    assert_eq!(
        r.body,
        json!({"detail": [{"type": "string_pattern_mismatch", "loc": ["body", "username"],
                           "msg": "String should match pattern '^[a-zA-Z0-9_-]+$'", "input": "bad user",
                           "ctx": {"pattern": "^[a-zA-Z0-9_-]+$"}}]})
    );
    let r = create(Some(&admin), json!({"username": "someone"}));
    assert_eq!(
        r.body,
        json!({"detail": [{"type": "missing", "loc": ["body", "password"], "msg": "Field required",
                           "input": {"username": "someone"}}]})
    );
    assert_eq!(s.v1("GET", "/users/someone", &admin, None).0, 404, "nothing was created");

    // Unauthenticated or not an admin: refused before the body is validated...
    assert_eq!(detail(&create(None, json!({"username": "x"}))), (403, json!("Not authenticated")));
    let r = create(Some(&user), json!({"username": "another", "password": "x"}));
    assert_eq!(detail(&r), (403, json!("Forbidden: access denied")));
    // ...but after the JSON syntax is (FastAPI parses the body first).
    let r = send("PUT", &format!("{}{BASE}/admin/users/create/", s.url), None, Some("{nope"), None);
    assert_eq!((r.status, r.body["detail"][0]["type"].clone()), (422, json!("json_invalid")));

    // Remove, remove what is not there, remove without being an admin.
    let remove = |token: Option<&str>, name: &str| s.mom("DELETE", &format!("/admin/users/remove/{name}"), token, None);
    let r = remove(Some(&user), "admin");
    assert_eq!(detail(&r), (403, json!("Forbidden: access denied")));
    let r = remove(Some(&admin), "noadmin");
    assert_eq!((r.status, r.body), (200, json!("User noadmin removed successfully.")));
    let r = remove(Some(&admin), "noadmin");
    assert_eq!((r.status, r.body), (200, json!("User noadmin not found.")));
    assert_eq!(detail(&remove(None, "noadmin")), (403, json!("Not authenticated")));
    // A deliberate difference: the reference's tokens are stateless and outlive their user;
    // ferry's stop working when the user is removed.
    let r = s.mom("GET", "/protected/", Some(&user), None);
    assert_eq!(detail(&r), (401, json!("Invalid token")));
    // The last admin stays (the reference has no such rule; refused as its user service
    // refuses things: 403 with the reason).
    let r = remove(Some(&admin), "admin");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body["detail"].as_str().unwrap().contains("last admin"), "{r:?}");
    assert_eq!(s.mom("GET", "/admin/protected/", Some(&admin), None).status, 200);

    // Routing as Starlette does it: a missing or extra trailing slash is a 307 to the
    // route, another method a 405 naming the allowed one, anything else a 404.
    let r = s.mom("PUT", "/admin/users/create", Some(&admin), None);
    assert_eq!(r.status, 307);
    assert_eq!(r.location, Some(format!("{}{BASE}/admin/users/create/", s.url)));
    let r = s.mom("DELETE", "/admin/users/remove/x/?a=b", Some(&admin), None);
    assert_eq!(r.location, Some(format!("{}{BASE}/admin/users/remove/x?a=b", s.url)));
    let r = s.mom("GET", "/admin/users/create/", Some(&admin), None);
    assert_eq!(detail(&r), (405, json!("Method Not Allowed")));
    assert_eq!(r.allow.as_deref(), Some("PUT"));
    assert_eq!(detail(&s.mom("GET", "/nothing/here", None, None)), (404, json!("Not Found")));
    assert_eq!(detail(&s.mom("DELETE", "/admin/users/remove/", Some(&admin), None)), (404, json!("Not Found")));

    // The OpenAPI document.
    let r = s.mom("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    assert!(r.body["paths"][format!("{BASE}/queue_topic/receive/")]["post"].is_object());
}

#[test]
fn queue_and_topic_management() {
    let s = serve();
    let admin = s.admin();
    let user = s.user(&admin, "noadmin");

    assert_eq!(s.create(&admin, "queue-example", "queue"), (true, json!("Queue queue-example created successfully")));
    assert_eq!(s.create(&admin, "topic-example", "topic"), (true, json!("Topic topic-example created successfully")));
    assert_eq!(s.create(&admin, "queue-example", "queue"), (false, json!("Queue exists")));
    assert_eq!(s.create(&admin, "topic-example", "topic"), (false, json!("Topic exists")));

    // The data is ferry's: /v1 sees the queue and the topic, owned by their creator, and the
    // topic's creator is subscribed to it.
    let (_, d) = s.v1("GET", "/queues/queue-example", &admin, None);
    assert_eq!((d["kind"].as_str(), d["owner"].as_str()), (Some("queue"), Some("admin")));
    let (_, queues) = s.v1("GET", "/queues", &admin, None);
    assert!(queues.as_array().unwrap().iter().any(|q| q["name"] == "queue-example"), "{queues}");
    let (_, subs) = s.v1("GET", "/topics/topic-example/subscriptions", &admin, None);
    assert!(subs["subscriptions"]["mom.admin"].is_object(), "{subs}");

    // Validation: the name pattern and the type are 422; a non-admin is 403.
    let r =
        s.mom("PUT", "/admin/queue_topic/create/", Some(&admin), Some(json!({"name": "bad name", "type": "queue"})));
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"detail": [{"type": "string_pattern_mismatch", "loc": ["body", "name"],
                               "msg": "String should match pattern '^[a-zA-Z0-9_-]+$'", "input": "bad name",
                               "ctx": {"pattern": "^[a-zA-Z0-9_-]+$"}}]})
        )
    );
    let r = s.mom("PUT", "/admin/queue_topic/create/", Some(&admin), Some(json!({"name": "x", "type": "stream"})));
    assert_eq!(
        r.body,
        json!({"detail": [{"type": "enum", "loc": ["body", "type"], "msg": "Input should be 'queue' or 'topic'",
                           "input": "stream", "ctx": {"expected": "'queue' or 'topic'"}}]})
    );
    let r = s.mom("PUT", "/admin/queue_topic/create/", Some(&user), Some(json!({"name": "mine", "type": "queue"})));
    assert_eq!(detail(&r), (403, json!("Forbidden: access denied")));
    assert_eq!(s.v1("GET", "/queues/mine", &admin, None).0, 404);

    // Delete: ?mom_type= is required and checked (422), a bad name in the path is a 403
    // with pydantic's text (the reference validates it inside its handler).
    let delete =
        |token: &str, path: &str| s.mom("DELETE", &format!("/admin/queue_topic/delete/{path}"), Some(token), None);
    let r = delete(&admin, "queue-example");
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"detail": [{"type": "missing", "loc": ["query", "mom_type"], "msg": "Field required", "input": null}]})
        )
    );
    let r = delete(&admin, "queue-example?mom_type=stream");
    assert_eq!((r.status, r.body["detail"][0]["loc"].clone()), (422, json!(["query", "mom_type"])));
    let r = delete(&admin, "bad%20name?mom_type=queue");
    assert_eq!(
        detail(&r),
        (
            403,
            json!(
                "1 validation error for QueueTopic\nname\n  String should match pattern '^[a-zA-Z0-9_-]+$' \
                   [type=string_pattern_mismatch, input_value='bad name', input_type=str]\n    \
                   For further information visit https://errors.pydantic.dev/2.11/v/string_pattern_mismatch"
            )
        )
    );
    let r = delete(&user, "queue-example?mom_type=queue");
    assert_eq!(detail(&r), (403, json!("Forbidden: access denied")));

    // Missing ones, and an admin who is not the owner.
    assert_eq!(
        s.op_as("DELETE", "/admin/queue_topic/delete/nothing?mom_type=queue", &admin, None),
        (false, json!("Queue does not exist"))
    );
    assert_eq!(
        s.op_as("DELETE", "/admin/queue_topic/delete/nothing?mom_type=topic", &admin, None),
        (false, json!("Topic nothing does not exist"))
    );
    let (status, _) = s.v1("PUT", "/users/admin2", &admin, Some(json!({"password": "second-admin", "role": "admin"})));
    assert_eq!(status, 201);
    let admin2 = s.login("admin2", "second-admin");
    for kind in ["queue", "topic"] {
        let path = format!("/admin/queue_topic/delete/{kind}-example?mom_type={kind}");
        assert_eq!(s.op_as("DELETE", &path, &admin2, None), (false, json!("Operation not allowed for non-owner")));
    }

    // The owner deletes; the queue and topic are gone from /v1 as well.
    assert_eq!(
        s.op_as("DELETE", "/admin/queue_topic/delete/queue-example?mom_type=queue", &admin, None),
        (true, json!("Queue 'queue-example' deleted successfully"))
    );
    assert_eq!(
        s.op_as("DELETE", "/admin/queue_topic/delete/topic-example?mom_type=topic", &admin, None),
        (true, json!("Topic deleted successfully"))
    );
    assert_eq!(s.v1("GET", "/queues/queue-example", &admin, None).0, 404);
    assert_eq!(s.v1("GET", "/topics/topic-example", &admin, None).0, 404);
    let again = s.op_as("DELETE", "/admin/queue_topic/delete/queue-example?mom_type=queue", &admin, None);
    assert_eq!(again, (false, json!("Queue does not exist")));
}

#[test]
fn subscribe_and_unsubscribe() {
    let s = serve();
    let admin = s.admin();
    let user = s.user(&admin, "noadmin");
    s.create(&admin, "queue-example", "queue");
    s.create(&admin, "topic-example", "topic");
    let q = json!({"name": "queue-example", "type": "queue"});
    let t = json!({"name": "topic-example", "type": "topic"});

    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, q.clone()),
        (true, json!("User noadmin subscribed to queue-example"))
    );
    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, t.clone()),
        (true, json!("User noadmin subscribed to topic topic-example"))
    );
    // Already subscribed; the owners are subscribed from the start.
    assert_eq!(s.op("/queue_topic/subscribe/", &user, q.clone()), (false, json!("User is subscribed")));
    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, t.clone()),
        (false, json!("User noadmin is already subscribed to topic topic-example"))
    );
    assert_eq!(s.op("/queue_topic/subscribe/", &admin, q.clone()), (false, json!("User is subscribed")));
    // On /v1, a MOM topic subscriber is the subscription mom.<user>.
    let (_, subs) = s.v1("GET", "/topics/topic-example/subscriptions", &admin, None);
    let names: Vec<&String> = subs["subscriptions"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["mom.admin", "mom.noadmin"]);

    // Not found (the texts of the reference when no node has the object).
    let missing_q = json!({"name": "nothing", "type": "queue"});
    let missing_t = json!({"name": "nothing", "type": "topic"});
    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, missing_q.clone()),
        (false, json!("Queue does not exist in any node"))
    );
    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, missing_t.clone()),
        (false, json!("El tópico no existe en ningún nodo"))
    );
    assert_eq!(s.op("/queue_topic/unsubscribe/", &user, missing_q), (false, json!("Queue does not exist in any node")));
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &user, missing_t),
        (false, json!("El tópico no existe en ningún nodo"))
    );
    // A topic is not a queue.
    let wrong = json!({"name": "topic-example", "type": "queue"});
    assert_eq!(s.op("/queue_topic/subscribe/", &user, wrong), (false, json!("Queue does not exist in any node")));

    // Unauthenticated.
    for path in ["/queue_topic/subscribe/", "/queue_topic/unsubscribe/"] {
        assert_eq!(detail(&s.mom("POST", path, None, Some(q.clone()))), (403, json!("Not authenticated")));
    }

    // Unsubscribe, then again; the owner cannot.
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &user, q.clone()),
        (true, json!("User noadmin unsubscribed from queue-example"))
    );
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &user, t.clone()),
        (true, json!("User noadmin unsubscribed from topic topic-example"))
    );
    assert_eq!(s.op("/queue_topic/unsubscribe/", &user, q.clone()), (false, json!("User is not subscribed")));
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &user, t.clone()),
        (false, json!("User noadmin is not subscribed to topic topic-example"))
    );
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &admin, q.clone()),
        (false, json!("User is the owner of the queue and cannot unsubscribe"))
    );
    assert_eq!(
        s.op("/queue_topic/unsubscribe/", &admin, t.clone()),
        (false, json!("User is the owner of the topic and cannot unsubscribe"))
    );
    let (_, subs) = s.v1("GET", "/topics/topic-example/subscriptions", &admin, None);
    assert_eq!(subs["subscriptions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["mom.admin"]);

    // Bodies: the type and name are validated.
    let r = s.mom("POST", "/queue_topic/subscribe/", Some(&user), Some(json!({"name": "queue-example"})));
    assert_eq!((r.status, r.body["detail"][0]["loc"].clone()), (422, json!(["body", "type"])));
}

#[test]
fn send_and_receive_on_a_queue() {
    let s = serve();
    let admin = s.admin();
    let user = s.user(&admin, "noadmin");
    s.create(&admin, "queue-example", "queue");
    let q = json!({"name": "queue-example", "type": "queue"});
    let msg = |m: &str| json!({"name": "queue-example", "type": "queue", "message": m});
    let receive = |token: &str| s.op("/queue_topic/receive/", token, q.clone());

    // Sending needs no subscription; receiving does.
    assert_eq!(s.op("/queue_topic/send/", &user, msg("Hello, World!")), (true, json!("Message enqueued successfully")));
    assert_eq!(receive(&user), (false, json!("User is not subscribed")));
    // The owner is subscribed.
    assert_eq!(receive(&admin), (true, json!("Hello, World!")));
    // Empty: success with a null message.
    assert_eq!(receive(&admin), (true, Value::Null));
    // A subscriber receives its own messages from a queue.
    s.op("/queue_topic/send/", &admin, msg("mine"));
    assert_eq!(receive(&admin), (true, json!("mine")));
    // Not found.
    let missing = json!({"name": "nothing", "type": "queue", "message": "x"});
    assert_eq!(s.op("/queue_topic/send/", &user, missing.clone()), (false, json!("La cola no existe en ningún nodo")));
    assert_eq!(s.op("/queue_topic/receive/", &user, missing), (false, json!("La cola no existe en ningún nodo")));
    // Unauthenticated; a message that is not a string.
    assert_eq!(detail(&s.mom("POST", "/queue_topic/send/", None, Some(msg("x")))), (403, json!("Not authenticated")));
    assert_eq!(
        detail(&s.mom("POST", "/queue_topic/receive/", None, Some(q.clone()))),
        (403, json!("Not authenticated"))
    );
    let r = s.mom(
        "POST",
        "/queue_topic/send/",
        Some(&user),
        Some(json!({"name": "queue-example", "type": "queue", "message": 5})),
    );
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"detail": [{"type": "string_type", "loc": ["body", "message"], "msg": "Input should be a valid string", "input": 5}]})
        )
    );

    // Competing consumers: each message goes to exactly one of them, in order.
    s.op("/queue_topic/subscribe/", &user, q.clone());
    let sent: Vec<String> = (1..=6).map(|i| format!("m{i}")).collect();
    for m in &sent {
        s.op("/queue_topic/send/", &user, msg(m));
    }
    let mut got = Vec::new();
    for i in 0..6 {
        let (ok, m) = receive(if i % 2 == 0 { &admin } else { &user });
        assert!(ok);
        got.push(m.as_str().unwrap().to_string());
    }
    assert_eq!(got, sent);
    assert_eq!(receive(&user), (true, Value::Null));
    assert_eq!(receive(&admin), (true, Value::Null));

    // Messages come back exactly as sent; the empty one reads as null, as in the reference.
    for m in ["\"quoted\" and \\ backslash", "ünïcödé ✓", "{\"json\": \"inside\"}", ""] {
        s.op("/queue_topic/send/", &admin, msg(m));
        let expected = if m.is_empty() { Value::Null } else { json!(m) };
        assert_eq!(receive(&user), (true, expected));
    }

    // Shared with /v1: a MOM message is the JSON encoding of the string; a /v1 queue takes
    // MOM messages; a /v1 message reads as its text.
    s.op("/queue_topic/send/", &admin, msg("from mom"));
    let (_, got) = s.v1("POST", "/queues/queue-example/receive", &admin, Some(json!({"auto_ack": true})));
    assert_eq!(got["messages"][0]["body"], "\"from mom\"");
    assert_eq!(s.v1("POST", "/queues", &admin, Some(json!({"name": "v1-jobs"}))).0, 201);
    let v1q = json!({"name": "v1-jobs", "type": "queue"});
    let r = s.op("/queue_topic/send/", &user, json!({"name": "v1-jobs", "type": "queue", "message": "to v1"}));
    assert_eq!(r, (true, json!("Message enqueued successfully")));
    s.v1("POST", "/queues/v1-jobs/messages", &admin, Some(json!({"body": "plain text"})));
    assert_eq!(s.op("/queue_topic/receive/", &admin, v1q.clone()), (true, json!("to v1")));
    assert_eq!(s.op("/queue_topic/receive/", &admin, v1q), (true, json!("plain text")));

    // ferry's permissions apply on top: a user without them is refused and nothing changes.
    let (status, _) = s.v1("PUT", "/users/limited", &admin, Some(json!({"password": "limited-pw"})));
    assert_eq!(status, 201);
    let limited = s.login("limited", "limited-pw");
    let refused = (false, json!("Operation not allowed"));
    assert_eq!(s.op("/queue_topic/send/", &limited, msg("nope")), refused);
    assert_eq!(s.op("/queue_topic/subscribe/", &limited, q.clone()), refused);
    assert_eq!(s.op("/queue_topic/receive/", &limited, q.clone()), refused);
    let (_, d) = s.v1("GET", "/queues/queue-example", &admin, None);
    assert_eq!(d["stats"]["depth"], 0, "{d}");
}

#[test]
fn send_and_receive_on_a_topic() {
    let s = serve();
    let admin = s.admin();
    let user = s.user(&admin, "noadmin");
    let third = s.user(&admin, "thirduser");
    s.create(&admin, "topic-example", "topic");
    let t = json!({"name": "topic-example", "type": "topic"});
    let publish = |token: &str, m: &str| {
        let r = s.op("/queue_topic/send/", token, json!({"name": "topic-example", "type": "topic", "message": m}));
        assert_eq!(r, (true, json!("Message published to topic topic-example")));
    };
    let receive = |token: &str| s.op("/queue_topic/receive/", token, t.clone());

    // Not subscribed; publishing needs no subscription.
    assert_eq!(receive(&user), (false, json!("User is not subscribed to this topic")));
    publish(&user, "from a non-subscriber");
    assert_eq!(receive(&admin), (true, json!("from a non-subscriber")));
    let r = s.op("/queue_topic/subscribe/", &user, t.clone());
    assert_eq!(r, (true, json!("User noadmin subscribed to topic topic-example")));
    // A subscriber never receives its own messages, and a late one only newer messages.
    publish(&admin, "m1");
    assert_eq!(receive(&admin), (true, Value::Null), "own message");
    assert_eq!(receive(&user), (true, json!("m1")));
    assert_eq!(receive(&user), (true, Value::Null), "empty");

    // Fan-out: every subscriber gets every message, each at its own pace.
    let r = s.op("/queue_topic/subscribe/", &third, t.clone());
    assert_eq!(r, (true, json!("User thirduser subscribed to topic topic-example")));
    publish(&admin, "m2");
    publish(&admin, "m3");
    assert_eq!(receive(&user), (true, json!("m2")));
    assert_eq!(receive(&third), (true, json!("m2")), "m1 came before third subscribed");
    assert_eq!(receive(&user), (true, json!("m3")));
    assert_eq!(receive(&third), (true, json!("m3")));
    assert_eq!(receive(&third), (true, Value::Null));

    // Own messages are skipped, and the next one is delivered.
    publish(&user, "n1");
    publish(&admin, "a1");
    assert_eq!(receive(&user), (true, json!("a1")));
    assert_eq!(receive(&admin), (true, json!("n1")));
    assert_eq!(receive(&admin), (true, Value::Null));
    assert_eq!(receive(&third), (true, json!("n1")));
    assert_eq!(receive(&third), (true, json!("a1")));

    // Not found; after unsubscribing, not subscribed.
    let missing = json!({"name": "nothing", "type": "topic"});
    assert_eq!(s.op("/queue_topic/receive/", &user, missing), (false, json!("El tópico no existe en ningún nodo")));
    let r = s.op("/queue_topic/send/", &user, json!({"name": "nothing", "type": "topic", "message": "x"}));
    assert_eq!(r, (false, json!("El tópico no existe en ningún nodo")));
    s.op("/queue_topic/unsubscribe/", &third, t.clone());
    assert_eq!(receive(&third), (false, json!("User is not subscribed to this topic")));
}

#[test]
fn rate_limits_come_from_the_config_file() {
    let s = serve_with("[mom]\nhome_per_minute = 1\nprotected_per_minute = 2\noperations_per_minute = 3\n", &[]);
    let admin = s.admin();
    assert_eq!(s.mom("GET", "/", None, None).status, 200);
    let r = s.mom("GET", "/", None, None);
    assert_eq!((r.status, r.body.clone()), (429, json!({"error": "Rate limit exceeded: 1 per 1 minute"})));
    assert_eq!((r.retry_after, r.allow), (None, None));

    // Refused by authentication: not counted.
    for _ in 0..3 {
        assert_eq!(s.mom("GET", "/protected/", Some("garbage"), None).status, 401);
        assert_eq!(s.mom("GET", "/protected/", None, None).status, 403);
    }
    assert_eq!(s.mom("GET", "/protected/", Some(&admin), None).status, 200);
    assert_eq!(s.mom("GET", "/protected/", Some(&admin), None).status, 200);
    let r = s.mom("GET", "/protected/", Some(&admin), None);
    assert_eq!((r.status, r.body), (429, json!({"error": "Rate limit exceeded: 2 per 1 minute"})));

    // Refused by validation: not counted either. The limit is per path.
    s.create(&admin, "jobs", "queue");
    let q = json!({"name": "jobs", "type": "queue"});
    for _ in 0..3 {
        assert_eq!(s.mom("POST", "/queue_topic/receive/", Some(&admin), Some(json!({"name": "jobs"}))).status, 422);
    }
    for _ in 0..3 {
        assert_eq!(s.op("/queue_topic/receive/", &admin, q.clone()), (true, Value::Null));
    }
    let r = s.mom("POST", "/queue_topic/receive/", Some(&admin), Some(q.clone()));
    assert_eq!((r.status, r.body), (429, json!({"error": "Rate limit exceeded: 3 per 1 minute"})));
    let r = s.op("/queue_topic/send/", &admin, json!({"name": "jobs", "type": "queue", "message": "x"}));
    assert_eq!(r, (true, json!("Message enqueued successfully")));
}

#[test]
fn the_api_can_be_turned_off() {
    let s = serve_with("", &[("FERRY_MOM", "false")]);
    let r = s.mom("GET", "/", None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "not_found", "ferry's own 404: {r:?}");
}

#[test]
fn mom_data_survives_a_restart() {
    let s = serve();
    let admin = s.admin();
    let user = s.user(&admin, "noadmin");
    s.create(&admin, "jobs", "queue");
    s.create(&admin, "news", "topic");
    let q = json!({"name": "jobs", "type": "queue"});
    let t = json!({"name": "news", "type": "topic"});
    s.op("/queue_topic/subscribe/", &user, q.clone());
    s.op("/queue_topic/subscribe/", &user, t.clone());
    for m in ["q1", "q2"] {
        s.op("/queue_topic/send/", &admin, json!({"name": "jobs", "type": "queue", "message": m}));
    }
    for m in ["t1", "t2"] {
        s.op("/queue_topic/send/", &admin, json!({"name": "news", "type": "topic", "message": m}));
    }
    assert_eq!(s.op("/queue_topic/receive/", &user, t.clone()), (true, json!("t1")));

    // Killed, not stopped: what was answered is on disk.
    let Served { child, data, dir, .. } = s;
    child.kill();
    let (child, url) = start(&data, &dir.path().join("ferry.toml"), &[]);
    let s = Served { child, url, data, dir };

    // Tokens, queue subscribers, topic subscriptions and their offsets, messages.
    assert_eq!(s.op("/queue_topic/subscribe/", &user, q.clone()), (false, json!("User is subscribed")));
    assert_eq!(
        s.op("/queue_topic/subscribe/", &user, t.clone()),
        (false, json!("User noadmin is already subscribed to topic news"))
    );
    assert_eq!(s.op("/queue_topic/receive/", &user, q.clone()), (true, json!("q1")));
    assert_eq!(s.op("/queue_topic/receive/", &admin, q.clone()), (true, json!("q2")));
    assert_eq!(s.op("/queue_topic/receive/", &user, q), (true, Value::Null));
    assert_eq!(s.op("/queue_topic/receive/", &user, t.clone()), (true, json!("t2")));
    assert_eq!(s.op("/queue_topic/receive/", &user, t.clone()), (true, Value::Null));
    assert_eq!(s.op("/queue_topic/receive/", &admin, t), (true, Value::Null), "the publisher's own messages");
}
