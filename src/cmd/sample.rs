//! `ncsn sample`: images from a trained checkpoint by annealed Langevin dynamics (Algorithm 1),
//! as a PNG grid, optionally raw uint8 samples (.npz) and interpolations (App. B.2).

use std::path::PathBuf;

use anyhow::Context;
use trainer::checkpoint::Weights;
use trainer::sample::{
    default_nrow, load_model, sample_images, sample_interpolations, to_rgb8, write_grid,
    SamplerSettings,
};

use super::Global;

/// Draw samples from a trained score network with annealed Langevin dynamics (paper Algorithm 1):
/// x0 ~ U[0,1]; for each noise level sigma_i, T steps x <- x + a_i s(x, sigma_i) + sqrt(2 a_i) z
/// with a_i = eps * sigma_i^2 / sigma_L^2; then the denoising step x + sigma_L^2 s(x, sigma_L);
/// clamp to [0,1].
///
/// The sigma list, T and eps are the checkpoint's (its config after calibration); --steps-each
/// and --step-lr override them. EMA weights (Technique 5) are used unless --no-ema.
///
/// Examples:
///   ncsn sample --workdir runs/cifar10 --out samples.png --n 64
///   ncsn sample --checkpoint ckpt.safetensors --out s.png --n 10000 --raw s.npz --device cuda
///   ncsn sample --workdir runs/cifar10 --out interp.png --interpolate 8 --rows 6
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A training workdir: its latest checkpoint is used.
    #[arg(
        long,
        conflicts_with = "checkpoint",
        required_unless_present = "checkpoint"
    )]
    workdir: Option<PathBuf>,
    /// A checkpoint file (.safetensors with its .json beside it), e.g. a converted official one.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The grid PNG to write (torchvision make_grid layout: 2 px black padding).
    #[arg(long)]
    out: PathBuf,
    /// Number of samples (ignored with --interpolate, which draws rows x (N+2)).
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    n: usize,
    /// Seed of x0 and of every Langevin noise draw: same seed, same samples (CPU or GPU).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `cpu`, `cuda` (the first GPU), `cuda:N` or `auto` (CUDA when available).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    forward: super::train::speed::ForwardArgs,
    /// Chains run together; default: the config's sampling.batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Images per grid row; default: ceil(sqrt(n)), or N+2 with --interpolate.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    nrow: Option<usize>,
    /// Also write the samples as uint8 NHWC in a NumPy .npz (key `arr_0`), for FID tools.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Interpolate (App. B.2): each row shares x0 and mixes its two endpoints' noises with
    /// cos/sin weights, giving N images between the two endpoints (N+2 per row).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    interpolate: Option<usize>,
    /// Rows of the interpolation grid.
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    rows: usize,
    /// Use the raw model weights instead of their exponential moving average.
    #[arg(long)]
    no_ema: bool,
    /// Skip the final denoising step (the original NCSN sampler).
    #[arg(long)]
    no_denoise: bool,
    /// Override T, the Langevin steps per noise level.
    #[arg(long)]
    steps_each: Option<usize>,
    /// Override eps, the step size parameter.
    #[arg(long)]
    step_lr: Option<f64>,
    /// Torch intra-op threads on CPU (0: libtorch's default).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    threads: i32,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    // The files are written after sampling, which can take hours: a path that cannot be
    // written is refused before the model is even loaded.
    schemas::output::check_file(&args.out).context("--out")?;
    if let Some(raw) = &args.raw {
        schemas::output::check_file(raw).context("--raw")?;
    }
    let device = torchrt::parse_device(&args.device)?;
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let source = args
        .workdir
        .as_ref()
        .or(args.checkpoint.as_ref())
        .expect("clap requires --workdir or --checkpoint");
    let which = if args.no_ema {
        Weights::Model
    } else {
        Weights::Ema
    };
    let mut loaded = load_model(source, which, device)
        .with_context(|| format!("loading the model from {}", source.display()))?;
    // --precision/--channels-last: the same network run in bf16 and/or channels-last.
    let speed = args.forward.speed();
    speed.apply_backend(device)?;
    speed.prepare_weights(&loaded.vs)?;
    loaded.model = speed.wrap(loaded.model, device)?;
    // Overrides go into the config, which is validated again with them.
    let mut cfg = loaded.config.clone();
    if let Some(t) = args.steps_each {
        cfg.sampling.n_steps_each = t;
    }
    if let Some(eps) = args.step_lr {
        cfg.sampling.step_lr = eps;
    }
    cfg.sampling.denoise &= !args.no_denoise;
    let settings = SamplerSettings::from_config(&cfg).context("--steps-each/--step-lr")?;

    let (n, nrow) = match args.interpolate {
        Some(k) => (args.rows * (k + 2), args.nrow.unwrap_or(k + 2)),
        None => (args.n, args.nrow.unwrap_or(default_nrow(args.n))),
    };
    anyhow::ensure!(n > 0, "--n (or --rows) must be at least 1");
    let batch = args.batch_size.unwrap_or(loaded.config.sampling.batch_size);
    anyhow::ensure!(batch > 0, "--batch-size must be at least 1");
    let batches = match args.interpolate {
        Some(_) => 1,
        None => n.div_ceil(batch.max(1)),
    };
    let pb = progress::bar(
        batches as u64 * settings.steps_per_batch(),
        global.progress(),
        "Langevin steps",
    );
    pb.set_message(format!(
        "sampling {n} (L={}, T={})",
        settings.sigmas.len(),
        settings.n_steps_each
    ));
    println!(
        "{}: step {}, {} weights, L={} (sigma {:.4} .. {:.4}), T={}, eps={:e}, denoise={}, {n} samples on {:?}",
        loaded.file.display(),
        loaded.meta.step,
        if loaded.ema { "EMA" } else { "model" },
        settings.sigmas.len(),
        settings.sigmas[0],
        settings.sigmas[settings.sigmas.len() - 1],
        settings.n_steps_each,
        settings.step_lr,
        settings.denoise,
        device
    );
    let start = std::time::Instant::now();
    let images = match args.interpolate {
        Some(k) => sample_interpolations(
            loaded.model.as_ref(),
            &settings,
            args.rows,
            k,
            args.seed,
            device,
            Some(&pb),
        ),
        None => sample_images(
            loaded.model.as_ref(),
            &settings,
            n,
            batch,
            args.seed,
            device,
            Some(&pb),
        ),
    };
    pb.finish_and_clear();
    write_grid(&images, nrow, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({n} samples, {:.1}s)",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    if let Some(raw) = &args.raw {
        let s = images.size();
        let shape = [s[0] as usize, s[2] as usize, s[3] as usize, 3];
        shards::write_npz_u8(raw, &[("arr_0", &shape, &to_rgb8(&images))])
            .with_context(|| format!("writing {}", raw.display()))?;
        println!(
            "wrote {} (uint8, shape {shape:?}, key arr_0)",
            raw.display()
        );
    }
    Ok(())
}
