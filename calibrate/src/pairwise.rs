//! Technique 1's maximum pairwise distance, exactly, and the median pairwise distance, in one
//! blockwise pass of GEMMs through tch (CPU, or CUDA when present): the upper triangle of block
//! pairs, each block pair's distances from [`crate::blockwise`] with [`Gram::ExactBytes`].
//!
//! Why the result is exact, with no candidate margin: pixels are bytes, so after centring
//! (x − 128 ∈ [−128, 127]) every product a_k·b_k is an integer of magnitude ≤ 2¹⁴. On the CPU
//! the centred bytes are int8 and the Gram product is libtorch's int8 GEMM, which sums in
//! int32: over column chunks of at most [`INT8_CHUNK`] = 2¹⁵ columns every partial sum is
//! ≤ 2²⁹, exact; that the kernel does not saturate is checked at the pass's own shapes first
//! ([`int8_gemm_available`]; this is also 4–6× faster than f32 on CPUs with VNNI). Otherwise
//! (CUDA, or a CPU whose int8 kernel fails the probe) the product is taken in f32 over column
//! chunks of at most [`CHUNK`] = 1024 = 2¹⁰ columns, so every partial sum a GEMM forms, in
//! whatever order and with or without FMA, is an integer of magnitude ≤ 2²⁴ — exactly
//! representable in f32. Each chunk's result is therefore exact, and chunks are summed in f64,
//! exact below 2⁵³. (Inputs in [−128, 127] are even exact in TF32 and bf16, so a GPU's
//! reduced-precision tensor cores would not change that.) With the
//! squared norms exact as integers, ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b is the exact integer squared
//! distance in units of (1/255)², whatever the cancellation. The winning pair is then
//! recomputed from its bytes in f64, directly as Σ(a − b)², as a check of that argument.

use std::collections::BTreeMap;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::blockwise::{centred_rows, squared_distances, Gram};
pub use crate::blockwise::{int8_gemm_available, CHUNK, INT8_CHUNK};
use crate::error::{Error, Result};

/// Options of the pairwise pass.
#[derive(Debug, Clone)]
pub struct PairwiseOptions {
    /// Images per block: the pass holds a few block×block f64 matrices and block×1024 f32
    /// slabs at a time, so memory stays bounded whatever N is.
    pub block_rows: usize,
    pub device: Device,
    /// The median is exact over all pairs when there are at most this many pairs; otherwise
    /// it is the median of this many distinct pairs drawn uniformly at random.
    pub median_pairs: usize,
    /// Seed of that draw.
    pub seed: u64,
    /// Convert all images to f32 at once when that takes at most this many bytes; otherwise
    /// one block at a time.
    pub whole_f32_bytes: usize,
    /// Use int8 GEMMs where they are exact ([`int8_gemm_available`]); `false` forces the f32
    /// chunks (same results, for tests and comparisons).
    pub allow_int8: bool,
    pub progress: bool,
}

impl Default for PairwiseOptions {
    fn default() -> Self {
        Self {
            block_rows: 1024,
            device: Device::Cpu,
            median_pairs: 1_000_000,
            seed: 0,
            whole_f32_bytes: 1 << 30,
            allow_int8: true,
            progress: false,
        }
    }
}

/// The farthest pair, as row positions in the input (first < second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FarthestPair {
    pub first: usize,
    pub second: usize,
    /// Σ(a_k − b_k)² over the bytes, exact.
    pub squared_bytes: u64,
}

