//! What queues and topics share, since the API gives both the same routes under
//! `/v1/queues` and `/v1/topics`: create (with settings), list, describe, update, delete,
//! purge and peek. `queue.rs` and `topic.rs` only name the commands.

use super::http::{decode, path, Failure};
use super::message;
use super::table::{fields, Table, LEFT, RIGHT};
use super::{done, millis, parse_duration, print, print_json, time, Ctx};
use ferry_broker::{DestinationInfo, Durability, Kind, Stats};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The API's collection for a kind.
pub(crate) fn collection(kind: Kind) -> &'static str {
    match kind {
        Kind::Queue => "queues",
        Kind::Topic => "topics",
    }
}

/// Settings both kinds take; each is sent only when given, so the server's defaults apply.
#[derive(clap::Args, Debug)]
pub(crate) struct SettingsArgs {
    /// When a publish is acknowledged: fsync (after fdatasync), interval:<ms> (fdatasync
    /// at most that many milliseconds later) or none [default: the server's, fsync]
    #[arg(long, value_parser = parse_durability)]
    durability: Option<Durability>,
    /// The largest message body accepted, in bytes [default: 1 MiB]
    #[arg(long, value_name = "BYTES")]
    max_message_size: Option<u32>,
    /// How long a received message stays leased before it is delivered again (topics: the
    /// default of new subscriptions) [default: 30s]
    #[arg(long, value_parser = parse_duration)]
    visibility_timeout: Option<Duration>,
    /// Deliveries after which an unacked message moves to the dead-letter queue; 0: never
    /// [default: 10]
    #[arg(long, value_name = "N")]
    max_deliveries: Option<u32>,
    /// Where dead letters go [default: <name>.dlq, created when first needed]
    #[arg(long, value_name = "QUEUE")]
    dead_letter_queue: Option<String>,
    /// How long dedup ids are remembered; 0 turns deduplication off [default: 2m]
    #[arg(long, value_parser = parse_duration)]
    dedup_window: Option<Duration>,
}

/// Retention limits, for topics.
#[derive(clap::Args, Debug)]
pub(crate) struct RetentionArgs {
    /// Drop messages older than this (e.g. 24h) [default: no limit]
    #[arg(long, value_parser = parse_duration)]
    max_age: Option<Duration>,
    /// Keep at most this many bytes of message bodies [default: no limit]
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// Keep at most this many messages [default: no limit]
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "fsync" => Ok(Durability::Fsync),
        "none" => Ok(Durability::None),
        // The same spelling as `ferry serve`'s `durability` setting.
        other => other
            .strip_prefix("interval:")
            .and_then(|ms| ms.trim_end_matches("ms").parse().ok())
            .map(Durability::Interval)
            .ok_or_else(|| "use fsync, none or interval:<ms>".to_string()),
    }
}

fn durability(d: Durability) -> String {
    match d {
        Durability::Fsync => "fsync".into(),
        Durability::None => "none".into(),
        Durability::Interval(ms) => format!("interval:{ms}"),
    }
}

impl SettingsArgs {
    fn into_json(self, map: &mut Map<String, Value>) -> Result<(), Failure> {
        if let Some(d) = self.durability {
            map.insert("durability".into(), serde_json::to_value(d).map_err(|e| Failure::Other(e.to_string()))?);
        }
        let numbers = [
            ("max_message_size", self.max_message_size.map(u64::from)),
            ("visibility_timeout_ms", self.visibility_timeout.map(millis)),
            ("max_deliveries", self.max_deliveries.map(u64::from)),
            ("dedup_window_ms", self.dedup_window.map(millis)),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                map.insert(k.into(), json!(v));
            }
        }
        if let Some(q) = self.dead_letter_queue {
            map.insert("dead_letter_queue".into(), json!(q));
        }
        Ok(())
    }
}

impl RetentionArgs {
    fn into_json(self, map: &mut Map<String, Value>) {
        let numbers = [
            ("max_age_ms", self.max_age.map(millis)),
            ("max_bytes", self.max_bytes),
            ("max_messages", self.max_messages),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                map.insert(k.into(), json!(v));
            }
        }
    }
}

