//! The socket side of `ferry cat`: open the socket, listen and dial in command-line order,
//! then run the loop nngcat runs for the protocol.
//!
//! | Protocol | Loop |
//! |---|---|
//! | SUB, PULL | receive and print (`--count` messages, or until `--recv-timeout`) |
//! | PUB, PUSH | send the data once, or `--count` times every `--interval`; then linger 200 ms |
//! | REQ, SURVEYOR | send, then print replies until none is left (REQ) or the survey ends |
//! | REP, RESPONDENT | with data: answer every request with it; without: only print |
//! | PAIR, BUS | with data: like REQ; without: like SUB |
//!
//! A receive that times out, or that has nothing left to wait for (a survey that ended, a
//! request already answered), ends the program with exit code 0, as in nngcat.
//!
//! With `-v` a task prints each pipe event on standard error as it comes, and the socket's
//! statistics are printed there at exit; `--stats-interval` prints them periodically too.

use super::config::{strerror, Config, Fatal};
use super::format::{write_message, Format};
use super::Mode;
use bytes::Bytes;
use ferry_sp::{
    Dialer, Error, EventRecvError, Listener, Pem, Protocol, SockOpt, Socket, SocketStats, TlsAuthMode, Url,
};
use std::io::Write;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

/// How long nngcat waits after its last send so that queued messages go out.
const LINGER: Duration = Duration::from_millis(200);

/// The text of nng's `nng_strerror` for the error.
pub(crate) fn nng_strerror(e: &Error) -> String {
    let s = match e {
        Error::Timeout => "Timed out",
        Error::Closed => "Object closed",
        Error::BadState => "Incorrect state",
        Error::NotSupported { .. } => "Not supported",
        Error::WouldBlock => "Try again",
        Error::ProtocolMismatch { .. } | Error::Protocol(_) => "Protocol error",
        Error::MessageTooLarge { .. } => "Message too large",
        Error::AddrInUse(_) => "Address in use",
        Error::ConnectionRefused(_) => "Connection refused",
        Error::ConnectionReset => "Connection reset",
        Error::Canceled => "Operation canceled",
        Error::BadUrl { .. } => "Address invalid",
        Error::InvalidOption { .. } => "Invalid argument",
        Error::NotFound => "Entry not found",
        Error::Busy => "Resource busy",
        Error::Io(io) => {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::NotFound => "Entry not found",
                K::PermissionDenied => "Permission denied",
                K::AddrInUse => "Address in use",
                K::AddrNotAvailable => "Address invalid",
                K::ConnectionRefused => "Connection refused",
                K::ConnectionReset => "Connection reset",
                K::ConnectionAborted => "Connection aborted",
                K::TimedOut => "Timed out",
                _ => return strerror(io),
            }
        }
        other => return other.to_string(),
    };
    s.to_string()
}

/// Why nng would refuse to create a dialer or listener for `url`: nng's message for it.
fn create_error(url: &str) -> Option<&'static str> {
    const SCHEMES: [&str; 15] = [
        "tcp", "tcp4", "tcp6", "ipc", "unix", "inproc", "ws", "ws4", "ws6", "wss", "wss4", "wss6", "tls+tcp",
        "tls+tcp4", "tls+tcp6",
    ];
    match url.split_once("://") {
        None => Some("Invalid argument"),
        Some((scheme, _)) if !SCHEMES.contains(&scheme) => Some("Not supported"),
        Some(_) => url.parse::<Url>().err().map(|_| "Address invalid"),
    }
}

/// The listener's address as nng reports it: over tcp and tls+tcp, the port the system
/// chose and an empty host for a wildcard (`tcp://:PORT`); otherwise (ws, wss, ipc,
/// inproc) the URL as given, port 0 included.
fn listen_url(given: &str, listener: &Listener) -> String {
    match listener.url() {
        Url::Tcp { host: None, port, .. } | Url::TlsTcp { host: None, port, .. } => {
            let scheme = given.split_once("://").map_or("tcp", |(s, _)| s);
            format!("{scheme}://:{port}")
        }
        Url::Tcp { .. } | Url::TlsTcp { .. } => listener.url().to_string(),
        _ => given.to_string(),
    }
}

/// Prints received messages and `-v` lines on standard output, flushing each.
struct Printer {
    format: Format,
    out: std::io::Stdout,
}

impl Printer {
    fn write(&mut self, f: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>) -> Result<(), Fatal> {
        let mut out = self.out.lock();
        f(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| Fatal(format!("Cannot write to standard output: {}", strerror(&e))))
    }

