//! The HTTP listeners behind `ws://` and `wss://` listeners. Several sockets may listen on
//! one host and port with different paths, as with NNG: the first to bind starts a
//! [`Server`] for that host and port, later ones add a route to it, and each socket's
//! [`WsAcceptor`] receives the upgrades for its path. The server stops, and frees the port,
//! when the last acceptor using it is dropped.
//!
//! A `wss://` server is configured by the first listener; later listeners on its host and
//! port share its certificate.
//!
//! Every connection is upgraded on a task of its own, bounded by the SP handshake timeout,
//! so a slow or broken client costs only its own task, and any refusal (404, 400) closes
//! only that connection.

use super::upgrade::{self, Refusal};
use super::{subprotocol, State, WsAddr, WsConn};
use crate::error::{Error, Result};
use crate::options::TlsOptions;
use crate::protocol::Protocol;
use crate::transport::stream::HANDSHAKE_TIMEOUT;
use crate::transport::{tcp, Acceptor, Conn, Io, Link, Local};
use crate::url::Url;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Upgraded connections waiting for [`Acceptor::accept`], per route.
const ACCEPTED_QUEUE: usize = 16;

/// What identifies a shared server: wss or ws, the host as the URL spells it (`None` for
/// the wildcard), and the bound port.
type Key = (bool, Option<String>, u16);

/// One socket's path on a server.
struct Route {
    protocol: Protocol,
    accepted: mpsc::Sender<Conn>,
    /// The listener's; once cancelled the path answers 404 and may be bound again, though
    /// the acceptor may live on for a moment.
    stop: CancellationToken,
    /// Tells this route from a later one on the same path, so that a late drop of the
    /// acceptor leaves its successor in place.
    generation: u64,
}

impl Route {
    fn is_open(&self) -> bool {
        !self.stop.is_cancelled()
    }
}

type Routes = Mutex<HashMap<String, Route>>;

fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running HTTP listener. Only acceptors hold it; dropping the last one stops the accept
/// loop, which owns the TCP listener.
struct Server {
    routes: Arc<Routes>,
    _stop: DropGuard,
}

/// The servers by host and port. Entries are weak, so a server lives exactly as long as its
/// acceptors; dead entries are swept at the next bind. An async lock, because binding a new
/// server awaits while two sockets binding the same port must not both try.
fn servers() -> &'static tokio::sync::Mutex<HashMap<Key, Weak<Server>>> {
    static SERVERS: OnceLock<tokio::sync::Mutex<HashMap<Key, Weak<Server>>>> = OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

/// One socket's listener on a (possibly shared) server.
pub(crate) struct WsAcceptor {
    server: Arc<Server>,
    route: String,
    generation: u64,
    accepted: mpsc::Receiver<Conn>,
    url: Url,
}

#[cfg(feature = "transport-tls")]
fn tls_acceptor(addr: WsAddr<'_>, tls: &TlsOptions) -> Result<Option<tokio_rustls::TlsAcceptor>> {
    Ok(if addr.secure { Some(tokio_rustls::TlsAcceptor::from(super::super::tls::server_config(tls)?)) } else { None })
}

/// Without TLS there is nothing to accept wss with.
#[cfg(not(feature = "transport-tls"))]
#[derive(Clone)]
enum NoTls {}

#[cfg(not(feature = "transport-tls"))]
fn tls_acceptor(addr: WsAddr<'_>, _tls: &TlsOptions) -> Result<Option<NoTls>> {
    if addr.secure {
        return Err(Error::BadUrl {
            url: addr.url.to_string(),
            reason: "wss:// needs ferry-sp's transport-tls feature",
        });
    }
    Ok(None)
}

/// Listens on `url` for `local`: on the server already serving its host and port, if any,
/// else on a new one. A path another socket serves there is [`Error::AddrInUse`].
pub(crate) async fn bind(url: &Url, local: &Local, stop: &CancellationToken) -> Result<WsAcceptor> {
    static GENERATION: AtomicU64 = AtomicU64::new(0);
    let addr = WsAddr::of(url).ok_or(Error::BadUrl { url: url.to_string(), reason: "not a ws:// or wss:// URL" })?;
    let route = upgrade::route_key(addr.path);
    let mut servers = servers().lock().await;
    servers.retain(|_, s| s.strong_count() > 0);
    let key = (addr.secure, addr.host.map(str::to_string), addr.port);
    let existing = if addr.port == 0 { None } else { servers.get(&key).and_then(Weak::upgrade) };
    let (server, port) = match existing {
        Some(server) => (server, addr.port),
        None => {
            let tls = tls_acceptor(addr, &local.opts.tls)?;
            let (listener, port) = tcp::bind_listener(addr.tcp()).await?;
            let routes = Arc::new(Routes::default());
            let stop = CancellationToken::new();
            tokio::spawn(serve(listener, tls, routes.clone(), stop.clone()));
            let server = Arc::new(Server { routes, _stop: stop.drop_guard() });
            servers.insert((addr.secure, key.1.clone(), port), Arc::downgrade(&server));
            (server, port)
        }
    };
    let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    {
        let mut routes = lock(&server.routes);
        if routes.get(&route).is_some_and(Route::is_open) {
            return Err(Error::AddrInUse(url.to_string()));
        }
        let stop = stop.clone();
        routes.insert(route.clone(), Route { protocol: local.protocol, accepted: tx, stop, generation });
    }
    let url = Url::Ws { secure: addr.secure, host: key.1, port, family: addr.family, path: addr.path.to_string() };
    Ok(WsAcceptor { server, route, generation, accepted, url })
}

