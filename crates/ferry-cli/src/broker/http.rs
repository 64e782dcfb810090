//! The REST client under every broker command: one place that adds the bearer token, sets
//! timeouts, decodes JSON, and turns whatever went wrong into a [`Failure`] a person can act
//! on (the server's own `{"error":{"code","message"}}`, an unreachable server, a bad token).

use super::credentials;
use super::tls;
use super::{ConnArgs, Target};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::io::Read as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time allowed for a TCP (and TLS) connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request beyond any long-poll wait it asks the server for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response read: a receive of 1000 large messages is big, but not unbounded.
const MAX_RESPONSE: u64 = 256 << 20;

/// Why a broker command failed; each kind has its own exit status.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments or input (exit 2, as clap's own usage errors).
    Usage(String),
    /// The server could not be reached, or its certificate was not trusted (exit 3).
    Unreachable(String),
    /// The server answered with an error, or the client found one that the server would
    /// have answered (then without a status) (exit 4).
    Server { status: Option<u16>, code: String, message: String, hint: Option<String> },
    /// Some received messages could not be acked (exit 4).
    NotAcked(String),
    /// Anything else, such as an unreadable file (exit 1).
    Other(String),
    /// Standard output was closed (a pipe into `head`): stop quietly (exit 1).
    OutputClosed,
    /// `recv --follow` was stopped; exit with this status, quietly.
    Stopped(u8),
}

impl Failure {
    pub(crate) fn exit_status(&self) -> u8 {
        match self {
            Failure::Other(_) | Failure::OutputClosed => 1,
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
            Failure::Server { .. } | Failure::NotAcked(_) => 4,
            Failure::Stopped(code) => *code,
        }
    }

    /// Whether there is nothing to print.
    pub(crate) fn is_quiet(&self) -> bool {
        matches!(self, Failure::OutputClosed | Failure::Stopped(_))
    }

    /// An error the client found by itself, shaped like the server's (exit 4).
    pub(crate) fn refused(code: &str, message: impl Into<String>) -> Failure {
        Failure::Server { status: None, code: code.into(), message: message.into(), hint: None }
    }

    /// The HTTP status, for errors the server sent.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failure::Server { status, .. } => *status,
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Unreachable(m) | Failure::NotAcked(m) | Failure::Other(m) => f.write_str(m),
            Failure::Server { status, code, message, hint } => {
                match status {
                    Some(status) => write!(f, "{message} ({code}, HTTP {status})")?,
                    None => write!(f, "{message} ({code})")?,
                }
                if let Some(hint) = hint {
                    write!(f, "\nhint: {hint}")?;
                }
                Ok(())
            }
            Failure::OutputClosed => f.write_str("standard output closed"),
            Failure::Stopped(code) => write!(f, "stopped ({code})"),
        }
    }
}

/// Output that could not be written: a closed pipe ends the command quietly.
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::OutputClosed
        } else {
            Failure::Other(format!("cannot write output: {e}"))
        }
    }
}

/// Where the token of a request came from, for the advice when the server rejects it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenSource {
    Given,
    Stored,
}

/// A client of one server's `/v1` API.
pub(crate) struct Client {
    agent: ureq::Agent,
    server: String,
    token: Option<(String, TokenSource)>,
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The server URL without a trailing slash, checked to be http(s).
pub(crate) fn server_url(target: &Target) -> Result<String, Failure> {
    let url = match &target.server {
        Some(s) => s.trim().trim_end_matches('/').to_string(),
        None => format!("http://{}", ferry_server::Config::default().http),
    };
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ']) => Ok(url),
        _ => Err(Failure::Usage(format!(
            "--server {url:?}: give the server's base URL, http://HOST:PORT or https://HOST:PORT"
        ))),
    }
}

