//! The log's error type. Every variant says what was being done and to which file, and
//! I/O errors keep their source.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A `Result` with the log's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a log.
///
/// `Error` is `Clone`, because one failed write is reported to every appender whose record
/// was in it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What the log was doing (`"write"`, `"fdatasync"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A record or file failed its checks somewhere other than the torn tail of the log.
    /// Recovery never skips such damage: the log refuses to open until someone looks.
    #[error("corrupt log data in {} at byte {offset}: {reason}", segment.display())]
    Corrupt {
        /// The damaged file.
        segment: PathBuf,
        /// Where the first bad byte or record starts.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A record larger than [`LogOptions::max_record_size`](crate::LogOptions::max_record_size).
    #[error("record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The record's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The sequence number is not in the log (already removed from the front, or not yet
    /// written).
    #[error("sequence number {seq} is outside the log, which holds {first}..{next}")]
    OutOfRange {
        /// The number asked for.
        seq: u64,
        /// The first sequence number still in the log.
        first: u64,
        /// The sequence number the next append will get.
        next: u64,
    },
    /// No record starts at this position (its segment was removed, or the offset is wrong).
    #[error("no record at segment {segment} offset {offset}")]
    BadPosition {
        /// The segment asked for.
        segment: u64,
        /// The offset asked for.
        offset: u64,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
    /// An earlier fdatasync failed. After that, the state of the file on disk is unknown
    /// (the kernel may have dropped the dirty pages), so the log stops accepting writes
    /// instead of acknowledging records it cannot vouch for. Reopen the log to recover.
    #[error("the log stopped accepting writes after an earlier failure: {0}")]
    Failed(Arc<Error>),
    /// A write was asked of a log opened read-only.
    #[error("the log was opened read-only")]
    ReadOnly,
    /// Another process (or another `Log` in this one) has the directory open for writing.
    #[error("{} is already open for writing (lock held on {})", dir.display(), dir.join(crate::LOCK_FILE).display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// An option value that cannot work.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source: Arc::new(source) }
    }

    pub(crate) fn corrupt(segment: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt { segment: segment.into(), offset, reason: reason.into() }
    }
}
