//! Exponential moving average of the weights (paper §5, Technique 5): after every optimiser step
//! θ' ← m θ' + (1 − m) θ with m = 0.999, kept in a second `VarStore` so that the EMA network is
//! an ordinary model the sampler and the test loss can run.

use tch::nn::VarStore;
use tch::Tensor;

use crate::checkpoint::{copy_into, CheckpointError};

/// Pairs of (EMA variable, live parameter), matched by name.
pub struct Ema {
    pub rate: f64,
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// Starts the average at the current weights (the authors' `EMAHelper.register`): every
    /// variable of `model` (buffers such as `sigmas` too) is copied into `ema`, which must hold
    /// the same names and shapes ([`copy_into`] refuses anything else, naming the tensors);
    /// only trainable ones are averaged afterwards.
    pub fn new(model: &VarStore, ema: &VarStore, rate: f64) -> Result<Self, CheckpointError> {
        let src = model.variables();
        let named: Vec<(String, Tensor)> = src
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        copy_into(ema, &named, "EMA model")?;
        let dst = ema.variables();
        let mut names: Vec<&String> = src.keys().collect();
        names.sort();
        let pairs = names
            .into_iter()
            .filter(|n| src[*n].requires_grad())
            .map(|n| (dst[n].shallow_clone(), src[n].shallow_clone()))
            .collect();
        Ok(Self { rate, pairs })
    }

    /// One update, written as the authors' `EMAHelper.update`:
    /// `shadow = (1 - mu) * param + mu * shadow`, same operation order.
    pub fn update(&mut self) {
        let _guard = tch::no_grad_guard();
        let mu = self.rate;
        for (e, p) in &mut self.pairs {
            // μ·shadow + (1 − μ)·param in place: the same two products and one addition as
            // the authors' expression (addition commutes exactly), without three temporaries
            // and a copy.
            let _ = e.g_mul_scalar_(mu);
            *e += &*p * (1.0 - mu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn store(width: i64, value: f64) -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = root.var("w", &[width], nn::Init::Const(value));
        let _ = root.zeros_no_train("sigmas", &[2]);
        vs
    }

    #[test]
    fn starts_at_the_weights_and_averages_only_trainable_ones() {
        let (model, ema) = (store(3, 1.0), store(3, 0.0));
        let mut avg = Ema::new(&model, &ema, 0.9).unwrap();
        let w = |vs: &VarStore| vs.variables()["w"].double_value(&[0]);
        assert_eq!(w(&ema), 1.0);
        tch::no_grad(|| {
            let _ = model.variables()["w"].shallow_clone().fill_(3.0);
        });
        avg.update();
        // (1 - 0.9)·3 + 0.9·1
        assert!((w(&ema) - 1.2).abs() < 1e-6, "{}", w(&ema));
        assert_eq!(avg.pairs.len(), 1, "the `sigmas` buffer is not averaged");
        assert_eq!(ema.variables()["sigmas"].kind(), Kind::Float);
    }

    #[test]
    fn a_model_of_another_shape_is_refused_naming_the_tensor() {
        let err = Ema::new(&store(3, 1.0), &store(4, 0.0), 0.999)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("EMA model") && err.contains("`w`"), "{err}");
    }
}
