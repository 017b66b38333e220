//! The training loop (SPEC §6), top to bottom like the paper: draw a batch, draw σ indices and
//! noise, the DSM loss of Eq. 2, an Adam step, the EMA update (Technique 5), and every
//! `snapshot_freq` steps a checkpoint, the test loss and a grid of samples.
//!
//! Exact resume: every random draw is a function of the seed and a position that the checkpoint
//! stores. The loader's shuffle and flips depend on (seed, epoch, row); the σ indices and the
//! noise of step `k` come from the global torch generator re-seeded with `mix(seed, k)` just
//! before they are drawn. So a run stopped at step k and resumed replays steps k+1… exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use schemas::checkpoint::{CheckpointMeta, DataCursor, RngState};
use schemas::config::Config;
use shards::Dataset;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, EMA_PREFIX, MODEL_PREFIX, OPTIM_PREFIX};
use crate::ema::Ema;
use crate::loader::{self, Loader, LoaderConfig};
use crate::loss::dsm_loss;
use crate::metrics::{self, MetricsLog, Record};
use crate::models::{self, ModelError, ScoreModel};
use crate::optim::{Adam, AdamConfig};
use crate::plot;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] loader::LoaderError),
    #[error(transparent)]
    Pipeline(#[from] shards::Error),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Schema(#[from] schemas::SchemaError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The loss left the reals: training stops before the step is applied or saved.
    #[error(
        "step {step}: the loss is {loss} (first bad sample {sample}: σ index {sigma_index}, \
         σ = {sigma:.4e}); no checkpoint was written for this step, the last good one is kept"
    )]
    NonFinite {
        step: u64,
        loss: f64,
        sample: i64,
        sigma_index: i64,
        sigma: f64,
    },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Everything about a run that is not in the config file.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub workdir: PathBuf,
    /// Continue from the latest checkpoint of `workdir`.
    pub resume: bool,
    pub device: Device,
    pub seed: u64,
    /// Rows held by the loader's shuffle buffer (the memory bound).
    pub shuffle_buffer: usize,
    /// Batches assembled ahead of the device.
    pub prefetch: usize,
    /// Keep only the newest K checkpoints (0 = all).
    pub keep_checkpoints: usize,
    /// Write `WORKDIR/loss.png` at each snapshot and at the end.
    pub loss_plot: bool,
    /// Samples in the snapshot grid (`training.snapshot_sampling`).
    pub snapshot_samples: usize,
    /// Show a progress bar.
    pub progress: bool,
    /// Write a metrics line every N steps (1 = every step).
    pub log_every: u64,
}

