//! Group commit: appenders put records on a queue, one writer thread takes everything
//! queued, writes it with one vectored write, syncs once, and completes every appender of the
//! batch together.
//!
//! While the writer is inside `write` + `fdatasync`, the next batch builds up behind it, so
//! the more appenders there are, the more records each sync covers. The writer is an OS
//! thread rather than a task because it spends its life in blocking system calls.
//!
//! Failure rules, so that nothing is reported durable that is not:
//! - a failed write (a full disk) fails the records of that write, cuts the segment back to
//!   where the write started, and the log goes on;
//! - a failed fdatasync fails its records and stops all further writes ([`Error::Failed`]):
//!   after one, the kernel may have dropped the dirty pages, and a retry that succeeds proves
//!   nothing about them;
//! - records become visible to readers only once they are complete under the durability mode.

use crate::error::{Error, Result};
use crate::index::{self, IndexEntry, IndexPolicy};
use crate::record::{Header, Position, HEADER_LEN};
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::segment_set::SegmentMeta;
use crate::{Durability, Shared};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify};

/// Payloads at least this big are written from the appender's buffer instead of copied.
const COPY_LIMIT: usize = 4 << 10;

/// Where an appended record ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number.
    pub seq: u64,
    /// Its timestamp, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Its position, for [`Log::read_at`](crate::Log::read_at).
    pub position: Position,
}

/// A record waiting for the writer. The appender computed its CRC already.
pub(crate) struct Pending {
    pub(crate) payload: Bytes,
    pub(crate) crc: u32,
    /// Whether the record waits for the log's durability mode (`false`: done once written).
    pub(crate) durable: bool,
}

/// Work other than appending, run by the writer in order with the appends around it.
pub(crate) enum Control {
    Sync(oneshot::Sender<Result<()>>),
    TruncateAfter(u64, oneshot::Sender<Result<()>>),
    RemoveBefore(u64, oneshot::Sender<Result<Vec<u64>>>),
}

/// What appenders share with the writer.
pub(crate) struct Queue {
    records: Vec<Pending>,
    /// Controls with the number of records queued before each.
    controls: Vec<(usize, Control)>,
    /// The completion every record in `records` waits on.
    batch: Arc<Batch>,
    writer_waiting: bool,
    closed: bool,
    failed: Option<Error>,
    close_waiters: Vec<oneshot::Sender<Result<()>>>,
    /// Set by the writer as it exits, with the result of its final sync.
    exited: Option<Result<()>>,
}

impl Queue {
    pub(crate) fn new(read_only: bool) -> Queue {
        Queue {
            records: Vec::new(),
            controls: Vec::new(),
            batch: Arc::new(Batch::default()),
            writer_waiting: false,
            closed: false,
            failed: read_only.then_some(Error::ReadOnly),
            close_waiters: Vec::new(),
            exited: read_only.then_some(Ok(())),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        match &self.failed {
            Some(Error::ReadOnly) => Err(Error::ReadOnly),
            Some(e) => Err(Error::Failed(Arc::new(e.clone()))),
            None => Ok(()),
        }
    }
}

/// The completion of one batch, shared by its appenders.
///
/// Waking hundreds of tasks from the writer thread is expensive (each wake from outside
/// the runtime goes through its shared queue), so the writer wakes one task, the batch's
/// first appender (the leader), which wakes the others from inside the runtime. If the
/// leader stops waiting, the writer wakes everyone itself.
#[derive(Default)]
pub(crate) struct Batch {
    outcome: OnceLock<Outcome>,
    /// The other appenders wait here.
    done: Notify,
    /// The leader waits here.
    leader: Notify,
    /// Set once the leader no longer waits (it passed the wake on, or it was dropped).
    leader_gone: AtomicBool,
}

struct Outcome {
    /// One entry per record that made it, in queue order: always a prefix of the batch.
    appended: Vec<Appended>,
    error: Option<Error>,
}

/// The leader's promise to pass the wake on, kept even if its future is dropped.
struct Leader<'a>(&'a Batch);

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let b = self.0;
        b.leader_gone.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if b.outcome.get().is_some() {
            b.done.notify_waiters();
        }
    }
}

