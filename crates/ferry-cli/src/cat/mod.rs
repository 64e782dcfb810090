//! `ferry cat`: an nngcat-compatible command. Any nngcat 1.5.2 recipe over tcp, ipc,
//! inproc, ws, wss or tls+tcp works with `nngcat` replaced by `ferry cat`: the same flags
//! (long ones may be abbreviated while unambiguous, so `--req`, `--pub`, `--surveyor` work),
//! TLS included (`--cert`, `--key`, `--cacert`, `--insecure`), the same behaviour per protocol,
//! the same output formats byte for byte, and the same messages and exit codes for the
//! common failures (`Unable to dial on URL: Connection refused`, exit 1).
//!
//! - `mod.rs`: the command line, and `run`.
//! - `config`: checks the flags the way nngcat does and turns them into a [`config::Config`].
//! - `session`: opens the socket, listens and dials, and runs the send/receive loops.
//! - `format`: prints received messages (`--quoted`, `--hex`, …).
//!
//! Where nngcat 1.5.2 has a bug, `ferry cat` does what its manual says instead: `--pair`
//! is PAIR v1 (PAIR v0 with `--compat`), where nngcat ignores it and reports "No protocol
//! specified.". ZeroTier (`zt://`, `--zt-home`) is not offered, since ferry-sp has no such
//! transport.
//!
//! ferry's own additions print to standard error, so that standard output stays nngcat's:
//! with `-v`, each pipe added or removed (with the peer's address) and, at exit, the
//! socket's statistics; with `--stats-interval SECS`, the statistics every SECS seconds.

mod config;
mod format;
mod session;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, FromArgMatches};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

// The flags as clap sees them. nngcat's own rules (one protocol, one format, one data
// source, integer syntax, …) are checked in `config`, so that they fail with nngcat's
// messages and exit code. Numbers are taken as text for the same reason, and options that
// nngcat lets the last occurrence win are lists.
#[derive(clap::Args, Debug, Default)]
#[command(infer_long_args = true, after_help = AFTER_HELP)]
struct Flags {
    #[arg(long = "req0", action = ArgAction::Count, help_heading = "Protocol", help = "REQ v0 (or --req)")]
    req0: u8,
    #[arg(long = "rep0", action = ArgAction::Count, help_heading = "Protocol", help = "REP v0 (or --rep)")]
    rep0: u8,
    #[arg(long = "pub0", action = ArgAction::Count, help_heading = "Protocol", help = "PUB v0 (or --pub)")]
    pub0: u8,
    #[arg(long = "sub0", visible_alias = "sub", action = ArgAction::Count, help_heading = "Protocol", help = "SUB v0")]
    sub0: u8,
    #[arg(long = "push0", action = ArgAction::Count, help_heading = "Protocol", help = "PUSH v0 (or --push)")]
    push0: u8,
    #[arg(long = "pull0", action = ArgAction::Count, help_heading = "Protocol", help = "PULL v0 (or --pull)")]
    pull0: u8,
    #[arg(long = "surveyor0", action = ArgAction::Count, help_heading = "Protocol", help = "SURVEYOR v0 (or --surveyor)")]
    surveyor0: u8,
    #[arg(long = "respondent0", action = ArgAction::Count, help_heading = "Protocol", help = "RESPONDENT v0 (or --respondent)")]
    respondent0: u8,
    #[arg(long = "pair0", action = ArgAction::Count, help_heading = "Protocol", help = "PAIR v0")]
    pair0: u8,
    #[arg(long = "pair1", action = ArgAction::Count, help_heading = "Protocol", help = "PAIR v1")]
    pair1: u8,
    #[arg(long = "pair", action = ArgAction::Count, help_heading = "Protocol", help = "PAIR v1, or PAIR v0 with --compat")]
    pair: u8,
    #[arg(long = "bus0", action = ArgAction::Count, help_heading = "Protocol", help = "BUS v0 (or --bus)")]
    bus0: u8,

