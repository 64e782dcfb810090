//! A destination's stream: its stored messages by offset, as small index entries. The
//! bodies stay in the log; an entry says where.

use crate::command::{Delivery, Location};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// "Never", for `expires_at`.
pub(crate) const NEVER: u64 = u64::MAX;

/// One stored message: what delivery decisions need, and where its content is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) id: u64,
    pub(crate) location: Location,
    pub(crate) size: u32,
    pub(crate) published: u64,
    pub(crate) deliver_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) priority: u8,
    pub(crate) subject: Option<String>,
    pub(crate) producer: Option<String>,
    pub(crate) dead_letter_reason: Option<String>,
}

impl Stored {
    pub(crate) fn delivery(&self, offset: u64, lease: Option<u64>, delivery_count: u32) -> Delivery {
        Delivery {
            id: self.id,
            offset,
            lease,
            delivery_count,
            location: self.location,
            published_at: self.published,
            dead_letter_reason: self.dead_letter_reason.clone(),
        }
    }
}

/// The ordered messages of one destination.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stream {
    pub(crate) msgs: BTreeMap<u64, Stored>,
    pub(crate) next_offset: u64,
    pub(crate) bytes: u64,
    /// (expires_at, offset) of messages that expire.
    expiries: BTreeSet<(u64, u64)>,
}

impl Stream {
    /// Appends a message and returns its offset.
    pub(crate) fn push(&mut self, msg: Stored) -> u64 {
        let offset = self.next_offset;
        self.next_offset += 1;
        self.bytes += u64::from(msg.size);
        if msg.expires_at != NEVER {
            self.expiries.insert((msg.expires_at, offset));
        }
        self.msgs.insert(offset, msg);
        offset
    }

    pub(crate) fn remove(&mut self, offset: u64) -> Option<Stored> {
        let msg = self.msgs.remove(&offset)?;
        self.bytes -= u64::from(msg.size);
        if msg.expires_at != NEVER {
            self.expiries.remove(&(msg.expires_at, offset));
        }
        Some(msg)
    }

    /// Offsets of messages whose time is up at `now`, oldest deadline first.
    pub(crate) fn expired(&self, now: u64) -> Vec<u64> {
        self.expiries.range(..=(now, u64::MAX)).map(|&(_, offset)| offset).collect()
    }

    pub(crate) fn first_offset(&self) -> u64 {
        self.msgs.keys().next().copied().unwrap_or(self.next_offset)
    }

    /// The first offset published at or after `time`, or the end.
    pub(crate) fn offset_at_time(&self, time: u64) -> u64 {
        self.msgs.iter().find(|(_, m)| m.published >= time).map_or(self.next_offset, |(o, _)| *o)
    }

    pub(crate) fn clear(&mut self) -> Vec<u64> {
        let offsets: Vec<u64> = self.msgs.keys().copied().collect();
        self.msgs.clear();
        self.expiries.clear();
        self.bytes = 0;
        offsets
    }

    /// The smallest log index any stored message needs.
    pub(crate) fn min_log_index(&self) -> Option<u64> {
        self.msgs.values().map(|m| m.location.index).min()
    }
}
