//! The noise scales (paper §3.2, Technique 2): the common ratio γ from the overlap C, the number
//! of scales L, and the geometric list the trainer uses.

use crate::error::{Error, Result};
use crate::normal::normal_cdf;
use crate::root::bisect;

/// Technique 2's left side for adjacent scales σ_{i−1} = γ·σ_i in D dimensions:
/// p_{σ_i}(r ∈ I_{i−1}) = Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ), the probability that the
/// radius of a sample at σ_i falls in the 3-sigma shell of σ_{i−1} (Proposition 2's Gaussian
/// approximation of the radius).
pub fn overlap(gamma: f64, dims: usize) -> f64 {
    overlap_at(gamma - 1.0, dims)
}

/// The same in terms of δ = γ − 1, which keeps full relative precision when γ is within 1e-3
/// of 1 (FFHQ's γ is 1.0045).
fn overlap_at(delta: f64, dims: usize) -> f64 {
    let s = (2.0 * dims as f64).sqrt();
    let half_width = 3.0 * (1.0 + delta);
    normal_cdf(s * delta + half_width) - normal_cdf(s * delta - half_width)
}

/// The overlap at γ = 1 (two identical scales): Φ(3) − Φ(−3) ≈ 0.9973. An overlap C at or
/// above it has no solution γ > 1 on the decreasing branch of the curve.
pub fn overlap_at_gamma_one() -> f64 {
    overlap_at(0.0, 1)
}

/// Solves Technique 2 for γ > 1: overlap(γ, D) = C.
///
/// The curve starts at Φ(3) − Φ(−3) for γ = 1, rises a little (the shell widens faster than
/// it moves away) and then falls to 0, so for 0 < C < Φ(3) − Φ(−3) there is exactly one
/// solution, on the falling branch; bisection on [1, γ_hi] finds it because the rising part
/// stays above C.
pub fn gamma_for_overlap(dims: usize, c: f64) -> Result<f64> {
    let top = overlap_at_gamma_one();
    if !(c > 0.0 && c < top) {
        return Err(Error::Invalid(format!(
            "--overlap {c}: must lie strictly between 0 and Φ(3) − Φ(−3) = {top:.6} \
             (the overlap of two equal noise scales)"
        )));
    }
    // √(2D) ≤ 3 means the shell grows as fast as it moves: the overlap never falls to C.
    if 2.0 * dims as f64 <= 9.0 {
        return Err(Error::Invalid(format!(
            "--dims {dims}: Technique 2 needs √(2D) > 3, i.e. D ≥ 5"
        )));
    }
    let f = |delta: f64| overlap_at(delta, dims) - c;
    let mut hi = 1.0;
    while f(hi) >= 0.0 {
        hi *= 2.0;
        if hi > 1e12 {
            return Err(Error::Invalid(format!(
                "no γ > 1 gives overlap {c} for D = {dims}"
            )));
        }
    }
    let delta = bisect(f, 0.0, hi).ok_or_else(|| {
        Error::Internal(format!("γ bracket [1, {}] lost its sign change", 1.0 + hi))
    })?;
    Ok(1.0 + delta)
}

/// L = ⌈log(σ₁/σ_L) / log γ⌉ + 1: the fewest scales whose common ratio is at most γ, so that
/// adjacent scales overlap by at least C (SPEC §5).
pub fn num_scales(sigma_begin: f64, sigma_end: f64, gamma: f64) -> usize {
    let steps = ((sigma_begin / sigma_end).ln() / gamma.ln()).ceil();
    steps as usize + 1
}

/// The common ratio of the geometric list with L terms from σ₁ to σ_L: (σ₁/σ_L)^(1/(L−1)).
pub fn list_ratio(sigma_begin: f64, sigma_end: f64, num_classes: usize) -> f64 {
    ((sigma_begin / sigma_end).ln() / (num_classes - 1) as f64).exp()
}

