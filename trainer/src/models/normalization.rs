//! InstanceNorm++ and its σ-conditional form (the authors' models/normalization.py).
//!
//! InstanceNorm++ (NCSN paper, App. A of [1]) is instance normalisation plus a term that puts
//! back the spread of the channel means, which plain instance norm throws away (colour shifts
//! otherwise vanish). NCSNv2 uses it without class conditioning (paper App. B.1, modification
//! (i)); the original NCSN learns one (γ, α, β) triple per noise level (CondInstanceNorm++).

use tch::nn::{Init, Path};
use tch::{Kind, Tensor};

/// `eps` of both the instance norm and the channel-mean normalisation (authors' value).
const EPS: f64 = 1e-5;

/// Instance-normalised `x` and the normalised channel means `(μ_c − m) / sqrt(v + eps)`,
/// `[B, C]`, with `m`, `v` the mean and the *unbiased* variance of the channel means.
fn normalise(x: &Tensor) -> (Tensor, Tensor) {
    let means = x.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
    let m = means.mean_dim([-1i64].as_slice(), true, Kind::Float);
    let v = means.var_dim([-1i64].as_slice(), true, true);
    let means = (means - m) / (v + EPS).sqrt();
    // F.instance_norm(x) with no affine, no running stats; cudnn flag as PyTorch passes it.
    let h = x.instance_norm::<Tensor>(None, None, None, None, true, 0.1, EPS, true);
    (h, means)
}

/// `InstanceNorm2dPlus`: parameters `alpha`, `gamma` ~ N(1, 0.02) and `beta` = 0, per channel.
#[derive(Debug)]
pub struct InstanceNorm2dPlus {
    alpha: Tensor,
    gamma: Tensor,
    beta: Tensor,
    features: i64,
}

pub fn instance_norm_plus(p: &Path, features: i64) -> InstanceNorm2dPlus {
    let n1 = Init::Randn {
        mean: 1.0,
        stdev: 0.02,
    };
    InstanceNorm2dPlus {
        alpha: p.var("alpha", &[features], n1),
        gamma: p.var("gamma", &[features], n1),
        beta: p.var("beta", &[features], Init::Const(0.0)),
        features,
    }
}

impl InstanceNorm2dPlus {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let c = self.features;
        let (h, means) = normalise(x);
        let h = h + means.unsqueeze(-1).unsqueeze(-1) * self.alpha.view([c, 1, 1]);
        self.gamma.view([-1, c, 1, 1]) * h + self.beta.view([-1, c, 1, 1])
    }
}

/// `ConditionalInstanceNorm2dPlus`: an embedding `embed.weight` `[num_classes, 3C]` holding
/// (γ, α, β) per noise level; γ, α ~ N(1, 0.02), β = 0.
#[derive(Debug)]
pub struct ConditionalInstanceNorm2dPlus {
    embed: Tensor,
    features: i64,
}

pub fn cond_instance_norm_plus(
    p: &Path,
    features: i64,
    num_classes: i64,
) -> ConditionalInstanceNorm2dPlus {
    let embed = p / "embed";
    let w = tch::no_grad(|| {
        let scale =
            Tensor::randn([num_classes, 2 * features], (Kind::Float, p.device())) * 0.02 + 1.0;
        let bias = Tensor::zeros([num_classes, features], (Kind::Float, p.device()));
        Tensor::cat(&[scale, bias], 1)
    });
    ConditionalInstanceNorm2dPlus {
        embed: embed.add("weight", w, true),
        features,
    }
}

impl ConditionalInstanceNorm2dPlus {
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let c = self.features;
        let (h, means) = normalise(x);
        let e = Tensor::embedding(&self.embed, y, -1, false, false);
        let parts = e.chunk(3, -1);
        let (gamma, alpha, beta) = (&parts[0], &parts[1], &parts[2]);
        let h = h + means.unsqueeze(-1).unsqueeze(-1) * alpha.unsqueeze(-1).unsqueeze(-1);
        gamma.view([-1, c, 1, 1]) * h + beta.view([-1, c, 1, 1])
    }
}

/// The normaliser a block uses: unconditional (NCSNv2) or σ-conditional (NCSN).
#[derive(Debug)]
pub enum Norm {
    Plus(InstanceNorm2dPlus),
    CondPlus(ConditionalInstanceNorm2dPlus),
}

/// Which normaliser to build: `None` = InstanceNorm++, `Some(L)` = CondInstanceNorm++ over L
/// noise levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormKind {
    pub conditional_classes: Option<i64>,
}

impl NormKind {
    pub fn build(self, p: &Path, features: i64) -> Norm {
        match self.conditional_classes {
            None => Norm::Plus(instance_norm_plus(p, features)),
            Some(n) => Norm::CondPlus(cond_instance_norm_plus(p, features, n)),
        }
    }
}

impl Norm {
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        match self {
            Norm::Plus(n) => n.forward(x),
            Norm::CondPlus(n) => n.forward(x, y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    /// Channel means μ = (1, 2, 6) plus a ±1 checkerboard: instance norm gives ±1/sqrt(1 + eps)
    /// and the output is γ·(±1/sqrt(1 + eps) + α·(μ_c − m)/sqrt(v + eps)) + β with the
    /// *unbiased* variance v of the means, computable by hand.
    #[test]
    fn channel_mean_term_uses_unbiased_variance() {
        let vs = VarStore::new(Device::Cpu);
        let n = instance_norm_plus(&vs.root(), 3);
        tch::no_grad(|| {
            let set = |t: &Tensor, v: [f32; 3]| t.shallow_clone().copy_(&Tensor::from_slice(&v));
            set(&n.alpha, [1.0, 2.0, 3.0]);
            set(&n.gamma, [1.0, 1.0, 2.0]);
            set(&n.beta, [0.0, 0.5, 0.0]);
        });
        let mu = [1.0f32, 2.0, 6.0];
        let checker: Vec<f32> = (0..16)
            .map(|k| if (k / 4 + k % 4) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let x = Tensor::from_slice(&mu).view([1, 3, 1, 1])
            + Tensor::from_slice(&checker).view([1, 1, 4, 4]);
        let out = n.forward(&x);
        let m = 3.0f64;
        let v = ((1.0f64 - m).powi(2) + (2.0 - m).powi(2) + (6.0 - m).powi(2)) / 2.0;
        let (alpha, gamma, beta) = ([1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [0.0, 0.5, 0.0]);
        // Pixel (2, 1): checkerboard −1.
        let h = -1.0 / (1.0f64 + EPS).sqrt();
        for c in 0..3 {
            let want = gamma[c] * (h + alpha[c] * (mu[c] as f64 - m) / (v + EPS).sqrt()) + beta[c];
            let got = out.double_value(&[0, c as i64, 2, 1]);
            assert!((got - want).abs() < 1e-5, "channel {c}: {got} vs {want}");
        }
    }

    #[test]
    fn conditional_form_picks_the_row_of_each_sample() {
        let vs = VarStore::new(Device::Cpu);
        let n = cond_instance_norm_plus(&vs.root(), 2, 4);
        assert_eq!(n.embed.size(), [4, 6]);
        // β columns start at zero, γ and α near one.
        let beta = n.embed.narrow(1, 4, 2);
        assert_eq!(beta.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let x = Tensor::randn([2, 2, 5, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 3]);
        let out = n.forward(&x, &y);
        // Row 0 for sample 0: recompute with a one-row batch.
        let out0 = n.forward(&x.narrow(0, 0, 1), &y.narrow(0, 0, 1));
        assert!(out.narrow(0, 0, 1).allclose(&out0, 1e-6, 1e-6, false));
    }
}
