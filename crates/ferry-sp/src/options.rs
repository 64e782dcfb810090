//! Socket options: typed in the API ([`SockOpt`], [`Options`]), with NNG's option names
//! and defaults (sp-wire.md §7). String names appear only in [`SockOpt::parse`], the one
//! table used at the command-line edge.

use crate::error::{Error, Result};
use bytes::Bytes;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The values of the generic options of a socket, as read back by
/// [`Socket::options`](crate::Socket::options).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// `recv-timeout`: how long a receive waits; `None` waits forever (NNG: -1).
    pub recv_timeout: Option<Duration>,
    /// `send-timeout`: how long a send waits; `None` waits forever.
    pub send_timeout: Option<Duration>,
    /// `recv-size-max`: the largest payload accepted from a peer; 0 is unlimited. A larger
    /// frame closes that pipe. Default 1 GiB, as in NNG 2.
    pub recv_size_max: usize,
    /// `send-buffer`: messages queued per send queue (protocol default).
    pub send_buffer: usize,
    /// `recv-buffer`: messages queued for receive (protocol default).
    pub recv_buffer: usize,
    /// `reconnect-time-min`: first redial delay (jittered), and the value it resets to after
    /// a successful connection.
    pub reconnect_time_min: Duration,
    /// `reconnect-time-max`: the delay doubles up to this; zero means no growth.
    pub reconnect_time_max: Duration,
    /// `ttl-max`: the most hops a REQ/REP, SURVEYOR/RESPONDENT or PAIR v1 message may have
    /// taken (1..=15, default 8).
    pub ttl_max: u8,
    /// `req:resend-time`: when an unanswered request is sent again; `None` disables resend.
    pub req_resend_time: Option<Duration>,
    /// `surveyor:survey-time`: how long a survey collects responses.
    pub survey_time: Duration,
    /// The TLS settings of `tls+tcp://` and `wss://` listeners and dialers.
    pub tls: TlsOptions,
    /// `raw`: whether the socket was opened with [`Socket::new_raw`](crate::Socket::new_raw).
    /// Read-only: fixed when the socket is opened.
    pub raw: bool,
}

/// TLS settings, read whenever a `tls+tcp://` or `wss://` listener binds or a dialer
/// connects. A listener needs [`cert`](Self::cert) and [`key`](Self::key); a dialer needs
/// [`ca`](Self::ca) unless it skips verification.
///
/// ```
/// # fn main() -> ferry_sp::Result<()> {
/// use ferry_sp::{Pem, Protocol, SockOpt, TlsAuthMode};
/// let req = ferry_sp::blocking::Socket::new(Protocol::Req)?;
/// req.set(SockOpt::TlsCa(Pem::File("ca.pem".into())))?;
/// // Or, in tests only, trust whatever the listener shows (nngcat's --insecure):
/// req.set(SockOpt::TlsAuthMode(TlsAuthMode::None))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Our certificate chain, leaf first (`tls-cert-key-file` holds it with the key).
    pub cert: Option<Pem>,
    /// The private key of [`cert`](Self::cert): PKCS#8, PKCS#1 or SEC1.
    pub key: Option<Pem>,
    /// `tls-ca-file`: the certificates a peer's chain must lead to.
    pub ca: Option<Pem>,
    /// `tls-server-name`: the name a dialer expects in the listener's certificate (and sends
    /// as SNI); by default the URL's host.
    pub server_name: Option<String>,
    /// `tls-authmode`; `None` is each end's default: a dialer requires a valid listener
    /// certificate, a listener does not ask for one.
    pub auth_mode: Option<TlsAuthMode>,
}

#[cfg(feature = "transport-tls")]
impl TlsOptions {
    /// The rustls client configuration a `tls+tcp://` or `wss://` dialer makes from these
    /// options (ring provider; the CA, or any certificate with [`TlsAuthMode::None`]), for
    /// other TLS clients in the same program, so that they check certificates the same way.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming `tls-ca-file` or `tls-cert-key-file` when a file is
    /// missing, unreadable or holds no usable certificate or key.
    pub fn client_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        crate::transport::tls::client_config(self)
    }
}

