//! `ncsn inspect`: what an ingested directory holds; `--verify` checksums; `--grid` a picture.

use std::path::PathBuf;

use anyhow::Context;
use shards::inspect;
use shards::Dataset;

use super::Global;

/// Describe an `ncsn ingest` output directory: dataset, recipe, resolution, splits, counts,
/// shards and rejected inputs.
///
/// `--verify` recomputes the sha256 of every shard and checks its rows, ids and metadata
/// against the manifest (exit code 1 naming the first bad shard). `--grid FILE.png` writes the
/// first 64 images as a torchvision make_grid picture (8 per row) so a person can look.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The directory `ncsn ingest --out` wrote.
    dir: PathBuf,
    /// Recompute every shard's sha256 and check rows against the manifest.
    #[arg(long)]
    verify: bool,
    /// Write a PNG grid of the first images here.
    #[arg(long, value_name = "FILE.png")]
    grid: Option<PathBuf>,
    /// Split the grid shows [default: train, else the first split].
    #[arg(long, value_name = "S")]
    split: Option<String>,
    /// Images in the grid.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    grid_images: usize,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let ds = Dataset::open(&args.dir)?;
    if let Some(path) = &args.grid {
        // Before --verify, which may read the whole dataset.
        schemas::output::check_file(path).context("--grid")?;
    }
    println!("{}", inspect::describe(&ds));
    if args.verify {
        let bar = progress::spinner("verifying", global.progress());
        let n = inspect::verify(&ds, |f| bar.set_message(format!("verifying {f}")))
            .context("verification failed")?;
        bar.finish_and_clear();
        println!("verified: {n} shards match their sha256, row counts and ids");
    }
    if let Some(path) = &args.grid {
        let n = inspect::write_grid(&ds, args.split.as_deref(), args.grid_images, path)
            .context("cannot write the grid")?;
        println!("grid of {n} images written to {}", path.display());
    }
    Ok(())
}
