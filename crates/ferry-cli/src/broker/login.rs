//! `ferry login` and `ferry logout`: trade a name and password for a token
//! (`POST /v1/auth/token`) and keep it in the credentials file, keyed by server URL, for
//! the other broker commands. Tokens last as long as the server says (30 minutes by
//! default); for longer-lived scripts, an API key in `FERRY_TOKEN` does not expire.

use super::credentials::{self, Login, Store};
use super::http::{decode, now_secs, server_url, Client, Failure};
use super::{print, print_json, read_password, Target};
use serde::Deserialize;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    target: Target,
    /// The user's name
    #[arg(long, short, env = "FERRY_USER", default_value = "admin")]
    user: String,
    /// The password (visible to other local users in the process list: prefer
    /// FERRY_PASSWORD, --password-stdin, or typing it when asked)
    #[arg(long, env = "FERRY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// Print the token (for FERRY_TOKEN) instead of storing it
    #[arg(long)]
    print_token: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct LogoutArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    expires_in: u64,
}

pub(crate) fn login(args: &LoginArgs) -> Result<(), Failure> {
    let client = Client::anonymous(&args.target)?;
    let server = client.server().to_string();
    let prompt = format!("password of {} at {server}: ", args.user);
    let password = read_password(args.password.as_deref(), args.password_stdin, &prompt, false)?;
    let body = json!({ "username": args.user, "password": password });
    let token: Token = match client.post("/auth/token", &body) {
        Ok(v) => decode(v)?,
        // A refused login is the answer, not a reason to suggest logging in.
        Err(Failure::Server { status: Some(401), code, message, .. }) => {
            return Err(Failure::Server { status: Some(401), code, message, hint: None })
        }
        Err(e) => return Err(e),
    };
    if args.print_token {
        return print(&format!("{}\n", token.access_token));
    }
    let expires_at = now_secs().saturating_add(token.expires_in);
    let mut store = Store::load()?;
    store.set(&server, Login { user: args.user.clone(), token: token.access_token, expires_at });
    let file = store.save()?;
    if args.target.json {
        print_json(&json!({
            "server": server,
            "user": args.user,
            "expires_in": token.expires_in,
            "credentials": file.display().to_string(),
        }))
    } else {
        let minutes = token.expires_in.div_ceil(60);
        print(&format!("logged in to {server} as {} (the token lasts {minutes} min)\n", args.user))
    }
}

/// Forgets the stored token. The server keeps no sessions, so the token itself stays valid
/// until it expires; only this machine's copy goes.
pub(crate) fn logout(args: &LogoutArgs) -> Result<(), Failure> {
    let server = server_url(&args.target)?;
    let mut store = Store::load()?;
    let removed = store.remove(&server);
    if removed {
        store.save()?;
    }
    if args.target.json {
        return print_json(&json!({ "server": server, "logged_out": removed }));
    }
    if removed {
        print(&format!("logged out of {server}\n"))
    } else {
        let file = credentials::file()?;
        print(&format!("not logged in to {server} (nothing stored in {})\n", file.display()))
    }
}
