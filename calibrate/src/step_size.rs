//! The Langevin step size ε for a budget of T steps per scale (paper §4, Technique 4).

use crate::error::{Error, Result};

/// Eq. 4: s_T²/σ_i², the variance ratio after T Langevin steps at σ_i started from samples of
/// σ_{i−1} = γσ_i, with step α = ε·σ_i²/σ_L² (Algorithm 1). With a = ε/σ_L² the paper's
///
///   (1 − a)^{2T} (γ² − 2ε/(σ_L² − σ_L²(1 − a)²)) + 2ε/(σ_L² − σ_L²(1 − a)²)
///
/// simplifies exactly (2ε/(σ_L²(2a − a²)) = 2/(2 − a)) to the form below, which has no
/// cancellation for small a. It does not depend on D.
pub fn eq4(step_lr: f64, gamma: f64, steps: usize, sigma_end: f64) -> f64 {
    let a = step_lr / (sigma_end * sigma_end);
    let stationary = 2.0 / (2.0 - a);
    (1.0 - a).powi(2 * steps as i32) * (gamma * gamma - stationary) + stationary
}

/// The chosen ε and what Eq. 4 gives there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSize {
    pub step_lr: f64,
    pub eq4_value: f64,
}

/// Points per grid, in the coarse pass and each refinement.
const GRID: usize = 2001;
/// Refinements, each narrowing to the two coarse cells around the best point: the resolution
/// ends near 1e-15 relative, far beyond the 3 significant digits the paper reports.
const REFINEMENTS: usize = 4;

/// Technique 4: the ε minimising |Eq. 4 − 1| for T steps per scale, by grid search as the
/// paper recommends. Eq. 4 exceeds 1 for every ε when γ > 1 (the discretised chain's stationary
/// variance 2/(2 − a) is above 1, and what remains of γ² decays towards it), so there is no
/// root to find: the best ε balances the decay of γ² against that excess.
///
/// The search runs over a = ε/σ_L² ∈ (0, 1): a ≥ 1 would make the last scale's step overshoot
/// the mode. A log-spaced pass over [1e-12, 1) finds the basin, then linear grids refine it.
pub fn best_step_lr(gamma: f64, steps: usize, sigma_end: f64) -> Result<StepSize> {
    if steps == 0 {
        return Err(Error::Invalid(
            "--steps-each 0: at least one Langevin step per scale is needed".into(),
        ));
    }
    if !(gamma > 1.0 && gamma.is_finite()) {
        return Err(Error::Invalid(format!(
            "γ = {gamma}: Technique 4 needs a ratio above 1"
        )));
    }
    let var = sigma_end * sigma_end;
    let cost = |a: f64| (eq4(a * var, gamma, steps, sigma_end) - 1.0).abs();
    let (lo, hi) = (1e-12f64.ln(), (1.0 - 1e-12f64).ln());
    let coarse: Vec<f64> = (0..GRID)
        .map(|i| (lo + (hi - lo) * i as f64 / (GRID - 1) as f64).exp())
        .collect();
    let i = argmin(&coarse, cost);
    let (mut left, mut right) = (coarse[i.saturating_sub(1)], coarse[(i + 1).min(GRID - 1)]);
    let mut best = coarse[i];
    for _ in 0..REFINEMENTS {
        let grid: Vec<f64> = (0..GRID)
            .map(|k| left + (right - left) * k as f64 / (GRID - 1) as f64)
            .collect();
        let k = argmin(&grid, cost);
        best = grid[k];
        (left, right) = (grid[k.saturating_sub(1)], grid[(k + 1).min(GRID - 1)]);
    }
    let step_lr = best * var;
    Ok(StepSize {
        step_lr,
        eq4_value: eq4(step_lr, gamma, steps, sigma_end),
    })
}

/// Index of the smallest `cost`, the first on ties.
fn argmin(xs: &[f64], cost: impl Fn(f64) -> f64) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, &x) in xs.iter().enumerate() {
        let c = cost(x);
        if c < best.1 {
            best = (i, c);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eq. 4 exactly as printed in the paper.
    fn eq4_as_printed(eps: f64, gamma: f64, t: usize, sl: f64) -> f64 {
        let a = eps / (sl * sl);
        let frac = 2.0 * eps / (sl * sl - sl * sl * (1.0 - a).powi(2));
        (1.0 - a).powi(2 * t as i32) * (gamma * gamma - frac) + frac
    }

    #[test]
    fn simplified_eq4_equals_the_printed_form() {
        for &(eps, gamma, t, sl) in &[
            (6.2e-6, 1.0376, 5, 0.01),
            (9e-7, 1.0045, 3, 0.01),
            (1e-3, 1.2, 10, 0.1),
            (2e-5, 1.668, 100, 0.01),
        ] {
            let (a, b) = (eq4(eps, gamma, t, sl), eq4_as_printed(eps, gamma, t, sl));
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn the_chosen_eps_is_a_minimum_of_the_distance_to_one() {
        let (gamma, t, sl) = (1.0375591319992028, 5, 0.01);
        let s = best_step_lr(gamma, t, sl).unwrap();
        let at = |e: f64| (eq4(e, gamma, t, sl) - 1.0).abs();
        assert_eq!(s.eq4_value, eq4(s.step_lr, gamma, t, sl));
        for f in [0.99, 0.999, 1.001, 1.01, 0.5, 2.0] {
            assert!(at(s.step_lr * f) >= at(s.step_lr), "ε·{f} is better");
        }
    }

    #[test]
    fn eq4_stays_above_one_and_more_steps_get_closer() {
        let gamma = 1.0375591319992028;
        for t in [1, 5, 100] {
            for i in 1..1000 {
                let eps = i as f64 * 1e-7; // a = ε/σ_L² from 0.001 to 0.999
                assert!(eq4(eps, gamma, t, 0.01) > 1.0);
            }
        }
        let s5 = best_step_lr(gamma, 5, 0.01).unwrap();
        let s100 = best_step_lr(gamma, 100, 0.01).unwrap();
        assert!(s100.eq4_value < s5.eq4_value && s100.eq4_value > 1.0);
        assert!(s100.step_lr < s5.step_lr);
    }

    #[test]
    fn zero_steps_and_bad_gamma_are_refused() {
        let e = best_step_lr(1.03, 0, 0.01).unwrap_err().to_string();
        assert!(e.contains("--steps-each 0"), "{e}");
        assert!(best_step_lr(1.0, 5, 0.01).is_err());
    }
}
