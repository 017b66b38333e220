//! The one blockwise distance engine: squared ℓ2 distances between a block of rows A and a
//! block of rows B as ‖a‖² + ‖b‖² − 2a·b, the Gram product a·bᵀ a GEMM on the rows' device
//! (CPU, or CUDA when present). Callers walk their own blocks and keep what they need of each
//! block's matrix, so memory stays bounded whatever the number of rows:
//!
//! - [`crate::pairwise`]: Technique 1's exact maximum over all pairs of byte images, with
//!   [`Gram::ExactBytes`] (why that is exact: its module doc);
//! - [`crate::nearest`]: the k nearest reference rows of query rows in a float feature space
//!   (App. C.5.2's nearest neighbours), with [`Gram::F32`] and an f64 recheck of every
//!   candidate.

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Columns per GEMM of [`Gram::ExactBytes`]: 2¹⁰ products of magnitude ≤ 2¹⁴ keep every
/// partial sum ≤ 2²⁴ (exact f32).
pub const CHUNK: usize = 1024;

/// How a·bᵀ is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gram {
    /// Centred byte rows (x − 128, held in f32): f32 GEMMs over column chunks of at most
    /// [`CHUNK`], summed in f64 — exact integers, whatever the GEMM's order or FMA.
    ExactBytes,
    /// Float rows: one f32 GEMM. Each entry is within [`f32_error_bound`] of the exact value.
    F32,
}

/// The squared distances [rows of a, rows of b] = ‖a‖² + ‖b‖² − 2a·bᵀ.
///
/// `a_norms`, `b_norms`: the rows' squared norms ([rows] on the rows' device), f64 for
/// [`Gram::ExactBytes`] (exact integers, so the result is too) and f32 for [`Gram::F32`]
/// (see [`squared_norms`]). The result has the norms' kind.
pub fn squared_distances(
    a: &Tensor,
    a_norms: &Tensor,
    b: &Tensor,
    b_norms: &Tensor,
    gram: Gram,
) -> Result<Tensor> {
    let g = match gram {
        Gram::ExactBytes => exact_gram(a, b)?,
        Gram::F32 => a
            .f_matmul(&b.tr())
            .map_err(Error::torch("the Gram product of two blocks"))?,
    };
    // Technique 1: ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b.
    Ok(a_norms.unsqueeze(1) + b_norms.unsqueeze(0) - g * 2.0)
}

/// Σ x² of each row, in the rows' kind, on their device: the norms of [`Gram::F32`].
pub fn squared_norms(rows: &Tensor) -> Tensor {
    rows.square().sum_dim_intlist(1, false, None)
}

/// A bound on |computed − exact| of one entry of [`squared_distances`] with [`Gram::F32`],
/// for `dims`-long rows of norms ‖a‖ and ‖b‖ (computed on `dims`-long rows in IEEE f32, any
/// summation order, with or without FMA).
///
/// A length-n dot product in any order errs by at most γₙ·Σ|aₖbₖ| ≤ γₙ·‖a‖‖b‖ with
/// γₙ = nu/(1 − nu), u = 2⁻²⁴ (Higham, Accuracy and Stability, §3.1); the two norms likewise by
/// γₙ‖a‖² and γₙ‖b‖², and the two final additions and the doubling add at most 3u of the
/// magnitudes involved, all ≤ (‖a‖ + ‖b‖)². The bound is doubled for the second-order terms
/// and the f32 rounding of the norms it is given.
pub fn f32_error_bound(dims: usize, norm_a: f64, norm_b: f64) -> f64 {
    let u = f64::from(f32::EPSILON) / 2.0;
    let n = dims as f64;
    let gamma = n * u / (1.0 - n * u);
    2.0 * (gamma + 3.0 * u) * (norm_a + norm_b).powi(2)
}

/// a·bᵀ for two centred byte row blocks, exact (see [`crate::pairwise`]'s module doc): f32
/// GEMMs over column chunks of at most [`CHUNK`], summed in f64.
fn exact_gram(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ni, nj, dims) = (a.size()[0], b.size()[0], a.size()[1] as usize);
    let mut acc = Tensor::zeros([ni, nj], (Kind::Double, a.device()));
    let mut c0 = 0;
    while c0 < dims {
        let nc = CHUNK.min(dims - c0);
        let (ca, cb) = (
            a.narrow(1, c0 as i64, nc as i64),
            b.narrow(1, c0 as i64, nc as i64),
        );
        // An explicit f64 copy then a same-type add is ~2.5× faster than a mixed-type add_.
        let g = ca.matmul(&cb.tr()).to_kind(Kind::Double);
        acc = acc
            .f_add_(&g)
            .map_err(Error::torch("accumulating the Gram chunks"))?;
        c0 += nc;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_distances_are_within_the_bound_and_exact_bytes_are_exact() {
        // Near-duplicate rows far from the origin: the cancellation case.
        let dims = 300usize;
        let base: Vec<f32> = (0..dims).map(|k| 50.0 + (k % 7) as f32 * 0.37).collect();
        let mut rows = vec![];
        for i in 0..6 {
            rows.extend(base.iter().enumerate().map(|(k, &x)| {
                if k == i * 11 {
                    x + 0.001 * (i + 1) as f32
                } else {
                    x
                }
            }));
        }
        let x = Tensor::from_slice(&rows).view([6, dims as i64]);
        let norms = squared_norms(&x);
        let d2 = squared_distances(&x, &norms, &x, &norms, Gram::F32).unwrap();
        let d2 = Vec::<f32>::try_from(d2.view([-1])).unwrap();
        let row = |i: usize| &rows[i * dims..(i + 1) * dims];
        let norm = |i: usize| {
            row(i)
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        for i in 0..6 {
            for j in 0..6 {
                let exact: f64 = row(i)
                    .iter()
                    .zip(row(j))
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                let err = (f64::from(d2[i * 6 + j]) - exact).abs();
                let bound = f32_error_bound(dims, norm(i), norm(j));
                assert!(err <= bound, "({i}, {j}): error {err} > bound {bound}");
            }
        }

        // Bytes, centred, D spanning several chunks: exact integers.
        let dims = 2 * CHUNK + 5;
        let bytes: Vec<u8> = (0..3 * dims).map(|k| (k * 37 % 256) as u8).collect();
        let c: Vec<f32> = bytes.iter().map(|&b| f32::from(b) - 128.0).collect();
        let x = Tensor::from_slice(&c).view([3, dims as i64]);
        let norms: Vec<f64> = (0..3)
            .map(|i| {
                c[i * dims..(i + 1) * dims]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum()
            })
            .collect();
        let norms = Tensor::from_slice(&norms);
        let d2 = squared_distances(&x, &norms, &x, &norms, Gram::ExactBytes).unwrap();
        let d2 = Vec::<f64>::try_from(d2.view([-1])).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let exact: i64 = (0..dims)
                    .map(|k| {
                        let d = i64::from(bytes[i * dims + k]) - i64::from(bytes[j * dims + k]);
                        d * d
                    })
                    .sum();
                assert_eq!(d2[i * 3 + j], exact as f64, "({i}, {j})");
            }
        }
    }
}
