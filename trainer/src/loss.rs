//! Denoising score matching over all noise levels (paper Eq. 2; the authors'
//! losses/dsm.py::anneal_dsm_score_estimation).

use tch::{Kind, Tensor};

use crate::models::ScoreModel;

/// ℓ(θ) = mean_i λ(σ_{y_i}) · ½‖s_θ(x_i + σ z_i, σ_{y_i}) + z_i/σ_{y_i}‖², λ(σ) = σ^anneal_power.
///
/// `x` is the clean batch (what the authors' `data_transform` gives), `y` the int64 noise-level
/// indices into `sigmas` (float32, the model's buffer), `z` standard-normal noise of `x`'s
/// shape (the authors draw it with `randn_like`; passing it makes runs reproducible).
/// Returns (mean loss, per-sample loss `[B]`). The operation order is the authors', so the
/// float32 result matches theirs to rounding.
pub fn dsm_loss(
    model: &dyn ScoreModel,
    x: &Tensor,
    y: &Tensor,
    z: &Tensor,
    sigmas: &Tensor,
    anneal_power: f64,
) -> (Tensor, Tensor) {
    let b = x.size()[0];
    let used_sigmas = sigmas.index_select(0, y).view([b, 1, 1, 1]);
    let noise = z * &used_sigmas;
    let perturbed = x + &noise;
    // `-1 / σ²` is `reciprocal(σ²) * -1` in PyTorch; the target is −z/σ.
    let target = used_sigmas.square().reciprocal() * -1.0 * &noise;
    let scores = model.forward(&perturbed, y);
    let target = target.view([b, -1]);
    let scores = scores.view([b, -1]);
    let per_sample = (scores - target)
        .square()
        .sum_dim_intlist(-1, false, Kind::Float)
        * 0.5
        * used_sigmas.view([b]).pow_tensor_scalar(anneal_power);
    (per_sample.mean(Kind::Float), per_sample)
}
