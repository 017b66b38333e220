//! FID of checkpoints: one ([`score_checkpoint`], `ncsn fid --checkpoint`) or a run's range of
//! them ([`sweep`], `ncsn fid --workdir W --ckpts`, the authors' `--fast_fid`), against a
//! [`Reference`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use evaluate::{FeatureExtractor, Stats, POOL3_DIMS};
use schemas::config::Config;
use schemas::output::DirLock;
use tch::Device;

use super::sweep::{self, FidLine, FidLog, FidSettings, Plan, Range, FID_PLOT};
use super::{score_model, Draw, FidError, Result, Scored, DEFAULT_SAMPLES};
use crate::checkpoint::{self, Weights};
use crate::sample::{load_model, LoadedModel, SampleError, SamplerSettings};

/// What samples are compared with.
#[derive(Debug, Clone)]
pub enum Reference {
    /// A statistics file (`ncsn fid-stats`, pytorch-fid's or TTUR's `.npz`).
    Stats(PathBuf),
    /// A split of an `ncsn ingest` directory, whose statistics are computed first.
    Data { dir: PathBuf, split: String },
}

impl Reference {
    /// The file or directory, for messages and `fid.jsonl`.
    pub fn path(&self) -> &Path {
        match self {
            Reference::Stats(p) => p,
            Reference::Data { dir, .. } => dir,
        }
    }

    /// What identifies these statistics across runs: the statistics file's sha256, or the
    /// dataset manifest's and the split.
    pub fn id(&self) -> Result<String> {
        Ok(match self {
            Reference::Stats(p) => shards::sha256_file(p)?.0,
            Reference::Data { dir, split } => {
                let ds = shards::Dataset::open(dir)?;
                format!("{}/{split}", shards::sha256_file(&ds.manifest_path())?.0)
            }
        })
    }

    /// The statistics: read (and checked to be of pool3 features), or computed from the split.
    pub fn load(
        &self,
        extractor: &FeatureExtractor,
        inception_batch: usize,
        progress: bool,
    ) -> Result<Stats> {
        match self {
            Reference::Stats(p) => {
                let s = Stats::read_npz(p)?;
                s.check_comparable(p, POOL3_DIMS, None)?;
                Ok(s)
            }
            Reference::Data { dir, split } => Ok(evaluate::score::dataset_stats(
                extractor,
                dir,
                split,
                inception_batch,
                progress,
            )?),
        }
    }
}

/// The Inception side of a FID: the network, its batch, IS splits, and progress.
pub struct Scorer<'a> {
    pub extractor: &'a FeatureExtractor,
    pub inception_batch: usize,
    pub splits: usize,
    /// Where the chains run.
    pub device: Device,
    pub progress: bool,
}

/// Command-line overrides of the sampler a FID uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplerOverrides {
    /// ε.
    pub step_lr: Option<f64>,
    /// T.
    pub n_steps_each: Option<usize>,
}

/// The sampler of a FID of a checkpoint trained with `cfg`: its `sampling` settings, or for a
/// sweep its `fast_fid` ones when it has them (the authors' `--fast_fid`), then `overrides`.
pub fn fid_sampler(
    cfg: &Config,
    sweep: bool,
    overrides: &SamplerOverrides,
) -> Result<SamplerSettings, SampleError> {
    let mut cfg = cfg.clone();
    if let Some(f) = cfg.fast_fid.as_ref().filter(|_| sweep) {
        cfg.sampling.step_lr = f.step_lr;
        cfg.sampling.n_steps_each = f.n_steps_each;
    }
    if let Some(eps) = overrides.step_lr {
        cfg.sampling.step_lr = eps;
    }
    if let Some(t) = overrides.n_steps_each {
        cfg.sampling.n_steps_each = t;
    }
    SamplerSettings::from_config(&cfg)
}

/// Errors of a checkpoint's FID, naming the checkpoint and its step.
fn at(file: &Path, step: u64) -> impl FnOnce(FidError) -> FidError + '_ {
    move |e| FidError::Invalid(format!("checkpoint {} (step {step}): {e}", file.display()))
}

/// The FID and IS of `draw.n` samples of a loaded checkpoint; errors (samples with NaN/inf
/// above all) name the checkpoint and step. `raw` receives the samples' uint8 NHWC bytes.
pub fn score_checkpoint(
    loaded: &LoadedModel,
    settings: &SamplerSettings,
    draw: &Draw,
    scorer: &Scorer,
    reference: (&Stats, &Path),
    raw: Option<&mut Vec<u8>>,
) -> Result<Scored> {
    let bar = progress::bar(
        draw.n.div_ceil(draw.batch_size.max(1)) as u64 * settings.steps_per_batch(),
        scorer.progress,
        "Langevin steps",
    );
    bar.set_message(format!("step {}: {} samples", loaded.meta.step, draw.n));
    let scored = score_model(
        loaded.model.as_ref(),
        settings,
        draw,
        scorer.extractor,
        scorer.inception_batch,
        reference,
        scorer.splits,
        scorer.device,
        raw,
        Some(&bar),
    )
    .map_err(at(&loaded.file, loaded.meta.step));
    bar.finish_and_clear();
    scored
}

/// A sweep as asked on the command line; `None`s take the defaults of the run's config.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub workdir: PathBuf,
    pub range: Range,
    /// Samples per checkpoint: default `fast_fid.num_samples`, else [`DEFAULT_SAMPLES`].
    pub n: Option<usize>,
    /// Chains together: default `fast_fid.batch_size`, else `sampling.batch_size`.
    pub batch_size: Option<usize>,
    pub seed: u64,
    pub weights: Weights,
    pub overrides: SamplerOverrides,
}

