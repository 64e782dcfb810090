//! Reading the log: a [`LogReader`] walks records in order from a sequence number or a
//! time and can follow the tail; [`read_at`] fetches one record by position.
//!
//! Reads are plain `pread`s, mostly served from the page cache, done on the caller's thread:
//! a log read is shorter than a hop to a blocking thread pool would be.

use crate::error::{Error, Result};
use crate::index;
use crate::record::{Position, Record, HEADER_LEN};
use crate::segment::{Scanned, Scanner, SEGMENT_HEADER_LEN};
use crate::{Shared, Visible};
use std::sync::Arc;
use tokio::sync::watch;

/// Reads records in sequence order. Made by [`Log::reader`](crate::Log::reader) or
/// [`Log::reader_at_time`](crate::Log::reader_at_time).
///
/// # Examples
///
/// Following the tail while another task appends:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ferry_log::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let log = ferry_log::Log::open(dir.path())?;
/// let mut tail = log.reader(log.next_seq())?;
/// let writer = log.clone();
/// tokio::spawn(async move { writer.append("news").await });
/// assert_eq!(tail.next().await?.payload, "news");
/// # Ok(())
/// # }
/// ```
pub struct LogReader {
    shared: Arc<Shared>,
    next: u64,
    cursor: Option<Cursor>,
    visible: watch::Receiver<Visible>,
}

struct Cursor {
    base: u64,
    scanner: Scanner,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>, seq: u64) -> Result<LogReader> {
        let visible = shared.state.subscribe();
        let next = visible.borrow().next;
        let first = shared.read_segments().first_seq();
        if seq < first || seq > next {
            return Err(Error::OutOfRange { seq, first, next });
        }
        Ok(LogReader { shared, next: seq, cursor: None, visible })
    }

    pub(crate) fn at_time(shared: Arc<Shared>, millis: u64) -> Result<LogReader> {
        let seq = first_at_or_after(&shared, millis)?;
        LogReader::new(shared, seq)
    }

    /// The sequence number of the record the reader returns next.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The next record if it is already readable, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] if the record fails its checks; [`Error::OutOfRange`] if its
    /// segment was removed from the front meanwhile; [`Error::Io`].
    pub fn try_next(&mut self) -> Result<Option<Record>> {
        if self.next >= self.visible.borrow_and_update().next {
            return Ok(None);
        }
        let mut repositioned = false;
        loop {
            let cursor = match &mut self.cursor {
                Some(c) => c,
                None => match self.position()? {
                    Some(c) => self.cursor.insert(c),
                    None => return Ok(None),
                },
            };
            let path = || crate::segment::segment_path(&self.shared.dir, cursor.base);
            match cursor.scanner.next_record().map_err(|e| Error::io("read", path(), e))? {
                Scanned::Record { offset, header, record } => {
                    if header.seq < self.next {
                        continue;
                    }
                    if header.seq != self.next {
                        return Err(Error::corrupt(path(), offset, "sequence number out of order"));
                    }
                    self.next += 1;
                    let position = Position { segment: cursor.base, offset };
                    return Ok(Some(Record {
                        seq: header.seq,
                        timestamp: header.timestamp,
                        position,
                        payload: record.slice(HEADER_LEN..),
                    }));
                }
                Scanned::Stop { offset, reason } => return Err(Error::corrupt(path(), offset, reason)),
                Scanned::End => {
                    // The segment grew, or the next record is in the next segment.
                    let grown = self.shared.read_segments().get(cursor.base).map(|m| m.len);
                    match grown {
                        Some(len) if len > cursor.scanner.end() => cursor.scanner.set_end(len),
                        _ if repositioned => {
                            return Err(Error::corrupt(path(), cursor.scanner.position(), "record missing"));
                        }
                        _ => {
                            self.cursor = None;
                            repositioned = true;
                        }
                    }
                }
            }
        }
    }

    /// The next record, waiting for it to be appended if need be (tail-follow).
    ///
    /// # Errors
    ///
    /// As [`try_next`](Self::try_next), and [`Error::Closed`] once the log is closed and
    /// every record has been read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, no record is skipped.
    pub async fn next(&mut self) -> Result<Record> {
        loop {
            if let Some(r) = self.try_next()? {
                return Ok(r);
            }
            if self.visible.borrow().closed {
                return Err(Error::Closed);
            }
            self.visible.changed().await.map_err(|_| Error::Closed)?;
        }
    }

    /// Finds the segment holding the next record and where to start scanning in it.
    fn position(&self) -> Result<Option<Cursor>> {
        let set = self.shared.read_segments();
        let Some(meta) = set.containing(self.next) else {
            let first = set.first_seq();
            return if self.next < first {
                Err(Error::OutOfRange { seq: self.next, first, next: set.next_seq() })
            } else {
                Ok(None)
            };
        };
        let (offset, _) = meta.seek_seq(self.next);
        let max_len = self.shared.opts.max_record_size as u32;
        Ok(Some(Cursor { base: meta.base, scanner: Scanner::new(meta.file.clone(), offset, meta.len, max_len) }))
    }
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").field("next_seq", &self.next).finish()
    }
}

/// The sequence number of the first record at or after `millis`, or the next sequence
/// number if there is none.
fn first_at_or_after(shared: &Shared, millis: u64) -> Result<u64> {
    let set = shared.read_segments();
    let max_len = shared.opts.max_record_size as u32;
    let Some(meta) = set.iter().find(|s| !s.is_empty() && s.last_ts >= millis) else {
        return Ok(set.next_seq());
    };
    let (offset, _) = meta.seek_time(millis);
    let mut scanner = Scanner::new(meta.file.clone(), offset, meta.len, max_len);
    loop {
        match scanner.next_record().map_err(|e| Error::io("read", &meta.path, e))? {
            Scanned::Record { header, .. } if header.timestamp >= millis => return Ok(header.seq),
            Scanned::Record { .. } => {}
            Scanned::End => return Ok(meta.next_seq),
            Scanned::Stop { offset, reason } => return Err(Error::corrupt(&meta.path, offset, reason)),
        }
    }
}

/// Reads the record at `position`, verifying it.
pub(crate) fn read_at(shared: &Shared, position: Position) -> Result<Record> {
    let bad = Error::BadPosition { segment: position.segment, offset: position.offset };
    let (file, len, path) = {
        let set = shared.read_segments();
        let meta = set.get(position.segment).ok_or(bad.clone())?;
        (meta.file.clone(), meta.len, meta.path.clone())
    };
    if position.offset < SEGMENT_HEADER_LEN || position.offset >= len {
        return Err(bad);
    }
    let max_len = shared.opts.max_record_size as u32;
    let (header, whole) =
        index::record_at(&file, position.offset, len, max_len).map_err(|e| Error::io("read", &path, e))?.ok_or(bad)?;
    let payload = bytes::Bytes::from(whole).slice(HEADER_LEN..);
    Ok(Record { seq: header.seq, timestamp: header.timestamp, position, payload })
}