impl FarthestPair {
    /// The Euclidean distance with pixels in [0, 1].
    pub fn distance(&self) -> f64 {
        (self.squared_bytes as f64).sqrt() / 255.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pairwise {
    /// The maximum pairwise distance; on ties the pair that comes first in (first, second)
    /// order.
    pub max: FarthestPair,
    /// Median pairwise distance, pixels in [0, 1].
    pub median: f64,
    /// How the median was obtained, for `calibration.json`.
    pub median_method: String,
}

/// N images of D bytes each, back to back.
#[derive(Debug, Clone, Copy)]
pub struct ByteRows<'a> {
    pub bytes: &'a [u8],
    pub dims: usize,
}

impl<'a> ByteRows<'a> {
    pub fn new(bytes: &'a [u8], dims: usize) -> Result<Self> {
        #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87; MSRV is 1.85
        if dims == 0 || bytes.len() % dims != 0 {
            return Err(Error::Invalid(format!(
                "{} bytes are not a whole number of {dims}-byte images",
                bytes.len()
            )));
        }
        Ok(Self { bytes, dims })
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.dims
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn row(&self, i: usize) -> &'a [u8] {
        &self.bytes[i * self.dims..(i + 1) * self.dims]
    }
}

/// Σ(a_k − b_k)² over bytes, exactly: the f64 recomputation of a candidate pair.
pub fn squared_distance_bytes(a: &[u8], b: &[u8]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum()
}

/// Σ(x − 128)², the exact squared norm of a centred image.
fn centred_norm(a: &[u8]) -> i64 {
    a.iter()
        .map(|&x| {
            let c = i64::from(x) - 128;
            c * c
        })
        .sum()
}

/// Runs the blockwise pass over all pairs of `rows` (N ≥ 2).
pub fn pairwise(rows: ByteRows<'_>, opts: &PairwiseOptions) -> Result<Pairwise> {
    let n = rows.len();
    if n < 2 {
        return Err(Error::Invalid(format!(
            "a pairwise distance needs at least 2 images, got {n}"
        )));
    }
    if opts.median_pairs == 0 {
        return Err(Error::Invalid(
            "--median-pairs 0: the median needs at least one pair".into(),
        ));
    }
    let block = opts.block_rows.max(1).min(n);
    let blocks = n.div_ceil(block);
    let total_pairs = (n as u64) * (n as u64 - 1) / 2;
    let mut median = MedianPlan::new(n, block, total_pairs, opts);

    let norms: Vec<f64> = (0..n).map(|i| centred_norm(rows.row(i)) as f64).collect();
    let norms = Tensor::from_slice(&norms).to_device(opts.device);
    // The bytes are viewed, not copied, on the CPU; `x` is dropped before this function
    // returns, while `rows.bytes` is borrowed for the whole call.
    let x = unsafe {
        Tensor::f_from_blob(
            rows.bytes.as_ptr(),
            &[n as i64, rows.dims as i64],
            &[],
            Kind::Uint8,
            Device::Cpu,
        )
    }
    .map_err(Error::torch("viewing the images"))?;
    let x = x.to_device(opts.device);

    // int8 GEMMs when this CPU's are exact at every block shape the pass uses (the full
    // block and the last, smaller one), f32 chunks otherwise (and on CUDA).
    let last = n - (blocks - 1) * block;
    let int8 = opts.allow_int8
        && [(block, block), (block, last), (last, last)]
            .iter()
            .all(|&(ra, rb)| int8_gemm_available(opts.device, ra, rb, rows.dims));
    // Centred copies of a block's rows, made once per block: for the row block while its
    // row of block pairs runs, for each column block as it comes (1/(2·block) of the GEMM's
    // work). When all of X fits in `whole_f32_bytes` it is converted once instead.
    let width = if int8 { 1 } else { 4 };
    let whole = (n * rows.dims * width <= opts.whole_f32_bytes).then(|| centred_rows(&x, int8));
    let slab = |r0: usize, nr: usize| match &whole {
        Some(w) => w.narrow(0, r0 as i64, nr as i64),
        None => centred_rows(&x.narrow(0, r0 as i64, nr as i64), int8),
    };

    let bar = progress::bar((blocks * (blocks + 1) / 2) as u64, opts.progress, "blocks");
    bar.set_message("pairwise distances");
    let mut best: Option<(f64, usize, usize)> = None;
    for bi in 0..blocks {
        let (i0, ni) = (bi * block, block.min(n - bi * block));
        let a = slab(i0, ni);
        for bj in bi..blocks {
            let (j0, nj) = (bj * block, block.min(n - bj * block));
            let b = if bi == bj {
                a.shallow_clone()
            } else {
                slab(j0, nj)
            };
            // Technique 1: ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b, exact integers held in f64.
            let mut d2 = squared_distances(
                &a,
                &norms.narrow(0, i0 as i64, ni as i64),
                &b,
                &norms.narrow(0, j0 as i64, nj as i64),
                Gram::ExactBytes,
            )?;
            if bi == bj {
                // Only pairs i < j: the diagonal and below can never win.
                let keep = Tensor::ones([ni as i64, nj as i64], (Kind::Bool, opts.device)).triu(1);
                d2 = d2.masked_fill(&keep.logical_not(), -1.0);
            }
            // argmax returns the first maximal index in row-major order: the smallest (i, j).
            let flat = d2.view([-1]);
            let at = flat.argmax(0, false).int64_value(&[]) as usize;
            let value = flat.double_value(&[at as i64]);
            let (i, j) = (i0 + at / nj, j0 + at % nj);
            let better = match best {
                None => true,
                Some((v, bi_, bj_)) => value > v || (value == v && (i, j) < (bi_, bj_)),
            };
            if better {
                best = Some((value, i, j));
            }
            median.collect(bi, bj, (i0, ni), (j0, nj), &flat)?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let (value, first, second) = best.expect("n ≥ 2 gives at least one pair");
    // Recompute the winner from its bytes: must agree exactly with the GEMM's integer.
    let squared_bytes = squared_distance_bytes(rows.row(first), rows.row(second));
    if value != squared_bytes as f64 {
        return Err(Error::Internal(format!(
            "GEMM on {:?} gave squared distance {value} for images {first} and {second}, \
             the bytes give {squared_bytes}: this device's {} GEMM is not exact",
            opts.device,
            if int8 { "int8" } else { "f32" }
        )));
    }
    let (median, median_method) = median.finish(total_pairs);
    Ok(Pairwise {
        max: FarthestPair {
            first,
            second,
            squared_bytes,
        },
        median,
        median_method,
    })
}

/// Which squared distances the median is taken over, and the ones gathered so far.
struct MedianPlan {
    /// All pairs (exact median) when `None`; otherwise, per block pair, the flat indices into
    /// that block's d² matrix of the sampled pairs.
    sampled: Option<BTreeMap<(usize, usize), Vec<i64>>>,
    seed: u64,
    values: Vec<f64>,
}

impl MedianPlan {
    fn new(n: usize, block: usize, total_pairs: u64, opts: &PairwiseOptions) -> Self {
        if total_pairs <= opts.median_pairs as u64 {
            return Self {
                sampled: None,
                seed: opts.seed,
                values: Vec::with_capacity(total_pairs as usize),
            };
        }
        // Pairs (i < j) are numbered 0..total in row-major order of the upper triangle; a
        // uniform draw of distinct numbers is a uniform draw of distinct pairs.
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut by_block: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
        for k in sample(&mut rng, total_pairs as usize, opts.median_pairs) {
            let (i, j) = unrank_pair(k as u64, n as u64);
            let (i, j) = (i as usize, j as usize);
            let cols = block.min(n - (j / block) * block);
            by_block
                .entry((i / block, j / block))
                .or_default()
                .push(((i % block) * cols + j % block) as i64);
        }
        Self {
            sampled: Some(by_block),
            seed: opts.seed,
            values: Vec::with_capacity(opts.median_pairs),
        }
    }

    fn collect(
        &mut self,
        bi: usize,
        bj: usize,
        (_, ni): (usize, usize),
        (_, nj): (usize, usize),
        flat: &Tensor,
    ) -> Result<()> {
        let picked = match &self.sampled {
            None => {
                let all = Vec::<f64>::try_from(flat.to_device(Device::Cpu))
                    .map_err(Error::torch("reading distances for the median"))?;
                if bi == bj {
                    // Upper triangle only.
                    (0..ni)
                        .flat_map(|i| (i + 1..nj).map(move |j| (i, j)))
                        .map(|(i, j)| all[i * nj + j])
                        .collect()
                } else {
                    all
                }
            }
            Some(plan) => match plan.get(&(bi, bj)) {
                None => return Ok(()),
                Some(idx) => {
                    let idx = Tensor::from_slice(idx).to_device(flat.device());
                    Vec::<f64>::try_from(flat.index_select(0, &idx).to_device(Device::Cpu))
                        .map_err(Error::torch("reading sampled distances"))?
                }
            },
        };
        self.values.extend(picked);
        Ok(())
    }

    fn finish(mut self, total_pairs: u64) -> (f64, String) {
        self.values.sort_by(f64::total_cmp);
        let v = &self.values;
        let dist = |d2: f64| d2.sqrt() / 255.0;
        let m = v.len();
        let median = if m % 2 == 1 {
            dist(v[m / 2])
        } else {
            (dist(v[m / 2 - 1]) + dist(v[m / 2])) / 2.0
        };
        let method = match self.sampled {
            None => format!("exact over all {total_pairs} pairs"),
            Some(_) => format!(
                "over {m} distinct pairs drawn uniformly from all {total_pairs} (seed {})",
                self.seed
            ),
        };
        (median, method)
    }
}

/// The k-th pair (i < j) of n in row-major order of the upper triangle.
fn unrank_pair(k: u64, n: u64) -> (u64, u64) {
    // Row i starts at S(i) = i·n − i(i+1)/2; find the last i with S(i) ≤ k. S(0) = 0 ≤ k and
    // S(n − 1) = n(n − 1)/2 > k bracket it.
    let start = |i: u64| i * n - i * (i + 1) / 2;
    let (mut lo, mut hi) = (0u64, n - 1);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if start(mid) <= k {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, lo + 1 + (k - start(lo)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrank_enumerates_the_upper_triangle_in_order() {
        for n in [2u64, 3, 7, 10] {
            let mut k = 0;
            for i in 0..n {
                for j in i + 1..n {
                    assert_eq!(unrank_pair(k, n), (i, j), "n={n} k={k}");
                    k += 1;
                }
            }
        }
    }
}
