//! `ncsn synth` (issue #6 is building it): a small procedural dataset in a raw format.

use super::Global;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _global: &Global) -> anyhow::Result<()> {
    anyhow::bail!("`ncsn synth` is not available in this build yet")
}
