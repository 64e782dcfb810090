//! A subscription: a cursor into a stream plus the messages it has leased and not settled.
//!
//! A queue has one subscription that sees every message as it is published ("eager": its
//! ready set orders them by priority, then offset). A topic subscription walks the stream
//! with its cursor ("lazy"), so a thousand subscriptions cost no memory per message; only
//! redeliveries sit in its ready set.

use super::stream::{Stored, Stream};
use crate::command::{Delivery, SettleAction};
use crate::error::{Error, Result};
use crate::names::SubjectFilter;
use crate::types::{ReceiveRequest, Stats};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a subscription asks its destination to do after a change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The message is settled for good: a queue removes it.
    Settled(u64),
    /// The message is to move to the dead-letter queue, for this reason.
    DeadLetter(u64, String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    offset: u64,
    expires_at: u64,
}

/// How one receive takes its messages.
struct Take {
    now: u64,
    auto_ack: bool,
    visibility_ms: u64,
}

/// Ready-set key: priority inverted so that ascending order gives the highest first.
fn ready_key(msg: &Stored, offset: u64) -> (u8, u64) {
    (u8::MAX - msg.priority, offset)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Subscription {
    eager: bool,
    pub(crate) filter: Option<SubjectFilter>,
    pub(crate) no_local: bool,
    pub(crate) visibility_ms: u64,
    pub(crate) max_deliveries: u32,
    /// Lazy subscriptions: offsets below have been looked at.
    cursor: u64,
    ready: BTreeSet<(u8, u64)>,
    /// offset → when it may be delivered.
    delayed: BTreeMap<u64, u64>,
    delayed_by_time: BTreeSet<(u64, u64)>,
    next_lease: u64,
    leases: BTreeMap<u64, Lease>,
    lease_expiries: BTreeSet<(u64, u64)>,
    leased: BTreeMap<u64, u64>,
    deliveries: BTreeMap<u64, u32>,
    delivered: u64,
    acked: u64,
    dead_lettered: u64,
}

impl Subscription {
    pub(crate) fn new(eager: bool, cursor: u64, visibility_ms: u64, max_deliveries: u32) -> Subscription {
        Subscription {
            eager,
            filter: None,
            no_local: false,
            visibility_ms,
            max_deliveries,
            cursor,
            ready: BTreeSet::new(),
            delayed: BTreeMap::new(),
            delayed_by_time: BTreeSet::new(),
            next_lease: 1,
            leases: BTreeMap::new(),
            lease_expiries: BTreeSet::new(),
            leased: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            delivered: 0,
            acked: 0,
            dead_lettered: 0,
        }
    }

    fn wants(&self, msg: &Stored, consumer: Option<&str>) -> bool {
        if let Some(f) = &self.filter {
            if !msg.subject.as_deref().is_some_and(|s| f.matches(s)) {
                return false;
            }
        }
        !(self.no_local && consumer.is_some() && msg.producer.as_deref() == consumer)
    }

    fn make_available(&mut self, offset: u64, msg: &Stored, at: u64, now: u64) {
        if at > now {
            self.delayed.insert(offset, at);
            self.delayed_by_time.insert((at, offset));
        } else {
            self.ready.insert(ready_key(msg, offset));
        }
    }

    /// A new message; eager subscriptions index it now.
    pub(crate) fn on_publish(&mut self, offset: u64, msg: &Stored, now: u64) {
        if self.eager {
            self.make_available(offset, msg, msg.deliver_at, now);
        }
    }

    /// The message left the stream (acked, expired, trimmed, purged).
    pub(crate) fn forget(&mut self, offset: u64, msg: &Stored) {
        self.ready.remove(&ready_key(msg, offset));
        if let Some(at) = self.delayed.remove(&offset) {
            self.delayed_by_time.remove(&(at, offset));
        }
        if let Some(lease) = self.leased.remove(&offset) {
            if let Some(l) = self.leases.remove(&lease) {
                self.lease_expiries.remove(&(l.expires_at, lease));
            }
        }
        self.deliveries.remove(&offset);
    }

    /// Drops every lease and pending redelivery and moves the cursor (seek, purge).
    pub(crate) fn reset(&mut self, cursor: u64) {
        self.cursor = cursor;
        self.ready.clear();
        self.delayed.clear();
        self.delayed_by_time.clear();
        self.leases.clear();
        self.lease_expiries.clear();
        self.leased.clear();
        self.deliveries.clear();
    }

    /// Returns leases whose time is up, and delayed messages whose time has come, to the
    /// ready set; dead-letters what has been delivered too often.
    pub(crate) fn advance(&mut self, now: u64, stream: &Stream, effects: &mut Vec<Effect>) {
        while let Some(&(at, lease)) = self.lease_expiries.first() {
            if at > now {
                break;
            }
            self.lease_expiries.pop_first();
            if let Some(l) = self.leases.remove(&lease) {
                self.leased.remove(&l.offset);
                self.requeue(l.offset, now, now, stream, effects);
            }
        }
        while let Some(&(at, offset)) = self.delayed_by_time.first() {
            if at > now {
                break;
            }
            self.delayed_by_time.pop_first();
            self.delayed.remove(&offset);
            if let Some(msg) = stream.msgs.get(&offset) {
                self.ready.insert(ready_key(msg, offset));
            }
        }
    }

    /// A leased message comes back: available at `at`, or dead-lettered if delivered
    /// `max_deliveries` times.
    fn requeue(&mut self, offset: u64, at: u64, now: u64, stream: &Stream, effects: &mut Vec<Effect>) {
        let Some(msg) = stream.msgs.get(&offset) else { return };
        let count = self.deliveries.get(&offset).copied().unwrap_or(0);
        if self.max_deliveries > 0 && count >= self.max_deliveries {
            self.deliveries.remove(&offset);
            self.dead_lettered += 1;
            effects.push(Effect::DeadLetter(offset, format!("delivered {count} times without an ack")));
        } else {
            self.make_available(offset, msg, at, now);
        }
    }

    /// Leases (or with `auto_ack`, settles) up to `max` messages: redeliveries first (the
    /// ready set, by priority), then, for a topic subscription, new messages from the
    /// cursor on, walked in one pass over the stream.
    pub(crate) fn receive(
        &mut self,
        now: u64,
        r: &ReceiveRequest,
        stream: &Stream,
        effects: &mut Vec<Effect>,
    ) -> Vec<Delivery> {
        let (max, consumer) = (r.max as usize, r.consumer.as_deref());
        let take = Take { now, auto_ack: r.auto_ack, visibility_ms: r.visibility_ms.unwrap_or(self.visibility_ms) };
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        while out.len() < max {
            let Some((_, offset)) = self.ready.pop_first() else { break };
            // A message that left the stream meanwhile (expired, trimmed) is simply gone.
            let Some(msg) = stream.msgs.get(&offset) else { continue };
            if self.eager && !self.wants(msg, consumer) {
                // no_local on a queue: leave it for another consumer.
                skipped.push(ready_key(msg, offset));
                continue;
            }
            out.push(self.take(offset, msg, &take, effects));
        }
        self.ready.extend(skipped);
        if !self.eager {
            for (&offset, msg) in stream.msgs.range(self.cursor..) {
                if out.len() >= max {
                    break;
                }
                self.cursor = offset + 1;
                if !self.wants(msg, consumer) {
                    continue;
                }
                if msg.deliver_at > now {
                    self.make_available(offset, msg, msg.deliver_at, now);
                    continue;
                }
                out.push(self.take(offset, msg, &take, effects));
            }
        }
        out
    }

    /// Delivers one message: leases it, or with auto-ack settles it at once.
    fn take(&mut self, offset: u64, msg: &Stored, t: &Take, effects: &mut Vec<Effect>) -> Delivery {
        self.delivered += 1;
        if t.auto_ack {
            // Settled now: its delivery count has no further use.
            let count = self.deliveries.remove(&offset).unwrap_or(0) + 1;
            self.acked += 1;
            effects.push(Effect::Settled(offset));
            return msg.delivery(offset, None, count);
        }
        let count = self.deliveries.entry(offset).or_insert(0);
        *count += 1;
        let count = *count;
        let lease = self.next_lease;
        self.next_lease += 1;
        let expires_at = t.now.saturating_add(t.visibility_ms);
        self.leases.insert(lease, Lease { offset, expires_at });
        self.lease_expiries.insert((expires_at, lease));
        self.leased.insert(offset, lease);
        msg.delivery(offset, Some(lease), count)
    }

    /// Acks, nacks or extends one lease.
    pub(crate) fn settle(
        &mut self,
        now: u64,
        lease: u64,
        action: SettleAction,
        stream: &Stream,
        effects: &mut Vec<Effect>,
    ) -> Result<()> {
        let Some(l) = self.leases.get(&lease).cloned() else {
            return Err(Error::UnknownLease { lease });
        };
        if l.expires_at <= now {
            return Err(Error::LeaseExpired { lease });
        }
        match action {
            SettleAction::Extend { visibility_ms } => {
                if visibility_ms == 0 || visibility_ms > 12 * 3_600_000 {
                    return Err(Error::invalid("visibility_ms", "must be 1 ms to 12 hours"));
                }
                let expires_at = now.saturating_add(visibility_ms);
                self.lease_expiries.remove(&(l.expires_at, lease));
                self.lease_expiries.insert((expires_at, lease));
                self.leases.insert(lease, Lease { offset: l.offset, expires_at });
            }
            SettleAction::Ack => {
                self.drop_lease(lease, &l);
                self.deliveries.remove(&l.offset);
                self.acked += 1;
                effects.push(Effect::Settled(l.offset));
            }
            SettleAction::Nack { delay_ms } => {
                self.drop_lease(lease, &l);
                self.requeue(l.offset, now.saturating_add(delay_ms), now, stream, effects);
            }
        }
        Ok(())
    }

    fn drop_lease(&mut self, lease: u64, l: &Lease) {
        self.leases.remove(&lease);
        self.lease_expiries.remove(&(l.expires_at, lease));
        self.leased.remove(&l.offset);
    }

    /// Whether a receive at `now` would find something (for waking long-polls).
    pub(crate) fn has_ready(&self, now: u64, stream: &Stream, consumer: Option<&str>) -> bool {
        // A lease that ran out or a delay that passed is ready once the receive applies.
        if !self.ready.is_empty() || self.next_deadline().is_some_and(|at| at <= now) {
            return true;
        }
        !self.eager && stream.msgs.range(self.cursor..).any(|(_, m)| self.wants(m, consumer) && m.deliver_at <= now)
    }

    /// The earliest time at which a lease expires or a delayed message becomes due.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let a = self.lease_expiries.first().map(|x| x.0);
        let b = self.delayed_by_time.first().map(|x| x.0);
        a.into_iter().chain(b).min()
    }

    pub(crate) fn stats(&self, stream: &Stream) -> Stats {
        let pending = if self.eager {
            stream.msgs.len() as u64
        } else {
            stream.msgs.range(self.cursor..).count() as u64 + self.ready.len() as u64 + self.delayed.len() as u64
        };
        Stats {
            depth: pending,
            in_flight: self.leases.len() as u64,
            delivered: self.delivered,
            acked: self.acked,
            dead_lettered: self.dead_lettered,
            ..Stats::default()
        }
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.leases.len() as u64
    }

    pub(crate) fn counters(&self) -> (u64, u64) {
        (self.delivered, self.acked)
    }
}
