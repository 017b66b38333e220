//! The two passes' inner loops, shaped so the compiler vectorises them, and compiled twice:
//! for the baseline x86-64 target and for AVX2 (picked at run time). Integer sums are exact,
//! so the order in which lanes add up does not change a single output value.

use super::{Coeffs, PRECISION_BITS};

/// Bytes per horizontal chunk: a multiple of 3 (RGB) and of 8 (AVX2 i32 lanes), so that lane
/// `i` of every chunk always holds channel `i % 3`.
const LANES: usize = 24;

/// The horizontal coefficients of a run of output columns, expanded per byte: for output `j`,
/// `w[j * chunks * LANES ..]` holds `w_t` at bytes `3t, 3t+1, 3t+2` and zeros after the taps,
/// and `starts[j]` is the byte offset of its first tap in the input row.
pub(super) struct Horizontal {
    starts: Vec<usize>,
    w: Vec<i32>,
    chunks: usize,
}

impl Horizontal {
    /// For outputs `o0..o1` of `c`, reading a row that starts at input column `x0`.
    pub(super) fn new(c: &Coeffs, o0: usize, o1: usize, x0: usize) -> Horizontal {
        let max_len = (o0..o1).map(|j| c.len[j] as usize).max().unwrap_or(0);
        let chunks = (max_len * 3).div_ceil(LANES).max(1);
        let mut w = vec![0i32; (o1 - o0) * chunks * LANES];
        let mut starts = Vec::with_capacity(o1 - o0);
        for (j, dst) in (o0..o1).zip(w.chunks_exact_mut(chunks * LANES)) {
            let (first, k) = c.taps(j);
            starts.push((first - x0) * 3);
            for (t, &wt) in k.iter().enumerate() {
                dst[3 * t..3 * t + 3].fill(wt);
            }
        }
        Horizontal { starts, w, chunks }
    }

    /// Bytes a padded row needs beyond its pixels so every chunk read stays in bounds.
    pub(super) fn padding(&self) -> usize {
        self.chunks * LANES
    }
}

#[inline(always)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

#[inline(always)]
fn horizontal_impl(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    let per = h.chunks * LANES;
    for ((px, &start), w) in dst
        .chunks_exact_mut(3)
        .zip(&h.starts)
        .zip(h.w.chunks_exact(per))
    {
        let b = &row[start..start + per];
        let mut acc = [0i32; LANES];
        for (bc, wc) in b.chunks_exact(LANES).zip(w.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += bc[i] as i32 * wc[i];
            }
        }
        let mut s = [1i32 << (PRECISION_BITS - 1); 3];
        for (i, a) in acc.iter().enumerate() {
            s[i % 3] += a;
        }
        px[0] = clip8(s[0]);
        px[1] = clip8(s[1]);
        px[2] = clip8(s[2]);
    }
}

#[inline(always)]
fn vertical_impl(rows: &[&[u8]], k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
    acc.fill(1 << (PRECISION_BITS - 1));
    for (row, &w) in rows.iter().zip(k) {
        for (a, &p) in acc.iter_mut().zip(row.iter()) {
            *a += p as i32 * w;
        }
    }
    for (d, &a) in dst.iter_mut().zip(acc.iter()) {
        *d = clip8(a);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn horizontal_avx2(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    horizontal_impl(h, row, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn vertical_avx2(rows: &[&[u8]], k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
    vertical_impl(rows, k, acc, dst)
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One output row of the horizontal pass. `row` holds the input pixels from the column given
/// to [`Horizontal::new`] on, followed by at least [`Horizontal::padding`] bytes (any value:
/// their weights are zero).
pub(super) fn horizontal(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { horizontal_avx2(h, row, dst) };
    }
    horizontal_impl(h, row, dst)
}

/// One output row of the vertical pass: `dst[x] = clip8(Σ rows[t][x] · k[t])`; `acc` is scratch
/// of `dst.len()`.
pub(super) fn vertical(rows: &[&[u8]], k: &[i32], acc: &mut [i32], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { vertical_avx2(rows, k, acc, dst) };
    }
    vertical_impl(rows, k, acc, dst)
}
