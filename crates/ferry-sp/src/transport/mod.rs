//! Transports: each one turns a [`Url`] into byte streams, and nothing else. The SP
//! handshake and the length framing are written once, in [`stream`], over any stream, so
//! tcp, ipc and inproc differ only in how they connect and accept.
//!
//! Adding a transport means adding a file here that provides `bind` and `connect`, and one
//! arm in each of the two functions below.

pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod stream;
pub(crate) mod tcp;

use crate::error::Result;
use crate::url::Url;
use futures::future::BoxFuture;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) use stream::Framing;

/// A connected byte stream, split into halves so that a pipe's reader and writer tasks
/// never contend for a lock.
pub(crate) struct Conn {
    pub(crate) reader: Box<dyn AsyncRead + Send + Unpin>,
    pub(crate) writer: Box<dyn AsyncWrite + Send + Unpin>,
    pub(crate) framing: Framing,
    /// The peer's address, for logs.
    pub(crate) remote: String,
}

/// A bound listener of any transport.
pub(crate) trait Acceptor: Send {
    /// Waits for the next connection.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>>;
    /// The address actually bound (port 0 resolved).
    fn bound_url(&self) -> Url;
}

/// Binds `url`.
pub(crate) async fn bind(url: &Url) -> Result<Box<dyn Acceptor>> {
    match url {
        Url::Tcp { host, port, family } => {
            Ok(Box::new(tcp::bind(tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url }).await?))
        }
        Url::Ipc(path) => Ok(Box::new(ipc::bind(path)?)),
        Url::Inproc(name) => Ok(Box::new(inproc::bind(name)?)),
    }
}

/// Connects to `url`.
pub(crate) async fn connect(url: &Url) -> Result<Conn> {
    match url {
        Url::Tcp { host, port, family } => {
            tcp::connect(tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url }).await
        }
        Url::Ipc(path) => ipc::connect(path).await,
        Url::Inproc(name) => inproc::connect(name),
    }
}
