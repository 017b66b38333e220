//! FID and Inception Score of a score network's samples (paper §4, Figs. 4–5, Table 1): draw N
//! samples with Algorithm 1, batch by batch, and feed each batch to pytorch-fid's Inception
//! network as it comes, so only the features' moments (and the IS logits) are held, never the
//! samples. Used by `ncsn fid --checkpoint/--workdir` ([`score_model`]), its sweep over a run's
//! checkpoints ([`sweep`]), and the trainer's FID at snapshots (`--fid-samples`).
//!
//! The chains are seeded per chain ([`ChainNoise`], as `ncsn sample`), so the samples of a seed
//! are those of `ncsn sample --seed` whatever the batch size, and drawing them never touches
//! torch's global generator (a training run stays bit-identical with FID on or off).

mod checkpoint;
pub mod sweep;

pub use checkpoint::{
    fid_sampler, score_checkpoint, sweep, Reference, SamplerOverrides, Scorer, SweepEvent,
    SweepRequest, SweepResult,
};

use std::path::{Path, PathBuf};

use evaluate::score::Gather;
use evaluate::{FeatureExtractor, InceptionScore, Stats, POOL3_DIMS};
use progress::ProgressBar;
use tch::{Device, Kind, Tensor};

use crate::langevin::ChainNoise;
use crate::models::ScoreModel;
use crate::sample::{sample_batch_unclamped, to_rgb8, SampleError, SamplerSettings};

/// Images per Inception forward pass where no flag sets it (pytorch-fid's default).
pub const INCEPTION_BATCH: usize = 50;

/// Samples of a FID during training and of a sweep when nothing else says (the paper's FIDs
/// during training, §4: 1 000).
pub const DEFAULT_SAMPLES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum FidError {
    #[error(transparent)]
    Evaluate(#[from] evaluate::Error),
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Schema(#[from] schemas::SchemaError),
    #[error(transparent)]
    Shards(#[from] shards::Error),
    /// A chain ended in NaN or ±inf: there is no FID of these samples.
    #[error(
        "sample {sample} of {n} is NaN or infinite: the model diverged, or the sampler's \
         step_lr is too large for it; no FID"
    )]
    NonFinite { sample: usize, n: usize },
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = FidError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FidError + '_ {
    move |source| FidError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How many samples to draw and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// Samples (N ≥ 2: Σ needs two).
    pub n: usize,
    /// Chains run together (memory, not the samples).
    pub batch_size: usize,
    /// Chain i draws from stream i of this seed ([`ChainNoise`]).
    pub seed: u64,
}

/// What a model's samples scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub fid: f64,
    pub inception_score: InceptionScore,
    pub n: usize,
}

/// Draws `draw.n` samples of `model` with `settings` on `device` and gathers their Inception
/// features (logits kept for IS) `inception_batch` at a time, batch by batch. `raw`, when
/// given, receives the samples as uint8 NHWC bytes (what `ncsn sample --raw` writes). A chain
/// that ends in NaN/±inf is [`FidError::NonFinite`]. `progress` counts Langevin steps
/// (`draw.n.div_ceil(batch_size)` × [`SamplerSettings::steps_per_batch`]).
#[allow(clippy::too_many_arguments)]
pub fn gather_model_samples(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    draw: &Draw,
    extractor: &FeatureExtractor,
    inception_batch: usize,
    device: Device,
    mut raw: Option<&mut Vec<u8>>,
    progress: Option<&ProgressBar>,
) -> Result<Gather> {
    if draw.n < 2 {
        return Err(FidError::Invalid(format!(
            "{} samples: μ and Σ need at least 2",
            draw.n
        )));
    }
    let (batch, inception_batch) = (draw.batch_size.max(1), inception_batch.max(1) as i64);
    let side = settings.image_size;
    let mut g = Gather::new(true);
    g.set_image_size([side as u32, side as u32]);
    let mut done = 0;
    while done < draw.n {
        let b = batch.min(draw.n - done);
        let mut noise = ChainNoise::new(draw.seed, done as u64, b);
        let _guard = tch::no_grad_guard();
        let x = sample_batch_unclamped(model, settings, b, &mut noise, device, progress);
        if let Some(k) = first_non_finite(&x) {
            return Err(FidError::NonFinite {
                sample: done + k,
                n: draw.n,
            });
        }
        let bytes = to_rgb8(&settings.transform.inverse(&x));
        let images = Tensor::from_data_size(&bytes, &[b as i64, side, side, 3], Kind::Uint8);
        let mut start = 0;
        while start < b as i64 {
            let len = inception_batch.min(b as i64 - start);
            g.add(&extractor.extract(&images.narrow(0, start, len))?);
            start += len;
        }
        if let Some(raw) = raw.as_deref_mut() {
            raw.extend_from_slice(&bytes);
        }
        done += b;
    }
    Ok(g)
}

