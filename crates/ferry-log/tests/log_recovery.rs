//! Recovery from damaged files: torn tails are cut to a clean prefix, damage anywhere else
//! is reported with its file and offset and never skipped.

use bytes::Bytes;
use ferry_log::{Error, Log, LogOptions};
use rand::Rng;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

fn opts() -> LogOptions {
    LogOptions::new().segment_size(8192).index_interval(512)
}

fn payload(seq: u64) -> Bytes {
    Bytes::from(format!("{seq}:{}", "y".repeat((seq * 13 % 90) as usize)))
}

/// A closed log of `n` records; returns the record boundaries of its newest segment.
fn make_log(dir: &Path, n: u64) -> (PathBuf, Vec<(u64, u64)>) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let log = opts().open(dir).unwrap();
        let mut ends = Vec::new();
        for seq in 1..=n {
            let a = log.append(payload(seq)).await.unwrap();
            ends.push((a.position.segment, a.position.offset + 24 + payload(seq).len() as u64));
        }
        let tail = log.segments().last().unwrap().clone();
        log.close().await.unwrap();
        let tail_ends =
            ends.iter().enumerate().filter(|(_, (s, _))| *s == tail.base).map(|(i, (_, e))| (i as u64 + 1, *e));
        (tail.path, tail_ends.collect())
    })
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn check_prefix(log: &Log, next: u64) {
    assert_eq!(log.next_seq(), next);
    let mut r = log.reader(1).unwrap();
    for seq in 1..next {
        assert_eq!(r.try_next().unwrap().unwrap().payload, payload(seq));
    }
    assert!(r.try_next().unwrap().is_none());
}

#[test]
fn a_tail_cut_anywhere_recovers_to_the_records_before_the_cut() {
    let original = tempfile::tempdir().unwrap();
    let (tail, ends) = make_log(original.path(), 200);
    let tail_name = tail.file_name().unwrap().to_owned();
    let len = std::fs::metadata(&tail).unwrap().len();
    let first_in_tail = ends[0].0;
    let mut rng = rand::thread_rng();
    let mut cuts: Vec<u64> = (0..60).map(|_| rng.gen_range(16..len)).collect();
    cuts.extend(ends.iter().map(|(_, e)| *e).take(3)); // exactly on record boundaries too
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let seg = dir.path().join(&tail_name);
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
        let whole = ends.iter().filter(|(_, e)| *e <= cut).count() as u64;
        let expect_next = first_in_tail + whole;

        let log = opts().open(dir.path()).unwrap();
        let on_boundary = cut == 16 || ends.iter().any(|(_, e)| *e == cut);
        assert_eq!(log.recovery().torn_tail.is_some(), !on_boundary, "cut at {cut}");
        check_prefix(&log, expect_next);
        // The log goes on from the cut, and the cut is permanent.
        rt.block_on(log.append(payload(expect_next))).unwrap();
        rt.block_on(log.close()).unwrap();
        let log = opts().open(dir.path()).unwrap();
        assert_eq!(log.recovery().torn_tail, None);
        check_prefix(&log, expect_next + 1);
        rt.block_on(log.close()).unwrap();
    }
}

#[test]
fn garbage_or_zeros_after_the_last_record_are_cut() {
    for junk in [vec![0u8; 3000], (0..3000u32).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>()] {
        let dir = tempfile::tempdir().unwrap();
        let (tail, _) = make_log(dir.path(), 100);
        OpenOptions::new().append(true).open(&tail).unwrap().write_all(&junk).unwrap();
        let log = opts().open(dir.path()).unwrap();
        let torn = log.recovery().torn_tail.clone().unwrap();
        assert_eq!(torn.bytes, 3000);
        assert!(torn.cut);
        check_prefix(&log, 101);
    }
}