/// PEM text, from a file (read at every bind or connect) or from memory.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file holding PEM sections.
    File(PathBuf),
    /// PEM sections in memory.
    Bytes(Bytes),
}

impl Pem {
    /// The PEM text.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read.
    pub fn read(&self) -> Result<Bytes> {
        match self {
            Pem::File(path) => Ok(Bytes::from(std::fs::read(path)?)),
            Pem::Bytes(b) => Ok(b.clone()),
        }
    }
}

impl From<PathBuf> for Pem {
    fn from(path: PathBuf) -> Pem {
        Pem::File(path)
    }
}

impl From<&str> for Pem {
    /// PEM text itself, not a file name.
    fn from(text: &str) -> Pem {
        Pem::Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<String> for Pem {
    /// PEM text itself, not a file name.
    fn from(text: String) -> Pem {
        Pem::Bytes(Bytes::from(text))
    }
}

/// Private keys travel in `Pem::Bytes`: never print them.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
        }
    }
}

/// `tls-authmode`: whether the other end must show a certificate that chains to
/// [`TlsOptions::ca`]. NNG's values and numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAuthMode {
    /// 0: no verification. On a dialer this accepts any listener certificate (nngcat's
    /// `--insecure`), which is for tests only; a listener does not ask for one.
    None,
    /// 1: a listener asks for a client certificate and checks one that is shown, but admits
    /// clients without one; a dialer connects whatever the listener shows.
    Optional,
    /// 2: the other end must show a valid certificate.
    Required,
}

impl Options {
    pub(crate) fn with_buffers(send_buffer: usize, recv_buffer: usize) -> Options {
        Options {
            recv_timeout: None,
            send_timeout: None,
            recv_size_max: 1 << 30,
            send_buffer,
            recv_buffer,
            // NNG 2's dialer defaults. NNG 1.x's 1 s with no growth retries at a fixed rate;
            // the 2.x values back off and were chosen to stop reconnect storms (nng#1964).
            reconnect_time_min: Duration::from_millis(10),
            reconnect_time_max: Duration::from_secs(1),
            ttl_max: 8,
            req_resend_time: Some(Duration::from_secs(60)),
            survey_time: Duration::from_secs(1),
            tls: TlsOptions::default(),
            raw: false,
        }
    }
}

/// One option to set with [`Socket::set`](crate::Socket::set).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
/// use ferry_sp::{Protocol, SockOpt, Socket};
/// use std::time::Duration;
/// let sub = Socket::new(Protocol::Sub)?;
/// sub.set(SockOpt::Subscribe("weather.".into()))?;
/// sub.set(SockOpt::RecvTimeout(Some(Duration::from_secs(2))))?;
/// assert_eq!(sub.options().recv_timeout, Some(Duration::from_secs(2)));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SockOpt {
    /// `recv-timeout`
    RecvTimeout(Option<Duration>),
    /// `send-timeout`
    SendTimeout(Option<Duration>),
    /// `recv-size-max` (bytes, 0 = unlimited)
    RecvSizeMax(usize),
    /// `send-buffer` (messages, 0..=8192)
    SendBuffer(usize),
    /// `recv-buffer` (messages, 0..=8192)
    RecvBuffer(usize),
    /// `reconnect-time-min`
    ReconnectTimeMin(Duration),
    /// `reconnect-time-max` (zero: no growth)
    ReconnectTimeMax(Duration),
    /// `ttl-max` (1..=15)
    TtlMax(u8),
    /// `req:resend-time` (`None` disables resend)
    ReqResendTime(Option<Duration>),
    /// `surveyor:survey-time`
    SurveyTime(Duration),
    /// `sub:subscribe`: deliver messages whose body starts with these bytes.
    Subscribe(Bytes),
    /// `sub:unsubscribe`: remove a subscription; [`Error::NotFound`] if there was none.
    Unsubscribe(Bytes),
    /// `tls-cert-key-file`: our certificate chain and its private key. NNG reads both from
    /// one file; here they may also come from two (nngcat's `--cert` and `--key`).
    TlsCertKey {
        /// The certificate chain, leaf first.
        cert: Pem,
        /// The private key.
        key: Pem,
    },
    /// `tls-ca-file`: the certificates a peer's chain must lead to.
    TlsCa(Pem),
    /// `tls-server-name`: the name a dialer checks the listener's certificate against.
    TlsServerName(String),
    /// `tls-authmode`: see [`TlsAuthMode`].
    TlsAuthMode(TlsAuthMode),
    /// `ferry:pub-block-timeout`, ferry's own (NNG has no such option), PUB only: how long
    /// a send waits for room when a subscriber's queue is full before it drops that queue's
    /// oldest message (counted as [`DropReason::QueueFull`](crate::DropReason)). The send
    /// never fails for it. `None`, the default, never waits, as in NNG.
    PubBlockTimeout(Option<Duration>),
}

