//! Listeners and dialers: the tasks that create pipes. A dialer reconnects with jittered
//! exponential backoff (sp-wire.md §7): it waits a random time below the current delay,
//! doubles the delay up to `reconnect-time-max`, and resets it after a connection.

use crate::error::Result;
use crate::socket::Core;
use crate::transport;
use crate::url::Url;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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

    /// The bound TCP port, if this is a TCP listener.
    pub fn port(&self) -> Option<u16> {
        match self.url {
            Url::Tcp { port, .. } => Some(port),
            _ => None,
        }
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

pub(crate) async fn listen(core: &Arc<Core>, url: Url) -> Result<Listener> {
    let mut acceptor = transport::bind(&url).await?;
    let bound = acceptor.bound_url();
    let token = core.shared.closed.child_token();
    let (core, stop) = (core.clone(), token.clone());
    tracing::debug!(url = %bound, "listening");
    tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                _ = stop.cancelled() => break,
                c = acceptor.accept() => c,
            };
            match conn {
                // Each handshake runs on its own task, so a slow peer cannot hold up others.
                Ok(conn) => {
                    let core = core.clone();
                    tokio::spawn(async move {
                        if let Err(e) = core.start_pipe(conn).await {
                            tracing::debug!(error = %e, "accepted connection dropped");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Listener { url: bound, token })
}

pub(crate) async fn dial(core: &Arc<Core>, url: Url, blocking: bool) -> Result<Dialer> {
    let token = core.shared.closed.child_token();
    let first = if blocking {
        let conn = transport::connect(&url).await?;
        Some(core.start_pipe(conn).await?)
    } else {
        None
    };
    let (core, stop, target) = (core.clone(), token.clone(), url.clone());
    tokio::spawn(async move {
        let mut pipe_closed = first;
        let mut delay = core.shared.opts().reconnect_time_min;
        loop {
            if let Some(closed) = pipe_closed.take() {
                delay = core.shared.opts().reconnect_time_min;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = closed.cancelled() => {}
                }
            }
            let wait = jitter(delay);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let attempt = async { core.start_pipe(transport::connect(&target).await?).await };
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = attempt => r,
            };
            match result {
                Ok(closed) => pipe_closed = Some(closed),
                Err(e) => {
                    tracing::debug!(url = %target, error = %e, "dial failed");
                    let max = core.shared.opts().reconnect_time_max;
                    if !max.is_zero() {
                        delay = delay.saturating_mul(2).min(max);
                    }
                }
            }
        }
    });
    Ok(Dialer { url, token })
}

/// A uniformly random wait in `[0, delay)`, as NNG does, so that many dialers that lost the
/// same listener do not all come back at once.
fn jitter(delay: Duration) -> Duration {
    let ms = delay.as_millis() as u64;
    if ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::thread_rng().gen_range(0..ms))
    }
}
