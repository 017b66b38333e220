//! Checkpoint files of a training workdir (SPEC §6; layout shared with the sampler and the
//! `.pth` converter):
//!
//! ```text
//! WORKDIR/checkpoints/ckpt_<step:08>.safetensors   model.*, ema.*, optim.* tensors
//! WORKDIR/checkpoints/ckpt_<step:08>.json          schemas::checkpoint::CheckpointMeta
//! WORKDIR/checkpoints/latest.json                  {"step": N, "file": "ckpt_<step:08>.safetensors"}
//! ```
//!
//! Every file goes through a temporary name and a rename, the tensors first, the metadata second
//! and `latest.json` last: a crash at any point leaves the previous checkpoint as the latest one
//! and never a pointer to a half-written file; a failed save leaves no temporary file. The
//! metadata records the sha256 of the tensors file as written, and every load checks it, so
//! weights changed on disk are refused instead of sampled from or trained on.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use schemas::atomic::TmpFile;
use schemas::checkpoint::CheckpointMeta;
use schemas::{JsonDocument, SchemaError};
use sha2::{Digest, Sha256};
use tch::Tensor;

/// Sub-directory of a workdir holding the checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
/// The pointer to the newest complete checkpoint.
pub const LATEST_FILE: &str = "latest.json";
/// Tensor-name prefixes inside a checkpoint.
pub const MODEL_PREFIX: &str = "model.";
pub const EMA_PREFIX: &str = "ema.";
pub const OPTIM_PREFIX: &str = "optim.";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Tch {
        path: String,
        #[source]
        source: tch::TchError,
    },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Hash(#[from] shards::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Which copy of the network's weights to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// The exponential moving average (Technique 5): what sampling uses.
    Ema,
    /// The raw weights the optimiser updates.
    Model,
}

impl Weights {
    pub fn prefix(self) -> &'static str {
        match self {
            Weights::Ema => EMA_PREFIX,
            Weights::Model => MODEL_PREFIX,
        }
    }
}

/// `latest.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Latest {
    pub step: u64,
    /// File name of the `.safetensors`, relative to the checkpoints directory.
    pub file: String,
}

/// `ckpt_<step:08>.safetensors`.
pub fn checkpoint_file_name(step: u64) -> String {
    format!("ckpt_{step:08}.safetensors")
}

/// The metadata file that sits beside a checkpoint's tensors.
pub fn meta_path(tensors: &Path) -> PathBuf {
    tensors.with_extension("json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn tch_err(path: &Path) -> impl FnOnce(tch::TchError) -> CheckpointError + '_ {
    move |source| CheckpointError::Tch {
        path: path.display().to_string(),
        source,
    }
}

/// Turns a workdir, a checkpoints directory or a checkpoint file into the `.safetensors` path
/// to load: directories go through their `latest.json`.
pub fn resolve(workdir_or_file: &Path) -> Result<PathBuf> {
    let p = workdir_or_file;
    if p.is_file() {
        return match p.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Ok(p.to_path_buf()),
            Some("json") if p.file_name().is_some_and(|n| n == LATEST_FILE) => {
                read_latest(p.parent().unwrap_or(Path::new(".")))
            }
            Some("json") if p.with_extension("safetensors").is_file() => {
                Ok(p.with_extension("safetensors"))
            }
            _ => Err(CheckpointError::Invalid(format!(
                "{}: not a checkpoint (expected a .safetensors file or a training workdir)",
                p.display()
            ))),
        };
    }
    if !p.is_dir() {
        return Err(CheckpointError::Invalid(format!(
            "{}: no such checkpoint file or workdir",
            p.display()
        )));
    }
    for dir in [p.join(CHECKPOINT_DIR), p.to_path_buf()] {
        if dir.join(LATEST_FILE).is_file() {
            return read_latest(&dir);
        }
    }
    Err(CheckpointError::Invalid(format!(
        "{}: no {CHECKPOINT_DIR}/{LATEST_FILE} here: not a training workdir, or no checkpoint \
         was written yet",
        p.display()
    )))
}

