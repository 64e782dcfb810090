//! The broker's state machine: pure, deterministic, no I/O. `apply(index, command)` is the
//! only way to change it, and the same commands in the same order give the same state,
//! byte for byte, on any machine and after any restart. Time comes inside the commands; the
//! state keeps the largest time seen, so that it never goes back.
//!
//! Every destination is a [`Stream`] of small index entries plus subscriptions: a queue has
//! one shared, eager subscription; a topic has named lazy ones.

mod stream;
mod subscription;

use crate::command::{Command, Delivery, Location, Outcome, SettleAction};
use crate::error::{Error, Result};
use crate::names::{self, SubjectFilter};
use crate::types::{
    DestinationInfo, Kind, NewMessage, Published, ReceiveRequest, Settings, StartAt, Stats, SubscriptionSettings,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stream::{Stored, Stream, NEVER};
use subscription::{Effect, Subscription};

/// The key of a queue's one subscription.
const QUEUE_SUB: &str = "";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Destination {
    kind: Kind,
    owner: String,
    created_at: u64,
    settings: Settings,
    stream: Stream,
    subs: BTreeMap<String, Subscription>,
    /// dedup id → (time seen, id, offset)
    dedup: BTreeMap<String, (u64, u64, u64)>,
    dedup_by_time: BTreeSet<(u64, String)>,
    published: u64,
    expired: u64,
    dead_lettered: u64,
}

/// The whole broker state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    applied: u64,
    clock: u64,
    next_id: u64,
    destinations: BTreeMap<String, Destination>,
}

fn not_found(kind: Option<Kind>, name: &str) -> Error {
    Error::NotFound { kind, name: name.to_string() }
}

impl State {
    /// An empty broker.
    pub fn new() -> State {
        State::default()
    }

    /// The log index of the last command applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies the command at log index `index`. A refused command changes nothing but the
    /// applied index.
    pub fn apply(&mut self, index: u64, command: &Command) -> Outcome {
        self.applied = index;
        let clock = self.clock;
        match self.apply_inner(index, command) {
            Ok(outcome) => outcome,
            Err(e) => {
                // Refused commands are checked before they change anything but the clock.
                self.clock = clock;
                Outcome::Failed(e)
            }
        }
    }

