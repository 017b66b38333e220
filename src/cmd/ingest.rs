//! `ncsn ingest` (issue #3 is building it).

use super::Global;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _global: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`ncsn ingest` is not available in this build yet")
}
