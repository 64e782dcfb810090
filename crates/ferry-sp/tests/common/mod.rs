//! What the behaviour tests share: bounded waits, connected sockets, and [`RawPeer`], an SP
//! peer written by hand from the wire spec (sp-wire.md §2, §3) so that a test can send what
//! a well-behaved socket never would and read back the exact bytes ferry puts on the wire.
//!
//! Every wait here is bounded by [`WAIT`]: a broken socket fails its test instead of hanging
//! the suite.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use ferry_sp::{Message, Pem, Protocol, SockOpt, Socket};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio::task::JoinHandle;

/// The bound on every wait that should succeed: generous, so that a loaded machine does not
/// fail a test, finite, so that a broken socket does.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// How long a test listens for something that must not arrive.
pub(crate) const QUIET: Duration = Duration::from_millis(200);

/// Loopback TCP on a port the system chooses.
pub(crate) const TCP: &str = "tcp://127.0.0.1:0";

/// `assert_err!(expr, pattern)`: `expr` is an `Err` whose error matches `pattern`.
#[allow(unused_macros)]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {:?}", stringify!($pattern), other),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use assert_err;

/// Awaits `fut`, failing the test after [`WAIT`].
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("not done after {WAIT:?}: {what}"))
}

/// Polls `cond` until it holds, failing the test after [`WAIT`].
pub(crate) async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A socket whose sends and receives give up after [`WAIT`].
pub(crate) fn socket(protocol: Protocol) -> Socket {
    let s = Socket::new(protocol).expect("open socket");
    s.set(SockOpt::RecvTimeout(Some(WAIT))).expect("set recv-timeout");
    s.set(SockOpt::SendTimeout(Some(WAIT))).expect("set send-timeout");
    s
}

/// Gives `s` the server certificate of `certs` (to listen) and its authority (to dial).
pub(crate) fn use_certs(s: &Socket, certs: &ferry_testkit::TestCerts) {
    let (cert, key) = (Pem::from(certs.cert_pem.as_str()), Pem::from(certs.key_pem.as_str()));
    s.set(SockOpt::TlsCertKey { cert, key }).expect("set tls-cert-key-file");
    s.set(SockOpt::TlsCa(Pem::from(certs.ca_pem.as_str()))).expect("set tls-ca-file");
}

/// Listens on `url`; returns the bound address (port 0 resolved).
pub(crate) async fn listen(s: &Socket, url: &str) -> String {
    s.listen(url).await.unwrap_or_else(|e| panic!("listen on {url}: {e}")).url().to_string()
}

/// `listener` listens on `url`, `dialer` dials it; returns the bound address once both ends
/// have the new pipe (a PUB, PUSH or BUS listener sends only to pipes it has).
pub(crate) async fn connect_at(listener: &Socket, dialer: &Socket, url: &str) -> String {
    let url = listen(listener, url).await;
    dial(listener, dialer, &url).await;
    url
}

/// [`connect_at`] on loopback TCP.
pub(crate) async fn connect(listener: &Socket, dialer: &Socket) -> String {
    connect_at(listener, dialer, TCP).await
}

/// `dialer` dials `url`, where `listener` listens; returns once both ends have the pipe.
pub(crate) async fn dial(listener: &Socket, dialer: &Socket, url: &str) {
    let before = listener.pipe_count();
    dialer.dial(url).await.unwrap_or_else(|e| panic!("dial {url}: {e}"));
    until("the listener sees the new pipe", || listener.pipe_count() > before).await;
}

/// A socket of `listener` and a socket of `dialer` connected over loopback TCP.
pub(crate) async fn connected(listener: Protocol, dialer: Protocol) -> (Socket, Socket) {
    let (l, d) = (socket(listener), socket(dialer));
    connect(&l, &d).await;
    (l, d)
}

/// A socket of `listener` listening on loopback TCP, and `n` sockets of `peer` dialed in.
pub(crate) async fn star(listener: Protocol, peer: Protocol, n: usize) -> (Socket, Vec<Socket>) {
    let hub = socket(listener);
    let url = listen(&hub, TCP).await;
    let mut peers = Vec::new();
    for _ in 0..n {
        let p = socket(peer);
        dial(&hub, &p, &url).await;
        peers.push(p);
    }
    (hub, peers)
}

