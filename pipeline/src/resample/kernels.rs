//! The two passes' inner loops. Integer sums are exact, so the order in which terms add up
//! does not change a single output value; only the arithmetic must stay Pillow's (8-bit
//! pixels times 22-bit fixed-point weights, summed in `i32`, rounded by `+2^21 >> 22`).
//!
//! The horizontal pass is written with AVX2 intrinsics (chosen at run time), because the
//! compiler does not vectorise a dot product over interleaved RGB taps: for four taps at a
//! time one 16-byte load is shuffled into `(R_t, R_t+1, G_t, G_t+1, B_t, B_t+1, 0, 0)` pairs
//! of `i16` per 128-bit lane, and `vpmaddwd` multiplies and adds the pairs. Its operands are
//! 16-bit, so each weight is split as `w = hi·2^11 + lo` with `lo ∈ [0, 2^11)`: two
//! accumulators give `Σp·hi` and `Σp·lo`, and `(Σp·hi << 11) + Σp·lo` is `Σp·w` exactly (the
//! true sum fits in `i32`, and wrapping arithmetic is exact modulo 2^32). The vertical pass
//! is a row-times-scalar accumulation the compiler vectorises by itself.

use super::{Coeffs, PRECISION_BITS};

/// Taps per SIMD step of the horizontal pass (two per 128-bit lane).
const GROUP: usize = 4;
/// Bits of a weight's low half.
const LO_BITS: u32 = 11;

/// The horizontal coefficients of a run of output columns: for output `j`, `starts[j]` is the
/// byte offset of its first tap in the input row, and its taps (zero-padded to `groups · 4`)
/// are in `w32` and, split and laid out for `vpmaddwd`, in `w16`.
pub(super) struct Horizontal {
    starts: Vec<usize>,
    groups: usize,
    /// `groups · 4` weights per output.
    w32: Vec<i32>,
    /// Per output and group: the high halves, then the low halves, as 16 `i16` each (lane 0:
    /// taps `t, t+1` three times then two zeros; lane 1: taps `t+2, t+3` likewise).
    w16: Vec<[i16; 16]>,
    /// Bytes of the input row that must be readable (pixels plus padding).
    row_len: usize,
}

impl Horizontal {
    /// For outputs `o0..o1` of `c`, reading a row that starts at input column `x0` and holds
    /// `width` pixels.
    pub(super) fn new(c: &Coeffs, o0: usize, o1: usize, x0: usize, width: usize) -> Horizontal {
        let max_len = (o0..o1).map(|j| c.len[j] as usize).max().unwrap_or(0);
        let groups = max_len.div_ceil(GROUP).max(1);
        let taps = groups * GROUP;
        let mut w32 = vec![0i32; (o1 - o0) * taps];
        let mut w16 = vec![[0i16; 16]; (o1 - o0) * groups * 2];
        let mut starts = Vec::with_capacity(o1 - o0);
        for (n, j) in (o0..o1).enumerate() {
            let (first, k) = c.taps(j);
            starts.push((first - x0) * 3);
            let w = &mut w32[n * taps..(n + 1) * taps];
            w[..k.len()].copy_from_slice(k);
            for (g, four) in w.chunks_exact(GROUP).enumerate() {
                let split = |wt: i32| {
                    let hi = i16::try_from(wt >> LO_BITS).expect("resampling weight beyond 2^26");
                    (hi, (wt & ((1 << LO_BITS) - 1)) as i16)
                };
                let (hi, lo) = w16[(n * groups + g) * 2..].split_at_mut(1);
                for (lane, pair) in four.chunks_exact(2).enumerate() {
                    let (h0, l0) = split(pair[0]);
                    let (h1, l1) = split(pair[1]);
                    for ch in 0..3 {
                        let at = lane * 8 + ch * 2;
                        hi[0][at..at + 2].copy_from_slice(&[h0, h1]);
                        lo[0][at..at + 2].copy_from_slice(&[l0, l1]);
                    }
                }
            }
        }
        // The SIMD loop reads 16 bytes at every group's first tap.
        let row_len = width * 3 + taps * 3 + 16;
        Horizontal {
            starts,
            groups,
            w32,
            w16,
            row_len,
        }
    }

    /// Bytes a row handed to [`horizontal`] must hold: its pixels, then padding of any value
    /// (the padding's weights are zero).
    pub(super) fn row_len(&self) -> usize {
        self.row_len
    }
}

#[inline(always)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

pub(super) fn horizontal_scalar(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    let taps = h.groups * GROUP;
    for ((px, &start), w) in dst
        .chunks_exact_mut(3)
        .zip(&h.starts)
        .zip(h.w32.chunks_exact(taps))
    {
        let mut s = [1i32 << (PRECISION_BITS - 1); 3];
        for (p, &wt) in row[start..start + taps * 3].chunks_exact(3).zip(w) {
            s[0] += p[0] as i32 * wt;
            s[1] += p[1] as i32 * wt;
            s[2] += p[2] as i32 * wt;
        }
        px[0] = clip8(s[0]);
        px[1] = clip8(s[1]);
        px[2] = clip8(s[2]);
    }
}

/// # Safety
/// The CPU must support AVX2, and `row.len() >= h.row_len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_avx2(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    use std::arch::x86_64::*;
    // Bytes -> i16 pairs: lane 0 takes pixels 0 and 1 of the four, lane 1 pixels 2 and 3.
    #[rustfmt::skip]
    let shuffle = _mm256_setr_epi8(
        0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
        6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
    );
    let round = _mm_set1_epi32(1 << (PRECISION_BITS - 1));
    let per = h.groups * 2;
    for ((px, &start), w) in dst
        .chunks_exact_mut(3)
        .zip(&h.starts)
        .zip(h.w16.chunks_exact(per))
    {
        let mut acc_hi = _mm256_setzero_si256();
        let mut acc_lo = _mm256_setzero_si256();
        for (g, hl) in w.chunks_exact(2).enumerate() {
            // SAFETY: start + 12 g + 16 <= row_len (checked by the caller) bounds the load.
            let four = _mm_loadu_si128(row.as_ptr().add(start + g * 12) as *const __m128i);
            let d = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(four), shuffle);
            let wh = _mm256_loadu_si256(hl[0].as_ptr() as *const __m256i);
            let wl = _mm256_loadu_si256(hl[1].as_ptr() as *const __m256i);
            acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(d, wh));
            acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(d, wl));
        }
        let acc = _mm256_add_epi32(_mm256_slli_epi32(acc_hi, LO_BITS as i32), acc_lo);
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let s = _mm_srai_epi32(_mm_add_epi32(s, round), PRECISION_BITS as i32);
        // Saturating packs clamp to [0, 255] exactly as clip8 does.
        let s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
        px.copy_from_slice(&_mm_cvtsi128_si32(s).to_le_bytes()[..3]);
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
/// to [`Horizontal::new`] on, followed by padding: at least [`Horizontal::row_len`] bytes.
pub(super) fn horizontal(h: &Horizontal, row: &[u8], dst: &mut [u8]) {
    assert!(row.len() >= h.row_len && dst.len() <= h.starts.len() * 3);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked at run time) and the row is long enough.
        return unsafe { horizontal_avx2(h, row, dst) };
    }
    horizontal_scalar(h, row, dst)
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
