//! `ws://host:port/path` and `wss://…`: the SP WebSocket mapping (sp-wire.md §5).
//!
//! The protocols are named in the HTTP upgrade instead of the SP connection header: a
//! dialer asks for the subprotocol `<peer>.sp.nanomsg.org` (a REQ asks for
//! `rep.sp.nanomsg.org`), and a listener accepts only `<self>.sp.nanomsg.org` and echoes it.
//! No 8-byte SP header follows; each SP message (header ++ body) is one binary WebSocket
//! message with no length prefix. We send messages in frames of at most 64 KiB, as NNG
//! does, and reassemble whatever fragmentation a peer uses, within `recv-size-max`.
//!
//! tungstenite does the framing and the client side of the upgrade. The listener side is
//! [`server`] (one HTTP listener per host and port, shared by every socket listening there,
//! routing upgrades by path) with the request checks in [`upgrade`].

mod server;
mod upgrade;

use super::stream::HANDSHAKE_TIMEOUT;
use super::tcp::{self, TcpAddr};
use super::{Conn, Io, Link, Local};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::options::TlsOptions;
use crate::protocol::Protocol;
use crate::url::{Family, Url};
use bytes::{Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::io;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

pub(crate) use server::bind;

type WsStream = WebSocketStream<Box<dyn Io>>;

/// The largest frame we send: NNG's `WS_DEF_MAXTXFRAME`. Larger messages go out as a
/// binary frame followed by continuation frames.
const MAX_TX_FRAME: usize = 64 * 1024;

/// The WebSocket subprotocol that names SP protocol `name`.
fn subprotocol(name: &str) -> String {
    format!("{name}.sp.nanomsg.org")
}

/// The protocol number a subprotocol names, if it names one.
fn named_protocol(subprotocol: &[u8]) -> Option<u16> {
    let name = std::str::from_utf8(subprotocol).ok()?.strip_suffix(".sp.nanomsg.org")?;
    Protocol::ALL.iter().find(|p| p.name() == name).map(|p| p.id())
}

/// The parts of a `ws://` or `wss://` URL, and the URL itself for messages.
#[derive(Clone, Copy)]
pub(crate) struct WsAddr<'a> {
    pub(crate) secure: bool,
    pub(crate) host: Option<&'a str>,
    pub(crate) port: u16,
    pub(crate) family: Family,
    pub(crate) path: &'a str,
    pub(crate) url: &'a Url,
}

impl<'a> WsAddr<'a> {
    pub(crate) fn of(url: &'a Url) -> Option<WsAddr<'a>> {
        match url {
            Url::Ws { secure, host, port, family, path } => {
                Some(WsAddr { secure: *secure, host: host.as_deref(), port: *port, family: *family, path, url })
            }
            _ => None,
        }
    }

    fn tcp(self) -> TcpAddr<'a> {
        TcpAddr { host: self.host, port: self.port, family: self.family, url: self.url }
    }

    fn scheme(self) -> &'static str {
        if self.secure {
            "wss"
        } else {
            "ws"
        }
    }
}

/// An upgraded WebSocket connection, before its reader and writer exist.
pub(crate) struct WsConn {
    state: State,
    /// The peer's protocol number, as the subprotocol settled it.
    peer: u16,
}

enum State {
    /// Accepted by our listener: the 101 is sent, and `leftover` holds bytes the client
    /// sent after its request. Framing starts when the pipe does, so that it takes the
    /// socket's `recv-size-max` as it is then.
    Accepted { io: Box<dyn Io>, leftover: Vec<u8> },
    /// Dialed: tungstenite did the upgrade and may already hold the first frames. Boxed:
    /// it is large, and moves a few times before the pipe starts.
    Dialed(Box<WsStream>),
}

impl WsConn {
    /// Starts framing and splits the connection into a pipe's two halves.
    pub(crate) async fn framed(self, recv_max: usize) -> (u16, WsReader, WsWriter) {
        let ws = match self.state {
            State::Accepted { io, leftover } => {
                WebSocketStream::from_partially_read(io, leftover, Role::Server, Some(config(recv_max))).await
            }
            State::Dialed(ws) => *ws,
        };
        let (sink, stream) = ws.split();
        (self.peer, WsReader { stream }, WsWriter { sink })
    }
}

/// Frame and message limits from `recv-size-max` (0: none). tungstenite checks a frame's
/// announced length and a message's running total against them before it allocates.
fn config(recv_max: usize) -> WebSocketConfig {
    let limit = (recv_max != 0).then_some(recv_max);
    WebSocketConfig::default().max_message_size(limit).max_frame_size(limit)
}

