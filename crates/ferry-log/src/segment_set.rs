//! What the log knows about its segments in memory: for each, its range of sequence
//! numbers, its committed length, its times and its sparse index. Readers consult it to find
//! a record; only the writer changes it.

use crate::index::{self, IndexEntry};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// One segment as the log knows it.
#[derive(Debug)]
pub(crate) struct SegmentMeta {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    /// A read handle shared by all readers.
    pub(crate) file: Arc<File>,
    /// Bytes of header and committed records. Readers never look past it.
    pub(crate) len: u64,
    /// The sequence number after the last committed record (`base` when empty).
    pub(crate) next_seq: u64,
    /// Timestamp of the last record (0 when empty).
    pub(crate) last_ts: u64,
    pub(crate) index: Vec<IndexEntry>,
}

impl SegmentMeta {
    pub(crate) fn is_empty(&self) -> bool {
        self.next_seq == self.base
    }

    pub(crate) fn first_ts(&self) -> Option<u64> {
        self.index.first().map(|e| e.timestamp)
    }

    /// Where to start scanning for `seq`: an index entry's offset and sequence number.
    pub(crate) fn seek_seq(&self, seq: u64) -> (u64, u64) {
        match index::floor_by_seq(&self.index, seq) {
            Some(e) => (e.offset, e.seq),
            None => (crate::segment::SEGMENT_HEADER_LEN, self.base),
        }
    }

    /// Where to start scanning for the first record at or after time `ts`.
    pub(crate) fn seek_time(&self, ts: u64) -> (u64, u64) {
        match index::floor_by_time(&self.index, ts) {
            Some(e) => (e.offset, e.seq),
            None => (crate::segment::SEGMENT_HEADER_LEN, self.base),
        }
    }
}

/// Public facts about one segment, for callers that decide what to truncate and for
/// `ferry log inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The first sequence number of the segment; also its name.
    pub base: u64,
    /// The segment file.
    pub path: PathBuf,
    /// Size in bytes, file header included.
    pub bytes: u64,
    /// Number of records.
    pub records: u64,
    /// Sequence number of the last record, if any.
    pub last_seq: Option<u64>,
    /// Timestamp of the first record, if any.
    pub first_timestamp: Option<u64>,
    /// Timestamp of the last record, if any.
    pub last_timestamp: Option<u64>,
}

/// Every segment of a log, in order.
#[derive(Debug, Default)]
pub(crate) struct SegmentSet {
    segments: BTreeMap<u64, SegmentMeta>,
}

impl SegmentSet {
    pub(crate) fn insert(&mut self, meta: SegmentMeta) {
        self.segments.insert(meta.base, meta);
    }

    pub(crate) fn remove(&mut self, base: u64) -> Option<SegmentMeta> {
        self.segments.remove(&base)
    }

    pub(crate) fn get(&self, base: u64) -> Option<&SegmentMeta> {
        self.segments.get(&base)
    }

    pub(crate) fn active(&self) -> Option<&SegmentMeta> {
        self.segments.values().next_back()
    }

    pub(crate) fn active_mut(&mut self) -> Option<&mut SegmentMeta> {
        self.segments.values_mut().next_back()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &SegmentMeta> {
        self.segments.values()
    }

    pub(crate) fn first_seq(&self) -> u64 {
        self.segments.values().next().map_or(1, |s| s.base)
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.active().map_or(1, |s| s.next_seq)
    }

    /// The segment holding `seq`, if it is committed.
    pub(crate) fn containing(&self, seq: u64) -> Option<&SegmentMeta> {
        let (_, seg) = self.segments.range(..=seq).next_back()?;
        (seq < seg.next_seq).then_some(seg)
    }

    pub(crate) fn info(&self) -> Vec<SegmentInfo> {
        self.segments
            .values()
            .map(|s| SegmentInfo {
                base: s.base,
                path: s.path.clone(),
                bytes: s.len,
                records: s.next_seq - s.base,
                last_seq: (!s.is_empty()).then(|| s.next_seq - 1),
                first_timestamp: s.first_ts(),
                last_timestamp: (!s.is_empty()).then_some(s.last_ts),
            })
            .collect()
    }
}
