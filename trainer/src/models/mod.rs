//! Score networks (paper Table 2–3, App. B.1). Parameter names are the authors' state_dict keys.

use tch::Tensor;

/// s_θ(x, σ_y). `x` is a float batch in [0, 1] (NCHW, as the authors' loader gives it); `y` holds
/// int64 noise-level indices into the model's `sigmas` buffer. NCSNv2 divides its output by
/// σ_y (Technique 3), so the return value is the score itself.
pub trait ScoreModel: Send {
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor;
}