/// Technique 2 applied: what the trainer and sampler need about the noise scales.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseScales {
    pub sigma_begin: f64,
    pub sigma_end: f64,
    pub dims: usize,
    /// C asked for.
    pub overlap: f64,
    /// γ solving Technique 2 for C exactly.
    pub gamma_solved: f64,
    /// L (`num_classes` in the authors' config).
    pub num_classes: usize,
    /// γ of the final list, ≤ `gamma_solved` because L is rounded up.
    pub gamma: f64,
    /// The overlap the final list achieves, ≥ C.
    pub overlap_final: f64,
}

impl NoiseScales {
    pub fn new(sigma_begin: f64, sigma_end: f64, dims: usize, overlap: f64) -> Result<Self> {
        if !(sigma_end > 0.0 && sigma_end.is_finite()) {
            return Err(Error::Invalid(format!(
                "--sigma-end {sigma_end}: must be a positive number"
            )));
        }
        if !(sigma_begin > sigma_end && sigma_begin.is_finite()) {
            return Err(Error::Invalid(format!(
                "σ₁ = {sigma_begin} must be a finite number larger than --sigma-end {sigma_end}"
            )));
        }
        let gamma_solved = gamma_for_overlap(dims, overlap)?;
        let num_classes = num_scales(sigma_begin, sigma_end, gamma_solved);
        let gamma = list_ratio(sigma_begin, sigma_end, num_classes);
        Ok(Self {
            sigma_begin,
            sigma_end,
            dims,
            overlap,
            gamma_solved,
            num_classes,
            gamma,
            overlap_final: self::overlap(gamma, dims),
        })
    }

    /// σ₁ … σ_L, computed exactly as the trainer computes them.
    pub fn sigmas(&self) -> Vec<f64> {
        schemas::calibration::geometric_sigmas(self.sigma_begin, self.sigma_end, self.num_classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_solves_its_equation_to_1e_10() {
        for dims in [5, 100, 3072, 12288, 27648, 49152, 196608, 3 * 1024 * 1024] {
            for c in [0.01, 0.3, 0.5, 0.567, 0.9, 0.99, 0.997] {
                let g = gamma_for_overlap(dims, c).unwrap();
                assert!(g > 1.0);
                let err = (overlap(g, dims) - c).abs();
                assert!(err <= 1e-10, "D={dims} C={c}: γ={g} misses by {err:e}");
            }
        }
    }

    #[test]
    fn the_solution_is_on_the_falling_branch() {
        // Just above γ = 1 the overlap exceeds Φ(3) − Φ(−3); the solver must not return a root
        // there, and a slightly larger γ must give a smaller overlap.
        let dims = 3072;
        assert!(overlap(1.0 + 1e-4, dims) > overlap_at_gamma_one());
        let g = gamma_for_overlap(dims, 0.99).unwrap();
        assert!(overlap(g * (1.0 + 1e-9), dims) < 0.99);
    }

    #[test]
    fn bad_overlaps_and_dims_are_refused_by_name() {
        for c in [0.0, -0.1, 0.9975, 1.0, f64::NAN] {
            let e = gamma_for_overlap(3072, c).unwrap_err().to_string();
            assert!(e.contains("--overlap"), "{e}");
        }
        let e = gamma_for_overlap(4, 0.5).unwrap_err().to_string();
        assert!(e.contains("--dims 4"), "{e}");
        let e = NoiseScales::new(0.01, 0.01, 3072, 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sigma-end"), "{e}");
        let e = NoiseScales::new(50.0, 0.0, 3072, 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sigma-end 0"), "{e}");
    }

    #[test]
    fn rounding_l_up_keeps_at_least_the_asked_overlap() {
        let s = NoiseScales::new(50.0, 0.01, 3072, 0.5).unwrap();
        assert!(s.gamma <= s.gamma_solved);
        assert!(s.overlap_final >= 0.5);
        // One scale fewer would break the promise.
        let fewer = list_ratio(50.0, 0.01, s.num_classes - 1);
        assert!(overlap(fewer, 3072) < 0.5);
        let sigmas = s.sigmas();
        assert_eq!(sigmas.len(), s.num_classes);
        for w in sigmas.windows(2) {
            assert!((w[0] / w[1] / s.gamma - 1.0).abs() < 1e-12);
        }
    }
}
