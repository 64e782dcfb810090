//! Transports: each one turns a [`Url`] into connections, and nothing else. The SP handshake
//! and the length framing are written once, in [`stream`], over any byte stream, so tcp,
//! ipc, inproc and tls differ only in the stream they wrap. ws carries each message as one
//! WebSocket message instead, so a connection is either a [`Link::Stream`] or a
//! [`Link::Ws`], and a pipe reads and writes through [`PipeReader`] and [`PipeWriter`],
//! which hide the difference from the pipe tasks.
//!
//! This file is the registry: [`bind`] and [`connect`] list every transport, each behind
//! its cargo feature where it has one. Adding a transport means adding a file here that
//! provides `bind` and `connect`, and one arm in each of the two functions.

pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod stream;
pub(crate) mod tcp;
#[cfg(feature = "transport-tls")]
pub(crate) mod tls;
#[cfg(feature = "transport-ws")]
pub(crate) mod ws;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::Options;
use crate::protocol::Protocol;
use crate::url::Url;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub(crate) use stream::Framing;
use stream::{handshake, FrameReader, FrameWriter};

/// The socket a transport works for: ws names protocols in its upgrade request, tls takes
/// its certificates from the options. Only those optional transports read it.
#[cfg_attr(not(all(feature = "transport-ws", feature = "transport-tls")), allow(dead_code))]
pub(crate) struct Local {
    pub(crate) protocol: Protocol,
    pub(crate) opts: Options,
}

/// A byte stream boxed whole, not split: what ws runs over (TCP, or TLS over TCP).
#[cfg_attr(not(feature = "transport-ws"), allow(dead_code))]
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A new connection, before the SP handshake.
pub(crate) struct Conn {
    pub(crate) link: Link,
    /// The peer's address, for logs.
    pub(crate) remote: String,
}

/// What a connection carries messages over.
pub(crate) enum Link {
    /// A byte stream, split into halves so that a pipe's reader and writer tasks run
    /// independently; the SP handshake and length framing are still to come.
    Stream { reader: Box<dyn AsyncRead + Send + Unpin>, writer: Box<dyn AsyncWrite + Send + Unpin>, framing: Framing },
    /// An upgraded WebSocket; its subprotocol has already settled the peer's protocol.
    #[cfg(feature = "transport-ws")]
    Ws(ws::WsConn),
}

impl Conn {
    /// A byte-stream connection.
    pub(crate) fn stream(
        reader: Box<dyn AsyncRead + Send + Unpin>,
        writer: Box<dyn AsyncWrite + Send + Unpin>,
        framing: Framing,
        remote: String,
    ) -> Conn {
        Conn { link: Link::Stream { reader, writer, framing }, remote }
    }

    /// Finishes what the transport started and returns the peer's protocol number with the
    /// pipe's two halves: over a stream, the SP handshake announcing `protocol`; over ws,
    /// only the message size limit, since the upgrade already named both protocols.
    /// `recv_max` is `recv-size-max` (0: unlimited).
    pub(crate) async fn establish(self, protocol: Protocol, recv_max: usize) -> Result<(u16, PipeReader, PipeWriter)> {
        match self.link {
            Link::Stream { mut reader, mut writer, framing } => {
                let peer = handshake(&mut *reader, &mut *writer, protocol.id()).await?;
                let reader = PipeReader::Stream(FrameReader::new(reader, framing, recv_max));
                Ok((peer, reader, PipeWriter::Stream(FrameWriter::new(writer, framing))))
            }
            #[cfg(feature = "transport-ws")]
            Link::Ws(conn) => {
                let (peer, reader, writer) = conn.framed(recv_max).await;
                Ok((peer, PipeReader::Ws(reader), PipeWriter::Ws(writer)))
            }
        }
    }
}

/// The receiving half of a pipe. The stream arm is the tcp/ipc/inproc/tls hot path: a
/// match, then the same calls as before ws existed, with no boxing or allocation added.
pub(crate) enum PipeReader {
    Stream(FrameReader),
    #[cfg(feature = "transport-ws")]
    Ws(ws::WsReader),
}

impl PipeReader {
    /// The next payload (SP header ++ body). Errors close the pipe.
    pub(crate) async fn read_frame(&mut self) -> Result<Bytes> {
        match self {
            PipeReader::Stream(r) => r.read_frame().await,
            #[cfg(feature = "transport-ws")]
            PipeReader::Ws(r) => r.read_message().await,
        }
    }

