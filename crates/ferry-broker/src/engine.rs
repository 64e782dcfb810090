//! The local engine: the [`Broker`] handle that front doors call. It writes each command to
//! ferry-log (group commit: many commands, one write, one fdatasync), applies commands to the
//! [`State`] strictly in log order, answers each caller with its command's outcome, and
//! wakes consumers that wait for messages.
//!
//! On disk, a broker directory holds `log/` (the command log) and `snapshot` (the state as
//! of some log index). Opening loads the snapshot and replays the log after it. Every
//! `snapshot_every` commands a new snapshot is written and log segments that neither the
//! snapshot nor a stored message needs are deleted; messages that would keep old segments
//! alive are copied forward first.

use crate::command::{Command, Delivery, Outcome, SettleAction};
use crate::error::{Error, Result};
use crate::names;
use crate::recent::Recent;
use crate::state::State;
use crate::types::{
    DestinationInfo, Durability, Kind, NewMessage, Published, ReceiveRequest, Settings, StartAt, SubscriptionSettings,
};
use bytes::Bytes;
use ferry_log::{Log, LogOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify};

/// Options for [`Broker::open`].
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Commands between snapshots (default 50 000).
    pub snapshot_every: u64,
    /// The log's segment size (default 64 MiB).
    pub segment_size: u64,
    /// Copy forward messages that keep more than this many old segments alive (default 4).
    pub pinned_segments: usize,
    /// Bytes of recently published messages kept in memory as well as in the log, so that
    /// consumers that keep up are served without reading the log (default 32 MiB).
    pub recent_bytes: usize,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions { snapshot_every: 50_000, segment_size: 64 << 20, pinned_segments: 4, recent_bytes: 32 << 20 }
    }
}

/// A message as a consumer receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message id.
    pub id: u64,
    /// Its offset in the destination's stream.
    pub offset: u64,
    /// The lease to ack, nack or extend; `None` with auto-ack.
    pub lease: Option<u64>,
    /// Deliveries so far, this one included.
    pub delivery_count: u32,
    /// When it was published (milliseconds since the epoch).
    pub published_at: u64,
    /// Why it is in a dead-letter queue, if it is.
    pub dead_letter_reason: Option<String>,
    /// The message as published: body, headers, subject, key, priority, ids.
    pub message: NewMessage,
}

/// The milliseconds since the Unix epoch now: the time stamped into commands.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

type Reply = oneshot::Sender<Outcome>;

/// What is applied, and what waits to be applied in order.
struct Core {
    state: State,
    /// Commands written to the log but not yet applied, by log index.
    pending: BTreeMap<u64, (Command, Reply)>,
    /// The log index to apply next.
    next: u64,
    since_snapshot: u64,
    /// The latest applied commands that stored messages.
    recent: Recent,
}

impl Core {
    /// Applies every pending command that is next in log order.
    fn apply_ready(&mut self, woken: &mut Vec<String>) {
        while let Some((cmd, reply)) = self.pending.remove(&self.next) {
            let outcome = self.state.apply(self.next, &cmd);
            if let Some(name) = wakes(&cmd) {
                woken.push(name.to_string());
            }
            if !matches!(outcome, Outcome::Failed(_)) {
                self.recent.keep(self.next, cmd);
            }
            let _ = reply.send(outcome);
            self.next += 1;
            self.since_snapshot += 1;
        }
    }
}

/// The destination whose waiting consumers a command may interest.
fn wakes(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Publish { name, .. } | Command::Settle { name, .. } | Command::Seek { topic: name, .. } => Some(name),
        Command::DeleteDestination { name } | Command::Purge { name, .. } => Some(name),
        _ => None,
    }
}

struct Inner {
    dir: PathBuf,
    opts: BrokerOptions,
    log: Log,
    core: Mutex<Core>,
    /// One per destination with waiting consumers.
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// Set while a snapshot is due or being written.
    snapshotting: AtomicBool,
    /// Wakes the snapshot task.
    snapshot_due: Arc<Notify>,
    /// One snapshot at a time: they share the temp file. Holds `true` once `close` has
    /// written the last snapshot: a clone or the snapshot task may outlive the close, and
    /// must not write a stale snapshot over the one a reopened broker writes.
    snapshot_lock: tokio::sync::Mutex<bool>,
    /// Set while an interval sync is scheduled.
    sync_pending: AtomicBool,
    /// Wakes the deadline task after every apply: a lease or delay may have moved the
    /// earliest deadline.
    deadlines_changed: Arc<Notify>,
    /// Held (shared) from the moment a reader learns where its messages are in the log
    /// until it has read them. A snapshot relocates old messages and then deletes their
    /// segments; before deleting, it takes this exclusively, so that no reader is left
    /// holding a location from before the relocation.
    reading: tokio::sync::RwLock<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the background tasks see that the broker is gone.
        self.snapshot_due.notify_one();
        self.deadlines_changed.notify_one();
    }
}

