//! The sparse index of a segment: one entry per [`index_interval`](crate::LogOptions::index_interval)
//! bytes of records, for seeking by sequence number or by time without reading the segment
//! from its start.
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "FRYIDX", 0x00, format version 0x01
//!      8     8  base: the segment's first sequence number, u64 LE
//!     16    24  entry: seq u64 LE, timestamp u64 LE, offset u64 LE
//!     40    24  entry ...
//! ```
//!
//! The index is never synced: everything in it can be derived from its segment, so recovery
//! checks it against the segment and rebuilds it when it is missing, short, or disagrees.
//! The first record of a segment always has an entry, which gives each segment's first
//! timestamp.

use crate::error::{Error, Result};
use crate::record::{self, Header};
use crate::segment::SEGMENT_HEADER_LEN;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: [u8; 8] = *b"FRYIDX\x00\x01";
const FILE_HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 24;

/// One index entry: the record with sequence number `seq` starts at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) seq: u64,
    pub(crate) timestamp: u64,
    pub(crate) offset: u64,
}

impl IndexEntry {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.timestamp.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> IndexEntry {
        let u = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        IndexEntry { seq: u(0), timestamp: u(8), offset: u(16) }
    }
}

/// Decides which records get an entry, as records are appended in order.
#[derive(Clone, Debug)]
pub(crate) struct IndexPolicy {
    interval: u64,
    last_offset: Option<u64>,
}

impl IndexPolicy {
    pub(crate) fn new(interval: u64, last: Option<&IndexEntry>) -> IndexPolicy {
        IndexPolicy { interval, last_offset: last.map(|e| e.offset) }
    }

    /// Whether the record at `offset` gets an entry.
    pub(crate) fn wants(&mut self, offset: u64) -> bool {
        let wants = self.last_offset.is_none_or(|last| offset - last >= self.interval);
        if wants {
            self.last_offset = Some(offset);
        }
        wants
    }
}

/// The last entry at or before `seq`.
pub(crate) fn floor_by_seq(entries: &[IndexEntry], seq: u64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.seq <= seq);
    i.checked_sub(1).map(|i| &entries[i])
}

/// The last entry strictly before time `ts`: scanning from it finds the first record at or
/// after `ts`, since timestamps never decrease.
pub(crate) fn floor_by_time(entries: &[IndexEntry], ts: u64) -> Option<&IndexEntry> {
    let i = entries.partition_point(|e| e.timestamp < ts);
    i.checked_sub(1).map(|i| &entries[i])
}

/// Loads the index of segment `base`, or `None` if it is missing or fails a check against
/// the segment: entries in order, inside the segment, and the last one pointing at a record
/// that verifies and has the entry's sequence number.
pub(crate) fn load(path: &Path, base: u64, segment: &File, segment_len: u64, max_len: u32) -> Option<Vec<IndexEntry>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < FILE_HEADER_LEN || bytes[..8] != MAGIC || bytes[8..16] != base.to_le_bytes() {
        return None;
    }
    let body = &bytes[FILE_HEADER_LEN..];
    if body.len() % ENTRY_LEN != 0 {
        return None;
    }
    let entries: Vec<IndexEntry> = body.chunks_exact(ENTRY_LEN).map(IndexEntry::decode).collect();
    let first = entries.first()?;
    if first.seq != base || first.offset != SEGMENT_HEADER_LEN {
        return None;
    }
    let ordered = entries
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].offset < w[1].offset && w[0].timestamp <= w[1].timestamp);
    let last = entries.last()?;
    if !ordered || last.offset >= segment_len {
        return None;
    }
    let (record, _) = record_at(segment, last.offset, segment_len, max_len).ok()??;
    (record.seq == last.seq && record.timestamp == last.timestamp).then_some(entries)
}

/// Reads and verifies the record at `offset` (header and payload); `None` if no valid record
/// is there.
pub(crate) fn record_at(
    file: &File,
    offset: u64,
    end: u64,
    max_len: u32,
) -> std::io::Result<Option<(Header, Vec<u8>)>> {
    if offset + record::HEADER_LEN as u64 > end {
        return Ok(None);
    }
    let mut head = [0u8; record::HEADER_LEN];
    file.read_exact_at(&mut head, offset)?;
    let h = Header::decode(&head);
    if h.len > max_len || offset + h.record_len() > end {
        return Ok(None);
    }
    let mut whole = vec![0u8; h.record_len() as usize];
    file.read_exact_at(&mut whole, offset)?;
    Ok(matches!(record::parse(&whole, max_len), record::Parsed::Record(_)).then_some((h, whole)))
}

/// Writes a whole index file, replacing what was there, and returns it open for appending.
pub(crate) fn write(path: &Path, base: u64, entries: &[IndexEntry]) -> Result<File> {
    let mut bytes = Vec::with_capacity(FILE_HEADER_LEN + entries.len() * ENTRY_LEN);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&base.to_le_bytes());
    for e in entries {
        bytes.extend_from_slice(&e.encode());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("create index", path, e))?;
    file.write_all(&bytes).map_err(|e| Error::io("write index", path, e))?;
    Ok(file)
}

/// Appends entries to an open index file.
pub(crate) fn append(file: &mut File, path: &Path, entries: &[IndexEntry]) -> Result<()> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        bytes.extend_from_slice(&e.encode());
    }
    file.write_all(&bytes).map_err(|e| Error::io("write index", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: u64, timestamp: u64, offset: u64) -> IndexEntry {
        IndexEntry { seq, timestamp, offset }
    }

    #[test]
    fn floors() {
        let entries = [e(1, 10, 16), e(5, 10, 200), e(9, 20, 400)];
        assert_eq!(floor_by_seq(&entries, 0), None);
        assert_eq!(floor_by_seq(&entries, 1), Some(&entries[0]));
        assert_eq!(floor_by_seq(&entries, 8), Some(&entries[1]));
        assert_eq!(floor_by_seq(&entries, 100), Some(&entries[2]));
        assert_eq!(floor_by_time(&entries, 10), None);
        assert_eq!(floor_by_time(&entries, 11), Some(&entries[1]));
        assert_eq!(floor_by_time(&entries, 21), Some(&entries[2]));
    }

    #[test]
    fn policy_spaces_entries_by_bytes() {
        let mut p = IndexPolicy::new(100, None);
        assert!(p.wants(16));
        assert!(!p.wants(50));
        assert!(p.wants(116));
        assert!(!p.wants(215));
        assert!(p.wants(216));
    }
}
