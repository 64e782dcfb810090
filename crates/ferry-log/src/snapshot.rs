//! Snapshot (checkpoint) files for the state machines built on the log: a whole file is
//! replaced atomically, so after a crash a reader finds either the old snapshot or the new
//! one, whole, never a mix.
//!
//! Writing goes: temp file in the same directory, write, fsync, rename over the target,
//! fsync the directory (without it, the rename itself may not survive a power cut).
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "FRYSNP", 0x00, format version 0x01
//!      8     8  length of the data, u64 LE
//!     16     4  CRC32C of the data, u32 LE
//!     20     4  zero
//!     24   len  data
//! ```
//!
//! The checksum catches what the rename protocol cannot: a file damaged later on disk.
//!
//! # Examples
//!
//! ```
//! use ferry_log::snapshot;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.snap");
//! assert_eq!(snapshot::read(&path)?, None);
//! snapshot::write(&path, b"applied up to 42")?;
//! assert_eq!(snapshot::read(&path)?.as_deref(), Some(&b"applied up to 42"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{Error, Result};
use bytes::Bytes;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"FRYSNP\x00\x01";
const HEADER_LEN: usize = 24;

fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::InvalidOption {
        name: "snapshot path",
        reason: format!("{} has no file name", path.display()),
    })?;
    Ok(path.with_file_name(format!(".{name}.tmp")))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the snapshot at `path` with `data`, atomically and durably: when this returns
/// `Ok`, a crash leaves the new snapshot; when it fails or crashes midway, the old one.
///
/// # Errors
///
/// [`Error::Io`] from any step; the temp file is removed and the old snapshot stays.
pub fn write(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        header[16..20].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
        file.write_all(&header).map_err(|e| Error::io("write", &tmp, e))?;
        file.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    crate::segment::sync_dir(parent(path))
}

/// Reads the snapshot at `path`; `None` if there is none.
///
/// # Errors
///
/// [`Error::Corrupt`] if the file fails its checks, and [`Error::Io`].
pub fn read(path: &Path) -> Result<Option<Bytes>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let corrupt = |reason: &str| Error::corrupt(path, 0, reason);
    let header = bytes.first_chunk::<HEADER_LEN>().ok_or_else(|| corrupt("shorter than a snapshot header"))?;
    if header[..8] != MAGIC {
        return Err(corrupt("not a ferry snapshot (bad magic)"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[8..16]);
    let len = u64::from_le_bytes(len);
    let crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if len != (bytes.len() - HEADER_LEN) as u64 {
        return Err(corrupt("length does not match the file size"));
    }
    let data = Bytes::from(bytes).slice(HEADER_LEN..);
    if crc32c::crc32c(&data) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(read(&path).unwrap().unwrap(), "two");
        assert!(!dir.path().join(".s.tmp").exists());

        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path), Err(Error::Corrupt { .. })));
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(read(&path), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_failed_write_keeps_the_old_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        write(&path, b"old").unwrap();
        // A directory where the temp file must go makes the write fail.
        std::fs::create_dir(dir.path().join(".s.tmp")).unwrap();
        assert!(write(&path, b"new").is_err());
        assert_eq!(read(&path).unwrap().unwrap(), "old");
    }
}
