//! `ncsn export`: an ingested directory in the formats other trainers stream.

use std::path::PathBuf;

use anyhow::Context;
use shards::{Dataset, WebDatasetOptions};

use super::Global;

/// Export an `ncsn ingest` directory for other trainers, with its images exactly as ncsn
/// preprocessed them (Pillow-exact crops and resizes, lossless PNG).
///
///   ncsn export webdataset --data data/cifar10 --out wds/cifar10
///
/// writes wds/cifar10/train-000000.tar, ..., test-000000.tar: WebDataset shards whose samples
/// are <id>.png, <id>.json (id, key, label, split, dataset) and <id>.cls (the label, when the
/// dataset has labels). Read them with e.g.
///   webdataset.WebDataset("wds/cifar10/train-{000000..000004}.tar").decode("rgb8")
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    format: Format,
}

#[derive(clap::Subcommand)]
enum Format {
    /// WebDataset tar shards: <split>-<k>.tar of <id>.png, <id>.json and <id>.cls samples.
    Webdataset(WebDatasetArgs),
}

#[derive(clap::Args)]
struct WebDatasetArgs {
    /// The directory `ncsn ingest --out` wrote.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Where the tar files go (created if missing; must not hold tars of the same names).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Export only this split (repeatable) [default: every split].
    #[arg(long, value_name = "S")]
    split: Vec<String>,
    /// Samples per tar file.
    #[arg(long, value_name = "N", default_value_t = WebDatasetOptions::default().samples_per_shard,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    samples_per_shard: u64,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let Format::Webdataset(a) = args.format;
    let ds = Dataset::open(&a.data)?;
    let total: u64 = if a.split.is_empty() {
        ds.manifest.total_images()
    } else {
        a.split
            .iter()
            .map(|s| ds.split(s).map(|sm| sm.count))
            .sum::<shards::Result<u64>>()?
    };
    let opts = WebDatasetOptions {
        samples_per_shard: a.samples_per_shard,
        ..WebDatasetOptions::default()
    };
    let bar = progress::bar(total, global.progress(), "images");
    bar.set_message("export webdataset");
    let done = shards::export_webdataset(&ds, &a.split, &a.out, &opts, |n| bar.set_position(n))
        .context("export failed")?;
    bar.finish_and_clear();
    for s in &done {
        let pattern = shards::tar_pattern(&s.split, s.files.len() as u64);
        let files = match s.files.len() {
            1 => "1 tar file".to_string(),
            n => format!("{n} tar files"),
        };
        println!(
            "{}: {} samples in {files}: {}",
            s.split,
            s.samples,
            a.out.join(pattern).display()
        );
    }
    Ok(())
}
