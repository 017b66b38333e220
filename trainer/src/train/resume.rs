//! Where a run starts: step 0 on a fresh workdir, or exactly where the latest checkpoint left
//! off with `--resume` (weights, EMA, Adam moments, step, data cursor). Every random draw is a
//! function of the seed and a position the checkpoint stores, so the resumed run replays the
//! steps an uninterrupted run would have taken (trainer/tests/resume.rs).

use std::path::{Path, PathBuf};

use schemas::checkpoint::{CheckpointMeta, DataCursor};
use schemas::config::Config;
use tch::Tensor;

use super::nets::Nets;
use super::{Result, TrainError, TrainOptions};
use crate::checkpoint::{self, EMA_PREFIX, MODEL_PREFIX, OPTIM_PREFIX};
use crate::optim::Adam;

/// The position a run starts from.
pub(super) struct Start {
    pub step: u64,
    pub cursor: DataCursor,
    /// The checkpoint resumed from.
    pub checkpoint: Option<PathBuf>,
}

/// Step 0 for a fresh run (refused over existing checkpoints); with `opts.resume`, loads the
/// latest checkpoint of `ckpt_dir` into `nets` and `adam`.
pub(super) fn start(
    cfg: &Config,
    opts: &TrainOptions,
    ckpt_dir: &Path,
    nets: &Nets,
    adam: &mut Adam,
) -> Result<Start> {
    let latest = checkpoint::latest(ckpt_dir)?;
    if !opts.resume {
        if latest.is_some() {
            return Err(TrainError::Config(format!(
                "{} already holds checkpoints: pass --resume to continue, or choose a new --workdir",
                ckpt_dir.display()
            )));
        }
        return Ok(Start {
            step: 0,
            cursor: DataCursor {
                epoch: 0,
                rows_consumed: 0,
            },
            checkpoint: None,
        });
    }
    if latest.is_none() {
        return Err(TrainError::Config(format!(
            "--resume: {} holds no checkpoint yet",
            ckpt_dir.display()
        )));
    }
    let file = checkpoint::resolve(&opts.workdir)?;
    let meta = checkpoint::read_meta(&file)?;
    check_same_run(cfg, &meta, &file)?;
    let what = file.display().to_string();
    if meta.rng.seed != opts.seed {
        return Err(TrainError::Config(format!(
            "{what}: this run was started with --seed {}, not {}; resume with the same seed",
            meta.rng.seed, opts.seed
        )));
    }
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
    checkpoint::copy_into(&nets.vs, &part(MODEL_PREFIX), &what)?;
    if let Some(twin) = &nets.ema {
        checkpoint::copy_into(&twin.vs, &part(EMA_PREFIX), &what)?;
    }
    adam.load_state(&part(OPTIM_PREFIX))
        .map_err(|e| TrainError::Config(format!("{what}: {e}")))?;
    Ok(Start {
        step: meta.step,
        cursor: meta.data_cursor.clone(),
        checkpoint: Some(file),
    })
}

/// A resumed run must train the same network on the same data as the checkpoint.
fn check_same_run(cfg: &Config, meta: &CheckpointMeta, file: &Path) -> Result<()> {
    let saved = Config::from_json_value(meta.config.clone(), &checkpoint::meta_path(file))?;
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
