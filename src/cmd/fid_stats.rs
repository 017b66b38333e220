//! `ncsn fid-stats`: the FID reference statistics (μ, Σ of pool3 features) of an ingested
//! split, in pytorch-fid's `.npz` layout.

use std::path::PathBuf;

use anyhow::Context;

use super::fid::{warn_if_singular, InceptionArgs};
use super::Global;

/// FID reference statistics of a split of an `ncsn ingest` directory.
///
/// Every image of the split goes through pytorch-fid's FID Inception network (resized to
/// 299×299, bilinear, align_corners=False; scaled to [-1, 1]); μ and Σ of the 2048 pool3
/// features are saved as float64 `mu` and `sigma` in a .npz, the layout of pytorch-fid's
/// `--save-stats` and TTUR's files, so the three read each other's statistics. ncsn adds
/// `num_images` and `image_size`, which they ignore and `ncsn fid` checks.
///
/// Example:
///   ncsn fid-stats --data data/cifar10              # -> data/cifar10/_fid_stats_train.npz
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// An `ncsn ingest` output directory (with _manifest.json).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// The split whose images make the statistics (the paper: train for CIFAR-10, test for
    /// CelebA, App. B.2).
    #[arg(long, default_value = "train")]
    split: String,

    /// Where to write the statistics [default: DIR/_fid_stats_<split>.npz, a name Parquet readers of DIR skip].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    #[command(flatten)]
    inception: InceptionArgs,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.data.join(schemas::layout::fid_stats_file(&args.split)));
    if args.data.is_dir() {
        // A typo in --out costs a second, not the whole pass (DIR itself is checked below).
        schemas::output::check_file(&out).context("--out")?;
    }
    let extractor = args.inception.extractor()?;
    let start = std::time::Instant::now();
    let stats = evaluate::score::dataset_stats(
        &extractor,
        &args.data,
        &args.split,
        args.inception.batch_size(),
        global.progress(),
    )
    .with_context(|| format!("statistics of {} ({})", args.data.display(), args.split))?;
    warn_if_singular(&args.data, &stats);
    stats.write_npz(&out)?;
    let [h, w] = stats.image_size.unwrap_or([0, 0]);
    println!(
        "{} images ({h}×{w}) of `{}` in {:.1} s on {:?}",
        stats.num_images.unwrap_or(0),
        args.split,
        start.elapsed().as_secs_f64(),
        extractor.device()
    );
    println!("wrote {}", out.display());
    Ok(())
}
