//! Why a run stopped with an error; each message names the file, key or step.

use std::path::Path;

use tch::{Device, Tensor};

use crate::checkpoint;
use crate::loader::{self, Shard};
use crate::models::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    /// The config refused (by `Config::validate` or the model table), naming the key.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A libtorch switch of `--precision`/`--channels-last`/TF32 refused (torchrt's shim).
    #[error(transparent)]
    Accel(#[from] torchrt::accel::AccelError),
    #[error(transparent)]
    Data(#[from] loader::LoaderError),
    #[error(transparent)]
    Pipeline(#[from] shards::Error),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Schema(#[from] schemas::SchemaError),
    /// The sample grid of a snapshot could not be drawn or written.
    #[error("snapshot samples at step {step}: {source}")]
    Snapshot {
        step: u64,
        #[source]
        source: crate::sample::SampleError,
    },
    /// `--fid-samples`' set-up (Inception weights, the reference statistics), before any step.
    #[error("--fid-samples: {0}")]
    FidSetup(#[source] crate::fid::FidError),
    /// The FID of a snapshot failed (other than by samples holding NaN, which is a warning).
    #[error("FID at step {step}: {source}")]
    Fid {
        step: u64,
        #[source]
        source: crate::fid::FidError,
    },
    /// A data-parallel run's rendezvous or collective failed (another rank died, timed out,
    /// or the launch is inconsistent), naming this rank.
    #[error("{0}")]
    Dist(String),
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
    /// A data-parallel run's loss left the reals on another rank's samples, which that rank
    /// names; every rank stops at the same step.
    #[error(
        "step {step}: the loss is {loss}, from another rank's samples (its own error names the \
         sample and σ); no checkpoint was written for this step, the last good one is kept"
    )]
    NonFiniteElsewhere { step: u64, loss: f64 },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Names the first sample whose loss is not finite, with its σ; `per_sample` and `y` are the
/// rows of `shard`, and the sample is named by its place in the global batch.
pub(super) fn non_finite(
    step: u64,
    loss: f64,
    per_sample: &Tensor,
    y: &Tensor,
    sigmas: &[f64],
    shard: Shard,
) -> TrainError {
    let per: Vec<f32> = Vec::try_from(per_sample.to_device(Device::Cpu)).unwrap_or_default();
    let ys: Vec<i64> = Vec::try_from(y.to_device(Device::Cpu)).unwrap_or_default();
    let found = per.iter().position(|v| !v.is_finite());
    if found.is_none() && shard.world > 1 {
        return TrainError::NonFiniteElsewhere { step, loss };
    }
    let sample = found.unwrap_or(0);
    let sigma_index = ys.get(sample).copied().unwrap_or(-1);
    TrainError::NonFinite {
        step,
        loss,
        sample: (shard.rank + sample * shard.world) as i64,
        sigma_index,
        sigma: sigmas
            .get(sigma_index.max(0) as usize)
            .copied()
            .unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_sample_is_named_by_its_place_in_the_global_batch() {
        let sigmas = [10.0, 1.0, 0.1];
        let y = Tensor::from_slice(&[0i64, 2]);
        let per = Tensor::from_slice(&[1.0f32, f32::NAN]);
        // Rank 1 of 2 holds rows 1 and 3 of the batch: its second row is sample 3.
        let e = non_finite(7, f64::NAN, &per, &y, &sigmas, Shard { rank: 1, world: 2 });
        assert!(matches!(
            e,
            TrainError::NonFinite {
                step: 7,
                sample: 3,
                sigma_index: 2,
                ..
            }
        ));
        // One process: its own index.
        let e = non_finite(7, f64::NAN, &per, &y, &sigmas, Shard::ALL);
        assert!(matches!(e, TrainError::NonFinite { sample: 1, .. }));
        // A rank whose own samples are finite says the bad one is another rank's.
        let fine = Tensor::from_slice(&[1.0f32, 2.0]);
        let e = non_finite(
            7,
            f64::INFINITY,
            &fine,
            &y,
            &sigmas,
            Shard { rank: 0, world: 2 },
        );
        assert!(matches!(e, TrainError::NonFiniteElsewhere { step: 7, .. }));
        assert!(e.to_string().contains("from another rank's samples"), "{e}");
    }
}