/// The index in the batch of the first image holding NaN or ±inf, if any.
fn first_non_finite(x: &Tensor) -> Option<usize> {
    let bad = x.isfinite().logical_not().flatten(1, -1).any_dim(1, false);
    if bad.any().int64_value(&[]) == 0 {
        return None;
    }
    let first = bad.nonzero().int64_value(&[0, 0]);
    Some(first as usize)
}

/// FID of `gathered` against `reference` (read from `reference_path`, named if it does not
/// fit), and the Inception Score over `splits`.
pub fn score(
    gathered: &Gather,
    reference: &Stats,
    reference_path: &Path,
    splits: usize,
    device: Device,
) -> Result<Scored> {
    let stats = gathered.stats()?;
    reference.check_comparable(reference_path, POOL3_DIMS, stats.image_size)?;
    let fid = evaluate::frechet_distance(&stats, reference, device)?;
    let inception_score = gathered.inception_score(splits)?;
    Ok(Scored {
        fid,
        inception_score,
        n: gathered.len() as usize,
    })
}

/// [`gather_model_samples`] then [`score`]: the FID and IS of `draw.n` samples of a model.
#[allow(clippy::too_many_arguments)]
pub fn score_model(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    draw: &Draw,
    extractor: &FeatureExtractor,
    inception_batch: usize,
    reference: (&Stats, &Path),
    splits: usize,
    device: Device,
    raw: Option<&mut Vec<u8>>,
    progress: Option<&ProgressBar>,
) -> Result<Scored> {
    let g = gather_model_samples(
        model,
        settings,
        draw,
        extractor,
        inception_batch,
        device,
        raw,
        progress,
    )?;
    score(&g, reference.0, reference.1, splits, extractor.device())
}

/// The reference statistics of a split of an ingested directory for a training run: the
/// directory's `_fid_stats_<split>.npz` (what `ncsn fid-stats` writes), computed and saved
/// there first when absent. A directory that takes no new file (a read-only dataset) gets them
/// in `fallback_dir` instead, which is also looked in first. Returns the statistics, the file,
/// and whether they were computed now.
pub fn reference_stats(
    extractor: &FeatureExtractor,
    data: &Path,
    split: &str,
    fallback_dir: &Path,
    progress: bool,
) -> Result<(Stats, PathBuf, bool)> {
    let name = schemas::layout::fid_stats_file(split);
    let (beside, fallback) = (data.join(&name), fallback_dir.join(&name));
    for file in [&beside, &fallback] {
        if file.is_file() {
            return Ok((Stats::read_npz(file)?, file.clone(), false));
        }
    }
    let stats = evaluate::score::dataset_stats(extractor, data, split, INCEPTION_BATCH, progress)?;
    let file = match stats.write_npz(&beside) {
        Ok(()) => beside,
        Err(_) => {
            stats.write_npz(&fallback)?;
            fallback
        }
    };
    Ok((stats, file, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_image_is_found() {
        let x = Tensor::zeros([4, 3, 2, 2], (Kind::Float, Device::Cpu));
        assert_eq!(first_non_finite(&x), None);
        let _ = x.get(2).get(1).get(0).get(1).fill_(f64::INFINITY);
        let _ = x.get(3).get(0).get(0).get(0).fill_(f64::NAN);
        assert_eq!(first_non_finite(&x), Some(2));
    }
}
