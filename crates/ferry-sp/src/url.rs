//! Parsing of SP addresses (`tcp://host:port`, `ipc://path`, `inproc://name`,
//! `ws://host:port/path`, `wss://…`, `tls+tcp://host:port`), with the spellings NNG accepts
//! (sp-wire.md §8).

use crate::error::{Error, Result};
use std::fmt;
use std::path::PathBuf;

/// A parsed SP address.
///
/// ```
/// use ferry_sp::Url;
/// let url: Url = "tcp://127.0.0.1:5555".parse().unwrap();
/// assert_eq!(url.to_string(), "tcp://127.0.0.1:5555");
/// assert!("tcp://*:0".parse::<Url>().is_ok());
/// assert!("ipc:///tmp/x.ipc".parse::<Url>().is_ok());
/// let ws: Url = "ws://127.0.0.1:5555".parse().unwrap();
/// assert_eq!(ws.to_string(), "ws://127.0.0.1:5555/"); // an empty path is `/`
/// assert!("gopher://x".parse::<Url>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Url {
    /// `tcp://host:port`; `host` is `None` for the wildcard (`*`, empty).
    Tcp {
        /// Host name or address literal (without IPv6 brackets); `None` means any.
        host: Option<String>,
        /// Port; 0 asks the system for a free one when listening.
        port: u16,
        /// `tcp4://` or `tcp6://` restrict the address family.
        family: Family,
    },
    /// `ipc://path` (alias `unix://`): a Unix domain socket path, relative or absolute.
    Ipc(PathBuf),
    /// `inproc://name`: within this process.
    Inproc(String),
    /// `ws://host[:port][/path]` or, with `secure`, `wss://…` (WebSocket over TLS). The
    /// port defaults to 80 (ws) or 443 (wss), the path to `/`.
    Ws {
        /// `wss://`: TLS underneath.
        secure: bool,
        /// Host name or address literal (without IPv6 brackets); `None` means any.
        host: Option<String>,
        /// Port; 0 asks the system for a free one when listening.
        port: u16,
        /// `ws4://`, `wss6://`… restrict the address family.
        family: Family,
        /// The HTTP path, always starting with `/`; sockets listening on one host and port
        /// are told apart by it.
        path: String,
    },
    /// `tls+tcp://host:port`: the TCP mapping inside TLS.
    TlsTcp {
        /// Host name or address literal (without IPv6 brackets); `None` means any.
        host: Option<String>,
        /// Port; 0 asks the system for a free one when listening.
        port: u16,
        /// `tls+tcp4://` or `tls+tcp6://` restrict the address family.
        family: Family,
    },
}

impl Url {
    /// The TCP port of a tcp, ws, wss or tls+tcp address.
    pub fn port(&self) -> Option<u16> {
        match self {
            Url::Tcp { port, .. } | Url::Ws { port, .. } | Url::TlsTcp { port, .. } => Some(*port),
            Url::Ipc(_) | Url::Inproc(_) => None,
        }
    }
}

/// Address family restriction of `tcp4://` / `tcp6://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Either.
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

fn bad(url: &str, reason: &'static str) -> Error {
    Error::BadUrl { url: url.to_string(), reason }
}

impl std::str::FromStr for Url {
    type Err = Error;

    fn from_str(s: &str) -> Result<Url> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad(s, "missing scheme://"))?;
        let family = match scheme.as_bytes().last() {
            Some(b'4') => Family::V4,
            Some(b'6') => Family::V6,
            _ => Family::Any,
        };
        match scheme {
            "tcp" | "tcp4" | "tcp6" => {
                let (host, port) = split_host_port(s, rest)?;
                Ok(Url::Tcp { host, port, family })
            }
            "tls+tcp" | "tls+tcp4" | "tls+tcp6" => {
                let (host, port) = split_host_port(s, rest)?;
                Ok(Url::TlsTcp { host, port, family })
            }
            "ws" | "ws4" | "ws6" | "wss" | "wss4" | "wss6" => {
                let secure = scheme.starts_with("wss");
                let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
                let default_port = if secure { 443 } else { 80 };
                let (host, port) = split_host_maybe_port(s, authority, default_port)?;
                Ok(Url::Ws { secure, host, port, family, path: path.to_string() })
            }
            "ipc" | "unix" => {
                if rest.is_empty() {
                    return Err(bad(s, "empty ipc path"));
                }
                // sun_path holds 108 bytes including the terminating NUL on Linux.
                if rest.len() > 107 {
                    return Err(bad(s, "ipc path longer than 107 bytes"));
                }
                Ok(Url::Ipc(PathBuf::from(rest)))
            }
            "inproc" => {
                if rest.is_empty() {
                    return Err(bad(s, "empty inproc name"));
                }
                Ok(Url::Inproc(rest.to_string()))
            }
            _ => Err(bad(s, "unsupported scheme (tcp, tcp4, tcp6, ipc, unix, inproc, ws, wss, tls+tcp)")),
        }
    }
}

fn split_host_port(url: &str, rest: &str) -> Result<(Option<String>, u16)> {
    if rest.contains('/') {
        return Err(bad(url, "tcp addresses take no path"));
    }
    let (host, port) = split_authority(url, rest)?;
    let port = port.ok_or_else(|| bad(url, "missing :port"))?;
    Ok((host, port))
}

