//! Drawing images from a trained score network: annealed Langevin dynamics (Algorithm 1) with
//! the config's σ list, T and ε, the authors' data transforms around it, and the snapshot grid
//! the trainer writes; [`image`] turns the floats into bytes and PNG grids.

use std::path::{Path, PathBuf};

use progress::ProgressBar;
use schemas::checkpoint::CheckpointMeta;
use schemas::config::{Config, KeyError};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, CheckpointError, Weights};
use crate::data_transform::DataTransform;
use crate::interpolate::InterpolationNoise;
use crate::langevin::{anneal_langevin, ChainNoise, NoiseSource, SeededNoise};
use crate::models::{self, ModelError, ScoreModel};

mod image;
pub use image::{default_nrow, to_rgb8, write_grid};

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The sampler settings refused by [`Config::validate`].
    #[error(transparent)]
    Config(#[from] KeyError),
    #[error(transparent)]
    Schema(#[from] schemas::SchemaError),
    #[error(transparent)]
    Image(#[from] shards::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", path.display())]
    Model {
        path: PathBuf,
        #[source]
        source: ModelError,
    },
}

/// A network loaded for sampling, with what it was trained with.
pub struct LoadedModel {
    /// The `.safetensors` file the weights came from.
    pub file: PathBuf,
    pub meta: CheckpointMeta,
    /// The effective training config (after calibration) stored in the checkpoint.
    pub config: Config,
    /// The sampler settings of that config.
    pub settings: SamplerSettings,
    /// Whether these are the EMA weights (Technique 5).
    pub ema: bool,
    pub model: Box<dyn ScoreModel>,
    /// Owns the weights; kept alive as long as `model`.
    pub vs: VarStore,
}

/// Loads a checkpoint (a training workdir or a `.safetensors` file) for sampling: rebuilds the
/// network from the config stored in its metadata and copies in the EMA weights (or the raw
/// ones with `Weights::Model`, or when the run kept no EMA).
pub fn load_model(path: &Path, which: Weights, device: Device) -> Result<LoadedModel, SampleError> {
    let file = checkpoint::resolve(path)?;
    let meta = checkpoint::read_meta(&file)?;
    let config = Config::from_json_value(meta.config.clone(), &checkpoint::meta_path(&file))?;
    let which = if config.model.ema {
        which
    } else {
        Weights::Model
    };
    let (_, tensors) = checkpoint::load_weights(&file, which)?;
    let vs = VarStore::new(device);
    let model = models::build(&vs.root(), &config).map_err(|source| SampleError::Model {
        path: file.clone(),
        source,
    })?;
    checkpoint::copy_into(&vs, &tensors, &file.display().to_string())?;
    let settings = SamplerSettings::from_config(&config)?;
    Ok(LoadedModel {
        file,
        meta,
        config,
        settings,
        ema: which == Weights::Ema,
        model,
        vs,
    })
}

/// Everything Algorithm 1 needs besides the network.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSettings {
    /// σ_1 > … > σ_L.
    pub sigmas: Vec<f64>,
    /// T.
    pub n_steps_each: usize,
    /// ε.
    pub step_lr: f64,
    /// Final denoising step x + σ_L² s(x, σ_L).
    pub denoise: bool,
    pub channels: i64,
    pub image_size: i64,
    /// The authors' data transform: applied to x₀, inverted on the result.
    pub transform: DataTransform,
}

impl SamplerSettings {
    /// The sampler of a training config (after calibration: σ list, T and ε are the calibrated
    /// ones). The config is validated here, so command-line overrides written into it are too.
    pub fn from_config(cfg: &Config) -> Result<Self, SampleError> {
        cfg.validate()?;
        Ok(Self {
            sigmas: cfg.sigmas(),
            n_steps_each: cfg.sampling.n_steps_each,
            step_lr: cfg.sampling.step_lr,
            denoise: cfg.sampling.denoise,
            channels: cfg.data.channels as i64,
            image_size: cfg.data.image_size as i64,
            transform: DataTransform::from_config(&cfg.data),
        })
    }

    /// Progress-bar steps for one batch: L·T Langevin steps.
    pub fn steps_per_batch(&self) -> u64 {
        (self.sigmas.len() * self.n_steps_each) as u64
    }
}

/// s(x, σ_i) of a network: the index i broadcast to the batch as the int64 label.
pub fn model_score(model: &dyn ScoreModel) -> impl FnMut(&Tensor, i64) -> Tensor + '_ {
    move |x: &Tensor, i: i64| {
        let y = Tensor::full([x.size()[0]], i, (Kind::Int64, x.device()));
        model.forward(x, &y)
    }
}

