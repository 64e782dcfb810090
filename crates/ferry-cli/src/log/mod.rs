//! `ferry log`: tools for ferry-log directories.

mod inspect;

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub(crate) enum LogCommand {
    /// Check a log directory without changing it: list its segments with their record
    /// counts, sequence numbers and times, verify every record, and report any damage.
    /// Safe to run while a server has the log open.
    ///
    /// Exits with status 0 when the log is sound (a torn tail, which the next open cuts by
    /// itself, counts as sound), 1 when something is corrupt.
    Inspect(inspect::InspectArgs),
}

pub(crate) fn run(cmd: LogCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LogCommand::Inspect(args) => inspect::run(&args),
    }
}
