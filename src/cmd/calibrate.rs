//! `ncsn calibrate`: shards → calibration.json (σ₁, γ, L, ε; paper Techniques 1, 2 and 4).

use std::path::PathBuf;

use anyhow::Context;
use schemas::JsonDocument;

use super::Global;

/// Compute the noise scales and Langevin step size that configure NCSNv2 for a dataset.
///
/// With --data: σ₁ is the exact maximum Euclidean distance between two training images
/// (Technique 1; pixels in [0, 1]; more than --max-images-exact images are replaced by a seeded
/// random sample of --sample-size), computed with blockwise GEMMs on --device. Then γ solves
/// Technique 2 for the overlap C, L = ⌈log(σ₁/σ_L)/log γ⌉ + 1 scales form a geometric list from
/// σ₁ to σ_L, and ε is the step size that brings Eq. 4 closest to 1 for T steps per scale
/// (Technique 4). The file also records the farthest pair, the median pairwise distance and the
/// per-channel mean/std.
///
/// Without data, give σ₁ and D yourself:
///   ncsn calibrate --sigma-begin 50 --dims 3072 --out calibration.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// An `ncsn ingest` output directory (with _manifest.json, or the manifest.json of
    /// earlier versions); its training split is used.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["sigma_begin", "dims"],
          required_unless_present = "sigma_begin")]
    data: Option<PathBuf>,

    /// Where to write calibration.json [default: DIR/_calibration.json with --data (the `_`
    /// keeps Parquet readers of DIR off it), else ./calibration.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Without --data: σ₁ (e.g. 50 for CIFAR-10, the paper's Table 4).
    #[arg(long, value_name = "S", requires = "dims")]
    sigma_begin: Option<f64>,

    /// Without --data: D = height·width·channels of the images (3072 for 32×32 RGB).
    #[arg(long, value_name = "D", requires = "sigma_begin")]
    dims: Option<usize>,

    /// C of Technique 2: the probability that a sample of one scale lands in the 3-sigma shell
    /// of the previous one. Larger C, more scales. The paper recommends ≈ 0.5; its Table 4
    /// lists correspond to ≈ 0.567.
    #[arg(long, value_name = "C", default_value_t = 0.5)]
    overlap: f64,

    /// σ_L, the smallest noise scale (pixels in [0, 1]).
    #[arg(long, value_name = "SIGMA", default_value_t = 0.01)]
    sigma_end: f64,

    /// T, Langevin steps per noise scale (Technique 4: as many as the sampling budget allows;
    /// the paper uses 5 for 32²–64², 3–4 above).
    #[arg(long, value_name = "T", default_value_t = 5)]
    steps_each: usize,

    /// The split of --data to calibrate on.
    #[arg(long, default_value = "train")]
    split: String,

    /// Use every image when the split has at most this many (the paper: 60 000).
    #[arg(long, value_name = "N", default_value_t = 60_000)]
    max_images_exact: u64,

    /// Otherwise use a random sample of this many images (the paper: 10 000).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    sample_size: u64,

    /// Seed of the image sample and of the pairs sampled for the median.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Where the GEMMs run: auto (CUDA when available), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,

    /// Images per block of the pairwise pass; memory is a few block² f64 matrices.
    #[arg(long, value_name = "ROWS", default_value_t = calibrate::pairwise::PairwiseOptions::default().block_rows,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    block_rows: usize,

    /// The median pairwise distance is exact when there are at most this many pairs, else
    /// taken over this many pairs drawn at random.
    #[arg(long, value_name = "PAIRS", default_value_t = 1_000_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    median_pairs: usize,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let schedule = calibrate::ScheduleOptions {
        sigma_end: args.sigma_end,
        overlap: args.overlap,
        steps_each: args.steps_each,
    };
    let out = match (&args.out, &args.data) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => dir.join(schemas::layout::CALIBRATION_FILE),
        (None, None) => PathBuf::from("calibration.json"),
    };
    // Before the pairwise pass, which can take long (a missing --data is named by the pass).
    if args.data.as_ref().is_none_or(|dir| dir.is_dir()) {
        schemas::output::check_file(&out).context("--out")?;
    }
    let calibration = match (&args.data, args.sigma_begin, args.dims) {
        (Some(dir), _, _) => {
            let load = calibrate::data::LoadOptions {
                split: args.split.clone(),
                max_images_exact: args.max_images_exact,
                sample_size: args.sample_size,
                seed: args.seed,
                progress: global.progress(),
            };
            let pairs = calibrate::pairwise::PairwiseOptions {
                block_rows: args.block_rows,
                device: torchrt::parse_device(&args.device)?,
                median_pairs: args.median_pairs,
                seed: args.seed,
                progress: global.progress(),
                ..calibrate::pairwise::PairwiseOptions::default()
            };
            let done = calibrate::dataset::calibrate_dir(dir, &load, &pairs, &schedule)
                .with_context(|| format!("calibrating {}", dir.display()))?;
            println!(
                "read {:.1} s, pairwise distances {:.1} s on {:?}",
                done.read_time.as_secs_f64(),
                done.pairwise_time.as_secs_f64(),
                pairs.device
            );
            done.calibration
        }
        (None, Some(sigma_begin), Some(dims)) => {
            calibrate::Schedule::new(sigma_begin, dims, &schedule)?.calibration()
        }
        _ => anyhow::bail!("give --data DIR, or --sigma-begin S and --dims D"),
    };
    calibration.write_atomic(&out)?;
    print!("{}", calibrate::summary(&calibration));
    println!("wrote {}", out.display());
    Ok(())
}
