//! `ncsn ingest`: a raw dataset, as distributed, into Parquet shards + _manifest.json (SPEC §3-4).

use std::path::PathBuf;

use anyhow::Context;
use pipeline::ingest;
use pipeline::sources::{self, Source};

use super::Global;

/// Turn a raw dataset into pixel-exact Parquet shards, once, so training never decodes again.
///
/// Every dataset takes `--input PATH --out DIR`. Output: one folder per split,
/// `DIR/split=<split>/<split>-NNNNN.parquet` (columns id, key, label, pixels as uint8 RGB HWC;
/// pyarrow, pandas, polars and DuckDB read DIR as one dataset with a `split` column), and
/// `DIR/_manifest.json` (counts, recipe, sha256 of every shard, rejected inputs with the
/// reason; files starting with `_` are skipped by those readers). Same input and options give byte-identical
/// shards whatever `--workers`. A killed run continues with `--resume`. To spread one dataset
/// over n machines, run `--partition i/n` (i = 0..n-1) on each into one shared DIR, then
/// `ncsn ingest merge DIR` once.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    dataset: Dataset,
}

#[derive(clap::Subcommand)]
enum Dataset {
    /// CIFAR-10: `cifar-10-batches-bin` or `cifar-10-batches-py`, extracted or the .tar.gz.
    /// 32x32 as is, labels kept; splits train (data_batch_1..5) and test (test_batch).
    Cifar10(Common),
    /// CelebA: a directory with img_align_celeba/ (or img_align_celeba.zip) and
    /// list_eval_partition.txt. CenterCrop(140) then Resize(64, bilinear); splits train, valid, test.
    Celeba(Common),
    /// LSUN: one official LMDB directory (e.g. bedroom_train_lmdb), values WebP or JPEG, taken in
    /// sorted key order. Resize(r) then CenterCrop(r), r = --resolution (default 96).
    Lsun(Common),
    /// FFHQ: images1024x1024/ (NNNNN/NNNNN.png) or the authors' LMDB (keys `256-00042`).
    /// Resize to 256 with LANCZOS (any power of two); seeded 90/10 train/test split.
    Ffhq(FfhqArgs),
    /// Any directory tree of JPEG/PNG/WebP, sorted by path: shorter side resized to
    /// --resolution (default 64, bilinear), then center-cropped. One split, `train` or --split.
    Folder(Common),
    /// Unify the manifests of `--partition i/n` runs written into DIR into one _manifest.json.
    Merge(MergeArgs),
}

/// Options every dataset takes.
#[derive(clap::Args)]
struct Common {
    /// The dataset as distributed (directory, archive or LMDB; see the dataset's help).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// Output directory for the shards and _manifest.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Output side in pixels where the dataset allows one (celeba 64, lsun 96, ffhq 256,
    /// folder 64; CIFAR-10 is always 32), at most 4096.
    #[arg(long, value_name = "N", value_parser = ranged_u32(1, sources::MAX_RESOLUTION))]
    resolution: Option<u32>,
    /// Ingest only this split (e.g. `train`); default: all of the dataset's splits. For
    /// `folder` it names the one split.
    #[arg(long, value_name = "S")]
    split: Option<String>,
    /// Only the first N images of each split (quick trials).
    #[arg(long, value_name = "N", value_parser = positive)]
    limit: Option<u64>,
    /// Decode threads, at most 1024 [default: one per core]. Does not change the output bytes.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true,
          value_parser = ranged_usize(0, MAX_THREADS))]
    workers: usize,
    /// Shard writer threads (Parquet encoding, zstd, sha256), each writing its own shards,
    /// at most 1024 [default: one per 6 workers]. Raise it if the progress bar's rate stays
    /// below what the workers decode on a many-core machine. Does not change the output bytes.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true,
          value_parser = ranged_usize(0, MAX_THREADS))]
    writers: usize,
    /// Source images per shard [default: ~256 MiB of pixels, e.g. 86016 CIFAR-10 images].
    #[arg(long, value_name = "N", value_parser = positive)]
    shard_rows: Option<u64>,
    /// Refuse (and list as rejected) any image whose header claims more than N pixels, before
    /// decoding it [default: 178956970, where Pillow refuses a decompression bomb]. Each
    /// decode worker needs up to ~12 bytes per pixel of the largest image it accepts, plus its
    /// file (2.1 GB at the default). Does not change the bytes of the images it lets through.
    #[arg(long, value_name = "N", value_parser = positive)]
    max_pixels: Option<u64>,
    /// Finish an interrupted run in DIR (same options); finished shards are kept as they are.
    #[arg(long)]
    resume: bool,
    /// Write only slice i of n (0-based) of every split's shards, for n machines sharing DIR.
    #[arg(long, value_name = "i/n")]
    partition: Option<String>,
}

