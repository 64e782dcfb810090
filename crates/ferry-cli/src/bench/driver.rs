//! Runs one workload on a [`Target`]: `producers` tasks publishing for a count or a
//! duration, at full speed or at a fixed rate, while the consumers receive and ack; every
//! message carries the time it was (meant to be) sent, so that each receipt gives an
//! end-to-end latency.
//!
//! - **Saturation** (no rate): each producer publishes a batch, waits for the broker's
//!   confirmation of all of it, and goes on; a message's time is when its batch was made.
//! - **Fixed rate** (open loop): each producer owns an equal share of the rate and a
//!   schedule of intended send times. A message's time is its intended time, not when it
//!   actually left: a broker that stalls the producer makes every message scheduled
//!   meanwhile late, as a real client would see it, instead of hiding the stall
//!   (coordinated omission). Messages that are due together go out as one batch.
//!
//! A warm-up at the same load comes first; its messages are flagged in their header, and
//! consumed and acked but not counted. Rates are timed from the end of the warm-up to the
//! last confirmation (publish) and the last receipt (end to end).

use super::target::{Consumer, Producer, Target, Workload};
use super::{Stop, Task};
use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The header every message body starts with: 16 lowercase hex digits of the send time in
/// nanoseconds since the run's base instant, then `w` (warm-up) or `t` (timed). The rest of
/// the body is `x`: the whole body is printable ASCII, so it travels as JSON text as is.
pub(crate) const HEADER: usize = 17;

/// How long consumers keep waiting for missing messages once nothing arrives any more.
const IDLE_DRAIN: Duration = Duration::from_secs(3);

/// How long a consumer's receive call waits for a first message before it looks at
/// whether the run is over.
const RECEIVE_WAIT: Duration = Duration::from_millis(50);

/// One run: a workload, its load and how long it lasts.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) workload: Workload,
    pub(crate) producers: u32,
    /// Timed messages (all producers together), or time.
    pub(crate) stop: Stop,
    pub(crate) warmup: Duration,
    /// Messages per second over all producers; `None`: as fast as confirmations allow.
    pub(crate) rate: Option<f64>,
    /// How long connecting, preparing and draining may take, and how long a count-bound
    /// run may take in all, before the run is abandoned.
    pub(crate) timeout: Duration,
    /// The width of a point of the latency-over-time series.
    pub(crate) bucket: Duration,
    /// 1-based, for messages.
    pub(crate) round: u32,
}

/// What one run measured.
pub(crate) struct RunResult {
    /// Timed messages the broker confirmed.
    pub(crate) published: u64,
    /// Timed messages received (each subscription's copy counts in a fan-out run).
    pub(crate) received: u64,
    /// `published`, times the subscriptions in a fan-out run; 0 without consumers.
    pub(crate) expected: u64,
    /// Bodies that did not carry the benchmark's header (someone else's messages).
    pub(crate) foreign: u64,
    /// From the end of the warm-up to the last confirmation.
    pub(crate) publish_secs: f64,
    /// From the end of the warm-up to the last receipt.
    pub(crate) e2e_secs: f64,
    /// End-to-end latency of every timed message, in microseconds.
    pub(crate) latency: Histogram<u64>,
    /// The same by time of receipt: point `i` covers `[i, i + 1) × bucket` after the
    /// warm-up.
    pub(crate) series: Vec<Histogram<u64>>,
    pub(crate) bucket: Duration,
}

impl RunResult {
    pub(crate) fn publish_rate(&self) -> f64 {
        rate(self.published, self.publish_secs)
    }

