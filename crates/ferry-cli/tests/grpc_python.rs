//! `ferry serve --grpc` from outside Rust: a Python client whose stubs grpcio-tools
//! generates from `proto/ferry/v1/*.proto` when the test runs drives a real server process,
//! which proves the API is usable with nothing but the .proto files. And the binary's own
//! gRPC switches: the configured port, and `--no-grpc`.
//!
//! The Python side lives in a virtual environment the test makes under the target
//! directory (`$CARGO_TARGET_TMPDIR/pyvenv-grpc-<versions>`) and reuses on later runs; it
//! needs `python3` with `venv` and access to PyPI the first time. Without them the test
//! fails, saying so: it never passes without having run.

use ferry_testkit::{LineChild, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "grpc-python-password";
/// The Python packages, pinned: grpcio and grpcio-tools go together, and this protobuf is
/// one grpcio-tools 1.71 accepts.
const PACKAGES: [&str; 3] = ["grpcio==1.71.2", "grpcio-tools==1.71.2", "protobuf==5.29.5"];
const PIP_LIMIT: Duration = Duration::from_secs(900);
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A `ferry serve` process with gRPC on, killed when dropped.
struct Served {
    child: LineChild,
    http: u16,
    grpc: u16,
    _dir: tempfile::TempDir,
}

/// Starts `ferry serve` on free ports, gRPC set by `grpc` (flags or environment), and
/// waits (bounded) until it listens.
fn serve(grpc: impl FnOnce(&mut Command, u16)) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let (http, port) = (ferry_testkit::free_port(), ferry_testkit::free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--http", &format!("127.0.0.1:{http}"), "--data"]).arg(dir.path());
    for var in ["FERRY_HTTP", "FERRY_DATA", "FERRY_GRPC"] {
        cmd.env_remove(var);
    }
    cmd.env("FERRY_ADMIN_PASSWORD", PASSWORD);
    grpc(&mut cmd, port);
    let child = LineChild::spawn(cmd);
    child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    Served { child, http, grpc: port, _dir: dir }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cmd` to its end (bounded); panics with its output if it fails.
fn run(what: &str, cmd: Command, limit: Duration) -> String {
    let out = Proc::spawn_cmd(cmd).wait(limit);
    assert!(
        out.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status.map_or_else(|| format!("killed after {limit:?}"), |s| s.to_string()),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// The Python of a virtual environment with grpcio and grpcio-tools, made on first use.
fn python() -> PathBuf {
    let Some(system) = ferry_testkit::which("python3") else {
        panic!("python3 is not on PATH: this test needs Python 3 with venv (Debian: apt-get install python3-venv)");
    };
    let tag: String = PACKAGES.join("-").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pyvenv-grpc-{tag}"));
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python).args(["-c", "import grpc, grpc_tools"]).output().is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return python;
    }
    // Built beside, then renamed into place: a run that dies half-way leaves no broken
    // environment behind to be reused.
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let mut cmd = Command::new(system);
    cmd.args(["-m", "venv"]).arg(&building);
    run("python3 -m venv (Debian: apt-get install python3-venv)", cmd, RUN_LIMIT);
    let mut pip = Command::new(building.join("bin/python"));
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"]).args(PACKAGES);
    run(&format!("pip install {} (is PyPI reachable?)", PACKAGES.join(" ")), pip, PIP_LIMIT);
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::rename(&building, &venv).expect("moving the virtual environment into place");
    assert!(ready(&python), "the virtual environment at {} cannot import grpc", venv.display());
    python
}

#[test]
fn a_python_client_generated_from_the_protos_uses_the_api() {
    let python = python();
    let stubs = tempfile::tempdir().unwrap();
    let proto = repo().join("proto");
    let mut protoc = Command::new(&python);
    protoc.args(["-m", "grpc_tools.protoc", "-I"]).arg(&proto);
    protoc.arg(format!("--python_out={}", stubs.path().display()));
    protoc.arg(format!("--grpc_python_out={}", stubs.path().display()));
    protoc.args(["ferry/v1/types.proto", "ferry/v1/broker.proto", "ferry/v1/users.proto"]);
    run("grpc_tools.protoc on proto/ferry/v1", protoc, RUN_LIMIT);

    let s = serve(|cmd, port| {
        cmd.args(["--grpc", &format!("127.0.0.1:{port}")]);
    });
    let mut client = Command::new(&python);
    client.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client.py"));
    client.args(["--target", &format!("127.0.0.1:{}", s.grpc), "--password", PASSWORD]);
    client.env("PYTHONPATH", stubs.path()).env("PYTHONDONTWRITEBYTECODE", "1");
    let stdout = run("the Python client", client, RUN_LIMIT);
    let got: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    assert_eq!(got["without_token"], serde_json::json!(["UNAUTHENTICATED", "unauthorized"]), "{got}");
    assert_eq!(got["created"], serde_json::json!(["py.jobs", "KIND_QUEUE", "admin"]), "{got}");
    assert_eq!(got["published"], 3, "{got}");
    assert_eq!(got["stream_sequences"], serde_json::json!([10, 11, 12]), "{got}");
    assert_eq!(got["bad_priority"], serde_json::json!(["INVALID_ARGUMENT", "invalid_argument"]), "{got}");
    // Highest priority first, first in first out within one; the stream's requests are
    // published concurrently, so in any order among themselves.
    let mut consumed: Vec<&str> = got["consumed"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(consumed.len(), 6, "{got}");
    consumed[3..].sort_unstable();
    assert_eq!(consumed, ["job 2", "job 1", "job 0", "stream 10", "stream 11", "stream 12"], "{got}");
    assert_eq!(got["most_held"], 2, "never more un-acked deliveries than the 2 credits: {got}");
    assert_eq!(got["depth_after"], 0, "{got}");
    drop(s);
}

/// A health check through the generated Rust client; `None` if nothing answers.
fn health(port: u16) -> Option<i32> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let endpoint = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).ok()?;
        let endpoint = endpoint.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10));
        let channel = tokio::time::timeout(Duration::from_secs(10), endpoint.connect()).await.ok()?.ok()?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let req = tonic_health::pb::HealthCheckRequest { service: "ferry.v1.Broker".into() };
        Some(client.check(req).await.ok()?.into_inner().status)
    })
}

#[test]
fn ferry_serve_serves_grpc_on_the_configured_port_or_not_at_all() {
    // FERRY_GRPC names the address (and turns gRPC on); the banner says where it is.
    let s = serve(|cmd, port| {
        cmd.env("FERRY_GRPC", format!("127.0.0.1:{port}"));
    });
    s.child.wait_for(&format!("gRPC on http://127.0.0.1:{}", s.grpc), Duration::from_secs(10)).unwrap();
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(health(s.grpc), Some(serving));
    // The HTTP API is where it was.
    let healthz = ureq::get(&format!("http://127.0.0.1:{}/healthz", s.http)).timeout(Duration::from_secs(10)).call();
    assert_eq!(healthz.map(|r| r.status()).ok(), Some(200));
    drop(s);

    // --no-grpc wins over FERRY_GRPC: no banner line, nothing on the port.
    let s = serve(|cmd, port| {
        cmd.env("FERRY_GRPC", format!("127.0.0.1:{port}")).arg("--no-grpc");
    });
    let before = s.child.wait_for("admin user", Duration::from_secs(10)).unwrap();
    assert!(!before.iter().any(|l| l.contains("gRPC")), "{before:?}");
    assert_eq!(health(s.grpc), None);

    // --print-config shows the section.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--print-config", "--grpc", "127.0.0.1:7777"])
        .env_remove("FERRY_GRPC")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[grpc]\nenabled = true\nlisten = \"127.0.0.1:7777\""), "{text}");
}