    /// A payload already complete in the read buffer, without waiting. WebSocket messages
    /// are handed over one at a time: tungstenite offers no look into its buffer.
    pub(crate) fn next_buffered(&mut self) -> Result<Option<Bytes>> {
        match self {
            PipeReader::Stream(r) => r.next_buffered(),
            #[cfg(feature = "transport-ws")]
            PipeReader::Ws(_) => Ok(None),
        }
    }
}

/// The sending half of a pipe.
pub(crate) enum PipeWriter {
    Stream(FrameWriter),
    #[cfg(feature = "transport-ws")]
    Ws(ws::WsWriter),
}

impl PipeWriter {
    /// Writes every message of `batch`, in order, and flushes.
    pub(crate) async fn write_batch(&mut self, batch: &[Message]) -> Result<()> {
        match self {
            PipeWriter::Stream(w) => Ok(w.write_batch(batch).await?),
            #[cfg(feature = "transport-ws")]
            PipeWriter::Ws(w) => w.write_batch(batch).await,
        }
    }
}

/// A bound listener of any transport.
pub(crate) trait Acceptor: Send {
    /// Waits for the next connection. Transports with a handshake of their own (TLS, the
    /// WebSocket upgrade) run it on a task per connection and hand over only finished ones,
    /// so that one slow peer holds up nobody.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>>;
    /// The address actually bound (port 0 resolved).
    fn bound_url(&self) -> Url;
}

/// The error for a URL whose transport was left out of this build.
#[allow(dead_code)] // unused when every transport feature is on
fn not_built(url: &Url, feature: &'static str) -> Error {
    Error::BadUrl { url: url.to_string(), reason: feature }
}

/// Binds `url` for `local`. `stop` is cancelled when the listener closes. Transports whose
/// address lives in a registry (inproc names, the paths of a shared ws server) stop routing
/// new connections to the listener from that moment, and let the address be bound again,
/// rather than when the accept task gets round to dropping the acceptor.
#[cfg_attr(not(any(feature = "transport-ws", feature = "transport-tls")), allow(unused_variables))]
pub(crate) async fn bind(url: &Url, local: &Local, stop: &CancellationToken) -> Result<Box<dyn Acceptor>> {
    match url {
        Url::Tcp { host, port, family } => {
            Ok(Box::new(tcp::bind(tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url }).await?))
        }
        Url::Ipc(path) => Ok(Box::new(ipc::bind(path)?)),
        Url::Inproc(name) => Ok(Box::new(inproc::bind(name, stop)?)),
        #[cfg(feature = "transport-tls")]
        Url::TlsTcp { host, port, family } => {
            let addr = tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url };
            Ok(Box::new(tls::bind(addr, &local.opts.tls).await?))
        }
        #[cfg(not(feature = "transport-tls"))]
        Url::TlsTcp { .. } => Err(not_built(url, "tls+tcp:// needs ferry-sp's transport-tls feature")),
        #[cfg(feature = "transport-ws")]
        Url::Ws { .. } => Ok(Box::new(ws::bind(url, local, stop).await?)),
        #[cfg(not(feature = "transport-ws"))]
        Url::Ws { .. } => Err(not_built(url, "ws:// and wss:// need ferry-sp's transport-ws feature")),
    }
}

/// Connects to `url` for `local`.
#[cfg_attr(not(any(feature = "transport-ws", feature = "transport-tls")), allow(unused_variables))]
pub(crate) async fn connect(url: &Url, local: &Local) -> Result<Conn> {
    match url {
        Url::Tcp { host, port, family } => {
            tcp::connect(tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url }).await
        }
        Url::Ipc(path) => ipc::connect(path).await,
        Url::Inproc(name) => inproc::connect(name),
        #[cfg(feature = "transport-tls")]
        Url::TlsTcp { host, port, family } => {
            tls::connect(tcp::TcpAddr { host: host.as_deref(), port: *port, family: *family, url }, &local.opts.tls)
                .await
        }
        #[cfg(not(feature = "transport-tls"))]
        Url::TlsTcp { .. } => Err(not_built(url, "tls+tcp:// needs ferry-sp's transport-tls feature")),
        #[cfg(feature = "transport-ws")]
        Url::Ws { .. } => ws::connect(url, local).await,
        #[cfg(not(feature = "transport-ws"))]
        Url::Ws { .. } => Err(not_built(url, "ws:// and wss:// need ferry-sp's transport-ws feature")),
    }
}
