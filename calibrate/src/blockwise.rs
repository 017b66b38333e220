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

/// Columns per f32 GEMM of [`Gram::ExactBytes`]: 2¹⁰ products of magnitude ≤ 2¹⁴ keep every
/// partial sum ≤ 2²⁴ (exact f32).
pub const CHUNK: usize = 1024;

/// Columns per int8 GEMM of [`Gram::ExactBytes`]: int8 × int8 products accumulate in int32.
/// 2¹⁵ products of magnitude ≤ 2¹⁴ keep every partial sum ≤ 2²⁹, and even a kernel that
/// shifts one operand to unsigned (u8 ≤ 255 times s8, ≤ 2¹⁵ per product, plus its
/// compensation term) stays below 2³¹.
pub const INT8_CHUNK: usize = 1 << 15;

/// How a·bᵀ is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gram {
    /// Centred byte rows (x − 128), exact integers whatever the GEMM's order or FMA. Rows held
    /// as int8 ([`centred_rows`] where [`int8_gemm_available`]) go through int8 GEMMs with
    /// int32 accumulation over column chunks of at most [`INT8_CHUNK`]; rows held as f32,
    /// through f32 GEMMs over chunks of at most [`CHUNK`]. Chunks are summed in f64.
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

/// a·bᵀ for two centred byte row blocks, exact (see [`crate::pairwise`]'s module doc): GEMMs
/// over column chunks (int8 with int32 sums, or f32; see [`Gram::ExactBytes`]), summed in f64.
fn exact_gram(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ni, nj, dims) = (a.size()[0], b.size()[0], a.size()[1] as usize);
    let int8 = a.kind() == Kind::Int8;
    let chunk = if int8 { INT8_CHUNK } else { CHUNK };
    let mut acc = Tensor::zeros([ni, nj], (Kind::Double, a.device()));
    let mut c0 = 0;
    while c0 < dims {
        let nc = chunk.min(dims - c0);
        let (ca, cb) = (
            a.narrow(1, c0 as i64, nc as i64),
            b.narrow(1, c0 as i64, nc as i64),
        );
        let g = if int8 {
            ca.f_internal_int_mm(&cb.tr())
        } else {
            ca.f_matmul(&cb.tr())
        }
        .map_err(Error::torch("the Gram product of two blocks"))?;
        // An explicit f64 copy then a same-type add is ~2.5× faster than a mixed-type add_.
        acc = acc
            .f_add_(&g.to_kind(Kind::Double))
            .map_err(Error::torch("accumulating the Gram chunks"))?;
        c0 += nc;
    }
    Ok(acc)
}

/// Byte rows `[n, dims]` (uint8) centred, x − 128 ∈ [−128, 127], in the representation
/// [`Gram::ExactBytes`] takes: int8 when `int8`, f32 otherwise.
pub fn centred_rows(x: &Tensor, int8: bool) -> Tensor {
    if int8 {
        // x − 128 as a two's-complement byte is x with its top bit flipped.
        x.bitwise_xor(128).view_dtype(Kind::Int8)
    } else {
        let mut f = x.to_kind(Kind::Float);
        let _ = f.g_sub_scalar_(128.0);
        f
    }
}

/// Whether [`Gram::ExactBytes`] may use int8 GEMMs for `a_rows` × `b_rows` blocks of `dims`
/// columns on `device`: only on the CPU (libtorch's int8 GEMM; several times the f32 rate
/// on CPUs with VNNI or AMX), and only when that GEMM gives exactly the right integers for
/// the extreme inputs at the very shapes the pass will use.
///
/// The probe exists because an int8 GEMM is exact only if nothing in it saturates: VNNI and
/// AMX accumulate in int32 (exact below 2³¹, see [`INT8_CHUNK`]), but a kernel built on
/// AVX2's `vpmaddubsw` adds pairs of products in *saturating* int16, which inputs near ±128
/// overflow. Rows of all −128, all 127 and the two alternations give every product and every
/// adjacent pair its largest magnitude of either sign, so a kernel that saturates anywhere
/// saturates on them; any probe failure or error selects the f32 chunks instead.
pub fn int8_gemm_available(device: tch::Device, a_rows: usize, b_rows: usize, dims: usize) -> bool {
    if device != tch::Device::Cpu || a_rows == 0 || b_rows == 0 || dims == 0 {
        return false;
    }
    let last = match dims % INT8_CHUNK {
        0 => INT8_CHUNK,
        r => r,
    };
    let mut widths = vec![INT8_CHUNK.min(dims)];
    if last != widths[0] {
        widths.push(last);
    }
    widths
        .into_iter()
        .all(|nc| int8_probe(a_rows as i64, b_rows as i64, nc as i64).unwrap_or(false))
}