    fn tick(&mut self, now: u64) -> u64 {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn apply_inner(&mut self, index: u64, command: &Command) -> Result<Outcome> {
        match command {
            Command::CreateDestination { now, owner, name, kind, settings } => {
                names::check(name)?;
                settings.validate(*kind, name)?;
                if let Some(d) = self.destinations.get(name) {
                    return Err(Error::AlreadyExists { what: d.kind.to_string(), name: name.clone() });
                }
                let now = self.tick(*now);
                self.create(name, *kind, owner, now, settings.clone());
                Ok(Outcome::Done)
            }
            Command::DeleteDestination { name } => {
                self.destinations.remove(name).ok_or_else(|| not_found(None, name))?;
                Ok(Outcome::Done)
            }
            Command::UpdateSettings { name, settings } => {
                let d = self.destinations.get_mut(name).ok_or_else(|| not_found(None, name))?;
                settings.validate(d.kind, name)?;
                if let Some(sub) = d.subs.get_mut(QUEUE_SUB).filter(|_| d.kind == Kind::Queue) {
                    sub.visibility_ms = settings.visibility_timeout_ms;
                    sub.max_deliveries = settings.max_deliveries;
                }
                d.settings = settings.clone();
                Ok(Outcome::Done)
            }
            Command::Purge { now, name } => {
                self.tick(*now);
                let d = self.destinations.get_mut(name).ok_or_else(|| not_found(None, name))?;
                d.stream.clear();
                let next = d.stream.next_offset;
                for sub in d.subs.values_mut() {
                    sub.reset(next);
                }
                Ok(Outcome::Done)
            }
            Command::Publish { now, name, producer, messages } => {
                let now = self.tick(*now);
                self.publish(index, now, name, producer.as_deref(), messages).map(Outcome::Published)
            }
            Command::CreateSubscription { now, topic, name, settings } => {
                let now = self.tick(*now);
                self.subscribe(now, topic, name, settings).map(|()| Outcome::Done)
            }
            Command::DeleteSubscription { topic, name } => {
                let d = self.topic_mut(topic)?;
                d.subs
                    .remove(name)
                    .ok_or_else(|| Error::SubscriptionNotFound { topic: topic.clone(), name: name.clone() })?;
                Ok(Outcome::Done)
            }
            Command::Seek { now, topic, name, to } => {
                self.tick(*now);
                let d = self.topic_mut(topic)?;
                let cursor = start_offset(&d.stream, *to);
                let sub = d
                    .subs
                    .get_mut(name)
                    .ok_or_else(|| Error::SubscriptionNotFound { topic: topic.clone(), name: name.clone() })?;
                sub.reset(cursor);
                Ok(Outcome::Done)
            }
            Command::Receive { now, name, subscription, request } => {
                let now = self.tick(*now);
                self.receive(now, name, subscription.as_deref(), request).map(Outcome::Received)
            }
            Command::Settle { now, name, subscription, leases, action } => {
                let now = self.tick(*now);
                self.settle(now, name, subscription.as_deref(), leases, *action).map(Outcome::Settled)
            }
            Command::Tick { now } => {
                let now = self.tick(*now);
                let names: Vec<String> = self.destinations.keys().cloned().collect();
                for name in names {
                    self.advance(&name, now);
                }
                Ok(Outcome::Done)
            }
            Command::Relocate { moves, copies } => {
                for (name, offset, slot) in moves {
                    let msg = self.destinations.get_mut(name).and_then(|d| d.stream.msgs.get_mut(offset));
                    if let (Some(msg), true) = (msg, (*slot as usize) < copies.len()) {
                        msg.location = Location { index, slot: *slot };
                    }
                }
                Ok(Outcome::Done)
            }
        }
    }

    fn create(&mut self, name: &str, kind: Kind, owner: &str, now: u64, settings: Settings) {
        let mut subs = BTreeMap::new();
        if kind == Kind::Queue {
            subs.insert(
                QUEUE_SUB.to_string(),
                Subscription::new(true, 0, settings.visibility_timeout_ms, settings.max_deliveries),
            );
        }
        let d = Destination {
            kind,
            owner: owner.to_string(),
            created_at: now,
            settings,
            stream: Stream::default(),
            subs,
            dedup: BTreeMap::new(),
            dedup_by_time: BTreeSet::new(),
            published: 0,
            expired: 0,
            dead_lettered: 0,
        };
        self.destinations.insert(name.to_string(), d);
    }

    fn topic_mut(&mut self, topic: &str) -> Result<&mut Destination> {
        match self.destinations.get_mut(topic) {
            Some(d) if d.kind == Kind::Topic => Ok(d),
            _ => Err(not_found(Some(Kind::Topic), topic)),
        }
    }

    fn publish(
        &mut self,
        index: u64,
        now: u64,
        name: &str,
        producer: Option<&str>,
        messages: &[NewMessage],
    ) -> Result<Vec<Published>> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        let max = d.settings.max_message_size as usize;
        if let Some(m) = messages.iter().find(|m| m.body.len() > max) {
            return Err(Error::MessageTooLarge { size: m.body.len(), max });
        }
        if messages.is_empty() {
            return Err(Error::invalid("messages", "a publish needs at least one message"));
        }
        self.advance(name, now);
        let mut next_id = self.next_id;
        let d = self.destinations.get_mut(name).ok_or_else(|| not_found(None, name))?;
        let window = d.settings.dedup_window_ms;
        while let Some((at, id)) = d.dedup_by_time.first().cloned() {
            if at.saturating_add(window) > now {
                break;
            }
            d.dedup_by_time.pop_first();
            d.dedup.remove(&id);
        }
        let mut out = Vec::with_capacity(messages.len());
        for (slot, m) in messages.iter().enumerate() {
            if let Some(dedup_id) = m.dedup_id.as_ref().filter(|_| window > 0) {
                if let Some(&(_, id, offset)) = d.dedup.get(dedup_id) {
                    out.push(Published { id, offset, duplicate: true });
                    continue;
                }
            }
            let id = next_id;
            next_id += 1;
            let deliver_at = m.deliver_at.unwrap_or(0).max(now.saturating_add(m.delay_ms));
            let mut expires_at = if m.ttl_ms > 0 { deliver_at.saturating_add(m.ttl_ms) } else { NEVER };
            if d.settings.max_age_ms > 0 {
                expires_at = expires_at.min(now.saturating_add(d.settings.max_age_ms));
            }
            let stored = Stored {
                id,
                location: Location { index, slot: slot as u32 },
                size: m.body.len() as u32,
                published: now,
                deliver_at,
                expires_at,
                priority: m.priority,
                subject: m.subject.clone(),
                producer: producer.map(str::to_string),
                dead_letter_reason: None,
            };
            let offset = d.stream.push(stored.clone());
            for sub in d.subs.values_mut() {
                sub.on_publish(offset, &stored, now);
            }
            if let Some(dedup_id) = m.dedup_id.as_ref().filter(|_| window > 0) {
                d.dedup.insert(dedup_id.clone(), (now, id, offset));
                d.dedup_by_time.insert((now, dedup_id.clone()));
            }
            d.published += 1;
            out.push(Published { id, offset, duplicate: false });
        }
        self.next_id = next_id;
        // Retention limits of topics.
        let limits = (d.settings.max_messages, d.settings.max_bytes);
        while (limits.0 > 0 && d.stream.msgs.len() as u64 > limits.0) || (limits.1 > 0 && d.stream.bytes > limits.1) {
            let first = d.stream.first_offset();
            remove_message(d, first);
            d.expired += 1;
        }
        Ok(out)
    }

