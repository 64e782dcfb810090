//! The broker commands, `ferry login`, `logout`, `queue`, `topic`, `sub`, `user` and
//! `apikey`: a client of a running `ferry serve` over its REST `/v1` API, one REST route
//! per action. Every command takes `--server`, `--token` and `--json`; tables are for people, and
//! `--json` prints the server's own JSON document for scripts.
//!
//! Exit status: 0 done, 1 a local problem (a file, the output), 2 a usage error, 3 the
//! server could not be reached, 4 the server answered with an error.

mod apikey;
mod consume;
mod credentials;
mod destination;
mod http;
mod login;
mod message;
mod queue;
mod sub;
mod table;
mod tls;
mod topic;
mod user;

pub(crate) use apikey::ApiKeyArgs;
pub(crate) use login::{LoginArgs, LogoutArgs};
pub(crate) use queue::QueueArgs;
pub(crate) use sub::SubArgs;
pub(crate) use topic::TopicArgs;
pub(crate) use user::UserArgs;

use http::{Client, Failure};
use serde_json::Value;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Which server, as whom, and how to print: on every broker command.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct ConnArgs {
    #[command(flatten)]
    target: Target,
    /// A token or an API key (fk_…) to use instead of the login stored by `ferry login`
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true, global = true, help_heading = HEADING)]
    token: Option<String>,
}

/// Which server and how to print: `ferry login` and `logout` too.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct Target {
    /// The server's URL [default: http://127.0.0.1:8080, where `ferry serve` listens]
    #[arg(long, env = "FERRY_SERVER", value_name = "URL", global = true, help_heading = HEADING)]
    server: Option<String>,
    /// For https:// servers: trust the CA certificate(s) in this PEM file (instead of the
    /// built-in public roots)
    #[arg(long, env = "FERRY_CA_FILE", value_name = "PEM", global = true, help_heading = HEADING)]
    ca_file: Option<PathBuf>,
    /// For https:// servers: accept any certificate (tests only: anyone in the path can
    /// read the token)
    #[arg(long, global = true, help_heading = HEADING)]
    insecure: bool,
    /// Print JSON (one document; one object per line for `recv --follow`) instead of tables
    #[arg(long, global = true, help_heading = HEADING)]
    json: bool,
}

const HEADING: &str = "Server options";

/// A broker command.
pub(crate) enum Broker {
    Login(LoginArgs),
    Logout(LogoutArgs),
    Queue(QueueArgs),
    Topic(TopicArgs),
    Sub(SubArgs),
    User(UserArgs),
    ApiKey(ApiKeyArgs),
}

/// Runs a broker command; prints its failure, if any, and picks the exit status.
pub(crate) fn run(cmd: Broker) -> ExitCode {
    let result = match cmd {
        Broker::Login(a) => login::login(&a),
        Broker::Logout(a) => login::logout(&a),
        Broker::Queue(a) => queue::run(a),
        Broker::Topic(a) => topic::run(a),
        Broker::Sub(a) => sub::run(a),
        Broker::User(a) => user::run(a),
        Broker::ApiKey(a) => apikey::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.is_quiet() {
                eprintln!("ferry: {f}");
            }
            ExitCode::from(f.exit_status())
        }
    }
}

/// What a command needs: the client and the output mode.
pub(crate) struct Ctx {
    client: Client,
    json: bool,
}

impl Ctx {
    fn new(conn: &ConnArgs) -> Result<Ctx, Failure> {
        Ok(Ctx { client: Client::new(conn)?, json: conn.target.json })
    }
}

/// Writes `text` to standard output.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Prints one JSON document.
fn print_json(v: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure::Other(e.to_string()))?;
    print(&format!("{text}\n"))
}

/// The answer to an action with nothing to show: `{"ok":true}` for scripts, `text` for
/// people.
fn done(ctx: &Ctx, text: &str) -> Result<(), Failure> {
    if ctx.json {
        print_json(&serde_json::json!({ "ok": true }))
    } else {
        print(&format!("{text}\n"))
    }
}

/// A duration: `20s`, `500ms`, `1m30s`, or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (e.g. 30s, 500ms, 2m)"))
}

/// Milliseconds, as the API counts them.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A time in milliseconds since the epoch, for people.
fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A password from `--password`, from the first line of standard input, or typed at the
/// terminal without echo; `confirm` asks twice (for new passwords).
fn read_password(given: Option<&str>, from_stdin: bool, prompt: &str, confirm: bool) -> Result<String, Failure> {
    use std::io::IsTerminal as _;
    if let Some(p) = given {
        return Ok(p.to_string());
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("cannot read the password from standard input: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(
            "no password: give --password, --password-stdin, or FERRY_PASSWORD (for login), \
             or run on a terminal to be asked"
                .into(),
        ));
    }
    let typed = rpassword::prompt_password(prompt).map_err(|e| Failure::Usage(format!("reading the password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("again: ").map_err(|e| Failure::Usage(format!("reading: {e}")))?;
        if again != typed {
            return Err(Failure::Usage("the passwords differ".into()));
        }
    }
    Ok(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }
}
