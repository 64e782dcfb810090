//! Failures on purpose, so that tests can check what appenders see when a disk fills up or
//! an fdatasync fails, which a real temp directory will not do on demand.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Failures the writer will run into. Hidden from the docs: only tests use it.
#[derive(Debug, Default)]
pub struct Faults {
    /// Bytes that writes may still add before they fail with "no space left on device".
    /// `u64::MAX` (the default after [`Faults::new`]) means no limit.
    space_left: AtomicU64,
    /// Fail the next fdatasync with an I/O error.
    fail_next_sync: AtomicBool,
}

impl Faults {
    /// No failures yet.
    pub fn new() -> Faults {
        Faults { space_left: AtomicU64::new(u64::MAX), fail_next_sync: AtomicBool::new(false) }
    }

    /// Lets writes add only `bytes` more bytes; the write that goes past fails after writing
    /// what fits, as a full disk does.
    pub fn set_space_left(&self, bytes: u64) {
        self.space_left.store(bytes, Ordering::SeqCst);
    }

    /// Makes the next fdatasync fail.
    pub fn fail_next_sync(&self) {
        self.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// How many of `len` bytes the next write may write, and the error after them.
    pub(crate) fn take_space(&self, len: u64) -> (u64, Option<io::Error>) {
        let left = self.space_left.load(Ordering::SeqCst);
        if left == u64::MAX {
            return (len, None);
        }
        let allowed = left.min(len);
        self.space_left.store(left - allowed, Ordering::SeqCst);
        if allowed < len {
            (allowed, Some(io::Error::from_raw_os_error(28))) // ENOSPC
        } else {
            (len, None)
        }
    }

    pub(crate) fn sync_error(&self) -> Option<io::Error> {
        self.fail_next_sync.swap(false, Ordering::SeqCst).then(|| io::Error::from_raw_os_error(5))
        // EIO
    }
}
