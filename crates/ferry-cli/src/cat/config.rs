//! Checks `ferry cat`'s flags as nngcat 1.5.2 does, with its messages, and turns them into
//! a [`Config`]. The checks run in nngcat's order: the flags themselves (one protocol, one
//! format, one data source, integers), then "No address specified.", `--compat`,
//! `--subscribe`, what the protocol allows, and last "No protocol specified.".

use super::format::Format;
use super::{AddrArg, CatArgs, Mode};
use ferry_sp::Protocol;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// A failure that ends `ferry cat` with exit code 1 after printing its message, as nngcat's
/// `fatal()` does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fatal(pub(crate) String);

impl Fatal {
    pub(crate) fn new(msg: impl Into<String>) -> Fatal {
        Fatal(msg.into())
    }
}

/// What the command does, after checking.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) protocol: Protocol,
    /// Addresses in command-line order.
    pub(crate) addrs: Vec<(Mode, String)>,
    pub(crate) format: Format,
    /// `--data` or the contents of `--file`.
    pub(crate) data: Option<Vec<u8>>,
    /// SUB topics; "everything" when none were given.
    pub(crate) topics: Vec<Vec<u8>>,
    /// Messages to send or receive; 0 is no limit.
    pub(crate) count: u32,
    pub(crate) interval: Option<Duration>,
    pub(crate) delay: Duration,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) recv_timeout: Option<Duration>,
    /// `recv-size-max`; `None` keeps NNG 1.5.2's default, which is no limit.
    pub(crate) recv_maxsz: Option<usize>,
    /// `--async` (or `--compat`): dial in the background.
    pub(crate) nonblocking: bool,
    /// `-v`: print "Listening at:" and "Connected to:" lines (standard output, as nngcat),
    /// and pipe events and the final statistics (standard error, ferry only).
    pub(crate) verbose: bool,
    /// `--stats-interval`: print the statistics this often (standard error).
    pub(crate) stats_interval: Option<Duration>,
    /// `--cert`, `--key`, `--cacert`, `--insecure`.
    pub(crate) tls: Tls,
}

/// nngcat's TLS flags, with the files already read (as nngcat reads them while parsing).
/// They apply to every tls+tcp:// and wss:// address.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tls {
    /// `--cert`: our certificate chain, and our key unless `--key` is given.
    pub(crate) cert: Option<Vec<u8>>,
    /// `--key`: the key of `--cert` (ignored without it, as in nngcat).
    pub(crate) key: Option<Vec<u8>>,
    /// `--cacert`: the authorities a peer's certificate must lead to.
    pub(crate) cacert: Option<Vec<u8>>,
    /// `--insecure`: `tls-authmode none`.
    pub(crate) insecure: bool,
}

impl Tls {
    fn from_flags(f: &super::Flags) -> Result<Tls, Fatal> {
        let once = |files: &[std::path::PathBuf], what: &str| -> Result<Option<Vec<u8>>, Fatal> {
            if files.len() > 1 {
                return Err(Fatal(format!("{what} may be specified only once.")));
            }
            files.first().map(|p| load_file(p)).transpose()
        };
        Ok(Tls {
            cacert: once(&f.cacert, "CA Certificate (--cacert)")?,
            key: once(&f.key, "Key (--key)")?,
            cert: once(&f.cert, "Cert (--cert)")?,
            insecure: f.insecure > 0,
        })
    }
}

/// The longest delay, interval or timeout nngcat accepts: a day, in seconds.
const MAX_SECONDS: u32 = 86_400;
const MAX_INT: u32 = 0x7fff_ffff;

/// nngcat's `intarg`: decimal digits only, at most `max`.
fn intarg(val: &str, max: u32) -> Result<u32, Fatal> {
    if val.is_empty() {
        return Err(Fatal::new("Empty integer argument."));
    }
    let mut v: u64 = 0;
    for c in val.bytes() {
        if !c.is_ascii_digit() {
            return Err(Fatal::new("Integer argument expected."));
        }
        v = v * 10 + u64::from(c - b'0');
        if v > u64::from(max) {
            return Err(Fatal::new("Integer argument too large."));
        }
    }
    // `v <= max` was checked after every digit.
    Ok(v as u32)
}

