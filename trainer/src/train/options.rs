//! What a run is asked to do besides the config ([`TrainOptions`]) and what it did
//! ([`Summary`]). `ncsn train`'s flags take their defaults from [`TrainOptions::default`].

use std::path::{Path, PathBuf};

use tch::Device;

use super::ranks::DistOptions;
use crate::checkpoint::{self, CheckpointError};
use crate::speed::Speed;

/// Everything about a run that is not in the config file.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub workdir: PathBuf,
    /// Continue from the latest checkpoint of `workdir`.
    pub resume: bool,
    /// Start over in a `workdir` that holds a previous run: delete its results first
    /// (`workdir::RESULTS`). Without it, and without `resume`, such a workdir is refused.
    pub overwrite: bool,
    pub device: Device,
    /// How the run uses the device: precision, memory layout, TF32, host reads.
    pub speed: Speed,
    pub seed: u64,
    /// Rows held by the loader's shuffle buffer (the memory bound).
    pub shuffle_buffer: usize,
    /// Batches assembled ahead of the device.
    pub prefetch: usize,
    /// Keep only the newest K checkpoints (0 = all).
    pub keep_checkpoints: usize,
    /// Write `WORKDIR/loss.png` at each snapshot and at the end.
    pub loss_plot: bool,
    /// Samples in the snapshot grid (`training.snapshot_sampling`); the authors draw 36.
    pub snapshot_samples: usize,
    /// Report progress: a bar on a terminal, else a line every `print_every` steps.
    pub progress: bool,
    /// Steps between the plain progress lines when stderr is not a terminal (0: none, the
    /// bar's own plain line every `progress::LINE_INTERVAL` instead).
    pub print_every: u64,
    /// Write a metrics line every N steps (1 = every step).
    pub log_every: u64,
    /// Also write the metrics as TensorBoard scalars in `WORKDIR/tb/`.
    pub tensorboard: bool,
    /// FID and Inception Score of the EMA model at every snapshot (`--fid-samples`).
    pub fid: Option<TrainFid>,
    /// One rank of a data-parallel run (torchrun, srun); `None`: one process.
    pub dist: Option<DistOptions>,
}

/// FID during training: `samples` EMA samples at every snapshot, scored against the data's
/// `_fid_stats_<split>.npz` (computed and saved at start when absent) with the Inception
/// weights in `weights`, which are loaded before the first step.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainFid {
    /// Samples per snapshot (≥ 10, the Inception Score's splits); the paper: 1 000.
    pub samples: usize,
    /// pytorch-fid's FID Inception weights.
    pub weights: PathBuf,
    /// The split of `data` whose statistics are the reference.
    pub split: String,
}

impl Default for TrainOptions {
    /// The defaults, defined once: `ncsn train`'s flags read theirs from here. `data` and
    /// `workdir` are empty; [`TrainOptions::new`] sets them.
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            workdir: PathBuf::new(),
            resume: false,
            overwrite: false,
            device: Device::Cpu,
            speed: Speed::default(),
            seed: 1234,
            shuffle_buffer: 10_000,
            prefetch: 4,
            keep_checkpoints: 0,
            loss_plot: false,
            snapshot_samples: 36,
            progress: false,
            print_every: 100,
            log_every: 1,
            tensorboard: true,
            fid: None,
            dist: None,
        }
    }
}

impl TrainOptions {
    pub fn new(data: &Path, workdir: &Path) -> Self {
        Self {
            data: data.to_path_buf(),
            workdir: workdir.to_path_buf(),
            ..Self::default()
        }
    }

    /// `--resume auto`: resume when the workdir has a checkpoint, else start over whatever a
    /// run left before its first one (not worth keeping, and a requeued job must not stop on
    /// it), so that a job Slurm requeues or torchrun restarts repeats one command.
    pub fn resume_if_checkpointed(&mut self) -> Result<(), CheckpointError> {
        let found = checkpoint::latest(&self.workdir.join(checkpoint::CHECKPOINT_DIR))?.is_some();
        self.resume = found;
        self.overwrite = !found;
        Ok(())
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
    /// Stopped by the stop flag (SIGINT, SIGTERM: [`super::stop_signal`]) before `n_iters`.
    pub interrupted: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}
