//! Exponential moving average of the weights (paper §5, Technique 5): after every optimiser step
//! θ' ← m θ' + (1 − m) θ with m = 0.999, kept in a second `VarStore` so that the EMA network is
//! an ordinary model the sampler and the test loss can run.

use tch::nn::VarStore;
use tch::Tensor;

/// Pairs of (EMA variable, live parameter), matched by name.
pub struct Ema {
    pub rate: f64,
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// Starts the average at the current weights (the authors' `EMAHelper.register`): every
    /// variable of `model` (buffers such as `sigmas` too) is copied into `ema`, which must hold
    /// the same names and shapes; only trainable ones are averaged afterwards.
    pub fn new(model: &VarStore, ema: &VarStore, rate: f64) -> Result<Self, String> {
        let src = model.variables();
        let dst = ema.variables();
        let mut names: Vec<&String> = src.keys().collect();
        names.sort();
        let _guard = tch::no_grad_guard();
        let mut pairs = vec![];
        for name in names {
            let p = &src[name];
            let mut e = dst
                .get(name)
                .ok_or_else(|| format!("EMA model has no `{name}`"))?
                .shallow_clone();
            e.copy_(p);
            if p.requires_grad() {
                pairs.push((e, p.shallow_clone()));
            }
        }
        if dst.len() != src.len() {
            return Err(format!(
                "EMA model has {} variables, the model {}",
                dst.len(),
                src.len()
            ));
        }
        Ok(Self { rate, pairs })
    }

    /// One update, written as the authors' `EMAHelper.update`:
    /// `shadow = (1 - mu) * param + mu * shadow`, same operation order.
    pub fn update(&mut self) {
        let _guard = tch::no_grad_guard();
        let mu = self.rate;
        for (e, p) in &mut self.pairs {
            let next = (&*p * (1.0 - mu)) + (&*e * mu);
            e.copy_(&next);
        }
    }
}
