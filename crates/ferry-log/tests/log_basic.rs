//! The log's behaviour through its public API: appends, reads, segment rolls, reopening,
//! truncation, durability modes and failures.

use bytes::Bytes;
use ferry_log::faults::Faults;
use ferry_log::{Durability, Error, Log, LogOptions, Position};
use std::sync::Arc;
use std::time::Duration;

fn small() -> LogOptions {
    LogOptions::new().segment_size(4096).index_interval(256)
}

fn payload(i: u64) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat((i % 50) as usize)))
}

async fn fill(log: &Log, n: u64) {
    for i in 0..n {
        let a = log.append(payload(log.next_seq())).await.unwrap();
        assert_eq!(a.seq, i + 1, "sequence numbers start at 1 and grow by one");
    }
}

fn assert_all(log: &Log, first: u64, next: u64) {
    let mut r = log.reader(first).unwrap();
    for seq in first..next {
        let rec = r.try_next().unwrap().unwrap_or_else(|| panic!("record {seq} missing"));
        assert_eq!(rec.seq, seq);
        assert_eq!(rec.payload, payload(seq));
    }
    assert!(r.try_next().unwrap().is_none());
}

#[tokio::test]
async fn appends_roll_segments_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 500).await;
    let segments = log.segments();
    assert!(segments.len() > 5, "4 KiB segments must roll: {}", segments.len());
    assert!(segments.iter().all(|s| s.bytes <= 4096));
    assert_eq!(segments.iter().map(|s| s.records).sum::<u64>(), 500);
    assert_all(&log, 1, 501);
    assert_all(&log, 250, 501);
    assert_eq!(log.read(377).unwrap().payload, payload(377));
}

#[tokio::test]
async fn reopening_keeps_everything_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 300).await;
    log.close().await.unwrap();

    let log = small().open(dir.path()).unwrap();
    assert_eq!(log.next_seq(), 301);
    assert_eq!(log.recovery().torn_tail, None);
    assert!(log.recovery().rebuilt_indexes.is_empty());
    assert_eq!(log.append(payload(301)).await.unwrap().seq, 301);
    assert_all(&log, 1, 302);
}

#[tokio::test]
async fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 300).await;
    let segments = log.segments();
    log.close().await.unwrap();
    let idx = |base: u64| dir.path().join(format!("{base:020}.idx"));
    std::fs::remove_file(idx(segments[0].base)).unwrap();
    std::fs::write(idx(segments[1].base), b"garbage").unwrap();
    let mut bytes = std::fs::read(idx(segments[2].base)).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x40; // the last entry now points elsewhere
    std::fs::write(idx(segments[2].base), &bytes).unwrap();

    let log = small().open(dir.path()).unwrap();
    let rebuilt = &log.recovery().rebuilt_indexes;
    assert!(rebuilt.contains(&segments[0].base) && rebuilt.contains(&segments[1].base), "{rebuilt:?}");
    assert!(rebuilt.contains(&segments[2].base), "{rebuilt:?}");
    assert_all(&log, 1, 301);
    log.close().await.unwrap();
    let log = small().open(dir.path()).unwrap();
    assert!(log.recovery().rebuilt_indexes.is_empty(), "rebuilt indexes were written back");
}

#[tokio::test]
async fn a_reader_follows_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    let mut tail = log.reader(1).unwrap();
    let writer = log.clone();
    let task = tokio::spawn(async move {
        for i in 1..=200 {
            writer.append(payload(i)).await.unwrap();
        }
    });
    for seq in 1..=200 {
        let rec = tokio::time::timeout(Duration::from_secs(10), tail.next()).await.unwrap().unwrap();
        assert_eq!((rec.seq, rec.payload), (seq, payload(seq)));
    }
    task.await.unwrap();
    log.close().await.unwrap();
    assert!(matches!(tokio::time::timeout(Duration::from_secs(10), tail.next()).await.unwrap(), Err(Error::Closed)));
}

#[tokio::test]
async fn read_by_position_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    let mut appended = Vec::new();
    for i in 1..=60 {
        appended.push(log.append(payload(i)).await.unwrap());
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for a in &appended {
        let rec = log.read_at(a.position).unwrap();
        assert_eq!((rec.seq, rec.timestamp, rec.payload), (a.seq, a.timestamp, payload(a.seq)));
    }
    let bogus = Position { segment: appended[0].position.segment, offset: appended[0].position.offset + 1 };
    assert!(matches!(log.read_at(bogus), Err(Error::BadPosition { .. })));
    assert!(matches!(log.read_at(Position { segment: 999_999, offset: 16 }), Err(Error::BadPosition { .. })));

    assert!(appended.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "timestamps never decrease");
    let t = appended[40].timestamp;
    let first_at_t = appended.iter().find(|a| a.timestamp >= t).unwrap().seq;
    let mut r = log.reader_at_time(t).unwrap();
    assert_eq!(r.try_next().unwrap().unwrap().seq, first_at_t);
    let after_all = appended.last().unwrap().timestamp + 1;
    assert_eq!(log.reader_at_time(after_all).unwrap().next_seq(), 61);
    assert_eq!(log.reader_at_time(0).unwrap().next_seq(), 1);
}

