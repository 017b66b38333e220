//! Adam (App. B.1: lr 1e-4, β₁ 0.9, β₂ 0.999, eps 1e-8 or 1e-3 for FFHQ, no weight decay),
//! written out so its moments can be checkpointed: tch's `nn::Adam` keeps them inside libtorch
//! where they cannot be saved, and an exact `--resume` needs them.
//!
//! The update is PyTorch's `torch.optim.Adam` (non-amsgrad, single-tensor and foreach paths
//! alike), operation for operation, so that a step matches PyTorch to the last bit on CPU:
//! ```text
//! m ← lerp(m, g, 1-β₁);  v ← β₂ v + (1-β₂) g g
//! p ← p + (-lr / (1-β₁ᵗ)) m / (√v / √(1-β₂ᵗ) + eps)
//! ```

use tch::Tensor;

/// Hyper-parameters of Adam.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    /// From the config's `optim` section (the authors' Adam; β₂ is PyTorch's default).
    pub fn from_config(o: &schemas::config::Optim) -> Self {
        Self {
            lr: o.lr,
            beta1: o.beta1,
            beta2: 0.999,
            eps: o.eps,
        }
    }
}

/// Adam over a list of named parameters, with its state in plain tensors.
pub struct Adam {
    pub cfg: AdamConfig,
    /// Steps taken (PyTorch's `state['step']`, shared here since every parameter steps together).
    pub step: u64,
    params: Vec<(String, Tensor)>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Optimises the trainable variables of `vs` (sorted by name, so the order is stable).
    pub fn new(vs: &tch::nn::VarStore, cfg: AdamConfig) -> Self {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let exp_avg = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let exp_avg_sq = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            cfg,
            step: 0,
            params,
            exp_avg,
            exp_avg_sq,
        }
    }

    /// The optimised parameters, in their (sorted) order.
    pub fn params(&self) -> impl Iterator<Item = &Tensor> {
        self.params.iter().map(|(_, p)| p)
    }

    /// Clears the gradients before `backward`, as PyTorch's `zero_grad()` does by default
    /// (`set_to_none=True`): the backward pass then stores each gradient instead of adding it
    /// into zeros.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            torchrt::accel::clear_grad(p).expect("a parameter's gradient can be dropped");
        }
    }

    /// One update from the gradients currently stored on the parameters.
    pub fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.cfg;
        let t = self.step as i32;
        let bias_correction1 = 1.0 - beta1.powi(t);
        let bias_correction2 = 1.0 - beta2.powi(t);
        let step_size = lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.sqrt();
        for (((_, p), m), v) in self
            .params
            .iter_mut()
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
        {
            let g = p.grad();
            if !g.defined() {
                continue; // PyTorch skips parameters without a gradient
            }
            // PyTorch's own in-place kernels, in its order, with their `value` (through
            // torchrt: tch's addcmul_/addcdiv_ have none): one pass each and no temporary but
            // `denom` (the step is memory-bound).
            let _ = m.lerp_(&g, 1.0 - beta1);
            let _ = v.g_mul_scalar_(beta2);
            torchrt::accel::addcmul_(v, &g, &g, 1.0 - beta2).expect("Adam's addcmul_");
            let mut denom = v.sqrt();
            let _ = denom.g_div_scalar_(bias_correction2_sqrt);
            let _ = denom.g_add_scalar_(eps);
            torchrt::accel::addcdiv_(p, m, &denom, -step_size).expect("Adam's addcdiv_");
        }
    }

    /// The optimiser state as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`, `step`),
    /// for the `optim.*` part of a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from_slice(&[self.step as i64]))];
        for (((name, _), m), v) in self.params.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
            out.push((format!("exp_avg.{name}"), m.shallow_clone()));
            out.push((format!("exp_avg_sq.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores what `state` returned; every parameter's moments must be present.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        let get = |key: &str| {
            state
                .iter()
                .find(|(n, _)| n == key)
                .map(|(_, t)| t)
                .ok_or_else(|| format!("optimizer state has no `{key}`"))
        };
        let step = get("step")?.int64_value(&[0]);
        let _guard = tch::no_grad_guard();
        for (((name, p), m), v) in self
            .params
            .iter()
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
        {
            for (dst, key) in [
                (&mut *m, format!("exp_avg.{name}")),
                (&mut *v, format!("exp_avg_sq.{name}")),
            ] {
                let src = get(&key)?;
                if src.size() != p.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, the parameter has {:?}",
                        src.size(),
                        p.size()
                    ));
                }
                dst.copy_(src);
            }
        }
        self.step = step as u64;
        Ok(())
    }
}