/// The settings given, as the API's settings object.
fn settings_json(settings: SettingsArgs, retention: Option<RetentionArgs>) -> Result<Map<String, Value>, Failure> {
    let mut map = Map::new();
    settings.into_json(&mut map)?;
    if let Some(r) = retention {
        r.into_json(&mut map);
    }
    Ok(map)
}

pub(crate) fn create(
    ctx: &Ctx,
    kind: Kind,
    name: &str,
    settings: SettingsArgs,
    retention: Option<RetentionArgs>,
) -> Result<(), Failure> {
    let map = settings_json(settings, retention)?;
    let answer = ctx.client.post(&path(&[collection(kind)]), &json!({ "name": name, "settings": map }))?;
    if ctx.json {
        return print_json(&answer);
    }
    let d: DestinationInfo = decode(answer)?;
    print(&format!("created {kind} {} (owner {})\n", d.name, d.owner))
}

/// Changes the settings given and leaves the others as they are.
pub(crate) fn update(
    ctx: &Ctx,
    kind: Kind,
    name: &str,
    settings: SettingsArgs,
    retention: Option<RetentionArgs>,
) -> Result<(), Failure> {
    let map = settings_json(settings, retention)?;
    if map.is_empty() {
        return Err(Failure::Usage("nothing to change: give at least one setting, e.g. --max-deliveries 5".into()));
    }
    let changed: Vec<String> = map.keys().cloned().collect();
    let answer = ctx.client.patch(&path(&[collection(kind), name]), &Value::Object(map))?;
    if ctx.json {
        return print_json(&answer);
    }
    let d: DestinationInfo = decode(answer)?;
    print(&format!("updated {kind} {}: {}\n", d.name, changed.join(", ")))
}

pub(crate) fn list(ctx: &Ctx, kind: Kind) -> Result<(), Failure> {
    let answer = ctx.client.get(&path(&[collection(kind)]))?;
    if ctx.json {
        return print_json(&answer);
    }
    let list: Vec<DestinationInfo> = decode(answer)?;
    let mut table = match kind {
        Kind::Queue => Table::new(&[
            ("name", LEFT),
            ("depth", RIGHT),
            ("in flight", RIGHT),
            ("published", RIGHT),
            ("acked", RIGHT),
            ("dead-lettered", RIGHT),
            ("owner", LEFT),
        ]),
        Kind::Topic => Table::new(&[
            ("name", LEFT),
            ("depth", RIGHT),
            ("bytes", RIGHT),
            ("published", RIGHT),
            ("subscriptions", RIGHT),
            ("owner", LEFT),
        ]),
    };
    for d in &list {
        let s = &d.stats;
        table.row(match kind {
            Kind::Queue => vec![
                d.name.clone(),
                s.depth.to_string(),
                s.in_flight.to_string(),
                s.published.to_string(),
                s.acked.to_string(),
                s.dead_lettered.to_string(),
                d.owner.clone(),
            ],
            Kind::Topic => vec![
                d.name.clone(),
                s.depth.to_string(),
                s.bytes.to_string(),
                s.published.to_string(),
                d.subscriptions.len().to_string(),
                d.owner.clone(),
            ],
        });
    }
    if table.is_empty() {
        return print(&format!("no {} (that you may see)\n", collection(kind)));
    }
    print(&table.render())
}

