//! A full, read-only check of a log directory, for `ferry log inspect`: every segment is
//! read to its end and every record verified, and damage is listed instead of stopping the
//! check. Safe to run beside a server that has the log open.

use crate::error::{Error, Result};
use crate::index;
use crate::recovery::{self, walk};
use crate::segment::{self, HeaderCheck, SEGMENT_HEADER_LEN};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What [`inspect`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Every segment, oldest first.
    pub segments: Vec<SegmentReport>,
    /// Every problem found, in log order.
    pub damage: Vec<Damage>,
}

impl Inspection {
    /// Whether anything is damaged beyond a torn tail, which the next open cuts by itself.
    pub fn is_corrupt(&self) -> bool {
        self.damage.iter().any(|d| !d.torn_tail)
    }

    /// Total records in good order.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }
}

/// One segment as [`inspect`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The segment's first sequence number.
    pub base: u64,
    /// The file.
    pub path: PathBuf,
    /// File size.
    pub bytes: u64,
    /// Records verified before the end or the first damage.
    pub records: u64,
    /// Timestamp of the first and the last good record.
    pub timestamps: Option<(u64, u64)>,
    /// The state of the segment's index file.
    pub index: IndexStatus,
}

/// The state of a segment's index file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexStatus {
    /// Present and consistent with the segment.
    Valid,
    /// No index file; the next open rebuilds it.
    Missing,
    /// Present but inconsistent; the next open rebuilds it.
    Stale,
}

/// A problem in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub segment: PathBuf,
    /// Where the problem starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// True for an incomplete write at the very end of the log, which is expected after a
    /// crash and cut at the next open.
    pub torn_tail: bool,
}

/// Checks the log in `dir` without changing anything. `max_record_size` should be the
/// value the log is opened with ([`LogOptions`](crate::LogOptions) default: 16 MiB).
///
/// # Errors
///
/// [`Error::Io`] if the directory or a file cannot be read. Damage is not an error: it is
/// listed in the result.
pub fn inspect(dir: &Path, max_record_size: usize) -> Result<Inspection> {
    let max_len = u32::try_from(max_record_size).unwrap_or(u32::MAX);
    let bases = recovery::list_segments(dir)?;
    let mut out = Inspection::default();
    let mut expected: Option<(u64, u64)> = None; // next seq, last timestamp
    for (i, &base) in bases.iter().enumerate() {
        let is_tail = i + 1 == bases.len();
        let path = segment::segment_path(dir, base);
        let file = Arc::new(File::open(&path).map_err(|e| Error::io("open", &path, e))?);
        let len = file.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        let mut damage = |offset, reason: String, torn_tail| {
            out.damage.push(Damage { segment: path.clone(), offset, reason, torn_tail });
        };
        if let Some((next, _)) = expected {
            if next != base {
                damage(
                    0,
                    format!("starts at sequence number {base}, but the segment before ends before {next}"),
                    false,
                );
            }
        }
        let header = segment::check_header(&file, base, len).map_err(|e| Error::io("read", &path, e))?;
        let mut report = SegmentReport {
            base,
            path: path.clone(),
            bytes: len,
            records: 0,
            timestamps: None,
            index: IndexStatus::Missing,
        };
        match header {
            HeaderCheck::Short => damage(0, "segment header is incomplete".into(), is_tail),
            HeaderCheck::Bad(reason) => damage(0, reason.into(), false),
            HeaderCheck::Good => {
                let prev_ts = expected.map_or(0, |e| e.1);
                let w = walk(&file, (SEGMENT_HEADER_LEN, base), len, prev_ts, max_len, None)
                    .map_err(|e| Error::io("read", &path, e))?;
                report.records = w.records;
                report.timestamps = w.first_ts.map(|first| (first, w.last_ts));
                let idx_path = segment::index_path(dir, base);
                report.index = if !idx_path.exists() {
                    IndexStatus::Missing
                } else if index::load(&idx_path, base, &file, w.end, max_len).is_some() {
                    IndexStatus::Valid
                } else {
                    IndexStatus::Stale
                };
                if let Some((offset, reason)) = w.stop {
                    let mut rest = vec![0u8; (len - offset) as usize];
                    file.read_exact_at(&mut rest, offset).map_err(|e| Error::io("read", &path, e))?;
                    let after = segment::valid_record_after(&rest, w.next_seq.saturating_sub(1), max_len);
                    let reason = match after {
                        Some(at) => format!("{reason}; a valid record follows at byte {}", offset + at as u64),
                        None => format!("{reason}; {} bytes to the end", len - offset),
                    };
                    damage(offset, reason, is_tail && after.is_none());
                }
                expected = Some((w.next_seq, w.last_ts));
            }
        }
        if !matches!(header, HeaderCheck::Good) {
            expected = None;
        }
        out.segments.push(report);
    }
    Ok(out)
}
