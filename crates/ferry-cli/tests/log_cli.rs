//! `ferry log inspect` against real log directories: a sound one, a torn one and a
//! corrupt one.

use std::process::{Command, Output};

fn inspect(dir: &std::path::Path, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["log", "inspect"]).arg(dir);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run ferry log inspect")
}

/// A closed log of `n` records in small segments.
fn make_log(dir: &std::path::Path, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let log = ferry_log::LogOptions::new().segment_size(4096).open(dir).expect("open");
        for i in 0..n {
            log.append(format!("record {i}")).await.expect("append");
        }
        log.close().await.expect("close");
    });
}

fn segment(dir: &std::path::Path, base: u64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.log"))
}

#[test]
fn a_sound_log_is_listed_with_its_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_log(dir.path(), 500);
    let out = inspect(dir.path(), false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("500 records"), "{stdout}");
    assert!(stdout.contains("00000000000000000001.log"), "{stdout}");
    assert!(stdout.contains("no damage"), "{stdout}");

    let out = inspect(dir.path(), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["records"], 500);
    assert_eq!(v["corrupt"], false);
    let segments = v["segments"].as_array().expect("segments");
    assert!(segments.len() > 1);
    assert_eq!(segments.iter().map(|s| s["records"].as_u64().unwrap_or(0)).sum::<u64>(), 500);
}

#[test]
fn a_torn_tail_is_reported_but_not_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_log(dir.path(), 50);
    let seg = segment(dir.path(), 1);
    let len = std::fs::metadata(&seg).expect("stat").len();
    std::fs::OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 3).expect("cut");
    let out = inspect(dir.path(), false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("torn tail"), "{stdout}");
    assert!(stdout.contains("49 records"), "{stdout}");
    assert_eq!(std::fs::metadata(&seg).expect("stat").len(), len - 3, "inspect changes nothing");
}

#[test]
fn corruption_fails_with_the_file_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_log(dir.path(), 500);
    let seg = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[16 + 30] ^= 0xff; // inside the first record
    std::fs::write(&seg, bytes).expect("write");
    let out = inspect(dir.path(), false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("00000000000000000001.log at byte 16"), "{stdout}");
    assert!(stdout.contains("CORRUPT"), "{stdout}");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = inspect(&dir.path().join("nope"), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}