/// `--workers` and `--writers`: each thread is a real OS thread holding buffers (a decode
/// worker up to one image of `--max-pixels`), so a typo such as `--workers 100000` is refused
/// rather than tried.
const MAX_THREADS: usize = 1024;

/// A count that must be at least 1 (clap's own range message would print `1..2^64`).
fn positive(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn ranged_u32(min: u32, max: u32) -> clap::builder::RangedU64ValueParser<u32> {
    clap::builder::RangedU64ValueParser::new().range(min as u64..=max as u64)
}

fn ranged_usize(min: usize, max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(min as u64..=max as u64)
}

#[derive(clap::Args)]
struct FfhqArgs {
    #[command(flatten)]
    common: Common,
    /// Seed of the 90/10 train/test split (recorded in the manifest).
    #[arg(long, value_name = "SEED", default_value_t = sources::ffhq::DEFAULT_SPLIT_SEED)]
    split_seed: u64,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// Directory where all partitions wrote their shards and manifest.part-i-of-n.json.
    dir: PathBuf,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let (common, source) = match args.dataset {
        Dataset::Cifar10(c) => {
            if c.resolution.is_some_and(|r| r != 32) {
                anyhow::bail!("CIFAR-10 is 32x32: --resolution does not apply");
            }
            if c.max_pixels.is_some() {
                anyhow::bail!("CIFAR-10 holds raw 32x32 pixels: --max-pixels does not apply");
            }
            let s = sources::cifar10::open(&c.input).context("cannot read CIFAR-10")?;
            (c, s)
        }
        Dataset::Celeba(c) => {
            let s = sources::celeba::open(&c.input, c.resolution).context("cannot read CelebA")?;
            (c, s)
        }
        Dataset::Lsun(c) => {
            let s = sources::lsun::open(&c.input, c.resolution).context("cannot read LSUN")?;
            (c, s)
        }
        Dataset::Ffhq(f) => {
            let c = f.common;
            let s = sources::ffhq::open(&c.input, c.resolution, Some(f.split_seed))
                .context("cannot read FFHQ")?;
            (c, s)
        }
        Dataset::Folder(mut c) => {
            // The folder's one split is named by --split, not selected by it.
            let split = c.split.take();
            let s = sources::folder::open(&c.input, c.resolution, split.as_deref())
                .context("cannot read the image folder")?;
            (c, s)
        }
        Dataset::Merge(m) => {
            let r = ingest::merge(&m.dir).context("merge failed")?;
            println!(
                "merged {} partitions into {}: {} images ({}); {} shards renumbered.",
                r.partitions,
                r.manifest_path.display(),
                r.manifest.total_images(),
                r.manifest
                    .splits
                    .iter()
                    .map(|(k, v)| format!("{k} {}", v.count))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.renumbered
            );
            return Ok(());
        }
    };
    run_source(common, source, global)
}

fn run_source(c: Common, mut source: Source, global: &Global) -> anyhow::Result<()> {
    if let Some(s) = &c.split {
        source.select_split(s)?;
    }
    if let Some(n) = c.limit {
        source.limit(n);
    }
    if let Some(n) = c.max_pixels {
        source.limits.max_pixels = n;
    }
    let partition = c
        .partition
        .as_deref()
        .map(ingest::parse_partition)
        .transpose()?;
    let opts = ingest::Options {
        out: c.out,
        shard_rows: c.shard_rows,
        workers: c.workers,
        writers: c.writers,
        resume: c.resume,
        partition,
        progress: global.progress(),
    };
    let summary = ingest::ingest(&source, &opts)
        .with_context(|| format!("ingest of {} failed", source.dataset))?;
    println!("{summary}");
    Ok(())
}
