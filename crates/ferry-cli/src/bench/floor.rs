//! The raw floor: the same traffic as the SP workloads, with nothing but an 8-byte
//! big-endian length before each message, on plain tokio streams (`TcpStream` with
//! TCP_NODELAY, `UnixStream`, and `tokio::io::duplex` for inproc, sized as ferry's inproc
//! pipe). No protocol headers, queues or tasks between the application and the stream:
//! what any SP implementation over tokio pays at least.
//!
//! Latency is a ping-pong of one frame each way, each written with one call. Throughput
//! is one framed stream through a write buffer, read through a read buffer.

use super::report::Throughput;
use super::{Plan, Rounds, Schedule, Site, Tally, Task, Transport, SIZE_MAX};
use anyhow::Context as _;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// ferry's inproc pipe size, so that both buffer the same.
const DUPLEX_BYTES: usize = 256 * 1024;
/// Read and write buffers: ferry's read chunk and write flush threshold are of this order.
const BUF_BYTES: usize = 256 * 1024;

async fn tcp_pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("floor tcp bind")?;
    let addr = listener.local_addr()?;
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, (server, _)) = (client.context("floor tcp connect")?, server.context("floor tcp accept")?);
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

async fn unix_pair(site: &Site) -> anyhow::Result<(UnixStream, UnixStream)> {
    let path = &site.ipc_path;
    let listener = UnixListener::bind(path).with_context(|| format!("floor bind {}", path.display()))?;
    let (client, server) = tokio::join!(UnixStream::connect(path), listener.accept());
    let (client, (server, _)) = (client.context("floor unix connect")?, server.context("floor unix accept")?);
    // The socket file is no longer needed once connected.
    let _ = std::fs::remove_file(path);
    Ok((client, server))
}

/// Reads one frame into `buf` (resized to the payload).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len).await?;
    let n = usize::try_from(u64::from_be_bytes(len))
        .ok()
        .filter(|n| *n <= SIZE_MAX)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "floor frame too large"))?;
    buf.resize(n, 0);
    r.read_exact(buf).await?;
    Ok(())
}

/// A whole frame: length then `size` bytes, the first of which is the last-message marker.
fn frame(size: usize, last: bool) -> Vec<u8> {
    let mut f = (size as u64).to_be_bytes().to_vec();
    f.extend_from_slice(&super::body(size, last));
    f
}

pub(crate) async fn latency(site: &Site, size: usize, plan: Plan) -> anyhow::Result<Vec<u64>> {
    match site.transport {
        Transport::Tcp => {
            let (c, s) = tcp_pair().await?;
            ping_pong(c, s, size, plan).await
        }
        Transport::Ipc => {
            let (c, s) = unix_pair(site).await?;
            ping_pong(c, s, size, plan).await
        }
        Transport::Inproc => {
            let (c, s) = tokio::io::duplex(DUPLEX_BYTES);
            ping_pong(c, s, size, plan).await
        }
        Transport::Ws | Transport::Tls => anyhow::bail!("the raw floor has no {} transport", site.transport),
    }
}

async fn ping_pong<S>(client: S, server: S, size: usize, plan: Plan) -> anyhow::Result<Vec<u64>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _server = Task::spawn(async move {
        // tokio's BufReader passes writes straight through to the stream.
        let mut s = BufReader::with_capacity(BUF_BYTES, server);
        let (mut request, mut reply) = (Vec::new(), Vec::new());
        // Ends at end of stream, when the client is done.
        while read_frame(&mut s, &mut request).await.is_ok() {
            reply.clear();
            reply.extend_from_slice(&(request.len() as u64).to_be_bytes());
            reply.extend_from_slice(&request);
            if s.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    let client = Task::spawn(async move {
        let mut s = BufReader::with_capacity(BUF_BYTES, client);
        let request = frame(size, false);
        let mut reply = Vec::with_capacity(size);
        for _ in 0..plan.warmup {
            round_trip(&mut s, &request, &mut reply).await?;
        }
        let mut samples = Vec::with_capacity(64 * 1024);
        let rounds = Rounds::start(plan.stop);
        while rounds.more(samples.len() as u64) {
            let t0 = std::time::Instant::now();
            round_trip(&mut s, &request, &mut reply).await?;
            samples.push(t0.elapsed().as_nanos() as u64);
        }
        anyhow::Ok(samples)
    });
    client.join().await?
}

/// Writes one request frame and reads the reply into `reply`.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    request: &[u8],
    reply: &mut Vec<u8>,
) -> anyhow::Result<()> {
    s.write_all(request).await.context("floor write")?;
    read_frame(s, reply).await.context("floor read")?;
    let size = request.len() - 8;
    if reply.len() != size {
        anyhow::bail!("floor reply of {} bytes, expected {size}", reply.len());
    }
    Ok(())
}

pub(crate) async fn throughput(site: &Site, size: usize, plan: Plan) -> anyhow::Result<Throughput> {
    match site.transport {
        Transport::Tcp => {
            let (c, s) = tcp_pair().await?;
            stream(c, s, size, plan).await
        }
        Transport::Ipc => {
            let (c, s) = unix_pair(site).await?;
            stream(c, s, size, plan).await
        }
        Transport::Inproc => {
            let (c, s) = tokio::io::duplex(DUPLEX_BYTES);
            stream(c, s, size, plan).await
        }
        Transport::Ws | Transport::Tls => anyhow::bail!("the raw floor has no {} transport", site.transport),
    }
}

async fn stream<S>(tx: S, rx: S, size: usize, plan: Plan) -> anyhow::Result<Throughput>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let receiver = Task::spawn(async move {
        let mut r = BufReader::with_capacity(BUF_BYTES, rx);
        let mut tally = Tally::new(size, plan.warmup);
        let mut buf = Vec::with_capacity(size);
        loop {
            read_frame(&mut r, &mut buf).await.context("floor read")?;
            if let Some(result) = tally.record(&buf)? {
                return anyhow::Ok(result);
            }
        }
    });
    let sender = Task::spawn(async move {
        let (more, last) = (frame(size, false), frame(size, true));
        let mut w = BufWriter::with_capacity(BUF_BYTES, tx);
        let mut schedule = Schedule::new(plan);
        while let Some(is_last) = schedule.next_is_last() {
            w.write_all(if is_last { &last } else { &more }).await.context("floor write")?;
        }
        w.flush().await.context("floor flush")?;
        // Kept open until the receiver is done, as ferry's sender is.
        anyhow::Ok(w)
    });
    let result = receiver.join().await??;
    drop(sender.join().await??);
    Ok(result)
}
