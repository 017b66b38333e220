//! Annealed Langevin dynamics (paper Algorithm 1) with the final denoising step, over any score
//! function: a trained network, or the exact score of a Gaussian / mixture in the tests.
//!
//! Randomness comes from a [`NoiseSource`] rather than torch's global generator, so sampling
//! during training never disturbs the trainer's random stream, and the same seed gives the same
//! samples on CPU and GPU.

use progress::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::rng::{mix64, GOLDEN_GAMMA};
use tch::{Device, Kind, Tensor};

/// Where the sampler's randomness comes from: the initial x₀ and every z_t of Algorithm 1.
pub trait NoiseSource {
    /// x₀ ~ U[0,1]^shape (float32).
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor;
    /// z ~ N(0, I) of the given shape (float32).
    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor;
}

/// A seeded, device-independent noise source: ChaCha8 on the CPU, Box–Muller for normals,
/// copied to the device. The same seed gives the same numbers everywhere.
pub struct SeededNoise {
    rng: ChaCha8Rng,
}

impl SeededNoise {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn normals(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
            let r = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
            let theta = 2.0 * std::f64::consts::PI * self.unit();
            out.push((r * theta.cos()) as f32);
            out.push((r * theta.sin()) as f32);
        }
        out.truncate(n);
        out
    }
}

/// One independent seeded stream per chain (row of the batch): chain `first + k` draws the same
/// numbers whatever batch it runs in, so samples do not depend on the batch size.
pub struct ChainNoise {
    chains: Vec<SeededNoise>,
}

impl ChainNoise {
    /// Streams for chains `first .. first + n` of the run seeded by `seed`.
    pub fn new(seed: u64, first: u64, n: usize) -> Self {
        let chains = (first..first + n as u64)
            .map(|i| {
                // SplitMix64's output function of (seed, chain) so neighbouring chains get
                // unrelated streams.
                SeededNoise::new(mix64(seed ^ i.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)))
            })
            .collect();
        Self { chains }
    }

    fn draw(
        &mut self,
        shape: &[i64],
        device: Device,
        f: impl Fn(&mut SeededNoise, usize) -> Vec<f32>,
    ) -> Tensor {
        assert_eq!(
            shape[0] as usize,
            self.chains.len(),
            "one noise stream per chain"
        );
        let per = numel(&shape[1..]);
        let mut v = Vec::with_capacity(per * self.chains.len());
        for c in &mut self.chains {
            v.extend(f(c, per));
        }
        Tensor::from_slice(&v).view(shape).to_device(device)
    }
}

impl NoiseSource for ChainNoise {
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
        self.draw(shape, device, |c, n| {
            (0..n).map(|_| c.unit() as f32).collect()
        })
    }

    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        self.draw(shape, device, |c, n| c.normals(n))
    }
}

fn numel(shape: &[i64]) -> usize {
    shape.iter().map(|&d| d as usize).product()
}

impl NoiseSource for SeededNoise {
    fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
        let v: Vec<f32> = (0..numel(shape)).map(|_| self.unit() as f32).collect();
        Tensor::from_slice(&v).view(shape).to_device(device)
    }

    fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        let v = self.normals(numel(shape));
        Tensor::from_slice(&v).view(shape).to_device(device)
    }
}

/// α_i = ε σ_i² / σ_L², the step size of Algorithm 1 at noise level σ_i.
pub fn step_size(step_lr: f64, sigma: f64, sigma_last: f64) -> f64 {
    step_lr * (sigma / sigma_last).powi(2)
}

/// `n_steps` Langevin steps at one noise level (Eq. 1 with the score s(x, σ_level)):
/// x ← x + α s(x, σ) + √(2α) z.
pub fn langevin(
    score: &mut dyn FnMut(&Tensor, i64) -> Tensor,
    mut x: Tensor,
    level: i64,
    alpha: f64,
    n_steps: usize,
    noise: &mut dyn NoiseSource,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    let (shape, device) = (x.size(), x.device());
    let noise_scale = (2.0 * alpha).sqrt();
    for _ in 0..n_steps {
        let grad = score(&x, level);
        let z = noise.normal(&shape, device);
        x = x + grad * alpha + z * noise_scale;
        if let Some(pb) = progress {
            pb.inc(1);
        }
    }
    x
}

