//! `ncsn fid` (alias `ncsn evaluate`): FID and Inception Score of samples (paper §4, Table 1)
//! against reference statistics, with pytorch-fid's network and preprocessing: of a samples
//! file or folder, of a checkpoint (sampled here), or of a sweep over a run's checkpoints.

mod checkpoints;

use std::path::{Path, PathBuf};

use anyhow::Context;
use evaluate::score::{gather_samples, Gather, Samples};
use evaluate::{FeatureExtractor, Stats, POOL3_DIMS};
use shards::Rgb8;
use trainer::fid::sweep::Range;

use super::Global;

/// FID and Inception Score of samples, as pytorch-fid and the original IS code compute them.
///
/// Samples are a `.npz` of uint8 NHWC images (`ncsn sample --raw`, key arr_0), a directory
/// of PNG/JPEG/WebP files (decoded like Pillow's convert('RGB'), searched recursively), or
/// drawn here from a checkpoint: --checkpoint FILE, or --workdir W for its latest one, with
/// the EMA weights (--no-ema: the raw ones), the checkpoint's sampler, --seed and --n (1000).
/// Samples holding NaN/inf (a diverged model) are an error naming the checkpoint and step.
///
/// --workdir W --ckpts BEGIN:END[:STEP] sweeps a run's checkpoints like the authors'
/// --fast_fid: each part defaults to the run config's fast_fid section (begin_ckpt, end_ckpt;
/// num_samples, batch_size, step_lr and n_steps_each too), else to the first/last checkpoint
/// present, and STEP to training.snapshot_freq. Steps of the range with no checkpoint are named
/// in a warning and skipped. Each checkpoint's scores go as one JSON line into W/fid.jsonl
/// (step, fid, is, is_std, n, seconds, and the settings); a rerun skips the steps already
/// scored with the same settings. W/fid.png plots FID against the step; the best checkpoint is
/// printed last.
///
/// The reference is a statistics file (`ncsn fid-stats`, pytorch-fid's or TTUR's .npz with mu
/// and sigma) or an ingested directory whose split's statistics are computed first.
///
/// Every image is resized to 299×299 (bilinear, align_corners=False) and scaled to [-1, 1],
/// exactly as pytorch-fid does; the Inception Score is the mean ± std over --splits splits of
/// the 1008-way softmax (the original TensorFlow code's).
///
/// Examples:
///   ncsn fid --samples samples.npz --stats data/cifar10/_fid_stats_train.npz
///   ncsn fid --samples generated/ --data data/celeba64 --split test --json
///   ncsn fid --workdir runs/cifar10 --stats data/cifar10/_fid_stats_train.npz --n 10000
///   ncsn fid --workdir runs/cifar10 --ckpts 5000:300000 --stats data/cifar10/_fid_stats_train.npz
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["samples", "checkpoint", "workdir"])))]
#[command(group(clap::ArgGroup::new("model").args(["checkpoint", "workdir"])))]
pub struct Args {
    /// The samples: a .npz of uint8 [N, H, W, 3] images, or a directory of images.
    #[arg(long, value_name = "NPZ|DIR")]
    samples: Option<PathBuf>,

    /// A checkpoint to sample and score (.safetensors with its .json beside it).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,

    /// A training workdir: its latest checkpoint, or with --ckpts a sweep over its checkpoints.
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,

    /// Sweep the checkpoints of --workdir at training steps BEGIN, BEGIN+STEP, … ≤ END (each
    /// part optional: `5000:`, `:` for the defaults; see above).
    #[arg(long, value_name = "BEGIN:END[:STEP]", requires = "workdir")]
    ckpts: Option<Range>,

    /// Samples to draw from a checkpoint [default: 1000; a sweep: the config's
    /// fast_fid.num_samples, else 1000]. The paper: 1 000 for sweeps, more for the best one.
    #[arg(long, requires = "model",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..))]
    n: Option<usize>,

    /// Seed of the chains (chain i draws from stream i: the samples of `ncsn sample --seed`).
    #[arg(long, default_value_t = 0, requires = "model")]
    seed: u64,

    /// Sample with the raw model weights instead of their exponential moving average.
    #[arg(long, requires = "model")]
    no_ema: bool,

    /// Langevin chains run together [default: the config's sampling.batch_size; a sweep:
    /// fast_fid.batch_size].
    #[arg(long, requires = "model",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    sample_batch_size: Option<usize>,

    /// Override T, the Langevin steps per noise level.
    #[arg(long, requires = "model",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    steps_each: Option<usize>,

    /// Override eps, the step size parameter.
    #[arg(long, requires = "model")]
    step_lr: Option<f64>,

    /// Also keep a checkpoint's samples: uint8 NHWC .npz (key arr_0), as `ncsn sample --raw`.
    #[arg(long, value_name = "NPZ", requires = "model", conflicts_with = "ckpts")]
    raw: Option<PathBuf>,

    /// Reference statistics (.npz with `mu` and `sigma`).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "data",
        required_unless_present = "data"
    )]
    stats: Option<PathBuf>,

    /// Or an `ncsn ingest` directory: the statistics of its --split are computed first (save
    /// them once with `ncsn fid-stats` to skip that next time).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// The split of --data.
    #[arg(long, default_value = "train", requires = "data")]
    split: String,

    /// Splits of the Inception Score (the paper and the original code: 10).
    #[arg(long, default_value_t = evaluate::SPLITS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    splits: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    inception: InceptionArgs,
}

