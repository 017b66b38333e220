//! The training config, in the authors' YAML layout (`configs/*.yml` of ermongroup/ncsnv2):
//! sections `training`, `sampling`, `data`, `model`, `optim`. Unknown keys are refused so a
//! typo never silently falls back to a default.

use std::path::Path;

use crate::calibration::Calibration;
use crate::SchemaError;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub training: Training,
    pub sampling: Sampling,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_fid: Option<serde_yaml::Value>,
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
    #[serde(default = "d_epochs")]
    pub n_epochs: u64,
    pub n_iters: u64,
    pub snapshot_freq: u64,
    #[serde(default = "d_true")]
    pub snapshot_sampling: bool,
    #[serde(default = "d_anneal")]
    pub anneal_power: f64,
    #[serde(default)]
    pub log_all_sigmas: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub batch_size: usize,
    #[serde(default)]
    pub data_init: bool,
    pub step_lr: f64,
    pub n_steps_each: usize,
    #[serde(default)]
    pub ckpt_id: Option<u64>,
    #[serde(default = "d_true")]
    pub final_only: bool,
    #[serde(default)]
    pub fid: bool,
    #[serde(default = "d_true")]
    pub denoise: bool,
    #[serde(default)]
    pub num_samples4fid: Option<u64>,
    #[serde(default)]
    pub inpainting: bool,
    #[serde(default)]
    pub interpolation: bool,
    #[serde(default = "d_interp")]
    pub n_interpolations: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    pub begin_ckpt: u64,
    pub end_ckpt: u64,
    pub batch_size: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// `CIFAR10`, `CELEBA`, `LSUN`, `FFHQ` (the authors' names) or anything for a folder.
    pub dataset: String,
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
    #[serde(default)]
    pub num_workers: usize,
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
    #[serde(default)]
    pub spec_norm: bool,
    #[serde(default = "d_geometric")]
    pub sigma_dist: String,
    pub sigma_end: f64,
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
    #[serde(default)]
    pub weight_decay: f64,
    pub optimizer: String,
    pub lr: f64,
    #[serde(default = "d_beta1")]
    pub beta1: f64,
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
fn d_interp() -> usize {
    15
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
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<Self, SchemaError> {
        serde_yaml::from_str(text)
            .map_err(|e| SchemaError::Invalid(format!("{}: invalid config: {e}", path.display())))
    }

    pub fn read(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text, path)
    }

    /// Values from `calibration.json` fill the noise schedule and the sampler settings.
    pub fn apply_calibration(&mut self, c: &Calibration) {
        self.model.sigma_begin = c.sigma_begin;
        self.model.sigma_end = c.sigma_end;
        self.model.num_classes = c.num_classes;
        self.sampling.n_steps_each = c.n_steps_each;
        self.sampling.step_lr = c.step_lr;
    }

    /// The σ list the model and sampler use (geometric, like the authors').
    pub fn sigmas(&self) -> Vec<f64> {
        crate::calibration::geometric_sigmas(
            self.model.sigma_begin,
            self.model.sigma_end,
            self.model.num_classes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The authors' configs/cifar10.yml, verbatim.
    const CIFAR10: &str = r#"
training:
  batch_size: 128
  n_epochs: 500000
  n_iters: 300001
  snapshot_freq: 5000
  snapshot_sampling: true
  anneal_power: 2
  log_all_sigmas: false

sampling:
  batch_size: 100
  data_init: false
  step_lr: 0.0000062
  n_steps_each: 5
  ckpt_id: 300000
  final_only: true
  fid: false
  denoise: true
  num_samples4fid: 10000
  inpainting: false
  interpolation: false
  n_interpolations: 15

fast_fid:
  batch_size: 1000
  num_samples: 1000
  step_lr: 0.0000062
  n_steps_each: 5
  begin_ckpt: 5000
  end_ckpt: 300000
  verbose: false
  ensemble: false

test:
  begin_ckpt: 5000
  end_ckpt: 300000
  batch_size: 100

data:
  dataset: "CIFAR10"
  image_size: 32
  channels: 3
  logit_transform: false
  uniform_dequantization: false
  gaussian_dequantization: false
  random_flip: true
  rescaled: false
  num_workers: 4

model:
  sigma_begin: 50
  num_classes: 232
  ema: true
  ema_rate: 0.999
  spec_norm: false
  sigma_dist: geometric
  sigma_end: 0.01
  normalization: InstanceNorm++
  nonlinearity: elu
  ngf: 128

optim:
  weight_decay: 0.000
  optimizer: "Adam"
  lr: 0.0001
  beta1: 0.9
  amsgrad: false
  eps: 0.00000001
"#;

    #[test]
    fn reads_the_authors_cifar10_config() {
        let c = Config::from_yaml_str(CIFAR10, Path::new("cifar10.yml")).unwrap();
        assert_eq!(c.training.batch_size, 128);
        assert_eq!(c.model.num_classes, 232);
        assert_eq!(c.sampling.step_lr, 6.2e-6);
        assert_eq!(c.sigmas().len(), 232);
        assert_eq!(c.sigmas()[0] as f32, 50.0); // exp(ln 50) in f64 is 49.99999999999999, as in numpy
    }

    #[test]
    fn a_typo_is_an_error_naming_file_and_key() {
        let text = CIFAR10.replace("ema_rate", "ema_rat");
        let err = Config::from_yaml_str(&text, Path::new("my.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.yml") && err.contains("ema_rat"), "{err}");
    }
}