pub(crate) fn describe(ctx: &Ctx, kind: Kind, name: &str) -> Result<(), Failure> {
    let answer = ctx.client.get(&path(&[collection(kind), name]))?;
    if ctx.json {
        return print_json(&answer);
    }
    let d: DestinationInfo = decode(answer)?;
    let st = &d.settings;
    let limit = |v: u64, text: String| if v == 0 { "no limit".to_string() } else { text };
    let mut pairs = vec![
        ("name", d.name.clone()),
        ("kind", d.kind.to_string()),
        ("owner", d.owner.clone()),
        ("created", time(d.created_at)),
        ("durability", durability(st.durability)),
        ("max message size", format!("{} bytes", st.max_message_size)),
        ("visibility timeout", ms(st.visibility_timeout_ms)),
        ("max deliveries", if st.max_deliveries == 0 { "no limit".into() } else { st.max_deliveries.to_string() }),
        ("dead-letter queue", st.dead_letter_queue.clone().unwrap_or_else(|| format!("{}.dlq", d.name))),
        ("dedup window", ms(st.dedup_window_ms)),
    ];
    if kind == Kind::Topic {
        pairs.extend([
            ("max age", limit(st.max_age_ms, ms(st.max_age_ms))),
            ("max bytes", limit(st.max_bytes, st.max_bytes.to_string())),
            ("max messages", limit(st.max_messages, st.max_messages.to_string())),
        ]);
    }
    pairs.extend(stats_fields(&d.stats));
    let mut text = fields(&pairs);
    if kind == Kind::Topic {
        text.push_str("\nsubscriptions:\n");
        text.push_str(&subscriptions_table(&d.subscriptions).unwrap_or_else(|| "  none\n".into()));
    }
    print(&text)
}

/// Milliseconds for people: `30s`, `2m`, `1h 30m`.
fn ms(v: u64) -> String {
    if v == 0 {
        return "0".into();
    }
    humantime::format_duration(Duration::from_millis(v)).to_string()
}

/// Statistics as `describe` shows them.
pub(crate) fn stats_fields(s: &Stats) -> Vec<(&'static str, String)> {
    vec![
        ("depth", s.depth.to_string()),
        ("bytes", s.bytes.to_string()),
        ("in flight", s.in_flight.to_string()),
        ("published", s.published.to_string()),
        ("delivered", s.delivered.to_string()),
        ("acked", s.acked.to_string()),
        ("dead-lettered", s.dead_lettered.to_string()),
        ("expired", s.expired.to_string()),
        ("oldest age", ms(s.oldest_age_ms)),
    ]
}

/// The subscriptions of a topic as a table; `None` if it has none.
pub(crate) fn subscriptions_table(subs: &BTreeMap<String, Stats>) -> Option<String> {
    if subs.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        ("name", LEFT),
        ("depth", RIGHT),
        ("in flight", RIGHT),
        ("delivered", RIGHT),
        ("acked", RIGHT),
        ("dead-lettered", RIGHT),
    ]);
    for (name, s) in subs {
        table.row(vec![
            name.clone(),
            s.depth.to_string(),
            s.in_flight.to_string(),
            s.delivered.to_string(),
            s.acked.to_string(),
            s.dead_lettered.to_string(),
        ]);
    }
    Some(table.render())
}

pub(crate) fn delete(ctx: &Ctx, kind: Kind, name: &str) -> Result<(), Failure> {
    ctx.client.delete(&path(&[collection(kind), name]))?;
    done(ctx, &format!("deleted {kind} {name}"))
}

pub(crate) fn purge(ctx: &Ctx, kind: Kind, name: &str) -> Result<(), Failure> {
    ctx.client.post(&path(&[collection(kind), name, "purge"]), &json!({}))?;
    done(ctx, &format!("purged {kind} {name}: every message dropped"))
}

#[derive(clap::Args, Debug)]
pub(crate) struct PeekArgs {
    /// The first offset to show
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// At most this many messages, 1 to 1000
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max: u16,
}

/// Shows messages without consuming them.
pub(crate) fn peek(ctx: &Ctx, kind: Kind, name: &str, args: &PeekArgs) -> Result<(), Failure> {
    let url = format!("{}?from={}&max={}", path(&[collection(kind), name, "peek"]), args.from, args.max);
    let msgs = message::messages(ctx.client.get(&url)?)?;
    message::print_messages(ctx, &msgs, false, "no messages")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_reads_as_ferry_serve_writes_it() {
        assert_eq!(parse_durability("fsync"), Ok(Durability::Fsync));
        assert_eq!(parse_durability("none"), Ok(Durability::None));
        assert_eq!(parse_durability("interval:100"), Ok(Durability::Interval(100)));
        assert!(parse_durability("sometimes").is_err());
        assert_eq!(durability(Durability::Interval(5)), "interval:5");
    }
}