/// What a sweep reports as it goes.
pub enum SweepEvent<'a> {
    /// The checkpoints it will score (and the range's steps that have none).
    Planned {
        plan: &'a Plan,
        n: usize,
    },
    /// A checkpoint already in `fid.jsonl` with the same settings.
    Skipped(&'a FidLine),
    Scored(&'a FidLine),
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepResult {
    pub plan: Plan,
    /// One line per checkpoint of the plan (scored now or before), by step.
    pub lines: Vec<FidLine>,
    /// The smallest FID in `fid.jsonl` with this sweep's settings (earlier sweeps included).
    pub best: Option<FidLine>,
    pub log: PathBuf,
    pub plot: PathBuf,
}

/// Scores the checkpoints of `req.range` in `req.workdir` one by one, appending a line per
/// checkpoint to `WORKDIR/fid.jsonl` and redrawing `WORKDIR/fid.png` after each, skipping
/// those already scored with the same settings. Runs beside a training run on the workdir
/// (only a second sweep of it is refused).
pub fn sweep(
    req: &SweepRequest,
    scorer: &Scorer,
    reference: &Reference,
    mut on: impl FnMut(SweepEvent),
) -> Result<SweepResult> {
    let work = &req.workdir;
    let _lock = DirLock::own(work, "fid", "ncsn fid --ckpts")?;
    let present = sweep::checkpoints(work)?;
    // The defaults come from the newest checkpoint's config (a resumed run's is the latest).
    let Some(newest) = present.values().next_back() else {
        return Err(FidError::Invalid(format!(
            "{}: no checkpoints",
            work.join(checkpoint::CHECKPOINT_DIR).display()
        )));
    };
    let latest_cfg = config_of(newest)?;
    let fast_fid = latest_cfg.fast_fid.as_ref();
    let plan = sweep::plan(
        &req.range,
        fast_fid,
        latest_cfg.training.snapshot_freq,
        &present,
        work,
    )?;
    let n = req
        .n
        .or(fast_fid.map(|f| f.num_samples as usize))
        .unwrap_or(DEFAULT_SAMPLES);
    let batch_size = req
        .batch_size
        .or(fast_fid.map(|f| f.batch_size))
        .unwrap_or(latest_cfg.sampling.batch_size);
    let draw = Draw {
        n,
        batch_size,
        seed: req.seed,
    };
    let reference_id = reference.id()?;
    let weights_sha256 = shards::sha256_file(scorer.extractor.weights())?.0;
    let mut log = FidLog::open(work)?;
    on(SweepEvent::Planned { plan: &plan, n });

    let plot = work.join(FID_PLOT);
    let mut stats: Option<Stats> = None;
    let (mut lines, mut settings_now) = (vec![], None);
    for (step, file) in &plan.checkpoints {
        let meta = checkpoint::read_meta(file)?;
        let cfg = config_of(file)?;
        let sampler =
            fid_sampler(&cfg, true, &req.overrides).map_err(|e| at(file, *step)(e.into()))?;
        let settings = FidSettings {
            n,
            seed: req.seed,
            ema: req.weights == Weights::Ema && cfg.model.ema,
            step_lr: sampler.step_lr,
            n_steps_each: sampler.n_steps_each,
            denoise: sampler.denoise,
            is_splits: scorer.splits,
            reference_id: reference_id.clone(),
            weights_sha256: weights_sha256.clone(),
        };
        settings_now = Some(settings.clone());
        if let Some(done) = log.done(*step, &settings, meta.tensors_sha256.as_deref()) {
            on(SweepEvent::Skipped(done));
            lines.push(done.clone());
            continue;
        }
        if stats.is_none() {
            let s = reference.load(scorer.extractor, scorer.inception_batch, scorer.progress)?;
            // Another resolution is refused before minutes go into sampling.
            let side = sampler.image_size as u32;
            s.check_comparable(reference.path(), POOL3_DIMS, Some([side, side]))?;
            stats = Some(s);
        }
        let t0 = Instant::now();
        let loaded =
            load_model(file, req.weights, scorer.device).map_err(|e| at(file, *step)(e.into()))?;
        let scored = score_checkpoint(
            &loaded,
            &sampler,
            &draw,
            scorer,
            (stats.as_ref().expect("loaded above"), reference.path()),
            None,
        )?;
        let line = FidLine {
            step: *step,
            fid: scored.fid,
            is: scored.inception_score.mean,
            is_std: scored.inception_score.std,
            seconds: t0.elapsed().as_secs_f64(),
            checkpoint: file.display().to_string(),
            checkpoint_sha256: meta.tensors_sha256.clone(),
            reference: reference.path().display().to_string(),
            settings,
        };
        log.record(line.clone())?;
        on(SweepEvent::Scored(&line));
        lines.push(line);
        draw_plot(&log, settings_now.as_ref(), &plot)?;
    }
    draw_plot(&log, settings_now.as_ref(), &plot)?;
    let best = settings_now.and_then(|s| log.best(&s).cloned());
    Ok(SweepResult {
        plan,
        lines,
        best,
        log: log.path().to_path_buf(),
        plot,
    })
}

/// The training config stored in a checkpoint's metadata.
fn config_of(file: &Path) -> Result<Config> {
    let meta = checkpoint::read_meta(file)?;
    Ok(Config::from_json_value(
        meta.config,
        &checkpoint::meta_path(file),
    )?)
}

/// `fid.png` from the log's lines of `settings`.
fn draw_plot(log: &FidLog, settings: Option<&FidSettings>, out: &Path) -> Result<()> {
    let Some(settings) = settings else {
        return Ok(());
    };
    let curve: Vec<(u64, f64)> = log
        .curve(settings)
        .iter()
        .map(|l| (l.step, l.fid))
        .collect();
    crate::plot::plot_fid(&curve, out).map_err(super::io_err(out))
}
