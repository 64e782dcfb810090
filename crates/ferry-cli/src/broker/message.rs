//! Messages in and out. Going in, a body is sent as `body` when it is UTF-8 and as
//! `body_base64` when it is not, as the REST API takes them. Coming out, tables show the
//! text of UTF-8 bodies (control characters escaped) and `(base64) …` for the others, the
//! same encoding the API uses; `--json` prints the server's message objects unchanged.

use super::http::{decode, path, Failure};
use super::table::{Table, LEFT, RIGHT};
use super::{millis, parse_duration, print, print_json, Ctx};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

/// The largest message body the broker can be set to accept (64 MiB).
const MAX_BODY: u64 = ferry_broker::MAX_MESSAGE_SIZE_LIMIT as u64;
/// The most input `--lines` reads.
const MAX_LINES_INPUT: u64 = 256 << 20;
/// Messages per request with `--lines`, and their bytes, well under the server's body limit.
const BATCH: usize = 500;
const BATCH_BYTES: usize = 2 << 20;

#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// The message body; without it, --file or standard input is read (as bytes, unchanged)
    body: Option<String>,
    /// Read the body from this file ("-": standard input)
    #[arg(long, short, conflicts_with = "body", value_name = "PATH")]
    file: Option<PathBuf>,
    /// Send each non-empty line of the input as a message of its own
    #[arg(long)]
    lines: bool,
    /// A header (repeatable)
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The subject, for subscription filters such as `orders.*.paid`
    #[arg(long)]
    subject: Option<String>,
    /// The key
    #[arg(long)]
    key: Option<String>,
    /// 0 to 255; higher priorities are delivered first
    #[arg(long, default_value_t = 0)]
    priority: u8,
    /// Deliver no earlier than this long from now (e.g. 30s)
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Drop the message if it is not delivered within this long
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// A deduplication id: repeats within the destination's dedup window are not stored again
    #[arg(long, conflicts_with = "lines")]
    dedup_id: Option<String>,
    /// Where replies should go (request/reply through the broker)
    #[arg(long)]
    reply_to: Option<String>,
    /// The correlation id (request/reply through the broker)
    #[arg(long)]
    correlation_id: Option<String>,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected NAME=VALUE".into()),
    }
}

impl SendArgs {
    /// The message object for `body`, with every option given.
    fn message(&self, body: &[u8]) -> Value {
        let mut m = Map::new();
        match std::str::from_utf8(body) {
            Ok(text) => m.insert("body".into(), json!(text)),
            Err(_) => m.insert("body_base64".into(), json!(base64::engine::general_purpose::STANDARD.encode(body))),
        };
        if !self.headers.is_empty() {
            let headers: BTreeMap<&str, &str> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            m.insert("headers".into(), json!(headers));
        }
        let text = [
            ("subject", &self.subject),
            ("key", &self.key),
            ("dedup_id", &self.dedup_id),
            ("reply_to", &self.reply_to),
            ("correlation_id", &self.correlation_id),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                m.insert(name.into(), json!(v));
            }
        }
        if self.priority != 0 {
            m.insert("priority".into(), json!(self.priority));
        }
        if let Some(d) = self.delay {
            m.insert("delay_ms".into(), json!(millis(d)));
        }
        if let Some(t) = self.ttl {
            m.insert("ttl_ms".into(), json!(millis(t)));
        }
        Value::Object(m)
    }

    /// The input: the argument, the file, or standard input.
    fn input(&self) -> Result<Vec<u8>, Failure> {
        if let Some(b) = &self.body {
            return Ok(b.clone().into_bytes());
        }
        let limit = if self.lines { MAX_LINES_INPUT } else { MAX_BODY };
        let (name, reader): (String, Box<dyn std::io::Read>) = match &self.file {
            Some(p) if p.as_os_str() != "-" => {
                let f = std::fs::File::open(p).map_err(|e| Failure::Usage(format!("--file {}: {e}", p.display())))?;
                (p.display().to_string(), Box::new(f))
            }
            _ => {
                use std::io::IsTerminal as _;
                if std::io::stdin().is_terminal() {
                    eprintln!("ferry: reading the message from standard input; end it with Ctrl-D");
                }
                ("standard input".into(), Box::new(std::io::stdin()))
            }
        };
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Usage(format!("cannot read {name}: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(Failure::Usage(format!("{name} is larger than {} MiB", limit >> 20)));
        }
        Ok(bytes)
    }
}

/// Publishes to the destination `kind` (`queues`/`topics`) `name`, as one request or, with
/// `--lines`, in batches.
pub(crate) fn send(ctx: &Ctx, kind: &str, name: &str, args: &SendArgs) -> Result<(), Failure> {
    let input = args.input()?;
    let bodies: Vec<&[u8]> = if args.lines {
        input.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty()).collect()
    } else {
        vec![&input]
    };
    if bodies.is_empty() {
        return Err(Failure::Usage("no lines to send".into()));
    }
    let url = path(&[kind, name, "messages"]);
    let mut published = Vec::new();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        batch.push(args.message(body));
        batch_bytes += body.len();
        if batch.len() == BATCH || batch_bytes >= BATCH_BYTES || i + 1 == bodies.len() {
            let answer = ctx.client.post(&url, &Value::Array(std::mem::take(&mut batch)))?;
            batch_bytes = 0;
            let PublishedOut { published: p } = decode(answer)?;
            published.extend(p);
        }
    }
    if ctx.json {
        return print_json(&json!({ "published": published }));
    }
    let what = &kind[..kind.len() - 1];
    let duplicates: Vec<u64> = published.iter().filter(|p| p.duplicate).map(|p| p.id).collect();
    let mut text = match published.as_slice() {
        [one] => format!("sent 1 message to {what} {name}: id {}, offset {}", one.id, one.offset),
        [first, .., last] => format!(
            "sent {} messages to {what} {name}: ids {} to {}, offsets {} to {}",
            published.len(),
            first.id,
            last.id,
            first.offset,
            last.offset
        ),
        [] => format!("sent nothing to {what} {name}"),
    };
    if !duplicates.is_empty() {
        let ids: Vec<String> = duplicates.iter().map(u64::to_string).collect();
        text.push_str(&format!(" (duplicates, not stored again: id {})", ids.join(", ")));
    }
    print(&format!("{text}\n"))
}

