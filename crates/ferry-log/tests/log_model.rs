//! Random sequences of appends, reads, truncations, closes and reopens, checked after every
//! step against a plain in-memory model: a list of records starting at some sequence number.

use bytes::Bytes;
use ferry_log::{Durability, Log, LogOptions};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    /// Read the record at this fraction of the log.
    Read(f64),
    /// Truncate after the record at this fraction (0 removes everything).
    TruncateAfter(f64),
    /// Remove front segments before the record at this fraction.
    RemoveBefore(f64),
    Reopen,
    /// Read everything from the record at this fraction with a new reader.
    Scan(f64),
}

fn op() -> impl Strategy<Value = Op> {
    let payload = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        6 => payload.clone().prop_map(Op::Append),
        2 => proptest::collection::vec(payload, 1..20).prop_map(Op::AppendBatch),
        2 => (0.0..1.0f64).prop_map(Op::Read),
        1 => (0.0..1.0f64).prop_map(Op::TruncateAfter),
        1 => (0.0..1.0f64).prop_map(Op::RemoveBefore),
        1 => Just(Op::Reopen),
        1 => (0.0..1.0f64).prop_map(Op::Scan),
    ]
}

/// The model: records `first..first + records.len()`.
struct Model {
    first: u64,
    records: Vec<Bytes>,
}

impl Model {
    fn next(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    fn at(&self, frac: f64) -> u64 {
        self.first + (frac * self.records.len() as f64) as u64
    }

    fn get(&self, seq: u64) -> &Bytes {
        &self.records[(seq - self.first) as usize]
    }
}

fn options(durability: Durability) -> LogOptions {
    LogOptions::new().segment_size(4096).index_interval(200).durability(durability)
}

async fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.next_seq(), model.next());
    prop_assert!(log.first_seq() <= model.first.max(1));
    Ok(())
}

async fn run(ops: Vec<Op>, durability: Durability) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = options(durability).open(dir.path()).unwrap();
    let mut model = Model { first: 1, records: Vec::new() };
    for op in ops {
        match op {
            Op::Append(p) => {
                let a = log.append(p.clone()).await.unwrap();
                prop_assert_eq!(a.seq, model.next());
                model.records.push(p.into());
            }
            Op::AppendBatch(ps) => {
                let got = log.append_batch(ps.clone()).await.unwrap();
                let expected: Vec<u64> = (model.next()..model.next() + ps.len() as u64).collect();
                prop_assert_eq!(got.iter().map(|a| a.seq).collect::<Vec<_>>(), expected);
                model.records.extend(ps.into_iter().map(Bytes::from));
            }
            Op::Read(f) if !model.records.is_empty() => {
                let seq = model.at(f);
                let rec = log.read(seq).unwrap();
                prop_assert_eq!(&rec.payload, model.get(seq));
                prop_assert_eq!(log.read_at(rec.position).unwrap(), rec);
            }
            Op::Read(_) => {}
            Op::TruncateAfter(f) => {
                // Anything from "just before the first record" to the end.
                let seq = model.at(f).saturating_sub(1).max(model.first - 1);
                log.truncate_after(seq).await.unwrap();
                model.records.truncate((seq + 1 - model.first) as usize);
            }
            Op::RemoveBefore(f) => {
                let seq = model.at(f);
                log.remove_segments_before(seq).await.unwrap();
                let first = log.first_seq();
                prop_assert!(first <= seq.max(model.first), "removed a live record: first {first}, cut {seq}");
                prop_assert!(first >= model.first);
                model.records.drain(..(first - model.first) as usize);
                model.first = first;
            }
            Op::Reopen => {
                log.close().await.unwrap();
                log = options(durability).open(dir.path()).unwrap();
                prop_assert_eq!(log.recovery().torn_tail.clone(), None);
                prop_assert_eq!(log.first_seq(), model.first);
            }
            Op::Scan(f) => {
                let from = if model.records.is_empty() { model.next() } else { model.at(f) };
                let mut r = log.reader(from).unwrap();
                for seq in from..model.next() {
                    let rec = r.try_next().unwrap();
                    prop_assert_eq!(rec.as_ref().map(|r| (r.seq, &r.payload)), Some((seq, model.get(seq))));
                }
                prop_assert!(r.try_next().unwrap().is_none());
            }
        }
        check(&log, &model).await?;
    }
    // Finally, everything, after one more reopen.
    log.close().await.unwrap();
    let log = options(durability).open(dir.path()).unwrap();
    check(&log, &model).await?;
    let mut r = log.reader(model.first).unwrap();
    for seq in model.first..model.next() {
        prop_assert_eq!(r.try_next().unwrap().map(|r| r.payload), Some(model.get(seq).clone()));
    }
    log.close().await.unwrap();
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn the_log_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(run(ops, Durability::Fsync))?;
    }

    #[test]
    fn the_log_agrees_with_a_model_without_syncs(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(run(ops, Durability::None))?;
    }
}
