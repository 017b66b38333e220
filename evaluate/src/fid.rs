//! The Fréchet distance between two Gaussians fitted to Inception features (Heusel et al.
//! 2017): d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂), pytorch-fid's
//! `calculate_frechet_distance`.
//!
//! pytorch-fid takes `scipy.linalg.sqrtm(Σ₁Σ₂)` (a Schur decomposition of a non-symmetric
//! product) and drops the small imaginary parts rounding leaves. Only the trace is needed, and
//! tr √(Σ₁Σ₂) = Σᵢ √λᵢ(√Σ₁ Σ₂ √Σ₁), because √Σ₁ Σ₂ √Σ₁ is similar to Σ₁Σ₂ and symmetric
//! positive semi-definite: two symmetric eigendecompositions in f64, eigenvalues clamped at 0,
//! no complex arithmetic. It stays finite when Σ is singular (fewer images than dimensions),
//! where pytorch-fid retries with εI added to both.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::stats::Stats;

/// The FID between two sets of statistics, computed on `device` in f64.
pub fn frechet_distance(a: &Stats, b: &Stats, device: Device) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(Error::Invalid(format!(
            "statistics of {}-d and {}-d features cannot be compared",
            a.dims(),
            b.dims()
        )));
    }
    let on = |t: &Tensor| t.to_device(device).to_kind(Kind::Double);
    Ok(frechet_distance_parts(
        &on(&a.mu),
        &on(&a.sigma),
        &on(&b.mu),
        &on(&b.sigma),
    ))
}

/// d² of N(μ₁, Σ₁) and N(μ₂, Σ₂), f64 tensors on one device.
pub fn frechet_distance_parts(mu1: &Tensor, sigma1: &Tensor, mu2: &Tensor, sigma2: &Tensor) -> f64 {
    let diff = mu1 - mu2;
    let mean_term = diff.dot(&diff).double_value(&[]);
    let traces = sigma1.trace().double_value(&[]) + sigma2.trace().double_value(&[]);
    mean_term + traces - 2.0 * trace_sqrt_product(sigma1, sigma2)
}

/// tr √(Σ₁Σ₂) for symmetric positive semi-definite Σ₁, Σ₂.
pub fn trace_sqrt_product(sigma1: &Tensor, sigma2: &Tensor) -> f64 {
    let sqrt1 = sqrt_psd(sigma1);
    let m = sqrt1.matmul(sigma2).matmul(&sqrt1);
    psd_eigenvalues(&symmetric(&m).linalg_eigvalsh("L"))
        .sqrt()
        .sum(Kind::Double)
        .double_value(&[])
}

/// The symmetric square root of a PSD matrix.
fn sqrt_psd(sigma: &Tensor) -> Tensor {
    let (values, vectors) = symmetric(sigma).linalg_eigh("L");
    (&vectors * psd_eigenvalues(&values).sqrt().unsqueeze(0)).matmul(&vectors.tr())
}

/// Eigenvalues of a PSD matrix with rounding's share set to 0: those below d·ε·λ_max are
/// noise of either sign (a singular Σ has exact zeros), and √ would magnify them to
/// √(d·ε·λ_max) each.
fn psd_eigenvalues(values: &Tensor) -> Tensor {
    let d = values.size()[0] as f64;
    let floor = values.max().double_value(&[]).max(0.0) * d * f64::EPSILON;
    values.where_self(&values.gt(floor), &values.zeros_like())
}

/// (A + Aᵀ)/2: a covariance summed in another order is symmetric only up to rounding.
fn symmetric(a: &Tensor) -> Tensor {
    (a + a.tr()) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(v: &[f64], n: i64) -> Tensor {
        Tensor::from_slice(v).view([n, n])
    }

    #[test]
    fn diagonal_gaussians_have_the_closed_form() {
        // Diagonal Σ: tr √(Σ₁Σ₂) = Σ √(a_i b_i).
        let s1 = cpu(&[4.0, 0.0, 0.0, 9.0], 2);
        let s2 = cpu(&[1.0, 0.0, 0.0, 16.0], 2);
        let mu1 = Tensor::from_slice(&[1.0, 2.0]);
        let mu2 = Tensor::from_slice(&[0.0, 0.0]);
        let d = frechet_distance_parts(&mu1, &s1, &mu2, &s2);
        let want = 5.0 + (4.0 + 9.0 + 1.0 + 16.0) - 2.0 * (2.0 + 12.0);
        assert!((d - want).abs() < 1e-12, "{d} vs {want}");
    }

    #[test]
    fn identical_statistics_are_at_distance_zero_even_when_singular() {
        let x = Tensor::randn([5, 8], (Kind::Double, Device::Cpu));
        let c = &x - x.mean_dim(0, true, Kind::Double);
        let sigma = c.tr().matmul(&c) / 4.0; // rank 4 < 8
        let mu = Tensor::randn([8], (Kind::Double, Device::Cpu));
        let d = frechet_distance_parts(&mu, &sigma, &mu, &sigma);
        assert!(d.abs() < 1e-9, "{d}");
    }
}
