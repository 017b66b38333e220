//! `ncsn neighbours`: the nearest training images of samples (App. C.5.2, Figs. 16–19).

use std::path::PathBuf;

use anyhow::Context;
use evaluate::neighbours::{nearest_training_images, NeighbourOptions};
use evaluate::score::Samples;

use super::fid::InceptionArgs;
use super::Global;

/// The nearest training images of samples, to see whether a model memorises (App. C.5.2).
///
/// Distance is ℓ2 between pytorch-fid's Inception pool3 features (the network and
/// preprocessing of `ncsn fid`). Every training image is a candidate twice, as stored and
/// flipped left to right, since training flips at random; a matched flip is drawn flipped and
/// marked in the output. The training split is streamed, so any size fits in memory.
///
/// The PNG has one row per sample: the sample, a red line, then its k nearest training images,
/// nearest first (Figs. 16–19). --json FILE writes, per sample, each neighbour's row id, source
/// key, whether it is the flip, and the distance.
///
/// Examples:
///   ncsn neighbours --samples s.npz --data data/cifar10 --out neighbours.png
///   ncsn neighbours --samples s.npz --data data/celeba64 --ids 3,17,40 -k 5 \
///       --out nn.png --json nn.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Samples: a .npz of uint8 [N, H, W, 3] images (`ncsn sample --raw`).
    #[arg(long, value_name = "NPZ")]
    samples: PathBuf,

    /// The `ncsn ingest` directory whose --split is searched.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    #[arg(long, default_value = "train")]
    split: String,

    /// Neighbours per sample (at most twice the split's images: each also flipped).
    #[arg(short, default_value_t = 10,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    k: usize,

    /// The first N samples of the file.
    #[arg(long, default_value_t = 8, conflicts_with = "ids",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    num: usize,

    /// Or these samples (rows of the file, from 0), in this order: --ids 3,17,40.
    #[arg(long, value_name = "I,J,…", value_delimiter = ',', num_args = 1..)]
    ids: Vec<usize>,

    /// The figure (PNG).
    #[arg(long, value_name = "PNG")]
    out: PathBuf,

    /// Also write the neighbours as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    #[command(flatten)]
    inception: InceptionArgs,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    schemas::output::check_file(&args.out).context("--out")?;
    if let Some(json) = &args.json {
        schemas::output::check_file(json).context("--json")?;
    }
    let samples = Samples::read_npz(&args.samples)?;
    let which: Vec<usize> = if args.ids.is_empty() {
        (0..args.num.min(samples.len())).collect()
    } else {
        args.ids.clone()
    };
    if let Some(&i) = which.iter().find(|&&i| i >= samples.len()) {
        anyhow::bail!(
            "{}: --ids {i}: the file has {} samples (0 to {})",
            args.samples.display(),
            samples.len(),
            samples.len() - 1
        );
    }
    let extractor = args.inception.extractor()?;
    let dataset = shards::Dataset::open(&args.data)?;
    let (h, w) = (dataset.manifest.height, dataset.manifest.width);
    if samples.image_size() != [h, w] && !global.quiet {
        eprintln!(
            "note: {}: samples are {}×{}, the training images {h}×{w}; Inception resizes both \
             to 299×299, so the distances are defined, but look at the figure with that in mind",
            args.samples.display(),
            samples.shape[1],
            samples.shape[2]
        );
    }
    let opts = NeighbourOptions {
        k: args.k,
        batch_size: args.inception.batch_size(),
        progress: global.progress(),
    };
    let found =
        nearest_training_images(&extractor, &samples, &which, &args.data, &args.split, &opts)
            .with_context(|| {
                format!(
                    "neighbours of {} in {} ({})",
                    args.samples.display(),
                    args.data.display(),
                    args.split
                )
            })?;

    shards::write_png(&args.out, &found.figure(&samples))?;
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "samples_file": args.samples,
            "data": args.data,
            "split": args.split,
            "training_images": found.training_images,
            "k": args.k,
            "metric": "l2 between Inception pool3 features (pytorch-fid's), flips included",
            "weights": extractor.weights(),
            "samples": found.samples.iter().map(|s| serde_json::json!({
                "index": s.index,
                "neighbours": s.neighbours.iter().map(|n| serde_json::json!({
                    "id": n.id,
                    "key": n.key,
                    "flipped": n.flipped,
                    "distance": n.distance,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc)? + "\n";
        schemas::atomic::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    for s in &found.samples {
        let n = &s.neighbours[0];
        println!(
            "sample {:>4}: nearest id {} ({}{}) at {:.4}",
            s.index,
            n.id,
            n.key,
            if n.flipped { ", flipped" } else { "" },
            n.distance
        );
    }
    println!("wrote {}", args.out.display());
    if let Some(path) = &args.json {
        println!("wrote {}", path.display());
    }
    Ok(())
}
