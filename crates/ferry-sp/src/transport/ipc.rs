//! `ipc://path`: the SP IPC mapping over Unix domain sockets. Identical to tcp but for the
//! 0x01 type byte before each length. A stale socket file (nobody accepting) is removed
//! before binding, and the file is removed when the listener closes.

use super::{Acceptor, Conn, Framing};
use crate::error::{Error, Result};
use crate::url::Url;
use futures::future::BoxFuture;
use std::io;
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};

fn conn(stream: UnixStream, remote: &Path) -> Conn {
    let (r, w) = stream.into_split();
    Conn::stream(Box::new(r), Box::new(w), Framing::TypedLength, format!("ipc://{}", remote.display()))
}

pub(crate) async fn connect(path: &Path) -> Result<Conn> {
    let at = || format!("ipc://{}", path.display());
    let s = UnixStream::connect(path).await.map_err(|e| Error::from_connect_io(e, &at()))?;
    Ok(conn(s, path))
}

pub(crate) struct IpcAcceptor {
    listener: UnixListener,
    path: PathBuf,
}

pub(crate) fn bind(path: &Path) -> Result<IpcAcceptor> {
    let at = || format!("ipc://{}", path.display());
    if path.exists() {
        // A live listener answers connect(); only a file nobody serves is stale.
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(Error::AddrInUse(at())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
            Err(_) => return Err(Error::AddrInUse(at())),
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| Error::from_bind_io(e, &at()))?;
    Ok(IpcAcceptor { listener, path: path.to_path_buf() })
}

impl Acceptor for IpcAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>> {
        Box::pin(async move {
            let (s, _) = self.listener.accept().await?;
            Ok(conn(s, &self.path))
        })
    }

    fn bound_url(&self) -> Url {
        Url::Ipc(self.path.clone())
    }
}

impl Drop for IpcAcceptor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