    pub(crate) fn e2e_rate(&self) -> f64 {
        rate(self.received, self.e2e_secs)
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    if n == 0 || secs <= 0.0 {
        0.0
    } else {
        n as f64 / secs
    }
}

/// A latency histogram in microseconds, growing as needed.
pub(crate) fn histogram(sigfig: u8) -> Histogram<u64> {
    // 1 to 3 significant figures are always valid.
    Histogram::new(sigfig.clamp(1, 3)).unwrap_or_else(|_| Histogram::new(2).expect("2 significant figures"))
}

/// Writes the header into `body` (at least [`HEADER`] bytes long).
fn stamp(body: &mut [u8], at_ns: u64, warmup: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in body[..16].iter_mut().enumerate() {
        *b = HEX[((at_ns >> (60 - 4 * i)) & 0xf) as usize];
    }
    body[16] = if warmup { b'w' } else { b't' };
}

/// The send time and warm-up flag of a body, if it has the benchmark's header.
pub(crate) fn read_stamp(body: &[u8]) -> Option<(u64, bool)> {
    let head = body.get(..HEADER)?;
    let mut at = 0u64;
    for &c in &head[..16] {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        at = (at << 4) | u64::from(digit);
    }
    match head[16] {
        b'w' => Some((at, true)),
        b't' => Some((at, false)),
        _ => None,
    }
}

/// What producers and consumers share.
struct Shared {
    /// The instant message times count from.
    base: Instant,
    /// Timed messages handed out so far (count-bound runs).
    claimed: AtomicU64,
    /// Timed messages received so far, by all consumers.
    received: AtomicU64,
    /// Set when the consumers should stop.
    stop: AtomicBool,
}

impl Shared {
    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }
}

/// When producers start, and when the warm-up ends.
#[derive(Clone, Copy)]
struct Start {
    at: Instant,
    timed: Instant,
}

struct ProducerOut {
    published: u64,
    last_confirm: Option<Instant>,
}

struct ConsumerOut {
    received: u64,
    foreign: u64,
    last: Option<Instant>,
    latency: Histogram<u64>,
    series: Vec<Histogram<u64>>,
}

/// Prepares the workload's destinations, runs it, and deletes them again (also when the
/// run fails).
pub(crate) async fn run<T: Target>(target: Arc<T>, plan: &Plan) -> anyhow::Result<RunResult> {
    let w = &plan.workload;
    tokio::time::timeout(plan.timeout, target.prepare(w))
        .await
        .map_err(|_| anyhow::anyhow!("preparing {} took over {:.0} s", w.name, plan.timeout.as_secs_f64()))?
        .with_context(|| format!("preparing {}", w.name))?;
    let result = run_prepared(&target, plan).await;
    let cleaned = tokio::time::timeout(plan.timeout, target.cleanup(w)).await;
    let result = result?;
    cleaned
        .map_err(|_| anyhow::anyhow!("deleting {} took over {:.0} s", w.name, plan.timeout.as_secs_f64()))?
        .with_context(|| format!("deleting {}", w.name))?;
    Ok(result)
}