/// Algorithm 1: for each σ_i (largest first) `n_steps_each` Langevin steps with α_i = ε σ_i²/σ_L²,
/// then, when `denoise`, the final step x + σ_L² s(x, σ_L) (Tweedie's formula, §2.2).
/// `score(x, i)` is s(x, σ_i) for the index i into `sigmas`. The result is NOT clamped: callers
/// that make images clamp to [0, 1].
#[allow(clippy::too_many_arguments)]
pub fn anneal_langevin(
    score: &mut dyn FnMut(&Tensor, i64) -> Tensor,
    x0: Tensor,
    sigmas: &[f64],
    n_steps_each: usize,
    step_lr: f64,
    denoise: bool,
    noise: &mut dyn NoiseSource,
    progress: Option<&ProgressBar>,
) -> Tensor {
    let Some(&sigma_last) = sigmas.last() else {
        return x0;
    };
    let _guard = tch::no_grad_guard();
    let mut x = x0;
    for (i, &sigma) in sigmas.iter().enumerate() {
        let alpha = step_size(step_lr, sigma, sigma_last);
        x = langevin(score, x, i as i64, alpha, n_steps_each, noise, progress);
    }
    if denoise {
        let last = (sigmas.len() - 1) as i64;
        let s = score(&x, last);
        x = &x + s * (sigma_last * sigma_last);
    }
    x
}

/// float32 x₀ ~ U[0,1] of `shape`: the paper's initialisation.
pub fn uniform_init(noise: &mut dyn NoiseSource, shape: &[i64], device: Device) -> Tensor {
    noise.uniform(shape, device).to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_size_scales_with_sigma_squared() {
        assert_eq!(step_size(2e-5, 0.01, 0.01), 2e-5);
        assert!((step_size(6.2e-6, 50.0, 0.01) - 6.2e-6 * 25e6).abs() < 1e-9);
    }

    #[test]
    fn seeded_noise_is_deterministic_and_has_the_right_moments() {
        let a = SeededNoise::new(3).normal(&[4, 1000], Device::Cpu);
        let b = SeededNoise::new(3).normal(&[4, 1000], Device::Cpu);
        assert!(a.equal(&b));
        let mean = a.mean(Kind::Double).double_value(&[]);
        let var = a.var(true).double_value(&[]);
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        let u = SeededNoise::new(3).uniform(&[4000], Device::Cpu);
        let (lo, hi) = (u.min().double_value(&[]), u.max().double_value(&[]));
        assert!(
            (0.0..0.01).contains(&lo) && (0.99..1.0).contains(&hi),
            "{lo} {hi}"
        );
        let c = SeededNoise::new(4).normal(&[4, 1000], Device::Cpu);
        assert!(!a.equal(&c));
    }

    #[test]
    fn algorithm_1_step_count_step_sizes_and_denoising() {
        // A score that records the levels it is asked for and returns a constant 1: after the
        // loop x = x0 + Σ_i T α_i + noise; with zero-noise source the sum is exact.
        struct Zero;
        impl NoiseSource for Zero {
            fn uniform(&mut self, shape: &[i64], device: Device) -> Tensor {
                Tensor::zeros(shape, (Kind::Float, device))
            }
            fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
                Tensor::zeros(shape, (Kind::Float, device))
            }
        }
        let sigmas = [4.0, 2.0, 1.0];
        let mut levels = vec![];
        let mut score = |x: &Tensor, i: i64| {
            levels.push(i);
            x.ones_like()
        };
        let pb = progress::bar(6, false, "Langevin steps");
        let x = anneal_langevin(
            &mut score,
            Tensor::zeros([1], (Kind::Double, Device::Cpu)),
            &sigmas,
            2,
            0.5,
            true,
            &mut Zero,
            Some(&pb),
        );
        assert_eq!(levels, vec![0, 0, 1, 1, 2, 2, 2]);
        assert_eq!(pb.position(), 6);
        // α = 0.5·(16, 4, 1); two steps each; plus σ_L² · 1 for denoising.
        let want = 2.0 * 0.5 * (16.0 + 4.0 + 1.0) + 1.0;
        assert!((x.double_value(&[0]) - want).abs() < 1e-12);
    }
}
