//! The authors' data transforms (`datasets/__init__.py` of ermongroup/ncsnv2): what the network
//! sees instead of the [0, 1] pixels, and the way back.
//!
//! `data_transform` runs on every training batch and on the held-out batch of the test loss
//! (after the uint8 → float conversion, before the noise), and on the sampler's x₀;
//! `inverse_data_transform` on the sampler's output. In their order:
//! 1. `uniform_dequantization`: X/256·255 + U/256, U ~ U[0, 1);
//! 2. `gaussian_dequantization`: X + 0.01·N(0, 1);
//! 3. `rescaled`: 2X − 1, or else `logit_transform`: logit(λ + (1 − 2λ)X), λ = 1e-6.
//!
//! The dequantisation noise comes from the caller's [`NoiseSource`]: the trainer's per-step
//! seeded torch generator ([`TorchRng`]), so `--resume` replays it exactly, or the sampler's
//! seeded chains.

use schemas::config::Data;
use tch::{Device, Kind, Tensor};

use crate::langevin::NoiseSource;

/// λ of the authors' `logit_transform`.
pub const LOGIT_LAMBDA: f64 = 1e-6;

/// Which of the authors' transforms a config turns on (`data.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataTransform {
    pub uniform_dequantization: bool,
    pub gaussian_dequantization: bool,
    pub rescaled: bool,
    pub logit_transform: bool,
}

impl DataTransform {
    pub fn from_config(d: &Data) -> Self {
        Self {
            uniform_dequantization: d.uniform_dequantization,
            gaussian_dequantization: d.gaussian_dequantization,
            rescaled: d.rescaled,
            logit_transform: d.logit_transform,
        }
    }

    /// The authors' `data_transform`: images in [0, 1] to the network's input space.
    pub fn forward(&self, x: &Tensor, noise: &mut dyn NoiseSource) -> Tensor {
        let mut x = x.shallow_clone();
        if self.uniform_dequantization {
            x = &x / 256.0 * 255.0 + noise.uniform(&x.size(), x.device()) / 256.0;
        }
        if self.gaussian_dequantization {
            x = &x + noise.normal(&x.size(), x.device()) * 0.01;
        }
        if self.rescaled {
            x * 2.0 - 1.0
        } else if self.logit_transform {
            logit(&x)
        } else {
            x
        }
    }

    /// The authors' `inverse_data_transform`, ending with their clamp to [0, 1].
    pub fn inverse(&self, x: &Tensor) -> Tensor {
        let x = if self.logit_transform {
            x.sigmoid()
        } else if self.rescaled {
            (x + 1.0) / 2.0
        } else {
            x.shallow_clone()
        };
        x.clamp(0.0, 1.0)
    }
}

/// The authors' `logit_transform(image, lam=1e-6)`.
fn logit(x: &Tensor) -> Tensor {
    let p = x * (1.0 - 2.0 * LOGIT_LAMBDA) + LOGIT_LAMBDA;
    p.log() - p.neg().log1p()
}

/// torch's global generator (`torch.rand_like`, `torch.randn_like`), which the trainer seeds
/// before each step's draws.
pub struct TorchRng;

impl NoiseSource for TorchRng {
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
        Tensor::rand(shape, (Kind::Float, device))
    }

    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        Tensor::randn(shape, (Kind::Float, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels() -> Tensor {
        Tensor::from_slice(&[0.0f32, 0.25, 0.5, 1.0]).view([1, 1, 2, 2])
    }

    fn max_abs(a: &Tensor) -> f64 {
        a.abs().max().double_value(&[])
    }

    #[test]
    fn off_is_the_identity() {
        let x = pixels();
        let t = DataTransform::default();
        assert!(t.forward(&x, &mut TorchRng).equal(&x));
        assert!(t.inverse(&x).equal(&x));
    }

    #[test]
    fn uniform_dequantisation_spreads_each_level_over_its_bin() {
        let t = DataTransform {
            uniform_dequantization: true,
            ..Default::default()
        };
        tch::manual_seed(0);
        let x = pixels().repeat([1000, 1, 1, 1]);
        let y = t.forward(&x, &mut TorchRng);
        // X/256·255 + U/256 lies in [X·255/256, X·255/256 + 1/256).
        let low = &x / 256.0 * 255.0;
        let d = &y - &low;
        assert!(d.min().double_value(&[]) >= 0.0);
        assert!(d.max().double_value(&[]) < 1.0 / 256.0);
        // U is uniform: its mean is 1/512.
        let mean = d.mean(Kind::Float).double_value(&[]);
        assert!((mean - 1.0 / 512.0).abs() < 1e-4, "{mean}");
    }

    #[test]
    fn gaussian_dequantisation_adds_noise_of_std_001() {
        let t = DataTransform {
            gaussian_dequantization: true,
            ..Default::default()
        };
        tch::manual_seed(1);
        let x = Tensor::zeros([10_000], (Kind::Float, Device::Cpu));
        let y = t.forward(&x, &mut TorchRng);
        let std = y.std(true).double_value(&[]);
        assert!((std - 0.01).abs() < 5e-4, "{std}");
    }

    #[test]
    fn rescaled_and_logit_invert() {
        let x = pixels();
        let rescaled = DataTransform {
            rescaled: true,
            ..Default::default()
        };
        let y = rescaled.forward(&x, &mut TorchRng);
        let want = Tensor::from_slice(&[-1.0f32, -0.5, 0.0, 1.0]).view([1, 1, 2, 2]);
        assert!(y.equal(&want));
        assert!(max_abs(&(rescaled.inverse(&y) - &x)) < 1e-7);

        let logit = DataTransform {
            logit_transform: true,
            ..Default::default()
        };
        let y = logit.forward(&x, &mut TorchRng);
        // logit(1e-6) = ln(1e-6 / (1 - 1e-6)) ≈ -13.8155; logit(0.5) = 0.
        assert!((y.double_value(&[0, 0, 0, 0]) + 13.8155).abs() < 1e-3);
        assert!(y.double_value(&[0, 0, 1, 0]).abs() < 1e-6);
        assert!(max_abs(&(logit.inverse(&y) - &x)) < 1e-5);
    }

    #[test]
    fn the_inverse_clamps_to_the_unit_interval() {
        let t = DataTransform {
            rescaled: true,
            ..Default::default()
        };
        let y = Tensor::from_slice(&[-3.0f32, 2.0]);
        assert_eq!(Vec::<f32>::try_from(t.inverse(&y)).unwrap(), [0.0, 1.0]);
    }

    #[test]
    fn dequantisation_comes_before_rescaling() {
        // Uniform dequantisation then 2X - 1: a pixel of 1 ends in [2·255/256 - 1, 1).
        let t = DataTransform {
            uniform_dequantization: true,
            rescaled: true,
            ..Default::default()
        };
        tch::manual_seed(2);
        let x = Tensor::ones([1000], (Kind::Float, Device::Cpu));
        let y = t.forward(&x, &mut TorchRng);
        assert!(y.min().double_value(&[]) >= 2.0 * 255.0 / 256.0 - 1.0 - 1e-6);
        assert!(y.max().double_value(&[]) < 1.0);
    }
}
