//! The ferry column: REQ/REP and PUSH/PULL on ferry-sp sockets, both ends in this process
//! on the shared multi-thread runtime, used the way an application would use them.

use super::report::Throughput;
use super::{body, Plan, Rounds, Schedule, Site, Tally, Task, Transport};
use anyhow::Context as _;
use bytes::Bytes;
use ferry_sp::{Pem, Protocol, SockOpt, Socket};

/// Listens with a fresh `protocol` socket on the site's address; returns the socket and
/// the address to dial (for tcp, with the port the system chose).
async fn listen(protocol: Protocol, site: &Site) -> anyhow::Result<(Socket, String)> {
    let url = site.sp_url();
    let socket = Socket::new(protocol)?;
    if let Some(certs) = site.certs.as_ref().filter(|_| site.transport == Transport::Tls) {
        socket.set(SockOpt::TlsCertKey { cert: Pem::File(certs.cert_file()), key: Pem::File(certs.key_file()) })?;
    }
    let listener = socket.listen(&url).await.with_context(|| format!("ferry {protocol} listen on {url}"))?;
    Ok((socket, listener.url().to_string()))
}

async fn dial(protocol: Protocol, site: &Site, url: &str) -> anyhow::Result<Socket> {
    let socket = Socket::new(protocol)?;
    if let Some(certs) = site.certs.as_ref().filter(|_| site.transport == Transport::Tls) {
        socket.set(SockOpt::TlsCa(Pem::File(certs.ca_file())))?;
    }
    socket.dial(url).await.with_context(|| format!("ferry {protocol} dial {url}"))?;
    Ok(socket)
}

/// Round-trip times, in nanoseconds, of `size`-byte requests to a REP socket that echoes.
pub(crate) async fn latency(site: &Site, size: usize, plan: Plan) -> anyhow::Result<Vec<u64>> {
    let (rep, url) = listen(Protocol::Rep, site).await?;
    let req = dial(Protocol::Req, site, &url).await?;
    let server = Task::spawn(async move {
        // Ends when the client closes its socket (or the task is aborted).
        while let Ok(request) = rep.recv().await {
            if rep.send(request.body).await.is_err() {
                break;
            }
        }
    });
    let client = Task::spawn(async move {
        let request = Bytes::from(body(size, false));
        let round_trip = || async {
            req.send(request.clone()).await.context("ferry REQ send")?;
            let reply = req.recv().await.context("ferry REQ recv")?;
            if reply.body.len() != size {
                anyhow::bail!("ferry reply of {} bytes, expected {size}", reply.body.len());
            }
            anyhow::Ok(())
        };
        for _ in 0..plan.warmup {
            round_trip().await?;
        }
        let mut samples = Vec::with_capacity(64 * 1024);
        let rounds = Rounds::start(plan.stop);
        while rounds.more(samples.len() as u64) {
            let t0 = std::time::Instant::now();
            round_trip().await?;
            samples.push(t0.elapsed().as_nanos() as u64);
        }
        req.close();
        anyhow::Ok(samples)
    });
    let samples = client.join().await??;
    drop(server);
    Ok(samples)
}

/// A PUSH socket streaming `size`-byte messages to a PULL socket, timed at the receiver.
pub(crate) async fn throughput(site: &Site, size: usize, plan: Plan) -> anyhow::Result<Throughput> {
    let (pull, url) = listen(Protocol::Pull, site).await?;
    let push = dial(Protocol::Push, site, &url).await?;
    let receiver = Task::spawn(async move {
        let mut tally = Tally::new(size, plan.warmup);
        loop {
            let m = pull.recv().await.context("ferry PULL recv")?;
            if let Some(result) = tally.record(&m.body)? {
                return anyhow::Ok(result);
            }
        }
    });
    let sender = Task::spawn(async move {
        // Bytes clones share one buffer: what an application resending a payload does.
        let (more, last) = (Bytes::from(body(size, false)), Bytes::from(body(size, true)));
        let mut schedule = Schedule::new(plan);
        while let Some(is_last) = schedule.next_is_last() {
            push.send(if is_last { last.clone() } else { more.clone() }).await.context("ferry PUSH send")?;
        }
        // The socket stays open until the receiver is done: closing it would drop what
        // is still queued.
        anyhow::Ok(push)
    });
    let result = receiver.join().await??;
    let push = sender.join().await??;
    push.close();
    Ok(result)
}