/// The broker: a cheap, cloneable handle over one data directory.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ferry_broker::Error> {
/// use ferry_broker::{Broker, NewMessage, ReceiveRequest, Settings};
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let broker = Broker::open(dir.path()).await?;
/// broker.create_queue("jobs", "admin", Settings::default()).await?;
/// broker.publish("jobs", None, vec![NewMessage::new("resize 42.png")]).await?;
///
/// let got = broker.receive("jobs", None, ReceiveRequest::default(), Duration::from_secs(1)).await?;
/// assert_eq!(got[0].message.body, "resize 42.png");
/// broker.ack("jobs", None, &[got[0].lease.unwrap()]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Broker {
    /// Opens (or creates) the broker in `dir` with default options.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the log or snapshot cannot be read.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Broker> {
        Broker::open_with(dir, BrokerOptions::default()).await
    }

    /// Opens (or creates) the broker in `dir`: loads the snapshot and replays the log.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the log or snapshot cannot be read or do not fit together.
    pub async fn open_with(dir: impl AsRef<Path>, opts: BrokerOptions) -> Result<Broker> {
        let dir = dir.as_ref().to_path_buf();
        let (log, state) = tokio::task::spawn_blocking({
            let (dir, opts) = (dir.clone(), opts.clone());
            move || load(&dir, &opts)
        })
        .await
        .map_err(|e| Error::Storage(format!("opening the broker: {e}")))??;
        let next = log.next_seq();
        let recent = Recent::new(opts.recent_bytes);
        let core = Core { state, pending: BTreeMap::new(), next, since_snapshot: 0, recent };
        let inner = Inner {
            dir,
            opts,
            log,
            core: Mutex::new(core),
            waiters: Mutex::new(HashMap::new()),
            snapshotting: AtomicBool::new(false),
            snapshot_due: Arc::new(Notify::new()),
            snapshot_lock: tokio::sync::Mutex::new(false),
            sync_pending: AtomicBool::new(false),
            deadlines_changed: Arc::new(Notify::new()),
            reading: tokio::sync::RwLock::new(()),
        };
        let inner = Arc::new(inner);
        // Snapshots run on their own task, so no caller waits for one. It holds the broker
        // only while it works.
        let weak = Arc::downgrade(&inner);
        let due = inner.snapshot_due.clone();
        tokio::spawn(async move {
            loop {
                due.notified().await;
                let Some(inner) = weak.upgrade() else { return };
                let broker = Broker { inner };
                match broker.snapshot().await {
                    Ok(()) => {}
                    Err(Error::Closed) => return,
                    Err(e) => tracing::warn!(error = %e, "snapshot failed; the log keeps everything meanwhile"),
                }
                broker.inner.snapshotting.store(false, Ordering::Release);
            }
        });
        let weak = Arc::downgrade(&inner);
        let changed = inner.deadlines_changed.clone();
        tokio::spawn(async move {
            // Applies lease expiries, delays and dead-lettering when their time comes even
            // if no consumer is waiting on the destination.
            loop {
                let next = match weak.upgrade() {
                    Some(inner) => Broker { inner }.state(State::next_deadline),
                    None => return,
                };
                let sleep = next.map(|at| Duration::from_millis(at.saturating_sub(now_ms()).saturating_add(1)));
                tokio::select! {
                    _ = changed.notified() => {
                        // Busy brokers change deadlines all the time: look again at most
                        // every few milliseconds rather than after every command.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    _ = tokio::time::sleep(sleep.unwrap_or(Duration::from_secs(3600))), if sleep.is_some() => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                // Soft state, like the leases it frees: no need to wait for a sync.
                if let Err(e) = (Broker { inner }).propose(Command::Tick { now: now_ms() }, false).await {
                    tracing::debug!(error = %e, "deadline tick failed");
                }
            }
        });
        Ok(Broker { inner })
    }

    /// Writes a command and returns its outcome once it is applied and, if `durable`,
    /// fdatasynced.
    ///
    /// The write and the hand-over to the in-order apply run on a task of their own: the
    /// caller's future may be dropped midway (a client that went away, a deadline), and a
    /// command in the log that never reached `pending` would hold up every later one.
    async fn propose(&self, cmd: Command, durable: bool) -> Result<Outcome> {
        let broker = self.clone();
        tokio::spawn(async move { broker.write_and_apply(cmd, durable).await }).await.map_err(|_| Error::Closed)?
    }

    async fn write_and_apply(&self, cmd: Command, durable: bool) -> Result<Outcome> {
        let bytes = Bytes::from(cmd.encode()?);
        let appended =
            if durable { self.inner.log.append(bytes).await? } else { self.inner.log.append_unsynced(bytes).await? };
        let (tx, rx) = oneshot::channel();
        let mut woken = Vec::new();
        let snapshot_due = {
            let mut core = lock(&self.inner.core);
            core.pending.insert(appended.seq, (cmd, tx));
            core.apply_ready(&mut woken);
            core.since_snapshot >= self.inner.opts.snapshot_every
        };
        self.wake(&woken);
        self.inner.deadlines_changed.notify_one();
        if snapshot_due && !self.inner.snapshotting.swap(true, Ordering::AcqRel) {
            self.inner.snapshot_due.notify_one();
        }
        rx.await.map_err(|_| Error::Closed)
    }

    async fn run(&self, cmd: Command, durable: bool) -> Result<Outcome> {
        match self.propose(cmd, durable).await? {
            Outcome::Failed(e) => Err(e),
            outcome => Ok(outcome),
        }
    }

    /// Runs a command that is durable as `durability` says (`None`: soft state, never
    /// waited for).
    async fn run_as(&self, cmd: Command, durability: Option<Durability>) -> Result<Outcome> {
        let outcome = self.run(cmd, durability == Some(Durability::Fsync)).await?;
        if let Some(Durability::Interval(ms)) = durability {
            self.sync_within(Duration::from_millis(ms));
        }
        Ok(outcome)
    }

    fn wake(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let waiters = lock(&self.inner.waiters);
        for n in names {
            if let Some(w) = waiters.get(n) {
                w.notify_waiters();
            }
        }
    }

    fn waiter(&self, name: &str) -> Arc<Notify> {
        lock(&self.inner.waiters).entry(name.to_string()).or_default().clone()
    }

    fn state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.inner.core).state)
    }

    /// Creates a queue owned by `owner`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::Invalid`] for settings.
    pub async fn create_queue(&self, name: &str, owner: &str, settings: Settings) -> Result<()> {
        self.create(name, owner, Kind::Queue, settings).await
    }

    /// Creates a topic owned by `owner`.
    ///
    /// # Errors
    ///
    /// As [`create_queue`](Self::create_queue).
    pub async fn create_topic(&self, name: &str, owner: &str, settings: Settings) -> Result<()> {
        self.create(name, owner, Kind::Topic, settings).await
    }

    async fn create(&self, name: &str, owner: &str, kind: Kind, settings: Settings) -> Result<()> {
        names::check(name)?;
        settings.validate(kind, name)?;
        let cmd = Command::CreateDestination { now: now_ms(), owner: owner.into(), name: name.into(), kind, settings };
        self.run(cmd, true).await.map(drop)
    }

    /// Deletes a destination, its messages and its subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.run(Command::DeleteDestination { name: name.into() }, true).await.map(drop)
    }

    /// Replaces a destination's settings.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Invalid`].
    pub async fn update_settings(&self, name: &str, settings: Settings) -> Result<()> {
        self.run(Command::UpdateSettings { name: name.into(), settings }, true).await.map(drop)
    }

    /// Removes every message of a destination.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub async fn purge(&self, name: &str) -> Result<()> {
        self.run(Command::Purge { now: now_ms(), name: name.into() }, true).await.map(drop)
    }

    /// Publishes messages, in order, and returns once they are durable under the
    /// destination's [`Durability`].
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::MessageTooLarge`] (nothing is published then).
    pub async fn publish(
        &self,
        name: &str,
        producer: Option<&str>,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Published>> {
        // Refuse what is certainly wrong before it takes room in the log.
        let (durability, max) = self.state(|s| s.publish_limits(name))?;
        if let Some(m) = messages.iter().find(|m| m.body.len() > max as usize) {
            return Err(Error::MessageTooLarge { size: m.body.len(), max: max as usize });
        }
        let cmd = Command::Publish { now: now_ms(), name: name.into(), producer: producer.map(Into::into), messages };
        match self.run_as(cmd, Some(durability)).await? {
            Outcome::Published(p) => Ok(p),
            other => Err(Error::Storage(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Makes sure an fdatasync happens within `within`: one timer at a time serves every
    /// interval-mode publish that comes while it runs.
    fn sync_within(&self, within: Duration) {
        if self.inner.sync_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(within).await;
            let Some(inner) = inner.upgrade() else { return };
            inner.sync_pending.store(false, Ordering::Release);
            if let Err(e) = inner.log.sync().await {
                tracing::error!(error = %e, "interval sync failed");
            }
        });
    }

    /// Creates a named subscription on a topic.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::AlreadyExists`], [`Error::InvalidName`], [`Error::Invalid`].
    pub async fn subscribe(&self, topic: &str, name: &str, settings: SubscriptionSettings) -> Result<()> {
        let cmd = Command::CreateSubscription { now: now_ms(), topic: topic.into(), name: name.into(), settings };
        self.run(cmd, true).await.map(drop)
    }

    /// Deletes a subscription.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::SubscriptionNotFound`].
    pub async fn unsubscribe(&self, topic: &str, name: &str) -> Result<()> {
        self.run(Command::DeleteSubscription { topic: topic.into(), name: name.into() }, true).await.map(drop)
    }

    /// Moves a subscription to an offset or a time (replay), dropping its leases.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::SubscriptionNotFound`].
    pub async fn seek(&self, topic: &str, name: &str, to: StartAt) -> Result<()> {
        let cmd = Command::Seek { now: now_ms(), topic: topic.into(), name: name.into(), to };
        self.run(cmd, true).await.map(drop)
    }

    /// Receives up to `request.max` messages, waiting up to `wait` for the first one
    /// (long poll). Leased messages must be acked before their visibility timeout; with
    /// `auto_ack` they are removed at once (at-most-once).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::SubscriptionNotFound`], [`Error::WrongKind`],
    /// [`Error::Invalid`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe while waiting. If the future is dropped after the receive was written,
    /// the leases it took expire and their messages are redelivered.
    pub async fn receive(
        &self,
        name: &str,
        subscription: Option<&str>,
        request: ReceiveRequest,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>> {
        request.validate()?;
        let deadline = tokio::time::Instant::now() + wait;
        let waiter = self.waiter(name);
        loop {
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = now_ms();
            let (ready, next_deadline, durability) = self.state(|s| {
                let ready = s.has_ready(name, subscription, now, request.consumer.as_deref());
                (ready, s.next_deadline(), s.publish_limits(name).map(|(d, _)| d).unwrap_or_default())
            });
            if ready {
                let cmd = Command::Receive {
                    now,
                    name: name.into(),
                    subscription: subscription.map(Into::into),
                    request: request.clone(),
                };
                // Leases are soft state: a lost one only redelivers. Auto-acks remove
                // messages for good, so they are as durable as the destination's publishes.
                let _reading = self.inner.reading.read().await;
                match self.run_as(cmd, request.auto_ack.then_some(durability)).await? {
                    Outcome::Received(d) if !d.is_empty() => return self.load(d),
                    _ => {}
                }
            }
            let t = tokio::time::Instant::now();
            if t >= deadline {
                return Ok(Vec::new());
            }
            let mut until = deadline;
            if let Some(at) = next_deadline {
                let due = Duration::from_millis(at.saturating_sub(now_ms()).saturating_add(1));
                until = until.min(t + due);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// The contents of delivered messages: from the recent commands kept in memory, or
    /// else read from the log.
    fn load(&self, deliveries: Vec<Delivery>) -> Result<Vec<ReceivedMessage>> {
        // Deliveries come in runs from one record (a publish batch): each record is looked
        // up once per run, first among the recent commands, then in the log.
        let mut commands: HashMap<u64, Arc<Command>> = HashMap::new();
        {
            let core = lock(&self.inner.core);
            let mut previous = None;
            for d in &deliveries {
                let index = d.location.index;
                if previous.replace(index) != Some(index) {
                    if let std::collections::hash_map::Entry::Vacant(e) = commands.entry(index) {
                        if let Some(cmd) = core.recent.get(index) {
                            e.insert(cmd);
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(deliveries.len());
        let mut current: Option<(u64, Arc<Command>)> = None;
        for d in deliveries {
            let index = d.location.index;
            let command = match &current {
                Some((i, cmd)) if *i == index => cmd,
                _ => {
                    let cmd = match commands.get(&index) {
                        Some(cmd) => cmd.clone(),
                        None => {
                            let cmd = Arc::new(Command::decode(&self.inner.log.read(index)?.payload)?);
                            commands.insert(index, cmd.clone());
                            cmd
                        }
                    };
                    &current.insert((index, cmd)).1
                }
            };
            let message = command
                .message(d.location.slot)
                .ok_or_else(|| Error::Storage(format!("message {} is missing from log record {index}", d.id)))?;
            out.push(ReceivedMessage {
                id: d.id,
                offset: d.offset,
                lease: d.lease,
                delivery_count: d.delivery_count,
                published_at: d.published_at,
                dead_letter_reason: d.dead_letter_reason,
                message,
            });
        }
        Ok(out)
    }

    async fn settle(
        &self,
        name: &str,
        subscription: Option<&str>,
        leases: &[u64],
        action: SettleAction,
    ) -> Result<Vec<Result<()>>> {
        let cmd = Command::Settle {
            now: now_ms(),
            name: name.into(),
            subscription: subscription.map(Into::into),
            leases: leases.to_vec(),
            action,
        };
        // Acks are as durable as the destination's publishes (an acked message of an fsync
        // destination never comes back); nacks and extensions are lease changes, soft state
        // like the leases themselves.
        let durability = self.state(|s| s.publish_limits(name).map(|(d, _)| d).unwrap_or_default());
        match self.run_as(cmd, matches!(action, SettleAction::Ack).then_some(durability)).await? {
            Outcome::Settled(r) => Ok(r),
            other => Err(Error::Storage(format!("unexpected outcome {other:?}"))),
        }
    }

    /// Acks leases: the messages are done. One result per lease.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] and the like for the destination; per lease,
    /// [`Error::UnknownLease`] or [`Error::LeaseExpired`].
    pub async fn ack(&self, name: &str, subscription: Option<&str>, leases: &[u64]) -> Result<Vec<Result<()>>> {
        self.settle(name, subscription, leases, SettleAction::Ack).await
    }

    /// Returns leased messages for redelivery after `delay`.
    ///
    /// # Errors
    ///
    /// As [`ack`](Self::ack).
    pub async fn nack(
        &self,
        name: &str,
        subscription: Option<&str>,
        leases: &[u64],
        delay: Duration,
    ) -> Result<Vec<Result<()>>> {
        let delay_ms = delay.as_millis().min(u64::MAX as u128) as u64;
        self.settle(name, subscription, leases, SettleAction::Nack { delay_ms }).await
    }

    /// Extends leases to `visibility` from now.
    ///
    /// # Errors
    ///
    /// As [`ack`](Self::ack).
    pub async fn extend(
        &self,
        name: &str,
        subscription: Option<&str>,
        leases: &[u64],
        visibility: Duration,
    ) -> Result<Vec<Result<()>>> {
        let visibility_ms = visibility.as_millis().min(u64::MAX as u128) as u64;
        self.settle(name, subscription, leases, SettleAction::Extend { visibility_ms }).await
    }

    /// Every destination's name and kind.
    pub fn list(&self) -> Vec<(String, Kind)> {
        self.state(State::list)
    }

    /// A destination's settings and statistics.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn describe(&self, name: &str) -> Result<DestinationInfo> {
        let now = now_ms();
        self.state(|s| s.describe(name, now))
    }

    /// A destination's kind and owner, without the statistics of
    /// [`describe`](Self::describe): cheap enough for a check on every request.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn owner(&self, name: &str) -> Result<(Kind, String)> {
        self.state(|s| s.owner(name))
    }

    /// Up to `max` stored messages from `from_offset` on, without consuming them.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Storage`].
    pub async fn peek(&self, name: &str, from_offset: u64, max: usize) -> Result<Vec<ReceivedMessage>> {
        let _reading = self.inner.reading.read().await;
        let deliveries = self.state(|s| s.peek(name, from_offset, max))?;
        self.load(deliveries)
    }

    /// How long the log's `fdatasync` calls have taken since the broker opened.
    pub fn sync_stats(&self) -> ferry_log::SyncStats {
        self.inner.log.sync_stats()
    }

    /// A copy of the whole state, for tests and diagnostics.
    pub fn state_snapshot(&self) -> State {
        self.state(State::clone)
    }

    /// Writes a snapshot now, then deletes log segments that nothing needs any more,
    /// copying forward the few messages that would keep many old segments alive.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`]; [`Error::Closed`] after [`Broker::close`].
    pub async fn snapshot(&self) -> Result<()> {
        let closed = self.inner.snapshot_lock.lock().await;
        if *closed {
            return Err(Error::Closed);
        }
        self.write_snapshot().await
    }

    /// The body of [`Broker::snapshot`]; the caller holds `snapshot_lock`.
    async fn write_snapshot(&self) -> Result<()> {
        self.copy_forward().await?;
        let (bytes, applied) = {
            let mut core = lock(&self.inner.core);
            core.since_snapshot = 0;
            (core.state.encode()?, core.state.applied())
        };
        let path = self.inner.dir.join(SNAPSHOT);
        tokio::task::spawn_blocking(move || ferry_log::snapshot::write(&path, &bytes))
            .await
            .map_err(|e| Error::Storage(format!("snapshot task: {e}")))??;
        // Waits out the readers that may hold locations from before `copy_forward`; later
        // ones see the relocated messages.
        drop(self.inner.reading.write().await);
        let needed = self.state(State::min_log_index).unwrap_or(u64::MAX);
        let keep_from = needed.min(applied + 1);
        let removed = self.inner.log.remove_segments_before(keep_from).await?;
        if !removed.is_empty() {
            tracing::debug!(segments = removed.len(), keep_from, "log segments reclaimed");
        }
        Ok(())
    }

    /// Re-publishes (as a relocation) messages stored in segments older than the newest
    /// `pinned_segments`, if there are few enough of them to be worth it.
    async fn copy_forward(&self) -> Result<()> {
        let segments = self.inner.log.segments();
        let Some(limit) = segments.iter().rev().nth(self.inner.opts.pinned_segments).map(|s| s.base) else {
            return Ok(());
        };
        let old = self.state(|s| s.messages_below(limit, 10_000));
        if old.is_empty() || old.len() >= 10_000 {
            return Ok(());
        }
        let mut moves = Vec::with_capacity(old.len());
        let mut copies = Vec::with_capacity(old.len());
        let deliveries: Vec<Delivery> = old
            .iter()
            .map(|(_, offset, location)| Delivery {
                id: 0,
                offset: *offset,
                lease: None,
                delivery_count: 0,
                location: *location,
                published_at: 0,
                dead_letter_reason: None,
            })
            .collect();
        for ((name, offset, _), m) in old.into_iter().zip(self.load(deliveries)?) {
            moves.push((name, offset, copies.len() as u32));
            copies.push(m.message);
        }
        self.run(Command::Relocate { moves, copies }, true).await.map(drop)
    }

    /// Writes a last snapshot and closes the log.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`]; [`Error::Closed`] if a clone was closed already.
    pub async fn close(self) -> Result<()> {
        let mut closed = self.inner.snapshot_lock.lock().await;
        if *closed {
            return Err(Error::Closed);
        }
        self.write_snapshot().await?;
        *closed = true;
        self.inner.log.clone().close().await.map_err(Error::from)
    }

    /// The broker's data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

const SNAPSHOT: &str = "snapshot";

/// Opens the log, loads the snapshot and replays what follows it.
fn load(dir: &Path, opts: &BrokerOptions) -> Result<(Log, State)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
    let log = LogOptions::new().segment_size(opts.segment_size).open(dir.join("log"))?;
    let mut state = match ferry_log::snapshot::read(&dir.join(SNAPSHOT))? {
        Some(bytes) => State::decode(&bytes)?,
        None => State::new(),
    };
    let from = state.applied() + 1;
    if from < log.first_seq() {
        return Err(Error::Storage(format!(
            "the snapshot ends at log index {} but the log starts at {}",
            state.applied(),
            log.first_seq()
        )));
    }
    if from < log.next_seq() {
        let mut reader = log.reader(from)?;
        while let Some(record) = reader.try_next()? {
            let cmd = Command::decode(&record.payload)?;
            state.apply(record.seq, &cmd);
        }
    }
    Ok((log, state))
}
