//! Score networks (paper Table 2–3, App. B.1). Parameter names are the authors' state_dict keys.
//!
//! [`build`] picks the architecture like the authors' `get_model` and registers every tensor
//! under its PyTorch name (`begin_conv.weight`, `res1.0.conv1.weight`, …, buffer `sigmas`), so
//! weights move both ways through safetensors. [`plan`] gives the same architecture as data,
//! for `ncsn model-info`.

pub mod layers;
pub mod ncsnv2;
pub mod net;
pub mod normalization;
pub mod summary;

use std::collections::BTreeMap;

use schemas::config::{Config, KeyError};
use tch::nn::{Path, VarStore};
use tch::Tensor;

pub use layers::Act;
pub use net::{Plan, RefineNet, Stage};

/// s_θ(x, σ_y). `x` is a float batch in [0, 1] (NCHW, as the authors' loader gives it); `y` holds
/// int64 noise-level indices into the model's `sigmas` buffer. NCSNv2 divides its output by
/// σ_y (Technique 3), so the return value is the score itself.
pub trait ScoreModel: Send {
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor;
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A config key the network cannot take, from [`Config::validate`] or the model table.
    #[error(transparent)]
    Config(#[from] KeyError),
}

fn config_err(key: &'static str, msg: impl Into<String>) -> ModelError {
    ModelError::Config(KeyError::new(key, msg))
}

/// The architectures of Tables 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Table 3a, 32–64 px.
    NcsnV2,
    /// Table 3b, 96–128 px.
    NcsnV2Deeper,
    /// Table 3c, 256 px.
    NcsnV2Deepest,
    /// Table 2a: the original NCSN, CondInstanceNorm++, output not divided by σ.
    Ncsn,
    /// Table 2b.
    NcsnDeeper,
}

impl Arch {
    pub const ALL: [Arch; 5] = [
        Arch::NcsnV2,
        Arch::NcsnV2Deeper,
        Arch::NcsnV2Deepest,
        Arch::Ncsn,
        Arch::NcsnDeeper,
    ];

    /// The `model.arch` / CheckpointMeta spelling.
    pub fn name(self) -> &'static str {
        match self {
            Arch::NcsnV2 => "ncsnv2",
            Arch::NcsnV2Deeper => "ncsnv2_deeper",
            Arch::NcsnV2Deepest => "ncsnv2_deepest",
            Arch::Ncsn => "ncsn",
            Arch::NcsnDeeper => "ncsn_deeper",
        }
    }

    /// The authors' class name.
    pub fn class_name(self) -> &'static str {
        match self {
            Arch::NcsnV2 => "NCSNv2",
            Arch::NcsnV2Deeper => "NCSNv2Deeper",
            Arch::NcsnV2Deepest => "NCSNv2Deepest",
            Arch::Ncsn => "NCSN",
            Arch::NcsnDeeper => "NCSNdeeper",
        }
    }

    /// Where the paper describes it.
    pub fn table(self) -> &'static str {
        match self {
            Arch::NcsnV2 => "Table 3a",
            Arch::NcsnV2Deeper => "Table 3b",
            Arch::NcsnV2Deepest => "Table 3c",
            Arch::Ncsn => "Table 2a",
            Arch::NcsnDeeper => "Table 2b",
        }
    }

    /// σ-conditional normalisation instead of dividing the output by σ (Technique 3).
    pub fn conditional(self) -> bool {
        matches!(self, Arch::Ncsn | Arch::NcsnDeeper)
    }

    fn stages(self, ngf: i64) -> Vec<Stage> {
        match self {
            Arch::NcsnV2 | Arch::Ncsn => ncsnv2::ncsnv2(ngf),
            Arch::NcsnV2Deeper | Arch::NcsnDeeper => ncsnv2::ncsnv2_deeper(ngf),
            Arch::NcsnV2Deepest => ncsnv2::ncsnv2_deepest(ngf),
        }
    }

    /// The authors' `get_model`: CIFAR10/CELEBA → NCSNv2, LSUN → Deeper, FFHQ → Deepest.
    /// `model.arch` overrides; `ncsn` picks Table 2a or 2b by image size. Other datasets (our
    /// folders) go by image size like Table 3: ≤ 64 px, ≤ 128 px, larger.
    pub fn for_config(cfg: &Config) -> Result<Arch, ModelError> {
        let size = cfg.data.image_size;
        if let Some(name) = &cfg.model.arch {
            return match name.as_str() {
                "ncsn" if size > 64 => Ok(Arch::NcsnDeeper),
                other => Arch::ALL
                    .into_iter()
                    .find(|a| a.name() == other)
                    .ok_or_else(|| {
                        config_err(
                            "model.arch",
                            format!(
                                "unknown architecture {other:?} (expected one of {})",
                                Arch::ALL.map(|a| a.name()).join(", ")
                            ),
                        )
                    }),
            };
        }
        Ok(match cfg.data.dataset.as_str() {
            "CIFAR10" | "CELEBA" => Arch::NcsnV2,
            "LSUN" => Arch::NcsnV2Deeper,
            "FFHQ" => Arch::NcsnV2Deepest,
            _ if size <= 64 => Arch::NcsnV2,
            _ if size <= 128 => Arch::NcsnV2Deeper,
            _ => Arch::NcsnV2Deepest,
        })
    }
}