impl TrainOptions {
    pub fn new(data: &Path, workdir: &Path) -> Self {
        Self {
            data: data.to_path_buf(),
            workdir: workdir.to_path_buf(),
            resume: false,
            device: Device::Cpu,
            seed: 1234,
            shuffle_buffer: 10_000,
            prefetch: 4,
            keep_checkpoints: 0,
            loss_plot: true,
            snapshot_samples: 36,
            progress: false,
            log_every: 1,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Steps completed in total (including those before a resume).
    pub step: u64,
    /// (step, loss) of every step this invocation ran, loss as computed (float32).
    pub losses: Vec<(u64, f32)>,
    /// Share of the step time spent waiting for data.
    pub data_wait_fraction: f64,
    pub steps_per_second: f64,
    /// Stopped by the stop flag (Ctrl-C) before `n_iters`.
    pub interrupted: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// Builds the score network for a config (normally [`models::build`]; tests pass a tiny one).
pub type ModelFactory = fn(&tch::nn::Path, &Config) -> Result<Box<dyn ScoreModel>, ModelError>;

/// Trains with the authors' architecture for `cfg`.
pub fn train(cfg: &Config, opts: &TrainOptions, stop: &AtomicBool) -> Result<Summary> {
    train_with(cfg, opts, stop, models::build)
}

/// The noise of step `step`: σ indices uniform over L and z ~ N(0, I), from the torch generator
/// seeded with a pure function of (seed, step) (see the module docs).
fn draw_noise(seed: u64, step: u64, x: &Tensor, num_sigmas: i64) -> (Tensor, Tensor) {
    tch::manual_seed((loader::mix(seed ^ loader::mix(step)) >> 1) as i64);
    let b = x.size()[0];
    let y = Tensor::randint(num_sigmas, [b], (Kind::Int64, x.device()));
    let z = x.randn_like();
    (y, z)
}

/// Seed for everything the snapshots draw (test-loss noise, sample grids): fixed per run so
/// snapshots are comparable over training (App. C.5.1).
const SNAPSHOT_STREAM: u64 = 0x005E_ED0F_7E57;

pub fn train_with(
    cfg: &Config,
    opts: &TrainOptions,
    stop: &AtomicBool,
    factory: ModelFactory,
) -> Result<Summary> {
    let device = opts.device;
    let ds = Dataset::open(&opts.data)?;
    check_data(cfg, &ds)?;
    check_optim(cfg)?;
    let arch = models::Arch::for_config(cfg)?.name();
    let ckpt_dir = opts.workdir.join(checkpoint::CHECKPOINT_DIR);
    std::fs::create_dir_all(&ckpt_dir).map_err(io_err(&ckpt_dir))?;

    // The network, its EMA twin (Technique 5) and Adam.
    // The initial weights are a function of the seed too (a resumed run overwrites them).
    tch::manual_seed((loader::mix(opts.seed) >> 1) as i64);
    let vs = VarStore::new(device);
    let model = factory(&vs.root(), cfg)?;
    let ema_vs = VarStore::new(device);
    let ema_model = factory(&ema_vs.root(), cfg)?;
    let mut ema = Ema::new(&vs, &ema_vs, cfg.model.ema_rate).map_err(TrainError::Config)?;
    let mut adam = Adam::new(&vs, AdamConfig::from_config(&cfg.optim));
    let sigmas_f64 = cfg.sigmas();
    let sigmas = Tensor::from_slice(&sigmas_f64.iter().map(|&s| s as f32).collect::<Vec<_>>())
        .to_device(device);
    let num_sigmas = sigmas_f64.len() as i64;

    // Resume: weights, EMA, Adam moments, step and data cursor from the latest checkpoint.
    let mut step = 0u64;
    let mut cursor = DataCursor {
        epoch: 0,
        rows_consumed: 0,
    };
    let mut last_ckpt = None;
    if opts.resume {
        match checkpoint::latest(&ckpt_dir)? {
            None => {
                return Err(TrainError::Config(format!(
                    "--resume: {} holds no checkpoint yet",
                    ckpt_dir.display()
                )))
            }
            Some(_) => {
                let file = checkpoint::resolve(&opts.workdir)?;
                let meta = checkpoint::read_meta(&file)?;
                check_resume_config(cfg, &meta, &file)?;
                let tensors = checkpoint::read_tensors(&file)?;
                let part = |prefix: &str| -> Vec<(String, Tensor)> {
                    tensors
                        .iter()
                        .filter_map(|(n, t)| {
                            n.strip_prefix(prefix)
                                .map(|n| (n.to_string(), t.shallow_clone()))
                        })
                        .collect()
                };
                let what = file.display().to_string();
                checkpoint::copy_into(&vs, &part(MODEL_PREFIX), &what)?;
                checkpoint::copy_into(&ema_vs, &part(EMA_PREFIX), &what)?;
                adam.load_state(&part(OPTIM_PREFIX))
                    .map_err(|e| TrainError::Config(format!("{what}: {e}")))?;
                if meta.rng.seed != opts.seed {
                    return Err(TrainError::Config(format!(
                        "{what}: this run was started with --seed {}, not {}; resume with the same seed",
                        meta.rng.seed, opts.seed
                    )));
                }
                step = meta.step;
                cursor = meta.data_cursor.clone();
                last_ckpt = Some(file);
            }
        }
    } else if checkpoint::latest(&ckpt_dir)?.is_some() {
        return Err(TrainError::Config(format!(
            "{} already holds checkpoints: pass --resume to continue, or choose a new --workdir",
            ckpt_dir.display()
        )));
    }

    // The effective config, next to the checkpoints (what `ncsn sample --workdir` reads).
    let config_path = opts.workdir.join("config.yml");
    let yaml = serde_yaml::to_string(cfg).expect("configs serialize");
    schemas::write_atomic(&config_path, yaml.as_bytes())?;
    let metrics_path = opts.workdir.join("metrics.jsonl");
    let mut log = MetricsLog::open(&metrics_path, opts.resume.then_some(step))
        .map_err(io_err(&metrics_path))?;

    // A fixed held-out batch for the test loss (App. C.5.1), if the data has a test split.
    let test_rows = cfg
        .test
        .as_ref()
        .map_or(cfg.training.batch_size, |t| t.batch_size)
        .min(cfg.training.batch_size.max(1));
    let test_batch = loader::first_rows(&ds, "test", test_rows)?
        .map(|t| loader::pixels_to_float(&t.to_device(device)));

    let mut data = Loader::start(
        &ds,
        "train",
        LoaderConfig {
            seed: opts.seed,
            batch_size: cfg.training.batch_size,
            shuffle_buffer: opts.shuffle_buffer,
            prefetch: opts.prefetch,
            random_flip: cfg.data.random_flip,
            device,
        },
        cursor.clone(),
    )?;

    let n_iters = cfg.training.n_iters;
    let bar = progress_bar(opts.progress, step, n_iters);
    let started = Instant::now();
    let mut losses = vec![];
    let (mut busy, mut waited) = (Duration::ZERO, Duration::ZERO);
    let (mut window_t0, mut window_wait0) = (Instant::now(), data.wait);
    let mut interrupted = false;
    let ctx = SnapshotCtx {
        cfg,
        opts,
        arch,
        ckpt_dir: &ckpt_dir,
        sigmas: &sigmas,
        test_batch: test_batch.as_ref(),
    };

    while step < n_iters {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let wait0 = data.wait;
        // 1. A batch of clean images in [0, 1] (shuffled, randomly flipped by the loader).
        let batch = data.next_batch()?;
        let x = batch.to_float();
        // 2. Per sample a noise level σ_y, uniform over the L levels, and z ~ N(0, I).
        let (y, z) = draw_noise(opts.seed, step, &x, num_sigmas);
        // 3. Eq. 2: λ(σ)·½‖s_θ(x + σz, σ) + z/σ‖², λ(σ) = σ^anneal_power.
        adam.zero_grad();
        let (loss, per_sample) = dsm_loss(
            model.as_ref(),
            &x,
            &y,
            &z,
            &sigmas,
            cfg.training.anneal_power,
        );
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(non_finite(
                step + 1,
                loss_value,
                &per_sample,
                &y,
                &sigmas_f64,
            ));
        }
        // 4. Adam step, then 5. the EMA of the weights (Technique 5).
        loss.backward();
        adam.step();
        ema.update();
        step += 1;
        cursor = batch.cursor.clone();
        losses.push((step, loss_value as f32));
        busy += t0.elapsed();
        waited += data.wait - wait0;

        if step.is_multiple_of(opts.log_every.max(1)) || step == n_iters {
            let used = sigmas.index_select(0, &y);
            let window = window_t0.elapsed().as_secs_f64().max(1e-9);
            log.write(&Record {
                step,
                loss: Some(loss_value),
                test_loss: None,
                sigma_mean: Some(used.mean(Kind::Float).double_value(&[])),
                sigma_min: Some(used.min().double_value(&[])),
                sigma_max: Some(used.max().double_value(&[])),
                lr: Some(adam.cfg.lr),
                data_wait: Some((data.wait - window_wait0).as_secs_f64() / window),
                epoch: Some(cursor.epoch),
                time: started.elapsed().as_secs_f64(),
            })
            .map_err(io_err(&metrics_path))?;
            (window_t0, window_wait0) = (Instant::now(), data.wait);
        }
        if let Some(bar) = &bar {
            bar.set_position(step);
            bar.set_message(format!("loss {loss_value:.4}"));
        }
        // 6. Snapshot: checkpoint, test loss of the EMA model, samples from it.
        if step.is_multiple_of(cfg.training.snapshot_freq.max(1)) && step < n_iters {
            last_ckpt = Some(ctx.save(step, &cursor, &vs, &ema_vs, &adam)?);
            ctx.evaluate(step, ema_model.as_ref(), &mut log, started, &metrics_path)?;
        }
    }

    // At exit (done or interrupted): one last checkpoint unless this step already has one.
    if losses.last().is_some() && last_ckpt.as_ref().is_none_or(|p| !ends_at(p, step)) {
        last_ckpt = Some(ctx.save(step, &cursor, &vs, &ema_vs, &adam)?);
        if !interrupted {
            ctx.evaluate(step, ema_model.as_ref(), &mut log, started, &metrics_path)?;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if opts.loss_plot {
        let records = metrics::read(&metrics_path).map_err(io_err(&metrics_path))?;
        let png = opts.workdir.join("loss.png");
        plot::plot_loss(&records, &png).map_err(io_err(&png))?;
    }
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

fn ends_at(ckpt: &Path, step: u64) -> bool {
    ckpt.file_name()
        .is_some_and(|n| n.to_string_lossy() == checkpoint::checkpoint_file_name(step))
}

/// What the snapshots need, bundled so the loop above stays readable.
struct SnapshotCtx<'a> {
    cfg: &'a Config,
    opts: &'a TrainOptions,
    arch: &'a str,
    ckpt_dir: &'a Path,
    sigmas: &'a Tensor,
    test_batch: Option<&'a Tensor>,
}

impl SnapshotCtx<'_> {
    /// Writes the checkpoint of `step`: model, EMA, Adam, data cursor and RNG position.
    fn save(
        &self,
        step: u64,
        cursor: &DataCursor,
        vs: &VarStore,
        ema_vs: &VarStore,
        adam: &Adam,
    ) -> Result<PathBuf> {
        let config = serde_json::to_value(self.cfg).expect("configs serialize");
        let mut meta = CheckpointMeta::new(step, self.arch, config);
        meta.data_cursor = cursor.clone();
        meta.rng = RngState {
            seed: self.opts.seed,
            // The noise of step k is drawn from torch's generator seeded with mix(seed, k), and
            // the loader's draws from (seed, epoch, row): the next step is all the state there is.
            state: format!("{:016x}", step),
        };
        let mut tensors: Vec<(String, Tensor)> = vec![];
        for (prefix, store) in [(MODEL_PREFIX, vs), (EMA_PREFIX, ema_vs)] {
            let mut vars: Vec<_> = store.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            tensors.extend(vars.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)));
        }
        tensors.extend(
            adam.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIM_PREFIX}{n}"), t)),
        );
        let file = checkpoint::save(self.ckpt_dir, &meta, &tensors)?;
        checkpoint::prune(self.ckpt_dir, self.opts.keep_checkpoints)?;
        Ok(file)
    }

