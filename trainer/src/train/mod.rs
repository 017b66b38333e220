//! The training loop (SPEC §6), top to bottom like the paper: draw a batch, the authors' data
//! transform, σ indices and noise, the DSM loss of Eq. 2, an Adam step, the EMA update
//! (Technique 5), and every `snapshot_freq` steps a checkpoint, the test loss and a grid of
//! samples. Around it, one file per job: [`options`] (what a run is asked), [`resume`] (where
//! it starts), [`nets`] (the network and its EMA twin), [`report`] (the progress line of a log), [`data`] (shards, stream, held-out
//! batch), [`snapshot`] (checkpoint assembly, test loss, samples), [`stop`] (SIGINT, SIGTERM),
//! [`workdir`] (the run's lock, `--overwrite`, the data a resume must find again).
//!
//! With `--fid-samples` ([`TrainFid`]), each evaluated snapshot also scores the EMA model's
//! samples (FID and Inception Score into metrics.jsonl and tb/), drawn from their own seeded
//! streams.
//!
//! Exact resume: every random draw is a function of the seed and a position that the checkpoint
//! stores. The loader's shuffle and flips depend on (seed, epoch, row); the dequantisation
//! noise, σ indices and noise of step `k` come from the global torch generator re-seeded with
//! `mix(seed, k)` just before they are drawn. So a run stopped at step k and resumed replays
//! steps k+1… exactly.

mod data;
mod error;
mod nets;
mod options;
mod ranks;
mod readout;
mod report;
mod resume;
mod snapshot;
mod stop;
mod workdir;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use schemas::config::Config;
use schemas::rng::splitmix64 as mix;
use shards::Dataset;
use tch::{Kind, Tensor};

pub use data::check_data;
pub use error::{Result, TrainError};
pub use options::{Summary, TrainFid, TrainOptions};
pub use ranks::{draws_of_rows, DistOptions, Launch};
pub use stop::{stop_on_signals, stop_signal, StopSignal};

use crate::checkpoint;
use crate::data_transform::{DataTransform, TorchRng};
use crate::loss::dsm_loss;
use crate::metrics::{MetricsLog, Record};
use crate::models::{self, ModelError, ScoreModel};
use crate::optim::{Adam, AdamConfig};
use error::io_err;
use nets::Nets;
use ranks::Ranks;
use readout::Readout;
use snapshot::{is_checkpoint_of, Snapshots};

/// Where the TensorBoard event files go, in the workdir (`tensorboard --logdir WORKDIR/tb`).
pub const TENSORBOARD_DIR: &str = "tb";

/// Builds the score network for a config (normally [`models::build`]; tests pass a tiny one).
pub type ModelFactory = fn(&tch::nn::Path, &Config) -> Result<Box<dyn ScoreModel>, ModelError>;

/// Trains with the authors' architecture for `cfg`.
pub fn train(cfg: &Config, opts: &TrainOptions, stop: &AtomicBool) -> Result<Summary> {
    train_with(cfg, opts, stop, models::build)
}

/// The seed of the torch generator before step `step`'s draws (see the module docs).
fn step_seed(seed: u64, step: u64) -> i64 {
    (mix(seed ^ mix(step)) >> 1) as i64
}

/// The random part of step `step`, from the torch generator seeded with a pure function of
/// (seed, step) (see the module docs), in the authors' order: `data_transform` of the clean
/// batch `x` (its dequantisation noise), then σ indices uniform over the L levels and
/// z ~ N(0, I). Returns (transformed x, y, z).
fn draws(
    seed: u64,
    step: u64,
    x: &Tensor,
    transform: &DataTransform,
    num_sigmas: i64,
) -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(step_seed(seed, step));
    let x = transform.forward(x, &mut TorchRng);
    let y = Tensor::randint(num_sigmas, [x.size()[0]], (Kind::Int64, x.device()));
    let z = x.randn_like();
    (x, y, z)
}