/// One probe of [`int8_gemm_available`] at shape [m, k] × [k, n].
fn int8_probe(m: i64, n: i64, k: i64) -> std::result::Result<bool, tch::TchError> {
    let (a, b, want) = int8_probe_case(m, n, k);
    let got = a.f_internal_int_mm(&b.tr())?.to_kind(Kind::Int64);
    Ok(got.equal(&want))
}

/// The probe's operands ([m, k] and [n, k] int8) and their exact product (int64, closed form).
/// Row r holds pattern r % 4: all −128, all 127, −128/127 alternating, 127/−128.
fn int8_probe_case(m: i64, n: i64, k: i64) -> (Tensor, Tensor, Tensor) {
    let pattern = |p: i64, c: i64| -> i64 {
        match (p, c % 2) {
            (0, _) | (2, 0) | (3, 1) => -128,
            _ => 127,
        }
    };
    let table: Vec<i8> = (0..4)
        .flat_map(|p| (0..k).map(move |c| pattern(p, c) as i8))
        .collect();
    let table = Tensor::from_slice(&table).view([4, k]);
    let which = |count: i64| Tensor::arange(count, (Kind::Int64, tch::Device::Cpu)).remainder(4);
    let rows = |count: i64| table.index_select(0, &which(count));
    // Columns alternate between two values per pattern: ⌈k/2⌉ even ones, ⌊k/2⌋ odd ones.
    let mut exact = [[0i64; 4]; 4];
    for (p, row) in exact.iter_mut().enumerate() {
        for (q, e) in row.iter_mut().enumerate() {
            *e = (0..2)
                .map(|c| pattern(p as i64, c) * pattern(q as i64, c) * ((k - c + 1) / 2))
                .sum();
        }
    }
    let exact = Tensor::from_slice(&exact.concat()).view([4, 4]);
    let want = exact.index_select(0, &which(m)).index_select(1, &which(n));
    (rows(m), rows(n), want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_int8_probe_expects_the_exact_products() {
        for (m, n, k) in [(1, 1, 1), (5, 6, 7), (9, 4, 64), (4, 8, 1001)] {
            let (a, b, want) = int8_probe_case(m, n, k);
            assert_eq!(a.size(), [m, k]);
            assert_eq!(b.size(), [n, k]);
            // f64 is exact here: |products| ≤ 2¹⁴, k ≤ 1001.
            let exact = a
                .to_kind(Kind::Double)
                .matmul(&b.to_kind(Kind::Double).tr())
                .to_kind(Kind::Int64);
            assert!(exact.equal(&want), "({m}, {n}, {k})");
            let (lo, hi) = (a.min().int64_value(&[]), a.max().int64_value(&[]));
            assert_eq!((lo, hi), (-128, if m > 1 { 127 } else { -128 }));
        }
    }

    #[test]
    fn int8_and_f32_exact_grams_agree_with_integers_over_several_chunks() {
        // Extreme bytes over two int8 chunks and a short third.
        let dims = 2 * INT8_CHUNK + 3;
        let bytes: Vec<u8> = (0..4 * dims)
            .map(|k| {
                if (k / 3 + k / dims).is_multiple_of(2) {
                    0
                } else {
                    255
                }
            })
            .collect();
        let x = Tensor::from_slice(&bytes).view([4, dims as i64]);
        let exact: Vec<i64> = (0..16)
            .map(|ij| {
                let (i, j) = (ij / 4, ij % 4);
                (0..dims)
                    .map(|k| {
                        (i64::from(bytes[i * dims + k]) - 128)
                            * (i64::from(bytes[j * dims + k]) - 128)
                    })
                    .sum()
            })
            .collect();
        let exact = Tensor::from_slice(&exact)
            .view([4, 4])
            .to_kind(Kind::Double);
        let f32_gram = exact_gram(&centred_rows(&x, false), &centred_rows(&x, false)).unwrap();
        assert!(f32_gram.equal(&exact));
        if int8_gemm_available(tch::Device::Cpu, 4, 4, dims) {
            let int8_gram = exact_gram(&centred_rows(&x, true), &centred_rows(&x, true)).unwrap();
            assert!(int8_gram.equal(&exact));
        }
    }

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
