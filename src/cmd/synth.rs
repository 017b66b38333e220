//! `ncsn synth`: a small procedural dataset in a raw dataset's real on-disk format, so the demo
//! and tests run the whole pipeline (ingest → calibrate → train → sample) without a download.

use std::path::PathBuf;

use anyhow::Context;
use pipeline::synthetic::{write_cifar10_bin, SynthOptions, CLASSES};

use super::Global;

/// Writes procedural images in a raw dataset format (no download).
///
/// `cifar10` writes OUT/cifar-10-batches-bin/ exactly like the official binary release
/// (data_batch_1..5.bin, test_batch.bin, batches.meta.txt; each record is 1 label byte and the
/// 32x32 R, G and B planes), holding ten classes of coloured shapes and patterns with random
/// position, size and colour. Feed it to `ncsn ingest cifar10 --input OUT/cifar-10-batches-bin`.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The raw format to write (only the CIFAR-10 binary format for now).
    #[arg(value_enum)]
    format: Format,

    /// Output directory (created); the dataset goes into OUT/cifar-10-batches-bin/.
    #[arg(long)]
    out: PathBuf,

    /// Training images, spread over the five data_batch files (the real set has 50000).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    n_train: u64,

    /// Test images in test_batch.bin (the real set has 10000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    n_test: u64,

    /// Seed: the same seed and counts give byte-identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Cifar10,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let Format::Cifar10 = args.format;
    let total = args.n_train + args.n_test;
    let pb = progress::bar(total, global.progress(), "images");
    pb.set_message("synth cifar10");
    let opts = SynthOptions {
        n_train: args.n_train,
        n_test: args.n_test,
        seed: args.seed,
    };
    let summary = write_cifar10_bin(&args.out, opts, &mut |done| pb.set_position(done))
        .with_context(|| {
            format!(
                "writing the procedural CIFAR-10 files under {}",
                args.out.display()
            )
        })?;
    pb.finish_and_clear();
    println!(
        "wrote {} train + {} test images ({} classes: {}) to {}",
        args.n_train,
        args.n_test,
        CLASSES.len(),
        CLASSES.join(", "),
        summary.dir.display()
    );
    Ok(())
}
