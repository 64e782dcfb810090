//! Opening a log after any kind of stop, clean or not.
//!
//! Segments are checked oldest first. A segment other than the newest was synced before its
//! successor was created, so its records must all be whole: its index is checked against it
//! (and rebuilt by a full scan if it does not hold), the records after the last index entry
//! are verified, and any failure is [`Error::Corrupt`] naming the file and offset.
//!
//! The newest segment is verified from its first record to its end. If a record fails,
//! recovery looks at everything after it: when nothing valid follows, the bytes are the torn
//! tail of a write that never completed (and was never acknowledged), so they are cut off;
//! when a valid record follows, the damage is in the middle of data that was once whole,
//! and opening fails rather than silently dropping acknowledged records.
//!
//! Finally, consecutive segments must continue each other's sequence numbers and times.

use crate::error::{Error, Result};
use crate::index::{self, IndexEntry, IndexPolicy};
use crate::segment::{self, HeaderCheck, Scanned, Scanner, SEGMENT_HEADER_LEN};
use crate::segment_set::{SegmentMeta, SegmentSet};
use crate::LogOptions;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What recovery did when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The incomplete write found at the end of the log, if any.
    pub torn_tail: Option<TornTail>,
    /// Segments whose index was missing or stale and was rebuilt.
    pub rebuilt_indexes: Vec<u64>,
}

/// An incomplete write at the end of the newest segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the incomplete record starts; everything from here on is cut.
    pub offset: u64,
    /// How many bytes that is.
    pub bytes: u64,
    /// Why the record there was rejected.
    pub reason: String,
    /// Whether the bytes were cut (false when the log was opened read-only).
    pub cut: bool,
}

