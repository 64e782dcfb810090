//! Parsing of SP addresses (`tcp://host:port`, `ipc://path`, `inproc://name`), with the
//! spellings NNG accepts (sp-wire.md §8).

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
        match scheme {
            "tcp" | "tcp4" | "tcp6" => {
                let family = match scheme {
                    "tcp4" => Family::V4,
                    "tcp6" => Family::V6,
                    _ => Family::Any,
                };
                let (host, port) = split_host_port(s, rest)?;
                Ok(Url::Tcp { host, port, family })
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
            _ => Err(bad(s, "unsupported scheme (tcp, tcp4, tcp6, ipc, unix, inproc)")),
        }
    }
}

fn split_host_port(url: &str, rest: &str) -> Result<(Option<String>, u16)> {
    if rest.contains('/') {
        return Err(bad(url, "tcp addresses take no path"));
    }
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (h, p) = after.split_once(']').ok_or_else(|| bad(url, "unclosed '['"))?;
        let p = p.strip_prefix(':').ok_or_else(|| bad(url, "missing :port"))?;
        (h, p)
    } else {
        rest.rsplit_once(':').ok_or_else(|| bad(url, "missing :port"))?
    };
    if host.contains(':') && !rest.starts_with('[') {
        return Err(bad(url, "IPv6 addresses must be in brackets"));
    }
    let port: u16 = port.parse().map_err(|_| bad(url, "port is not a number from 0 to 65535"))?;
    let host = match host {
        "" | "*" => None,
        h => Some(h.to_string()),
    };
    Ok((host, port))
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Url::Tcp { host, port, family } => {
                let scheme = match family {
                    Family::Any => "tcp",
                    Family::V4 => "tcp4",
                    Family::V6 => "tcp6",
                };
                match host {
                    None => write!(f, "{scheme}://*:{port}"),
                    Some(h) if h.contains(':') => write!(f, "{scheme}://[{h}]:{port}"),
                    Some(h) => write!(f, "{scheme}://{h}:{port}"),
                }
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
    }

    #[test]
    fn rejects_bad_addresses() {
        for s in ["tcp://host", "tcp://h:99999", "tcp://::1:5", "tcp://h:1/p", "ipc://", "x", "ws://h:1/"] {
            assert!(matches!(s.parse::<Url>(), Err(Error::BadUrl { .. })), "{s}");
        }
    }
}
