//! `inproc://name`: sockets of one process. A connection is an in-memory byte pipe
//! carrying the same handshake and framing as tcp, so the peer check, headers and size
//! limits behave exactly as on the network.

use super::{Acceptor, Conn, Framing};
use crate::error::{Error, Result};
use crate::url::Url;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bytes buffered in each direction of an inproc connection.
const PIPE_BYTES: usize = 256 * 1024;

struct Entry {
    generation: u64,
    tx: mpsc::UnboundedSender<DuplexStream>,
    /// The listener's; once cancelled the name is free, though the acceptor may live on
    /// for a moment.
    stop: CancellationToken,
}

fn registry() -> &'static Mutex<HashMap<String, Entry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Entry>> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

fn conn(stream: DuplexStream, name: &str) -> Conn {
    let (r, w) = tokio::io::split(stream);
    Conn::stream(Box::new(r), Box::new(w), Framing::Length, format!("inproc://{name}"))
}

pub(crate) fn connect(name: &str) -> Result<Conn> {
    let refused = || Error::ConnectionRefused(format!("inproc://{name}"));
    let reg = lock();
    let entry = reg.get(name).filter(|e| !e.stop.is_cancelled()).ok_or_else(refused)?;
    let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
    entry.tx.send(theirs).map_err(|_| refused())?;
    Ok(conn(ours, name))
}

pub(crate) struct InprocAcceptor {
    name: String,
    generation: u64,
    rx: mpsc::UnboundedReceiver<DuplexStream>,
}

pub(crate) fn bind(name: &str, stop: &CancellationToken) -> Result<InprocAcceptor> {
    static GENERATION: AtomicU64 = AtomicU64::new(0);
    let mut reg = lock();
    if reg.get(name).is_some_and(|e| !e.stop.is_cancelled()) {
        return Err(Error::AddrInUse(format!("inproc://{name}")));
    }
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    reg.insert(name.to_string(), Entry { generation, tx, stop: stop.clone() });
    Ok(InprocAcceptor { name: name.to_string(), generation, rx })
}

impl Acceptor for InprocAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>> {
        Box::pin(async move {
            let s = self.rx.recv().await.ok_or(io::ErrorKind::NotConnected)?;
            Ok(conn(s, &self.name))
        })
    }

    fn bound_url(&self) -> Url {
        Url::Inproc(self.name.clone())
    }
}

impl Drop for InprocAcceptor {
    fn drop(&mut self) {
        let mut reg = lock();
        if reg.get(&self.name).is_some_and(|e| e.generation == self.generation) {
            reg.remove(&self.name);
        }
    }
}