async fn run_prepared<T: Target>(target: &Arc<T>, plan: &Plan) -> anyhow::Result<RunResult> {
    let w = &plan.workload;
    let shared = Arc::new(Shared {
        base: Instant::now(),
        claimed: AtomicU64::new(0),
        received: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let (start_tx, start_rx) = watch::channel(None::<Start>);

    // Consumers first: each connects, says so, then receives until told to stop.
    let (ready_tx, mut ready_rx) = mpsc::channel::<anyhow::Result<()>>(64);
    let mut consumers = Vec::new();
    for n in 0..w.consumers {
        let (target, shared, ready, start, plan) =
            (target.clone(), shared.clone(), ready_tx.clone(), start_rx.clone(), plan.clone());
        consumers.push(Task::spawn(async move {
            let c = match target.consumer(&plan.workload, n).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready.send(Err(anyhow::anyhow!("consumer {n}: {e:#}"))).await;
                    return Err(e);
                }
            };
            let _ = ready.send(Ok(())).await;
            drop(ready);
            consume(c, &shared, start, &plan).await
        }));
    }
    let mut producers = Vec::new();
    for n in 0..plan.producers {
        let (target, shared, ready, start, plan) =
            (target.clone(), shared.clone(), ready_tx.clone(), start_rx.clone(), plan.clone());
        producers.push(Task::spawn(async move {
            let p = match target.producer(&plan.workload, n).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready.send(Err(anyhow::anyhow!("producer {n}: {e:#}"))).await;
                    return Err(e);
                }
            };
            let _ = ready.send(Ok(())).await;
            drop(ready);
            produce(p, n, &shared, start, &plan).await
        }));
    }
    drop(ready_tx);
    let clients = w.consumers + plan.producers;
    let connected = tokio::time::timeout(plan.timeout, async {
        for _ in 0..clients {
            match ready_rx.recv().await {
                Some(r) => r?,
                None => anyhow::bail!("a client task ended before connecting"),
            }
        }
        anyhow::Ok(())
    })
    .await;
    match connected {
        Ok(r) => r?,
        Err(_) => anyhow::bail!("connecting {clients} clients took over {:.0} s", plan.timeout.as_secs_f64()),
    }

    let at = Instant::now();
    let start = Start { at, timed: at + plan.warmup };
    let _ = start_tx.send(Some(start));
    let limit = match plan.stop {
        Stop::Duration(d) => plan.warmup + d + plan.timeout,
        Stop::Count(_) => plan.warmup + plan.timeout,
    };
    let mut published = 0;
    let mut last_confirm = None;
    let deadline = at + limit;
    for p in producers {
        let out = match tokio::time::timeout_at(deadline, p.join()).await {
            Ok(r) => r??,
            Err(_) => {
                shared.stop.store(true, Ordering::Relaxed);
                anyhow::bail!(
                    "the producers had not finished after {:.0} s; abandoned (raise --timeout?)",
                    limit.as_secs_f64()
                );
            }
        };
        published += out.published;
        last_confirm = last_confirm.max(out.last_confirm);
    }

    let fan = match w.pattern {
        super::target::Pattern::Queue => u64::from(w.consumers.min(1)),
        super::target::Pattern::Fanout => u64::from(w.consumers),
    };
    let expected = published * fan;
    // Drain: until every timed message is in, nothing has come for a while, or the timeout.
    let drain_end = Instant::now() + plan.timeout;
    let mut seen = shared.received.load(Ordering::Relaxed);
    let mut progress = Instant::now();
    while !consumers.is_empty() && seen < expected {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = Instant::now();
        let got = shared.received.load(Ordering::Relaxed);
        if got != seen {
            (seen, progress) = (got, now);
        }
        if now >= drain_end || now - progress >= IDLE_DRAIN || consumers.iter().any(Task::is_finished) {
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);

    let mut latency = histogram(3);
    let mut series: Vec<Histogram<u64>> = Vec::new();
    let (mut received, mut foreign, mut last) = (0, 0, None);
    for c in consumers {
        let out = match tokio::time::timeout(plan.timeout, c.join()).await {
            Ok(r) => r??,
            Err(_) => anyhow::bail!("a consumer did not stop within {:.0} s", plan.timeout.as_secs_f64()),
        };
        received += out.received;
        foreign += out.foreign;
        last = last.max(out.last);
        latency.add(&out.latency).context("merging latency histograms")?;
        merge_series(&mut series, &out.series)?;
    }
    let since = |t: Option<Instant>| t.map_or(0.0, |t| t.saturating_duration_since(start.timed).as_secs_f64());
    Ok(RunResult {
        published,
        received,
        expected,
        foreign,
        publish_secs: since(last_confirm),
        e2e_secs: since(last),
        latency,
        series,
        bucket: plan.bucket,
    })
}

/// Adds `more` point by point to `into`.
pub(crate) fn merge_series(into: &mut Vec<Histogram<u64>>, more: &[Histogram<u64>]) -> anyhow::Result<()> {
    for (i, h) in more.iter().enumerate() {
        if into.len() <= i {
            into.push(histogram(2));
        }
        into[i].add(h).context("merging latency histograms")?;
    }
    Ok(())
}

/// Waits for the start signal; `None` if the run was called off before it came.
async fn started(mut start: watch::Receiver<Option<Start>>) -> Option<Start> {
    start.wait_for(Option::is_some).await.ok().and_then(|s| *s)
}

