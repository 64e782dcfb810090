//! `ferry`: the command-line front of ferry. Each subcommand lives in its own module and
//! uses only the public APIs of the library crates.

mod bench;
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {e:#}");
            ExitCode::FAILURE
        }
    }
}
