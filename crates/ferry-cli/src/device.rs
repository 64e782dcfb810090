//! `ferry device`: a forwarder between two raw SP sockets ([`ferry_sp::device`]), e.g. a
//! broker-less load balancer between REQ clients and REP workers. The protocol flag names
//! the front socket, the one clients talk to; the back socket is its peer. Both listen
//! unless told to dial, and run until the process is stopped.

use anyhow::{bail, Context as _};
use ferry_sp::{Protocol, Socket};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(infer_long_args = true, after_help = AFTER_HELP)]
pub(crate) struct DeviceArgs {
    #[command(flatten)]
    protocol: ProtocolFlag,
    /// Address of the front socket (the named protocol, facing the clients)
    #[arg(value_name = "FRONT")]
    front: String,
    /// Address of the back socket (its peer, facing the servers); BUS and PAIR may leave it
    /// out to reflect everything back through the front socket
    #[arg(value_name = "BACK")]
    back: Option<String>,
    /// Dial FRONT (retrying in the background) instead of listening at it
    #[arg(long)]
    dial_front: bool,
    /// Dial BACK (retrying in the background) instead of listening at it
    #[arg(long)]
    dial_back: bool,
    /// Print the addresses listened at and dialed
    #[arg(short, long)]
    verbose: bool,
}

const FRONT: &str = "Protocol of the front socket";

/// Exactly one protocol, with `ferry cat`'s names.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct ProtocolFlag {
    #[arg(long = "rep0", help_heading = FRONT, help = "REP: REQ clients → device → REP workers")]
    rep0: bool,
    #[arg(long = "req0", help_heading = FRONT, help = "REQ: as --rep0, with FRONT and BACK swapped")]
    req0: bool,
    #[arg(long = "respondent0", help_heading = FRONT, help = "RESPONDENT: SURVEYORs → device → RESPONDENTs")]
    respondent0: bool,
    #[arg(long = "surveyor0", help_heading = FRONT, help = "SURVEYOR: as --respondent0, swapped")]
    surveyor0: bool,
    #[arg(long = "sub0", help_heading = FRONT, help = "SUB: PUBs → device → SUBs (one way)")]
    sub0: bool,
    #[arg(long = "pub0", help_heading = FRONT, help = "PUB: as --sub0, swapped")]
    pub0: bool,
    #[arg(long = "pull0", help_heading = FRONT, help = "PULL: PUSHers → device → PULLers (one way)")]
    pull0: bool,
    #[arg(long = "push0", help_heading = FRONT, help = "PUSH: as --pull0, swapped")]
    push0: bool,
    #[arg(long = "bus0", help_heading = FRONT, help = "BUS on both sides")]
    bus0: bool,
    #[arg(long = "pair0", help_heading = FRONT, help = "PAIR v0 on both sides")]
    pair0: bool,
    #[arg(long = "pair1", help_heading = FRONT, help = "PAIR v1 on both sides")]
    pair1: bool,
}

impl ProtocolFlag {
    /// `(front, back)`.
    fn protocols(&self) -> (Protocol, Protocol) {
        use Protocol::*;
        let pairs = [
            (self.rep0, (Rep, Req)),
            (self.req0, (Req, Rep)),
            (self.respondent0, (Respondent, Surveyor)),
            (self.surveyor0, (Surveyor, Respondent)),
            (self.sub0, (Sub, Pub)),
            (self.pub0, (Pub, Sub)),
            (self.pull0, (Pull, Push)),
            (self.push0, (Push, Pull)),
            (self.bus0, (Bus, Bus)),
            (self.pair0, (Pair0, Pair0)),
        ];
        // clap requires exactly one flag, so the last one is `--pair1`.
        pairs.into_iter().find(|(set, _)| *set).map_or((Pair1, Pair1), |(_, p)| p)
    }
}

const AFTER_HELP: &str = "\
The front socket speaks the named protocol, raw; the back socket speaks its peer, raw.
Messages go both ways with their headers, so replies find their way back; PUB/SUB and
PUSH/PULL devices forward one way. Both ends listen unless --dial-front/--dial-back.