/// The segment files in `dir`, by base sequence number.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(segment::parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// The result of walking part of a segment.
pub(crate) struct Walk {
    /// Offset just past the last good record.
    pub(crate) end: u64,
    pub(crate) next_seq: u64,
    pub(crate) last_ts: u64,
    pub(crate) records: u64,
    pub(crate) first_ts: Option<u64>,
    /// Index entries for the records walked, if asked for.
    pub(crate) entries: Vec<IndexEntry>,
    /// Where and why the walk stopped before the end of the file.
    pub(crate) stop: Option<(u64, &'static str)>,
}

/// Verifies records from `from` (which holds `seq`) to `end`: checksums, consecutive
/// sequence numbers, timestamps that never go back.
pub(crate) fn walk(
    file: &Arc<File>,
    (from, seq): (u64, u64),
    end: u64,
    prev_ts: u64,
    max_len: u32,
    mut policy: Option<IndexPolicy>,
) -> std::io::Result<Walk> {
    let mut scanner = Scanner::new(file.clone(), from, end, max_len);
    let mut w = Walk {
        end: from,
        next_seq: seq,
        last_ts: prev_ts,
        records: 0,
        first_ts: None,
        entries: Vec::new(),
        stop: None,
    };
    loop {
        match scanner.next_record()? {
            Scanned::End => return Ok(w),
            Scanned::Stop { offset, reason } => {
                w.stop = Some((offset, reason));
                return Ok(w);
            }
            Scanned::Record { offset, header, .. } => {
                if header.seq != w.next_seq {
                    w.stop = Some((offset, "sequence number out of order"));
                    return Ok(w);
                }
                if header.timestamp < w.last_ts {
                    w.stop = Some((offset, "timestamp goes backwards"));
                    return Ok(w);
                }
                if policy.as_mut().is_some_and(|p| p.wants(offset)) {
                    w.entries.push(IndexEntry { seq: header.seq, timestamp: header.timestamp, offset });
                }
                w.end = scanner.position();
                w.next_seq += 1;
                w.last_ts = header.timestamp;
                w.records += 1;
                w.first_ts.get_or_insert(header.timestamp);
            }
        }
    }
}

/// Recovers the log in `dir` and returns its segments, creating the first segment of a new
/// log unless `opts.read_only`.
pub(crate) fn recover(dir: &Path, opts: &LogOptions) -> Result<(SegmentSet, Recovery)> {
    let bases = list_segments(dir)?;
    let mut set = SegmentSet::default();
    let mut report = Recovery::default();
    let mut prev: Option<(u64, u64)> = None; // (next_seq, last_ts) of the previous segment
    for (i, &base) in bases.iter().enumerate() {
        let is_tail = i + 1 == bases.len();
        let path = segment::segment_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(!opts.read_only)
            .open(&path)
            .map_err(|e| Error::io("open segment", &path, e))?;
        let len = file.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        if let Some((next_seq, _)) = prev {
            if next_seq != base {
                return Err(Error::corrupt(
                    &path,
                    0,
                    format!("segment starts at sequence number {base} but the one before it ends before {next_seq}"),
                ));
            }
        }
        let prev_ts = prev.map_or(0, |p| p.1);
        let file = Arc::new(file);
        let meta = match segment::check_header(&file, base, len).map_err(|e| Error::io("read", &path, e))? {
            HeaderCheck::Bad(reason) => return Err(Error::corrupt(&path, 0, reason)),
            HeaderCheck::Short if !is_tail => return Err(Error::corrupt(&path, 0, "segment header is incomplete")),
            HeaderCheck::Short => {
                report.torn_tail = Some(TornTail {
                    segment: path.clone(),
                    offset: 0,
                    bytes: len,
                    reason: "segment header is incomplete".into(),
                    cut: !opts.read_only,
                });
                if !opts.read_only {
                    segment::rewrite_header(&file, &path, base)?;
                }
                SegmentMeta {
                    base,
                    path,
                    file,
                    len: SEGMENT_HEADER_LEN,
                    next_seq: base,
                    last_ts: prev_ts,
                    index: vec![],
                }
            }
            HeaderCheck::Good if is_tail => recover_tail(base, path, file, len, prev_ts, opts, &mut report)?,
            HeaderCheck::Good => recover_sealed(base, path, file, len, prev_ts, opts, &mut report)?,
        };
        prev = Some((meta.next_seq, meta.last_ts));
        set.insert(meta);
    }
    if bases.is_empty() && !opts.read_only {
        let path = segment::segment_path(dir, 1);
        drop(segment::create(dir, 1)?);
        let file = File::open(&path).map_err(|e| Error::io("open segment", &path, e))?;
        let index = vec![];
        index::write(&segment::index_path(dir, 1), 1, &index)?;
        set.insert(SegmentMeta {
            base: 1,
            path,
            file: Arc::new(file),
            len: SEGMENT_HEADER_LEN,
            next_seq: 1,
            last_ts: 0,
            index,
        });
    }
    Ok((set, report))
}

/// A segment that was complete and synced when the next one was made.
fn recover_sealed(
    base: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    prev_ts: u64,
    opts: &LogOptions,
    report: &mut Recovery,
) -> Result<SegmentMeta> {
    let max_len = opts.max_record_size as u32;
    let idx_path = segment::index_path(path.parent().unwrap_or(Path::new(".")), base);
    let loaded = index::load(&idx_path, base, &file, len, max_len);
    let rebuilt = loaded.is_none();
    let mut index = loaded.unwrap_or_default();
    let (start, policy) = match index.last() {
        Some(e) => ((e.offset, e.seq), None),
        None => ((SEGMENT_HEADER_LEN, base), Some(IndexPolicy::new(opts.index_interval, None))),
    };
    let start_ts = index.last().map_or(prev_ts, |e| e.timestamp);
    let w = walk(&file, start, len, start_ts, max_len, policy).map_err(|e| Error::io("read", &path, e))?;
    if let Some((offset, reason)) = w.stop {
        return Err(Error::corrupt(&path, offset, reason));
    }
    if rebuilt {
        index = w.entries;
        report.rebuilt_indexes.push(base);
        if !opts.read_only {
            index::write(&idx_path, base, &index)?;
        }
    }
    Ok(SegmentMeta { base, path, file, len: w.end, next_seq: w.next_seq, last_ts: w.last_ts, index })
}

/// The newest segment: every record verified, a torn tail cut.
fn recover_tail(
    base: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    prev_ts: u64,
    opts: &LogOptions,
    report: &mut Recovery,
) -> Result<SegmentMeta> {
    let max_len = opts.max_record_size as u32;
    let policy = IndexPolicy::new(opts.index_interval, None);
    let w = walk(&file, (SEGMENT_HEADER_LEN, base), len, prev_ts, max_len, Some(policy))
        .map_err(|e| Error::io("read", &path, e))?;
    if let Some((offset, reason)) = w.stop {
        let rest_len =
            usize::try_from(len - offset).map_err(|_| Error::corrupt(&path, offset, "segment too large to examine"))?;
        let mut rest = vec![0u8; rest_len];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut rest, offset)
            .map_err(|e| Error::io("read", &path, e))?;
        let after_seq = w.next_seq.saturating_sub(1);
        if let Some(at) = segment::valid_record_after(&rest, after_seq, max_len) {
            return Err(Error::corrupt(
                &path,
                offset,
                format!("{reason}, yet a valid record follows at byte {}", offset + at as u64),
            ));
        }
        tracing::warn!(segment = %path.display(), offset, bytes = len - offset, reason, "cutting the torn tail of the log");
        report.torn_tail = Some(TornTail {
            segment: path.clone(),
            offset,
            bytes: len - offset,
            reason: reason.into(),
            cut: !opts.read_only,
        });
        if !opts.read_only {
            file.set_len(offset).map_err(|e| Error::io("truncate", &path, e))?;
            file.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
        }
    }
    let idx_path = segment::index_path(path.parent().unwrap_or(Path::new(".")), base);
    if !opts.read_only {
        index::write(&idx_path, base, &w.entries)?;
    }
    Ok(SegmentMeta { base, path, file, len: w.end, next_seq: w.next_seq, last_ts: w.last_ts, index: w.entries })
}
