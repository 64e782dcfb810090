//! `ferry bench broker <url>` against a real `ferry serve` over its REST and gRPC APIs: a smoke run
//! finishes, its JSON has the documented shape, and every message published in a
//! count-bound run arrives (once per subscription in a fan-out). Timings are not checked.
//! NATS and RabbitMQ are exercised by `bench/compare.sh` only: CI has neither.

use ferry_testkit::LineChild;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const PASSWORD: &str = "bench-password-1";

/// A `ferry serve` on a free loopback port with its data in a temporary directory; killed
/// when dropped.
struct Served {
    _child: LineChild,
    port: u16,
    grpc: u16,
    _dir: tempfile::TempDir,
}

fn serve() -> Served {
    serve_with(&[])
}

fn serve_with(args: &[&std::ffi::OsStr]) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, grpc) = (ferry_testkit::free_port(), ferry_testkit::free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["serve", "--http", &format!("127.0.0.1:{port}"), "--grpc", &format!("127.0.0.1:{grpc}"), "--data"])
        .arg(dir.path())
        .args(args);
    cmd.env_remove("FERRY_HTTP").env_remove("FERRY_DATA").env_remove("FERRY_DURABILITY").env_remove("FERRY_GRPC");
    cmd.env("FERRY_ADMIN_PASSWORD", PASSWORD);
    let child = LineChild::spawn(cmd);
    child.wait_for("listening on", Duration::from_secs(30)).expect("ferry serve started");
    assert!(ferry_testkit::wait_for_tcp(grpc, Duration::from_secs(30)), "gRPC never listened");
    Served { _child: child, port, grpc, _dir: dir }
}

impl Served {
    fn url(&self) -> String {
        format!("http://admin:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn grpc_url(&self) -> String {
        format!("grpc://admin:{PASSWORD}@127.0.0.1:{}", self.grpc)
    }
}

/// Runs `ferry bench broker` with `args`; its JSON report.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "broker"])
        .args(args)
        .env_remove("FERRY_TOKEN")
        .output()
        .expect("run ferry bench broker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry bench broker {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("the output is JSON")
}

fn positive(row: &Value, key: &str) -> f64 {
    let v = row[key].as_f64().unwrap_or(0.0);
    assert!(v > 0.0, "{key} in {row}");
    v
}

#[test]
fn a_quick_queue_run_over_rest_delivers_every_message() {
    let s = serve();
    let svg = tempfile::NamedTempFile::new().expect("temp file");
    let url = s.url();
    let svg_path = svg.path().to_str().expect("utf-8 path");
    let report = bench(&[&url, "--quick", "--json", "--sizes", "64,100", "--producers", "2", "--svg", svg_path]);

    assert_eq!(report["system"], "ferry-http");
    let target = report["target"].as_str().expect("target");
    assert!(target.starts_with("http://admin:***@127.0.0.1:"), "{target}");
    assert!(!target.contains(PASSWORD), "the password stays out of reports: {target}");
    assert_eq!(report["stop"]["count"], 2000);
    assert_eq!(report["load"]["mode"], "saturation");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.iter().map(|r| r["size"].as_u64()).collect::<Vec<_>>(), [Some(64), Some(100)]);
    for row in rows {
        assert!(row.get("errors").is_none(), "{row}");
        assert_eq!(row["pattern"], "queue", "{row}");
        assert_eq!(row["durability"], "fsync", "{row}");
        assert!(row["target_durability"].as_str().is_some_and(|d| d.contains("fsync")), "{row}");
        assert_eq!((row["producers"].as_u64(), row["consumers"].as_u64()), (Some(2), Some(2)), "{row}");
        // A count-bound run publishes exactly the count, and every message arrives.
        assert_eq!(row["published"], 2000, "{row}");
        assert_eq!(row["expected"], 2000, "{row}");
        assert_eq!(row["received"], 2000, "{row}");
        assert_eq!((row["lost"].as_u64(), row["foreign"].as_u64()), (Some(0), Some(0)), "{row}");
        positive(row, "publish_per_sec");
        positive(row, "end_to_end_per_sec");
        let latency = &row["latency_us"];
        assert_eq!(latency["samples"], 2000, "{row}");
        let p50 = positive(latency, "p50");
        let p99 = positive(latency, "p99");
        let max = positive(latency, "max");
        assert!(p50 <= p99 && p99 <= positive(latency, "p99_9") && p99 <= max, "{latency}");
        let series = row["latency_over_time"].as_array().expect("latency_over_time");
        let samples: u64 = series.iter().map(|p| p["samples"].as_u64().unwrap_or(0)).sum();
        assert_eq!(samples, 2000, "every sample is in the series: {series:?}");
        assert_eq!(row["rounds"].as_array().map(Vec::len), Some(1), "{row}");
    }
    let svg = std::fs::read_to_string(svg.path()).expect("the SVG was written");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.matches("<polyline").count() + svg.matches("<circle").count() >= 6, "{svg}");
}

