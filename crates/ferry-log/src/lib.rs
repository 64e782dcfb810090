//! A durable, segmented, append-only log: the storage under ferry's broker.
//!
//! # How it works
//!
//! Records go into **segment files** of a configurable size, named by the sequence number
//! of their first record. Each record carries its length, a CRC32C, its sequence number
//! and a timestamp (`record.rs` has the byte table). Each segment has a **sparse index**
//! (one entry per 16 KiB of records by default) for seeking by sequence number or by time.
//!
//! **Group commit.** [`Log::append`] computes the payload's checksum on the caller's task
//! and queues the record. One writer thread takes everything queued, writes it with one
//! vectored write, calls `fdatasync` once, and completes every appender in the batch. While
//! it syncs, the next batch fills up, so the cost of a sync is shared by as many records as
//! there are concurrent appenders. The [`Durability`] mode says when an append completes:
//! after the sync (the default), after the write with a sync at least every interval, or
//! after the write.
//!
//! **Recovery.** Opening a log verifies the newest segment record by record. An incomplete
//! record at its end (a crash in the middle of a write that was never acknowledged) is cut
//! off. Damage anywhere else, or damage with valid records behind it, is an
//! [`Error::Corrupt`] naming the file and offset: nothing acknowledged is skipped silently.
//! Older segments are checked against their index (rebuilt from the segment when missing or
//! stale); every read verifies checksums again.
//!
//! **Readers** see a record once it is complete under the durability mode, never before.
//! They can start at a sequence number or a time, and follow the tail.
//!
//! **Truncation** removes whole segments from the front ([`Log::remove_segments_before`];
//! the caller decides what is still live) or records from the back ([`Log::truncate_after`],
//! as Raft does with conflicting entries).
//!
//! **Snapshots** ([`snapshot`]) are single files replaced atomically, for the state
//! machines built on the log.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ferry_log::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let log = ferry_log::Log::open(dir.path())?;
//! let first = log.append("hello").await?; // durable once this returns
//! log.append("world").await?;
//!
//! let mut reader = log.reader(first.seq)?;
//! assert_eq!(reader.next().await?.payload, "hello");
//! assert_eq!(reader.next().await?.payload, "world");
//! log.close().await
//! # }
//! ```

#![forbid(unsafe_code)]

mod error;
#[doc(hidden)]
pub mod faults;
mod index;
mod inspect;
mod options;
mod reader;
mod record;
mod recovery;
mod segment;
mod segment_set;
pub mod snapshot;
mod sync_stats;
mod writer;

pub use error::{Error, Result};
pub use inspect::{inspect, Damage, IndexStatus, Inspection, SegmentReport};
pub use options::{Durability, LogOptions};
pub use reader::LogReader;
pub use record::{Position, Record};
pub use recovery::{Recovery, TornTail};
pub use segment_set::SegmentInfo;
pub use sync_stats::{SyncStats, SYNC_BUCKETS};
pub use writer::Appended;

use bytes::Bytes;
use segment_set::SegmentSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::{oneshot, watch};
use writer::{Control, Pending, Queue};

/// The lock file that keeps two writers out of one directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A durable log in one directory. Cheap to clone; all clones share one writer. The log
/// closes when the last clone is dropped (or at [`Log::close`]).
#[derive(Clone)]
pub struct Log {
    handle: Arc<Handle>,
}

/// Closes the log when the last `Log` clone goes; readers do not keep it open.
struct Handle {
    shared: Arc<Shared>,
    /// The writer thread, joined on drop so that the directory lock is free by the time
    /// the last handle is gone and the log can be reopened at once.
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        writer::close(&self.shared, None);
        if let Some(writer) = self.writer.take() {
            // The writer never waits on a `Log` handle, so this cannot deadlock; it
            // only finishes an in-flight batch and a final sync.
            let _ = writer.join();
        }
    }
}

/// What the writer publishes to readers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Visible {
    /// Every record below this sequence number is complete and readable.
    pub(crate) next: u64,
    pub(crate) closed: bool,
}

