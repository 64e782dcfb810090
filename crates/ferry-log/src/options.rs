//! [`LogOptions`], the builder that opens a log, and [`Durability`], the promise an append
//! makes when it completes.

use crate::error::{Error, Result};
use crate::Log;
use std::path::Path;
use std::time::Duration;

/// When an append counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// The append completes after the record's batch was written and `fdatasync`ed: it
    /// survives a crash of the process, of the kernel and a power cut. Concurrent appends share
    /// one write and one sync (group commit), so the cost per record falls as load rises.
    #[default]
    Fsync,
    /// The append completes after the write reached the operating system, and the writer
    /// syncs at least every interval. A process crash loses nothing; a kernel crash or power
    /// cut loses at most the last interval.
    Interval(Duration),
    /// The append completes after the write reached the operating system. The log syncs only
    /// when a segment fills and when it closes.
    None,
}

/// Options for opening a [`Log`], with these defaults:
///
/// | option | default |
/// |---|---|
/// | [`segment_size`](Self::segment_size) | 64 MiB |
/// | [`index_interval`](Self::index_interval) | 16 KiB |
/// | [`max_record_size`](Self::max_record_size) | 16 MiB |
/// | [`durability`](Self::durability) | [`Durability::Fsync`] |
/// | [`read_only`](Self::read_only) | false |
///
/// # Examples
///
/// ```
/// use ferry_log::{Durability, LogOptions};
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let log = LogOptions::new()
///     .segment_size(8 << 20)
///     .durability(Durability::Interval(Duration::from_millis(50)))
///     .open(dir.path())?;
/// assert_eq!(log.next_seq(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct LogOptions {
    pub(crate) segment_size: u64,
    pub(crate) index_interval: u64,
    pub(crate) max_record_size: usize,
    pub(crate) durability: Durability,
    pub(crate) read_only: bool,
    pub(crate) faults: Option<std::sync::Arc<crate::faults::Faults>>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size: 64 << 20,
            index_interval: 16 << 10,
            max_record_size: 16 << 20,
            durability: Durability::Fsync,
            read_only: false,
            faults: None,
        }
    }
}

impl LogOptions {
    /// The defaults.
    pub fn new() -> LogOptions {
        LogOptions::default()
    }

    /// The size at which the writer starts a new segment file. A record bigger than this gets
    /// a segment of its own.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// How many bytes of records lie between two entries of a segment's sparse index. Smaller
    /// means faster seeks and more memory (24 bytes per entry).
    pub fn index_interval(mut self, bytes: u64) -> Self {
        self.index_interval = bytes;
        self
    }

    /// The largest payload an append accepts. Readers also refuse a length field above it,
    /// before allocating for it.
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// When appends complete; see [`Durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens the log for reading only: no lock is taken, a torn tail is reported by
    /// [`Log::recovery`] but not cut, damaged indexes are rebuilt in memory only, and every
    /// write fails with [`Error::ReadOnly`]. This is how `ferry log inspect` looks at a log,
    /// even one that a running server has open.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Makes the writer fail on purpose; for tests of error handling.
    #[doc(hidden)]
    pub fn faults(mut self, faults: std::sync::Arc<crate::faults::Faults>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Opens (or creates) the log in `dir`, recovering it if the last run crashed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for options that cannot work, [`Error::Locked`] if the
    /// directory is open for writing elsewhere, [`Error::Corrupt`] for damage that is not a
    /// torn tail, and [`Error::Io`].
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Log> {
        self.validate()?;
        Log::open_with(dir.as_ref(), self)
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(Error::InvalidOption { name, reason: reason.to_string() });
        if self.segment_size < 4096 {
            return bad("segment_size", "must be at least 4096 bytes");
        }
        if self.index_interval == 0 {
            return bad("index_interval", "must be at least 1 byte");
        }
        if self.max_record_size == 0 || self.max_record_size > u32::MAX as usize {
            return bad("max_record_size", "must be between 1 byte and 4 GiB - 1");
        }
        if let Durability::Interval(d) = self.durability {
            if d.is_zero() {
                return bad("durability", "the sync interval must be longer than zero");
            }
        }
        Ok(())
    }
}
