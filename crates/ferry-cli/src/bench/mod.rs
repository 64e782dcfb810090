//! `ferry bench`.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// SP benchmarks.
    Sp,
}

pub(crate) fn run(_cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry bench: not built yet")
}
