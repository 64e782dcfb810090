//! ferry's broker: queues, topics and subscriptions as a deterministic state machine, and
//! the local engine that drives it over [`ferry_log`].
//!
//! # How it works
//!
//! Every destination is a **stream** (an ordered log of messages with retention) and every
//! consumer reads through a **subscription** (a cursor plus the messages it has leased and
//! not yet settled):
//!
//! - a **queue** is a stream with one shared subscription: each message goes to exactly one
//!   of the competing consumers, leaves when acked, comes back when its lease runs out, and
//!   moves to the dead-letter queue after `max_deliveries`;
//! - a **topic** keeps messages by age, bytes and count, and has any number of named,
//!   durable subscriptions, each shared by any number of consumers.
//!
//! Every change is a [`Command`]. The [`State`] applies commands and nothing else changes
//! it: it does no I/O and reads no clock (the time is inside each command), so the same
//! commands give the same state anywhere. Message bodies stay in the log; the state keeps a
//! small index entry per message saying where.

#![forbid(unsafe_code)]

pub mod command;
mod engine;
mod error;
pub mod names;
mod recent;
mod state;
mod types;

pub use command::{Command, Delivery, Location, Outcome, SettleAction};
pub use engine::{now_ms, Broker, BrokerOptions, ReceivedMessage};
pub use error::{Error, Result};
pub use state::State;
pub use types::{
    DestinationInfo, Durability, Kind, NewMessage, Published, ReceiveRequest, Settings, StartAt, Stats,
    SubscriptionSettings, MAX_MESSAGE_SIZE_LIMIT, MAX_RECEIVE_BATCH,
};