/// The last occurrence of a repeatable integer flag (nngcat lets the last one win), checked.
fn last_int(values: &[String], max: u32) -> Result<Option<u32>, Fatal> {
    let mut last = None;
    for v in values {
        last = Some(intarg(v, max)?);
    }
    Ok(last)
}

fn seconds(values: &[String]) -> Result<Option<Duration>, Fatal> {
    Ok(last_int(values, MAX_SECONDS)?.map(|s| Duration::from_secs(u64::from(s))))
}

/// An OS error's text as C's `strerror` gives it, without Rust's " (os error N)".
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Reads `--file`; `-` is standard input.
fn load_file(path: &Path) -> Result<Vec<u8>, Fatal> {
    let shown = path.display();
    let mut data = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut data)
    } else {
        let mut f =
            std::fs::File::open(path).map_err(|e| Fatal(format!("Cannot open file {shown}: {}", strerror(&e))))?;
        f.read_to_end(&mut data)
    };
    read.map_err(|e| Fatal(format!("Read from {shown} failed: {}", strerror(&e))))?;
    Ok(data)
}

fn address(arg: &AddrArg) -> Result<(Mode, String), Fatal> {
    Ok(match arg {
        AddrArg::Url(mode, url) => (*mode, url.clone()),
        // nngcat allows 65536 here; the dial or listen then fails on the address.
        AddrArg::LocalPort(mode, port) => (*mode, format!("tcp://127.0.0.1:{}", intarg(port, 65_536)?)),
        AddrArg::IpcPath(mode, path) => (*mode, format!("ipc:///{path}")),
    })
}

impl Config {
    /// Checks the arguments; reads `--file`.
    pub(crate) fn from_args(args: &CatArgs) -> Result<Config, Fatal> {
        let f = &args.flags;

        // The flags themselves.
        let protocols = [
            (f.req0, Some(Protocol::Req)),
            (f.rep0, Some(Protocol::Rep)),
            (f.pub0, Some(Protocol::Pub)),
            (f.sub0, Some(Protocol::Sub)),
            (f.push0, Some(Protocol::Push)),
            (f.pull0, Some(Protocol::Pull)),
            (f.surveyor0, Some(Protocol::Surveyor)),
            (f.respondent0, Some(Protocol::Respondent)),
            (f.pair0, Some(Protocol::Pair0)),
            (f.pair1, Some(Protocol::Pair1)),
            (f.bus0, Some(Protocol::Bus)),
            // `--pair`: v1, or v0 with --compat (decided below).
            (f.pair, None),
        ];
        if protocols.iter().map(|&(n, _)| usize::from(n)).sum::<usize>() > 1 {
            return Err(Fatal::new("Only one protocol may be specified."));
        }
        let addrs = args.addrs.iter().map(address).collect::<Result<Vec<_>, _>>()?;
        let count = last_int(&f.count, MAX_INT)?.unwrap_or(0);
        let delay = seconds(&f.delay)?.unwrap_or(Duration::ZERO);
        let interval = seconds(&f.interval)?;
        // nngcat sets the timeouts only when positive: 0 keeps "forever".
        let send_timeout = seconds(&f.send_timeout)?.filter(|d| !d.is_zero());
        let recv_timeout = seconds(&f.recv_timeout)?.filter(|d| !d.is_zero());
        // -Z 0 is nngcat's way to say "the largest": 2^31-1.
        let recv_maxsz = last_int(&f.recv_maxsz, MAX_INT)?.map(|n| (if n == 0 { MAX_INT } else { n }) as usize);
        let format = Self::format(args)?;
        if f.data.len() + f.file.len() > 1 {
            return Err(Fatal::new("Data (--file, --data) may be specified only once."));
        }
        let data = match (f.data.first(), f.file.first()) {
            (Some(d), _) => Some(d.as_bytes().to_vec()),
            (None, Some(path)) => Some(load_file(path)?),
            (None, None) => None,
        };
        let tls = Tls::from_flags(f)?;
        let stats_interval = seconds(&f.stats_interval)?.filter(|d| !d.is_zero());

        if addrs.is_empty() {
            return Err(Fatal::new("No address specified."));
        }
        let compat = f.compat > 0;
        let mut protocol = protocols.iter().find(|&&(n, _)| n > 0).map(|&(_, p)| p);
        if compat {
            if f.nonblocking > 0 {
                return Err(Fatal::new("Options --async and --compat are incompatible."));
            }
            if count != 0 {
                return Err(Fatal::new("Options --count and --compat are incompatible."));
            }
            if protocol == Some(Some(Protocol::Pair1)) {
                return Err(Fatal::new("Protocol does not support --compat."));
            }
        }
        if protocol == Some(None) {
            protocol = Some(Some(if compat { Protocol::Pair0 } else { Protocol::Pair1 }));
        }
        let protocol = protocol.flatten();

        let mut topics: Vec<Vec<u8>> = f.subscribe.iter().map(|t| t.as_bytes().to_vec()).collect();
        if protocol == Some(Protocol::Sub) {
            if topics.is_empty() {
                topics.push(Vec::new());
            }
        } else if !topics.is_empty() {
            return Err(Fatal::new("Protocol does not support --subscribe."));
        }

        let requires_data = || Fatal::new("Protocol requires either --file or --data.");
        match protocol {
            Some(Protocol::Pull | Protocol::Sub) => {
                if data.is_some() {
                    return Err(Fatal::new("Protocol does not support --file or --data."));
                }
                if interval.is_some() {
                    return Err(Fatal::new("Protocol does not support --interval."));
                }
            }
            Some(Protocol::Push | Protocol::Pub) => {
                if Self::format_given(args) {
                    return Err(Fatal::new("Protocol does not support --format options."));
                }
                if data.is_none() {
                    return Err(requires_data());
                }
            }
            Some(Protocol::Surveyor | Protocol::Req) if data.is_none() => return Err(requires_data()),
            Some(Protocol::Rep | Protocol::Respondent) if interval.is_some() => {
                return Err(Fatal::new("Protocol does not support --interval."));
            }
            Some(Protocol::Pair0 | Protocol::Pair1 | Protocol::Bus) if interval.is_some() && data.is_none() => {
                return Err(Fatal::new("Option --interval requires either --file or --data."));
            }
            _ => {}
        }
        let protocol = protocol.ok_or_else(|| Fatal::new("No protocol specified."))?;

        Ok(Config {
            protocol,
            addrs,
            format,
            data,
            topics,
            count,
            interval,
            delay,
            send_timeout,
            recv_timeout,
            recv_maxsz,
            nonblocking: compat || f.nonblocking > 0,
            verbose: args.verbose,
            stats_interval,
            tls,
        })
    }

