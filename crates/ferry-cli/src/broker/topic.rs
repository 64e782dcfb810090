//! `ferry topic`: topics, which keep their messages by retention limits and deliver each
//! one to every subscription (`ferry sub`).

use super::destination::{self as dest, PeekArgs, RetentionArgs, SettingsArgs};
use super::http::Failure;
use super::message::{self, SendArgs};
use super::{ConnArgs, Ctx};
use ferry_broker::Kind;

#[derive(clap::Args, Debug)]
pub(crate) struct TopicArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: TopicCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TopicCommand {
    /// Create a topic; you own it
    Create {
        /// The topic
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        retention: RetentionArgs,
    },
    /// List the topics you may see
    #[command(visible_alias = "ls")]
    List,
    /// Settings, statistics and subscriptions of a topic
    Describe {
        /// The topic
        name: String,
    },
    /// Change some settings of a topic, keeping the others (its owner or an admin)
    Update {
        /// The topic
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        retention: RetentionArgs,
    },
    /// Delete a topic, its messages and subscriptions (its owner or an admin)
    Delete {
        /// The topic
        name: String,
    },
    /// Drop every message of a topic (its owner or an admin)
    Purge {
        /// The topic
        name: String,
    },
    /// Show retained messages without consuming them
    Peek {
        /// The topic
        name: String,
        #[command(flatten)]
        args: PeekArgs,
    },
    /// Publish a message to every subscription (the argument, --file, or standard input)
    #[command(visible_alias = "send")]
    Publish {
        /// The topic
        name: String,
        #[command(flatten)]
        args: SendArgs,
    },
}

pub(crate) fn run(args: TopicArgs) -> Result<(), Failure> {
    let ctx = Ctx::new(&args.conn)?;
    let ctx = &ctx;
    match args.cmd {
        TopicCommand::Create { name, settings, retention } => {
            dest::create(ctx, Kind::Topic, &name, settings, Some(retention))
        }
        TopicCommand::List => dest::list(ctx, Kind::Topic),
        TopicCommand::Describe { name } => dest::describe(ctx, Kind::Topic, &name),
        TopicCommand::Update { name, settings, retention } => {
            dest::update(ctx, Kind::Topic, &name, settings, Some(retention))
        }
        TopicCommand::Delete { name } => dest::delete(ctx, Kind::Topic, &name),
        TopicCommand::Purge { name } => dest::purge(ctx, Kind::Topic, &name),
        TopicCommand::Peek { name, args } => dest::peek(ctx, Kind::Topic, &name, &args),
        TopicCommand::Publish { name, args } => message::send(ctx, "topics", &name, &args),
    }
}