/// The architecture `cfg` asks for: the single entry point for checking a config against the
/// model. It runs [`Config::validate`] (every key, ranges, NaN) and then the checks that need
/// the model table: `model.arch`, `model.nonlinearity`, and an image size the encoder can halve.
pub fn plan(cfg: &Config) -> Result<Plan, ModelError> {
    cfg.validate()?;
    let arch = Arch::for_config(cfg)?;
    let m = &cfg.model;
    let act = Act::parse(&m.nonlinearity).ok_or_else(|| {
        config_err(
            "model.nonlinearity",
            format!(
                "unknown {:?} (expected elu, relu, lrelu or swish)",
                m.nonlinearity
            ),
        )
    })?;
    let plan = Plan {
        arch,
        ngf: m.ngf,
        channels: cfg.data.channels as i64,
        image_size: cfg.data.image_size as i64,
        stages: arch.stages(m.ngf),
        act,
        map_input: !cfg.data.logit_transform && !cfg.data.rescaled,
    };
    let f = plan.downsampling();
    if plan.image_size < f || plan.image_size % f != 0 {
        return Err(config_err(
            "data.image_size",
            format!(
                "{} px does not fit {} ({}), which halves the image {} time(s): use a multiple of {f}",
                plan.image_size,
                arch.class_name(),
                arch.table(),
                f.trailing_zeros()
            ),
        ));
    }
    Ok(plan)
}

/// The score network for `cfg`, its tensors registered under `p` with the authors' names,
/// plus the non-trainable float32 `sigmas` (from `cfg.sigmas()`).
pub fn build(p: &Path, cfg: &Config) -> Result<Box<dyn ScoreModel>, ModelError> {
    Ok(Box::new(build_net(p, cfg)?))
}

/// [`build`] with the concrete type (for `unscaled`, the pre-σ output).
pub fn build_net(p: &Path, cfg: &Config) -> Result<RefineNet, ModelError> {
    let plan = plan(cfg)?;
    let sigmas: Vec<f32> = cfg.sigmas().into_iter().map(|s| s as f32).collect();
    let sigmas = Tensor::from_slice(&sigmas).to_device(p.device());
    Ok(net::refine_net(p, &plan, sigmas))
}

/// Trainable parameter count (the authors' `sum(p.numel() for p in model.parameters())`).
pub fn parameter_count(vs: &VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Parameter count per top-level module (`begin_conv`, `res1`, …), like the rows of Table 3.
pub fn parameters_by_module(vs: &VarStore) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (name, t) in vs.variables() {
        // Buffers (`sigmas`) are registered without gradient.
        if !t.requires_grad() {
            continue;
        }
        let top = name.split('.').next().unwrap_or(&name).to_string();
        *out.entry(top).or_insert(0) += t.numel() as i64;
    }
    out
}
