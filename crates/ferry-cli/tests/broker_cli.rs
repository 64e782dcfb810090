//! The broker commands as a user meets them: a real `ferry serve` on a free loopback port,
//! driven only through the `ferry` binary (`login`, `queue`, `topic`, `sub`, `user`), with
//! the credentials file in a temporary home. Every process is killed by its handle when
//! the test ends, and every wait is bounded.

use ferry_testkit::LineChild;
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PASSWORD: &str = "admin-password-1";
/// How long any one `ferry` command may take before the test gives up on it.
const LIMIT: Duration = Duration::from_secs(60);

/// A `ferry serve` with its own data directory, killed when dropped.
struct Server {
    _child: LineChild,
    url: String,
    _data: tempfile::TempDir,
}

fn serve() -> Server {
    serve_with(&[])
}

fn serve_with(args: &[&str]) -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let port = ferry_testkit::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--grpc", "127.0.0.1:0", "--http", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .args(args);
    cmd.env_remove("FERRY_HTTP").env_remove("FERRY_DATA").env("FERRY_ADMIN_PASSWORD", PASSWORD);
    let child = LineChild::spawn(cmd);
    let before = child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    let scheme = if args.contains(&"--tls-cert") { "https" } else { "http" };
    assert!(before.is_empty(), "unexpected output before the address: {before:?}");
    Server { _child: child, url: format!("{scheme}://127.0.0.1:{port}"), _data: data }
}

/// A user of the CLI: a home directory of their own (for the credentials file) and a
/// server given through `FERRY_SERVER`.
struct User {
    home: tempfile::TempDir,
    server: String,
}

impl User {
    fn new(server: &str) -> User {
        User { home: tempfile::tempdir().expect("temp dir"), server: server.to_string() }
    }

    fn config(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.args(args);
        for var in ["FERRY_TOKEN", "FERRY_PASSWORD", "FERRY_USER", "FERRY_CA_FILE", "FERRY_LOG"] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home.path()).env("XDG_CONFIG_HOME", self.config()).env("FERRY_SERVER", &self.server);
        cmd
    }

    /// Runs `ferry args` with standard input closed.
    fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, b"")
    }

    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Out {
        let mut running = Running::spawn(self.command(args));
        running.write(input);
        running.close_stdin();
        running.finish(LIMIT)
    }

    /// Runs a command that must succeed, and returns what it printed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, Some(0), "ferry {args:?} failed: {out:?}");
        out.stdout
    }

    /// Runs a command with `--json` that must succeed, and parses its one document.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ferry {args:?}: not one JSON document ({e}): {text}"))
    }

    fn login(&self, user: &str, password: &str) {
        let out = self.ok(&["login", "--user", user, "--password", password]);
        assert!(out.contains(&format!("as {user}")), "{out}");
    }

    /// A queue's statistics.
    fn stats(&self, queue: &str) -> Value {
        self.json(&["queue", "describe", queue])["stats"].clone()
    }
}