    fn format_given(args: &CatArgs) -> bool {
        let f = &args.flags;
        !f.format.is_empty() || f.raw + f.ascii + f.quoted + f.hex + f.msgpack > 0
    }

    fn format(args: &CatArgs) -> Result<Format, Fatal> {
        let f = &args.flags;
        let shorthands = [
            (f.raw, Format::Raw),
            (f.ascii, Format::Ascii),
            (f.quoted, Format::Quoted),
            (f.hex, Format::Hex),
            (f.msgpack, Format::Msgpack),
        ];
        let n = f.format.len() + shorthands.iter().map(|(n, _)| usize::from(*n)).sum::<usize>();
        if n > 1 {
            return Err(Fatal::new("Format may be specified only once."));
        }
        if let Some(name) = f.format.first() {
            return Format::from_name(name).ok_or_else(|| Fatal::new("Invalid format specified."));
        }
        Ok(shorthands.iter().find(|(n, _)| *n > 0).map_or(Format::No, |(_, f)| *f))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Flags;
    use super::*;

    fn args(f: impl FnOnce(&mut Flags)) -> CatArgs {
        let mut a = CatArgs::default();
        a.addrs.push(AddrArg::Url(Mode::Dial, "tcp://127.0.0.1:1".into()));
        f(&mut a.flags);
        a
    }

    fn err(a: CatArgs) -> String {
        Config::from_args(&a).unwrap_err().0
    }

    #[test]
    fn intarg_matches_nngcat() {
        assert_eq!(intarg("0", 10), Ok(0));
        assert_eq!(intarg("86400", MAX_SECONDS), Ok(86_400));
        assert_eq!(intarg("", 5).unwrap_err().0, "Empty integer argument.");
        assert_eq!(intarg("-1", 5).unwrap_err().0, "Integer argument expected.");
        assert_eq!(intarg("1x", 5).unwrap_err().0, "Integer argument expected.");
        assert_eq!(intarg("86401", MAX_SECONDS).unwrap_err().0, "Integer argument too large.");
        assert_eq!(intarg("99999999999999999999999", MAX_INT).unwrap_err().0, "Integer argument too large.");
    }

    #[test]
    fn builds_a_request_config() {
        let c = Config::from_args(&args(|f| {
            f.req0 = 1;
            f.data = vec!["hi".into()];
            f.quoted = 1;
            f.recv_timeout = vec!["2".into()];
            f.send_timeout = vec!["0".into()];
            f.count = vec!["5".into(), "3".into()];
        }))
        .unwrap();
        assert_eq!(c.protocol, Protocol::Req);
        assert_eq!(c.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(c.format, Format::Quoted);
        assert_eq!(c.recv_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.send_timeout, None, "0 means forever, as in nngcat");
        assert_eq!(c.count, 3, "the last --count wins");
        assert_eq!(c.addrs, vec![(Mode::Dial, "tcp://127.0.0.1:1".to_string())]);
        assert!(!c.nonblocking);
    }

    #[test]
    fn local_and_ipc_shorthands_expand() {
        let mut a = args(|f| f.pull0 = 1);
        a.addrs = vec![AddrArg::LocalPort(Mode::Listen, "5555".into()), AddrArg::IpcPath(Mode::Dial, "tmp/s".into())];
        let c = Config::from_args(&a).unwrap();
        assert_eq!(
            c.addrs,
            vec![(Mode::Listen, "tcp://127.0.0.1:5555".to_string()), (Mode::Dial, "ipc:///tmp/s".to_string())]
        );
        a.addrs = vec![AddrArg::LocalPort(Mode::Listen, "http".into())];
        assert_eq!(err(a), "Integer argument expected.");
    }

    #[test]
    fn sub_subscribes_to_everything_by_default() {
        let c = Config::from_args(&args(|f| f.sub0 = 1)).unwrap();
        assert_eq!(c.topics, vec![Vec::<u8>::new()]);
        let c = Config::from_args(&args(|f| {
            f.sub0 = 1;
            f.subscribe = vec!["a".into(), "b".into()];
        }))
        .unwrap();
        assert_eq!(c.topics, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn pair_is_v1_or_v0_with_compat() {
        assert_eq!(Config::from_args(&args(|f| f.pair = 1)).unwrap().protocol, Protocol::Pair1);
        let c = Config::from_args(&args(|f| {
            f.pair = 1;
            f.compat = 1;
        }))
        .unwrap();
        assert_eq!((c.protocol, c.nonblocking), (Protocol::Pair0, true));
    }

    #[test]
    fn recv_maxsz_zero_is_the_largest() {
        let c = Config::from_args(&args(|f| {
            f.pull0 = 1;
            f.recv_maxsz = vec!["0".into()];
        }))
        .unwrap();
        assert_eq!(c.recv_maxsz, Some(0x7fff_ffff));
    }

    #[test]
    fn nngcat_messages_for_bad_combinations() {
        type Setter = Box<dyn FnOnce(&mut Flags)>;
        let cases: Vec<(Setter, &str)> = vec![
            (Box::new(|f| f.data = vec!["x".into()]), "No protocol specified."),
            (
                Box::new(|f| {
                    f.req0 = 1;
                    f.rep0 = 1
                }),
                "Only one protocol may be specified.",
            ),
            (Box::new(|f| f.req0 = 1), "Protocol requires either --file or --data."),
            (Box::new(|f| f.surveyor0 = 1), "Protocol requires either --file or --data."),
            (
                Box::new(|f| {
                    f.sub0 = 1;
                    f.data = vec!["x".into()]
                }),
                "Protocol does not support --file or --data.",
            ),
            (
                Box::new(|f| {
                    f.pull0 = 1;
                    f.interval = vec!["1".into()]
                }),
                "Protocol does not support --interval.",
            ),
            (
                Box::new(|f| {
                    f.rep0 = 1;
                    f.interval = vec!["1".into()]
                }),
                "Protocol does not support --interval.",
            ),
            (
                Box::new(|f| {
                    f.bus0 = 1;
                    f.interval = vec!["1".into()]
                }),
                "Option --interval requires either --file or --data.",
            ),
            (
                Box::new(|f| {
                    f.pub0 = 1;
                    f.data = vec!["x".into()];
                    f.quoted = 1
                }),
                "Protocol does not support --format options.",
            ),
            (
                Box::new(|f| {
                    f.push0 = 1;
                    f.data = vec!["x".into()];
                    f.format = vec!["no".into()]
                }),
                "Protocol does not support --format options.",
            ),
            (
                Box::new(|f| {
                    f.pull0 = 1;
                    f.hex = 1;
                    f.raw = 1
                }),
                "Format may be specified only once.",
            ),
            (
                Box::new(|f| {
                    f.pull0 = 1;
                    f.format = vec!["text".into()]
                }),
                "Invalid format specified.",
            ),
            (
                Box::new(|f| {
                    f.req0 = 1;
                    f.data = vec!["x".into()];
                    f.file = vec!["-".into()]
                }),
                "Data (--file, --data) may be specified only once.",
            ),
            (
                Box::new(|f| {
                    f.req0 = 1;
                    f.data = vec!["x".into()];
                    f.subscribe = vec!["t".into()]
                }),
                "Protocol does not support --subscribe.",
            ),
            (
                Box::new(|f| {
                    f.pair1 = 1;
                    f.compat = 1
                }),
                "Protocol does not support --compat.",
            ),
            (
                Box::new(|f| {
                    f.pair0 = 1;
                    f.compat = 1;
                    f.nonblocking = 1
                }),
                "Options --async and --compat are incompatible.",
            ),
            (
                Box::new(|f| {
                    f.pair0 = 1;
                    f.compat = 1;
                    f.count = vec!["1".into()]
                }),
                "Options --count and --compat are incompatible.",
            ),
            (
                Box::new(|f| {
                    f.req0 = 1;
                    f.file = vec!["/nonexistent/ferry-cat".into()]
                }),
                "Cannot open file /nonexistent/ferry-cat: No such file or directory",
            ),
        ];
        for (set, want) in cases {
            assert_eq!(err(args(set)), want);
        }
        let mut no_addr = args(|f| f.pull0 = 1);
        no_addr.addrs.clear();
        assert_eq!(err(no_addr), "No address specified.");
    }

    #[test]
    fn tls_flags_are_read_once_each_and_stats_interval_is_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("both.pem");
        std::fs::write(&pem, "PEM").unwrap();
        let c = Config::from_args(&args(|f| {
            f.pull0 = 1;
            f.cert = vec![pem.clone()];
            f.insecure = 1;
            f.stats_interval = vec!["5".into()];
        }))
        .unwrap();
        assert_eq!(c.tls, Tls { cert: Some(b"PEM".to_vec()), key: None, cacert: None, insecure: true });
        assert_eq!(c.stats_interval, Some(Duration::from_secs(5)));
        let c = Config::from_args(&args(|f| {
            f.pull0 = 1;
            f.stats_interval = vec!["0".into()];
        }))
        .unwrap();
        assert_eq!((c.stats_interval, c.tls), (None, Tls::default()));
        let twice = |set: fn(&mut Flags, std::path::PathBuf)| {
            let pem = pem.clone();
            err(args(move |f| {
                f.pull0 = 1;
                set(f, pem.clone());
                set(f, pem);
            }))
        };
        assert_eq!(twice(|f, p| f.cert.push(p)), "Cert (--cert) may be specified only once.");
        assert_eq!(twice(|f, p| f.key.push(p)), "Key (--key) may be specified only once.");
        assert_eq!(twice(|f, p| f.cacert.push(p)), "CA Certificate (--cacert) may be specified only once.");
        let missing = err(args(|f| {
            f.pull0 = 1;
            f.cacert = vec!["/nonexistent/ferry-ca.pem".into()];
        }));
        assert_eq!(missing, "Cannot open file /nonexistent/ferry-ca.pem: No such file or directory");
    }

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(strerror(&e), "No such file or directory");
    }
}
