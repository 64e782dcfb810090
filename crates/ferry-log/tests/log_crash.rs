//! The durability promise under SIGKILL: a child process appends in `fsync` mode from many
//! tasks and prints every acknowledged sequence number; the parent kills it at a random
//! moment, 50 times, and after each kill reopens the log and checks that every record ever
//! acknowledged is there and intact, and that the log ends cleanly after its last good
//! record.
//!
//! The child is this same test binary, started with `--ignored --exact crash_child` and the
//! log directory in an environment variable.

use bytes::Bytes;
use ferry_log::{Durability, Log, LogOptions};
use ferry_testkit::LineChild;
use rand::Rng;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

const CHILD_ENV: &str = "FERRY_LOG_CRASH_CHILD_DIR";
const ROUNDS: usize = 50;
const TASKS: u64 = 16;

fn options() -> LogOptions {
    // Small segments, so that kills also land around segment rolls.
    LogOptions::new().segment_size(64 << 10).index_interval(1024).durability(Durability::Fsync)
}

/// The payload of a task's n-th append: recognisable, of varying size.
fn payload(task: u64, n: u64) -> Bytes {
    let mut v = format!("task {task} append {n}|").into_bytes();
    let filler = ((task * 7919 + n * 104_729) % 400) as usize;
    v.extend((0..filler).map(|i| (i as u64 ^ task ^ n) as u8));
    Bytes::from(v)
}

#[test]
#[ignore = "the child process of sigkill_under_load_loses_nothing_acknowledged"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let log = options().open(&dir).unwrap();
        println!("READY {}", log.next_seq());
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let a = log.append(payload(task, n)).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {task} {n}", a.seq).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        // The parent kills us long before this; the bound only keeps a lost child from
        // running forever.
        let _ = tokio::time::timeout(Duration::from_secs(60), futures_join(tasks)).await;
    });
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut rng = rand::thread_rng();
    let mut total_kills = 0;
    let mut acks_per_round = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for round in 0..ROUNDS {
        let child = LineChild::self_test("crash_child", &[(CHILD_ENV, dir.path().as_os_str())]);
        // Wait (bounded) until the child has opened the log, then let it run a little.
        let mut lines =
            child.wait_for("READY", Duration::from_secs(60)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..120)));
        lines.extend(child.kill()); // SIGKILL
        total_kills += 1;

        let mut new_acks = 0;
        for line in lines.iter().filter_map(|l| l.split_once("ACK ").map(|(_, rest)| rest)) {
            let mut f = line.split(' ').map(|x| x.parse::<u64>().unwrap());
            let (seq, task, n) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            if let Some(old) = acked.insert(seq, (task, n)) {
                panic!("round {round}: sequence number {seq} acknowledged twice: {old:?} and {:?}", (task, n));
            }
            new_acks += 1;
        }

        let log = Log::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        // One pass over the whole log: every record verifies and follows the one before, and
        // every acknowledged one is there with its payload.
        let mut r = log.reader(log.first_seq()).unwrap();
        let mut count = 0;
        let mut found = 0;
        while let Some(rec) = r.try_next().unwrap_or_else(|e| panic!("round {round}: {e}")) {
            assert_eq!(rec.seq, log.first_seq() + count);
            count += 1;
            if let Some(&(task, n)) = acked.get(&rec.seq) {
                assert_eq!(rec.payload, payload(task, n), "round {round}: record {} changed", rec.seq);
                found += 1;
            }
        }
        assert_eq!(found, acked.len(), "round {round}: acknowledged records are missing");
        assert_eq!(log.first_seq() + count, log.next_seq());
        let last_acked = acked.keys().next_back().copied().unwrap_or(0);
        assert!(log.next_seq() > last_acked, "round {round}");
        rt.block_on(log.close()).unwrap();
        // After recovery nothing follows the last good record: a second look finds no damage.
        let inspection = ferry_log::inspect(dir.path(), 16 << 20).unwrap();
        assert!(inspection.damage.is_empty(), "round {round}: {:?}", inspection.damage);
        assert_eq!(inspection.records(), count);
        acks_per_round.push(new_acks);
    }
    assert_eq!(total_kills, ROUNDS);
    eprintln!("acknowledged {} records; per round: {acks_per_round:?}", acked.len());
    // Most kills must land while appends are flowing, or the test proves little.
    let busy = acks_per_round.iter().filter(|&&n| n > 0).count();
    assert!(busy > ROUNDS / 2, "acknowledgements per round: {acks_per_round:?}");
}