impl Batch {
    /// Waits for the writer and returns the result of the record at `index`.
    pub(crate) async fn wait(&self, index: usize) -> Result<Appended> {
        let (waiting_on, _leader) = if index == 0 { (&self.leader, Some(Leader(self))) } else { (&self.done, None) };
        loop {
            let notified = waiting_on.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(o) = self.outcome.get() {
                return match o.appended.get(index) {
                    Some(a) => Ok(*a),
                    None => Err(o.error.clone().unwrap_or(Error::Closed)),
                };
            }
            notified.await;
        }
    }

    fn complete(&self, outcome: Outcome) {
        let _ = self.outcome.set(outcome);
        fence(Ordering::SeqCst);
        if self.leader_gone.load(Ordering::SeqCst) {
            self.done.notify_waiters();
        }
        // A permit if the leader is not waiting yet: it then finds the outcome at once.
        self.leader.notify_one();
    }
}

/// Completes a batch even if the writer unwinds, so no appender waits forever.
struct Completion(Option<Arc<Batch>>);

impl Completion {
    fn finish(mut self, outcome: Outcome) {
        if let Some(b) = self.0.take() {
            b.complete(outcome);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.complete(Outcome { appended: Vec::new(), error: Some(Error::Closed) });
        }
    }
}

pub(crate) fn lock_queue(shared: &Shared) -> MutexGuard<'_, Queue> {
    shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues records; returns the batch they joined and the index of the first one.
pub(crate) fn enqueue(shared: &Shared, records: impl IntoIterator<Item = Pending>) -> Result<(Arc<Batch>, usize)> {
    let mut q = lock_queue(shared);
    q.check_open()?;
    let first = q.records.len();
    q.records.extend(records);
    let wake = q.writer_waiting;
    q.writer_waiting = false;
    let batch = q.batch.clone();
    drop(q);
    if wake {
        shared.wake.notify_one();
    }
    Ok((batch, first))
}

/// Queues a control operation.
pub(crate) fn enqueue_control(shared: &Shared, control: Control) -> Result<()> {
    let mut q = lock_queue(shared);
    q.check_open()?;
    let at = q.records.len();
    q.controls.push((at, control));
    q.writer_waiting = false;
    drop(q);
    shared.wake.notify_one();
    Ok(())
}