    /// Test loss of the EMA model on the fixed held-out batch with fixed noise (App. C.5.1),
    /// a sample grid (`training.snapshot_sampling`), and the loss plot.
    fn evaluate(
        &self,
        step: u64,
        ema_model: &dyn ScoreModel,
        log: &mut MetricsLog,
        started: Instant,
        metrics_path: &Path,
    ) -> Result<()> {
        let seed = self.opts.seed ^ SNAPSHOT_STREAM;
        if let Some(x) = self.test_batch {
            let _guard = tch::no_grad_guard();
            let (y, z) = draw_noise(seed, 0, x, self.sigmas.size()[0]);
            let (loss, _) = dsm_loss(
                ema_model,
                x,
                &y,
                &z,
                self.sigmas,
                self.cfg.training.anneal_power,
            );
            log.write(&Record {
                step,
                test_loss: Some(loss.double_value(&[])),
                time: started.elapsed().as_secs_f64(),
                ..Default::default()
            })
            .map_err(io_err(metrics_path))?;
        }
        if self.cfg.training.snapshot_sampling && self.opts.snapshot_samples > 0 {
            let dir = self.opts.workdir.join("samples");
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let png = dir.join(format!("step_{step:08}.png"));
            let _guard = tch::no_grad_guard();
            crate::sample::snapshot_grid(
                ema_model,
                self.cfg,
                self.opts.snapshot_samples,
                seed,
                self.opts.device,
                &png,
            )
            .map_err(|e| TrainError::Config(format!("snapshot samples at step {step}: {e}")))?;
        }
        if self.opts.loss_plot {
            let records = metrics::read(metrics_path).map_err(io_err(metrics_path))?;
            let png = self.opts.workdir.join("loss.png");
            plot::plot_loss(&records, &png).map_err(io_err(&png))?;
        }
        Ok(())
    }
}