Broker-less load balancer: REQ clients -> device -> REP workers. Each command in its own
terminal; clients and workers dial the device and may come and go:
  ferry device --rep0 tcp://127.0.0.1:5555 tcp://127.0.0.1:5556
  ferry cat --rep0 --dial tcp://127.0.0.1:5556 --data 'worker 1'
  nngcat --rep0 --dial tcp://127.0.0.1:5556 --data 'worker 2'
  ferry cat --req0 --dial tcp://127.0.0.1:5555 --data hello --quoted
  nngcat --req0 --dial tcp://127.0.0.1:5555 --data hello --quoted
Each request goes to one worker, round-robin: repeat the last two lines to see both answer.

More:
  ferry device --sub0 --dial-front tcp://pubhost:7000 tcp://0.0.0.0:7001   # fan-out relay
  ferry device --bus0 tcp://127.0.0.1:6000                                  # bus hub (reflector)";

/// Runs `ferry device` until it is stopped (Ctrl-C) or a socket fails.
pub(crate) fn run(args: DeviceArgs) -> anyhow::Result<ExitCode> {
    let (front_proto, back_proto) = args.protocol.protocols();
    let reflector = args.back.is_none();
    if reflector && front_proto != back_proto {
        bail!(
            "BACK is required: a {front_proto} device joins raw {front_proto} at the front with raw {back_proto} at the back \
             (only BUS and PAIR reflect through one socket)"
        );
    }
    if reflector && args.dial_back {
        bail!("--dial-back needs a BACK address");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async {
        let front = open(front_proto, "front", &args.front, args.dial_front, args.verbose).await?;
        let back = match &args.back {
            Some(url) => open(back_proto, "back", url, args.dial_back, args.verbose).await?,
            None => front.clone(),
        };
        tokio::select! {
            r = ferry_sp::device(&front, &back) => r.context("device stopped"),
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C"),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Opens a raw socket and listens at or dials `url`.
async fn open(protocol: Protocol, side: &str, url: &str, dial: bool, verbose: bool) -> anyhow::Result<Socket> {
    let s = Socket::new_raw(protocol)?;
    if dial {
        s.dial_in_background(url).await.with_context(|| format!("cannot dial {url} ({side})"))?;
        if verbose {
            eprintln!("{side}: raw {protocol} dialing {url}");
        }
    } else {
        let listener = s.listen(url).await.with_context(|| format!("cannot listen at {url} ({side})"))?;
        if verbose {
            eprintln!("{side}: raw {protocol} listening at {}", listener.url());
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Device(DeviceArgs),
    }

    fn parse(args: &[&str]) -> Result<DeviceArgs, clap::Error> {
        Cli::try_parse_from(["ferry", "device"].iter().chain(args)).map(|c| match c.cmd {
            Cmd::Device(a) => a,
        })
    }

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_flag_names_the_front_and_the_back_is_its_peer() {
        let a = parse(&["--rep0", "tcp://a:1", "tcp://b:2"]).unwrap();
        assert_eq!(a.protocol.protocols(), (Protocol::Rep, Protocol::Req));
        assert_eq!((a.front.as_str(), a.back.as_deref()), ("tcp://a:1", Some("tcp://b:2")));
        let a = parse(&["--sub", "--dial-front", "tcp://a:1", "tcp://b:2"]).unwrap();
        assert_eq!(a.protocol.protocols(), (Protocol::Sub, Protocol::Pub));
        assert!(a.dial_front && !a.dial_back);
        assert_eq!(parse(&["--pair1", "tcp://a:1"]).unwrap().protocol.protocols(), (Protocol::Pair1, Protocol::Pair1));
    }

    #[test]
    fn exactly_one_protocol() {
        assert!(parse(&["tcp://a:1", "tcp://b:2"]).is_err());
        assert!(parse(&["--rep0", "--bus0", "tcp://a:1"]).is_err());
    }

    #[test]
    fn only_bus_and_pair_reflect() {
        let err = run(parse(&["--rep0", "tcp://127.0.0.1:1"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("BACK is required"), "{err}");
    }
}
