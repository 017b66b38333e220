//! Every `training.snapshot_freq` steps and at the end (SPEC §6): the checkpoint, the test
//! loss on a fixed held-out batch with fixed noise (App. C.5.1), a grid of samples and the loss
//! plot, all from the evaluation network (the EMA twin, Technique 5, when kept).
//!
//! With `--fid-samples`, the FID and Inception Score of the same network's samples too.
//!
//! The test loss and the grid come first and the checkpoint last, so every checkpoint of a
//! snapshot step has its snapshot files: a run killed in between has the previous checkpoint
//! as its latest, and resuming from it replays the step and draws the same grid again (its
//! seed is fixed) where a checkpoint written first would have been resumed past its missing
//! grid.

use std::path::{Path, PathBuf};
use std::time::Instant;

use schemas::checkpoint::{CheckpointMeta, DataCursor, RngState};
use schemas::config::Config;
use tch::Tensor;

use super::error::io_err;
use super::nets::Nets;
use super::{draws, Result, TrainError, TrainFid, TrainOptions};
use crate::checkpoint::{self, OPTIM_PREFIX};
use crate::data_transform::DataTransform;
use crate::fid::{Draw, FidError, INCEPTION_BATCH};
use crate::loss::dsm_loss;
use crate::metrics::{self, MetricsLog, Record};
use crate::models::ScoreModel;
use crate::optim::Adam;
use crate::plot;
use crate::sample::SamplerSettings;
use evaluate::{FeatureExtractor, Stats, POOL3_DIMS};

/// Seed for everything the snapshots draw (test-loss noise and dequantisation, sample grids):
/// fixed per run so snapshots are comparable over training (App. C.5.1).
const SNAPSHOT_STREAM: u64 = 0x005E_ED0F_7E57;

/// Seed of the FID samples at snapshots: the same chains at every snapshot, so the curve
/// shows the model change and not the draws. Their own [`ChainNoise`] streams: torch's global
/// generator, which the training steps draw from, is never touched.
///
/// [`ChainNoise`]: crate::langevin::ChainNoise
const FID_STREAM: u64 = 0x0F1D_5A3F_1E55;

/// FID at snapshots (`--fid-samples`): the Inception network and the reference statistics,
/// ready before the first step.
pub(super) struct SnapshotFid<'a> {
    samples: usize,
    extractor: &'a FeatureExtractor,
    reference: Stats,
    reference_path: PathBuf,
}

impl<'a> SnapshotFid<'a> {
    /// Loads (or computes and saves, with a progress bar) the data's reference statistics and
    /// checks they are of this config's resolution.
    pub fn new(
        cfg: &Config,
        opts: &TrainOptions,
        fid: &TrainFid,
        extractor: &'a FeatureExtractor,
    ) -> Result<Self> {
        let setup = |e: crate::fid::FidError| TrainError::FidSetup(e);
        let (reference, reference_path, _) = crate::fid::reference_stats(
            extractor,
            &opts.data,
            &fid.split,
            &opts.workdir,
            opts.progress,
        )
        .map_err(setup)?;
        let side = cfg.data.image_size;
        reference
            .check_comparable(&reference_path, POOL3_DIMS, Some([side, side]))
            .map_err(|e| setup(e.into()))?;
        Ok(Self {
            samples: fid.samples,
            extractor,
            reference,
            reference_path,
        })
    }
}

/// What the snapshots need, bundled so the training loop stays readable.
pub(super) struct Snapshots<'a> {
    pub cfg: &'a Config,
    pub opts: &'a TrainOptions,
    pub arch: &'a str,
    pub ckpt_dir: &'a Path,
    pub sigmas: &'a Tensor,
    pub transform: DataTransform,
    /// The held-out images in [0, 1], if the data has a test split.
    pub test_batch: Option<&'a Tensor>,
    pub metrics_path: &'a Path,
    pub started: Instant,
    pub fid: Option<&'a SnapshotFid<'a>>,
}