    fn message(&mut self, body: &[u8]) -> Result<(), Fatal> {
        let format = self.format;
        if format == Format::No {
            return Ok(());
        }
        self.write(|out| write_message(out, format, body))
    }

    fn line(&mut self, text: &str) -> Result<(), Fatal> {
        self.write(|out| writeln!(out, "{text}"))
    }
}

/// Dialers and listeners, kept until the program ends.
#[derive(Default)]
struct Endpoints {
    _dialers: Vec<Dialer>,
    _listeners: Vec<Listener>,
}

async fn start_endpoints(sock: &Socket, cfg: &Config, printer: &mut Printer) -> Result<Endpoints, Fatal> {
    let mut eps = Endpoints::default();
    for (mode, url) in &cfg.addrs {
        let kind = if *mode == Mode::Dial { "dialer" } else { "listener" };
        if let Some(why) = create_error(url) {
            return Err(Fatal(format!("Unable to create {kind} for {url}: {why}")));
        }
        match mode {
            Mode::Dial => {
                let dialed = if cfg.nonblocking { sock.dial_in_background(url).await } else { sock.dial(url).await };
                let dialer = dialed.map_err(|e| {
                    let why = match e {
                        // Parsed above, so this is a name that does not resolve and the like.
                        Error::BadUrl { .. } => "Address invalid".to_string(),
                        e => nng_strerror(&e),
                    };
                    Fatal(format!("Unable to dial on {url}: {why}"))
                })?;
                if cfg.verbose {
                    printer.line(&format!("Connected to: {url}"))?;
                }
                eps._dialers.push(dialer);
            }
            Mode::Listen => {
                let listener = sock
                    .listen(url)
                    .await
                    .map_err(|e| Fatal(format!("Unable to listen on {url}: {}", nng_strerror(&e))))?;
                if cfg.verbose {
                    printer.line(&format!("Listening at: {}", listen_url(url, &listener)))?;
                }
                eps._listeners.push(listener);
            }
        }
    }
    Ok(eps)
}

fn set(sock: &Socket, opt: SockOpt, what: &str) -> Result<(), Fatal> {
    sock.set(opt).map_err(|e| Fatal(format!("{what}: {}", nng_strerror(&e))))
}

/// Runs `ferry cat` with a checked configuration.
pub(crate) async fn run(cfg: Config) -> Result<(), Fatal> {
    let sock = Socket::new(cfg.protocol).map_err(|e| Fatal(format!("Unable to open socket: {}", nng_strerror(&e))))?;
    for topic in &cfg.topics {
        sock.set(SockOpt::Subscribe(Bytes::copy_from_slice(topic))).map_err(|e| {
            Fatal(format!("Unable to subscribe to topic {}: {}", String::from_utf8_lossy(topic), nng_strerror(&e)))
        })?;
    }
    if let Some(t) = cfg.send_timeout {
        set(&sock, SockOpt::SendTimeout(Some(t)), "Unable to set send timeout")?;
    }
    if let Some(t) = cfg.recv_timeout {
        set(&sock, SockOpt::RecvTimeout(Some(t)), "Unable to set receive timeout")?;
    }
    // Without -Z, NNG 1.5.2's default: no limit.
    set(&sock, SockOpt::RecvSizeMax(cfg.recv_maxsz.unwrap_or(0)), "Unable to set max receive size")?;
    configure_tls(&sock, &cfg)?;

    let report = Report::start(&sock, &cfg);
    let mut printer = Printer { format: cfg.format, out: std::io::stdout() };
    let outcome = async {
        let _endpoints = start_endpoints(&sock, &cfg, &mut printer).await?;
        match (cfg.protocol, &cfg.data) {
            (Protocol::Sub | Protocol::Pull, _) => recv_loop(&sock, &cfg, &mut printer).await,
            (Protocol::Rep | Protocol::Respondent, None) => recv_loop(&sock, &cfg, &mut printer).await,
            (Protocol::Rep | Protocol::Respondent, Some(data)) => reply_loop(&sock, &cfg, data, &mut printer).await,
            (Protocol::Pub | Protocol::Push, Some(data)) => send_loop(&sock, &cfg, data).await,
            (Protocol::Bus | Protocol::Pair0 | Protocol::Pair1, None) => recv_loop(&sock, &cfg, &mut printer).await,
            (_, Some(data)) => send_recv(&sock, &cfg, data, &mut printer).await,
            (_, None) => Err(Fatal::new("No data to send (specify with --data or --file)")),
        }
    }
    .await;
    report.finish(&sock).await;
    outcome
}

