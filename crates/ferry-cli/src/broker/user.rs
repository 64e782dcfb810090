//! `ferry user`: accounts and their permissions, for admins (`/v1/users`). A permission is a
//! pattern over destination names (`*` matches any run of characters, as in `orders.*`)
//! for one action: publish, consume or manage. Admins may do everything; a user may also do
//! everything to the destinations they created.

use super::http::{decode, path, Failure};
use super::table::{fields, Table, LEFT};
use super::{done, print, print_json, read_password, ConnArgs, Ctx};
use ferry_server::auth::{Permissions, Role};
use serde::Deserialize;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: UserCommand,
}

#[derive(clap::Args, Debug)]
struct PasswordArgs {
    /// The new password, at least 8 characters (visible to other local users in the process
    /// list: prefer --password-stdin or typing it when asked)
    #[arg(long)]
    password: Option<String>,
    /// Read the new password from the first line of standard input
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
}

#[derive(clap::Subcommand, Debug)]
enum UserCommand {
    /// Create a user
    Create {
        /// The user's name
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// admin: everything, users included; user: create destinations (then owned),
        /// and what the permissions allow
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
        /// Destinations the user may publish to (a pattern; repeatable)
        #[arg(long, value_name = "PATTERN")]
        publish: Vec<String>,
        /// Destinations the user may receive from, peek, and subscribe to
        #[arg(long, value_name = "PATTERN")]
        consume: Vec<String>,
        /// Destinations the user may create, and delete or purge when not the owner
        #[arg(long, value_name = "PATTERN")]
        manage: Vec<String>,
    },
    /// List the users
    #[command(visible_alias = "ls")]
    List,
    /// Show a user's role and permissions
    Describe {
        /// The user's name
        name: String,
    },
    /// Delete a user (not the last admin)
    Delete {
        /// The user's name
        name: String,
    },
    /// Let a user do ACTION on destinations matching PATTERN(s)
    Grant {
        /// The user's name
        name: String,
        /// What the patterns allow
        #[arg(value_enum)]
        action: ActionArg,
        /// Destination names, where `*` matches any run of characters (`orders.*`, `*`)
        #[arg(required = true, num_args = 1..)]
        patterns: Vec<String>,
    },
    /// Take back permissions given with `grant` (the same patterns)
    Revoke {
        /// The user's name
        name: String,
        /// What the patterns allow
        #[arg(value_enum)]
        action: ActionArg,
        /// Destination names, where `*` matches any run of characters (`orders.*`, `*`)
        #[arg(required = true, num_args = 1..)]
        patterns: Vec<String>,
    },
    /// Set a user's password (role and permissions are kept)
    Passwd {
        /// The user's name
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    Admin,
    User,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ActionArg {
    Publish,
    Consume,
    Manage,
    /// publish, consume and manage
    All,
}

#[derive(Deserialize)]
struct UserInfo {
    name: String,
    role: Role,
    permissions: Permissions,
}

#[derive(Deserialize)]
struct Users {
    users: Vec<UserInfo>,
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::User => "user",
    }
}

fn role_value(r: RoleArg) -> Role {
    match r {
        RoleArg::Admin => Role::Admin,
        RoleArg::User => Role::User,
    }
}

/// The lists of `p` that `action` names.
fn lists(p: &mut Permissions, action: ActionArg) -> Vec<&mut Vec<String>> {
    match action {
        ActionArg::Publish => vec![&mut p.publish],
        ActionArg::Consume => vec![&mut p.consume],
        ActionArg::Manage => vec![&mut p.manage],
        ActionArg::All => vec![&mut p.publish, &mut p.consume, &mut p.manage],
    }
}

fn permission_fields(p: &Permissions) -> Vec<(&'static str, String)> {
    let show = |v: &Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(" ") };
    vec![("publish", show(&p.publish)), ("consume", show(&p.consume)), ("manage", show(&p.manage))]
}

fn new_password(args: &PasswordArgs, name: &str) -> Result<String, Failure> {
    let p = read_password(args.password.as_deref(), args.password_stdin, &format!("new password for {name}: "), true)?;
    // The server says so too, but only after the round trip; this also keeps the message short.
    if p.chars().count() < 8 {
        return Err(Failure::Usage("the password needs at least 8 characters".into()));
    }
    Ok(p)
}

