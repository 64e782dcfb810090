//! The listener's half of the WebSocket upgrade (RFC 6455 §4.2), as NNG 1.5.2's listener
//! does it (sp-wire.md §5): read the request head, find the socket serving its path (404
//! if none), check the upgrade headers and the SP subprotocol (400 if anything is wrong),
//! answer 101 echoing the subprotocol.
//!
//! Written here rather than with tungstenite's server handshake for two reasons: NNG 1.5.2
//! dials a URL without a path with an empty request target (`GET  HTTP/1.1`), which HTTP
//! parsers reject and which must count as `/`; and the path has to pick the socket before
//! the subprotocol can be checked against that socket's protocol.

use super::super::Io;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The most a request head may take. NNG's requests are about 250 bytes.
pub(super) const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 32;

/// Why an upgrade is refused; the HTTP answer says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 400, with the reason for our logs.
    BadRequest(&'static str),
    /// 404: no socket listens on the path.
    NotFound,
}

impl Refusal {
    pub(super) fn response(self) -> &'static [u8] {
        match self {
            Refusal::BadRequest(_) => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Refusal::NotFound => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        }
    }
}

/// Reads up to the end of the request head. Returns the head and whatever the client sent
/// after it, or `None` if the head exceeds [`MAX_HEAD`].
pub(super) async fn read_head(io: &mut dyn Io) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // The end marker may straddle two reads.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = head.split_off(from + i + 4);
            return Ok(Some((head, rest)));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Request {
    method: String,
    /// `Some(1)` for HTTP/1.1.
    version: Option<u8>,
    /// The route the path names: see [`route_key`].
    route: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
}

/// The route key of an HTTP path: without query, without one trailing `/` (NNG serves
/// `/p` for `/p/` too), and `/` for an empty one.
pub(super) fn route_key(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    match path {
        "" | "/" => "/".to_string(),
        p => p.strip_suffix('/').unwrap_or(p).to_string(),
    }
}

/// `GET  HTTP/1.1` (an empty request target, as NNG 1.5.2 sends for a URL without a path)
/// rewritten as `GET / HTTP/1.1`; `None` for any other request line.
fn fill_empty_target(head: &[u8]) -> Option<Vec<u8>> {
    let sp = head.iter().position(|&b| b == b' ')?;
    if head.get(sp + 1) != Some(&b' ') {
        return None;
    }
    let mut fixed = Vec::with_capacity(head.len() + 1);
    fixed.extend_from_slice(&head[..=sp]);
    fixed.push(b'/');
    fixed.extend_from_slice(&head[sp + 1..]);
    Some(fixed)
}

/// Parses a request head; only its syntax is checked here.
pub(super) fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let fixed = fill_empty_target(head);
    let head = fixed.as_deref().unwrap_or(head);
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Refusal::BadRequest("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::BadRequest("too many headers")),
        Err(_) => return Err(Refusal::BadRequest("malformed request head")),
    }
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Ok(Request {
        method: req.method.unwrap_or_default().to_string(),
        version: req.version,
        route: route_key(req.path.unwrap_or_default()),
        headers,
    })
}