    #[arg(
        long,
        visible_alias = "connect",
        value_name = "URL",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Dial URL; without --async, fail if nobody listens"
    )]
    dial: Vec<String>,
    #[arg(
        long,
        visible_alias = "bind",
        value_name = "URL",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Listen at URL"
    )]
    listen: Vec<String>,
    #[arg(
        short = 'l',
        long = "connect-local",
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Dial tcp://127.0.0.1:PORT"
    )]
    connect_local: Vec<String>,
    #[arg(
        short = 'L',
        long = "bind-local",
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Listen at tcp://127.0.0.1:PORT"
    )]
    bind_local: Vec<String>,
    #[arg(
        short = 'x',
        long = "connect-ipc",
        value_name = "PATH",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Dial ipc:///PATH"
    )]
    connect_ipc: Vec<String>,
    #[arg(
        short = 'X',
        long = "bind-ipc",
        value_name = "PATH",
        allow_hyphen_values = true,
        help_heading = "Addresses",
        help = "Listen at ipc:///PATH"
    )]
    bind_ipc: Vec<String>,

    #[arg(
        long,
        value_name = "no|ascii|hex|msgpack|quoted|raw",
        allow_hyphen_values = true,
        help_heading = "Output format (default: print nothing)",
        help = "How to print received messages"
    )]
    format: Vec<String>,
    #[arg(short = 'A', long, action = ArgAction::Count, help_heading = "Output format (default: print nothing)", help = "Printable ASCII, other bytes as '.'")]
    ascii: u8,
    #[arg(short = 'Q', long, action = ArgAction::Count, help_heading = "Output format (default: print nothing)", help = "One C-quoted string per line")]
    quoted: u8,
    #[arg(long, action = ArgAction::Count, help_heading = "Output format (default: print nothing)", help = "One quoted string of \\xNN escapes per line")]
    hex: u8,
    #[arg(long, action = ArgAction::Count, help_heading = "Output format (default: print nothing)", help = "Each message as a MessagePack bin")]
    msgpack: u8,
    #[arg(long, action = ArgAction::Count, help_heading = "Output format (default: print nothing)", help = "The bytes as received")]
    raw: u8,

    #[arg(short = 'D', long, value_name = "DATA", value_parser = clap::value_parser!(OsString), allow_hyphen_values = true, help_heading = "Data to send", help = "Send DATA")]
    data: Vec<OsString>,
    #[arg(short = 'F', long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf), allow_hyphen_values = true, help_heading = "Data to send", help = "Send the contents of FILE; - is standard input")]
    file: Vec<PathBuf>,

    #[arg(long, value_name = "TOPIC", value_parser = clap::value_parser!(OsString), allow_hyphen_values = true, help = "SUB only: receive messages starting with TOPIC [default: all]")]
    subscribe: Vec<OsString>,
    #[arg(
        short = 'C',
        long,
        value_name = "NUM",
        allow_hyphen_values = true,
        help = "Stop after NUM messages (0: no limit)"
    )]
    count: Vec<String>,
    #[arg(
        short = 'd',
        long,
        value_name = "SECS",
        allow_hyphen_values = true,
        help = "Wait SECS seconds before the first send"
    )]
    delay: Vec<String>,
    #[arg(short = 'i', long, value_name = "SECS", allow_hyphen_values = true, help = "Send again every SECS seconds")]
    interval: Vec<String>,
    #[arg(
        long = "recv-timeout",
        value_name = "SECS",
        allow_hyphen_values = true,
        help = "Stop receiving after SECS seconds without a message"
    )]
    recv_timeout: Vec<String>,
    #[arg(
        long = "send-timeout",
        value_name = "SECS",
        allow_hyphen_values = true,
        help = "Fail a send that cannot complete in SECS seconds"
    )]
    send_timeout: Vec<String>,
    #[arg(
        short = 'Z',
        long = "recv-maxsz",
        value_name = "SIZE",
        allow_hyphen_values = true,
        help = "Drop the connection of a peer that sends a bigger message (0: 2^31-1)"
    )]
    recv_maxsz: Vec<String>,
    #[arg(long = "async", action = ArgAction::Count, help = "Dial in the background, retrying until connected")]
    nonblocking: u8,
    #[arg(long, action = ArgAction::Count, help = "nanocat compatibility: --async, and --pair is PAIR v0")]
    compat: u8,
    #[arg(
        short = 'v',
        long,
        action = ArgAction::Count,
        help = "Print the addresses dialed and listened at; on standard error, pipes added and removed and, at exit, statistics"
    )]
    verbose: u8,
    #[arg(short = 'q', long, action = ArgAction::Count, help = "Do not print them (the default)")]
    silent: u8,
    // Accepted and ignored, as nngcat 1.5.2 does.
    #[arg(long = "socket-name", value_name = "NAME", allow_hyphen_values = true, hide = true)]
    socket_name: Vec<String>,
    #[arg(short = 'V', long, action = ArgAction::Count, help = "Print the version and exit")]
    version: u8,
    #[arg(
        long = "stats-interval",
        value_name = "SECS",
        allow_hyphen_values = true,
        help = "Print the socket's statistics on standard error every SECS seconds (ferry only)"
    )]
    stats_interval: Vec<String>,

    #[arg(short = 'k', long, action = ArgAction::Count, help_heading = "TLS (tls+tcp://, wss://)", help = "Do not verify the listener's certificate (dialers)")]
    insecure: u8,
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf), allow_hyphen_values = true, help_heading = "TLS (tls+tcp://, wss://)", help = "Verify peers against the CA certificates in FILE")]
    cacert: Vec<PathBuf>,
    #[arg(short = 'E', long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf), allow_hyphen_values = true, help_heading = "TLS (tls+tcp://, wss://)", help = "Our certificate chain (and key, unless --key is given) from FILE")]
    cert: Vec<PathBuf>,
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf), allow_hyphen_values = true, help_heading = "TLS (tls+tcp://, wss://)", help = "The private key of --cert from FILE")]
    key: Vec<PathBuf>,
}