/// The feature extractor's flags, shared by `fid` and `fid-stats`.
#[derive(clap::Args)]
pub struct InceptionArgs {
    /// pytorch-fid's FID Inception weights (pt_inception-2015-12-05-6726825d.pth; a .pth as
    /// published, or .safetensors with the same names). The default is where pytorch-fid
    /// keeps it: $TORCH_HOME/hub/checkpoints/ (TORCH_HOME defaults to ~/.cache/torch).
    #[arg(long, value_name = "FILE", default_value_os_t = evaluate::default_weights_path())]
    weights: PathBuf,

    /// Where the network (and a checkpoint's sampling) runs: auto (CUDA when available), cpu,
    /// cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,

    /// Images per Inception forward pass (pytorch-fid's default: 50).
    #[arg(long, default_value_t = 50,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,

    /// Torch intra-op threads on CPU (0: libtorch's default).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    threads: i32,
}

impl InceptionArgs {
    pub fn extractor(&self) -> anyhow::Result<FeatureExtractor> {
        let device = torchrt::parse_device(&self.device)?;
        if self.threads > 0 {
            tch::set_num_threads(self.threads);
        }
        Ok(FeatureExtractor::load(&self.weights, device)?)
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// The warning of a statistics set with at most d images: FID is then biased upward and
/// comparable only with FIDs from as many images (the paper's 1 000-sample FIDs, §4).
pub fn warn_if_singular(what: &Path, stats: &Stats) {
    if stats.singular() {
        eprintln!(
            "warning: {}: {} images ≤ {} feature dimensions, so Σ is singular: the FID is biased \
             upward and comparable only with FIDs of as many images",
            what.display(),
            stats.num_images.unwrap_or(0),
            stats.dims()
        );
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let Some(input) = args.samples.clone() else {
        return checkpoints::run(args, global);
    };
    let extractor = args.inception.extractor()?;
    let batch = args.inception.batch_size;
    // A statistics file is checked before minutes go into the samples' features.
    let given = match &args.stats {
        Some(file) => {
            let s = Stats::read_npz(file)?;
            s.check_comparable(file, POOL3_DIMS, None)?;
            Some((s, file.clone()))
        }
        None => None,
    };
    let gathered = if input.is_dir() {
        gather_folder(&extractor, &input, batch, global.progress())?
    } else {
        let samples = Samples::read_npz(&input)?;
        if let Some((s, file)) = &given {
            s.check_comparable(file, POOL3_DIMS, Some(samples.image_size()))?;
        }
        gather_samples(&extractor, &samples, batch, global.progress())
            .with_context(|| format!("scoring {}", input.display()))?
    };
    let stats = gathered.stats()?;
    let is = gathered
        .inception_score(args.splits)
        .with_context(|| format!("{}: the Inception Score", input.display()))?;

    let (reference, ref_path) = match (given, &args.data) {
        (Some(given), _) => given,
        (None, Some(dir)) => {
            let s = evaluate::score::dataset_stats(
                &extractor,
                dir,
                &args.split,
                batch,
                global.progress(),
            )
            .with_context(|| format!("statistics of {} ({})", dir.display(), args.split))?;
            (s, dir.clone())
        }
        _ => anyhow::bail!("give --stats FILE or --data DIR"),
    };
    reference.check_comparable(&ref_path, POOL3_DIMS, stats.image_size)?;
    warn_if_singular(&input, &stats);
    warn_if_singular(&ref_path, &reference);
    let fid = evaluate::frechet_distance(&stats, &reference, extractor.device())?;

    let n = stats.num_images.unwrap_or(0);
    if args.json {
        let out = serde_json::json!({
            "samples": input,
            "num_samples": n,
            "image_size": stats.image_size,
            "reference": ref_path,
            "reference_images": reference.num_images,
            "fid": fid,
            "inception_score": is.mean,
            "inception_score_std": is.std,
            "is_splits": is.splits,
            "weights": extractor.weights(),
        });
        println!("{out}");
    } else {
        println!("samples:   {} ({n} images)", input.display());
        println!("reference: {}", ref_path.display());
        println!("FID:       {fid:.4}");
        println!(
            "IS:        {:.4} ± {:.4} ({} splits)",
            is.mean, is.std, is.splits
        );
    }
    Ok(())
}

/// Features of every image under `dir` (sorted by path), decoded as Pillow's
/// `convert('RGB')` would, `batch` at a time.
fn gather_folder(
    extractor: &FeatureExtractor,
    dir: &Path,
    batch: usize,
    progress: bool,
) -> anyhow::Result<Gather> {
    let files = pipeline::sources::image_files(dir)?;
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no .png/.jpg/.jpeg/.webp images in this directory",
        dir.display()
    );
    let mut g = Gather::new(true);
    let mut sizes = std::collections::BTreeSet::new();
    let bar = progress::bar(files.len() as u64, progress, "images");
    bar.set_message("Inception features");
    for chunk in files.chunks(batch) {
        let images = chunk
            .iter()
            .map(|(_, path)| {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                pipeline::decode(&bytes).with_context(|| path.display().to_string())
            })
            .collect::<anyhow::Result<Vec<Rgb8>>>()?;
        sizes.extend(images.iter().map(|im| [im.height, im.width]));
        g.add(&extractor.extract_rgb(&images)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // Samples of one size can be checked against the reference's resolution.
    if let (1, Some(&size)) = (sizes.len(), sizes.first()) {
        g.set_image_size(size);
    }
    Ok(g)
}