impl Request {
    pub(super) fn route(&self) -> &str {
        &self.route
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header holds `token`, ignoring case.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Checks the request as an upgrade to `subprotocol` and returns the 101 answer.
    pub(super) fn accept(&self, subprotocol: &str) -> Result<Vec<u8>, Refusal> {
        let bad = |why| Err(Refusal::BadRequest(why));
        if self.method != "GET" {
            return bad("method is not GET");
        }
        if self.version != Some(1) {
            return bad("not HTTP/1.1");
        }
        if !self.has_token("upgrade", "websocket") {
            return bad("no Upgrade: websocket");
        }
        if !self.has_token("connection", "upgrade") {
            return bad("no Connection: upgrade");
        }
        if !self.values("sec-websocket-version").any(|v| v.trim() == "13") {
            return bad("no Sec-WebSocket-Version: 13");
        }
        let Some(key) = self.values("sec-websocket-key").map(str::trim).find(|k| !k.is_empty()) else {
            return bad("no Sec-WebSocket-Key");
        };
        if self.values("content-length").any(|v| v.trim() != "0") || self.values("transfer-encoding").next().is_some() {
            return bad("an upgrade request with a body");
        }
        // Case matters: subprotocol tokens compare exactly (RFC 6455 §4.1).
        if !self.values("sec-websocket-protocol").flat_map(|v| v.split(',')).any(|p| p.trim() == subprotocol) {
            return bad("the SP subprotocol of this socket was not asked for");
        }
        let accept = derive_accept_key(key.as_bytes());
        Ok(format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        )
        .into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request nngcat 1.5.2 sends (sp-wire.md §5), with RFC 6455's sample key.
    fn nng_request(target: &str, protocol: &str) -> String {
        format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:45140\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
    }

    #[test]
    fn nng_requests_are_accepted_with_the_rfc_accept_key() {
        let req = parse(nng_request("/p", "rep.sp.nanomsg.org").as_bytes()).unwrap();
        assert_eq!(req.route(), "/p");
        let answer = String::from_utf8(req.accept("rep.sp.nanomsg.org").unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{answer}");
        assert!(answer.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{answer}");
        assert!(answer.contains("\r\nSec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"));
    }

    #[test]
    fn an_empty_target_is_the_root_and_paths_are_normalised() {
        assert_eq!(parse(nng_request("", "x").as_bytes()).unwrap().route(), "/");
        assert_eq!(route_key("/sp/"), "/sp");
        assert_eq!(route_key("/sp?a=1"), "/sp");
        assert_eq!(route_key(""), "/");
        assert_eq!(route_key("/"), "/");
    }

    #[test]
    fn wrong_or_missing_upgrade_headers_are_bad_requests() {
        let ok = nng_request("/p", "rep.sp.nanomsg.org");
        let refused = |text: String| parse(text.as_bytes()).and_then(|r| r.accept("rep.sp.nanomsg.org")).unwrap_err();
        for (from, to) in [
            ("rep.sp.nanomsg.org", "req.sp.nanomsg.org"),
            ("rep.sp.nanomsg.org", "REP.sp.nanomsg.org"),
            ("Sec-WebSocket-Protocol", "X-Protocol"),
            ("GET", "POST"),
            ("HTTP/1.1", "HTTP/1.0"),
            ("Upgrade: websocket", "Upgrade: h2c"),
            ("Connection: Upgrade", "Connection: keep-alive"),
            ("Version: 13", "Version: 8"),
            ("Sec-WebSocket-Key", "X-Key"),
            ("Host:", "Content-Length: 3\r\nHost:"),
        ] {
            assert!(matches!(refused(ok.replace(from, to)), Refusal::BadRequest(_)), "{from} -> {to}");
        }
        assert!(matches!(parse(b"\x00\x01 garbage\r\n\r\n"), Err(Refusal::BadRequest(_))));
        // A list that holds our subprotocol is fine; NNG matches "contains word" too.
        let listed = ok.replace("rep.sp.nanomsg.org", "chat, rep.sp.nanomsg.org");
        assert!(parse(listed.as_bytes()).unwrap().accept("rep.sp.nanomsg.org").is_ok());
    }

    #[tokio::test]
    async fn heads_are_read_up_to_their_end_and_bounded() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut server: Box<dyn Io> = Box::new(server);
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r").await.unwrap();
        client.write_all(b"\n\r\nearly").await.unwrap();
        let (head, rest) = read_head(&mut *server).await.unwrap().unwrap();
        assert!(head.ends_with(b"Host: x\r\n\r\n"));
        assert_eq!(rest, b"early");

        client.write_all(&vec![b'a'; MAX_HEAD + 2048]).await.unwrap();
        assert!(read_head(&mut *server).await.unwrap().is_none());
    }
}
