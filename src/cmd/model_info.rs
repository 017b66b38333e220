//! `ncsn model-info` (issue #5 is building it).

use super::Global;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _global: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`ncsn model-info` is not available in this build yet")
}
