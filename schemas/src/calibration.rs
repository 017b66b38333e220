//! `calibration.json` (SPEC §5). Field names follow the authors' config (`sigma_begin`,
//! `sigma_end`, `num_classes`, `n_steps_each`, `step_lr`) so values map one to one.

use crate::{JsonDocument, SCHEMA_VERSION};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub schema_version: u32,
    /// σ₁ (Technique 1).
    pub sigma_begin: f64,
    /// σ_L.
    pub sigma_end: f64,
    /// L, the number of noise scales (Technique 2).
    pub num_classes: usize,
    /// T, Langevin steps per noise scale.
    pub n_steps_each: usize,
    /// ε (Technique 4).
    pub step_lr: f64,
    /// γ = σ_{i-1}/σ_i of the final geometric list.
    pub gamma: f64,
    /// C of Technique 2.
    pub overlap: f64,
    /// D = H·W·C.
    pub dims: usize,
    /// Value of Eq. 4 at the chosen ε (ideally ≈ 1).
    pub eq4_value: f64,
    /// Images in the training split the statistics come from (absent without data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// Seed of the random subsample used for σ₁ when N exceeded the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pair: Option<MaxPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<DataStats>,
}

/// The pair of training images farthest apart (Technique 1), recomputed in f64.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MaxPair {
    pub id_a: u64,
    pub id_b: u64,
    pub key_a: String,
    pub key_b: String,
    pub distance: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataStats {
    /// Images used for the pairwise statistics (N, or the sample size).
    pub images_used: u64,
    pub median_pairwise_distance: f64,
    /// How the median was obtained (e.g. "exact over all pairs", "over 1 000 000 sampled pairs").
    pub median_method: String,
    /// Per channel, pixels in [0,1].
    pub channel_mean: Vec<f64>,
    pub channel_std: Vec<f64>,
}

impl Calibration {
    /// The noise levels the trainer and sampler use, derived from (σ₁, σ_L, L) only.
    pub fn sigmas(&self) -> Vec<f64> {
        geometric_sigmas(self.sigma_begin, self.sigma_end, self.num_classes)
    }
}

/// Geometric sequence from `begin` down to `end` with `n` terms, computed like the authors'
/// `np.exp(np.linspace(np.log(begin), np.log(end), n))` (f64; callers cast to f32 for the model).
pub fn geometric_sigmas(begin: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![begin],
        _ => {
            let (a, b) = (begin.ln(), end.ln());
            let step = (b - a) / (n - 1) as f64;
            // numpy's linspace: start + i*step, with the last point set exactly to stop.
            (0..n)
                .map(|i| if i == n - 1 { b } else { a + i as f64 * step })
                .map(f64::exp)
                .collect()
        }
    }
}

impl JsonDocument for Calibration {
    const WHAT: &'static str = "ncsn calibration";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl Calibration {
    pub fn current_version() -> u32 {
        SCHEMA_VERSION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_matches_the_authors_float32_sigmas() {
        // reference/ncsnv2-32px/meta.json: sigmas_float32 for (50, 0.01, 10).
        let want: [f32; 10] = [
            50.0,
            19.407_667,
            7.533_151,
            2.924_017_7,
            1.134_967_2,
            0.440_541_33,
            0.170_997_59,
            0.066_373_29,
            0.025_763_014,
            0.01,
        ];
        let got = geometric_sigmas(50.0, 0.01, 10);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g as f32, w);
        }
    }

    #[test]
    fn round_trips_with_the_authors_names() {
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            sigma_begin: 50.0,
            sigma_end: 0.01,
            num_classes: 232,
            n_steps_each: 5,
            step_lr: 6.2e-6,
            gamma: 1.037,
            overlap: 0.5,
            dims: 3072,
            eq4_value: 1.0001,
            n: Some(50_000),
            sample_seed: None,
            max_pair: Some(MaxPair {
                id_a: 1,
                id_b: 2,
                key_a: "a".into(),
                key_b: "b".into(),
                distance: 44.1,
            }),
            stats: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        for k in [
            "sigma_begin",
            "sigma_end",
            "num_classes",
            "n_steps_each",
            "step_lr",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        let back: Calibration = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.sigmas().len(), 232);
    }
}