/// Names the first sample whose loss is not finite, with its σ.
fn non_finite(step: u64, loss: f64, per_sample: &Tensor, y: &Tensor, sigmas: &[f64]) -> TrainError {
    let per: Vec<f32> = Vec::try_from(per_sample.to_device(Device::Cpu)).unwrap_or_default();
    let ys: Vec<i64> = Vec::try_from(y.to_device(Device::Cpu)).unwrap_or_default();
    let sample = per.iter().position(|v| !v.is_finite()).unwrap_or(0);
    let sigma_index = ys.get(sample).copied().unwrap_or(-1);
    TrainError::NonFinite {
        step,
        loss,
        sample: sample as i64,
        sigma_index,
        sigma: sigmas
            .get(sigma_index.max(0) as usize)
            .copied()
            .unwrap_or(f64::NAN),
    }
}

/// The shards must have the geometry the config trains on.
pub fn check_data(cfg: &Config, ds: &Dataset) -> Result<()> {
    let m = &ds.manifest;
    let s = cfg.data.image_size;
    if m.height != s || m.width != s || m.channels != cfg.data.channels {
        return Err(TrainError::Config(format!(
            "{}: the shards are {}×{}×{} but the config's data.image_size/channels ask for \
             {s}×{s}×{} (ingest with --resolution {s}, or fix the config)",
            ds.dir.display(),
            m.height,
            m.width,
            m.channels,
            cfg.data.channels
        )));
    }
    ds.split("train")?;
    Ok(())
}