/// The newest complete checkpoint of a checkpoints directory, if any.
pub fn latest(checkpoint_dir: &Path) -> Result<Option<Latest>> {
    let path = checkpoint_dir.join(LATEST_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let l: Latest = serde_json::from_str(&text).map_err(|e| {
        CheckpointError::Invalid(format!("{}: not a valid latest.json: {e}", path.display()))
    })?;
    Ok(Some(l))
}

fn read_latest(checkpoint_dir: &Path) -> Result<PathBuf> {
    let l = latest(checkpoint_dir)?.ok_or_else(|| {
        CheckpointError::Invalid(format!("{}: no {LATEST_FILE}", checkpoint_dir.display()))
    })?;
    let file = checkpoint_dir.join(&l.file);
    if !file.is_file() {
        return Err(CheckpointError::Invalid(format!(
            "{}: points to {} (step {}), which does not exist",
            checkpoint_dir.join(LATEST_FILE).display(),
            file.display(),
            l.step
        )));
    }
    Ok(file)
}

/// Reads the metadata beside `tensors` (`ckpt_X.json` for `ckpt_X.safetensors`).
pub fn read_meta(tensors: &Path) -> Result<CheckpointMeta> {
    Ok(CheckpointMeta::read(&meta_path(tensors))?)
}

/// Every tensor of a checkpoint file, with its full name (`model.*`, `ema.*`, `optim.*`),
/// checked against the sha256 in its metadata.
pub fn read_tensors(tensors: &Path) -> Result<Vec<(String, Tensor)>> {
    read_checked(tensors, &read_meta(tensors)?)
}

/// The tensors of `file`, read once: the bytes checked against `meta`'s sha256 (when it records
/// one; older checkpoints load unchecked) are the bytes parsed.
fn read_checked(file: &Path, meta: &CheckpointMeta) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(file).map_err(io(file))?;
    if let Some(want) = &meta.tensors_sha256 {
        if hex::encode(Sha256::digest(&bytes)) != *want {
            return Err(CheckpointError::Invalid(format!(
                "checkpoint {}: sha256 mismatch (file corrupt or changed since it was written)",
                file.display()
            )));
        }
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        CheckpointError::Invalid(format!(
            "checkpoint {}: not a safetensors file: {e}",
            file.display()
        ))
    })?;
    st.tensors()
        .into_iter()
        .map(|(name, view)| Ok((name, Tensor::try_from(view).map_err(tch_err(file))?)))
        .collect()
}

/// Loads one copy of the weights of `path` (a workdir, or a `.safetensors` file) with its
/// metadata, names stripped of their `model.`/`ema.` prefix so they are the authors' state_dict
/// keys (`begin_conv.weight`, `sigmas`, ...).
pub fn load_weights(
    path: &Path,
    which: Weights,
) -> Result<(CheckpointMeta, Vec<(String, Tensor)>)> {
    let file = resolve(path)?;
    let meta = read_meta(&file)?;
    let prefix = which.prefix();
    let weights: Vec<(String, Tensor)> = read_checked(&file, &meta)?
        .into_iter()
        .filter_map(|(name, t)| name.strip_prefix(prefix).map(|n| (n.to_string(), t)))
        .collect();
    if weights.is_empty() {
        return Err(CheckpointError::Invalid(format!(
            "{}: holds no `{prefix}*` tensors",
            file.display()
        )));
    }
    Ok((meta, weights))
}

