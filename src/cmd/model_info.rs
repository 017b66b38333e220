//! `ncsn model-info`: which network a config builds, block by block, and its parameter count.

use std::path::PathBuf;

use anyhow::Context;
use schemas::config::Config;

use super::Global;

/// Print the score network a config builds (paper Tables 2–3): the architecture chosen like
/// the authors' get_model (CIFAR10/CELEBA → NCSNv2, LSUN → NCSNv2Deeper, FFHQ →
/// NCSNv2Deepest; `model.arch` overrides), one row per module with its output shape and
/// parameter count, and the total.
#[derive(clap::Args)]
pub struct Args {
    /// Training config in the authors' YAML layout (e.g. configs/cifar10.yml).
    #[arg(long)]
    config: PathBuf,
    /// Override `data.image_size` (this also changes the automatic architecture choice for
    /// datasets other than CIFAR10/CELEBA/LSUN/FFHQ).
    #[arg(long)]
    image_size: Option<u32>,
    /// Override `model.ngf`, the base channel count (128 in the paper).
    #[arg(long)]
    ngf: Option<i64>,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<()> {
    let mut cfg = Config::read(&args.config)?;
    if let Some(s) = args.image_size {
        cfg.data.image_size = s;
    }
    if let Some(n) = args.ngf {
        cfg.model.ngf = n;
    }
    let summary = trainer::models::summary::summarize(&cfg)
        .with_context(|| format!("{}", args.config.display()))?;
    println!("{summary}");
    Ok(())
}