/// Only what the paper uses is implemented: Adam without weight decay or AMSGrad.
fn check_optim(cfg: &Config) -> Result<()> {
    let o = &cfg.optim;
    let bad = |key: &str, msg: String| Err(TrainError::Config(format!("config key {key}: {msg}")));
    if o.optimizer != "Adam" {
        return bad(
            "optim.optimizer",
            format!("{:?} is not supported (Adam only, App. B.1)", o.optimizer),
        );
    }
    if o.weight_decay != 0.0 {
        return bad(
            "optim.weight_decay",
            "must be 0 (the paper uses none)".into(),
        );
    }
    if o.amsgrad {
        return bad("optim.amsgrad", "AMSGrad is not supported".into());
    }
    if cfg.training.batch_size == 0 {
        return bad("training.batch_size", "must be at least 1".into());
    }
    if cfg.training.snapshot_freq == 0 {
        return bad("training.snapshot_freq", "must be at least 1".into());
    }
    Ok(())
}

/// A resumed run must train the same network on the same data as the checkpoint.
fn check_resume_config(cfg: &Config, meta: &CheckpointMeta, file: &Path) -> Result<()> {
    let saved: Config = serde_json::from_value(meta.config.clone()).map_err(|e| {
        TrainError::Config(format!(
            "{}: config in checkpoint is invalid: {e}",
            file.display()
        ))
    })?;
    for (key, same) in [
        ("model", saved.model == cfg.model),
        ("data", saved.data == cfg.data),
        ("optim", saved.optim == cfg.optim),
        (
            "training.batch_size",
            saved.training.batch_size == cfg.training.batch_size,
        ),
    ] {
        if !same {
            return Err(TrainError::Config(format!(
                "--resume: the config's `{key}` differs from the one {} was trained with",
                file.display()
            )));
        }
    }
    Ok(())
}

/// Ctrl-C sets `stop`: the loop finishes its step, writes a checkpoint and returns with
/// `interrupted`. A second Ctrl-C exits at once (status 130).
pub fn stop_on_ctrl_c(stop: std::sync::Arc<AtomicBool>) -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
}

fn progress_bar(show: bool, step: u64, n_iters: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n_iters);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} step {pos}/{len} {msg} {per_sec} ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_position(step);
    bar.reset_eta();
    Some(bar)
}
