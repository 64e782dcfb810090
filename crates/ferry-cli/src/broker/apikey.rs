//! `ferry apikey`: long-lived keys for programs (`/v1/apikeys`). A key acts as the user who
//! made it, with that user's permissions, until it is deleted; the whole key is shown only
//! when it is made.

use super::http::{decode, path, Failure};
use super::table::{Table, LEFT};
use super::{done, print, print_json, time, ConnArgs, Ctx};
use serde::Deserialize;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub(crate) struct ApiKeyArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: ApiKeyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ApiKeyCommand {
    /// Make a key that acts as you; it is printed once, keep it (use it as --token or
    /// FERRY_TOKEN)
    Create {
        /// What the key is for, to tell keys apart in `list`
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Your keys (an admin's: everyone's), without their secrets
    #[command(visible_alias = "ls")]
    List,
    /// Delete a key by id (its owner or an admin); programs using it are refused at once
    Delete {
        /// The key's id, as `list` shows it
        id: String,
    },
}

#[derive(Deserialize)]
struct KeyInfo {
    id: String,
    owner: String,
    label: String,
    created_at: u64,
}

#[derive(Deserialize)]
struct Created {
    key: String,
    info: KeyInfo,
}

#[derive(Deserialize)]
struct Keys {
    apikeys: Vec<KeyInfo>,
}

pub(crate) fn run(args: ApiKeyArgs) -> Result<(), Failure> {
    let ctx = Ctx::new(&args.conn)?;
    let ctx = &ctx;
    match args.cmd {
        ApiKeyCommand::Create { label } => {
            let answer = ctx.client.post("/apikeys", &json!({ "label": label }))?;
            if ctx.json {
                return print_json(&answer);
            }
            let Created { key, info } = decode(answer)?;
            print(&format!("{key}\ncreated key {} for {}: this is the only time it is shown\n", info.id, info.owner))
        }
        ApiKeyCommand::List => {
            let answer = ctx.client.get("/apikeys")?;
            if ctx.json {
                return print_json(&answer);
            }
            let Keys { apikeys } = decode(answer)?;
            if apikeys.is_empty() {
                return print("no API keys\n");
            }
            let mut table = Table::new(&[("id", LEFT), ("owner", LEFT), ("created", LEFT), ("label", LEFT)]);
            for k in apikeys {
                table.row(vec![k.id, k.owner, time(k.created_at), k.label]);
            }
            print(&table.render())
        }
        ApiKeyCommand::Delete { id } => {
            ctx.client.delete(&path(&["apikeys", &id]))?;
            done(ctx, &format!("deleted API key {id}"))
        }
    }
}
