//! `ferry`: the command-line front of ferry. Each subcommand lives in its own module and
//! uses only the public APIs of the library crates.

mod bench;
mod broker;
mod cat;
mod device;
mod log;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ferry", version, about = "ferry: brokerless SP messaging and a message broker in one toolkit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker: durable queues and topics over HTTP (REST /v1), with an embedded
    /// data directory.
    Serve(serve::ServeArgs),
    /// Send and receive SP messages from the command line; nngcat-compatible.
    Cat(cat::CatArgs),
    /// Forward between two raw SP sockets: a broker-less load balancer, relay or hub.
    Device(device::DeviceArgs),
    /// Tools for ferry-log directories.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Measure ferry side by side with its references (libnng, raw sockets).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Log in to a `ferry serve` and keep the token for the broker commands.
    Login(broker::LoginArgs),
    /// Forget the token `ferry login` stored for a server.
    Logout(broker::LogoutArgs),
    /// Queues on a `ferry serve`: create, list, send, receive, …
    Queue(broker::QueueArgs),
    /// Topics on a `ferry serve`: create, list, publish, …
    Topic(broker::TopicArgs),
    /// Subscriptions of a topic on a `ferry serve`: create, receive, seek, …
    Sub(broker::SubArgs),
    /// Users and permissions on a `ferry serve` (admins).
    User(broker::UserArgs),
    /// API keys on a `ferry serve`: long-lived tokens for programs.
    Apikey(broker::ApiKeyArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("FERRY_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Device(args) => device::run(args),
        Command::Log(cmd) => log::run(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Login(args) => return broker::run(broker::Broker::Login(args)),
        Command::Logout(args) => return broker::run(broker::Broker::Logout(args)),
        Command::Queue(args) => return broker::run(broker::Broker::Queue(args)),
        Command::Topic(args) => return broker::run(broker::Broker::Topic(args)),
        Command::Sub(args) => return broker::run(broker::Broker::Sub(args)),
        Command::User(args) => return broker::run(broker::Broker::User(args)),
        Command::Apikey(args) => return broker::run(broker::Broker::ApiKey(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