impl Acceptor for WsAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>> {
        Box::pin(async move { self.accepted.recv().await.ok_or_else(|| io::ErrorKind::NotConnected.into()) })
    }

    fn bound_url(&self) -> Url {
        self.url.clone()
    }
}

impl Drop for WsAcceptor {
    fn drop(&mut self) {
        let mut routes = lock(&self.server.routes);
        if routes.get(&self.route).is_some_and(|r| r.generation == self.generation) {
            routes.remove(&self.route);
        }
    }
}

/// The accept loop of one server.
async fn serve<T>(listener: TcpListener, tls: Option<T>, routes: Arc<Routes>, stop: CancellationToken)
where
    T: TlsAccept,
{
    while let Some((tcp, remote)) = tcp::accept_next(&listener, &stop).await {
        let (tls, routes, stop) = (tls.clone(), routes.clone(), stop.clone());
        tokio::spawn(async move {
            let work = tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade_one(tcp, remote, tls, &routes));
            let outcome = tokio::select! {
                _ = stop.cancelled() => return,
                r = work => r,
            };
            match outcome {
                Ok(Ok(Some((conn, to)))) => {
                    // Fails only when the acceptor is gone, and the connection with it.
                    let _ = to.send(conn).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "websocket upgrade failed"),
                Err(_) => tracing::debug!(%remote, "websocket upgrade timed out"),
            }
        });
    }
}

/// The TLS step of a wss server (nothing for ws).
trait TlsAccept: Clone + Send + Sync + 'static {
    fn handshake(&self, tcp: TcpStream) -> BoxFuture<'_, io::Result<Box<dyn Io>>>;
}

#[cfg(feature = "transport-tls")]
impl TlsAccept for tokio_rustls::TlsAcceptor {
    fn handshake(&self, tcp: TcpStream) -> BoxFuture<'_, io::Result<Box<dyn Io>>> {
        Box::pin(async move { Ok(Box::new(self.accept(tcp).await?) as Box<dyn Io>) })
    }
}

#[cfg(not(feature = "transport-tls"))]
impl TlsAccept for NoTls {
    fn handshake(&self, _tcp: TcpStream) -> BoxFuture<'_, io::Result<Box<dyn Io>>> {
        match *self {}
    }
}

/// TLS if wss, then the upgrade. Returns the connection and the route it goes to, or
/// `None` if the request was refused (the refusal has been answered).
async fn upgrade_one<T: TlsAccept>(
    tcp: TcpStream,
    remote: SocketAddr,
    tls: Option<T>,
    routes: &Routes,
) -> io::Result<Option<(Conn, mpsc::Sender<Conn>)>> {
    let (mut io, scheme): (Box<dyn Io>, _) = match &tls {
        Some(tls) => (tls.handshake(tcp).await?, "wss"),
        None => (Box::new(tcp), "ws"),
    };
    let Some((head, leftover)) = upgrade::read_head(&mut *io).await? else {
        return refuse(io, remote, Refusal::BadRequest("request head too large")).await;
    };
    let request = match upgrade::parse(&head) {
        Ok(request) => request,
        Err(refusal) => return refuse(io, remote, refusal).await,
    };
    let found = lock(routes).get(request.route()).filter(|r| r.is_open()).map(|r| (r.protocol, r.accepted.clone()));
    let Some((protocol, to)) = found else {
        return refuse(io, remote, Refusal::NotFound).await;
    };
    let answer = match request.accept(&subprotocol(protocol.name())) {
        Ok(answer) => answer,
        Err(refusal) => return refuse(io, remote, refusal).await,
    };
    io.write_all(&answer).await?;
    io.flush().await?;
    // The client named our protocol; the peer's is the one ours talks to (sp-wire.md §5).
    let conn = WsConn { state: State::Accepted { io, leftover }, peer: protocol.peer_id() };
    Ok(Some((Conn { link: Link::Ws(conn), remote: format!("{scheme}://{remote}{}", request.route()) }, to)))
}

async fn refuse(
    mut io: Box<dyn Io>,
    remote: SocketAddr,
    refusal: Refusal,
) -> io::Result<Option<(Conn, mpsc::Sender<Conn>)>> {
    tracing::debug!(%remote, ?refusal, "websocket upgrade refused");
    io.write_all(refusal.response()).await?;
    io.shutdown().await?;
    Ok(None)
}
