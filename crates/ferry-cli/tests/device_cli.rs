//! `ferry device` as a process: the load-balancer recipe from its `--help`, with ferry and
//! nngcat on either side, and its argument errors. Every process is killed on drop and
//! every wait is bounded.

use ferry_testkit::{free_port, wait_for_tcp, Proc};
use std::time::Duration;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const LIMIT: Duration = Duration::from_secs(20);

/// A running `ferry device --rep0 FRONT BACK` on free loopback ports.
fn load_balancer() -> (Proc, String, String) {
    let (fp, bp) = (free_port(), free_port());
    let (front, back) = (format!("tcp://127.0.0.1:{fp}"), format!("tcp://127.0.0.1:{bp}"));
    let device = Proc::spawn(FERRY, &["device", "--rep0", &front, &back]);
    assert!(wait_for_tcp(fp, LIMIT) && wait_for_tcp(bp, LIMIT), "ferry device does not listen: {:?}", device.kill());
    (device, front, back)
}

#[test]
fn nngcat_request_through_ferry_device_to_a_ferry_cat_worker() {
    let (device, front, back) = load_balancer();
    let _worker = Proc::spawn(FERRY, &["cat", "--rep0", "--dial", &back, "--data", "from ferry"]);
    let client = Proc::nngcat(&["--req0", "--dial", &front, "--data", "hello", "--quoted", "--recv-timeout", "5"]);
    let out = client.wait(LIMIT);
    assert_eq!(out.lines(), vec!["\"from ferry\""], "client: {out:?}; device: {:?}", device.kill());
}

#[test]
fn ferry_cat_requests_through_ferry_device_to_nngcat_workers() {
    let (device, front, back) = load_balancer();
    let _workers: Vec<Proc> = ["one", "two"]
        .iter()
        .map(|name| Proc::nngcat(&["--rep0", "--dial", &back, "--data", name, "--async"]))
        .collect();
    // Until both workers are connected a request may go to either; every request gets an
    // answer, and once both are up they answer in turn.
    let mut answers = Vec::new();
    while answers.len() < 40 && !(answers.contains(&"\"one\"".to_string()) && answers.contains(&"\"two\"".to_string()))
    {
        let out =
            Proc::spawn(FERRY, &["cat", "--req0", "--dial", &front, "--data", "hi", "--quoted", "--recv-timeout", "5"])
                .wait(LIMIT);
        assert_eq!(out.lines().len(), 1, "one answer per request: {out:?}; device: {:?}", device.kill());
        answers.push(out.stdout.trim().to_string());
    }
    assert!(answers.iter().all(|a| a == "\"one\"" || a == "\"two\""), "{answers:?}");
    assert!(
        answers.contains(&"\"one\"".into()) && answers.contains(&"\"two\"".into()),
        "both workers answer: {answers:?}"
    );
}

#[test]
fn device_help_shows_the_load_balancer_recipe() {
    let out = Proc::spawn(FERRY, &["device", "--help"]).wait(LIMIT);
    assert!(out.success(), "{out:?}");
    for line in [
        "ferry device --rep0 tcp://127.0.0.1:5555 tcp://127.0.0.1:5556",
        "ferry cat --rep0 --dial tcp://127.0.0.1:5556",
        "nngcat --rep0 --dial tcp://127.0.0.1:5556",
        "ferry cat --req0 --dial tcp://127.0.0.1:5555 --data hello --quoted",
        "nngcat --req0 --dial tcp://127.0.0.1:5555 --data hello --quoted",
    ] {
        assert!(out.stdout.contains(line), "--help lacks {line:?}:\n{}", out.stdout);
    }
}

#[test]
fn device_argument_errors() {
    let out = Proc::spawn(FERRY, &["device", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]).wait(LIMIT);
    assert!(!out.success() && out.stderr.contains("--rep0"), "no protocol: {out:?}");
    let out = Proc::spawn(FERRY, &["device", "--rep0", "tcp://127.0.0.1:1"]).wait(LIMIT);
    assert!(!out.success() && out.stderr.contains("BACK is required"), "no back: {out:?}");
    let out = Proc::spawn(FERRY, &["device", "--rep0", "nope://x", "tcp://127.0.0.1:0"]).wait(LIMIT);
    assert!(!out.success() && out.stderr.contains("cannot listen at nope://x"), "bad url: {out:?}");
}
