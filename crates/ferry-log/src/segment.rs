//! Segment files: naming, the file header, creation, and the [`Scanner`] that walks the
//! records of a segment, used alike by recovery, index rebuilds and readers.
//!
//! A segment is named by the sequence number of its first record, zero-padded so that
//! names sort in log order: `00000000000000000001.log`. It starts with a 16-byte header:
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "FRYLOG", 0x00, format version 0x01
//!      8     8  base: the first sequence number, u64 LE (must match the file name)
//!     16     …  records (see `record.rs`)
//! ```
//!
//! The header lets recovery tell a segment from a stray file and catch a renamed one. A
//! segment is created (header written and synced, directory synced) before any record goes
//! into it, so a half-written header can only belong to the newest segment, after a crash.

use crate::error::{Error, Result};
use crate::record::{self, Header, Parsed};
use bytes::{Bytes, BytesMut};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of the segment file header.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
const MAGIC: [u8; 8] = *b"FRYLOG\x00\x01";
/// How much a scanner reads at once.
const CHUNK: usize = 64 << 10;

pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

pub(crate) fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.idx"))
}

/// The base sequence number of a segment file name, if `name` is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn header_bytes(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..].copy_from_slice(&base.to_le_bytes());
    h
}

/// fsyncs a directory, so that a file created, renamed or removed in it stays so.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates a new, empty segment: header written and synced, directory synced. Returns the
/// file opened for appending.
pub(crate) fn create(dir: &Path, base: u64) -> Result<File> {
    let path = segment_path(dir, base);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| Error::io("create segment", &path, e))?;
    file.write_all(&header_bytes(base)).map_err(|e| Error::io("write segment header", &path, e))?;
    file.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
    sync_dir(dir)?;
    // Appends go through O_APPEND, so that cutting a failed write back needs no seek.
    OpenOptions::new().append(true).open(&path).map_err(|e| Error::io("open segment", &path, e))
}

/// What the first bytes of a segment file say.
pub(crate) enum HeaderCheck {
    Good,
    /// Shorter than a header: only possible for a segment whose creation was cut short.
    Short,
    Bad(&'static str),
}

pub(crate) fn check_header(file: &File, base: u64, len: u64) -> std::io::Result<HeaderCheck> {
    if len < SEGMENT_HEADER_LEN {
        return Ok(HeaderCheck::Short);
    }
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    file.read_exact_at(&mut h, 0)?;
    Ok(if h[..8] != MAGIC {
        HeaderCheck::Bad("not a ferry log segment (bad magic)")
    } else if h != header_bytes(base) {
        HeaderCheck::Bad("the header's base sequence number does not match the file name")
    } else {
        HeaderCheck::Good
    })
}

/// Rewrites the header of a segment whose creation was cut short.
pub(crate) fn rewrite_header(file: &File, path: &Path, base: u64) -> Result<()> {
    file.set_len(0).map_err(|e| Error::io("truncate", path, e))?;
    file.write_all_at(&header_bytes(base), 0).map_err(|e| Error::io("write segment header", path, e))?;
    file.sync_data().map_err(|e| Error::io("fdatasync", path, e))
}

/// One step of a [`Scanner`].
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A verified record at `offset`; `record` holds header and payload.
    Record { offset: u64, header: Header, record: Bytes },
    /// The scan reached its end cleanly.
    End,
    /// No valid record starts at `offset`: a torn write or damage, as `reason` says.
    Stop { offset: u64, reason: &'static str },
}

/// Walks the records of a segment from an offset up to an end, reading in large chunks and
/// handing out payloads as slices of its buffer (no copy per record).
pub(crate) struct Scanner {
    file: std::sync::Arc<File>,
    /// File offset of `buf[0]`, which is also the next record to parse.
    pos: u64,
    end: u64,
    buf: BytesMut,
    max_len: u32,
}

impl Scanner {
    pub(crate) fn new(file: std::sync::Arc<File>, from: u64, end: u64, max_len: u32) -> Scanner {
        Scanner { file, pos: from, end, buf: BytesMut::new(), max_len }
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Moves the end, for a segment that grew since the scanner was made.
    pub(crate) fn set_end(&mut self, end: u64) {
        self.end = end;
    }

    pub(crate) fn next_record(&mut self) -> std::io::Result<Scanned> {
        loop {
            if self.pos >= self.end {
                return Ok(Scanned::End);
            }
            match record::parse(&self.buf, self.max_len) {
                Parsed::Record(header) => {
                    let offset = self.pos;
                    let len = header.record_len();
                    if offset + len > self.end {
                        return Ok(Scanned::Stop { offset, reason: "record runs past the end of the segment" });
                    }
                    self.pos += len;
                    let record = self.buf.split_to(len as usize).freeze();
                    return Ok(Scanned::Record { offset, header, record });
                }
                Parsed::Bad(reason) => return Ok(Scanned::Stop { offset: self.pos, reason }),
                Parsed::Incomplete { needed } => {
                    if self.pos + needed > self.end {
                        return Ok(Scanned::Stop { offset: self.pos, reason: "incomplete record at the end" });
                    }
                    if !self.fill(needed as usize)? {
                        return Ok(Scanned::Stop { offset: self.pos, reason: "file is shorter than expected" });
                    }
                }
            }
        }
    }

    /// Reads until the buffer holds at least `needed` bytes (and up to a chunk more, within
    /// the end). Returns false if the file ends first.
    fn fill(&mut self, needed: usize) -> std::io::Result<bool> {
        let have = self.buf.len();
        let left_in_scan = (self.end - self.pos) as usize;
        let want = needed.max(have + CHUNK).min(left_in_scan);
        if self.buf.capacity() < want {
            // A fresh buffer: the old one may still be shared with records handed out.
            let mut fresh = BytesMut::with_capacity(want.max(CHUNK));
            fresh.extend_from_slice(&self.buf);
            self.buf = fresh;
        }
        let mut at = have;
        self.buf.resize(want, 0);
        while at < want {
            match self.file.read_at(&mut self.buf[at..want], self.pos + at as u64) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(at);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(at);
        Ok(at >= needed)
    }
}

/// Whether a valid record with a sequence number above `after_seq` starts anywhere in
/// `data` (past its first byte). Recovery asks this after a bad record in the newest
/// segment: a torn write leaves nothing valid behind it, damage in the middle does.
pub(crate) fn valid_record_after(data: &[u8], after_seq: u64, max_len: u32) -> Option<usize> {
    (1..data.len().saturating_sub(record::HEADER_LEN - 1)).find(|&i| {
        let rest = &data[i..];
        let Some(head) = rest.first_chunk::<{ record::HEADER_LEN }>() else { return false };
        let h = Header::decode(head);
        h.seq > after_seq
            && h.seq - after_seq < 1 << 32
            && h.len <= max_len
            && h.record_len() <= rest.len() as u64
            && h.verifies(&rest[record::HEADER_LEN..h.record_len() as usize])
    })
}
