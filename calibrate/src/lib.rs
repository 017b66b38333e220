//! Calibration (SPEC §5; paper §3.1, §3.2, §4): everything NCSNv2 needs to know about a
//! dataset before training, so nobody hand-tunes σ₁, L or ε.
//!
//! - Technique 1: σ₁ = the exact maximum pairwise distance of the training images
//!   ([`pairwise`]), from the shards ([`data`]).
//! - Technique 2: γ from the overlap C and the number of scales L ([`schedule`]).
//! - Technique 4: ε for T steps per scale from Eq. 4 ([`step_size`]).
//!
//! Its blockwise GEMM engine ([`blockwise`]) also serves evaluation: [`nearest`] finds the k
//! nearest training images of samples in Inception feature space (App. C.5.2) with it.
//!
//! [`Schedule`] ties Techniques 2 and 4 together for a given σ₁ and D; it is all that
//! `ncsn calibrate --sigma-begin S --dims D` needs.

pub mod blockwise;
pub mod data;
pub mod dataset;
pub mod error;
pub mod nearest;
pub mod normal;
pub mod pairwise;
pub mod root;
pub mod schedule;
pub mod stats;
pub mod step_size;

use schemas::calibration::Calibration;

pub use error::{Error, Result};
pub use schedule::NoiseScales;
pub use step_size::StepSize;

/// The knobs of Techniques 2 and 4 (defaults: the paper's).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleOptions {
    /// σ_L, the smallest noise scale.
    pub sigma_end: f64,
    /// C of Technique 2.
    pub overlap: f64,
    /// T, Langevin steps per scale.
    pub steps_each: usize,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self {
            sigma_end: 0.01,
            overlap: 0.5,
            steps_each: 5,
        }
    }
}

/// Techniques 2 and 4 for a given σ₁ and D.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub scales: NoiseScales,
    pub steps_each: usize,
    pub step: StepSize,
}

impl Schedule {
    pub fn new(sigma_begin: f64, dims: usize, opts: &ScheduleOptions) -> Result<Self> {
        let scales = NoiseScales::new(sigma_begin, opts.sigma_end, dims, opts.overlap)?;
        // Technique 4 uses γ of the final list, the ratio Algorithm 1 actually steps through.
        let step = step_size::best_step_lr(scales.gamma, opts.steps_each, opts.sigma_end)?;
        Ok(Self {
            scales,
            steps_each: opts.steps_each,
            step,
        })
    }

    /// The schedule as `calibration.json`, without the data fields (`n`, `max_pair`, `stats`).
    pub fn calibration(&self) -> Calibration {
        let s = &self.scales;
        Calibration {
            schema_version: Calibration::current_version(),
            sigma_begin: s.sigma_begin,
            sigma_end: s.sigma_end,
            num_classes: s.num_classes,
            n_steps_each: self.steps_each,
            step_lr: self.step.step_lr,
            gamma: s.gamma,
            overlap: s.overlap,
            dims: s.dims,
            eq4_value: self.step.eq4_value,
            n: None,
            sample_seed: None,
            max_pair: None,
            stats: None,
        }
    }
}

/// A few lines a person reads after `ncsn calibrate`: the values and where they come from.
pub fn summary(c: &Calibration) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let w = &mut s;
    if let Some(n) = c.n {
        let used = c.stats.as_ref().map_or(n, |st| st.images_used);
        let how = match c.sample_seed {
            Some(seed) => format!("a random sample of {used} (seed {seed})"),
            None => "all of them".to_string(),
        };
        let _ = writeln!(w, "images     {n} in the training split; pairs over {how}");
    }
    if let Some(p) = &c.max_pair {
        let _ = writeln!(
            w,
            "max pair   ids {} and {} ({} | {}), distance {:.6}",
            p.id_a, p.id_b, p.key_a, p.key_b, p.distance
        );
    }
    if let Some(st) = &c.stats {
        let _ = writeln!(
            w,
            "median     pairwise distance {:.4} ({})",
            st.median_pairwise_distance, st.median_method
        );
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            w,
            "channels   mean [{}]  std [{}]",
            fmt(&st.channel_mean),
            fmt(&st.channel_std)
        );
    }
    let _ = writeln!(
        w,
        "sigma_1    {:.6}   (Technique 1{})",
        c.sigma_begin,
        if c.max_pair.is_some() {
            ": max pairwise distance"
        } else {
            ": given"
        }
    );
    let _ = writeln!(w, "sigma_L    {}", c.sigma_end);
    let _ = writeln!(
        w,
        "L          {}   (Technique 2, D = {}, overlap C = {}: gamma = {:.6}, achieved C = {:.4})",
        c.num_classes,
        c.dims,
        c.overlap,
        c.gamma,
        schedule::overlap(c.gamma, c.dims)
    );
    let _ = writeln!(
        w,
        "T, eps     {}, {:.4e}   (Technique 4: Eq. 4 = {:.6})",
        c.n_steps_each, c.step_lr, c.eq4_value
    );
    s
}