#[derive(Deserialize)]
struct PublishedOut {
    published: Vec<ferry_broker::Published>,
}

/// A received or peeked message, as the API sends it.
#[derive(Deserialize, Debug)]
pub(crate) struct Received {
    pub(crate) id: u64,
    pub(crate) offset: u64,
    pub(crate) lease: Option<u64>,
    #[serde(default)]
    pub(crate) delivery_count: u32,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    subject: Option<String>,
    key: Option<String>,
    #[serde(default)]
    priority: u8,
    dead_letter_reason: Option<String>,
}

impl Received {
    /// The body for people: its text when it is UTF-8, else its base64, marked as such.
    pub(crate) fn body(&self) -> String {
        match &self.body {
            Some(text) => text.clone(),
            None => format!("(base64) {}", self.body_base64),
        }
    }
}

/// The messages of a receive or peek answer: the JSON objects (printed as they are with
/// `--json`) beside their decoded form.
pub(crate) fn messages(answer: Value) -> Result<Vec<(Value, Received)>, Failure> {
    #[derive(Deserialize)]
    struct Messages {
        messages: Vec<Value>,
    }
    let Messages { messages } = decode(answer)?;
    messages.into_iter().map(|v| Ok((v.clone(), decode::<Received>(v)?))).collect()
}

/// Which columns a message table has: the optional ones only when some message uses them.
pub(crate) struct Columns {
    lease: bool,
    subject: bool,
    key: bool,
    headers: bool,
    dead_letter: bool,
}

impl Columns {
    pub(crate) fn for_messages<'a>(msgs: impl IntoIterator<Item = &'a Received> + Clone, lease: bool) -> Columns {
        let any = |f: fn(&Received) -> bool| msgs.clone().into_iter().any(f);
        Columns {
            lease: lease && any(|m| m.lease.is_some()),
            subject: any(|m| m.subject.is_some()),
            key: any(|m| m.key.is_some()),
            headers: any(|m| !m.headers.is_empty()),
            dead_letter: any(|m| m.dead_letter_reason.is_some()),
        }
    }

    /// The columns of a stream, fixed before its messages are known: the subject (what
    /// subscription filters match), not the rarer key and headers (`--json` has them).
    pub(crate) fn stream(lease: bool) -> Columns {
        Columns { lease, subject: true, key: false, headers: false, dead_letter: false }
    }

    pub(crate) fn table(&self) -> Table {
        let mut cols = vec![("id", RIGHT), ("offset", RIGHT), ("deliveries", RIGHT), ("priority", RIGHT)];
        let optional = [
            (self.lease, ("lease", RIGHT)),
            (self.subject, ("subject", LEFT)),
            (self.key, ("key", LEFT)),
            (self.headers, ("headers", LEFT)),
            (self.dead_letter, ("dead letter reason", LEFT)),
        ];
        cols.extend(optional.iter().filter(|(on, _)| *on).map(|(_, c)| *c));
        cols.push(("body", LEFT));
        Table::new(&cols)
    }

    pub(crate) fn row(&self, m: &Received) -> Vec<String> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let mut row =
            vec![m.id.to_string(), m.offset.to_string(), m.delivery_count.to_string(), m.priority.to_string()];
        if self.lease {
            row.push(m.lease.map(|l| l.to_string()).unwrap_or_default());
        }
        if self.subject {
            row.push(opt(&m.subject));
        }
        if self.key {
            row.push(opt(&m.key));
        }
        if self.headers {
            row.push(m.headers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
        }
        if self.dead_letter {
            row.push(opt(&m.dead_letter_reason));
        }
        row.push(m.body());
        row
    }
}

/// Prints a batch of messages: the answer's JSON document, or a table.
pub(crate) fn print_messages(ctx: &Ctx, msgs: &[(Value, Received)], lease: bool, none: &str) -> Result<(), Failure> {
    if ctx.json {
        let list: Vec<&Value> = msgs.iter().map(|(v, _)| v).collect();
        return print_json(&json!({ "messages": list }));
    }
    if msgs.is_empty() {
        return print(&format!("{none}\n"));
    }
    let columns = Columns::for_messages(msgs.iter().map(|(_, m)| m), lease);
    let mut table = columns.table();
    for (_, m) in msgs {
        table.row(columns.row(m));
    }
    print(&table.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        send: SendArgs,
    }

    #[test]
    fn bodies_go_as_text_or_base64() {
        let args = Cmd::parse_from(["x", "-H", "a=b=c", "--priority", "7", "--delay", "2s"]).send;
        assert_eq!(
            args.message(b"hi"),
            json!({"body": "hi", "headers": {"a": "b=c"}, "priority": 7, "delay_ms": 2000})
        );
        assert_eq!(args.message(&[0xff, 0xfe])["body_base64"], "//4=");
        assert!(parse_header("novalue").is_err());
    }

    #[test]
    fn binary_bodies_are_marked() {
        let m: Received = serde_json::from_value(json!({"id": 1, "offset": 0, "body": null, "body_base64": "//4="}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.body(), "(base64) //4=");
    }
}