/// A socket of `protocol` listening on loopback TCP with a [`RawPeer`] speaking `peer`
/// connected to it; returns once the socket has the pipe.
pub(crate) async fn with_raw_peer(protocol: Protocol, peer: Protocol) -> (Socket, RawPeer) {
    let s = socket(protocol);
    let url = listen(&s, TCP).await;
    let peer = RawPeer::connect(&url, peer).await;
    until("the socket has the raw peer's pipe", || s.pipe_count() == 1).await;
    (s, peer)
}

/// Runs `op` on a clone of `s` in a task of its own: for operations that wait.
pub(crate) fn spawn_on<F, Fut>(s: &Socket, op: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce(Socket) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    tokio::spawn(op(s.clone()))
}

/// Sends a request on `req` and waits for its reply, in a task of its own.
pub(crate) fn ask(req: &Socket, body: &'static str) -> JoinHandle<ferry_sp::Result<Message>> {
    spawn_on(req, move |req| async move {
        req.send(body).await?;
        req.recv().await
    })
}

/// The reply an [`ask`] got, as text.
pub(crate) async fn answer(asking: JoinHandle<ferry_sp::Result<Message>>) -> String {
    match within("the reply", asking).await.expect("the asking task") {
        Ok(m) => text(&m),
        Err(e) => panic!("no reply: {e}"),
    }
}

/// `first` sends, `second` receives and answers, `first` receives the answer: a REQ and
/// its REP, or two PAIRs.
pub(crate) async fn round_trip(first: &Socket, second: &Socket) {
    send(first, "are you there?").await;
    assert_eq!(recv_text(second).await, "are you there?");
    send(second, "yes").await;
    assert_eq!(recv_text(first).await, "yes");
}

/// A send made before `sender` has a peer waits for one and is delivered to it.
pub(crate) async fn verify_send_waits_for_a_peer(sender: Protocol, receiver: Protocol) {
    let s = socket(sender);
    let url = listen(&s, TCP).await;
    let early = spawn_on(&s, |s| async move { s.send("sent before you came").await });
    let r = socket(receiver);
    r.dial(&url).await.unwrap();
    assert_eq!(recv_text(&r).await, "sent before you came");
    within("the early send", early).await.unwrap().unwrap();
}

/// Without a peer, a send of `sender` fails at its send-timeout.
pub(crate) async fn verify_send_times_out_without_a_peer(sender: Protocol) {
    let s = socket(sender);
    s.set(SockOpt::SendTimeout(Some(Duration::from_millis(100)))).unwrap();
    assert_err!(s.send("nobody there").await, ferry_sp::Error::Timeout);
}

/// The body of a message as text.
pub(crate) fn text(m: &Message) -> String {
    String::from_utf8(m.body.to_vec()).expect("utf-8 body")
}

/// Receives one message and returns its body as text; fails the test on an error.
pub(crate) async fn recv_text(s: &Socket) -> String {
    match s.recv().await {
        Ok(m) => text(&m),
        Err(e) => panic!("recv on {s:?}: {e}"),
    }
}

/// Sends `body`; fails the test on an error.
pub(crate) async fn send(s: &Socket, body: impl Into<Message>) {
    s.send(body).await.unwrap_or_else(|e| panic!("send on {s:?}: {e}"));
}

/// The 8-byte SP connection header announcing `proto`.
pub(crate) fn header(proto: u16) -> [u8; 8] {
    let [hi, lo] = proto.to_be_bytes();
    [0x00, b'S', b'P', 0x00, hi, lo, 0x00, 0x00]
}

/// Big-endian header words followed by a body: a backtrace, a request id, a hop count.
pub(crate) fn words(ws: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = ws.iter().flat_map(|w| w.to_be_bytes()).collect();
    v.extend_from_slice(body);
    v
}