/// State shared by the log handles, the writer thread and readers.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) opts: LogOptions,
    segments: RwLock<SegmentSet>,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) wake: Condvar,
    pub(crate) state: watch::Sender<Visible>,
    recovery: Recovery,
    pub(crate) syncs: sync_stats::SyncRecorder,
}

impl Shared {
    pub(crate) fn read_segments(&self) -> RwLockReadGuard<'_, SegmentSet> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_segments(&self) -> RwLockWriteGuard<'_, SegmentSet> {
        self.segments.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log {
    /// Opens (or creates) the log in `dir` with the default [`LogOptions`].
    ///
    /// # Errors
    ///
    /// As [`LogOptions::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        LogOptions::new().open(dir)
    }

    pub(crate) fn open_with(dir: &Path, opts: LogOptions) -> Result<Log> {
        let lock = if opts.read_only {
            None
        } else {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
            Some(lock_dir(dir)?)
        };
        let (set, recovery) = recovery::recover(dir, &opts)?;
        let next = set.next_seq();
        let read_only = opts.read_only;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts,
            segments: RwLock::new(set),
            queue: Mutex::new(Queue::new(read_only)),
            wake: Condvar::new(),
            state: watch::Sender::new(Visible { next, closed: read_only }),
            recovery,
            syncs: sync_stats::SyncRecorder::default(),
        });
        let writer = match lock {
            Some(lock) => {
                let w = writer::Writer::new(shared.clone(), lock)?;
                let thread = std::thread::Builder::new()
                    .name("ferry-log-writer".into())
                    .spawn(move || w.run())
                    .map_err(|e| Error::io("start the writer thread", dir, e))?;
                Some(thread)
            }
            None => None,
        };
        Ok(Log { handle: Arc::new(Handle { shared, writer }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Appends one record and waits until it is complete under the log's [`Durability`]
    /// mode (by default: written and fdatasynced).
    ///
    /// # Errors
    ///
    /// [`Error::RecordTooLarge`] (checked before anything is queued), [`Error::Closed`],
    /// [`Error::ReadOnly`], [`Error::Failed`] after an earlier sync failure, and the write
    /// or sync error ([`Error::Io`]) if the batch holding this record failed. An error means
    /// the record was not acknowledged; it may or may not be in the log after a crash.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped future's record is still written, but its outcome is lost.
    pub async fn append(&self, payload: impl Into<Bytes>) -> Result<Appended> {
        let pending = self.prepare(payload.into(), true)?;
        let (batch, index) = writer::enqueue(self.shared(), [pending])?;
        batch.wait(index).await
    }

    /// Appends one record and waits only until it is written to the operating system,
    /// whatever the log's mode: for records whose loss in a power cut is acceptable (soft
    /// state) beside others that must be durable. It shares batches, and so syncs, with
    /// durable appends, and becomes durable with the next sync.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append).
    ///
    /// # Cancel safety
    ///
    /// As [`append`](Self::append).
    pub async fn append_unsynced(&self, payload: impl Into<Bytes>) -> Result<Appended> {
        let pending = self.prepare(payload.into(), false)?;
        let (batch, index) = writer::enqueue(self.shared(), [pending])?;
        batch.wait(index).await
    }

    /// Appends records next to each other, in order, in one batch, and waits for all of
    /// them.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append). If the batch fails part way (a segment roll followed by a
    /// full disk), the records before the failure are in the log and the error is returned;
    /// [`next_seq`](Self::next_seq) tells how far it got.
    pub async fn append_batch<I>(&self, payloads: I) -> Result<Vec<Appended>>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let pending = payloads.into_iter().map(|p| self.prepare(p.into(), true)).collect::<Result<Vec<_>>>()?;
        let n = pending.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let (batch, first) = writer::enqueue(self.shared(), pending)?;
        let mut out = Vec::with_capacity(n);
        for i in first..first + n {
            out.push(batch.wait(i).await?);
        }
        Ok(out)
    }

    fn prepare(&self, payload: Bytes, durable: bool) -> Result<Pending> {
        let max = self.shared().opts.max_record_size;
        if payload.len() > max {
            return Err(Error::RecordTooLarge { size: payload.len(), max });
        }
        Ok(Pending { crc: crc32c::crc32c(&payload), payload, durable })
    }

    async fn control<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Control) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        writer::enqueue_control(self.shared(), make(tx))?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Syncs everything written so far, whatever the durability mode.
    ///
    /// # Errors
    ///
    /// The sync error, [`Error::Closed`] or [`Error::Failed`].
    pub async fn sync(&self) -> Result<()> {
        self.control(Control::Sync).await
    }

    /// Removes every record after `seq`, durably, so that the next append gets `seq + 1`.
    /// Readers made before the call may still return removed records; make new ones.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `seq + 1` is before the first record still in the log; an
    /// I/O error, after which the log accepts no more writes ([`Error::Failed`]) because
    /// the truncation may be half done.
    pub async fn truncate_after(&self, seq: u64) -> Result<()> {
        self.control(|tx| Control::TruncateAfter(seq, tx)).await
    }

    /// Deletes the segment files whose records all come before `seq`, oldest first, and
    /// returns their base sequence numbers. The newest segment always stays, so the log may
    /// keep records before `seq`; [`first_seq`](Self::first_seq) says what remains.
    ///
    /// # Errors
    ///
    /// The I/O error of a failed removal; segments removed before it stay removed.
    pub async fn remove_segments_before(&self, seq: u64) -> Result<Vec<u64>> {
        self.control(|tx| Control::RemoveBefore(seq, tx)).await
    }

    /// Finishes every queued append, syncs, and stops the writer; other clones of this log
    /// then fail with [`Error::Closed`]. Readers can still read what is there.
    ///
    /// # Errors
    ///
    /// The error of the final sync.
    pub async fn close(self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        writer::close(self.shared(), Some(tx));
        rx.await.map_err(|_| Error::Closed)?
    }

    /// A reader starting at sequence number `seq`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if `seq` was removed or lies beyond the next record.
    pub fn reader(&self, seq: u64) -> Result<LogReader> {
        LogReader::new(self.shared().clone(), seq)
    }

    /// A reader starting at the first record whose timestamp is at or after `millis`
    /// (milliseconds since the Unix epoch), or at the end if there is none.
    pub fn reader_at_time(&self, millis: u64) -> Result<LogReader> {
        LogReader::at_time(self.shared().clone(), millis)
    }

    /// Reads the record with sequence number `seq`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`] if it is not in the log; [`Error::Corrupt`] if it fails its
    /// checks.
    pub fn read(&self, seq: u64) -> Result<Record> {
        let mut r = self.reader(seq)?;
        r.try_next()?.ok_or_else(|| self.out_of_range(seq))
    }

    /// Reads the record at a position returned by an append or a read.
    ///
    /// # Errors
    ///
    /// [`Error::BadPosition`] if no valid record starts there.
    pub fn read_at(&self, position: Position) -> Result<Record> {
        reader::read_at(self.shared(), position)
    }

    fn out_of_range(&self, seq: u64) -> Error {
        Error::OutOfRange { seq, first: self.first_seq(), next: self.next_seq() }
    }

    /// The first sequence number still in the log.
    pub fn first_seq(&self) -> u64 {
        self.shared().read_segments().first_seq()
    }

    /// The sequence number the next append will get; every record below it is readable.
    pub fn next_seq(&self) -> u64 {
        self.shared().state.borrow().next
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared().read_segments().info()
    }

    /// What recovery found and did when the log was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.shared().recovery
    }

    /// How long this log's `fdatasync` calls have taken since it was opened.
    pub fn sync_stats(&self) -> SyncStats {
        self.shared().syncs.snapshot()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared().dir
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("dir", &self.dir()).field("next_seq", &self.next_seq()).finish()
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Log>();
        assert_send_sync::<super::LogReader>();
    }
}
