//! The training config, in the authors' YAML layout (`configs/*.yml` of ermongroup/ncsnv2):
//! sections `training`, `sampling`, `fast_fid`, `test`, `data`, `model`, `optim`.
//!
//! One source of truth: the types and their serde defaults below are the only defaults, and
//! [`Config::validate`] is the only place that accepts or refuses a config. Every way of
//! obtaining one ([`Config::read`], [`Config::from_yaml_str`], [`Config::from_json_value`] for
//! the copy inside a checkpoint) validates it; code that changes a config afterwards (command
//! line overrides, calibration) validates again before using it. Unknown keys are refused so a
//! typo never silently falls back to a default. README.md ("Config keys") says what each key
//! does in ncsn.

mod validate;
mod yaml;

use std::path::Path;

use crate::calibration::Calibration;
use crate::SchemaError;

pub use validate::KeyError;
pub use yaml::pyyaml_float;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub training: Training,
    pub sampling: Sampling,
    /// The authors' `main.py --fast_fid` settings: the defaults of `ncsn fid --workdir W --ckpts`
    /// (a sweep over checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_fid: Option<FastFid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    pub data: Data,
    pub model: Model,
    pub optim: Optim,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub batch_size: usize,
    /// Training stops after this many passes over the data (or `n_iters` steps, if sooner).
    #[serde(default = "d_epochs")]
    pub n_epochs: u64,
    pub n_iters: u64,
    pub snapshot_freq: u64,
    #[serde(default = "d_true")]
    pub snapshot_sampling: bool,
    #[serde(default = "d_anneal")]
    pub anneal_power: f64,
    /// Only `false`: per-σ test losses are not logged.
    #[serde(default)]
    pub log_all_sigmas: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub batch_size: usize,
    /// Only `false`: chains start from U[0, 1], not from data.
    #[serde(default)]
    pub data_init: bool,
    pub step_lr: f64,
    pub n_steps_each: usize,
    /// The authors' `--sample` checkpoint; ncsn takes `--workdir`/`--checkpoint`.
    #[serde(default)]
    pub ckpt_id: Option<u64>,
    /// Only `true`: the sampler keeps the final images, not every step.
    #[serde(default = "d_true")]
    pub final_only: bool,
    /// Only `false`: `ncsn fid --checkpoint F --n N` samples and scores a checkpoint.
    #[serde(default)]
    pub fid: bool,
    #[serde(default = "d_true")]
    pub denoise: bool,
    /// Read by the authors' code only with `fid: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_samples4fid: Option<u64>,
    /// Only `false`.
    #[serde(default)]
    pub inpainting: bool,
    /// Only `false`: `ncsn sample --interpolate N` interpolates.
    #[serde(default)]
    pub interpolation: bool,
    /// Read by the authors' code only with `interpolation: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_interpolations: Option<usize>,
}

/// The authors' `main.py --fast_fid` run: FID of a range of checkpoints. ncsn's sweep (`ncsn
/// fid --workdir W --ckpts`) takes its defaults from here.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastFid {
    /// Langevin chains run together.
    pub batch_size: usize,
    /// Samples per checkpoint (the paper: 1 000).
    pub num_samples: u64,
    /// ε and T of the sweep's sampler (calibration sets them like `sampling`'s).
    pub step_lr: f64,
    pub n_steps_each: usize,
    /// The range of training steps swept (inclusive).
    pub begin_ckpt: u64,
    pub end_ckpt: u64,
    /// Only `false`: the authors' per-level sampler statistics are not printed.
    pub verbose: bool,
    /// Only `false`: no averaging of the scores of neighbouring checkpoints.
    pub ensemble: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    /// The authors' `main.py --test` range of checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begin_ckpt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ckpt: Option<u64>,
    /// Rows of the fixed held-out batch of the test loss (at most `training.batch_size`).
    pub batch_size: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// `CIFAR10`, `CELEBA`, `LSUN`, `FFHQ` (the authors' names) or anything for a folder.
    pub dataset: String,
    /// The authors' LSUN folder; ncsn trains on what `--data` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub image_size: u32,
    pub channels: u32,
    #[serde(default)]
    pub logit_transform: bool,
    #[serde(default)]
    pub uniform_dequantization: bool,
    #[serde(default)]
    pub gaussian_dequantization: bool,
    #[serde(default = "d_true")]
    pub random_flip: bool,
    #[serde(default)]
    pub rescaled: bool,
    /// The authors' DataLoader processes; ncsn's loader has its own threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_workers: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub sigma_begin: f64,
    pub num_classes: usize,
    #[serde(default = "d_true")]
    pub ema: bool,
    #[serde(default = "d_ema_rate")]
    pub ema_rate: f64,
    /// Only `false` (the authors' NCSNv2 never reads it).
    #[serde(default)]
    pub spec_norm: bool,
    /// Only `geometric` (the paper's schedule).
    #[serde(default = "d_geometric")]
    pub sigma_dist: String,
    pub sigma_end: f64,
    /// Only `InstanceNorm++`.
    pub normalization: String,
    pub nonlinearity: String,
    pub ngf: i64,
    /// Architecture override: `ncsnv2`, `ncsnv2_deeper`, `ncsnv2_deepest` or `ncsn`. When
    /// absent it is chosen from `data.dataset` like the authors' `get_model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Optim {
    /// Only 0 (App. B.1).
    #[serde(default)]
    pub weight_decay: f64,
    /// Only `Adam`.
    pub optimizer: String,
    pub lr: f64,
    #[serde(default = "d_beta1")]
    pub beta1: f64,
    /// Only `false`.
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(default = "d_eps")]
    pub eps: f64,
}