/// Maps a tungstenite error on an established connection to ours, keeping the source.
fn ws_error(e: WsError) -> Error {
    match e {
        WsError::Io(e) => Error::Io(e),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Error::MessageTooLarge { size: size as u64, max: max_size }
        }
        WsError::ConnectionClosed | WsError::AlreadyClosed => Error::Io(io::ErrorKind::UnexpectedEof.into()),
        other => Error::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

/// Maps a failed client upgrade: an HTTP answer other than 101 keeps its status.
fn upgrade_error(e: WsError, url: &Url) -> Error {
    match e {
        WsError::Http(response) => Error::UpgradeRefused { url: url.to_string(), status: response.status().as_u16() },
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => {
            Error::Protocol("the WebSocket listener did not agree to the SP subprotocol")
        }
        other => ws_error(other),
    }
}

#[cfg(feature = "transport-tls")]
async fn client_stream(addr: WsAddr<'_>, tls: &TlsOptions) -> Result<(Box<dyn Io>, std::net::SocketAddr)> {
    if addr.secure {
        // A bad configuration fails before anything goes on the network.
        super::tls::client_config(tls)?;
    }
    let (tcp, remote) = tcp::connect_stream(addr.tcp()).await?;
    if addr.secure {
        let stream = super::tls::client_handshake(tcp, addr.host.unwrap_or_default(), tls).await?;
        return Ok((Box::new(stream), remote));
    }
    Ok((Box::new(tcp), remote))
}

#[cfg(not(feature = "transport-tls"))]
async fn client_stream(addr: WsAddr<'_>, _tls: &TlsOptions) -> Result<(Box<dyn Io>, std::net::SocketAddr)> {
    if addr.secure {
        return Err(Error::BadUrl {
            url: addr.url.to_string(),
            reason: "wss:// needs ferry-sp's transport-tls feature",
        });
    }
    let (tcp, remote) = tcp::connect_stream(addr.tcp()).await?;
    Ok((Box::new(tcp), remote))
}

/// Dials: TCP, TLS for wss, then the upgrade asking for our peer's subprotocol, with
/// `Host` naming the host as the URL spells it.
pub(crate) async fn connect(url: &Url, local: &Local) -> Result<Conn> {
    let addr = WsAddr::of(url).ok_or(Error::BadUrl { url: url.to_string(), reason: "not a ws:// or wss:// URL" })?;
    let (io, remote) = client_stream(addr, &local.opts.tls).await?;
    let host = addr.host.unwrap_or_default();
    let authority =
        if host.contains(':') { format!("[{host}]:{}", addr.port) } else { format!("{host}:{}", addr.port) };
    let asked = subprotocol(local.protocol.peer_name());
    let bad_url = || Error::BadUrl { url: url.to_string(), reason: "not a valid HTTP request target" };
    let mut request =
        format!("{}://{authority}{}", addr.scheme(), addr.path).into_client_request().map_err(|_| bad_url())?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", asked.parse().map_err(|_| bad_url())?);
    let shake = tokio_tungstenite::client_async_with_config(request, io, Some(config(local.opts.recv_size_max)));
    let (ws, response) = tokio::time::timeout(HANDSHAKE_TIMEOUT, shake)
        .await
        .map_err(|_| Error::Timeout)?
        .map_err(|e| upgrade_error(e, url))?;
    // tungstenite has checked that the listener echoed the one subprotocol we asked for. It
    // names the listener's protocol, which the pipe checks as it checks an SP header's.
    let peer = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| named_protocol(v.as_bytes()))
        .ok_or(Error::Protocol("the WebSocket listener named no SP protocol"))?;
    let conn = WsConn { state: State::Dialed(Box::new(ws)), peer };
    Ok(Conn { link: Link::Ws(conn), remote: format!("{}://{remote}{}", addr.scheme(), addr.path) })
}

/// The receiving half: one binary message is one SP payload.
pub(crate) struct WsReader {
    stream: SplitStream<WsStream>,
}

impl WsReader {
    /// The next binary message. Pings are answered by tungstenite on the next read; a text
    /// message (NNG closes with 1003), a protocol violation or an oversized frame or message
    /// closes the pipe.
    pub(crate) async fn read_message(&mut self) -> Result<Bytes> {
        loop {
            match self.stream.next().await {
                Some(Ok(WsMessage::Binary(payload))) => return Ok(payload),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                Some(Ok(WsMessage::Text(_))) => return Err(Error::Protocol("text message on an SP WebSocket")),
                Some(Ok(WsMessage::Close(_))) | None => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                Some(Err(e)) => return Err(ws_error(e)),
            }
        }
    }
}

/// The sending half.
pub(crate) struct WsWriter {
    sink: SplitSink<WsStream, WsMessage>,
}