const AFTER_HELP: &str = "\
Examples:
  ferry cat --rep0 --listen tcp://127.0.0.1:5555 --data world --quoted
  ferry cat --req0 --dial tcp://127.0.0.1:5555 --data hello --quoted --recv-timeout 2
  ferry cat --sub0 --dial ipc:///tmp/t.ipc --subscribe tick --quoted --count 1
  ferry cat --pub0 --listen ipc:///tmp/t.ipc --data tick --interval 1 --count 3
  ferry cat --rep0 --listen tls+tcp://127.0.0.1:5556 --cert cert.pem --key key.pem --data hi
  ferry cat --req0 --dial tls+tcp://127.0.0.1:5556 --cacert ca.pem --data hello --quoted
  ferry cat --pull0 --listen ws://127.0.0.1:5557/sp --quoted -v --stats-interval 10";

/// Whether an address is dialed or listened at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Dial,
    Listen,
}

/// One address flag as given, in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddrArg {
    /// `--dial`/`--listen URL`.
    Url(Mode, String),
    /// `-l`/`-L PORT`: `tcp://127.0.0.1:PORT`.
    LocalPort(Mode, String),
    /// `-x`/`-X PATH`: `ipc:///PATH`.
    IpcPath(Mode, String),
}

/// The arguments of `ferry cat`: the flags, plus the order of the address flags and of
/// `-v`/`-q`, which clap's derive does not keep but nngcat's behaviour depends on.
#[derive(Debug, Default)]
pub(crate) struct CatArgs {
    /// Boxed: the flags are large, and `main` keeps the arguments of every subcommand in
    /// one enum.
    flags: Box<Flags>,
    /// Address flags sorted by their position on the command line.
    addrs: Vec<AddrArg>,
    /// Whether the last of `-v`/`-q` was `-v`.
    verbose: bool,
}

impl FromArgMatches for CatArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let flags = Box::new(Flags::from_arg_matches(m)?);
        let mut addrs: Vec<(usize, AddrArg)> = Vec::new();
        type Make = fn(String) -> AddrArg;
        let kinds: [(&str, Make); 6] = [
            ("dial", |v| AddrArg::Url(Mode::Dial, v)),
            ("listen", |v| AddrArg::Url(Mode::Listen, v)),
            ("connect_local", |v| AddrArg::LocalPort(Mode::Dial, v)),
            ("bind_local", |v| AddrArg::LocalPort(Mode::Listen, v)),
            ("connect_ipc", |v| AddrArg::IpcPath(Mode::Dial, v)),
            ("bind_ipc", |v| AddrArg::IpcPath(Mode::Listen, v)),
        ];
        for (id, make) in kinds {
            if let (Some(values), Some(indices)) = (m.get_many::<String>(id), m.indices_of(id)) {
                addrs.extend(indices.zip(values.cloned().map(make)));
            }
        }
        addrs.sort_by_key(|(i, _)| *i);
        // Count flags always have a (default) value; only those given on the command line count.
        let last = |id: &str| {
            (m.value_source(id) == Some(ValueSource::CommandLine))
                .then(|| m.indices_of(id).and_then(|i| i.max()))
                .flatten()
        };
        let verbose = match (last("verbose"), last("silent")) {
            (Some(v), Some(q)) => v > q,
            (v, _) => v.is_some(),
        };
        Ok(CatArgs { flags, addrs: addrs.into_iter().map(|(_, a)| a).collect(), verbose })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = CatArgs::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for CatArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Flags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Flags::augment_args_for_update(cmd)
    }
}