impl Client {
    /// A client for the server and token of `conn`: the token is `--token`, else
    /// `FERRY_TOKEN`, else the one `ferry login` stored for this server. Without any, the
    /// command fails here, before it reaches the network.
    pub(crate) fn new(conn: &ConnArgs) -> Result<Client, Failure> {
        let mut client = Client::anonymous(&conn.target)?;
        let token = match conn.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => (t.to_string(), TokenSource::Given),
            None => {
                let store = credentials::Store::load()?;
                let login = store.get(&client.server).ok_or_else(|| {
                    let mut f = Failure::refused("not_logged_in", format!("not logged in to {}", client.server));
                    client.hint_login(&mut f);
                    f
                })?;
                if login.expires_at <= now_secs() {
                    let mut f = Failure::refused(
                        "login_expired",
                        format!("the login of {} at {} has expired", login.user, client.server),
                    );
                    client.hint_login(&mut f);
                    return Err(f);
                }
                (login.token.clone(), TokenSource::Stored)
            }
        };
        client.token = Some(token);
        Ok(client)
    }

    /// A client without a token, for logging in.
    pub(crate) fn anonymous(target: &Target) -> Result<Client, Failure> {
        let server = server_url(target)?;
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        if server.starts_with("https://") && (target.insecure || target.ca_file.is_some()) {
            builder = builder.tls_config(tls::client_config(target.ca_file.as_deref(), target.insecure)?);
        }
        Ok(Client { agent: builder.build(), server, token: None })
    }

    /// The server's base URL.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call("GET", path, None, Duration::ZERO)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call("POST", path, Some(body), Duration::ZERO)
    }

    pub(crate) fn put(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call("PUT", path, Some(body), Duration::ZERO)
    }

    pub(crate) fn patch(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call("PATCH", path, Some(body), Duration::ZERO)
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.call("DELETE", path, None, Duration::ZERO)
    }

    /// `method` on `/v1{path}`; `wait` is how long the server may hold the request (a long
    /// poll), on top of the usual time allowed. An empty answer (204) is `Value::Null`.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        wait: Duration,
    ) -> Result<Value, Failure> {
        let url = format!("{}/v1{path}", self.server);
        let mut req = self.agent.request(method, &url).timeout(wait + REQUEST_TIMEOUT);
        if let Some((token, _)) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => read_json(resp),
            Err(ureq::Error::Status(status, resp)) => Err(self.status_failure(status, resp)),
            Err(ureq::Error::Transport(t)) => Err(self.transport_failure(&t)),
        }
    }

    fn status_failure(&self, status: u16, resp: ureq::Response) -> Failure {
        let retry_after = resp.header("Retry-After").map(str::to_string);
        let text = read_text(resp).unwrap_or_default();
        let parsed: Option<(String, String)> = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
            let e = v.get("error")?;
            Some((e.get("code")?.as_str()?.to_string(), e.get("message")?.as_str()?.to_string()))
        });
        let (code, message) = parsed.unwrap_or_else(|| {
            let text: String = text.trim().chars().take(300).collect();
            let text = if text.is_empty() { "no details".to_string() } else { text };
            ("http_error".to_string(), format!("the server answered: {text}"))
        });
        let mut f = Failure::Server { status: Some(status), code, message, hint: None };
        match status {
            401 => self.hint_login(&mut f),
            429 => {
                if let (Failure::Server { hint, .. }, Some(s)) = (&mut f, retry_after) {
                    *hint = Some(format!("the server asks to wait {s} s before trying again"));
                }
            }
            _ => {}
        }
        f
    }

    /// Advice for a missing, expired or rejected token.
    fn hint_login(&self, f: &mut Failure) {
        let login = format!("run `ferry login --server {}`", self.server);
        let advice = match self.token.as_ref().map(|(_, s)| *s) {
            Some(TokenSource::Given) => {
                format!("the token from --token or FERRY_TOKEN was refused; {login}, or give a valid token or API key")
            }
            Some(TokenSource::Stored) => format!("the stored login was refused (it may have expired); {login}"),
            None => format!("{login} (or give --token / FERRY_TOKEN)"),
        };
        if let Failure::Server { hint, .. } = f {
            *hint = Some(advice);
        }
    }

    fn transport_failure(&self, t: &ureq::Transport) -> Failure {
        let detail = innermost(t);
        let server = &self.server;
        match tls_error(t) {
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
                return Failure::Unreachable(format!(
                    "TLS with {server} failed: {detail}; \
                     trust the server's CA with --ca-file (or, for tests only, --insecure)"
                ))
            }
            Some(rustls::Error::InvalidMessage(_)) => {
                return Failure::Unreachable(format!(
                    "TLS with {server} failed: {detail}; does the server speak plain http:// instead?"
                ))
            }
            Some(_) => return Failure::Unreachable(format!("TLS with {server} failed: {detail}")),
            None => {}
        }
        match t.kind() {
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                Failure::Usage(format!("{server} is not a usable server URL: {detail}"))
            }
            ureq::ErrorKind::Dns => {
                Failure::Unreachable(format!("cannot resolve the server's host in {server}: {detail}"))
            }
            ureq::ErrorKind::ConnectionFailed => Failure::Unreachable(format!(
                "cannot reach the server at {server}: {detail}, is `ferry serve` running?"
            )),
            _ if server.starts_with("http://") => Failure::Unreachable(format!(
                "talking to {server} failed: {detail}; does the server speak https:// instead?"
            )),
            _ => Failure::Unreachable(format!("talking to {server} failed: {detail}")),
        }
    }
}

