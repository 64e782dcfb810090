//! `ferry cat`: nngcat-compatible.
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct CatArgs {}

pub(crate) fn run(_args: CatArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry cat: not built yet")
}
