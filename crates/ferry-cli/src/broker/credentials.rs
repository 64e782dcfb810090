//! Stored logins: `$XDG_CONFIG_HOME/ferry/credentials.toml` (else
//! `~/.config/ferry/credentials.toml`), one token per server URL. A token is as good as a
//! password until it expires, so the file is the user's alone (0600, in a 0700 directory)
//! and is replaced atomically, never left half-written.

use super::http::Failure;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;

/// One server's login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Login {
    pub(crate) user: String,
    pub(crate) token: String,
    /// Seconds since the epoch.
    pub(crate) expires_at: u64,
}

/// Every stored login, by server URL.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Store {
    #[serde(default)]
    servers: BTreeMap<String, Login>,
}

/// The credentials file.
pub(crate) fn file() -> Result<PathBuf, Failure> {
    // The XDG spec says relative values are to be ignored.
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let home = || std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_absolute()).map(|h| h.join(".config"));
    let dir = xdg.or_else(home).ok_or_else(|| {
        Failure::Other("cannot find a config directory: neither XDG_CONFIG_HOME nor HOME is set".into())
    })?;
    Ok(dir.join("ferry").join("credentials.toml"))
}

impl Store {
    /// The stored logins; none when the file does not exist.
    pub(crate) fn load() -> Result<Store, Failure> {
        let path = file()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| Failure::Other(format!("{}: not a ferry credentials file: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
            Err(e) => Err(Failure::Other(format!("cannot read {}: {e}", path.display()))),
        }
    }

    pub(crate) fn get(&self, server: &str) -> Option<&Login> {
        self.servers.get(server)
    }

    pub(crate) fn set(&mut self, server: &str, login: Login) {
        self.servers.insert(server.to_string(), login);
    }

    /// Forgets a server's login; whether there was one.
    pub(crate) fn remove(&mut self, server: &str) -> bool {
        self.servers.remove(server).is_some()
    }

    /// Writes the file: a new file readable only by the user, renamed over the old one.
    pub(crate) fn save(&self) -> Result<PathBuf, Failure> {
        let path = file()?;
        let fail = |what: &str, e: std::io::Error| Failure::Other(format!("cannot {what} {}: {e}", path.display()));
        let dir = path.parent().ok_or_else(|| Failure::Other(format!("{}: no parent directory", path.display())))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("create the directory of", e))?;
        let text = toml::to_string(self).map_err(|e| Failure::Other(format!("cannot encode credentials: {e}")))?;
        let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            // The mode above applies only to a new file; a stale temporary file keeps its own.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail("write", e)
        })?;
        Ok(path)
    }
}