/// An SP peer driven byte by byte over tcp or ipc.
pub(crate) struct RawPeer {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// ipc frames carry a type byte before the length.
    ipc: bool,
}

impl RawPeer {
    /// Opens a connection to `url` (`tcp://` or `ipc://`) and does nothing else.
    pub(crate) async fn open(url: &str) -> RawPeer {
        if let Some(path) = url.strip_prefix("ipc://") {
            let s = UnixStream::connect(path).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
            let (r, w) = s.into_split();
            return RawPeer { reader: Box::new(r), writer: Box::new(w), ipc: true };
        }
        let s = TcpStream::connect(tcp_addr(url)).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        RawPeer::from_tcp(s)
    }

    /// Opens a tcp connection with a small receive buffer, so that the sender's side fills
    /// up after a few hundred KiB when this peer stops reading.
    pub(crate) async fn open_small_window(url: &str) -> RawPeer {
        let addr = tcp_addr(url);
        let s = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.expect("tcp socket");
        s.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
        RawPeer::from_tcp(s.connect(addr).await.unwrap_or_else(|e| panic!("connect {url}: {e}")))
    }

    fn from_tcp(s: TcpStream) -> RawPeer {
        let (r, w) = s.into_split();
        RawPeer { reader: Box::new(r), writer: Box::new(w), ipc: false }
    }

    /// Connects and handshakes as `proto`, checking that the listener announces its peer.
    pub(crate) async fn connect(url: &str, proto: Protocol) -> RawPeer {
        let mut p = RawPeer::open(url).await;
        p.handshake(proto).await;
        p
    }

    /// Sends our header for `proto` and checks the one that comes back.
    pub(crate) async fn handshake(&mut self, proto: Protocol) {
        self.write(&header(proto.id())).await.expect("write SP header");
        let theirs = self.read_exact(8).await;
        assert_eq!(theirs, header(proto.peer_id()), "the listener's SP header");
    }

    /// Writes raw bytes.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Frames `payload` as this transport does: `[0x01]` (ipc) ++ u64 BE length ++ payload.
    pub(crate) fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(payload.len() + 9);
        if self.ipc {
            f.push(0x01);
        }
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Sends one framed message.
    pub(crate) async fn send(&mut self, payload: &[u8]) {
        let f = self.frame(payload);
        self.write(&f).await.expect("write frame");
    }

    /// Reads exactly `n` bytes, failing the test after [`WAIT`].
    pub(crate) async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        within("read from the socket under test", self.reader.read_exact(&mut buf))
            .await
            .unwrap_or_else(|e| panic!("read {n} bytes: {e}"));
        buf
    }

    /// Reads one frame and returns it as it was on the wire, prefix included.
    pub(crate) async fn recv_wire(&mut self) -> Vec<u8> {
        let mut wire = self.read_exact(if self.ipc { 9 } else { 8 }).await;
        if self.ipc {
            assert_eq!(wire[0], 0x01, "ipc message type");
        }
        let len: [u8; 8] = wire[wire.len() - 8..].try_into().expect("8 bytes");
        let payload = self.read_exact(u64::from_be_bytes(len) as usize).await;
        wire.extend_from_slice(&payload);
        wire
    }

    /// Reads one frame and returns its payload (SP header ++ body).
    pub(crate) async fn recv(&mut self) -> Vec<u8> {
        let mut wire = self.recv_wire().await;
        wire.drain(..if self.ipc { 9 } else { 8 });
        wire
    }

    /// Asserts that the other side closes the connection without sending anything more.
    pub(crate) async fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        match within("the socket under test closes the connection", self.reader.read(&mut buf)).await {
            Ok(0) => {}
            // Closing with our unread bytes in its buffer makes the kernel send a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Ok(n) => panic!("expected the connection to close, got {n} more bytes: {:02x?}", &buf[..n]),
            Err(e) => panic!("expected the connection to close, got {e}"),
        }
    }
}

fn tcp_addr(url: &str) -> SocketAddr {
    let addr = url.strip_prefix("tcp://").unwrap_or_else(|| panic!("not a tcp or ipc url: {url}"));
    addr.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
}
