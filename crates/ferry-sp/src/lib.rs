//! # ferry-sp
//!
//! The Scalability Protocols of nanomsg, NNG and mangos in pure, async Rust. A ferry
//! socket talks to NNG, nanomsg and mangos peers byte for byte, so it can replace either
//! side of an existing deployment.
//!
//! | Pattern | Sockets | What it does |
//! |---|---|---|
//! | pair | [`Protocol::Pair0`], [`Protocol::Pair1`], [`Protocol::Pair1Poly`] | one-to-one, both directions |
//! | request/reply | [`Protocol::Req`], [`Protocol::Rep`] | RPC, with resend and contexts |
//! | publish/subscribe | [`Protocol::Pub`], [`Protocol::Sub`] | fan-out with prefix filters |
//! | pipeline | [`Protocol::Push`], [`Protocol::Pull`] | load-balanced work distribution |
//! | survey | [`Protocol::Surveyor`], [`Protocol::Respondent`] | ask everyone, collect answers until a deadline |
//! | bus | [`Protocol::Bus`] | many-to-many among direct peers |
//!
//! Transports:
//!
//! | URL | What it is |
//! |---|---|
//! | `tcp://host:port` | the SP TCP mapping (also `tcp://*:0`, `tcp://[::1]:port`) |
//! | `ipc://path` | Unix domain sockets |
//! | `inproc://name` | within the process |
//! | `ws://host:port/path` | WebSocket: one binary message per SP message; sockets listening on one port share it, told apart by path (feature `transport-ws`) |
//! | `wss://host:port/path` | WebSocket over TLS (features `transport-ws` and `transport-tls`) |
//! | `tls+tcp://host:port` | the TCP mapping inside TLS, with rustls (feature `transport-tls`) |
//!
//! Both features are on by default. TLS settings are socket options: [`SockOpt::TlsCertKey`],
//! [`SockOpt::TlsCa`], [`SockOpt::TlsServerName`], [`SockOpt::TlsAuthMode`]. A socket may
//! listen and dial on several addresses at once; dialers reconnect with jittered
//! exponential backoff.
//!
//! ## A tour
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
//! use ferry_sp::{Protocol, Socket};
//!
//! let pull = Socket::new(Protocol::Pull)?;
//! let listener = pull.listen("tcp://127.0.0.1:0").await?;
//! let url = listener.url().to_string(); // the port the system chose
//!
//! let push = Socket::new(Protocol::Push)?;
//! push.dial(&url).await?;
//! push.send("job 1").await?;
//! assert_eq!(&pull.recv().await?.body[..], b"job 1");
//! # Ok(()) }
//! ```
//!
//! Programs without a tokio runtime use [`blocking::Socket`].
//!
//! ## Raw sockets and devices
//!
//! A raw socket ([`Socket::new_raw`], NNG's `nng_*_open_raw`) hands the protocol header to
//! the caller in [`Message::header`] and sends the header it is given, with no request
//! state; contexts are refused. [`device`] joins two raw sockets into a forwarder, e.g. a
//! broker-less load balancer between REQ clients and REP workers.
//!
//! | Raw socket | `header` of a received message | a send |
//! |---|---|---|
//! | REP, RESPONDENT | the pipe id, then the backtrace | goes to the pipe the first header word names |
//! | REQ, SURVEYOR | the backtrace, ending with the request or survey id | goes to one pipe, round-robin (REQ), or to all (SURVEYOR); never resent |
//! | PAIR v1 | the hop count as received | needs a hop count below 255; sends it plus one |
//! | BUS | the pipe id | goes to every pipe but the one the header names |
//! | SUB | empty; nothing is filtered out | — |
//! | PAIR v0, PUB, PUSH, PULL | empty: no header in these protocols | as cooked |
//!
//! ## Observing a socket
//!
//! [`Socket::stats`] returns a [`SocketStats`] snapshot: messages and bytes in and out per
//! socket and per pipe, drops by [`DropReason`] (a slow subscriber, a full receive queue,
//! `ttl-max`, `recv-size-max`…), queue depths, dials, reconnects and failed handshakes.
//! [`Socket::pipe_events`] streams [`PipeEvent`]s as connections come and go. Connection
//! lifecycles are also `tracing` spans at debug level (`dial`, `accept`, `handshake`, and a
//! `pipe` span with its id, remote address and protocol around each pipe's tasks).
//!
//! ## Layout
//!
//! - `socket`, `endpoint`, `pipe`: the socket core, its listeners and dialers, and the
//!   per-connection reader and writer tasks.
//! - `protocol/`: one file per socket type behind one small trait.
//! - `transport/`: the handshake and framing once (`stream`), then one file per transport
//!   (`ws/` is a folder: framing, the shared HTTP listener, the upgrade checks); `mod.rs`
//!   is the registry and the pipe's reader and writer over either framing.
//! - `options`, `error`, `message`, `url`: the typed public vocabulary.
//! - `stats`, `events`: the counters behind [`Socket::stats`] and the pipe event stream.
//! - `device`: forwarding between two raw sockets.

pub mod blocking;
mod device;
mod endpoint;
mod error;
mod events;
mod message;
mod options;
mod pipe;
mod protocol;
mod queue;
mod socket;
mod stats;
mod transport;
mod url;

pub use device::device;
pub use endpoint::{Dialer, Listener};
pub use error::{Error, Result};
pub use events::{EventRecvError, PipeEvent, PipeEvents, RemoveReason, EVENT_BUFFER};
pub use message::{Message, PipeId};
pub use options::{Options, Pem, SockOpt, TlsAuthMode, TlsOptions};
pub use protocol::Protocol;
pub use socket::{Context, Socket};
pub use stats::{DropReason, Drops, HandshakeFailures, PipeStats, SocketStats};
pub use url::{Family, Url};
