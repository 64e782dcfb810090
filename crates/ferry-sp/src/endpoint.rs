//! Listeners and dialers: the tasks that create pipes. A dialer reconnects with jittered
//! exponential backoff (sp-wire.md §7): it waits a random time below the current delay,
//! doubles the delay up to `reconnect-time-max`, and resets it after a connection.

use crate::error::Result;
use crate::options::Options;
use crate::socket::Core;
use crate::transport::{self, Local};
use crate::url::Url;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A bound listener. It accepts until [`Listener::close`] or until its socket closes.
#[derive(Debug)]
pub struct Listener {
    url: Url,
    token: CancellationToken,
}

impl Listener {
    /// The bound address; for `tcp://…:0` it carries the port the system chose.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The bound TCP port, if this listener is on TCP (tcp, ws, wss, tls+tcp).
    pub fn port(&self) -> Option<u16> {
        self.url.port()
    }

    /// Stops accepting. Pipes already accepted stay up.
    pub fn close(&self) {
        self.token.cancel();
    }
}

/// A dialer. It keeps its connection up until [`Dialer::close`] or until its socket closes.
#[derive(Debug)]
pub struct Dialer {
    url: Url,
    token: CancellationToken,
}

impl Dialer {
    /// The address dialed.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Stops redialing. The current pipe, if any, stays up.
    pub fn close(&self) {
        self.token.cancel();
    }
}

/// What the transports need to know about `core`, with its options as they are now.
fn local(core: &Core) -> Local {
    Local { protocol: core.protocol, opts: core.shared.opts() }
}

pub(crate) async fn listen(core: &Arc<Core>, url: Url) -> Result<Listener> {
    let token = core.shared.closed.child_token();
    let mut acceptor = transport::bind(&url, &local(core), &token).await?;
    let bound = acceptor.bound_url();
    let (core, stop) = (core.clone(), token.clone());
    tracing::debug!(url = %bound, "listening");
    let url = bound.clone();
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = stop.cancelled() => break,
                c = acceptor.accept() => c,
            };
            match conn {
                // Each handshake runs on its own task, so a slow peer cannot hold up others.
                Ok(conn) => {
                    core.shared.stats.accepted();
                    let span = tracing::debug_span!("accept", url = %bound, remote = %conn.remote);
                    let (core, bound) = (core.clone(), bound.clone());
                    let handshake = async move {
                        if let Err(e) = core.start_pipe(conn, &bound).await {
                            tracing::debug!(error = %e, "accepted connection dropped");
                        }
                    };
                    tokio::spawn(handshake.instrument(span));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener { url, token })
}

pub(crate) async fn dial(core: &Arc<Core>, url: Url, blocking: bool) -> Result<Dialer> {
    let token = core.shared.closed.child_token();
    let first = if blocking {
        let span = tracing::debug_span!("dial", url = %url);
        core.shared.stats.dial_attempt();
        let attempt = async { core.start_pipe(transport::connect(&url, &local(core)).await?, &url).await };
        let closed = attempt.instrument(span).await?;
        core.shared.stats.dial_success(false);
        Some(closed)
    } else {
        None
    };
    let (core, stop, target) = (core.clone(), token.clone(), url.clone());
    tokio::spawn(async move {
        // Whether this dialer has had a connection: a success after that is a reconnect.
        let mut connected_before = first.is_some();
        let mut pipe_closed = first;
        let mut backoff = Backoff::new(&core.shared.opts());
        loop {
            if let Some(closed) = pipe_closed.take() {
                backoff.reset(&core.shared.opts());
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = closed.cancelled() => {}
                }
            }
            let wait = backoff.wait();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            core.shared.stats.dial_attempt();
            let attempt = async { core.start_pipe(transport::connect(&target, &local(&core)).await?, &target).await };
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = attempt.instrument(tracing::debug_span!("dial", url = %target)) => r,
            };
            match result {
                Ok(closed) => {
                    core.shared.stats.dial_success(connected_before);
                    connected_before = true;
                    pipe_closed = Some(closed);
                }
                Err(e) => {
                    tracing::debug!(url = %target, error = %e, "dial failed");
                    backoff.failed(&core.shared.opts());
                }
            }
        }
    });
    Ok(Dialer { url, token })
}

/// The delay before a redial, as NNG computes it.
struct Backoff {
    current: Duration,
}

impl Backoff {
    fn new(opts: &Options) -> Backoff {
        Backoff { current: opts.reconnect_time_min }
    }

    /// After a successful connection the next loss is retried quickly again.
    fn reset(&mut self, opts: &Options) {
        self.current = opts.reconnect_time_min;
    }

    /// A uniformly random wait in `[0, current)`, so that many dialers that lost the same
    /// listener do not all come back at once.
    fn wait(&self) -> Duration {
        let ms = u64::try_from(self.current.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::thread_rng().gen_range(0..ms))
        }
    }

    /// An attempt failed: the delay doubles up to `reconnect-time-max` (zero: no growth).
    fn failed(&mut self, opts: &Options) {
        if !opts.reconnect_time_max.is_zero() {
            self.current = self.current.saturating_mul(2).min(opts.reconnect_time_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SockOpt;

    fn opts(min_ms: u64, max_ms: u64) -> Options {
        let mut o = Options::with_buffers(0, 0);
        SockOpt::ReconnectTimeMin(Duration::from_millis(min_ms)).apply(&mut o);
        SockOpt::ReconnectTimeMax(Duration::from_millis(max_ms)).apply(&mut o);
        o
    }

    #[test]
    fn delay_doubles_up_to_the_max_and_resets_after_success() {
        let o = opts(10, 70);
        let mut b = Backoff::new(&o);
        let mut seen = vec![b.current];
        for _ in 0..4 {
            b.failed(&o);
            seen.push(b.current);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![10, 20, 40, 70, 70]);
        b.reset(&o);
        assert_eq!(b.current, Duration::from_millis(10));
    }

    #[test]
    fn zero_max_means_no_growth() {
        let o = opts(100, 0);
        let mut b = Backoff::new(&o);
        b.failed(&o);
        b.failed(&o);
        assert_eq!(b.current, Duration::from_millis(100));
    }

    #[test]
    fn waits_are_jittered_below_the_current_delay() {
        let b = Backoff::new(&opts(50, 0));
        let waits: Vec<Duration> = (0..200).map(|_| b.wait()).collect();
        assert!(waits.iter().all(|w| *w < Duration::from_millis(50)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 10, "waits should spread over the interval: {distinct:?}");
        assert_eq!(Backoff::new(&opts(0, 0)).wait(), Duration::ZERO);
    }
}
