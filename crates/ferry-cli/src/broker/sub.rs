//! `ferry sub`: durable subscriptions of a topic. Each one sees every message of its topic
//! (that its filter lets through) from where it starts, and may be shared by many
//! receivers, which then compete for its messages as on a queue.

use super::consume::{self, NackArgs, RecvArgs, SettleArgs, Source};
use super::destination::{stats_fields, subscriptions_table};
use super::http::{decode, path, Failure};
use super::table::fields;
use super::{done, millis, parse_duration, print, print_json, ConnArgs, Ctx};
use ferry_broker::{DestinationInfo, StartAt, Stats};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: SubCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SubCommand {
    /// Subscribe to a topic under a name
    Create {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
        /// Where it starts: new (messages published from now on), earliest (the oldest
        /// kept), offset:<n>, or time:<ms since the epoch | RFC 3339>
        #[arg(long, default_value = "new", value_parser = parse_start)]
        start: StartAt,
        /// Only messages whose subject matches, e.g. `orders.*.paid` or `orders.>`
        #[arg(long)]
        filter: Option<String>,
        /// Never deliver a receiver its own publications
        #[arg(long)]
        no_local: bool,
        /// How long a received message stays leased [default: the topic's]
        #[arg(long, value_parser = parse_duration)]
        visibility_timeout: Option<Duration>,
        /// Deliveries before dead-lettering [default: the topic's]
        #[arg(long, value_name = "N")]
        max_deliveries: Option<u32>,
    },
    /// List the subscriptions of a topic
    #[command(visible_alias = "ls")]
    List {
        /// The topic
        topic: String,
    },
    /// Statistics of one subscription
    Describe {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
    },
    /// Delete a subscription (the topic's owner or an admin)
    Delete {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
    },
    /// Move a subscription to replay or skip messages
    Seek {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
        /// Where to: new, earliest, offset:<n>, or time:<ms | RFC 3339>
        #[arg(value_parser = parse_start)]
        to: StartAt,
    },
    /// Receive messages, print them, and ack them (unless --no-ack)
    Recv {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
        #[command(flatten)]
        args: RecvArgs,
    },
    /// Ack leased messages by lease id (after `recv --no-ack`)
    Ack {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
        #[command(flatten)]
        args: SettleArgs,
    },
    /// Give leased messages back, to be delivered again (after `recv --no-ack`)
    Nack {
        /// The topic
        topic: String,
        /// The subscription
        name: String,
        #[command(flatten)]
        args: NackArgs,
    },
}

fn parse_start(s: &str) -> Result<StartAt, String> {
    let bad = || "use new, earliest, offset:<n>, or time:<ms since the epoch | RFC 3339 time>".to_string();
    match s {
        "new" => Ok(StartAt::New),
        "earliest" => Ok(StartAt::Earliest),
        _ => {
            if let Some(n) = s.strip_prefix("offset:") {
                return n.parse().map(StartAt::Offset).map_err(|_| bad());
            }
            let t = s.strip_prefix("time:").ok_or_else(bad)?;
            if let Ok(ms) = t.parse::<u64>() {
                return Ok(StartAt::Time(ms));
            }
            let when = humantime::parse_rfc3339_weak(t).map_err(|e| format!("{t:?}: {e}"))?;
            let ms = when.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{t:?} is before 1970"))?;
            Ok(StartAt::Time(millis(ms)))
        }
    }
}

fn start_json(s: StartAt) -> Result<Value, Failure> {
    serde_json::to_value(s).map_err(|e| Failure::Other(e.to_string()))
}

pub(crate) fn run(args: SubArgs) -> Result<(), Failure> {
    let ctx = Ctx::new(&args.conn)?;
    let ctx = &ctx;
    match args.cmd {
        SubCommand::Create { topic, name, start, filter, no_local, visibility_timeout, max_deliveries } => {
            let mut body = json!({ "name": name, "start": start_json(start)?, "no_local": no_local });
            if let Some(f) = filter {
                body["filter"] = json!(f);
            }
            if let Some(v) = visibility_timeout {
                body["visibility_timeout_ms"] = json!(millis(v));
            }
            if let Some(m) = max_deliveries {
                body["max_deliveries"] = json!(m);
            }
            let answer = ctx.client.post(&path(&["topics", &topic, "subscriptions"]), &body)?;
            if ctx.json {
                return print_json(&answer);
            }
            print(&format!("created subscription {name} of topic {topic}\n"))
        }
        SubCommand::List { topic } => {
            let answer = ctx.client.get(&path(&["topics", &topic, "subscriptions"]))?;
            if ctx.json {
                return print_json(&answer);
            }
            #[derive(Deserialize)]
            struct Subscriptions {
                subscriptions: BTreeMap<String, Stats>,
            }
            let Subscriptions { subscriptions } = decode(answer)?;
            print(
                &subscriptions_table(&subscriptions).unwrap_or_else(|| format!("topic {topic} has no subscriptions\n")),
            )
        }
        SubCommand::Describe { topic, name } => {
            // The API describes subscriptions as part of their topic.
            let d: DestinationInfo = decode(ctx.client.get(&path(&["topics", &topic]))?)?;
            let stats = d.subscriptions.get(&name).ok_or_else(|| {
                Failure::refused("subscription_not_found", format!("topic {topic} has no subscription {name:?}"))
            })?;
            if ctx.json {
                return print_json(&json!({ "topic": topic, "name": name, "stats": stats }));
            }
            let mut pairs = vec![("name", name.clone()), ("topic", topic.clone())];
            pairs.extend(stats_fields(stats));
            print(&fields(&pairs))
        }
        SubCommand::Delete { topic, name } => {
            ctx.client.delete(&path(&["topics", &topic, "subscriptions", &name]))?;
            done(ctx, &format!("deleted subscription {name} of topic {topic}"))
        }
        SubCommand::Seek { topic, name, to } => {
            let url = path(&["topics", &topic, "subscriptions", &name, "seek"]);
            ctx.client.post(&url, &json!({ "to": start_json(to)? }))?;
            done(ctx, &format!("moved subscription {name} of topic {topic}"))
        }
        SubCommand::Recv { topic, name, args } => consume::recv(ctx, Source::Sub { topic: &topic, sub: &name }, &args),
        SubCommand::Ack { topic, name, args } => consume::ack(ctx, Source::Sub { topic: &topic, sub: &name }, &args),
        SubCommand::Nack { topic, name, args } => consume::nack(ctx, Source::Sub { topic: &topic, sub: &name }, &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_read_every_form() {
        assert_eq!(parse_start("new"), Ok(StartAt::New));
        assert_eq!(parse_start("earliest"), Ok(StartAt::Earliest));
        assert_eq!(parse_start("offset:7"), Ok(StartAt::Offset(7)));
        assert_eq!(parse_start("time:1000"), Ok(StartAt::Time(1000)));
        assert_eq!(parse_start("time:1970-01-01T00:00:02Z"), Ok(StartAt::Time(2000)));
        assert!(parse_start("later").is_err());
        assert!(parse_start("offset:x").is_err());
    }
}
