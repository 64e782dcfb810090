//! ferry's REST API (`http://`, `https://`): a queue, or a topic with a subscription per
//! consumer, created with the run's durability; producers publish each batch as one JSON
//! array (`POST …/messages`, answered once the batch is as durable as the destination's
//! mode says); consumers long-poll `POST …/receive` and ack the leases they got with
//! `POST …/ack`. Every producer and consumer has an HTTP/1.1 connection of its own.
//!
//! Credentials come from the URL (`http://user:password@host:port`, exchanged for a token
//! at `POST /v1/auth/token`) or from `FERRY_TOKEN`.

use super::{Endpoint, Pattern, Target, Workload};
use crate::bench::Task;
use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use ferry_broker::Durability;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Where the server is and how to get in.
struct Server {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    authority: String,
    /// TLS for `https://`, with the name the certificate must have.
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    token: String,
    display: String,
}

/// One HTTP/1.1 connection.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    _driver: Task<()>,
    server: Arc<Server>,
}

impl Conn {
    async fn open(server: &Arc<Server>) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(&server.addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", server.display))?;
        tcp.set_nodelay(true)?;
        let (send, driver) = match &server.tls {
            None => {
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
                (
                    send,
                    Task::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| anyhow::anyhow!("TLS with {}: {e}", server.display))?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
                (
                    send,
                    Task::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
        };
        Ok(Conn { send, _driver: driver, server: server.clone() })
    }

    /// One request; the status and the whole response body.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        auth: bool,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, &self.server.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if auth {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.server.token));
        }
        let req = req.body(Full::new(body))?;
        self.send
            .ready()
            .await
            .with_context(|| format!("{method} {path}: the connection to {} closed", self.server.display))?;
        let resp =
            self.send.send_request(req).await.with_context(|| format!("{method} {path} on {}", self.server.display))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((status, body.to_bytes()))
    }

    /// A request that must succeed (2xx); its body.
    async fn ok(&mut self, method: Method, path: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let (status, text) = self.call(method.clone(), path, body, true).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
            anyhow::bail!("{method} {path}: HTTP {status}: {text}");
        }
        Ok(text)
    }
}

/// ferry over REST.
pub(crate) struct FerryHttp {
    server: Arc<Server>,
    admin: Mutex<Conn>,
}

/// Decodes `%xx` escapes (of a URL's user name or password).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tls_connector(endpoint: &Endpoint) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let path = match &endpoint.ca_file {
        Some(p) => p.clone(),
        None => std::env::var_os("SSL_CERT_FILE")
            .map_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into(), std::path::PathBuf::from),
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("reading certificates from {}", path.display()))?;
        roots.add(cert).with_context(|| format!("a certificate in {}", path.display()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

/// A receive answer, borrowing from the response body where it can.
#[derive(Deserialize)]
struct Received<'a> {
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    lease: Option<u64>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body_base64: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Settled {
    results: Vec<SettleResult>,
}

#[derive(Deserialize)]
struct SettleResult {
    ok: bool,
}

/// What ferry does for a workload's durability, in words (REST and gRPC alike).
pub(super) fn describe_durability(w: &Workload) -> String {
    let what = match w.pattern {
        Pattern::Queue => "ferry queue",
        Pattern::Fanout => "ferry topic",
    };
    let what = if w.auto_ack && w.consumers > 0 { format!("{what} (auto_ack receive)") } else { what.to_string() };
    match w.durability {
        Durability::Fsync => format!("{what}, durability fsync: publish answered after fdatasync (group commit)"),
        Durability::Interval(ms) => {
            format!("{what}, durability interval:{ms}: answered once written to the OS, fdatasync within {ms} ms")
        }
        Durability::None => format!("{what}, durability none: answered once written to the OS, no fsync"),
    }
}

fn kind(w: &Workload) -> &'static str {
    match w.pattern {
        Pattern::Queue => "queues",
        Pattern::Fanout => "topics",
    }
}

impl Target for FerryHttp {
    type Producer = HttpProducer;
    type Consumer = HttpConsumer;
    const SYSTEM: &'static str = "ferry-http";

    async fn connect(endpoint: &Endpoint) -> anyhow::Result<FerryHttp> {
        let url = &endpoint.url;
        let https = url.scheme() == "https";
        let addr = endpoint.host_port(if https { 443 } else { 80 })?;
        let host = url.host_str().unwrap_or_default().to_string();
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let tls = if https {
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                    .with_context(|| format!("`{host}` is not a TLS server name"))?;
            Some((tls_connector(endpoint)?, name))
        } else {
            None
        };
        let mut server = Server { addr, authority, tls, token: String::new(), display: endpoint.display() };
        let user = percent_decode(url.username());
        let login = if user.is_empty() { None } else { Some((user, percent_decode(url.password().unwrap_or("")))) };
        let token = std::env::var("FERRY_TOKEN").ok().filter(|t| !t.is_empty());
        if login.is_none() && token.is_none() {
            anyhow::bail!(
                "{}: give credentials in the URL (http://user:password@host:port) or a token in FERRY_TOKEN",
                endpoint.display()
            );
        }
        server.token = token.unwrap_or_default();
        let server = Arc::new(server);
        let mut conn = Conn::open(&server).await?;
        let Some((user, password)) = login else {
            return Ok(FerryHttp { server, admin: Mutex::new(conn) });
        };
        let body = json!({ "username": user, "password": password }).to_string();
        let (status, text) = conn.call(Method::POST, "/v1/auth/token", Bytes::from(body), false).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned();
            anyhow::bail!("logging in to {} as {user:?}: HTTP {status}: {text}", endpoint.display());
        }
        let token: Token =
            serde_json::from_slice(&text).with_context(|| format!("the token answer of {}", endpoint.display()))?;
        let server = Arc::new(Server {
            addr: server.addr.clone(),
            authority: server.authority.clone(),
            tls: server.tls.clone(),
            token: token.access_token,
            display: server.display.clone(),
        });
        let admin = Conn::open(&server).await?;
        Ok(FerryHttp { server, admin: Mutex::new(admin) })
    }

    fn durability(&self, w: &Workload) -> String {
        describe_durability(w)
    }

    async fn prepare(&self, w: &Workload) -> anyhow::Result<()> {
        let mut admin = self.admin.lock().await;
        let durability = serde_json::to_value(w.durability)?;
        let body = json!({ "name": w.name, "settings": { "durability": durability } }).to_string();
        admin.ok(Method::POST, &format!("/v1/{}", kind(w)), Bytes::from(body)).await?;
        if w.pattern == Pattern::Fanout {
            for n in 0..w.consumers {
                let body = json!({ "name": format!("s{n}") }).to_string();
                admin.ok(Method::POST, &format!("/v1/topics/{}/subscriptions", w.name), Bytes::from(body)).await?;
            }
        }
        Ok(())
    }

    async fn producer(&self, w: &Workload, _n: u32) -> anyhow::Result<HttpProducer> {
        Ok(HttpProducer { conn: Conn::open(&self.server).await?, path: format!("/v1/{}/{}/messages", kind(w), w.name) })
    }

    async fn consumer(&self, w: &Workload, n: u32) -> anyhow::Result<HttpConsumer> {
        let base = match w.pattern {
            Pattern::Queue => format!("/v1/queues/{}", w.name),
            Pattern::Fanout => format!("/v1/topics/{}/subscriptions/s{n}", w.name),
        };
        Ok(HttpConsumer {
            conn: Conn::open(&self.server).await?,
            receive: format!("{base}/receive"),
            ack: format!("{base}/ack"),
            max: w.prefetch,
            auto_ack: w.auto_ack,
            leases: Vec::new(),
        })
    }

    async fn cleanup(&self, w: &Workload) -> anyhow::Result<()> {
        let mut admin = self.admin.lock().await;
        admin.ok(Method::DELETE, &format!("/v1/{}/{}", kind(w), w.name), Bytes::new()).await?;
        Ok(())
    }
}