#[test]
fn a_quick_fanout_run_over_rest_delivers_every_message_to_every_subscription() {
    let s = serve();
    let url = s.url();
    let report = bench(&[
        &url,
        "--quick",
        "--json",
        "--sizes",
        "64",
        "--producers",
        "1",
        "--pattern",
        "fanout",
        "--consumers",
        "3",
        "--durability",
        "none",
    ]);
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row["pattern"].as_str(), row["durability"].as_str()), (Some("fanout"), Some("none")), "{row}");
    assert_eq!(row["published"], 2000, "{row}");
    assert_eq!(row["expected"], 6000, "{row}");
    assert_eq!(row["received"], 6000, "{row}");
    positive(row, "end_to_end_per_sec");
}

#[test]
fn quick_runs_over_grpc_deliver_every_message() {
    let s = serve();
    let url = s.grpc_url();
    let report = bench(&[&url, "--quick", "--json", "--sizes", "64", "--producers", "2"]);
    assert_eq!(report["system"], "ferry-grpc");
    let row = &report["rows"][0];
    assert!(row.get("errors").is_none(), "{row}");
    assert_eq!((row["published"].as_u64(), row["received"].as_u64()), (Some(2000), Some(2000)), "{row}");
    assert_eq!((row["lost"].as_u64(), row["foreign"].as_u64()), (Some(0), Some(0)), "{row}");
    positive(row, "end_to_end_per_sec");
    // Fan-out over Consume streams, and over auto-ack receives.
    for extra in [&[][..], &["--auto-ack"][..]] {
        let mut args = vec![url.as_str(), "--quick", "--json", "--sizes", "64", "--pattern", "fanout"];
        args.extend(["--consumers", "3", "--durability", "none"]);
        args.extend(extra);
        let report = bench(&args);
        let row = &report["rows"][0];
        assert!(row.get("errors").is_none(), "{extra:?}: {row}");
        assert_eq!((row["expected"].as_u64(), row["received"].as_u64()), (Some(6000), Some(6000)), "{row}");
    }
}

#[test]
fn a_publish_only_run_reports_no_receipts() {
    let s = serve();
    let url = s.url();
    let report = bench(&[&url, "--quick", "--json", "--sizes", "64", "--consumers", "0", "--durability", "interval:5"]);
    let row = &report["rows"][0];
    assert_eq!(row["durability"], "interval:5", "{row}");
    assert_eq!((row["published"].as_u64(), row["received"].as_u64()), (Some(2000), Some(0)), "{row}");
    positive(row, "publish_per_sec");
    assert!(row["latency_us"].is_null(), "{row}");
}

#[test]
fn a_quick_run_over_https_checks_the_certificate() {
    let certs = ferry_testkit::TestCerts::new();
    let (cert, key, ca) = (certs.cert_file(), certs.key_file(), certs.ca_file());
    let s = serve_with(&["--tls-cert".as_ref(), cert.as_os_str(), "--tls-key".as_ref(), key.as_os_str()]);
    let url = format!("https://admin:{PASSWORD}@127.0.0.1:{}", s.port);
    let ca = ca.to_str().expect("utf-8 path");
    let report = bench(&[&url, "--quick", "--json", "--sizes", "64", "--ca-file", ca]);
    let row = &report["rows"][0];
    assert_eq!((row["published"].as_u64(), row["received"].as_u64()), (Some(2000), Some(2000)), "{row}");
    // Without the authority, the server's certificate is not trusted.
    let other = ferry_testkit::TestCerts::new();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "broker", &url, "--quick", "--ca-file"])
        .arg(other.ca_file())
        .output()
        .expect("run ferry bench broker");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_unreachable_target_is_one_clear_line() {
    let port = ferry_testkit::free_port();
    for url in [format!("http://admin:secret@127.0.0.1:{port}"), format!("amqp://127.0.0.1:{port}")] {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["bench", "broker", &url, "--quick"])
            .output()
            .expect("run ferry bench broker");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("cannot reach"), "{stderr}");
        assert!(lines[0].contains(&format!("127.0.0.1:{port}")), "{stderr}");
        assert!(!lines[0].contains("secret"), "{stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "broker", "ftp://127.0.0.1:21", "--quick"])
        .output()
        .expect("run ferry bench broker");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme `ftp://`"));
}