/// Stops accepting work; the writer finishes what is queued, syncs and exits. `done`, if
/// given, receives the result of the final sync.
pub(crate) fn close(shared: &Shared, done: Option<oneshot::Sender<Result<()>>>) {
    let mut q = lock_queue(shared);
    q.closed = true;
    if let Some(done) = done {
        match &q.exited {
            Some(result) => {
                let _ = done.send(result.clone());
            }
            None => q.close_waiters.push(done),
        }
    }
    drop(q);
    shared.wake.notify_one();
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The segment the writer appends to.
struct Active {
    base: u64,
    path: PathBuf,
    file: File,
    index_path: PathBuf,
    index_file: File,
    /// Bytes written, synced or not.
    len: u64,
    next_seq: u64,
    policy: IndexPolicy,
    /// Index entries written but not yet visible to readers.
    unpublished: Vec<IndexEntry>,
}

/// A run of records encoded for one write.
struct Chunk {
    start_len: u64,
    first_seq: u64,
    last_ts_before: u64,
    policy_before: IndexPolicy,
    appended: Vec<Appended>,
    entries: Vec<IndexEntry>,
    /// Byte ranges of `Writer::buf`, or payloads written in place.
    pieces: Vec<Piece>,
}

enum Piece {
    Buf(usize, usize),
    Payload(Bytes),
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: Active,
    last_ts: u64,
    buf: Vec<u8>,
    dirty: bool,
    last_sync: Instant,
    _lock: File,
}

enum Work {
    Batch { records: Vec<Pending>, controls: Vec<(usize, Control)>, batch: Arc<Batch> },
    IntervalSync,
    Exit,
}

impl Writer {
    /// Prepares the writer for the newest segment in the shared set.
    pub(crate) fn new(shared: Arc<Shared>, lock: File) -> Result<Writer> {
        let (base, len, next_seq, last_ts, last_entry) = {
            let set = shared.read_segments();
            let a = set.active().ok_or(Error::Closed)?;
            (a.base, a.len, a.next_seq, a.last_ts, a.index.last().copied())
        };
        let active = open_active(&shared, base, len, next_seq, last_entry)?;
        Ok(Writer { shared, active, last_ts, buf: Vec::new(), dirty: false, last_sync: Instant::now(), _lock: lock })
    }

    /// The writer thread's body.
    pub(crate) fn run(mut self) {
        loop {
            match self.next_work() {
                Work::Batch { mut records, controls, batch } => {
                    self.process(&mut records, controls, batch);
                }
                Work::IntervalSync => {
                    if let Err(e) = self.sync() {
                        tracing::error!(error = %e, "interval sync failed; the log stops accepting writes");
                    }
                }
                Work::Exit => break,
            }
        }
        let result = if self.dirty { self.sync() } else { Ok(()) };
        let shared = self.shared.clone();
        // Files and the directory lock go before anyone hears that the log is closed, so
        // that it can be reopened at once.
        drop(self);
        shared.state.send_modify(|v| v.closed = true);
        let waiters = {
            let mut q = lock_queue(&shared);
            q.exited = Some(result.clone());
            std::mem::take(&mut q.close_waiters)
        };
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }

    fn sync_deadline(&self) -> Option<Instant> {
        match self.shared.opts.durability {
            Durability::Interval(d) if self.dirty => Some(self.last_sync + d),
            _ => None,
        }
    }

    fn next_work(&mut self) -> Work {
        let mut q = lock_queue(&self.shared);
        loop {
            if !q.records.is_empty() || !q.controls.is_empty() {
                let records = std::mem::take(&mut q.records);
                let controls = std::mem::take(&mut q.controls);
                let batch = std::mem::take(&mut q.batch);
                return Work::Batch { records, controls, batch };
            }
            if q.closed {
                return Work::Exit;
            }
            q.writer_waiting = true;
            q = match self.sync_deadline() {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        q.writer_waiting = false;
                        return Work::IntervalSync;
                    }
                    self.shared.wake.wait_timeout(q, deadline - now).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner),
            };
            q.writer_waiting = false;
        }
    }

    fn process(&mut self, records: &mut Vec<Pending>, mut controls: Vec<(usize, Control)>, batch: Arc<Batch>) {
        let completion = Completion(Some(batch));
        let mut appended = Vec::with_capacity(records.len());
        let mut error = None;
        let mut done = 0;
        for (at, control) in controls.drain(..) {
            if error.is_none() {
                error = self.append(&records[done..at], &mut appended).err();
            }
            done = at;
            self.control(control);
        }
        if error.is_none() {
            error = self.append(&records[done..], &mut appended).err();
        }
        records.clear();
        completion.finish(Outcome { appended, error });
    }

    fn failed(&self) -> Option<Error> {
        lock_queue(&self.shared).failed.clone()
    }

    /// Stops all further writes after a failure that leaves the disk state unknown.
    fn poison(&self, e: &Error) {
        tracing::error!(error = %e, "the log stops accepting writes");
        let mut q = lock_queue(&self.shared);
        q.failed.get_or_insert_with(|| e.clone());
    }

    /// Writes `records` (in as many chunks as segment rolls require), makes them durable
    /// under the mode, and publishes them. Adds each completed record to `appended`.
    fn append(&mut self, records: &[Pending], appended: &mut Vec<Appended>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(e) = self.failed() {
            return Err(Error::Failed(Arc::new(e)));
        }
        let ts = now_ms().max(self.last_ts);
        let segment_size = self.shared.opts.segment_size;
        let mut chunk = self.start_chunk();
        for rec in records {
            let rec_len = (HEADER_LEN + rec.payload.len()) as u64;
            if self.active.len > SEGMENT_HEADER_LEN && self.active.len + rec_len > segment_size {
                // Seal the full segment: synced whatever the mode, so that only the newest
                // segment can ever have a torn tail. Its records are then complete.
                self.write_chunk(&mut chunk)?;
                self.sync()?;
                self.publish();
                appended.append(&mut chunk.appended);
                self.start_segment()?;
                chunk = self.start_chunk();
            }
            self.encode(rec, ts, &mut chunk);
        }
        self.write_chunk(&mut chunk)?;
        // One sync covers the batch, if anything in it waits for one.
        if self.shared.opts.durability == Durability::Fsync && records.iter().any(|r| r.durable) {
            self.sync()?;
        }
        self.publish();
        appended.append(&mut chunk.appended);
        Ok(())
    }

    fn start_chunk(&mut self) -> Chunk {
        self.buf.clear();
        Chunk {
            start_len: self.active.len,
            first_seq: self.active.next_seq,
            last_ts_before: self.last_ts,
            policy_before: self.active.policy.clone(),
            appended: Vec::new(),
            entries: Vec::new(),
            pieces: Vec::new(),
        }
    }

    fn encode(&mut self, rec: &Pending, ts: u64, chunk: &mut Chunk) {
        let seq = self.active.next_seq;
        let offset = self.active.len;
        let header = Header::new(rec.crc, rec.payload.len() as u32, seq, ts);
        let start = self.buf.len();
        self.buf.extend_from_slice(&header.encode());
        if rec.payload.len() < COPY_LIMIT {
            self.buf.extend_from_slice(&rec.payload);
            push_buf_piece(&mut chunk.pieces, start, self.buf.len());
        } else {
            push_buf_piece(&mut chunk.pieces, start, self.buf.len());
            chunk.pieces.push(Piece::Payload(rec.payload.clone()));
        }
        if self.active.policy.wants(offset) {
            chunk.entries.push(IndexEntry { seq, timestamp: ts, offset });
        }
        chunk.appended.push(Appended { seq, timestamp: ts, position: Position { segment: self.active.base, offset } });
        self.active.len += header.record_len();
        self.active.next_seq += 1;
        self.last_ts = ts;
    }

    /// Writes a chunk with one vectored write. On failure, cuts the segment back to where the
    /// chunk began, so the log is exactly as before.
    fn write_chunk(&mut self, chunk: &mut Chunk) -> Result<()> {
        if chunk.appended.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<IoSlice<'_>> = chunk
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Buf(a, b) => IoSlice::new(&self.buf[*a..*b]),
                Piece::Payload(p) => IoSlice::new(p),
            })
            .collect();
        let total = self.active.len - chunk.start_len;
        if let Err(e) =
            write_all_vectored(&mut self.active.file, &mut slices, total, self.shared.opts.faults.as_deref())
        {
            let e = Error::io("write", &self.active.path, e);
            self.active.len = chunk.start_len;
            self.active.next_seq = chunk.first_seq;
            self.active.policy = chunk.policy_before.clone();
            self.last_ts = chunk.last_ts_before;
            if let Err(cut) = self.active.file.set_len(chunk.start_len) {
                self.poison(&Error::io("truncate after a failed write", &self.active.path, cut));
            }
            return Err(e);
        }
        self.dirty = true;
        if !chunk.entries.is_empty() {
            // The index is derived data: a failure to write it is repaired at the next open.
            if let Err(e) = index::append(&mut self.active.index_file, &self.active.index_path, &chunk.entries) {
                tracing::warn!(error = %e, "index write failed; it will be rebuilt when the log is next opened");
            }
            self.active.unpublished.append(&mut chunk.entries);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let faulty = self.shared.opts.faults.as_ref().and_then(|f| f.sync_error());
        let started = Instant::now();
        let result = match faulty {
            Some(e) => Err(e),
            None => self.active.file.sync_data(),
        };
        self.shared.syncs.record(started.elapsed());
        if let Err(e) = result {
            let e = Error::io("fdatasync", &self.active.path, e);
            self.poison(&e);
            return Err(e);
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Makes everything written so far visible to readers.
    fn publish(&mut self) {
        let next = self.active.next_seq;
        {
            let mut set = self.shared.write_segments();
            if let Some(meta) = set.active_mut() {
                meta.len = self.active.len;
                meta.next_seq = next;
                meta.last_ts = self.last_ts;
                meta.index.append(&mut self.active.unpublished);
            }
        }
        self.shared.state.send_if_modified(|v| {
            let changed = v.next != next;
            v.next = next;
            changed
        });
    }

    /// Starts a new segment after the active one.
    fn start_segment(&mut self) -> Result<()> {
        let base = self.active.next_seq;
        let dir = self.shared.dir.clone();
        let file = segment::create(&dir, base).inspect_err(|_| {
            // A half-made segment would break the sequence when a later roll makes another.
            if let Err(e) = std::fs::remove_file(segment::segment_path(&dir, base)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.poison(&Error::io("remove a half-made segment", segment::segment_path(&dir, base), e));
                }
            }
        })?;
        let path = segment::segment_path(&dir, base);
        let index_path = segment::index_path(&dir, base);
        let index_file = index::write(&index_path, base, &[])?;
        let reader = File::open(&path).map_err(|e| Error::io("open segment", &path, e))?;
        self.shared.write_segments().insert(SegmentMeta {
            base,
            path: path.clone(),
            file: Arc::new(reader),
            len: SEGMENT_HEADER_LEN,
            next_seq: base,
            last_ts: self.last_ts,
            index: Vec::new(),
        });
        self.active = Active {
            base,
            path,
            file,
            index_path,
            index_file,
            len: SEGMENT_HEADER_LEN,
            next_seq: base,
            policy: IndexPolicy::new(self.shared.opts.index_interval, None),
            unpublished: Vec::new(),
        };
        Ok(())
    }

    fn control(&mut self, control: Control) {
        match control {
            Control::Sync(reply) => {
                let r = match self.failed() {
                    Some(e) => Err(Error::Failed(Arc::new(e))),
                    None if self.dirty => self.sync(),
                    None => Ok(()),
                };
                let _ = reply.send(r);
            }
            Control::TruncateAfter(seq, reply) => {
                let r = self.truncate_after(seq);
                if let Err(e) = &r {
                    if !matches!(e, Error::OutOfRange { .. } | Error::Failed(_)) {
                        self.poison(e);
                    }
                }
                let _ = reply.send(r);
            }
            Control::RemoveBefore(seq, reply) => {
                let _ = reply.send(self.remove_before(seq));
            }
        }
    }

    /// Removes every record after `seq`: later segments go first (newest first, so a crash
    /// midway leaves a log without holes), then the segment holding `seq` is cut.
    fn truncate_after(&mut self, seq: u64) -> Result<()> {
        if let Some(e) = self.failed() {
            return Err(Error::Failed(Arc::new(e)));
        }
        let (first, next) = {
            let set = self.shared.read_segments();
            (set.first_seq(), self.active.next_seq.max(set.next_seq()))
        };
        if seq.saturating_add(1) < first {
            return Err(Error::OutOfRange { seq, first, next });
        }
        if seq.saturating_add(1) >= next {
            return Ok(());
        }
        let dir = self.shared.dir.clone();
        // The segment that keeps its beginning: the one holding `seq`, or the first one if
        // every record goes.
        let keep = {
            let set = self.shared.read_segments();
            let base = set.iter().rev().find(|s| s.base <= seq).map_or(first, |s| s.base);
            base
        };
        let doomed: Vec<u64> = self.shared.read_segments().iter().rev().map(|s| s.base).filter(|&b| b > keep).collect();
        for base in doomed {
            remove_segment_files(&dir, base)?;
            self.shared.write_segments().remove(base);
        }
        segment::sync_dir(&dir)?;
        let (meta_file, cut_at, last_ts, kept_index) = {
            let set = self.shared.read_segments();
            let meta = set.get(keep).ok_or(Error::Closed)?;
            let (cut, last_ts) = if seq < keep {
                (SEGMENT_HEADER_LEN, set.iter().rev().find(|s| s.base < keep).map_or(0, |s| s.last_ts))
            } else {
                let max_len = self.shared.opts.max_record_size as u32;
                locate_end(&meta.file, meta.seek_seq(seq), seq, meta.len, max_len)
                    .map_err(|e| Error::io("read", &meta.path, e))?
                    .ok_or_else(|| Error::corrupt(&meta.path, meta.len, "record to truncate after not found"))?
            };
            let kept: Vec<IndexEntry> = meta.index.iter().copied().filter(|e| e.seq <= seq).collect();
            (meta.path.clone(), cut, last_ts, kept)
        };
        let writable = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&meta_file)
            .map_err(|e| Error::io("open segment", &meta_file, e))?;
        writable.set_len(cut_at).map_err(|e| Error::io("truncate", &meta_file, e))?;
        writable.sync_data().map_err(|e| Error::io("fdatasync", &meta_file, e))?;
        let index_path = segment::index_path(&dir, keep);
        let index_file = index::write(&index_path, keep, &kept_index)?;
        {
            let mut set = self.shared.write_segments();
            if let Some(meta) = set.active_mut() {
                meta.len = cut_at;
                meta.next_seq = seq + 1;
                meta.last_ts = last_ts;
                meta.index = kept_index.clone();
            }
        }
        self.active = Active {
            base: keep,
            path: meta_file,
            file: writable,
            index_path,
            index_file,
            len: cut_at,
            next_seq: seq + 1,
            policy: IndexPolicy::new(self.shared.opts.index_interval, kept_index.last()),
            unpublished: Vec::new(),
        };
        self.dirty = false;
        self.shared.state.send_modify(|v| v.next = seq + 1);
        Ok(())
    }

    /// Removes whole segments whose records all come before `seq`, oldest first. The active
    /// segment always stays.
    fn remove_before(&mut self, seq: u64) -> Result<Vec<u64>> {
        let dir = self.shared.dir.clone();
        let removable: Vec<u64> = {
            let set = self.shared.read_segments();
            set.iter().filter(|s| s.base != self.active.base && s.next_seq <= seq).map(|s| s.base).collect()
        };
        let mut removed = Vec::new();
        for base in removable {
            // Oldest first, and readers see a segment go before its file does.
            self.shared.write_segments().remove(base);
            remove_segment_files(&dir, base)?;
            removed.push(base);
        }
        if !removed.is_empty() {
            segment::sync_dir(&dir)?;
        }
        Ok(removed)
    }
}