/// The most specific message in an error's chain.
fn innermost(t: &ureq::Transport) -> String {
    let mut e: &dyn std::error::Error = t;
    let mut text = t.message().map_or_else(|| t.to_string(), str::to_string);
    while let Some(next) = e.source() {
        text = next.to_string();
        e = next;
    }
    lowercase_first(&text)
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        // "Connection refused (os error 111)" reads better mid-sentence in lower case.
        Some(first) if c.clone().next().is_some_and(char::is_lowercase) => first.to_lowercase().chain(c).collect(),
        _ => s.to_string(),
    }
}

/// The TLS error behind a transport error, if that is what it was.
fn tls_error(t: &ureq::Transport) -> Option<&rustls::Error> {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(t);
    while let Some(err) = e {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // rustls reports through std::io, with its own error inside.
        if let Some(tls) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()?.downcast_ref()) {
            return Some(tls);
        }
        e = err.source();
    }
    None
}

fn read_text(resp: ureq::Response) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Unreachable(format!("reading the server's answer failed: {e}")))?;
    if bytes.len() as u64 > MAX_RESPONSE {
        return Err(Failure::Other(format!(
            "the server's answer is larger than {} MiB; ask for fewer messages (--max)",
            MAX_RESPONSE >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| Failure::Other("the server's answer is not UTF-8 text".into()))
}

fn read_json(resp: ureq::Response) -> Result<Value, Failure> {
    let text = read_text(resp)?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text)
        .map_err(|e| Failure::Other(format!("the server's answer is not the JSON expected: {e}")))
}

/// `value` as `T`, or a failure that says the server answered something unexpected.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Failure> {
    serde_json::from_value(value)
        .map_err(|e| Failure::Other(format!("unexpected answer from the server (a different ferry version?): {e}")))
}

/// A path under `/v1` from segments, each percent-encoded so that no name can reach
/// another route.
pub(crate) fn path(segments: &[&str]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        assert_eq!(path(&["queues", "jobs", "messages"]), "/queues/jobs/messages");
        assert_eq!(path(&["queues", "a/b?c d"]), "/queues/a%2Fb%3Fc%20d");
    }

    #[test]
    fn server_errors_read_like_the_spec() {
        let f = Failure::Server { status: Some(404), code: "not_found".into(), message: "no queue".into(), hint: None };
        assert_eq!(f.to_string(), "no queue (not_found, HTTP 404)");
        assert_eq!(f.exit_status(), 4);
        assert_eq!(Failure::refused("not_logged_in", "not logged in").to_string(), "not logged in (not_logged_in)");
        assert_eq!(Failure::Usage(String::new()).exit_status(), 2);
        assert_eq!(Failure::Unreachable(String::new()).exit_status(), 3);
    }

    #[test]
    fn server_urls_are_checked() {
        let target = |s: &str| Target { server: Some(s.into()), ..Target::default() };
        assert_eq!(server_url(&target("http://h:1/")).ok().as_deref(), Some("http://h:1"));
        assert_eq!(server_url(&target("https://h")).ok().as_deref(), Some("https://h"));
        assert!(server_url(&target("h:1")).is_err());
        assert!(server_url(&target("http://h:1/v1")).is_err());
        assert_eq!(server_url(&Target::default()).ok().as_deref(), Some("http://127.0.0.1:8080"));
    }
}
