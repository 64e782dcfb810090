//! A MOM request as the handlers need it: headers, the raw path and query (the rate-limit
//! key and the path and query parameters), the client's IP address, and the body, read the
//! way FastAPI reads a JSON body: parsed only when the content type is JSON (or absent), a
//! syntax error answered at once with pydantic's `json_invalid` (before authentication,
//! as FastAPI does), an empty body or `null` counted as missing.

use super::errors::MomError;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The parts of a request the MOM handlers look at.
pub(crate) struct Call {
    pub(crate) headers: HeaderMap,
    /// The path as sent (still percent-encoded).
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    /// Who the rate limits count against.
    pub(crate) ip: String,
    body: Bytes,
}

/// A request body as FastAPI hands it to pydantic.
pub(crate) enum Body {
    /// No body, or JSON `null`.
    Missing,
    /// A JSON body.
    Json(Value),
    /// A body of another content type, as text.
    Raw(String),
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = MomError;

    async fn from_request(req: Request, state: &S) -> Result<Self, MomError> {
        let headers = req.headers().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let ip = client_ip(&req);
        let body = Bytes::from_request(req, state).await.map_err(|r| MomError::detail(r.status(), r.body_text()))?;
        Ok(Call { headers, path, query, ip, body })
    }
}

/// The peer's address when the server provides it; behind a proxy without it, what the
/// proxy says (`X-Forwarded-For`, then `X-Real-IP`); otherwise one shared bucket.
fn client_ip(req: &Request) -> String {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip().to_string();
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    header("x-forwarded-for")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or_else(|| header("x-real-ip").filter(|v| !v.is_empty()))
        .unwrap_or("unknown")
        .to_string()
}

impl Call {
    /// The body, parsed as FastAPI parses it before anything else about the request is
    /// looked at.
    pub(crate) fn body(&self) -> Result<Body, MomError> {
        if self.body.is_empty() {
            return Ok(Body::Missing);
        }
        if !self.is_json() {
            return Ok(Body::Raw(String::from_utf8_lossy(&self.body).into_owned()));
        }
        // Starlette decodes the bytes before parsing them; bytes that are not text fail
        // there, with FastAPI's generic answer rather than a validation error.
        let Ok(text) = std::str::from_utf8(&self.body) else {
            return Err(MomError::detail(StatusCode::BAD_REQUEST, "There was an error parsing the body"));
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Null) => Ok(Body::Missing),
            Ok(v) => Ok(Body::Json(v)),
            Err(e) => Err(MomError::Invalid(vec![json!({
                "type": "json_invalid",
                "loc": ["body", char_offset(text, e.line(), e.column())],
                "msg": "JSON decode error",
                "input": {},
                "ctx": { "error": python_json_error(&e) },
            })])),
        }
    }

    /// FastAPI parses the body as JSON when there is no content type, or when it is
    /// `application/json` or `application/<anything>+json`.
    fn is_json(&self) -> bool {
        let Some(ct) = self.headers.get(header::CONTENT_TYPE) else { return true };
        let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence.split_once('/') {
            Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
            _ => false,
        }
    }

    /// The last value of a query parameter, decoded (Starlette keeps the last of repeats).
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k, true) == name).then(|| percent_decode(v, true))
            })
            .next_back()
    }

    /// The last path segment, decoded: the `{user}` or `{name}` of a route that ends in one.
    pub(crate) fn last_segment(&self) -> String {
        percent_decode(self.path.rsplit('/').next().unwrap_or(""), false)
    }
}

/// Decodes `%XX` escapes (and `+` as a space in query strings); invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The character offset of a line and column, as Python's `JSONDecodeError.pos` gives it.
fn char_offset(text: &str, line: usize, column: usize) -> usize {
    let before: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(|l| l.chars().count()).sum();
    before + column.saturating_sub(1)
}

/// The message Python's `json` module would give for the same mistake (the nearest one:
/// the two parsers do not stop at exactly the same places).
fn python_json_error(e: &serde_json::Error) -> &'static str {
    let text = e.to_string();
    let has = |s: &str| text.starts_with(s);
    if has("EOF while parsing a string") {
        "Unterminated string starting at"
    } else if has("EOF while parsing an object") || has("expected `,` or `}`") || has("expected `,` or `]`") {
        "Expecting ',' delimiter"
    } else if has("expected `:`") {
        "Expecting ':' delimiter"
    } else if has("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if has("trailing characters") {
        "Extra data"
    } else if has("control character") {
        "Invalid control character at"
    } else if has("invalid escape") {
        "Invalid \\escape"
    } else {
        "Expecting value"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%C3%BC", false), "ü");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn offsets_count_characters_across_lines() {
        assert_eq!(char_offset("{\n  \"a\": x}", 2, 8), 9);
        assert_eq!(char_offset("x", 1, 1), 0);
    }
}