/// One batch of `n` chains of Algorithm 1 from x₀ ~ U[0,1] drawn from `noise`; returns float
/// images in [0, 1], NCHW, on the CPU.
pub fn sample_batch(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    n: usize,
    noise: &mut dyn NoiseSource,
    device: Device,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let x = sample_batch_unclamped(model, settings, n, noise, device, progress);
    settings.transform.inverse(&x).to_device(Device::Cpu)
}

/// [`sample_batch`] before the data transform's inverse and its clamp to [0, 1]: the chains'
/// end in the model's space, on `device`, where a diverged chain still shows as NaN or ±inf
/// (the clamp would turn +inf into a white pixel).
pub fn sample_batch_unclamped(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    n: usize,
    noise: &mut dyn NoiseSource,
    device: Device,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let shape = [
        n as i64,
        settings.channels,
        settings.image_size,
        settings.image_size,
    ];
    // The authors' x₀: U[0, 1] through their data_transform (dequantisation draws included).
    let u = noise.uniform(&shape, device);
    let x0 = settings.transform.forward(&u, noise);
    let mut score = model_score(model);
    anneal_langevin(
        &mut score,
        x0,
        &settings.sigmas,
        settings.n_steps_each,
        settings.step_lr,
        settings.denoise,
        noise,
        progress,
    )
}

/// `n` samples in batches of at most `batch_size` chains; chain i always draws from stream i of
/// `seed`, so the result does not depend on `batch_size`.
#[allow(clippy::too_many_arguments)]
pub fn sample_images(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    n: usize,
    batch_size: usize,
    seed: u64,
    device: Device,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let batch_size = batch_size.max(1);
    let mut parts = vec![];
    let mut done = 0;
    while done < n {
        let b = batch_size.min(n - done);
        // Per-chain streams: the samples do not depend on how chains are batched.
        let mut noise = ChainNoise::new(seed, done as u64, b);
        parts.push(sample_batch(
            model, settings, b, &mut noise, device, progress,
        ));
        done += b;
    }
    if parts.is_empty() {
        return Tensor::zeros(
            [
                0,
                settings.channels,
                settings.image_size,
                settings.image_size,
            ],
            (Kind::Float, Device::Cpu),
        );
    }
    Tensor::cat(&parts, 0)
}

/// App. B.2: `rows` rows of N+2 images, each row from one shared x₀ with the noises of its two
/// endpoints mixed by cos/sin. Returns `[rows·(N+2), C, H, W]` in [0, 1] on the CPU.
pub fn sample_interpolations(
    model: &dyn ScoreModel,
    settings: &SamplerSettings,
    rows: usize,
    n_between: usize,
    seed: u64,
    device: Device,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let mut base = SeededNoise::new(seed);
    let mut noise = InterpolationNoise::new(&mut base, rows, n_between);
    let n = rows * noise.per_row() as usize;
    sample_batch(model, settings, n, &mut noise, device, progress)
}