fn user(ctx: &Ctx, name: &str) -> Result<UserInfo, Failure> {
    decode(ctx.client.get(&path(&["users", name]))?)
}

pub(crate) fn run(args: UserArgs) -> Result<(), Failure> {
    let ctx = Ctx::new(&args.conn)?;
    let ctx = &ctx;
    match args.cmd {
        UserCommand::Create { name, password, role, publish, consume, manage } => {
            // PUT creates or replaces: check first, so that `create` never overwrites.
            match user(ctx, &name) {
                Ok(_) => {
                    return Err(Failure::refused(
                        "already_exists",
                        format!("user {name} already exists (`ferry user passwd` and `grant` change it)"),
                    ))
                }
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
            let password = new_password(&password, &name)?;
            let permissions = Permissions { publish, consume, manage };
            let body = json!({ "password": password, "role": role_value(role), "permissions": permissions });
            let answer = ctx.client.put(&path(&["users", &name]), &body)?;
            if ctx.json {
                return print_json(&answer);
            }
            let u: UserInfo = decode(answer)?;
            print(&format!("created {} {}\n", role_name(u.role), u.name))
        }
        UserCommand::List => {
            let answer = ctx.client.get("/users")?;
            if ctx.json {
                return print_json(&answer);
            }
            let Users { users } = decode(answer)?;
            let mut table =
                Table::new(&[("name", LEFT), ("role", LEFT), ("publish", LEFT), ("consume", LEFT), ("manage", LEFT)]);
            for u in users {
                let mut row = vec![u.name, role_name(u.role).to_string()];
                row.extend(permission_fields(&u.permissions).into_iter().map(|(_, v)| v));
                table.row(row);
            }
            print(&table.render())
        }
        UserCommand::Describe { name } => {
            let answer = ctx.client.get(&path(&["users", &name]))?;
            if ctx.json {
                return print_json(&answer);
            }
            let u: UserInfo = decode(answer)?;
            let mut pairs = vec![("name", u.name), ("role", role_name(u.role).to_string())];
            pairs.extend(permission_fields(&u.permissions));
            print(&fields(&pairs))
        }
        UserCommand::Delete { name } => {
            ctx.client.delete(&path(&["users", &name]))?;
            done(ctx, &format!("deleted user {name}"))
        }
        UserCommand::Grant { name, action, patterns } => change(ctx, &name, action, &patterns, true),
        UserCommand::Revoke { name, action, patterns } => change(ctx, &name, action, &patterns, false),
        UserCommand::Passwd { name, password } => {
            // The API sets a password only with the whole user, so the role and permissions
            // are read and written back.
            let u = user(ctx, &name)?;
            let password = new_password(&password, &name)?;
            let body = json!({ "password": password, "role": u.role, "permissions": u.permissions });
            ctx.client.put(&path(&["users", &name]), &body)?;
            done(ctx, &format!("changed the password of {name}"))
        }
    }
}

/// Adds (`grant`) or removes patterns, then shows the user's permissions.
fn change(ctx: &Ctx, name: &str, action: ActionArg, patterns: &[String], grant: bool) -> Result<(), Failure> {
    let url = path(&["users", name, "permissions"]);
    let mut perms: Permissions = decode(ctx.client.get(&url)?)?;
    for list in lists(&mut perms, action) {
        if grant {
            for p in patterns {
                if !list.contains(p) {
                    list.push(p.clone());
                }
            }
        } else {
            list.retain(|p| !patterns.contains(p));
        }
    }
    let answer = ctx.client.put(&url, &json!(perms))?;
    if ctx.json {
        return print_json(&answer);
    }
    let perms: Permissions = decode(answer)?;
    let mut pairs = vec![("user", name.to_string())];
    pairs.extend(permission_fields(&perms));
    print(&fields(&pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_names_every_list() {
        let mut p = Permissions::default();
        for l in lists(&mut p, ActionArg::All) {
            l.push("x".into());
        }
        assert_eq!((p.publish.len(), p.consume.len(), p.manage.len()), (1, 1, 1));
        assert_eq!(lists(&mut p, ActionArg::Consume).len(), 1);
    }
}