/// A finished command.
#[derive(Debug)]
struct Out {
    /// `None` if it had to be killed at the deadline.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A running `ferry`, killed if still running when dropped.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ferry");
        let collect = |r: Option<Box<dyn std::io::Read + Send>>| {
            r.map(|mut r| {
                std::thread::spawn(move || {
                    let mut v = Vec::new();
                    let _ = r.read_to_end(&mut v);
                    v
                })
            })
        };
        let stdout = collect(child.stdout.take().map(|s| Box::new(s) as _));
        let stderr = collect(child.stderr.take().map(|s| Box::new(s) as _));
        Running { stdin: child.stdin.take(), child, stdout, stderr }
    }

    fn id(&self) -> u32 {
        self.child.id()
    }

    fn write(&mut self, input: &[u8]) {
        if let Some(stdin) = &mut self.stdin {
            // A command that exits early closes the pipe; its output will say why.
            let _ = stdin.write_all(input);
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `limit` for the exit; kills the process past it (then `code` is None).
    fn finish(mut self, limit: Duration) -> Out {
        let deadline = Instant::now() + limit;
        let mut code = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                code = Some(status.code().unwrap_or(-1));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stdin = None;
        let text = |h: Option<JoinHandle<Vec<u8>>>| {
            String::from_utf8_lossy(&h.and_then(|h| h.join().ok()).unwrap_or_default()).into_owned()
        };
        Out { code, stdout: text(self.stdout.take()), stderr: text(self.stderr.take()) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The cells of each line of a table, split on runs of spaces.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table.lines().map(|l| l.split_whitespace().collect()).collect()
}

fn bodies(doc: &Value) -> Vec<String> {
    doc["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages array: {doc}"))
        .iter()
        .map(|m| m["body"].as_str().map_or_else(|| format!("base64:{}", m["body_base64"]), str::to_string))
        .collect()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn a_queue_from_login_to_logout() {
    let server = serve();
    let me = User::new(&server.url);

    // Logging in stores a token that only this user can read.
    me.login("admin", PASSWORD);
    let file = me.config().join("ferry").join("credentials.toml");
    assert_eq!(mode(&file), 0o600);
    let stored = std::fs::read_to_string(&file).expect("credentials file");
    assert!(stored.contains(&format!("[servers.\"{}\"]", server.url)), "{stored}");
    assert!(stored.contains("user = \"admin\""), "{stored}");

    let created = me.ok(&["queue", "create", "jobs", "--visibility-timeout", "30s", "--max-deliveries", "4"]);
    assert_eq!(created.trim(), "created queue jobs (owner admin)");
    let described = me.json(&["queue", "describe", "jobs"]);
    assert_eq!(described["settings"]["visibility_timeout_ms"], 30_000);
    assert_eq!(described["settings"]["max_deliveries"], 4);
    // Updating changes what is given and keeps the rest; nothing to change is a usage error.
    let updated = me.ok(&["queue", "update", "jobs", "--max-deliveries", "6", "--durability", "interval:50"]);
    assert_eq!(updated.trim(), "updated queue jobs: durability, max_deliveries");
    let described = me.json(&["queue", "describe", "jobs"]);
    assert_eq!(described["settings"]["max_deliveries"], 6);
    assert_eq!(described["settings"]["visibility_timeout_ms"], 30_000);
    assert_eq!(described["settings"]["durability"], serde_json::json!({"interval": 50}), "{described}");
    let out = me.run(&["queue", "update", "jobs"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("nothing to change"), "{out:?}");
    let out = me.run(&["queue", "update", "jobs", "--dead-letter-queue", ""]);
    assert_eq!(out.code, Some(4), "{out:?}");

    // Messages from an argument, from standard input (bytes unchanged), and a binary one.
    assert!(me.ok(&["queue", "send", "jobs", "first"]).starts_with("sent 1 message to queue jobs"));
    let out = me.run_with_input(&["queue", "send", "jobs"], b"second\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = me.run_with_input(&["queue", "send", "jobs", "--lines", "--priority", "0"], b"third\nfourth\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("sent 2 messages"), "{out:?}");
    let out = me.run_with_input(&["queue", "send", "jobs", "-f", "-"], &[0xff, 0xfe]);
    assert_eq!(out.code, Some(0), "{out:?}");

    // The list, as a table and as JSON.
    let table = me.ok(&["queue", "list"]);
    let rows = rows(&table);
    assert_eq!(rows[0], ["name", "depth", "in", "flight", "published", "acked", "dead-lettered", "owner"]);
    assert_eq!(rows[1], ["jobs", "5", "0", "5", "0", "0", "admin"], "{table}");
    let list = me.json(&["queue", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!((&list[0]["name"], &list[0]["stats"]["depth"]), (&Value::from("jobs"), &Value::from(5)));

    assert_eq!(me.stats("jobs")["depth"], 5);
    let table = me.ok(&["queue", "describe", "jobs"]);
    assert!(table.lines().any(|l| l.split_whitespace().eq(["depth", "5"])), "{table}");

    // Peeking consumes nothing; the text body shows as text, the binary one as base64.
    let peeked = me.json(&["queue", "peek", "jobs", "--max", "10"]);
    assert_eq!(bodies(&peeked), ["first", "second\n", "third", "fourth", "base64:\"//4=\""]);
    let table = me.ok(&["queue", "peek", "jobs"]);
    assert!(table.contains("second\\n"), "control characters are escaped in tables: {table}");
    assert!(table.contains("(base64) //4="), "{table}");
    assert_eq!(me.stats("jobs")["depth"], 5);

    // recv --max takes and acks that many; a second recv finds the rest.
    let got = me.json(&["queue", "recv", "jobs", "--max", "2"]);
    assert_eq!(bodies(&got), ["first", "second\n"]);
    let stats = me.stats("jobs");
    assert_eq!((stats["depth"].as_u64(), stats["in_flight"].as_u64()), (Some(3), Some(0)), "{stats}");
    let table = me.ok(&["queue", "recv", "jobs", "--max", "10", "--wait", "1s"]);
    assert!(table.contains("third") && table.contains("fourth") && table.contains("(base64) //4="), "{table}");
    assert_eq!(me.stats("jobs")["depth"], 0);
    assert_eq!(me.ok(&["queue", "recv", "jobs"]).trim(), "no messages");

    // --no-ack leaves them leased; ack settles them by lease.
    me.ok(&["queue", "send", "jobs", "kept"]);
    let got = me.json(&["queue", "recv", "jobs", "--no-ack"]);
    assert_eq!(bodies(&got), ["kept"]);
    let stats = me.stats("jobs");
    assert_eq!((stats["depth"].as_u64(), stats["in_flight"].as_u64()), (Some(1), Some(1)), "{stats}");
    let lease = got["messages"][0]["lease"].as_u64().expect("a lease").to_string();
    assert_eq!(me.ok(&["queue", "ack", "jobs", &lease]).trim(), "acked 1 of 1 message(s)");
    assert_eq!(me.stats("jobs")["depth"], 0);

    me.ok(&["queue", "send", "jobs", "dropped"]);
    me.ok(&["queue", "purge", "jobs"]);
    assert_eq!(me.stats("jobs")["depth"], 0);
    assert_eq!(me.json(&["queue", "delete", "jobs"]), serde_json::json!({"ok": true}));
    assert_eq!(me.ok(&["queue", "list"]).trim(), "no queues (that you may see)");

    // Logging out forgets the token, and the commands say how to get one again.
    assert_eq!(me.ok(&["logout"]).trim(), format!("logged out of {}", server.url));
    let out = me.run(&["queue", "list"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("not logged in") && out.stderr.contains("ferry login"), "{out:?}");
}

#[test]
fn follow_prints_and_acks_messages_as_they_come() {
    let server = serve();
    let me = User::new(&server.url);
    me.login("admin", PASSWORD);
    me.ok(&["queue", "create", "work"]);

    // --count stops it, having leased no more than it printed: the fourth message stays.
    let follower = Running::spawn(me.command(&["queue", "recv", "work", "--follow", "--count", "3", "--json"]));
    for i in 1..=4 {
        me.ok(&["queue", "send", "work", &format!("job {i}")]);
    }
    let out = follower.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let got: Vec<&str> = lines.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(got, ["job 1", "job 2", "job 3"], "{out:?}");
    let stats = me.stats("work");
    assert_eq!((stats["depth"].as_u64(), stats["in_flight"].as_u64()), (Some(1), Some(0)), "{stats}");

    // Without --count it runs until its standard input (a pipe) ends.
    let mut follower = Running::spawn(me.command(&["queue", "recv", "work", "--follow"]));
    me.ok(&["queue", "send", "work", "job 5"]);
    let drained = ferry_testkit::eventually(LIMIT, || me.stats("work")["depth"] == 0);
    assert!(drained, "the follower did not ack everything: {}", me.stats("work"));
    follower.close_stdin();
    let out = follower.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let rows = rows(&out.stdout);
    assert_eq!(rows[0], ["id", "offset", "deliveries", "priority", "subject", "body"], "{out:?}");
    let bodies: Vec<String> = rows[1..].iter().map(|r| r[r.len() - 2..].join(" ")).collect();
    assert_eq!(bodies, ["job 4", "job 5"], "{out:?}");

    // Ctrl-C stops it too, with the status of an interrupt.
    let follower = Running::spawn(me.command(&["queue", "recv", "work", "--follow"]));
    me.ok(&["queue", "send", "work", "job 6"]);
    assert!(ferry_testkit::eventually(LIMIT, || me.stats("work")["depth"] == 0));
    let kill = Command::new("kill").args(["-INT", &follower.id().to_string()]).status().expect("run kill");
    assert!(kill.success());
    let out = follower.finish(LIMIT);
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(out.stdout.contains("job 6"), "{out:?}");
}

#[test]
fn topics_and_subscriptions() {
    let server = serve();
    let me = User::new(&server.url);
    me.login("admin", PASSWORD);
    me.ok(&["topic", "create", "orders", "--max-age", "1h"]);
    assert_eq!(me.json(&["topic", "describe", "orders"])["settings"]["max_age_ms"], 3_600_000);
    let updated = me.json(&["topic", "update", "orders", "--max-age", "2h", "--max-messages", "1000"]);
    assert_eq!(
        (&updated["settings"]["max_age_ms"], &updated["settings"]["max_messages"]),
        (&serde_json::json!(7_200_000), &serde_json::json!(1000))
    );
    me.ok(&["sub", "create", "orders", "billing", "--filter", "orders.*.paid"]);
    me.ok(&["sub", "create", "orders", "audit"]);

    me.ok(&["topic", "publish", "orders", "--subject", "orders.1.paid", "paid 1"]);
    me.ok(&["topic", "send", "orders", "--subject", "orders.2.new", "new 2"]);

    let billing = me.json(&["sub", "recv", "orders", "billing", "--max", "10", "--wait", "1s"]);
    assert_eq!(bodies(&billing), ["paid 1"]);
    let audit = me.ok(&["sub", "recv", "orders", "audit", "--max", "10", "--wait", "1s"]);
    let rows = rows(&audit);
    assert_eq!(rows[0], ["id", "offset", "deliveries", "priority", "subject", "body"], "{audit}");
    assert_eq!((rows[1][4], rows[2][4]), ("orders.1.paid", "orders.2.new"), "{audit}");

    let subs = me.json(&["sub", "list", "orders"]);
    assert_eq!(subs["subscriptions"]["billing"]["acked"], 1, "{subs}");
    assert_eq!(subs["subscriptions"]["audit"]["acked"], 2, "{subs}");
    let described = me.ok(&["sub", "describe", "orders", "audit"]);
    assert!(described.lines().any(|l| l.split_whitespace().eq(["acked", "2"])), "{described}");

    // Seeking back replays what was acked.
    me.ok(&["sub", "seek", "orders", "audit", "earliest"]);
    let again = me.json(&["sub", "recv", "orders", "audit", "--max", "10"]);
    assert_eq!(bodies(&again), ["paid 1", "new 2"]);

    me.ok(&["sub", "delete", "orders", "audit"]);
    let out = me.run(&["sub", "describe", "orders", "audit"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("no subscription \"audit\""), "{out:?}");
}

#[test]
fn users_permissions_and_clear_errors() {
    let server = serve();
    let admin = User::new(&server.url);
    admin.login("admin", PASSWORD);
    admin.ok(&["queue", "create", "jobs"]);
    admin.ok(&["user", "create", "bob", "--password", "bob-password-1", "--consume", "jobs"]);
    let out = admin.run(&["user", "create", "bob", "--password", "bob-password-1"]);
    assert_eq!(out.code, Some(4), "create never replaces a user: {out:?}");
    admin.ok(&["user", "grant", "bob", "publish", "jobs"]);
    let users = admin.json(&["user", "list"]);
    let bob = users["users"].as_array().and_then(|u| u.iter().find(|u| u["name"] == "bob")).expect("bob listed");
    assert_eq!(bob["permissions"]["publish"], serde_json::json!(["jobs"]), "{users}");

    // Bob may publish and consume, but not delete someone else's queue.
    let bob = User::new(&server.url);
    let out = bob.run_with_input(&["login", "-u", "bob", "--password-stdin"], b"bob-password-1\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    bob.ok(&["queue", "send", "jobs", "from bob"]);
    assert_eq!(bodies(&bob.json(&["queue", "recv", "jobs"])), ["from bob"]);
    let out = bob.run(&["queue", "delete", "jobs"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert_eq!(out.stderr.trim(), "ferry: bob may not manage queue jobs (owned by admin) (forbidden, HTTP 403)");
    let out = bob.run(&["user", "list"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("only admins manage users (forbidden, HTTP 403)"), "{out:?}");

    admin.ok(&["user", "revoke", "bob", "publish", "jobs"]);
    let out = bob.run(&["queue", "send", "jobs", "again"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("may not publish to queue jobs"), "{out:?}");

    // A wrong password, a bad token, an unknown queue.
    let out = bob.run(&["login", "-u", "bob", "--password", "wrong-password"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("invalid username or password (unauthorized, HTTP 401)"), "{out:?}");
    assert!(!out.stderr.contains("hint"), "no advice to log in when logging in: {out:?}");
    let out = admin.run(&["queue", "list", "--token", "not-a-token"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("(unauthorized, HTTP 401)"), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "hint: the token from --token or FERRY_TOKEN was refused; run `ferry login --server {}`",
            server.url
        )),
        "{out:?}"
    );
    let out = admin.run(&["queue", "describe", "nope"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert_eq!(out.stderr.trim(), "ferry: no queue named \"nope\" (not_found, HTTP 404)");

    // The password changes; the role and permissions stay.
    let out = admin.run_with_input(&["user", "passwd", "bob", "--password-stdin"], b"bob-password-2\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(bob.run(&["login", "-u", "bob", "--password", "bob-password-1"]).code, Some(4));
    bob.login("bob", "bob-password-2");
    assert_eq!(admin.json(&["user", "describe", "bob"])["permissions"]["consume"], serde_json::json!(["jobs"]));
    admin.ok(&["user", "delete", "bob"]);
    let out = bob.run(&["queue", "list"]);
    assert_eq!(out.code, Some(4), "a deleted user's token no longer works: {out:?}");
}

#[test]
fn servers_are_chosen_by_flag_then_environment_and_failures_to_reach_them_are_explained() {
    let server = serve();
    let closed = format!("http://127.0.0.1:{}", ferry_testkit::free_port());
    let me = User::new(&closed);

    let out = me.run(&["login", "--password", PASSWORD]);
    assert_eq!(out.code, Some(3), "{out:?}");
    let expected = format!("ferry: cannot reach the server at {closed}: ");
    assert!(out.stderr.starts_with(&expected), "{out:?}");
    assert!(out.stderr.trim_end().ends_with("is `ferry serve` running?"), "{out:?}");
    let out = me.run(&["queue", "list", "--token", "anything"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("is `ferry serve` running?"), "{out:?}");

    // --server wins over FERRY_SERVER (which points at nothing here).
    let out = me.run(&["login", "--server", &server.url, "--password", PASSWORD]);
    assert_eq!(out.code, Some(0), "{out:?}");
    me.ok(&["queue", "create", "here", "--server", &server.url]);
    // --token wins over the stored login.
    let token = me.ok(&["login", "--server", &server.url, "--password", PASSWORD, "--print-token"]);
    let listed = me.json(&["queue", "list", "--server", &server.url, "--token", token.trim()]);
    assert_eq!(listed[0]["name"], "here");
    let out = me.run(&["queue", "list", "--server", &server.url, "--token", "garbage"]);
    assert_eq!(out.code, Some(4), "{out:?}");

    let out = me.run(&["queue", "list", "--server", "127.0.0.1:8080"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("http://HOST:PORT"), "{out:?}");
}

#[test]
fn https_servers_with_their_own_ca() {
    let certs = ferry_testkit::TestCerts::new();
    let cert = certs.cert_file();
    let key = certs.key_file();
    let server = serve_with(&["--tls-cert", &cert.to_string_lossy(), "--tls-key", &key.to_string_lossy()]);
    let me = User::new(&server.url);

    let out = me.run(&["login", "--password", PASSWORD]);
    assert_eq!(out.code, Some(3), "an unknown CA is refused: {out:?}");
    assert!(out.stderr.contains("--ca-file"), "{out:?}");

    let ca = certs.ca_file();
    let ca = ca.to_string_lossy();
    me.ok(&["login", "--password", PASSWORD, "--ca-file", &ca]);
    me.ok(&["queue", "create", "secure", "--ca-file", &ca]);
    me.ok(&["queue", "send", "secure", "over TLS", "--ca-file", &ca]);
    let got = me.json(&["queue", "recv", "secure", "--ca-file", &ca]);
    assert_eq!(bodies(&got), ["over TLS"]);
}

#[test]
fn api_keys_act_as_their_maker_until_deleted() {
    let server = serve();
    let admin = User::new(&server.url);
    admin.login("admin", PASSWORD);
    admin.ok(&["queue", "create", "jobs"]);
    admin.ok(&["user", "create", "bob", "--password", "bob-password-1", "--publish", "jobs"]);
    let bob = User::new(&server.url);
    bob.login("bob", "bob-password-1");
    let created = bob.ok(&["apikey", "create", "--label", "nightly import"]);
    let key = created.lines().next().unwrap_or_default().to_string();
    assert!(key.starts_with("fk_"), "the key comes first, alone on its line: {created}");
    assert!(created.contains("for bob: this is the only time it is shown"), "{created}");

    // A program with only the key publishes as bob, and may not do what bob may not.
    let program = User::new(&server.url);
    program.ok(&["queue", "send", "jobs", "from the key", "--token", &key]);
    assert_eq!(admin.stats("jobs")["depth"], 1);
    let out = program.run(&["queue", "delete", "jobs", "--token", &key]);
    assert_eq!(out.code, Some(4), "{out:?}");

    let mine = bob.json(&["apikey", "list"]);
    let keys = mine["apikeys"].as_array().cloned().unwrap_or_default();
    assert_eq!(keys.len(), 1, "{mine}");
    assert_eq!((&keys[0]["owner"], &keys[0]["label"]), (&Value::from("bob"), &Value::from("nightly import")));
    let id = keys[0]["id"].as_str().expect("an id").to_string();
    assert!(!mine.to_string().contains(&key), "list never shows the secret: {mine}");
    let table = admin.ok(&["apikey", "list"]);
    assert!(rows(&table).iter().any(|r| r.first() == Some(&id.as_str()) && r.get(1) == Some(&"bob")), "{table}");

    assert_eq!(bob.ok(&["apikey", "delete", &id]).trim(), format!("deleted API key {id}"));
    let out = program.run(&["queue", "send", "jobs", "again", "--token", &key]);
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("HTTP 401"), "{out:?}");
    assert_eq!(bob.ok(&["apikey", "list"]).trim(), "no API keys");
}