fn push_buf_piece(pieces: &mut Vec<Piece>, start: usize, end: usize) {
    if let Some(Piece::Buf(_, last_end)) = pieces.last_mut() {
        if *last_end == start {
            *last_end = end;
            return;
        }
    }
    pieces.push(Piece::Buf(start, end));
}

fn open_active(shared: &Shared, base: u64, len: u64, next_seq: u64, last_entry: Option<IndexEntry>) -> Result<Active> {
    let path = segment::segment_path(&shared.dir, base);
    let file = OpenOptions::new().append(true).open(&path).map_err(|e| Error::io("open segment", &path, e))?;
    let index_path = segment::index_path(&shared.dir, base);
    let index_file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&index_path)
        .map_err(|e| Error::io("open index", &index_path, e))?;
    Ok(Active {
        base,
        path,
        file,
        index_path,
        index_file,
        len,
        next_seq,
        policy: IndexPolicy::new(shared.opts.index_interval, last_entry.as_ref()),
        unpublished: Vec::new(),
    })
}

fn remove_segment_files(dir: &std::path::Path, base: u64) -> Result<()> {
    let log = segment::segment_path(dir, base);
    std::fs::remove_file(&log).map_err(|e| Error::io("remove segment", &log, e))?;
    let idx = segment::index_path(dir, base);
    match std::fs::remove_file(&idx) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove index", &idx, e)),
        _ => Ok(()),
    }
}

