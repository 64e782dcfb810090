//! Devices: forwarders between two raw sockets, as NNG's `nng_device`. A device receives on
//! one socket and sends what it received, header and all, on the other, in both directions
//! when both sides can receive. Because the headers travel with the messages, replies find
//! their way back through any number of devices, each of which adds one hop.
//!
//! ## The broker-less load balancer
//!
//! ```text
//! REQ clients ──dial──▶ front: raw REP ═ device ═ back: raw REQ ◀──dial── REP workers
//! ```
//!
//! Clients know only the front address, workers only the back one, and either side can
//! grow or shrink while the device runs:
//!
//! - A request arrives at the raw REP, which puts the client's pipe id in front of the
//!   request id (the backtrace) and hands it to the device.
//! - The raw REQ sends it, header and all, to the next worker with room (round-robin); with
//!   no worker it waits, and the device stops reading, which pushes back on the clients.
//! - The worker (any REP: ferry, NNG, nanomsg, mangos) answers with the backtrace it got.
//! - The raw REQ hands the reply to the device with that backtrace; the raw REP takes the
//!   pipe id off the front and sends the rest to that client, which matches its request id.
//!
//! The same shape serves every pattern: raw SURVEYOR and raw RESPONDENT for surveys, raw
//! SUB to raw PUB for a fan-out relay (one direction, as PUB cannot receive), PULL to PUSH
//! for a pipeline stage, and one raw BUS socket given twice for a bus hub that echoes
//! nothing back to the sender. `ferry device` runs a device from the command line.
//!
//! Each direction takes what is ready from its source (up to `BATCH` messages at once)
//! and sends it before taking more, so that a device never holds more than that; when the
//! destination cannot take a message the device waits, the source's receive queue fills,
//! and its pipes stop being read.

use crate::error::{Error, Result};
use crate::message::Message;
use crate::protocol::Protocol;
use crate::socket::{Core, Socket};
use std::future::Future;
use std::sync::Arc;

/// The most messages one direction of a device takes from its source before sending them.
const BATCH: usize = 64;

/// Forwards messages between two raw sockets until either is closed, as NNG's `nng_device`.
///
/// The sockets must be raw ([`Socket::new_raw`]) and peers of each other: a raw REP and a
/// raw REQ, a raw RESPONDENT and a raw SURVEYOR, a raw SUB and a raw PUB, a raw PULL and a
/// raw PUSH, two raw BUS or two raw PAIR sockets. Messages flow both ways, except when one
/// side cannot receive (PUB, PUSH): then only towards it. Given the same socket twice (a
/// BUS or PAIR socket), the device is a *reflector* that sends back out of the socket what
/// came in, which on a raw BUS reaches every peer but the sender.
///
/// The future holds neither socket open: it ends with `Ok(())` once either socket is
/// closed ([`Socket::close`], or its last handle dropped). The sockets' `recv-timeout` and
/// `send-timeout` do not apply to it; dropping the future stops it. A message that cannot
/// be sent (a reply whose client is gone) is dropped and the device goes on.
///
/// Each direction takes what is ready from its source, up to 64 messages, and sends it
/// before taking more: when the destination cannot take a message (no worker has room),
/// the device waits, the source's receive queue fills and its pipes stop being read, so
/// back-pressure reaches the senders and nothing is buffered without bound.
///
/// # Errors
///
/// - [`Error::NotRaw`] if either socket is cooked.
/// - [`Error::NotPeers`] if the protocols are not each other's peers (e.g. raw REP with raw
///   REP, or the same raw REQ socket twice).
///
/// # Examples
///
/// A load balancer: clients dial the front, workers dial the back.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> ferry_sp::Result<()> {
/// use ferry_sp::{device, Protocol, Socket};
///
/// let front = Socket::new_raw(Protocol::Rep)?; // faces the REQ clients
/// front.listen("inproc://doc-device-front").await?;
/// let back = Socket::new_raw(Protocol::Req)?; // faces the REP workers
/// back.listen("inproc://doc-device-back").await?;
/// tokio::spawn(device(&front, &back));
///
/// let worker = Socket::new(Protocol::Rep)?;
/// worker.dial("inproc://doc-device-back").await?;
/// tokio::spawn(async move {
///     while let Ok(request) = worker.recv().await {
///         let reply = [&b"re: "[..], &request.body[..]].concat();
///         if worker.send(reply).await.is_err() {
///             break;
///         }
///     }
/// });
///
/// let client = Socket::new(Protocol::Req)?;
/// client.dial("inproc://doc-device-front").await?;
/// client.send("hello").await?;
/// assert_eq!(&client.recv().await?.body[..], b"re: hello");
/// # Ok(()) }
/// ```
pub fn device(a: &Socket, b: &Socket) -> impl Future<Output = Result<()>> + Send + 'static {
    let plan = Plan::new(a, b);
    async move { plan?.run().await }
}