pub fn train_with(
    cfg: &Config,
    opts: &TrainOptions,
    stop: &AtomicBool,
    factory: ModelFactory,
) -> Result<Summary> {
    // The config against every rule and the model table: the one entry point.
    let arch = models::plan(cfg)?.arch.name();
    let device = opts.device;
    let ds = Dataset::open(&opts.data)?;
    check_data(cfg, &ds)?;
    // A data-parallel run: every rank meets the others here (ranks.rs); rank 0 alone writes.
    // What can be refused alone is refused first, before any rank waits for the others.
    let world = opts.dist.as_ref().map_or(1, |d| d.launch.world);
    if cfg.training.batch_size < world {
        return Err(TrainError::Config(format!(
            "training.batch_size {} is smaller than the {world} ranks: each rank needs rows of \
             every batch",
            cfg.training.batch_size
        )));
    }
    let mut ranks = Ranks::join(opts.dist.as_ref(), device)?;
    let leader = ranks.leader();
    // FID at snapshots: a missing or wrong weights file fails now, not at the first snapshot.
    let extractor = match (&opts.fid, leader) {
        (Some(f), true) => Some(
            evaluate::FeatureExtractor::load(&f.weights, device)
                .map_err(|e| TrainError::FidSetup(e.into()))?,
        ),
        _ => None,
    };
    // From here on this run alone writes the workdir.
    let _lock = leader.then(|| workdir::claim(opts, &ds)).transpose()?;
    let ckpt_dir = opts.workdir.join(checkpoint::CHECKPOINT_DIR);
    if leader {
        std::fs::create_dir_all(&ckpt_dir).map_err(io_err(&ckpt_dir))?;
    }
    let fid = match (&opts.fid, &extractor) {
        (Some(f), Some(x)) => Some(snapshot::SnapshotFid::new(cfg, opts, f, x)?),
        _ => None,
    };

    // The network, its EMA twin (Technique 5), Adam, the σ list and the data transform.
    let mut nets = Nets::build(cfg, opts.seed, device, &opts.speed, factory)?;
    let mut adam = Adam::new(&nets.vs, AdamConfig::from_config(&cfg.optim));
    let sigmas_f64 = cfg.sigmas();
    let sigmas = Tensor::from_slice(&sigmas_f64.iter().map(|&s| s as f32).collect::<Vec<_>>())
        .to_device(device);
    let num_sigmas = sigmas_f64.len() as i64;
    let transform = DataTransform::from_config(&cfg.data);

    // Step 0, or where the latest checkpoint left off (`--resume`); every rank from rank 0's.
    let start = leader
        .then(|| resume::start(cfg, opts, &ckpt_dir, &nets, &mut adam))
        .transpose()?;
    let start = ranks.share_start(&nets, &mut adam, start)?;
    let (mut step, mut cursor, mut last_ckpt) = (start.step, start.cursor, start.checkpoint);

    // The effective config, next to the checkpoints (what `ncsn sample --workdir` reads).
    let metrics_path = opts.workdir.join("metrics.jsonl");
    let mut log = None;
    if leader {
        schemas::write_atomic(&opts.workdir.join("config.yml"), cfg.to_yaml().as_bytes())?;
        let mut l = MetricsLog::open(&metrics_path, opts.resume.then_some(step))
            .map_err(io_err(&metrics_path))?;
        if opts.tensorboard {
            let tb = opts.workdir.join(TENSORBOARD_DIR);
            l = l
                .with_tensorboard(&tb, opts.resume.then_some(step))
                .map_err(io_err(&tb))?;
        }
        log = Some(l);
    }
    let test_batch = match leader {
        true => data::test_batch(cfg, &ds, device)?,
        false => None,
    };
    let mut stream = data::train_stream(cfg, opts, &ds, cursor.clone(), ranks.shard)?;

    let (n_iters, n_epochs) = (cfg.training.n_iters, cfg.training.n_epochs);
    // A person at a terminal gets a bar; a log (a batch job's stderr) a plain line every
    // `print_every` steps instead.
    let report = opts.progress && leader;
    let lines = (report && opts.print_every > 0 && !progress::on_terminal())
        .then(|| report::StepLine::new(step, n_iters));
    let bar = progress::bar(n_iters, report && lines.is_none(), "steps");
    bar.set_position(step);
    bar.reset_eta();
    let started = Instant::now();
    // The host reads the device's values every `sync_every` steps (readout.rs).
    let sync_every = opts.speed.sync_interval(device);
    let mut readout = Readout::new(lines, opts.print_every, n_iters, ranks.shard);
    let (mut busy, mut waited) = (Duration::ZERO, Duration::ZERO);
    let (mut window_t0, mut window_wait0) = (Instant::now(), stream.wait);
    let mut interrupted = false;
    // A parallel run's stop votes (a signal to any rank), summed by the step's all-reduce and
    // read with the losses, so that every rank stops after the same step.
    let mut votes = Tensor::zeros([], (Kind::Float, device));
    let snapshots = Snapshots {
        cfg,
        opts,
        arch,
        ckpt_dir: &ckpt_dir,
        sigmas: &sigmas,
        transform,
        test_batch: test_batch.as_ref(),
        metrics_path: &metrics_path,
        started,
        fid: fid.as_ref(),
    };

    // Like the authors' loop: at most n_iters steps and n_epochs passes over the data.
    while step < n_iters && data::epochs_done(&cursor, stream.epoch_rows) < n_epochs {
        if stop.load(Ordering::Relaxed) && !ranks.parallel() {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let wait0 = stream.wait;
        // 1. A batch of clean images in [0, 1] (shuffled, randomly flipped by the loader).
        let batch = stream.next_batch()?;
        adam.zero_grad();
        // 2. The data transform (dequantisation, rescaling), then per sample a noise level σ_y
        //    uniform over the L levels and z ~ N(0, I); in a parallel run, this rank's rows of
        //    the whole batch's draws (ranks.rs).
        let global = batch.global_rows;
        let (x, y, z, y_all) = if ranks.parallel() {
            tch::manual_seed(step_seed(opts.seed, step));
            let x = batch.to_float();
            draws_of_rows(ranks.shard, &x, global, &transform, num_sigmas)
        } else {
            let (x, y, z) = draws(opts.seed, step, &batch.to_float(), &transform, num_sigmas);
            (x, y.shallow_clone(), z, y)
        };
        // 3. Eq. 2: λ(σ)·½‖s_θ(x + σz, σ) + z/σ‖², λ(σ) = σ^anneal_power. A rank without rows
        //    of an epoch's short last batch contributes a zero gradient for every parameter.
        let (loss, per_sample) = if x.size()[0] > 0 {
            let model = nets.model.as_ref();
            dsm_loss(model, &x, &y, &z, &sigmas, cfg.training.anneal_power)
        } else {
            let zero = adam.params().map(|p| p.sum(Kind::Float) * 0.0);
            let zero = zero.fold(Tensor::zeros([], (Kind::Float, device)), |a, b| a + b);
            (zero, Tensor::zeros([0], (Kind::Float, device)))
        };
        let loss = if ranks.parallel() {
            // This rank's share of the global mean; the all-reduce sums the shares, their
            // gradients and the ranks' stop votes (a fill on the device: a host→device copy
            // would wait for the GPU).
            let share = match x.size()[0] {
                0 => loss,
                _ => per_sample.sum(Kind::Float) / global as f64,
            };
            share.backward();
            let vote = f64::from(u8::from(stop.load(Ordering::Relaxed)));
            let vote = Tensor::full([] as [i64; 0], vote, (Kind::Float, device));
            let extras = Tensor::stack(&[share.detach(), vote], 0);
            let params: Vec<_> = adam.params().collect();
            let summed = ranks.sum_gradients(&params, &extras, step + 1)?;
            votes += summed.get(1);
            summed.get(0)
        } else {
            loss.backward();
            loss
        };
        // 4. Adam step, then 5. the EMA of the weights (Technique 5). The loss stays on the
        //    device: a non-finite one is named when the host reads it, before any checkpoint.
        adam.step();
        nets.update_ema();
        step += 1;
        cursor = batch.cursor.clone();
        let record = if step.is_multiple_of(opts.log_every.max(1)) || step == n_iters {
            let window = window_t0.elapsed().as_secs_f64().max(1e-9);
            let r = Record {
                step,
                lr: Some(adam.cfg.lr),
                data_wait: Some((stream.wait - window_wait0).as_secs_f64() / window),
                epoch: Some(cursor.epoch),
                time: started.elapsed().as_secs_f64(),
                ..Default::default()
            };
            (window_t0, window_wait0) = (Instant::now(), stream.wait);
            Some((r, sigmas.index_select(0, &y_all)))
        } else {
            None
        };
        readout.push(step, &loss, &per_sample, &y, record);
        // 6. Snapshot: test loss of the EMA model, samples from it, then the checkpoint.
        let snapshot = step.is_multiple_of(cfg.training.snapshot_freq) && step < n_iters;
        if snapshot || step.is_multiple_of(sync_every) || step == n_iters {
            readout.read(&sigmas_f64, log.as_mut(), &metrics_path, &bar)?;
            if ranks.parallel() && votes.double_value(&[]) > 0.0 {
                interrupted = true;
            }
        }
        busy += t0.elapsed();
        waited += stream.wait - wait0;
        bar.set_position(step);
        if let (true, Some(log)) = (snapshot && !interrupted, log.as_mut()) {
            last_ckpt = Some(snapshots.take(step, &cursor, &nets, &adam, log, true)?);
        }
        if interrupted {
            break;
        }
    }
    // The steps not read yet (stopped, or out of epochs), before the last checkpoint.
    readout.read(&sigmas_f64, log.as_mut(), &metrics_path, &bar)?;
    let losses = readout.losses;

    // At exit (done or interrupted): one last checkpoint unless this step already has one.
    if let Some(log) = log.as_mut() {
        if !losses.is_empty()
            && last_ckpt
                .as_ref()
                .is_none_or(|p| !is_checkpoint_of(p, step))
        {
            last_ckpt = Some(snapshots.take(step, &cursor, &nets, &adam, log, !interrupted)?);
        }
        snapshots.plot()?;
    }
    bar.finish_and_clear();
    let secs = busy.as_secs_f64();
    Ok(Summary {
        step,
        data_wait_fraction: if secs > 0.0 {
            waited.as_secs_f64() / secs
        } else {
            0.0
        },
        steps_per_second: if secs > 0.0 {
            losses.len() as f64 / secs
        } else {
            0.0
        },
        losses,
        interrupted,
        checkpoint: last_ckpt,
    })
}