    /// Brings a destination to time `now`: expired messages go, leases that ran out and
    /// delayed messages that came due become available, and dead letters move.
    fn advance(&mut self, name: &str, now: u64) {
        let mut dead = Vec::new();
        if let Some(d) = self.destinations.get_mut(name) {
            for offset in d.stream.expired(now) {
                remove_message(d, offset);
                d.expired += 1;
            }
            let mut effects = Vec::new();
            for sub in d.subs.values_mut() {
                sub.advance(now, &d.stream, &mut effects);
            }
            dead = self.run_effects(name, effects);
        }
        self.dead_letter(name, now, dead);
    }

    /// Carries out what subscriptions asked; returns the messages to dead-letter.
    fn run_effects(&mut self, name: &str, effects: Vec<Effect>) -> Vec<(Stored, String)> {
        let Some(d) = self.destinations.get_mut(name) else { return Vec::new() };
        let mut dead = Vec::new();
        for e in effects {
            match e {
                Effect::Settled(offset) if d.kind == Kind::Queue => {
                    remove_message(d, offset);
                }
                Effect::Settled(_) => {}
                Effect::DeadLetter(offset, reason) => {
                    let msg = if d.kind == Kind::Queue {
                        remove_message(d, offset)
                    } else {
                        d.stream.msgs.get(&offset).cloned()
                    };
                    if let Some(msg) = msg {
                        d.dead_lettered += 1;
                        dead.push((msg, reason));
                    }
                }
            }
        }
        dead
    }

    fn dead_letter(&mut self, from: &str, now: u64, dead: Vec<(Stored, String)>) {
        if dead.is_empty() {
            return;
        }
        let Some(source) = self.destinations.get(from) else { return };
        let dlq = source.settings.dead_letter_queue.clone().unwrap_or_else(|| {
            let base: String = from.chars().take(251).collect();
            format!("{base}.dlq")
        });
        if !self.destinations.contains_key(&dlq) {
            let owner = source.owner.clone();
            let settings = Settings { max_deliveries: 0, ..Settings::default() };
            self.create(&dlq, Kind::Queue, &owner, now, settings);
        }
        let Some(d) = self.destinations.get_mut(&dlq) else { return };
        for (mut msg, reason) in dead {
            msg.dead_letter_reason = Some(format!("from {from}: {reason}"));
            msg.deliver_at = now;
            msg.expires_at = NEVER;
            let offset = d.stream.push(msg.clone());
            for sub in d.subs.values_mut() {
                sub.on_publish(offset, &msg, now);
            }
            d.published += 1;
        }
    }