/// `host[:port]` where the port may be left out (ws, wss).
fn split_host_maybe_port(url: &str, authority: &str, default_port: u16) -> Result<(Option<String>, u16)> {
    let (host, port) = split_authority(url, authority)?;
    Ok((host, port.unwrap_or(default_port)))
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; `*` and an empty host are the wildcard.
fn split_authority(url: &str, authority: &str) -> Result<(Option<String>, Option<u16>)> {
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let (h, p) = after.split_once(']').ok_or_else(|| bad(url, "unclosed '['"))?;
        match p {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(|| bad(url, "junk after ']'"))?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.contains(':') && !authority.starts_with('[') {
        return Err(bad(url, "IPv6 addresses must be in brackets"));
    }
    let port =
        port.map(|p| p.parse::<u16>().map_err(|_| bad(url, "port is not a number from 0 to 65535"))).transpose()?;
    let host = match host {
        "" | "*" => None,
        h => Some(h.to_string()),
    };
    Ok((host, port))
}

fn family_suffix(family: Family) -> &'static str {
    match family {
        Family::Any => "",
        Family::V4 => "4",
        Family::V6 => "6",
    }
}

/// Writes `scheme://host:port` with `*` for the wildcard and brackets around IPv6.
fn write_authority(f: &mut fmt::Formatter<'_>, scheme: &str, host: &Option<String>, port: u16) -> fmt::Result {
    match host {
        None => write!(f, "{scheme}://*:{port}"),
        Some(h) if h.contains(':') => write!(f, "{scheme}://[{h}]:{port}"),
        Some(h) => write!(f, "{scheme}://{h}:{port}"),
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Url::Tcp { host, port, family } => {
                write_authority(f, &format!("tcp{}", family_suffix(*family)), host, *port)
            }
            Url::TlsTcp { host, port, family } => {
                write_authority(f, &format!("tls+tcp{}", family_suffix(*family)), host, *port)
            }
            Url::Ws { secure, host, port, family, path } => {
                let scheme = format!("{}{}", if *secure { "wss" } else { "ws" }, family_suffix(*family));
                write_authority(f, &scheme, host, *port)?;
                f.write_str(path)
            }
            Url::Ipc(p) => write!(f, "ipc://{}", p.display()),
            Url::Inproc(n) => write!(f, "inproc://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nng_spellings() {
        let u: Url = "tcp://[::1]:80".parse().unwrap();
        assert_eq!(u, Url::Tcp { host: Some("::1".into()), port: 80, family: Family::Any });
        assert_eq!(u.to_string(), "tcp://[::1]:80");
        let u: Url = "tcp://:5".parse().unwrap();
        assert_eq!(u, Url::Tcp { host: None, port: 5, family: Family::Any });
        let u: Url = "unix://rel/x.sock".parse().unwrap();
        assert_eq!(u, Url::Ipc(PathBuf::from("rel/x.sock")));
        assert_eq!("inproc://a b".parse::<Url>().unwrap(), Url::Inproc("a b".into()));
        let u: Url = "tls+tcp6://[::1]:9".parse().unwrap();
        assert_eq!(u, Url::TlsTcp { host: Some("::1".into()), port: 9, family: Family::V6 });
        assert_eq!(u.to_string(), "tls+tcp6://[::1]:9");
    }

    #[test]
    fn parses_websocket_addresses_with_their_defaults() {
        let ws = |secure, host: Option<&str>, port, path: &str| Url::Ws {
            secure,
            host: host.map(str::to_string),
            port,
            family: Family::Any,
            path: path.to_string(),
        };
        assert_eq!("ws://h:1/a/b".parse::<Url>().unwrap(), ws(false, Some("h"), 1, "/a/b"));
        assert_eq!("ws://h".parse::<Url>().unwrap(), ws(false, Some("h"), 80, "/"));
        assert_eq!("wss://h/x".parse::<Url>().unwrap(), ws(true, Some("h"), 443, "/x"));
        assert_eq!("ws://*:0/sp".parse::<Url>().unwrap(), ws(false, None, 0, "/sp"));
        assert_eq!("ws://[::1]/p".parse::<Url>().unwrap(), ws(false, Some("::1"), 80, "/p"));
        assert_eq!("ws://[::1]:7/p".parse::<Url>().unwrap().to_string(), "ws://[::1]:7/p");
        assert_eq!("wss4://h:5/".parse::<Url>().unwrap().to_string(), "wss4://h:5/");
        assert_eq!("ws://h:5/q".parse::<Url>().unwrap().port(), Some(5));
    }

    #[test]
    fn rejects_bad_addresses() {
        for s in [
            "tcp://host",
            "tcp://h:99999",
            "tcp://::1:5",
            "tcp://h:1/p",
            "ipc://",
            "x",
            "ws://h:99999/",
            "ws://::1/",
            "ws://[::1/",
            "ws://[::1]x/",
            "tls+tcp://h",
            "tls+tcp://h:1/p",
            "wsx://h:1/",
        ] {
            assert!(matches!(s.parse::<Url>(), Err(Error::BadUrl { .. })), "{s}");
        }
    }
}