#[test]
fn read_only_reports_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (tail, _) = make_log(dir.path(), 100);
    let len = std::fs::metadata(&tail).unwrap().len();
    OpenOptions::new().write(true).open(&tail).unwrap().set_len(len - 5).unwrap();
    let log = opts().read_only(true).open(dir.path()).unwrap();
    let torn = log.recovery().torn_tail.clone().unwrap();
    assert!(!torn.cut);
    check_prefix(&log, 100);
    assert_eq!(std::fs::metadata(&tail).unwrap().len(), len - 5, "read-only changed nothing");
    let inspection = ferry_log::inspect(dir.path(), 16 << 20).unwrap();
    assert_eq!(inspection.damage.len(), 1);
    assert!(inspection.damage[0].torn_tail);
    assert!(!inspection.is_corrupt());
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damage_before_good_records_in_the_newest_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (tail, ends) = make_log(dir.path(), 200);
    let (_, first_end) = ends[0];
    flip_byte(&tail, first_end + 30); // inside the second record of the newest segment
    let before = std::fs::read(&tail).unwrap();
    match opts().open(dir.path()) {
        Err(Error::Corrupt { segment, offset, reason }) => {
            assert_eq!(segment, tail);
            assert_eq!(offset, first_end);
            assert!(reason.contains("valid record follows"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(std::fs::read(&tail).unwrap(), before, "a failed open changes nothing");
    let inspection = ferry_log::inspect(dir.path(), 16 << 20).unwrap();
    assert!(inspection.is_corrupt());
    assert_eq!(inspection.damage[0].offset, first_end);
}

#[test]
fn damage_in_an_older_segment_is_found_on_open_or_on_read() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 300);
    let first = dir.path().join(format!("{:020}.log", 1));
    let len = std::fs::metadata(&first).unwrap().len();

    // Near its end (after the last index entry): the open itself fails.
    let near_end = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), near_end.path());
    flip_byte(&near_end.path().join(first.file_name().unwrap()), len - 3);
    assert!(matches!(opts().open(near_end.path()), Err(Error::Corrupt { .. })));

    // A sealed segment cut short: also at open.
    let short = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), short.path());
    OpenOptions::new()
        .write(true)
        .open(short.path().join(first.file_name().unwrap()))
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    assert!(matches!(opts().open(short.path()), Err(Error::Corrupt { .. })));

    // In its first record: the open trusts the index, and reading the record fails loudly.
    flip_byte(&first, 16 + 26);
    let log = opts().open(dir.path()).unwrap();
    match log.read(1) {
        Err(Error::Corrupt { segment, offset, .. }) => assert_eq!((segment, offset), (first.clone(), 16)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let next_segment = log.segments()[1].base;
    assert_eq!(log.read(next_segment).unwrap().payload, payload(next_segment));
    let inspection = ferry_log::inspect(dir.path(), 16 << 20).unwrap();
    assert!(inspection.is_corrupt());
    assert_eq!((inspection.damage[0].segment.clone(), inspection.damage[0].offset), (first, 16));
}

#[test]
fn a_missing_segment_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 300);
    let log = opts().read_only(true).open(dir.path()).unwrap();
    let middle = log.segments()[1].path.clone();
    drop(log);
    std::fs::remove_file(&middle).unwrap();
    let err = opts().open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("ends before"), "{err}");
}

#[test]
fn a_half_created_newest_segment_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 100);
    let log = opts().read_only(true).open(dir.path()).unwrap();
    let next = log.next_seq();
    drop(log);
    // A crash during creation leaves an empty or short file named after the next record.
    std::fs::write(dir.path().join(format!("{next:020}.log")), b"FRY").unwrap();
    let log = opts().open(dir.path()).unwrap();
    assert!(log.recovery().torn_tail.is_some());
    check_prefix(&log, next);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(log.append(payload(next))).unwrap().seq, next);
}

#[test]
fn a_stray_file_is_not_taken_for_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 10);
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    std::fs::write(dir.path().join("123.log"), b"not ours").unwrap();
    let log = opts().open(dir.path()).unwrap();
    check_prefix(&log, 11);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(log.close()).unwrap();
    // A file that has a segment's name but not its header is damage, not data.
    std::fs::write(dir.path().join(format!("{:020}.log", 11)), vec![b'Z'; 64]).unwrap();
    assert!(matches!(opts().open(dir.path()), Err(Error::Corrupt { .. })));
}
