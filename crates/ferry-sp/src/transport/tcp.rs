//! `tcp://host:port`: the SP TCP mapping. TCP_NODELAY is on, as NNG's perf tools and
//! every latency-sensitive user want. [`connect_stream`] and [`bind_listener`] are shared
//! with tls and ws, which run over the same TCP with the same resolution and errors.

use super::{Acceptor, Conn, Framing};
use crate::error::{Error, Result};
use crate::url::{Family, Url};
use futures::future::BoxFuture;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::{TcpListener, TcpStream};

/// The parts of a `tcp://` URL, and the URL itself for messages.
#[derive(Clone, Copy)]
pub(crate) struct TcpAddr<'a> {
    pub(crate) host: Option<&'a str>,
    pub(crate) port: u16,
    pub(crate) family: Family,
    pub(crate) url: &'a Url,
}

async fn resolve(addr: TcpAddr<'_>) -> Result<Vec<SocketAddr>> {
    let TcpAddr { host, port, family, url } = addr;
    let addrs: Vec<SocketAddr> = match host {
        None => vec![match family {
            Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        }],
        Some(h) => tokio::net::lookup_host((h, port))
            .await
            .map_err(|_| Error::BadUrl { url: url.to_string(), reason: "host name does not resolve" })?
            .collect(),
    };
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match family {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        })
        .collect();
    if addrs.is_empty() {
        return Err(Error::BadUrl { url: url.to_string(), reason: "no address of the requested family" });
    }
    Ok(addrs)
}

fn conn(stream: TcpStream, remote: SocketAddr) -> io::Result<Conn> {
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok(Conn::stream(Box::new(r), Box::new(w), Framing::Length, remote.to_string()))
}

/// Connects to the first address of `addr` that answers, with TCP_NODELAY on.
pub(crate) async fn connect_stream(addr: TcpAddr<'_>) -> Result<(TcpStream, SocketAddr)> {
    let TcpAddr { host, port, url, .. } = addr;
    if host.is_none() || port == 0 {
        return Err(Error::BadUrl { url: url.to_string(), reason: "a dialer needs a host and a non-zero port" });
    }
    let mut last = None;
    for sa in resolve(addr).await? {
        match TcpStream::connect(sa).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok((s, sa));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::ConnectionRefused(url.to_string()), |e| Error::from_connect_io(e, &url.to_string())))
}

pub(crate) async fn connect(addr: TcpAddr<'_>) -> Result<Conn> {
    let (s, remote) = connect_stream(addr).await?;
    Ok(conn(s, remote)?)
}

/// Binds the first address of `addr` that can be bound; returns the port it got.
pub(crate) async fn bind_listener(addr: TcpAddr<'_>) -> Result<(TcpListener, u16)> {
    let url = addr.url;
    let mut last = None;
    for sa in resolve(addr).await? {
        match TcpListener::bind(sa).await {
            Ok(listener) => {
                let port = listener.local_addr()?.port();
                return Ok((listener, port));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::AddrInUse(url.to_string()), |e| Error::from_bind_io(e, &url.to_string())))
}

pub(crate) struct TcpAcceptor {
    listener: TcpListener,
    url: Url,
}

pub(crate) async fn bind(addr: TcpAddr<'_>) -> Result<TcpAcceptor> {
    let (listener, port) = bind_listener(addr).await?;
    let url = Url::Tcp { host: addr.host.map(str::to_string), port, family: addr.family };
    Ok(TcpAcceptor { listener, url })
}

impl Acceptor for TcpAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>> {
        Box::pin(async move {
            let (s, remote) = self.listener.accept().await?;
            conn(s, remote)
        })
    }

    fn bound_url(&self) -> Url {
        self.url.clone()
    }
}

/// Accepts the next connection for a listener whose handshakes run on their own tasks (tls,
/// ws): NODELAY set, a pause after an accept error (e.g. out of file descriptors) instead of
/// a spin, and `None` once `stop` is cancelled.
#[cfg(any(feature = "transport-ws", feature = "transport-tls"))]
pub(crate) async fn accept_next(
    listener: &TcpListener,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            r = listener.accept() => match r {
                Ok((tcp, remote)) => {
                    let _ = tcp.set_nodelay(true);
                    return Some((tcp, remote));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}