impl WsWriter {
    /// Sends each message of `batch` as one binary message in frames of at most
    /// [`MAX_TX_FRAME`], then flushes once.
    pub(crate) async fn write_batch(&mut self, batch: &[Message]) -> Result<()> {
        for m in batch {
            for frame in fragments(payload(m), MAX_TX_FRAME) {
                self.sink.feed(WsMessage::Frame(frame)).await.map_err(ws_error)?;
            }
        }
        self.sink.flush().await.map_err(ws_error)
    }
}

/// Header ++ body, copied only when there is a header.
fn payload(m: &Message) -> Bytes {
    if m.header.is_empty() {
        return m.body.clone();
    }
    let mut p = BytesMut::with_capacity(m.len());
    p.extend_from_slice(&m.header);
    p.extend_from_slice(&m.body);
    p.freeze()
}

/// The frames of one binary message: a binary frame, then continuation frames, the last
/// one final; slices of `payload`, not copies. An empty payload is one empty final frame.
fn fragments(mut payload: Bytes, max: usize) -> impl Iterator<Item = Frame> {
    let mut first = true;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let chunk = payload.split_to(payload.len().min(max));
        done = payload.is_empty();
        let opcode = if first { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
        first = false;
        Some(Frame::message(chunk, opcode, done))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocols_name_protocol_numbers() {
        assert_eq!(named_protocol(b"rep.sp.nanomsg.org"), Some(0x31));
        assert_eq!(named_protocol(b"pair1.sp.nanomsg.org"), Some(0x11));
        assert_eq!(named_protocol(subprotocol(Protocol::Surveyor.peer_name()).as_bytes()), Some(0x63));
        for bad in [&b"rep"[..], b"chat.sp.nanomsg.org", b"rep.sp.nanomsg.org.evil", b"\xff.sp.nanomsg.org"] {
            assert_eq!(named_protocol(bad), None);
        }
    }

    #[test]
    fn large_payloads_are_split_into_a_binary_frame_and_continuations() {
        let frames: Vec<Frame> = fragments(Bytes::from(vec![1u8; 150_000]), MAX_TX_FRAME).collect();
        let sizes: Vec<usize> = frames.iter().map(|f| f.payload().len()).collect();
        assert_eq!(sizes, [65_536, 65_536, 18_928]);
        let kinds: Vec<(OpCode, bool)> = frames.iter().map(|f| (f.header().opcode, f.header().is_final)).collect();
        assert_eq!(
            kinds,
            [
                (OpCode::Data(Data::Binary), false),
                (OpCode::Data(Data::Continue), false),
                (OpCode::Data(Data::Continue), true)
            ]
        );
        let empty: Vec<Frame> = fragments(Bytes::new(), MAX_TX_FRAME).collect();
        assert_eq!(empty.len(), 1);
        assert!(empty[0].header().is_final && empty[0].payload().is_empty());
        let exact: Vec<Frame> = fragments(Bytes::from(vec![0u8; MAX_TX_FRAME]), MAX_TX_FRAME).collect();
        assert_eq!(exact.len(), 1);
    }

    /// A client and a server WebSocket over an in-memory pipe, framed as pipes frame them.
    async fn pair(server_max: usize) -> ((WsReader, WsWriter), (WsReader, WsWriter)) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = WebSocketStream::from_raw_socket(Box::new(a) as Box<dyn Io>, Role::Client, None).await;
        let client = WsConn { state: State::Dialed(Box::new(client)), peer: 0 };
        let server = WsConn { state: State::Accepted { io: Box::new(b), leftover: Vec::new() }, peer: 0 };
        let (_, cr, cw) = client.framed(0).await;
        let (_, sr, sw) = server.framed(server_max).await;
        ((cr, cw), (sr, sw))
    }

    #[tokio::test]
    async fn messages_round_trip_whole_and_oversized_ones_are_refused() {
        let ((_cr, mut cw), (mut sr, sw)) = pair(200_000).await;
        let big = Bytes::from((0..150_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let msgs = [
            Message::with_header(Bytes::from_static(&[0x80, 0, 0, 1]), Bytes::from_static(b"hi")),
            Message::new(Bytes::new()),
            Message::new(big.clone()),
            Message::new(Bytes::from(vec![0u8; 200_001])),
        ];
        let writer = tokio::spawn(async move { cw.write_batch(&msgs).await });
        assert_eq!(&sr.read_message().await.unwrap()[..], &[0x80, 0, 0, 1, b'h', b'i']);
        assert!(sr.read_message().await.unwrap().is_empty());
        assert_eq!(sr.read_message().await.unwrap(), big);
        assert!(matches!(sr.read_message().await, Err(Error::MessageTooLarge { max: 200_000, .. })));
        // The writer may still be blocked on the pipe; closing the server end ends it.
        drop((sr, sw));
        let _ = writer.await;
    }
}