/// nngcat's `configtls`, once for the socket: its TLS settings apply to every tls+tcp://
/// and wss:// listener and dialer, and nothing else reads them.
fn configure_tls(sock: &Socket, cfg: &Config) -> Result<(), Fatal> {
    const WHAT: &str = "Unable to configure TLS";
    let tls = &cfg.tls;
    if tls.insecure {
        set(sock, SockOpt::TlsAuthMode(TlsAuthMode::None), WHAT)?;
    }
    if let Some(cert) = &tls.cert {
        let key = tls.key.as_ref().unwrap_or(cert);
        let pem = |b: &Vec<u8>| Pem::Bytes(Bytes::copy_from_slice(b));
        set(sock, SockOpt::TlsCertKey { cert: pem(cert), key: pem(key) }, WHAT)?;
    }
    if let Some(ca) = &tls.cacert {
        set(sock, SockOpt::TlsCa(Pem::Bytes(Bytes::copy_from_slice(ca))), WHAT)?;
    }
    Ok(())
}

/// Prints a statistics snapshot on standard error: a line for the socket, one per pipe.
fn print_stats(stats: &SocketStats) {
    let mut err = std::io::stderr().lock();
    // Standard error going away must not end the program: these lines are only a report.
    let _ = writeln!(err, "stats: {stats}");
    for pipe in &stats.pipes {
        let _ = writeln!(err, "stats: {pipe}");
    }
}

/// What `-v` and `--stats-interval` print on standard error while the command runs.
struct Report {
    /// Prints pipe events as they come (`-v`).
    events: Option<JoinHandle<()>>,
    /// Prints the statistics every `--stats-interval`.
    periodic: Option<JoinHandle<()>>,
    verbose: bool,
}

impl Report {
    /// Starts reporting; before any address is used, so that no pipe event is missed.
    fn start(sock: &Socket, cfg: &Config) -> Report {
        let events = cfg.verbose.then(|| {
            let mut events = sock.pipe_events();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(event) => eprintln!("{event}"),
                        Err(EventRecvError::Lagged(n)) => eprintln!("missed {n} pipe events"),
                        Err(_) => break,
                    }
                }
            })
        });
        let periodic = cfg.stats_interval.map(|every| {
            let sock = sock.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    print_stats(&sock.stats());
                }
            })
        });
        Report { events, periodic, verbose: cfg.verbose }
    }

    /// At exit: the final statistics (with the pipes still up), then the socket closes and
    /// the last events (their removal) are printed.
    async fn finish(self, sock: &Socket) {
        if let Some(periodic) = self.periodic {
            periodic.abort();
        }
        if self.verbose {
            print_stats(&sock.stats());
        }
        sock.close();
        if let Some(events) = self.events {
            // Every event is already queued once the socket is closed; the bound is only a
            // guard.
            let _ = tokio::time::timeout(Duration::from_secs(1), events).await;
        }
    }
}

/// Receives and prints until `--count` messages, a timeout, or the end of a survey.
async fn recv_loop(sock: &Socket, cfg: &Config, printer: &mut Printer) -> Result<(), Fatal> {
    let mut iters = 0u32;
    while cfg.count == 0 || iters < cfg.count {
        iters += 1;
        match sock.recv().await {
            Ok(msg) => printer.message(&msg.body)?,
            Err(Error::Timeout | Error::BadState) => return Ok(()),
            Err(e) => return Err(Fatal(format!("Receive error: {}", nng_strerror(&e)))),
        }
    }
    Ok(())
}

/// Sends one copy of `data`, with nngcat's error text on failure.
async fn send(sock: &Socket, data: &Bytes) -> Result<(), Fatal> {
    sock.send(data.clone()).await.map_err(|e| Fatal(format!("Send error: {}", nng_strerror(&e))))
}

/// REP/RESPONDENT with data: print each request and answer it with the data.
async fn reply_loop(sock: &Socket, cfg: &Config, data: &[u8], printer: &mut Printer) -> Result<(), Fatal> {
    let data = Bytes::copy_from_slice(data);
    let mut iters = 0u32;
    loop {
        let msg = sock.recv().await.map_err(|e| Fatal(format!("Receive error: {}", nng_strerror(&e))))?;
        printer.message(&msg.body)?;
        send(sock, &data).await?;
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            break;
        }
    }
    sleep(LINGER).await;
    Ok(())
}

/// Waits out what is left of `--interval` after a round that began at `start`.
async fn pace(cfg: &Config, start: Instant) {
    if let Some(interval) = cfg.interval {
        if let Some(rest) = interval.checked_sub(start.elapsed()) {
            sleep(rest).await;
        }
    }
}

