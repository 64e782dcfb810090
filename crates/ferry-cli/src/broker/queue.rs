//! `ferry queue`: queues, their messages and their consumers (competing: each message goes
//! to one receiver, and is gone once acked).

use super::consume::{self, NackArgs, RecvArgs, SettleArgs, Source};
use super::destination::{self as dest, PeekArgs, SettingsArgs};
use super::http::Failure;
use super::message::{self, SendArgs};
use super::{ConnArgs, Ctx};
use ferry_broker::Kind;

#[derive(clap::Args, Debug)]
pub(crate) struct QueueArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: QueueCommand,
}

#[derive(clap::Subcommand, Debug)]
enum QueueCommand {
    /// Create a queue; you own it
    Create {
        /// The queue
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the queues you may see, with their depths
    #[command(visible_alias = "ls")]
    List,
    /// Settings and statistics of a queue
    Describe {
        /// The queue
        name: String,
    },
    /// Change some settings of a queue, keeping the others (its owner or an admin)
    Update {
        /// The queue
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete a queue and its messages (its owner or an admin)
    Delete {
        /// The queue
        name: String,
    },
    /// Drop every message of a queue (its owner or an admin)
    Purge {
        /// The queue
        name: String,
    },
    /// Show messages without consuming them
    Peek {
        /// The queue
        name: String,
        #[command(flatten)]
        args: PeekArgs,
    },
    /// Publish a message (the argument, --file, or standard input)
    Send {
        /// The queue
        name: String,
        #[command(flatten)]
        args: SendArgs,
    },
    /// Receive messages, print them, and ack them (unless --no-ack)
    Recv {
        /// The queue
        name: String,
        #[command(flatten)]
        args: RecvArgs,
    },
    /// Ack leased messages by lease id (after `recv --no-ack`)
    Ack {
        /// The queue
        name: String,
        #[command(flatten)]
        args: SettleArgs,
    },
    /// Give leased messages back, to be delivered again (after `recv --no-ack`)
    Nack {
        /// The queue
        name: String,
        #[command(flatten)]
        args: NackArgs,
    },
}

pub(crate) fn run(args: QueueArgs) -> Result<(), Failure> {
    let ctx = Ctx::new(&args.conn)?;
    let ctx = &ctx;
    match args.cmd {
        QueueCommand::Create { name, settings } => dest::create(ctx, Kind::Queue, &name, settings, None),
        QueueCommand::List => dest::list(ctx, Kind::Queue),
        QueueCommand::Describe { name } => dest::describe(ctx, Kind::Queue, &name),
        QueueCommand::Update { name, settings } => dest::update(ctx, Kind::Queue, &name, settings, None),
        QueueCommand::Delete { name } => dest::delete(ctx, Kind::Queue, &name),
        QueueCommand::Purge { name } => dest::purge(ctx, Kind::Queue, &name),
        QueueCommand::Peek { name, args } => dest::peek(ctx, Kind::Queue, &name, &args),
        QueueCommand::Send { name, args } => message::send(ctx, "queues", &name, &args),
        QueueCommand::Recv { name, args } => consume::recv(ctx, Source::Queue(&name), &args),
        QueueCommand::Ack { name, args } => consume::ack(ctx, Source::Queue(&name), &args),
        QueueCommand::Nack { name, args } => consume::nack(ctx, Source::Queue(&name), &args),
    }
}