fn d_true() -> bool {
    true
}
fn d_epochs() -> u64 {
    500_000
}
fn d_anneal() -> f64 {
    2.0
}
fn d_ema_rate() -> f64 {
    0.999
}
fn d_geometric() -> String {
    "geometric".into()
}
fn d_beta1() -> f64 {
    0.9
}
fn d_eps() -> f64 {
    1e-8
}

impl Config {
    /// Parses and validates a config; errors name the file and the key.
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<Self, SchemaError> {
        let cfg: Self = serde_yaml::from_str(text).map_err(|e| {
            SchemaError::Invalid(format!("{}: invalid config: {e}", path.display()))
        })?;
        cfg.validated(path)
    }

    pub fn read(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text, path)
    }

    /// The config stored in a checkpoint's metadata (`path` names that file in errors).
    pub fn from_json_value(value: serde_json::Value, path: &Path) -> Result<Self, SchemaError> {
        let cfg: Self = serde_json::from_value(value).map_err(|e| {
            SchemaError::Invalid(format!(
                "{}: the stored training config is not valid: {e}",
                path.display()
            ))
        })?;
        cfg.validated(path)
    }

    fn validated(self, path: &Path) -> Result<Self, SchemaError> {
        self.validate()
            .map_err(|e| SchemaError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(self)
    }

    /// The YAML ncsn writes (`WORKDIR/config.yml`): the authors' layout, with every float
    /// spelled so that PyYAML (YAML 1.1) reads a float, so the authors' code loads it too.
    pub fn to_yaml(&self) -> String {
        yaml::to_yaml(self)
    }

    /// Values from `calibration.json` fill the noise schedule and the sampler settings.
    pub fn apply_calibration(&mut self, c: &Calibration) {
        self.model.sigma_begin = c.sigma_begin;
        self.model.sigma_end = c.sigma_end;
        self.model.num_classes = c.num_classes;
        self.sampling.n_steps_each = c.n_steps_each;
        self.sampling.step_lr = c.step_lr;
        // The sweep samples from the same σ list, so it takes the ε and T computed for it.
        if let Some(f) = &mut self.fast_fid {
            f.n_steps_each = c.n_steps_each;
            f.step_lr = c.step_lr;
        }
    }

    /// The σ list the model and sampler use (geometric, like the authors').
    pub fn sigmas(&self) -> Vec<f64> {
        crate::calibration::geometric_sigmas(
            self.model.sigma_begin,
            self.model.sigma_end,
            self.model.num_classes,
        )
    }

    /// Keys present in this config that only the authors' other commands read (`main.py
    /// --test`, `--sample`) or that describe their data loading. (`fast_fid` is the default of
    /// `ncsn fid --ckpts`.) They are kept so
    /// that the authors' files load and `WORKDIR/config.yml` still runs in the authors' code,
    /// but nothing in ncsn changes with them; `ncsn train` names them in a note.
    pub fn unused_keys(&self) -> Vec<&'static str> {
        let t = self.test.as_ref();
        [
            ("test.begin_ckpt", t.is_some_and(|t| t.begin_ckpt.is_some())),
            ("test.end_ckpt", t.is_some_and(|t| t.end_ckpt.is_some())),
            ("sampling.ckpt_id", self.sampling.ckpt_id.is_some()),
            (
                "sampling.num_samples4fid",
                self.sampling.num_samples4fid.is_some(),
            ),
            (
                "sampling.n_interpolations",
                self.sampling.n_interpolations.is_some(),
            ),
            ("data.category", self.data.category.is_some()),
            ("data.num_workers", self.data.num_workers.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect()
    }
}

#[cfg(test)]
mod tests;
