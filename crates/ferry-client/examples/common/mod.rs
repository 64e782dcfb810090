//! What the demo programs share: `-s <url>` and `-t` parsing, credentials from the
//! environment, and Go-`log`-style output.

#![allow(dead_code)] // each example uses a part

use ferry_client::{Client, Error};
use std::collections::HashMap;
use std::time::SystemTime;

/// The parsed command line: `[-s url] [-t] [--option value]... args...`.
pub(crate) struct Args {
    pub(crate) url: String,
    pub(crate) timestamps: bool,
    pub(crate) options: HashMap<String, String>,
    pub(crate) rest: Vec<String>,
}

/// Parses `-s <url>` (default `grpc://127.0.0.1:7601`, or `FERRY_URL`), `-t` and the
/// `--<name> <value>` options named in `options`; exits with `usage` on anything else
/// that starts with `-`.
pub(crate) fn args(usage: &str, options: &[&str]) -> Args {
    let mut url = std::env::var("FERRY_URL").unwrap_or_else(|_| "grpc://127.0.0.1:7601".into());
    let mut timestamps = false;
    let mut values = HashMap::new();
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" => match it.next() {
                Some(u) => url = u,
                None => fail(usage),
            },
            o if o.strip_prefix("--").is_some_and(|name| options.contains(&name)) => match it.next() {
                Some(v) => {
                    values.insert(o[2..].to_string(), v);
                }
                None => fail(usage),
            },
            "-t" => timestamps = true,
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            s if s.starts_with('-') && s.len() > 1 => fail(usage),
            _ => rest.push(a),
        }
    }
    Args { url, timestamps, options: values, rest }
}

pub(crate) fn fail(usage: &str) -> ! {
    eprintln!("{usage}");
    std::process::exit(2)
}

/// Connects with `FERRY_TOKEN` (a token or API key), or `FERRY_USER` and `FERRY_PASSWORD`.
pub(crate) async fn connect(url: &str) -> Result<Client, Error> {
    let mut builder = Client::builder(url);
    if let Ok(token) = std::env::var("FERRY_TOKEN") {
        builder = builder.token(token);
    } else if let (Ok(user), Ok(password)) = (std::env::var("FERRY_USER"), std::env::var("FERRY_PASSWORD")) {
        builder = builder.credentials(user, password);
    }
    builder.connect().await
}

/// Prints a line as Go's `log.Println` does: with a timestamp when `-t` was given.
pub(crate) fn log(timestamps: bool, line: &str) {
    if timestamps {
        let now = humantime::format_rfc3339_micros(SystemTime::now());
        println!("{now} {line}");
    } else {
        println!("{line}");
    }
}

/// Exits with the error on stderr, as `log.Fatal` does.
pub(crate) fn fatal(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}
