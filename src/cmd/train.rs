//! `ncsn train`: NCSNv2 on ingested shards (paper §3.3, §5, App. B; SPEC §6).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use schemas::calibration::Calibration;
use schemas::config::Config;
use schemas::JsonDocument;
use torchrt::dist::Backend;
use trainer::train::{train, DistOptions, Launch, StopSignal, TrainFid, TrainOptions};

use super::Global;

pub mod speed;

/// Train a score network with denoising score matching (Eq. 2), Adam and an EMA of the weights
/// (Technique 5), streaming the shards of `ncsn ingest`.
///
/// Writes into --workdir: config.yml (the effective config), checkpoints/ (model, EMA, Adam
/// state, data cursor; every `training.snapshot_freq` steps and at exit, Ctrl-C and SIGTERM
/// included: the step in flight finishes, a checkpoint is written, and the exit status is 130
/// for SIGINT, 143 for SIGTERM),
/// metrics.jsonl, tb/ (the same metrics as TensorBoard scalars), loss.png,
/// samples/step_N.png (EMA samples at each snapshot) and, with --fid-samples, the FID of
/// each snapshot (`ncsn fid --workdir W --ckpts B:E` scores checkpoints afterwards).
/// `--resume` continues from the latest checkpoint exactly where it stopped. One run at a time
/// uses a --workdir (a second is refused, naming the first's pid), and a fresh run refuses a
/// --workdir that holds a previous one's results unless --overwrite.
///
/// Example: ncsn train --config configs/cifar10.yml --data shards/cifar10
///          --calibration cifar10.json --workdir runs/cifar10 --device cuda
/// On a GPU at full speed (README, Training on GPUs): add --precision bf16 --channels-last
/// (TF32 and cuDNN's autotuner are on by default; the host reads the GPU every 100 steps).
/// On several GPUs, one process each: torchrun --no-python --standalone --nproc-per-node 8
/// ncsn train ... --device cuda (or srun with MASTER_ADDR and MASTER_PORT exported); the
/// config's batch_size is the global batch, and the run is the same at any number of GPUs.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Training config in the authors' YAML layout (see configs/*.yml).
    #[arg(long)]
    config: PathBuf,
    /// Directory written by `ncsn ingest` (manifest + shards); trains on its `train`
    /// split and reports the test loss on its `test` split when there is one.
    #[arg(long)]
    data: PathBuf,
    /// calibration.json from `ncsn calibrate`: its sigma_begin, sigma_end, num_classes (L),
    /// n_steps_each (T) and step_lr (epsilon) override the config's.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Where checkpoints, metrics and samples go.
    #[arg(long)]
    workdir: PathBuf,
    /// Continue from the latest checkpoint in --workdir (same config, --data, --seed and
    /// --shuffle-buffer). `--resume auto`: continue if --workdir has a checkpoint, else start
    /// (over whatever a run that never reached its first checkpoint left): one command for a
    /// job that Slurm may requeue or torchrun may restart (--max-restarts).
    #[arg(long, num_args = 0..=1, default_missing_value = "always", value_name = "auto",
          value_parser = ["always", "auto"])]
    resume: Option<String>,
    /// Start over in a --workdir that holds a previous run: delete its checkpoints/, samples/,
    /// metrics.jsonl, loss.png, tb/, fid.jsonl and fid.png first (other files are left alone).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// `cpu`, `cuda` (the first GPU), `cuda:N` or `auto` (CUDA when available).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    speed: speed::SpeedArgs,
    /// Seed of every random draw (data order, flips, noise levels, noise).
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    seed: u64,
    /// Override training.n_iters (total optimiser steps).
    #[arg(long)]
    n_iters: Option<u64>,
    /// Override training.snapshot_freq (steps between checkpoints, test loss and samples).
    #[arg(long)]
    snapshot_freq: Option<u64>,
    /// Override training.batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Rows in the loader's shuffle buffer; bounds its memory (rows x H x W x 3 bytes).
    #[arg(long, default_value_t = TrainOptions::default().shuffle_buffer,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    shuffle_buffer: usize,
    /// Batches the loader threads assemble ahead of the device.
    #[arg(long, default_value_t = TrainOptions::default().prefetch,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    prefetch: usize,
    /// Keep only the newest K checkpoints (0 keeps all).
    #[arg(long, default_value_t = TrainOptions::default().keep_checkpoints)]
    keep_checkpoints: usize,
    /// Samples in each snapshot grid (0: none, whatever training.snapshot_sampling says).
    #[arg(long, default_value_t = TrainOptions::default().snapshot_samples)]
    snapshot_samples: usize,
    /// Write a metrics line every N steps.
    #[arg(long, default_value_t = TrainOptions::default().log_every,
          value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    /// When stderr is not a terminal (a batch job's log), print a progress line every N steps
    /// instead of a bar: `step 1200/300000  loss 0.0123  2.10 steps/s  eta 1d 15h` (0: a
    /// line every 10 s instead; --quiet: none).
    #[arg(long, default_value_t = TrainOptions::default().print_every)]
    print_every: u64,
    /// Draw WORKDIR/loss.png (train loss and test loss against the step) at each snapshot
    /// and at the end (`--loss-plot` alone means true).
    #[arg(long, default_value_t = TrainOptions::default().loss_plot, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    loss_plot: bool,
    /// Write WORKDIR/tb/events.out.tfevents.* (train/loss, test/loss, σ stats, lr, data
    /// wait, steps/s; `tensorboard --logdir WORKDIR/tb`); a resumed run adds a file whose steps
    /// continue. `--tensorboard false` turns it off.
    #[arg(long, default_value_t = TrainOptions::default().tensorboard, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    tensorboard: bool,
    /// At every snapshot, the FID and Inception Score of N samples of the EMA model (the
    /// paper's curves; `--fid-samples` alone: 1000), written to metrics.jsonl (`fid`,
    /// `inception_score`) and tb/ (eval/fid). The reference is DATA/_fid_stats_<--fid-split>.npz,
    /// computed and saved at start when absent (into --workdir if DATA is read-only). The
    /// samples use their own seeded streams: the run's losses are the same with it or without.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1000",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(10..))]
    fid_samples: Option<usize>,
    /// pytorch-fid's FID Inception weights for --fid-samples (as `ncsn fid --weights`),
    /// loaded before the first step.
    #[arg(long, value_name = "FILE", default_value_os_t = evaluate::default_weights_path())]
    fid_weights: PathBuf,
    /// The split of --data whose statistics --fid-samples compares with (CelebA: test, App. B.2).
    #[arg(long, default_value = "train", value_name = "SPLIT")]
    fid_split: String,
    /// Torch intra-op threads on CPU (0: libtorch's default).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..))]
    threads: i32,
    /// Under torchrun or srun (README, Training on GPUs): how the ranks sum their gradients.
    /// `auto`: NCCL on GPUs, Gloo on the CPU. The launch itself is read from the environment
    /// (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; or SLURM_STEP_NUM_TASKS,
    /// SLURM_PROCID, SLURM_LOCALID with MASTER_ADDR and MASTER_PORT); each rank takes every
    /// WORLD_SIZE-th image of each training.batch_size batch, so the run is the same at any
    /// number of ranks and resumes at another.
    #[arg(long, default_value = "auto", value_parser = ["auto", "nccl", "gloo"])]
    dist_backend: String,
    /// Seconds a rank waits for the others at the start and in each step (rank 0's snapshots
    /// included) before the run fails naming the rank.
    #[arg(long, default_value_t = 1800, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    dist_timeout: u64,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let mut cfg = Config::read(&args.config)?;
    if let Some(path) = &args.calibration {
        cfg.apply_calibration(&Calibration::read(path)?);
    }
    if let Some(n) = args.n_iters {
        cfg.training.n_iters = n;
    }
    if let Some(k) = args.snapshot_freq {
        cfg.training.snapshot_freq = k;
    }
    if let Some(b) = args.batch_size {
        cfg.training.batch_size = b;
    }
    cfg.validate().with_context(|| {
        format!(
            "{} with the command line's --calibration/--n-iters/--snapshot-freq/--batch-size",
            args.config.display()
        )
    })?;
    let unused = cfg.unused_keys();
    if !unused.is_empty() && !global.quiet {
        eprintln!(
            "note: {}: ncsn does not use {} (settings of the authors' other commands; kept in \
             WORKDIR/config.yml)",
            args.config.display(),
            unused.join(", ")
        );
    }
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let mut device = torchrt::parse_device(&args.device)?;
    let backend = match args.dist_backend.as_str() {
        "auto" => None,
        name => Some(name.parse::<Backend>()?),
    };
    let timeout = std::time::Duration::from_secs(args.dist_timeout);
    let dist = match Launch::from_env().map_err(anyhow::Error::msg)? {
        None => None,
        Some(launch) => {
            // `cuda` (or `auto`) under a launcher: this process's GPU on the node.
            let by_index = !matches!(args.device.as_str(), "cuda" | "auto");
            let d = DistOptions::for_launch(launch, backend, timeout, &mut device, by_index);
            Some(d)
        }
    };

    // SIGINT (Ctrl-C) or SIGTERM (preemption, `timeout`, `docker stop`): finish the step in
    // flight, write a checkpoint, then stop.
    let stop = Arc::new(AtomicBool::new(false));
    trainer::train::stop_on_signals(stop.clone())
        .context("installing the SIGINT/SIGTERM handler")?;

    let mut opts = TrainOptions::new(&args.data, &args.workdir);
    opts.overwrite = args.overwrite;
    match args.resume.as_deref() {
        None => {}
        Some("auto") => opts.resume_if_checkpointed()?,
        Some(_) => opts.resume = true,
    }
    opts.device = device;
    opts.speed = args.speed.speed();
    opts.seed = args.seed;
    opts.shuffle_buffer = args.shuffle_buffer;
    opts.prefetch = args.prefetch;
    opts.keep_checkpoints = args.keep_checkpoints;
    opts.loss_plot = args.loss_plot;
    opts.snapshot_samples = args.snapshot_samples;
    opts.progress = global.progress();
    opts.log_every = args.log_every;
    opts.print_every = args.print_every;
    opts.tensorboard = args.tensorboard;
    let leader = dist.as_ref().is_none_or(|d| d.launch.rank == 0);
    if let (Some(d), true, false) = (&dist, leader, global.quiet) {
        let (world, batch) = (d.launch.world, cfg.training.batch_size);
        eprintln!(
            "data-parallel: {world} ranks over {}, each with {}{} of every {batch}-image batch; \
             rank 0 writes {}",
            d.backend,
            batch / world,
            if batch % world == 0 {
                ""
            } else {
                " or one more"
            },
            args.workdir.display()
        );
    }
    opts.dist = dist;
    opts.fid = args.fid_samples.map(|samples| TrainFid {
        samples,
        weights: args.fid_weights.clone(),
        split: args.fid_split.clone(),
    });

    // Under a launcher every rank's error reaches the same log: say whose it is.
    let whose = opts.dist.as_ref().map_or(String::new(), |d| {
        format!("rank {} of {}: ", d.launch.rank, d.launch.world)
    });
    let s = train(&cfg, &opts, &stop)
        .with_context(|| format!("{whose}training into {}", args.workdir.display()))?;
    // In a parallel run rank 0 reports for all; the others exit as it does.
    if s.interrupted && !leader {
        std::process::exit(stop_exit_code());
    }
    if !leader {
        return Ok(());
    }
    let ckpt = s
        .checkpoint
        .as_ref()
        .map_or("none".to_string(), |p| p.display().to_string());
    println!(
        "step {}: last loss {}, {:.2} steps/s, {:.1}% of step time waiting for data; checkpoint {ckpt}",
        s.step,
        s.losses.last().map_or("-".into(), |l| format!("{:.5}", l.1)),
        s.steps_per_second,
        100.0 * s.data_wait_fraction,
    );
    if s.interrupted {
        // A parallel run also stops when another rank was signalled (all ranks stop together).
        let by = trainer::train::stop_signal().map_or("a signal to another rank", |s| s.name());
        eprintln!(
            "stopped by {by} at step {}; continue with the same command plus --resume",
            s.step
        );
        std::process::exit(stop_exit_code());
    }
    Ok(())
}

/// 130 after SIGINT, 143 after SIGTERM; 143 for a rank stopped by another rank's signal (a
/// scheduler's stop, as far as this process knows).
fn stop_exit_code() -> i32 {
    trainer::train::stop_signal()
        .unwrap_or(StopSignal::Terminate)
        .exit_code()
}