    fn subscribe(&mut self, now: u64, topic: &str, name: &str, s: &SubscriptionSettings) -> Result<()> {
        names::check(name)?;
        let filter = s.filter.as_deref().map(SubjectFilter::parse).transpose()?;
        if let Some(v) = s.visibility_timeout_ms {
            if v == 0 || v > 12 * 3_600_000 {
                return Err(Error::invalid("visibility_timeout_ms", "must be 1 ms to 12 hours"));
            }
        }
        let d = self.topic_mut(topic)?;
        if d.subs.contains_key(name) {
            return Err(Error::AlreadyExists { what: "subscription".into(), name: name.to_string() });
        }
        let _ = now;
        let cursor = start_offset(&d.stream, s.start);
        let mut sub = Subscription::new(
            false,
            cursor,
            s.visibility_timeout_ms.unwrap_or(d.settings.visibility_timeout_ms),
            s.max_deliveries.unwrap_or(d.settings.max_deliveries),
        );
        sub.filter = filter;
        sub.no_local = s.no_local;
        d.subs.insert(name.to_string(), sub);
        Ok(())
    }

    fn sub_key<'a>(&self, name: &str, subscription: Option<&'a str>) -> Result<&'a str> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        match (d.kind, subscription) {
            (Kind::Queue, None) => Ok(QUEUE_SUB),
            (Kind::Queue, Some(_)) => {
                Err(Error::WrongKind(format!("{name} is a queue: receive without a subscription")))
            }
            (Kind::Topic, Some(s)) if d.subs.contains_key(s) => Ok(s),
            (Kind::Topic, Some(s)) => Err(Error::SubscriptionNotFound { topic: name.into(), name: s.into() }),
            (Kind::Topic, None) => Err(Error::WrongKind(format!("{name} is a topic: receive through a subscription"))),
        }
    }

    fn receive(
        &mut self,
        now: u64,
        name: &str,
        subscription: Option<&str>,
        r: &ReceiveRequest,
    ) -> Result<Vec<Delivery>> {
        let key = self.sub_key(name, subscription)?;
        r.validate()?;
        self.advance(name, now);
        let d = self.destinations.get_mut(name).ok_or_else(|| not_found(None, name))?;
        let Some(sub) = d.subs.get_mut(key) else { return Ok(Vec::new()) };
        let mut effects = Vec::new();
        let out = sub.receive(now, r, &d.stream, &mut effects);
        let dead = self.run_effects(name, effects);
        self.dead_letter(name, now, dead);
        Ok(out)
    }

    fn settle(
        &mut self,
        now: u64,
        name: &str,
        subscription: Option<&str>,
        leases: &[u64],
        action: SettleAction,
    ) -> Result<Vec<Result<()>>> {
        let key = self.sub_key(name, subscription)?;
        let d = self.destinations.get_mut(name).ok_or_else(|| not_found(None, name))?;
        let Some(sub) = d.subs.get_mut(key) else { return Ok(Vec::new()) };
        let mut effects = Vec::new();
        let results = leases.iter().map(|&l| sub.settle(now, l, action, &d.stream, &mut effects)).collect();
        let dead = self.run_effects(name, effects);
        self.dead_letter(name, now, dead);
        self.advance(name, now);
        Ok(results)
    }

    /// Names and kinds of every destination.
    pub fn list(&self) -> Vec<(String, Kind)> {
        self.destinations.iter().map(|(n, d)| (n.clone(), d.kind)).collect()
    }

    /// A destination's kind and owner: what an access check needs, without the statistics
    /// that [`describe`](Self::describe) gathers from every subscription.
    pub fn owner(&self, name: &str) -> Result<(Kind, String)> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        Ok((d.kind, d.owner.clone()))
    }

    /// A destination's description and statistics as of `now`.
    pub fn describe(&self, name: &str, now: u64) -> Result<DestinationInfo> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        let (mut delivered, mut acked, mut in_flight) = (0, 0, 0);
        let mut subscriptions = BTreeMap::new();
        for (n, sub) in &d.subs {
            let (dl, ak) = sub.counters();
            delivered += dl;
            acked += ak;
            in_flight += sub.in_flight();
            if d.kind == Kind::Topic {
                subscriptions.insert(n.clone(), sub.stats(&d.stream));
            }
        }
        let oldest = d.stream.msgs.values().next().map_or(0, |m| now.saturating_sub(m.published));
        Ok(DestinationInfo {
            name: name.to_string(),
            kind: d.kind,
            owner: d.owner.clone(),
            created_at: d.created_at,
            settings: d.settings.clone(),
            stats: Stats {
                depth: d.stream.msgs.len() as u64,
                bytes: d.stream.bytes,
                in_flight,
                delivered,
                acked,
                dead_lettered: d.dead_lettered,
                expired: d.expired,
                published: d.published,
                oldest_age_ms: oldest,
            },
            subscriptions,
        })
    }

    /// A destination's durability and largest message size: what a publish needs to know
    /// before it is written.
    pub fn publish_limits(&self, name: &str) -> Result<(crate::types::Durability, u32)> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        Ok((d.settings.durability, d.settings.max_message_size))
    }

    /// Up to `max` stored messages from `from_offset` on, without consuming them.
    pub fn peek(&self, name: &str, from_offset: u64, max: usize) -> Result<Vec<Delivery>> {
        let d = self.destinations.get(name).ok_or_else(|| not_found(None, name))?;
        Ok(d.stream.msgs.range(from_offset..).take(max).map(|(o, m)| m.delivery(*o, None, 0)).collect())
    }

    /// Whether a receive at `now` would find a message.
    pub fn has_ready(&self, name: &str, subscription: Option<&str>, now: u64, consumer: Option<&str>) -> bool {
        let Ok(key) = self.sub_key(name, subscription) else { return true };
        let Some(d) = self.destinations.get(name) else { return true };
        d.subs.get(key).is_some_and(|s| s.has_ready(now, &d.stream, consumer))
    }

    /// The earliest time at which some lease expires or some delayed message comes due.
    pub fn next_deadline(&self) -> Option<u64> {
        self.destinations.values().flat_map(|d| d.subs.values().filter_map(Subscription::next_deadline)).min()
    }

    /// The smallest log index that a stored message still needs.
    pub fn min_log_index(&self) -> Option<u64> {
        self.destinations.values().filter_map(|d| d.stream.min_log_index()).min()
    }

    /// Stored messages whose content lies below log index `below`: (destination, offset,
    /// location), at most `max` of them.
    pub fn messages_below(&self, below: u64, max: usize) -> Vec<(String, u64, Location)> {
        let mut out = Vec::new();
        for (name, d) in &self.destinations {
            for (offset, m) in &d.stream.msgs {
                if m.location.index < below {
                    out.push((name.clone(), *offset, m.location));
                    if out.len() >= max {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// The state as bytes, for a snapshot.
    pub fn encode(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec(self).map_err(|e| Error::Storage(format!("encoding a snapshot: {e}")))
    }

    /// A state read back from a snapshot.
    pub fn decode(bytes: &[u8]) -> Result<State> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::Storage(format!("decoding a snapshot: {e}")))
    }
}

/// Removes a message from a destination's stream and every subscription.
fn remove_message(d: &mut Destination, offset: u64) -> Option<Stored> {
    let msg = d.stream.remove(offset)?;
    for sub in d.subs.values_mut() {
        sub.forget(offset, &msg);
    }
    Some(msg)
}

fn start_offset(stream: &Stream, start: StartAt) -> u64 {
    match start {
        StartAt::New => stream.next_offset,
        StartAt::Earliest => stream.first_offset(),
        StartAt::Offset(o) => o.clamp(stream.first_offset(), stream.next_offset),
        StartAt::Time(t) => stream.offset_at_time(t),
    }
}
