//! The most recent commands that stored messages, kept in memory after they are applied,
//! up to a byte budget.
//!
//! A receive names the log records that hold its messages. Consumers that keep up with
//! their producers, the usual case and every subscriber of a fan-out, ask for records that
//! were written moments ago: serving those from here saves a log read and a decode per
//! receive, which a topic with N subscriptions would otherwise pay N times per record.
//! Older records are read from the log as before.

use crate::command::Command;
use std::collections::VecDeque;
use std::sync::Arc;

/// What a kept message is counted as besides its body: the entry, its headers and names.
const PER_MESSAGE: usize = 128;

pub(crate) struct Recent {
    /// (log index, command, its counted size), in increasing log index.
    entries: VecDeque<(u64, Arc<Command>, usize)>,
    bytes: usize,
    budget: usize,
}

impl Recent {
    pub(crate) fn new(budget: usize) -> Recent {
        Recent { entries: VecDeque::new(), bytes: 0, budget }
    }

    /// Keeps `cmd`, applied at log `index`, if it stores messages; forgets the oldest
    /// commands beyond the budget. Indexes come in increasing order.
    pub(crate) fn keep(&mut self, index: u64, cmd: Command) {
        let size = match &cmd {
            Command::Publish { messages, .. } | Command::Relocate { copies: messages, .. } => {
                messages.iter().map(|m| m.body.len() + PER_MESSAGE).sum::<usize>()
            }
            _ => return,
        };
        if size > self.budget {
            return;
        }
        self.entries.push_back((index, Arc::new(cmd), size));
        self.bytes += size;
        while self.bytes > self.budget {
            let Some((_, _, size)) = self.entries.pop_front() else { break };
            self.bytes -= size;
        }
    }

    /// The command at log `index`, if it is still kept.
    pub(crate) fn get(&self, index: u64) -> Option<Arc<Command>> {
        let at = self.entries.partition_point(|(i, _, _)| *i < index);
        match self.entries.get(at) {
            Some((i, cmd, _)) if *i == index => Some(cmd.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NewMessage;

    fn publish(bodies: &[&'static str]) -> Command {
        Command::Publish {
            now: 0,
            name: "q".into(),
            producer: None,
            messages: bodies.iter().map(|b| NewMessage::new(*b)).collect(),
        }
    }

    #[test]
    fn keeps_message_commands_within_the_budget_and_forgets_the_oldest() {
        let mut recent = Recent::new(3 * (PER_MESSAGE + 1));
        recent.keep(1, publish(&["a"]));
        recent.keep(2, Command::Tick { now: 5 });
        recent.keep(3, publish(&["b", "c"]));
        assert!(recent.get(2).is_none(), "only commands that store messages are kept");
        assert_eq!(recent.get(3).and_then(|c| c.message(1)).map(|m| m.body), Some("c".into()));
        assert!(recent.get(1).is_some());
        recent.keep(4, publish(&["d"]));
        assert!(recent.get(1).is_none(), "the oldest goes first");
        assert!(recent.get(3).is_some() && recent.get(4).is_some());
        assert!(recent.get(5).is_none() && recent.get(0).is_none());
    }

    #[test]
    fn a_command_larger_than_the_budget_is_not_kept() {
        let mut recent = Recent::new(PER_MESSAGE);
        recent.keep(1, publish(&["too big"]));
        assert!(recent.get(1).is_none());
    }
}
