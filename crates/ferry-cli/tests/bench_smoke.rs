//! A smoke run of `ferry bench sp`: it finishes, and its JSON has one row per metric with
//! positive numbers. Timings are not checked: this machine's speed is nobody's business.

use std::process::Command;

#[test]
fn bench_sp_quick_json_over_inproc() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "sp", "--quick", "--json", "--transports", "inproc"])
        .output()
        .expect("run ferry bench sp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry bench sp failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    let rows = report["rows"].as_array().expect("rows");

    let expected = [
        ("reqrep_latency", "rtt_median", 64),
        ("reqrep_latency", "rtt_p99", 64),
        ("pushpull_throughput", "throughput", 64),
        ("pushpull_throughput", "throughput", 1024),
        ("pushpull_throughput", "throughput", 65536),
    ];
    assert_eq!(rows.len(), expected.len(), "rows: {rows:#?}");
    for (row, (workload, metric, size)) in rows.iter().zip(expected) {
        assert_eq!(row["workload"], workload, "{row}");
        assert_eq!(row["metric"], metric, "{row}");
        assert_eq!(row["size"], size, "{row}");
        assert_eq!(row["transport"], "inproc", "{row}");
        for system in ["ferry", "floor"] {
            let v = row[system].as_f64().unwrap_or(0.0);
            assert!(v > 0.0, "{system} in {row}");
        }
        assert!(row["ferry_over_floor"].as_f64().is_some_and(|r| r > 0.0), "{row}");
        // libnng needs gcc and libnng-dev at run time; without them the column is null.
        if report["libnng"] == true {
            assert!(row["libnng"].as_f64().is_some_and(|v| v > 0.0), "libnng in {row}");
            assert!(row["ferry_over_libnng"].as_f64().is_some_and(|r| r > 0.0), "{row}");
        } else {
            assert!(row["libnng"].is_null(), "{row}");
        }
    }
}

#[test]
fn bench_log_quick_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "log", "--quick", "--json", "--sizes", "64", "--appenders", "1,8", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run ferry bench log");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry bench log failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    assert_eq!(report["durability"], "fsync");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.iter().map(|r| r["appenders"].as_u64()).collect::<Vec<_>>(), [Some(1), Some(8)]);
    for row in rows {
        assert_eq!(row["size"], 64, "{row}");
        for key in ["log_appends_per_sec", "raw_fdatasyncs_per_sec", "ratio"] {
            assert!(row[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {row}");
        }
    }
    // The benchmark cleans up after itself.
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
}

#[test]
fn bench_broker_quick_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "broker", "--embedded", "--quick", "--json", "--sizes", "64", "--producers", "2"])
        .args(["--durability", "none", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run ferry bench broker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ferry bench broker failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (row["durability"].as_str(), row["size"].as_u64(), row["producers"].as_u64()),
        (Some("none"), Some(64), Some(2))
    );
    for key in ["log_appends_per_sec", "publish_per_sec", "end_to_end_per_sec", "publish_over_log", "latency_p50_us"] {
        assert!(row[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {row}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0, "the benchmark cleans up");
}
