//! `tls+tcp://host:port`: TCP, then a TLS handshake, then exactly the SP TCP mapping inside
//! the TLS stream (sp-wire.md §4). The handshake and framing are [`super::stream`]'s: this
//! file only wraps the TCP stream in rustls (ring provider). It also builds the rustls
//! configurations from [`TlsOptions`], which `wss://` uses as well.
//!
//! A listener runs each TLS handshake on a task of its own, bounded by the SP handshake
//! timeout, and hands finished connections to [`Acceptor::accept`]; a client that never
//! finishes its handshake, or fails it, costs only its own task.

use super::stream::HANDSHAKE_TIMEOUT;
use super::tcp::{self, TcpAddr};
use super::{Acceptor, Conn, Framing, Io};
use crate::error::{Error, Result};
use crate::options::{Pem, TlsAuthMode, TlsOptions};
use crate::url::Url;
use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Handshaken connections waiting for [`Acceptor::accept`].
const ACCEPTED_QUEUE: usize = 16;

/// Always ring, named explicitly: the process-wide default provider would make rustls panic
/// if another crate in the program enabled a second one.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption { name, reason: reason.into() }
}

fn certs(pem: &Pem, option: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let text = pem.read()?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(option, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(option, "no PEM certificate found"));
    }
    Ok(certs)
}

fn key(pem: &Pem) -> Result<PrivateKeyDer<'static>> {
    let text = pem.read()?;
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| invalid("tls-cert-key-file", format!("no usable private key: {e}")))
}

fn roots(pem: &Pem) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem, "tls-ca-file")? {
        roots.add(cert).map_err(|e| invalid("tls-ca-file", format!("unusable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// Our certificate chain and key, if both are set.
fn own_cert(tls: &TlsOptions) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => Ok(Some((certs(c, "tls-cert-key-file")?, key(k)?))),
        _ => Ok(None),
    }
}

/// The dialer's configuration: the listener's certificate is checked against `tls.ca`
/// unless the auth mode says not to; our own certificate is shown if one is set.
pub(crate) fn client_config(tls: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls-config", e.to_string()))?;
    let builder = match tls.auth_mode.unwrap_or(TlsAuthMode::Required) {
        TlsAuthMode::Required => {
            let ca = tls.ca.as_ref().ok_or_else(|| {
                invalid("tls-ca-file", "a dialer verifying the listener needs a CA (or tls-authmode none)")
            })?;
            builder.with_root_certificates(roots(ca)?)
        }
        TlsAuthMode::None | TlsAuthMode::Optional => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        }
    };
    let config = match own_cert(tls)? {
        Some((chain, key)) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| invalid("tls-cert-key-file", e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The listener's configuration: our certificate and key are required; client
/// certificates are asked for only in the optional and required auth modes.
pub(crate) fn server_config(tls: &TlsOptions) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let (chain, key) =
        own_cert(tls)?.ok_or_else(|| invalid("tls-cert-key-file", "a TLS listener needs a certificate and key"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls-config", e.to_string()))?;
    let builder = match tls.auth_mode.unwrap_or(TlsAuthMode::None) {
        TlsAuthMode::None => builder.with_no_client_auth(),
        mode => {
            let ca = tls.ca.as_ref().ok_or_else(|| {
                invalid("tls-ca-file", "a listener verifying clients needs a CA to verify them against")
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider);
            let verifier = if mode == TlsAuthMode::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| invalid("tls-ca-file", e.to_string()))?)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| invalid("tls-cert-key-file", e.to_string()))?;
    Ok(Arc::new(config))
}

/// Runs the client side of the TLS handshake over `stream`, expecting the listener's
/// certificate to name `tls.server_name`, or else `host`.
pub(crate) async fn client_handshake<S: Io>(
    stream: S,
    host: &str,
    tls: &TlsOptions,
) -> Result<tokio_rustls::client::TlsStream<S>> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_string())
        .map_err(|_| invalid("tls-server-name", format!("{name:?} is not a DNS name or IP address")))?;
    let connector = TlsConnector::from(client_config(tls)?);
    let shake = connector.connect(name, stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, shake).await.map_err(|_| Error::Timeout)?.map_err(Error::Io)
}

pub(crate) async fn connect(addr: TcpAddr<'_>, tls: &TlsOptions) -> Result<Conn> {
    // A bad configuration fails before anything goes on the network.
    client_config(tls)?;
    let (tcp, remote) = tcp::connect_stream(addr).await?;
    let stream = client_handshake(tcp, addr.host.unwrap_or_default(), tls).await?;
    let (r, w) = tokio::io::split(stream);
    Ok(Conn::stream(Box::new(r), Box::new(w), Framing::Length, format!("tls+tcp://{remote}")))
}

pub(crate) struct TlsTcpAcceptor {
    accepted: mpsc::Receiver<Conn>,
    url: Url,
    /// Stops the accept loop and every handshake in flight when the acceptor goes.
    _stop: DropGuard,
}

pub(crate) async fn bind(addr: TcpAddr<'_>, tls: &TlsOptions) -> Result<TlsTcpAcceptor> {
    let acceptor = TlsAcceptor::from(server_config(tls)?);
    let (listener, port) = tcp::bind_listener(addr).await?;
    let url = Url::TlsTcp { host: addr.host.map(str::to_string), port, family: addr.family };
    let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
    let stop = CancellationToken::new();
    tokio::spawn(accept_loop(listener, acceptor, tx, stop.clone()));
    Ok(TlsTcpAcceptor { accepted, url, _stop: stop.drop_guard() })
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<Conn>, stop: CancellationToken) {
    while let Some((tcp, remote)) = tcp::accept_next(&listener, &stop).await {
        let (acceptor, tx, stop) = (acceptor.clone(), tx.clone(), stop.clone());
        tokio::spawn(async move {
            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                r = shake => match r {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
                },
            };
            let (r, w) = tokio::io::split(stream);
            let conn = Conn::stream(Box::new(r), Box::new(w), Framing::Length, format!("tls+tcp://{remote}"));
            // Fails only when the acceptor is gone, and the connection with it.
            let _ = tx.send(conn).await;
        });
    }
}

impl Acceptor for TlsTcpAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Conn>> {
        Box::pin(async move { self.accepted.recv().await.ok_or_else(|| io::ErrorKind::NotConnected.into()) })
    }

    fn bound_url(&self) -> Url {
        self.url.clone()
    }
}

/// Accepts any listener certificate, for `tls-authmode` none and optional on a dialer. The
/// handshake signatures are still checked, so the peer must hold the key it shows.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_bad_settings_are_named_errors() {
        let none = TlsOptions::default();
        assert!(matches!(server_config(&none), Err(Error::InvalidOption { name: "tls-cert-key-file", .. })));
        assert!(matches!(client_config(&none), Err(Error::InvalidOption { name: "tls-ca-file", .. })));

        let insecure = TlsOptions { auth_mode: Some(TlsAuthMode::None), ..TlsOptions::default() };
        assert!(client_config(&insecure).is_ok());

        let mut junk = TlsOptions { ca: Some(Pem::from("not PEM at all")), ..TlsOptions::default() };
        assert!(matches!(client_config(&junk), Err(Error::InvalidOption { name: "tls-ca-file", .. })));
        junk.cert = Some(Pem::from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
        junk.key = Some(Pem::from("no key here"));
        assert!(matches!(server_config(&junk), Err(Error::InvalidOption { .. })));
        junk.ca = Some(Pem::File("/nonexistent/ca.pem".into()));
        assert!(matches!(client_config(&junk), Err(Error::Io(_))));
    }
}