#[tokio::test]
async fn concurrent_appenders_get_distinct_consecutive_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25u64 {
                let body = Bytes::from(format!("{t}:{i}"));
                mine.push((log.append(body.clone()).await.unwrap().seq, body));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all.iter().map(|(s, _)| *s).collect::<Vec<_>>(), (1..=800).collect::<Vec<_>>());
    for (seq, body) in all {
        assert_eq!(log.read(seq).unwrap().payload, body);
    }
}

#[tokio::test]
async fn append_batch_keeps_records_together() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    let got = log.append_batch((1..=100).map(payload)).await.unwrap();
    assert_eq!(got.iter().map(|a| a.seq).collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>());
    assert!(log.segments().len() > 1, "a batch may span segments");
    assert_all(&log, 1, 101);
}

#[tokio::test]
async fn truncate_after_removes_the_tail_durably() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 400).await;
    let segments_before = log.segments().len();
    log.truncate_after(123).await.unwrap();
    assert_eq!(log.next_seq(), 124);
    assert!(log.segments().len() < segments_before);
    assert_all(&log, 1, 124);
    assert!(matches!(log.read(124), Err(Error::OutOfRange { .. })));
    assert_eq!(log.append(payload(124)).await.unwrap().seq, 124);
    log.close().await.unwrap();

    let log = small().open(dir.path()).unwrap();
    assert_eq!(log.next_seq(), 125);
    assert_all(&log, 1, 125);
    // To the very start, and a no-op past the end.
    log.truncate_after(500).await.unwrap();
    assert_eq!(log.next_seq(), 125);
    log.truncate_after(0).await.unwrap();
    assert_eq!(log.next_seq(), 1);
    assert_eq!(log.segments().len(), 1);
    fill(&log, 10).await;
    assert_all(&log, 1, 11);
}

#[tokio::test]
async fn removing_front_segments_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 400).await;
    let segments = log.segments();
    let cut = segments[3].base + 1; // inside the fourth segment
    let removed = log.remove_segments_before(cut).await.unwrap();
    assert_eq!(removed, segments[..3].iter().map(|s| s.base).collect::<Vec<_>>());
    assert_eq!(log.first_seq(), segments[3].base);
    assert!(!segments[0].path.exists());
    assert!(matches!(log.reader(1), Err(Error::OutOfRange { .. })));
    assert_all(&log, segments[3].base, 401);
    // The newest segment stays even when everything is before the cut.
    log.remove_segments_before(10_000).await.unwrap();
    assert_eq!(log.segments().len(), 1);
    log.close().await.unwrap();
    let log = small().open(dir.path()).unwrap();
    assert_eq!(log.next_seq(), 401);
    assert_eq!(log.first_seq(), log.segments()[0].base);
}

#[tokio::test]
async fn oversized_records_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().max_record_size(1000).open(dir.path()).unwrap();
    let err = log.append(vec![0u8; 1001]).await.unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { size: 1001, max: 1000 }), "{err}");
    assert_eq!(log.next_seq(), 1);
    assert_eq!(log.append(vec![0u8; 1000]).await.unwrap().seq, 1);
}

#[tokio::test]
async fn a_record_bigger_than_a_segment_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    log.append("small").await.unwrap();
    let big = Bytes::from(vec![7u8; 20_000]);
    let a = log.append(big.clone()).await.unwrap();
    log.append("after").await.unwrap();
    assert_eq!(log.read(a.seq).unwrap().payload, big);
    assert_eq!(log.segments().len(), 3);
}

#[tokio::test]
async fn one_writer_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    assert!(matches!(Log::open(dir.path()), Err(Error::Locked { .. })));
    let ro = LogOptions::new().read_only(true).open(dir.path()).unwrap();
    assert!(matches!(ro.append("x").await, Err(Error::ReadOnly)));
    log.close().await.unwrap();
    Log::open(dir.path()).unwrap();
}

#[tokio::test]
async fn dropping_the_last_handle_frees_the_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..50u64 {
        let log = LogOptions::new().durability(Durability::None).open(dir.path()).unwrap();
        assert_eq!(log.next_seq(), round + 1);
        log.append(format!("round {round}")).await.unwrap();
        let clone = log.clone();
        drop(log);
        drop(clone); // no close(): the drop alone must release the lock
    }
    assert_eq!(Log::open(dir.path()).unwrap().next_seq(), 51);
}