impl Snapshots<'_> {
    /// The snapshot of `step`: with `evaluate` (not for a run stopped by Ctrl-C) the test loss,
    /// sample grid and loss plot, then the checkpoint. Returns the checkpoint's path.
    pub fn take(
        &self,
        step: u64,
        cursor: &DataCursor,
        nets: &Nets,
        adam: &Adam,
        log: &mut MetricsLog,
        evaluate: bool,
    ) -> Result<PathBuf> {
        if evaluate {
            self.evaluate(step, nets, log)?;
        }
        self.save(step, cursor, nets, adam)
    }

    /// Writes the checkpoint of `step`: model, EMA, Adam, data cursor and RNG position.
    fn save(&self, step: u64, cursor: &DataCursor, nets: &Nets, adam: &Adam) -> Result<PathBuf> {
        let config = serde_json::to_value(self.cfg).expect("configs serialize");
        let mut meta = CheckpointMeta::new(step, self.arch, config);
        meta.data_cursor = cursor.clone();
        meta.rng = RngState {
            seed: self.opts.seed,
            // The draws of step k come from torch's generator seeded with mix(seed, k), and the
            // loader's from (seed, epoch, row): the next step is all the state there is.
            state: format!("{:016x}", step),
        };
        let mut tensors = nets.tensors();
        tensors.extend(
            adam.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIM_PREFIX}{n}"), t)),
        );
        let file = checkpoint::save(self.ckpt_dir, &meta, &tensors)?;
        checkpoint::prune(self.ckpt_dir, self.opts.keep_checkpoints)?;
        Ok(file)
    }

    /// The test loss of `nets`' evaluation network, a sample grid (`training.snapshot_sampling`),
    /// and the loss plot.
    fn evaluate(&self, step: u64, nets: &Nets, log: &mut MetricsLog) -> Result<()> {
        let model = nets.eval_model();
        let seed = self.opts.seed ^ SNAPSHOT_STREAM;
        if let Some(x) = self.test_batch {
            let _guard = tch::no_grad_guard();
            // The same transform and draws as a training step, from a fixed seed.
            let (x, y, z) = draws(seed, 0, x, &self.transform, self.sigmas.size()[0]);
            let (loss, _) = dsm_loss(
                model,
                &x,
                &y,
                &z,
                self.sigmas,
                self.cfg.training.anneal_power,
            );
            log.write(&Record {
                step,
                test_loss: Some(loss.double_value(&[])),
                time: self.started.elapsed().as_secs_f64(),
                ..Default::default()
            })
            .map_err(io_err(self.metrics_path))?;
        }
        if self.cfg.training.snapshot_sampling && self.opts.snapshot_samples > 0 {
            let dir = self.opts.workdir.join("samples");
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let png = dir.join(format!("step_{step:08}.png"));
            let _guard = tch::no_grad_guard();
            crate::sample::snapshot_grid(
                model,
                self.cfg,
                self.opts.snapshot_samples,
                seed,
                self.opts.device,
                &png,
            )
            .map_err(|source| TrainError::Snapshot { step, source })?;
        }
        if let Some(fid) = self.fid {
            self.score(step, model, fid, log)?;
        }
        self.plot()
    }

    /// FID and IS of the evaluation network's samples, into the metrics. Samples holding
    /// NaN/inf (a sampler diverging, which need not stop training) are a warning naming the
    /// step, and no FID is logged.
    fn score(
        &self,
        step: u64,
        model: &dyn ScoreModel,
        fid: &SnapshotFid,
        log: &mut MetricsLog,
    ) -> Result<()> {
        let settings = SamplerSettings::from_config(self.cfg).map_err(|e| TrainError::Fid {
            step,
            source: e.into(),
        })?;
        let draw = Draw {
            n: fid.samples,
            batch_size: self.cfg.sampling.batch_size,
            seed: self.opts.seed ^ FID_STREAM,
        };
        let scored = crate::fid::score_model(
            model,
            &settings,
            &draw,
            fid.extractor,
            INCEPTION_BATCH,
            (&fid.reference, &fid.reference_path),
            evaluate::SPLITS,
            self.opts.device,
            None,
            None,
        );
        let scored = match scored {
            Ok(s) => s,
            Err(e @ FidError::NonFinite { .. }) => {
                eprintln!("warning: step {step}: no FID: {e}");
                return Ok(());
            }
            Err(source) => return Err(TrainError::Fid { step, source }),
        };
        log.write(&Record {
            step,
            fid: Some(scored.fid),
            inception_score: Some(scored.inception_score.mean),
            inception_score_std: Some(scored.inception_score.std),
            time: self.started.elapsed().as_secs_f64(),
            ..Default::default()
        })
        .map_err(io_err(self.metrics_path))
    }

    /// `WORKDIR/loss.png` from the metrics so far, with `--loss-plot`.
    pub fn plot(&self) -> Result<()> {
        if self.opts.loss_plot {
            let records = metrics::read(self.metrics_path).map_err(io_err(self.metrics_path))?;
            let png = self.opts.workdir.join("loss.png");
            plot::plot_loss(&records, &png).map_err(io_err(&png))?;
        }
        Ok(())
    }
}

/// Whether `ckpt` is the checkpoint of `step`.
pub(super) fn is_checkpoint_of(ckpt: &Path, step: u64) -> bool {
    ckpt.file_name()
        .is_some_and(|n| n.to_string_lossy() == checkpoint::checkpoint_file_name(step))
}
