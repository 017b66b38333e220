//! The Inception Score (Salimans et al. 2016) as the original code computes it
//! (openai/improved-gan `inception_score/model.py`, which Table 1's IS numbers follow): the
//! 1008-way softmax of the TensorFlow graph's logits (pool3 · W, no bias; the 8 extra classes
//! are never the answer for real images but stay in the normalisation), the samples cut into
//! 10 consecutive splits, and per split exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the split's mean;
//! reported as the mean ± standard deviation (numpy's, ddof 0) over splits.

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The paper's (and the original code's) number of splits.
pub const SPLITS: usize = 10;

/// Mean ± std of the per-split scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionScore {
    pub mean: f64,
    pub std: f64,
    pub splits: usize,
}

/// The Inception Score of logits [N, classes] over `splits` consecutive splits (the original
/// code's `part = preds[i·N/splits : (i+1)·N/splits]`), in f64.
pub fn inception_score(logits: &Tensor, splits: usize) -> Result<InceptionScore> {
    let n = logits.size()[0] as usize;
    if splits == 0 || n < splits {
        return Err(Error::Invalid(format!(
            "the Inception Score over {splits} splits needs at least {splits} samples, got {n}"
        )));
    }
    // log p(y|x) directly from the logits: finite even where the probability underflows.
    let log_p = logits.to_kind(Kind::Double).log_softmax(1, Kind::Double);
    let p = log_p.exp();
    let mut scores = Vec::with_capacity(splits);
    for i in 0..splits {
        let (lo, hi) = (i * n / splits, (i + 1) * n / splits);
        let lp = log_p.narrow(0, lo as i64, (hi - lo) as i64);
        let pp = p.narrow(0, lo as i64, (hi - lo) as i64);
        let log_py = pp.mean_dim(0, true, Kind::Double).log();
        let kl = (&pp * (lp - log_py))
            .sum_dim_intlist(1, false, Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        scores.push(kl.exp());
    }
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok(InceptionScore {
        mean,
        std: var.sqrt(),
        splits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn confident_distinct_classes_score_the_number_of_classes() {
        // Each split holds one sample of each of 4 classes, predicted with certainty.
        let eye = Tensor::eye(4, (Kind::Double, Device::Cpu)) * 100.0;
        let logits = Tensor::cat(&[&eye, &eye], 0);
        let s = inception_score(&logits, 2).unwrap();
        assert!((s.mean - 4.0).abs() < 1e-9 && s.std < 1e-9, "{s:?}");
        // Identical predictions: p(y|x) = p(y), the score is 1.
        let same = Tensor::ones([6, 5], (Kind::Double, Device::Cpu));
        assert!((inception_score(&same, 3).unwrap().mean - 1.0).abs() < 1e-12);
    }

    #[test]
    fn too_few_samples_for_the_splits_is_an_error() {
        let l = Tensor::zeros([3, 5], (Kind::Float, Device::Cpu));
        assert!(inception_score(&l, 10).is_err());
    }
}