/// Whether a protocol's sockets receive (PUB and PUSH only send).
fn can_recv(p: Protocol) -> bool {
    !matches!(p, Protocol::Pub | Protocol::Push)
}

/// The checked sockets and the directions to forward in.
struct Plan {
    sockets: [Arc<Core>; 2],
    /// `(source, destination)`; one or two.
    paths: Vec<(Arc<Core>, Arc<Core>)>,
}

impl Plan {
    fn new(a: &Socket, b: &Socket) -> Result<Plan> {
        for s in [a, b] {
            if !s.is_raw() {
                return Err(Error::NotRaw { protocol: s.protocol().name() });
            }
        }
        let (pa, pb) = (a.protocol(), b.protocol());
        if pa.peer_id() != pb.id() || pb.peer_id() != pa.id() {
            return Err(Error::NotPeers { a: pa.name(), b: pb.name() });
        }
        // Peers cannot both be send-only, so one of them receives.
        let (src, dst) = if can_recv(pa) { (a, b) } else { (b, a) };
        let (src, dst) = (src.core().clone(), dst.core().clone());
        let mut paths = vec![(src.clone(), dst.clone())];
        if !Arc::ptr_eq(&src, &dst) && can_recv(dst.protocol) {
            paths.push((dst.clone(), src.clone()));
        }
        Ok(Plan { sockets: [src, dst], paths })
    }

    async fn run(self) -> Result<()> {
        let [a, b] = &self.sockets;
        let closed = async {
            tokio::select! {
                _ = a.shared.closed.cancelled() => {}
                _ = b.shared.closed.cancelled() => {}
            }
        };
        let forwarding = futures::future::try_join_all(self.paths.iter().map(|(src, dst)| forward(src, dst)));
        tokio::select! {
            _ = closed => Ok(()),
            r = forwarding => r.map(|_| ()),
        }
    }
}

/// One direction: receive what is ready, send it, repeat. Ends with `Ok(())` when either
/// socket closes.
async fn forward(src: &Core, dst: &Core) -> Result<()> {
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    loop {
        let first = match src.proto.try_recv(&src.shared, 0) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => src.proto.recv(&src.shared, 0, None).await,
            Err(e) => Err(e),
        };
        match first {
            Ok(m) => batch.push(m),
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
        while batch.len() < BATCH {
            match src.proto.try_recv(&src.shared, 0) {
                Ok(Some(m)) => batch.push(m),
                // Nothing more ready, or an error the next receive reports.
                _ => break,
            }
        }
        for mut m in batch.drain(..) {
            // The pipe a message came in on means nothing to the other socket.
            m.set_pipe(None);
            let sent = match dst.proto.try_send(&dst.shared, 0, m) {
                Ok(None) => Ok(()),
                Ok(Some(m)) => dst.proto.send(&dst.shared, 0, m, None).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => {}
                Err(Error::Closed) => return Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, from = %src.protocol, to = %dst.protocol, "device dropped a message")
                }
            }
        }
    }
}