async fn produce<P: Producer>(
    mut p: P,
    n: u32,
    shared: &Shared,
    start: watch::Receiver<Option<Start>>,
    plan: &Plan,
) -> anyhow::Result<ProducerOut> {
    let mut out = ProducerOut { published: 0, last_confirm: None };
    let Some(start) = started(start).await else { return Ok(out) };
    let w = &plan.workload;
    let end = match plan.stop {
        Stop::Duration(d) => Some(start.timed + d),
        Stop::Count(_) => None,
    };
    let template = {
        let mut b = BytesMut::zeroed(w.size.max(HEADER));
        b.fill(b'x');
        b
    };
    // The schedule of a fixed rate: this producer's message k is due at
    // start + (k + n / producers) / share, so that the producers interleave.
    let share = plan.rate.map(|r| r / f64::from(plan.producers));
    let offset = f64::from(n) / f64::from(plan.producers);
    let mut k: u64 = 0;
    let mut batch: Vec<Bytes> = Vec::with_capacity(w.batch);
    let mut times: Vec<Instant> = Vec::with_capacity(w.batch);
    loop {
        times.clear();
        match share {
            None => times.resize(w.batch, Instant::now()),
            Some(share) => {
                let due = |k: u64| start.at + Duration::from_secs_f64((k as f64 + offset) / share);
                let next = due(k);
                if end.is_some_and(|end| next >= end) {
                    break;
                }
                if next > Instant::now() {
                    tokio::time::sleep_until(next).await;
                }
                let now = Instant::now();
                while times.len() < w.batch && due(k) <= now {
                    times.push(due(k));
                    k += 1;
                }
            }
        }
        if let Some(end) = end {
            times.retain(|t| *t < end);
        }
        // Warm-up messages come first (the times only grow); claim the timed ones.
        let warm = times.iter().take_while(|t| **t < start.timed).count();
        let mut timed = (times.len() - warm) as u64;
        let mut last = false;
        if let Stop::Count(total) = plan.stop {
            if timed > 0 {
                let before = shared.claimed.fetch_add(timed, Ordering::Relaxed);
                let allowed = total.saturating_sub(before).min(timed);
                last = allowed < timed || before + timed >= total;
                timed = allowed;
                times.truncate(warm + timed as usize);
            }
        }
        if times.is_empty() {
            if last || end.is_some_and(|end| Instant::now() >= end) {
                break;
            }
            continue;
        }
        batch.clear();
        for (i, t) in times.iter().enumerate() {
            let mut body = template.clone();
            stamp(&mut body, shared.ns(*t), i < warm);
            batch.push(body.freeze());
        }
        p.publish(&batch).await?;
        if timed > 0 {
            out.published += timed;
            out.last_confirm = Some(Instant::now());
        }
        if last || shared.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(out)
}

async fn consume<C: Consumer>(
    mut c: C,
    shared: &Shared,
    start: watch::Receiver<Option<Start>>,
    plan: &Plan,
) -> anyhow::Result<ConsumerOut> {
    let mut out = ConsumerOut { received: 0, foreign: 0, last: None, latency: histogram(3), series: Vec::new() };
    let mut got = Vec::with_capacity(plan.workload.prefetch as usize);
    let mut timed_start = None;
    let bucket = plan.bucket.as_nanos().max(1);
    while !shared.stop.load(Ordering::Relaxed) {
        got.clear();
        c.receive(&mut got, RECEIVE_WAIT).await?;
        if got.is_empty() {
            continue;
        }
        if timed_start.is_none() {
            timed_start = (*start.borrow()).map(|s| s.timed);
        }
        let now = Instant::now();
        let now_ns = shared.ns(now);
        let mut timed = 0;
        for body in &got {
            match read_stamp(body) {
                Some((_, true)) => {}
                Some((sent, false)) => {
                    timed += 1;
                    let us = now_ns.saturating_sub(sent) / 1_000;
                    let _ = out.latency.record(us.max(1));
                    let since = timed_start.map_or(0, |t| now.saturating_duration_since(t).as_nanos());
                    let i = usize::try_from(since / bucket).unwrap_or(usize::MAX).min(100_000);
                    while out.series.len() <= i {
                        out.series.push(histogram(2));
                    }
                    let _ = out.series[i].record(us.max(1));
                }
                None => out.foreign += 1,
            }
        }
        if timed > 0 {
            out.received += timed;
            out.last = Some(now);
            shared.received.fetch_add(timed, Ordering::Relaxed);
        }
        c.ack().await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::target::{Consumer, Pattern, Producer, Target, Workload};
    use super::*;
    use ferry_broker::Durability;
    use std::sync::Mutex;

    #[test]
    fn the_header_reads_back() {
        let mut body = vec![b'x'; 64];
        stamp(&mut body, 0x0123_4567_89ab_cdef, false);
        assert_eq!(&body[..17], b"0123456789abcdeft");
        assert_eq!(read_stamp(&body), Some((0x0123_4567_89ab_cdef, false)));
        stamp(&mut body, 7, true);
        assert_eq!(read_stamp(&body), Some((7, true)));
        assert_eq!(read_stamp(b"hello"), None);
        assert_eq!(read_stamp(b"0123456789abcdefz"), None);
        assert_eq!(read_stamp(b"0123456789abcdeg-t"), None);
    }

    /// An in-process broker: one queue, or one queue per subscription, each a channel.
    /// Delivery takes `delay`, so latency has a floor the test can check.
    struct Fake {
        delay: Duration,
        queues: Mutex<Vec<(async_channel::Sender<Bytes>, async_channel::Receiver<Bytes>)>>,
        acked: Arc<AtomicU64>,
    }

    struct FakeProducer {
        to: Vec<async_channel::Sender<Bytes>>,
        delay: Duration,
    }

    struct FakeConsumer {
        from: async_channel::Receiver<Bytes>,
        pending: u64,
        acked: Arc<AtomicU64>,
        prefetch: usize,
    }

    impl Target for Fake {
        type Producer = FakeProducer;
        type Consumer = FakeConsumer;
        const SYSTEM: &'static str = "fake";

        async fn connect(_: &super::super::target::Endpoint) -> anyhow::Result<Fake> {
            anyhow::bail!("not used")
        }

        fn durability(&self, _: &Workload) -> String {
            "in memory".into()
        }

        async fn prepare(&self, w: &Workload) -> anyhow::Result<()> {
            let n = match w.pattern {
                Pattern::Queue => 1,
                Pattern::Fanout => w.consumers.max(1),
            };
            let mut q = self.queues.lock().unwrap();
            q.clear();
            q.extend((0..n).map(|_| async_channel::unbounded()));
            Ok(())
        }

        async fn producer(&self, _: &Workload, _: u32) -> anyhow::Result<FakeProducer> {
            let to = self.queues.lock().unwrap().iter().map(|(s, _)| s.clone()).collect();
            Ok(FakeProducer { to, delay: self.delay })
        }

        async fn consumer(&self, w: &Workload, n: u32) -> anyhow::Result<FakeConsumer> {
            let q = self.queues.lock().unwrap();
            let from = q[(n as usize).min(q.len() - 1)].1.clone();
            Ok(FakeConsumer { from, pending: 0, acked: self.acked.clone(), prefetch: w.prefetch as usize })
        }

        async fn cleanup(&self, _: &Workload) -> anyhow::Result<()> {
            self.queues.lock().unwrap().clear();
            Ok(())
        }
    }

    impl Producer for FakeProducer {
        async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
            tokio::time::sleep(self.delay).await;
            for q in &self.to {
                for b in batch {
                    q.send(b.clone()).await?;
                }
            }
            Ok(())
        }
    }

    impl Consumer for FakeConsumer {
        async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
            let Ok(first) = tokio::time::timeout(wait, self.from.recv()).await else { return Ok(()) };
            out.push(first?);
            while out.len() < self.prefetch {
                match self.from.try_recv() {
                    Ok(b) => out.push(b),
                    Err(_) => break,
                }
            }
            self.pending += out.len() as u64;
            Ok(())
        }

        async fn ack(&mut self) -> anyhow::Result<()> {
            self.acked.fetch_add(std::mem::take(&mut self.pending), Ordering::Relaxed);
            Ok(())
        }
    }

    fn plan(pattern: Pattern, consumers: u32, stop: Stop, rate: Option<f64>) -> Plan {
        Plan {
            workload: Workload {
                name: "fake".into(),
                pattern,
                size: 32,
                durability: Durability::None,
                consumers,
                prefetch: 100,
                batch: 10,
                auto_ack: false,
            },
            producers: 2,
            stop,
            warmup: Duration::from_millis(50),
            rate,
            timeout: Duration::from_secs(10),
            bucket: Duration::from_millis(10),
            round: 1,
        }
    }

    fn fake(delay: Duration) -> Arc<Fake> {
        Arc::new(Fake { delay, queues: Mutex::new(Vec::new()), acked: Arc::new(AtomicU64::new(0)) })
    }

    #[tokio::test]
    async fn a_counted_run_publishes_exactly_the_count_and_receives_it_all() {
        let f = fake(Duration::from_millis(2));
        let r = run(f.clone(), &plan(Pattern::Queue, 2, Stop::Count(1_003), None)).await.unwrap();
        assert_eq!((r.published, r.expected, r.received, r.foreign), (1_003, 1_003, 1_003, 0));
        assert_eq!(r.latency.len(), 1_003);
        assert_eq!(r.series.iter().map(Histogram::len).sum::<u64>(), 1_003);
        // Delivery takes the publish call's 2 ms at least.
        assert!(r.latency.min() >= 2_000, "min {} µs", r.latency.min());
        assert!(r.publish_rate() > 0.0 && r.e2e_rate() > 0.0);
        // Warm-up messages were received and acked too, but not counted.
        assert!(f.acked.load(Ordering::Relaxed) >= 1_003);
    }

    #[tokio::test]
    async fn a_fanout_run_expects_every_message_once_per_subscription() {
        let r = run(fake(Duration::ZERO), &plan(Pattern::Fanout, 3, Stop::Count(500), None)).await.unwrap();
        assert_eq!((r.published, r.expected, r.received), (500, 1_500, 1_500));
    }

    #[tokio::test]
    async fn a_publish_only_run_has_no_receipts() {
        let r = run(fake(Duration::ZERO), &plan(Pattern::Queue, 0, Stop::Count(100), None)).await.unwrap();
        assert_eq!((r.published, r.expected, r.received), (100, 0, 0));
        assert_eq!(r.e2e_rate(), 0.0);
    }

    #[tokio::test]
    async fn a_fixed_rate_run_keeps_its_rate_and_times_from_the_schedule() {
        // 2,000 msg/s for 0.3 s: about 600 messages, whatever the machine's speed.
        let p = plan(Pattern::Queue, 1, Stop::Duration(Duration::from_millis(300)), Some(2_000.0));
        let r = run(fake(Duration::ZERO), &p).await.unwrap();
        assert!((590..=601).contains(&r.published), "published {}", r.published);
        assert_eq!(r.received, r.published);
    }

    #[tokio::test]
    async fn a_stalled_broker_shows_in_fixed_rate_latency() {
        // Each publish call takes 20 ms while the schedule wants a message every 1 ms: the
        // messages that fall due during a call wait for it, and go out late in the next
        // batch. Timed from their intended send times, every message is at least one
        // call late, and the last of a batch up to two.
        let mut p = plan(Pattern::Queue, 1, Stop::Duration(Duration::from_millis(300)), Some(1_000.0));
        p.producers = 1;
        p.workload.batch = 1_000;
        let r = run(fake(Duration::from_millis(20)), &p).await.unwrap();
        assert!(r.latency.value_at_quantile(0.5) >= 20_000, "p50 {} µs", r.latency.value_at_quantile(0.5));
        assert!(r.latency.max() >= 30_000, "max {} µs", r.latency.max());
    }
}