pub(crate) struct HttpProducer {
    conn: Conn,
    path: String,
}

/// Whether a body can go into a JSON string as it is (printable ASCII, no quote or
/// backslash): the benchmark's own bodies can.
fn plain_text(b: &[u8]) -> bool {
    b.iter().all(|c| (0x20..0x7f).contains(c) && *c != b'"' && *c != b'\\')
}

impl super::Producer for HttpProducer {
    async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
        let mut body = Vec::with_capacity(batch.iter().map(|b| b.len() + 16).sum::<usize>() + 2);
        body.push(b'[');
        for (i, b) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            if plain_text(b) {
                body.extend_from_slice(b"{\"body\":\"");
                body.extend_from_slice(b);
            } else {
                body.extend_from_slice(b"{\"body_base64\":\"");
                body.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(b).as_bytes());
            }
            body.extend_from_slice(b"\"}");
        }
        body.push(b']');
        self.conn.ok(Method::POST, &self.path, Bytes::from(body)).await?;
        Ok(())
    }
}

pub(crate) struct HttpConsumer {
    conn: Conn,
    receive: String,
    ack: String,
    max: u32,
    auto_ack: bool,
    leases: Vec<u64>,
}

impl super::Consumer for HttpConsumer {
    async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
        let body =
            json!({ "max": self.max, "wait_ms": wait.as_millis() as u64, "auto_ack": self.auto_ack }).to_string();
        let text = self.conn.ok(Method::POST, &self.receive, Bytes::from(body)).await?;
        let got: Received<'_> =
            serde_json::from_slice(&text).with_context(|| format!("the answer of {}", self.receive))?;
        for m in got.messages {
            self.leases.extend(m.lease);
            out.push(match (m.body, m.body_base64) {
                // A body without escapes is a slice of the answer: no copy.
                (Some(Cow::Borrowed(body)), _) => text.slice_ref(body.as_bytes()),
                (Some(Cow::Owned(body)), _) => Bytes::from(body),
                (None, Some(b64)) => Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .context("a message's body_base64")?,
                ),
                (None, None) => Bytes::new(),
            });
        }
        Ok(())
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        let leases = std::mem::take(&mut self.leases);
        for chunk in leases.chunks(1000) {
            let body = json!({ "leases": chunk }).to_string();
            let text = self.conn.ok(Method::POST, &self.ack, Bytes::from(body)).await?;
            let settled: Settled =
                serde_json::from_slice(&text).with_context(|| format!("the answer of {}", self.ack))?;
            let failed = settled.results.iter().filter(|r| !r.ok).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} acks failed (leases expired?)", chunk.len());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_and_passwords_are_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("odd%4"), "odd%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn only_plain_ascii_goes_as_text() {
        assert!(plain_text(b"0123456789abcdeftxxxx"));
        assert!(!plain_text(b"a\"b"));
        assert!(!plain_text(b"a\\b"));
        assert!(!plain_text(&[0xff]));
    }
}