/// Copies named tensors into the same-named variables of a `VarStore` (each cast to its
/// variable's kind and device), without autograd. The names must match exactly and every shape
/// agree, all checked before anything is copied, so a wrong file never half-loads; errors name
/// `what` (the file) and the offending tensors.
pub fn copy_into(vs: &tch::nn::VarStore, tensors: &[(String, Tensor)], what: &str) -> Result<()> {
    let vars = vs.variables();
    let given: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let missing: BTreeSet<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|n| !given.contains_key(n))
        .collect();
    let extra: BTreeSet<&str> = given
        .keys()
        .copied()
        .filter(|n| !vars.contains_key(*n))
        .collect();
    let mut problems = vec![];
    if !missing.is_empty() {
        problems.push(format!("no tensor for the model's {}", names(&missing)));
    }
    if !extra.is_empty() {
        problems.push(format!("not parameters of this model: {}", names(&extra)));
    }
    let mut sorted: Vec<(&String, &Tensor)> = vars.iter().collect();
    sorted.sort_by_key(|(n, _)| *n);
    for (name, var) in &sorted {
        if let Some(t) = given.get(name.as_str()) {
            if t.size() != var.size() {
                problems.push(format!(
                    "tensor `{name}` has shape {:?}, the model expects {:?}",
                    t.size(),
                    var.size()
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(CheckpointError::Invalid(format!(
            "{what}: {}",
            problems.join("; ")
        )));
    }
    let _guard = tch::no_grad_guard();
    for (name, var) in sorted {
        var.shallow_clone().copy_(given[name.as_str()]);
    }
    Ok(())
}

/// Up to five names in backticks, then how many more.
fn names(set: &BTreeSet<&str>) -> String {
    const SHOWN: usize = 5;
    let mut s = set
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if set.len() > SHOWN {
        s.push_str(&format!(" and {} more", set.len() - SHOWN));
    }
    s
}

/// Writes one checkpoint atomically (tensors, then metadata with the tensors' sha256, then
/// `latest.json`) and returns the path of its `.safetensors`.
pub fn save(
    checkpoint_dir: &Path,
    meta: &CheckpointMeta,
    tensors: &[(String, Tensor)],
) -> Result<PathBuf> {
    std::fs::create_dir_all(checkpoint_dir).map_err(io(checkpoint_dir))?;
    let name = checkpoint_file_name(meta.step);
    let file = checkpoint_dir.join(&name);
    let tmp = TmpFile::new(&file);
    // safetensors wants contiguous CPU tensors; the copy is also what lets training continue
    // on the device while the file is written.
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.detach().to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    Tensor::write_safetensors(&cpu, tmp.path()).map_err(tch_err(tmp.path()))?;
    // Hashed as it lies in the file, before it takes its name.
    let (sha256, _) = shards::sha256_file(tmp.path())?;
    tmp.commit().map_err(io(&file))?;
    let meta = CheckpointMeta {
        tensors_sha256: Some(sha256),
        ..meta.clone()
    };
    meta.write_atomic(&meta_path(&file))?;
    let latest = Latest {
        step: meta.step,
        file: name,
    };
    let mut text = serde_json::to_string_pretty(&latest).expect("latest.json serializes");
    text.push('\n');
    schemas::write_atomic(&checkpoint_dir.join(LATEST_FILE), text.as_bytes())?;
    remove_stale_tmp(checkpoint_dir)?;
    Ok(file)
}

/// Deletes the temporary files of writes that never finished: a run killed mid-checkpoint
/// (SIGKILL, a second Ctrl-C, a power cut) cannot clean up after itself. Called once a save is
/// complete, when the run holds the workdir's lock and nothing else writes here.
fn remove_stale_tmp(checkpoint_dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(checkpoint_dir).map_err(io(checkpoint_dir))? {
        let path = entry.map_err(io(checkpoint_dir))?.path();
        let ours = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            (n.starts_with("ckpt_") || n.starts_with(LATEST_FILE)) && n.ends_with(".tmp")
        });
        if ours {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Removes all but the newest `keep` checkpoints (0 keeps everything); never the latest one.
pub fn prune(checkpoint_dir: &Path, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let mut steps: Vec<(u64, PathBuf)> = std::fs::read_dir(checkpoint_dir)
        .map_err(io(checkpoint_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?;
            let step = n.strip_prefix("ckpt_")?.strip_suffix(".safetensors")?;
            Some((step.parse().ok()?, p))
        })
        .collect();
    steps.sort();
    let n = steps.len();
    for (_, p) in steps.into_iter().take(n.saturating_sub(keep)) {
        std::fs::remove_file(meta_path(&p)).map_err(io(&p))?;
        std::fs::remove_file(&p).map_err(io(&p))?;
    }
    Ok(())
}