/// The offset just past record `seq` and its timestamp, scanning from `start`.
fn locate_end(
    file: &Arc<File>,
    start: (u64, u64),
    seq: u64,
    end: u64,
    max_len: u32,
) -> std::io::Result<Option<(u64, u64)>> {
    let mut scanner = segment::Scanner::new(file.clone(), start.0, end, max_len);
    loop {
        match scanner.next_record()? {
            segment::Scanned::Record { header, .. } if header.seq == seq => {
                return Ok(Some((scanner.position(), header.timestamp)));
            }
            segment::Scanned::Record { header, .. } if header.seq < seq => {}
            _ => return Ok(None),
        }
    }
}

/// Writes every slice, going on after short writes. With `faults`, a full disk can be
/// simulated: the bytes that fit are written, then the write fails.
fn write_all_vectored(
    file: &mut File,
    mut slices: &mut [IoSlice<'_>],
    total: u64,
    faults: Option<&crate::faults::Faults>,
) -> std::io::Result<()> {
    if let Some(f) = faults {
        let (allowed, err) = f.take_space(total);
        if let Some(err) = err {
            let mut partial = Vec::with_capacity(allowed as usize);
            for s in slices.iter() {
                let take = (allowed as usize - partial.len()).min(s.len());
                partial.extend_from_slice(&s[..take]);
            }
            file.write_all(&partial)?;
            return Err(err);
        }
    }
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
