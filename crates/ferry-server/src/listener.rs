//! The HTTP and gRPC listeners: plain TCP, or TLS (rustls) when `[tls]` is configured,
//! with the same certificate for both. TLS handshakes run on their own tasks with a time
//! limit, so a client that connects and says nothing holds up no one else's accept.

use crate::config::TlsConfig;
use crate::ServerError;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections that finished their handshake and wait for the server to take them.
const READY_BACKLOG: usize = 128;

/// The application protocol a listener's clients speak, offered with TLS's ALPN.
#[derive(Clone, Copy)]
pub(crate) enum Alpn {
    /// The REST and MOM APIs: HTTP/1.1 (the HTTP server speaks no h2).
    Http1,
    /// gRPC: HTTP/2 only.
    H2,
}

/// Where a server takes its connections from.
pub(crate) enum HttpListener {
    Plain(TcpListener),
    Tls(TlsListener),
}

/// The address of the client a request came from, as the server saw it (no proxy headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, HttpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, HttpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl HttpListener {
    /// Binds `addr`, with TLS if `tls` is set.
    pub(crate) async fn bind(
        addr: SocketAddr,
        tls: Option<&TlsConfig>,
        alpn: Alpn,
    ) -> Result<HttpListener, ServerError> {
        // The certificate is checked before the port is taken, so a bad file fails fast.
        let acceptor = tls.map(|tls| acceptor(tls, alpn)).transpose()?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Io { what: format!("binding {addr}"), source })?;
        Ok(match acceptor {
            None => HttpListener::Plain(tcp),
            Some(acceptor) => HttpListener::Tls(TlsListener::start(tcp, acceptor)?),
        })
    }

    /// Whether clients must speak TLS (`https://`).
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, HttpListener::Tls(_))
    }
}

impl Listener for HttpListener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self {
            HttpListener::Plain(tcp) => {
                let (stream, addr) = Listener::accept(tcp).await;
                (Either::Left(stream), addr)
            }
            HttpListener::Tls(tls) => {
                let (stream, addr) = tls.accept().await;
                (Either::Right(stream), addr)
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            HttpListener::Plain(tcp) => tcp.local_addr(),
            HttpListener::Tls(tls) => Ok(tls.local_addr),
        }
    }
}

/// Accepts TCP connections on a task of its own and hands over those whose handshake
/// succeeded.
pub(crate) struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    fn start(tcp: TcpListener, acceptor: TlsAcceptor) -> Result<TlsListener, ServerError> {
        let local_addr =
            tcp.local_addr().map_err(|source| ServerError::Io { what: "reading the bound address".into(), source })?;
        let (tx, ready) = mpsc::channel(READY_BACKLOG);
        let accepting = tokio::spawn(async move {
            let mut tcp = tcp;
            loop {
                let (stream, addr) = Listener::accept(&mut tcp).await;
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(client = %addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local_addr, ready, accepting })
    }

    pub(crate) async fn accept(&mut self) -> (TlsStream<TcpStream>, SocketAddr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task holds a sender for as long as it runs, and it runs until this
            // listener is dropped: there is always one more connection to wait for.
            None => std::future::pending().await,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// The rustls server configuration from the PEM files: TLS 1.2 and 1.3, the ring provider,
/// and ALPN offering only `alpn`'s protocol.
fn acceptor(tls: &TlsConfig, alpn: Alpn) -> Result<TlsAcceptor, ServerError> {
    let bad = |what: &str, path: &std::path::Path, reason: String| {
        ServerError::Config(crate::ConfigError::Invalid {
            key: what.to_string(),
            reason: format!("{}: {reason}", path.display()),
        })
    };
    let read = |key: &str, path: &std::path::Path| std::fs::read(path).map_err(|e| bad(key, path, e.to_string()));
    let cert_pem = read("tls.cert_file", &tls.cert_file)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("tls.cert_file", &tls.cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad("tls.cert_file", &tls.cert_file, "no certificate in the file".into()));
    }
    let key_pem = read("tls.key_file", &tls.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad("tls.key_file", &tls.key_file, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls", &tls.cert_file, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("tls.key_file", &tls.key_file, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![match alpn {
        Alpn::Http1 => b"http/1.1".to_vec(),
        Alpn::H2 => b"h2".to_vec(),
    }];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