impl SockOpt {
    /// The NNG name of the option.
    pub fn name(&self) -> &'static str {
        match self {
            SockOpt::RecvTimeout(_) => "recv-timeout",
            SockOpt::SendTimeout(_) => "send-timeout",
            SockOpt::RecvSizeMax(_) => "recv-size-max",
            SockOpt::SendBuffer(_) => "send-buffer",
            SockOpt::RecvBuffer(_) => "recv-buffer",
            SockOpt::ReconnectTimeMin(_) => "reconnect-time-min",
            SockOpt::ReconnectTimeMax(_) => "reconnect-time-max",
            SockOpt::TtlMax(_) => "ttl-max",
            SockOpt::ReqResendTime(_) => "req:resend-time",
            SockOpt::SurveyTime(_) => "surveyor:survey-time",
            SockOpt::Subscribe(_) => "sub:subscribe",
            SockOpt::Unsubscribe(_) => "sub:unsubscribe",
            SockOpt::TlsCertKey { .. } => "tls-cert-key-file",
            SockOpt::TlsCa(_) => "tls-ca-file",
            SockOpt::TlsServerName(_) => "tls-server-name",
            SockOpt::TlsAuthMode(_) => "tls-authmode",
            SockOpt::PubBlockTimeout(_) => "ferry:pub-block-timeout",
        }
    }

    /// Builds an option from its NNG name and a textual value: durations in milliseconds
    /// (-1 for infinite where NNG allows it), sizes as integers, topics as text, TLS files as
    /// paths, `tls-authmode` as `none`, `optional`, `required` or NNG's 0, 1, 2.
    ///
    /// ```
    /// use ferry_sp::{SockOpt, TlsAuthMode};
    /// use std::time::Duration;
    /// assert_eq!(SockOpt::parse("recv-timeout", "250").unwrap(),
    ///            SockOpt::RecvTimeout(Some(Duration::from_millis(250))));
    /// assert!(SockOpt::parse("ttl-max", "99").is_err());
    /// assert_eq!(SockOpt::parse("tls-authmode", "none").unwrap(),
    ///            SockOpt::TlsAuthMode(TlsAuthMode::None));
    /// assert_eq!(SockOpt::parse("ferry:pub-block-timeout", "500").unwrap(),
    ///            SockOpt::PubBlockTimeout(Some(Duration::from_millis(500))));
    /// ```
    pub fn parse(name: &str, value: &str) -> Result<SockOpt> {
        let invalid = |name: &'static str, reason: &str| Error::InvalidOption { name, reason: reason.to_string() };
        let ms = |n: &'static str| -> Result<Option<Duration>> {
            let v: i64 = value.trim().parse().map_err(|_| invalid(n, "expected milliseconds"))?;
            match v {
                -1 => Ok(None),
                v if v >= 0 => Ok(Some(Duration::from_millis(v as u64))),
                _ => Err(invalid(n, "expected milliseconds or -1")),
            }
        };
        let finite = |n: &'static str| ms(n)?.ok_or_else(|| invalid(n, "must be finite"));
        let size = |n: &'static str| -> Result<usize> {
            value.trim().parse().map_err(|_| invalid(n, "expected a non-negative integer"))
        };
        let opt = match name {
            "recv-timeout" => SockOpt::RecvTimeout(ms("recv-timeout")?),
            "send-timeout" => SockOpt::SendTimeout(ms("send-timeout")?),
            "recv-size-max" => SockOpt::RecvSizeMax(size("recv-size-max")?),
            "send-buffer" => SockOpt::SendBuffer(size("send-buffer")?),
            "recv-buffer" => SockOpt::RecvBuffer(size("recv-buffer")?),
            "reconnect-time-min" => SockOpt::ReconnectTimeMin(finite("reconnect-time-min")?),
            "reconnect-time-max" => SockOpt::ReconnectTimeMax(finite("reconnect-time-max")?),
            "ttl-max" => SockOpt::TtlMax(size("ttl-max")?.try_into().map_err(|_| invalid("ttl-max", "1..=15"))?),
            "req:resend-time" => SockOpt::ReqResendTime(ms("req:resend-time")?),
            "surveyor:survey-time" => SockOpt::SurveyTime(finite("surveyor:survey-time")?),
            "sub:subscribe" => SockOpt::Subscribe(Bytes::copy_from_slice(value.as_bytes())),
            "sub:unsubscribe" => SockOpt::Unsubscribe(Bytes::copy_from_slice(value.as_bytes())),
            "tls-cert-key-file" => {
                let file = PathBuf::from(value);
                SockOpt::TlsCertKey { cert: Pem::File(file.clone()), key: Pem::File(file) }
            }
            "tls-ca-file" => SockOpt::TlsCa(Pem::File(PathBuf::from(value))),
            "tls-server-name" => SockOpt::TlsServerName(value.to_string()),
            "tls-authmode" => SockOpt::TlsAuthMode(match value.trim() {
                "none" | "0" => TlsAuthMode::None,
                "optional" | "1" => TlsAuthMode::Optional,
                "required" | "2" => TlsAuthMode::Required,
                _ => return Err(invalid("tls-authmode", "none, optional or required (0, 1, 2)")),
            }),
            "ferry:pub-block-timeout" => SockOpt::PubBlockTimeout(ms("ferry:pub-block-timeout")?),
            _ => return Err(Error::InvalidOption { name: "option", reason: format!("unknown option {name:?}") }),
        };
        opt.validate()?;
        Ok(opt)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Err(Error::InvalidOption { name: self.name(), reason: reason.to_string() });
        match self {
            SockOpt::SendBuffer(n) | SockOpt::RecvBuffer(n) if *n > 8192 => invalid("0..=8192"),
            SockOpt::TtlMax(t) if !(1..=15).contains(t) => invalid("1..=15"),
            SockOpt::SurveyTime(d) if d.is_zero() => invalid("must be positive"),
            SockOpt::ReqResendTime(Some(d)) if d.is_zero() => invalid("must be positive, or None to disable"),
            SockOpt::TlsServerName(n) if n.is_empty() => invalid("must not be empty"),
            _ => Ok(()),
        }
    }

    /// Applies a generic option to `opts`; returns false for protocol-specific ones.
    pub(crate) fn apply(&self, opts: &mut Options) -> bool {
        match self {
            SockOpt::RecvTimeout(v) => opts.recv_timeout = *v,
            SockOpt::SendTimeout(v) => opts.send_timeout = *v,
            SockOpt::RecvSizeMax(v) => opts.recv_size_max = *v,
            SockOpt::SendBuffer(v) => opts.send_buffer = *v,
            SockOpt::RecvBuffer(v) => opts.recv_buffer = *v,
            SockOpt::ReconnectTimeMin(v) => opts.reconnect_time_min = *v,
            SockOpt::ReconnectTimeMax(v) => opts.reconnect_time_max = *v,
            SockOpt::TtlMax(v) => opts.ttl_max = *v,
            SockOpt::ReqResendTime(v) => opts.req_resend_time = *v,
            SockOpt::SurveyTime(v) => opts.survey_time = *v,
            SockOpt::TlsCertKey { cert, key } => {
                opts.tls.cert = Some(cert.clone());
                opts.tls.key = Some(key.clone());
            }
            SockOpt::TlsCa(v) => opts.tls.ca = Some(v.clone()),
            SockOpt::TlsServerName(v) => opts.tls.server_name = Some(v.clone()),
            SockOpt::TlsAuthMode(v) => opts.tls.auth_mode = Some(*v),
            SockOpt::Subscribe(_) | SockOpt::Unsubscribe(_) | SockOpt::PubBlockTimeout(_) => return false,
        }
        true
    }
}