#[tokio::test]
async fn read_only_sees_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    fill(&log, 100).await;
    let ro = small().read_only(true).open(dir.path()).unwrap();
    assert_eq!(ro.next_seq(), 101);
    assert_all(&ro, 1, 101);
    assert!(matches!(ro.truncate_after(5).await, Err(Error::ReadOnly)));
}

#[tokio::test]
async fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        LogOptions::new().segment_size(10),
        LogOptions::new().index_interval(0),
        LogOptions::new().max_record_size(0),
        LogOptions::new().durability(Durability::Interval(Duration::ZERO)),
    ] {
        assert!(matches!(opts.open(dir.path()), Err(Error::InvalidOption { .. })));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");
}

#[tokio::test]
async fn every_durability_mode_keeps_records_across_a_clean_close() {
    for mode in [Durability::Fsync, Durability::Interval(Duration::from_millis(20)), Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let log = small().durability(mode).open(dir.path()).unwrap();
        fill(&log, 200).await;
        log.sync().await.unwrap();
        log.close().await.unwrap();
        let log = small().open(dir.path()).unwrap();
        assert_all(&log, 1, 201);
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_batch_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::new());
    let log = small().faults(faults.clone()).open(dir.path()).unwrap();
    fill(&log, 10).await;
    faults.set_space_left(30); // less than one record: the write is cut short
    let err = log.append(payload(11)).await.unwrap_err();
    assert!(matches!(&err, Error::Io { op: "write", .. }), "{err}");
    assert_eq!(log.next_seq(), 11);
    faults.set_space_left(u64::MAX);
    // The log goes on where it was: no partial bytes were left behind.
    assert_eq!(log.append(payload(11)).await.unwrap().seq, 11);
    assert_all(&log, 1, 12);
    log.close().await.unwrap();
    let log = small().open(dir.path()).unwrap();
    assert_eq!(log.recovery().torn_tail, None);
    assert_all(&log, 1, 12);
}

#[tokio::test]
async fn a_failed_sync_fails_its_appenders_and_stops_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::new());
    let log = small().faults(faults.clone()).open(dir.path()).unwrap();
    fill(&log, 10).await;
    faults.fail_next_sync();
    let err = log.append(payload(11)).await.unwrap_err();
    assert!(matches!(&err, Error::Io { op: "fdatasync", .. }), "{err}");
    assert_eq!(log.next_seq(), 11, "the record never became visible");
    assert!(log.read(11).is_err());
    assert!(matches!(log.append(payload(11)).await, Err(Error::Failed(_))));
    assert!(matches!(log.sync().await, Err(Error::Failed(_))));
    drop(log);
    // Reopening recovers; the unacknowledged record may or may not be there.
    let log = small().open(dir.path()).unwrap();
    let next = log.next_seq();
    assert!(next == 11 || next == 12, "{next}");
    assert_all(&log, 1, next);
}

#[tokio::test]
async fn unsynced_appends_complete_without_a_sync_and_share_order() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::new());
    let log = small().faults(faults.clone()).open(dir.path()).unwrap();
    // A failing sync would fail a durable append; an unsynced one never waits for it.
    faults.fail_next_sync();
    assert_eq!(log.append_unsynced(payload(1)).await.unwrap().seq, 1);
    assert_eq!(log.read(1).unwrap().payload, payload(1));
    // The next durable append runs into the failing sync.
    assert!(log.append(payload(2)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_complete_even_when_others_in_their_batch_give_up() {
    // The first appender of a batch passes the writer's wake-up on to the others; when it
    // is cancelled instead, the others must still hear about their records.
    let dir = tempfile::tempdir().unwrap();
    let log = small().open(dir.path()).unwrap();
    for round in 0..100u64 {
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let append = log.append(payload(round * 8 + i));
                if i % 2 == 0 {
                    // Gives up almost at once: often while waiting as a batch's leader.
                    let _ = tokio::time::timeout(Duration::from_micros(1), append).await;
                    true
                } else {
                    tokio::time::timeout(Duration::from_secs(10), append).await.is_ok_and(|r| r.is_ok())
                }
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap(), "round {round}: an appender never heard back");
        }
    }
}

#[tokio::test]
async fn fsync_latency_is_counted_per_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.sync_stats().count, 0);
    for i in 0..3 {
        log.append(payload(i)).await.unwrap(); // one at a time: one sync each
    }
    let stats = log.sync_stats();
    assert_eq!(stats.count, 3);
    assert!(stats.buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{stats:?}");
    assert!(stats.buckets.last().unwrap().1 <= 3);
    let other = tempfile::tempdir().unwrap();
    let unsynced = LogOptions::new().durability(Durability::None).open(other.path()).unwrap();
    unsynced.append("x").await.unwrap();
    assert_eq!(unsynced.sync_stats().count, 0);
}