/// PUB/PUSH: send the data once, or `--count` times, every `--interval`.
async fn send_loop(sock: &Socket, cfg: &Config, data: &[u8]) -> Result<(), Fatal> {
    let data = Bytes::copy_from_slice(data);
    sleep(cfg.delay).await;
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        send(sock, &data).await?;
        iters += 1;
        let once = cfg.interval.is_none() && cfg.count == 0;
        if once || (cfg.count > 0 && iters >= cfg.count) {
            break;
        }
        pace(cfg, start).await;
    }
    sleep(LINGER).await;
    Ok(())
}

/// REQ, SURVEYOR, and PAIR/BUS with data: send, then print what comes back until nothing
/// is left to receive or the interval is up; `--count` rounds.
async fn send_recv(sock: &Socket, cfg: &Config, data: &[u8], printer: &mut Printer) -> Result<(), Fatal> {
    let data = Bytes::copy_from_slice(data);
    sleep(cfg.delay).await;
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        send(sock, &data).await?;
        if cfg.interval.is_none() && cfg.count == 0 {
            return recv_loop(sock, cfg, printer).await;
        }
        loop {
            // Receive until the next send is due, but no longer than --recv-timeout.
            let due = cfg.interval.map(|i| i.saturating_sub(start.elapsed()));
            let timeout = match (due, cfg.recv_timeout) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            set(sock, SockOpt::RecvTimeout(timeout), "Cannot set recv timeout")?;
            match sock.recv().await {
                Ok(msg) => printer.message(&msg.body)?,
                Err(Error::Timeout | Error::BadState) => break,
                Err(e) => return Err(Fatal(format!("Cannot receive: {}", nng_strerror(&e)))),
            }
        }
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            return Ok(());
        }
        pace(cfg, start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_errors_are_nngs() {
        assert_eq!(create_error("foo"), Some("Invalid argument"));
        assert_eq!(create_error("zt://1234.5678:1"), Some("Not supported"));
        assert_eq!(create_error("ws://127.0.0.1:1/x"), None);
        assert_eq!(create_error("wss://127.0.0.1:1/x"), None);
        assert_eq!(create_error("tls+tcp://127.0.0.1:1"), None);
        assert_eq!(create_error("tcp://127.0.0.1:99999"), Some("Address invalid"));
        assert_eq!(create_error("tcp://nohost"), Some("Address invalid"));
        assert_eq!(create_error("tcp://127.0.0.1:5"), None);
        assert_eq!(create_error("ipc:///tmp/x.ipc"), None);
        assert_eq!(create_error("inproc://x"), None);
    }

    #[test]
    fn errors_read_like_nng_strerror() {
        assert_eq!(nng_strerror(&Error::ConnectionRefused("x".into())), "Connection refused");
        assert_eq!(nng_strerror(&Error::AddrInUse("x".into())), "Address in use");
        assert_eq!(nng_strerror(&Error::Timeout), "Timed out");
        assert_eq!(nng_strerror(&Error::BadState), "Incorrect state");
        let io = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        assert_eq!(nng_strerror(&Error::Io(io)), "Address invalid");
        let io = std::io::Error::from_raw_os_error(21);
        assert_eq!(nng_strerror(&Error::Io(io)), "Is a directory");
    }

    #[tokio::test]
    async fn listen_url_shows_the_chosen_port() {
        let sock = Socket::new(Protocol::Pull).unwrap();
        let l = sock.listen("tcp://127.0.0.1:0").await.unwrap();
        let port = l.port().unwrap();
        assert_eq!(listen_url("tcp://127.0.0.1:0", &l), format!("tcp://127.0.0.1:{port}"));
        let l = sock.listen("inproc://ferry-cat-listen-url").await.unwrap();
        assert_eq!(listen_url("inproc://ferry-cat-listen-url", &l), "inproc://ferry-cat-listen-url");
        // tls+tcp as tcp; ws keeps the URL as given, port 0 included, as nng does.
        let certs = ferry_testkit::TestCerts::new();
        let pem = |s: &str| Pem::Bytes(Bytes::copy_from_slice(s.as_bytes()));
        sock.set(SockOpt::TlsCertKey { cert: pem(&certs.cert_pem), key: pem(&certs.key_pem) }).unwrap();
        let l = sock.listen("tls+tcp://:0").await.unwrap();
        assert_eq!(listen_url("tls+tcp://:0", &l), format!("tls+tcp://:{}", l.port().unwrap()));
        let l = sock.listen("ws://127.0.0.1:0/sp").await.unwrap();
        assert_eq!(listen_url("ws://127.0.0.1:0/sp", &l), "ws://127.0.0.1:0/sp");
    }
}