/// Runs `ferry cat`. nngcat's failures are printed as nngcat prints them (one line on
/// standard error) and end the program with exit code 1.
pub(crate) fn run(args: CatArgs) -> anyhow::Result<ExitCode> {
    if args.flags.version > 0 {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = config::Config::from_args(&args).and_then(|cfg| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| config::Fatal(format!("Cannot start the runtime: {e}")))?;
        rt.block_on(session::run(cfg))
    });
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(config::Fatal(msg)) => {
            eprintln!("{msg}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Cat(CatArgs),
    }

    fn parse(args: &[&str]) -> Result<CatArgs, clap::Error> {
        let argv = ["ferry", "cat"].iter().chain(args);
        Cli::try_parse_from(argv).map(|c| match c.cmd {
            Cmd::Cat(a) => a,
        })
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
        let _ = CatArgs::augment_args(clap::Command::new("cat"));
    }

    #[test]
    fn abbreviations_select_protocols() {
        let a = parse(&["--req", "--dial", "tcp://h:1"]).unwrap();
        assert_eq!(a.flags.req0, 1);
        for (flag, pick) in [
            ("--rep", (|f: &Flags| f.rep0) as fn(&Flags) -> u8),
            ("--pub", |f| f.pub0),
            ("--sub", |f| f.sub0),
            ("--push", |f| f.push0),
            ("--pull", |f| f.pull0),
            ("--surveyor", |f| f.surveyor0),
            ("--respondent", |f| f.respondent0),
            ("--bus", |f| f.bus0),
            ("--pair", |f| f.pair),
            ("--pair1", |f| f.pair1),
        ] {
            let a = parse(&[flag]).unwrap_or_else(|e| panic!("{flag}: {e}"));
            assert_eq!(pick(&a.flags), 1, "{flag}");
        }
        assert!(parse(&["--re"]).is_err(), "--re is ambiguous (req0, rep0, recv-*, respondent0)");
        assert!(parse(&["--pai"]).is_err());
    }

    #[test]
    fn addresses_keep_their_order() {
        let a = parse(&["--pull0", "-L", "5", "--connect", "tcp://a:1", "--bind=ipc://x", "-x", "p", "--dial", "d"])
            .unwrap();
        assert_eq!(
            a.addrs,
            vec![
                AddrArg::LocalPort(Mode::Listen, "5".into()),
                AddrArg::Url(Mode::Dial, "tcp://a:1".into()),
                AddrArg::Url(Mode::Listen, "ipc://x".into()),
                AddrArg::IpcPath(Mode::Dial, "p".into()),
                AddrArg::Url(Mode::Dial, "d".into()),
            ]
        );
    }

    #[test]
    fn last_of_verbose_and_silent_wins() {
        assert!(parse(&["-v"]).unwrap().verbose);
        assert!(!parse(&["-v", "-q"]).unwrap().verbose);
        assert!(parse(&["-q", "--verbose"]).unwrap().verbose);
        assert!(!parse(&[]).unwrap().verbose);
    }

    #[test]
    fn values_may_start_with_a_dash_and_repeat() {
        let a = parse(&["--data", "-x", "--count", "-1", "-C", "2", "-D-y"]).unwrap();
        assert_eq!(a.flags.data, vec![OsString::from("-x"), OsString::from("-y")]);
        assert_eq!(a.flags.count, vec!["-1".to_string(), "2".to_string()]);
        let a = parse(&["--req0", "--req0", "--hex", "--hex"]).unwrap();
        assert_eq!((a.flags.req0, a.flags.hex), (2, 2));
    }
}