/// The training-time snapshot (SPEC §6): `n` samples of `model` (pass the EMA model) with the
/// config's sampler, seeded, written as a grid PNG to `out_png`.
pub fn snapshot_grid(
    model: &dyn ScoreModel,
    cfg: &Config,
    n: usize,
    seed: u64,
    device: Device,
    out_png: &Path,
) -> Result<(), SampleError> {
    let settings = SamplerSettings::from_config(cfg)?;
    let images = sample_images(model, &settings, n, n, seed, device, None);
    write_grid(&images, default_nrow(n), out_png)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "network" with the exact score of N(0.5, σ² I) at every level: sampling must end near 0.5.
    struct Gauss {
        sigmas: Vec<f64>,
    }
    impl ScoreModel for Gauss {
        fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
            let s = Tensor::from_slice(&self.sigmas)
                .to_kind(Kind::Float)
                .index_select(0, y);
            let var = (&s * &s).view([-1, 1, 1, 1]);
            (x.shallow_clone() * -1.0 + 0.5) / var
        }
    }

    fn settings() -> SamplerSettings {
        SamplerSettings {
            sigmas: schemas::calibration::geometric_sigmas(1.0, 0.01, 10),
            n_steps_each: 10,
            step_lr: 2e-5,
            denoise: true,
            channels: 3,
            image_size: 4,
            transform: DataTransform::default(),
        }
    }

    #[test]
    fn samples_are_seeded_clamped_and_batched_consistently() {
        let st = settings();
        let model = Gauss {
            sigmas: st.sigmas.clone(),
        };
        let a = sample_images(&model, &st, 5, 2, 9, Device::Cpu, None);
        let b = sample_images(&model, &st, 5, 5, 9, Device::Cpu, None);
        assert_eq!(a.size(), [5, 3, 4, 4]);
        assert!(a.equal(&b));
        assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 1.0);
        // Denoised samples of N(0.5, σ_L²) sit at 0.5 up to a fraction of σ_L.
        let err = (a - 0.5).abs().max().double_value(&[]);
        assert!(err < 0.01, "{err}");
    }

    #[test]
    fn snapshot_writes_a_grid_png() {
        let dir = tempfile::tempdir().unwrap();
        let st = settings();
        let model = Gauss {
            sigmas: st.sigmas.clone(),
        };
        let imgs = sample_images(&model, &st, 7, 7, 1, Device::Cpu, None);
        let p = dir.path().join("g.png");
        write_grid(&imgs, default_nrow(7), &p).unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&p).unwrap());
        let reader = png::Decoder::new(file).read_info().unwrap();
        // 3 per row, 3 rows of 4-px images with 2-px padding: 3·6+2 = 20 each way.
        assert_eq!((reader.info().width, reader.info().height), (20, 20));
    }

    /// The draws of `SeededNoise(seed)` in the order an interpolation run makes them (x₀ per row,
    /// then z⁽¹⁾ and z⁽²⁾ per row at every step), handing the sampler only one of the two
    /// noises: a row's end chain, run on its own.
    struct OneEnd {
        draws: SeededNoise,
        second: bool,
    }
    impl NoiseSource for OneEnd {
        fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
            self.draws.uniform(shape, device)
        }
        fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
            let z1 = self.draws.normal(shape, device);
            let z2 = self.draws.normal(shape, device);
            if self.second {
                z2
            } else {
                z1
            }
        }
    }

    #[test]
    fn interpolation_rows_share_their_start() {
        let (rows, between, seed) = (2, 3, 4);
        let per = between + 2;
        // Without the denoising step every chain would end at exactly 0.5, the Gaussian's mean.
        let st = SamplerSettings {
            denoise: false,
            ..settings()
        };
        let model = Gauss {
            sigmas: st.sigmas.clone(),
        };
        // No Langevin step: each image is its chain's x₀.
        let still = SamplerSettings {
            n_steps_each: 0,
            ..st.clone()
        };
        let x0 = sample_interpolations(&model, &still, rows, between, seed, Device::Cpu, None);
        assert_eq!(x0.size(), [(rows * per) as i64, 3, 4, 4]);
        for r in 0..rows {
            for k in 1..per {
                let (a, b) = ((r * per) as i64, (r * per + k) as i64);
                assert!(
                    x0.get(b).equal(&x0.get(a)),
                    "row {r}: image {k} has its own x₀"
                );
            }
        }
        assert!(!x0.get(0).equal(&x0.get(per as i64)), "two rows share x₀");

        // The two ends of a row are the chains from its x₀ driven by z⁽¹⁾ alone and z⁽²⁾ alone.
        let x = sample_interpolations(&model, &st, rows, between, seed, Device::Cpu, None);
        for (second, k) in [(false, 0), (true, per - 1)] {
            let mut noise = OneEnd {
                draws: SeededNoise::new(seed),
                second,
            };
            let ends = sample_batch(&model, &st, rows, &mut noise, Device::Cpu, None);
            for r in 0..rows {
                let got = x.get((r * per + k) as i64);
                assert!(
                    got.allclose(&ends.get(r as i64), 1e-6, 1e-6, false),
                    "row {r}: image {k} is not the chain of its own x₀ and z({})",
                    1 + second as u8
                );
            }
        }
        let (first, last) = (x.get(0), x.get(per as i64 - 1));
        assert!(
            !first.allclose(&last, 1e-4, 1e-4, false),
            "the ends coincide"
        );
    }
}
