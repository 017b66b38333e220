//! Pillow's resampler (libImaging/Resample.c, Pillow 9–11), reproduced bit for bit.
//!
//! Pillow resizes in two separable passes: horizontal first, its result rounded to uint8, then
//! vertical. The filter's support is widened by the downscale factor (antialiasing), taps that
//! fall outside the image are dropped and the rest renormalised, and the normalised weights are
//! stored in fixed point with 22 fractional bits, rounded half away from zero. The same maths in
//! floating point is off by one on ~10 % of values, so every step below mirrors the C code,
//! including the `f64` expressions, the truncating casts and the final `>> 22` clip.
//!
//! Unlike Pillow, we can compute any rectangle of the output on its own (each output pixel only
//! depends on its own coefficient row and column), which lets Resize + CenterCrop skip the
//! columns and rows the crop throws away, and lets the decoder produce only the input pixels the
//! kept outputs read ([`needed_input`]).

mod kernels;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use shards::Rgb8;

/// Fixed-point fraction bits of the 8-bit path (`PRECISION_BITS` = 32 − 8 − 2).
const PRECISION_BITS: u32 = 22;

/// A resampling filter with Pillow's semantics (`Image.Resampling.BILINEAR` / `LANCZOS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// Triangle filter, support 1 (Pillow BILINEAR; torchvision's default for PIL images).
    Bilinear,
    /// Lanczos-3 windowed sinc, support 3 (Pillow LANCZOS / ANTIALIAS).
    Lanczos,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }

    /// Pillow's name for the filter, as written in manifests.
    pub fn pil_name(self) -> &'static str {
        match self {
            Filter::Bilinear => "BILINEAR",
            Filter::Lanczos => "LANCZOS",
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// A half-open rectangle `[x0, x1) × [y0, y1)` in some image's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Rect {
    pub fn new(x0: u32, y0: u32, width: u32, height: u32) -> Rect {
        Rect {
            x0,
            y0,
            x1: x0 + width,
            y1: y0 + height,
        }
    }
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    pub fn contains(&self, other: &Rect) -> bool {
        self.x0 <= other.x0 && self.y0 <= other.y0 && other.x1 <= self.x1 && other.y1 <= self.y1
    }
}

/// Coefficients of one axis: for output index `i`, taps start at input `first[i]`, there are
/// `len[i]` of them, weights `weights[i * ksize ..][.. len[i]]` in 22-bit fixed point.
#[derive(Debug, Clone)]
pub struct Coeffs {
    first: Vec<u32>,
    len: Vec<u32>,
    ksize: usize,
    weights: Vec<i32>,
}

impl Coeffs {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` samples to
    /// `out_size` (no box: `in0 = 0`, `in1 = in_size`).
    pub fn new(in_size: u32, out_size: u32, filter: Filter) -> Coeffs {
        assert!(
            in_size > 0 && out_size > 0,
            "resize to or from an empty axis"
        );
        // Pillow takes (in1 - in0) as a C float, then divides in double.
        let scale = (in_size as f32) as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let n = out_size as usize;
        let mut first = Vec::with_capacity(n);
        let mut len = Vec::with_capacity(n);
        let mut weights = vec![0i32; n * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..n {
            let center = (xx as f64 + 0.5) * scale;
            // C casts truncate toward zero; the clamps then match Pillow's.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
            let xmax = xmax.max(0) as usize;
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(xmax) {
                let w = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            let row = &mut weights[xx * ksize..xx * ksize + xmax];
            for (dst, &kx) in row.iter_mut().zip(&k[..xmax]) {
                let kx = if ww != 0.0 { kx / ww } else { kx };
                let scaled = kx * (1u32 << PRECISION_BITS) as f64;
                *dst = if kx < 0.0 {
                    (-0.5 + scaled) as i32
                } else {
                    (0.5 + scaled) as i32
                };
            }
            first.push(xmin as u32);
            len.push(xmax as u32);
        }
        Coeffs {
            first,
            len,
            ksize,
            weights,
        }
    }

    /// [`Coeffs::new`] through a small per-thread cache: a dataset has few distinct sizes, the
    /// Lanczos table costs two `sin` per tap, and each image needs every table twice (to plan
    /// the partial decode, then to resample).
    pub fn cached(in_size: u32, out_size: u32, filter: Filter) -> Rc<Coeffs> {
        thread_local! {
            static CACHE: RefCell<HashMap<(u32, u32, Filter), Rc<Coeffs>>> =
                RefCell::new(HashMap::new());
        }
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= 256 {
                cache.clear();
            }
            cache
                .entry((in_size, out_size, filter))
                .or_insert_with(|| Rc::new(Coeffs::new(in_size, out_size, filter)))
                .clone()
        })
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let len = self.len[i] as usize;
        (
            self.first[i] as usize,
            &self.weights[i * self.ksize..i * self.ksize + len],
        )
    }

    /// The input span `[lo, hi)` read by outputs `[o0, o1)`.
    pub fn span(&self, o0: u32, o1: u32) -> (u32, u32) {
        let mut lo = u32::MAX;
        let mut hi = 0;
        for i in o0 as usize..o1 as usize {
            lo = lo.min(self.first[i]);
            hi = hi.max(self.first[i] + self.len[i]);
        }
        (lo, hi)
    }
}

/// The rectangle of the input that the outputs in `out` read when resizing `in_w × in_h` to
/// `out_w × out_h` (the whole input axis where that axis keeps its size, as Pillow skips it).
pub fn needed_input(
    in_w: u32,
    in_h: u32,
    out_w: u32,
    out_h: u32,
    filter: Filter,
    out: Rect,
) -> Rect {
    let (x0, x1) = if in_w == out_w {
        (out.x0, out.x1)
    } else {
        Coeffs::cached(in_w, out_w, filter).span(out.x0, out.x1)
    };
    let (y0, y1) = if in_h == out_h {
        (out.y0, out.y1)
    } else {
        Coeffs::cached(in_h, out_h, filter).span(out.y0, out.y1)
    };
    Rect { x0, y0, x1, y1 }
}

/// A borrowed RGB8 (HWC) region of a larger conceptual image: pixel `(x, y)` of that image is at
/// `data[(y - origin.1) * stride + (x - origin.0) * 3 ..]`, valid for `x, y` inside `avail`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [u8],
    /// Bytes per row of `data`.
    pub stride: usize,
    /// Image coordinates of `data[0]`.
    pub origin: (u32, u32),
    /// The pixels `data` holds, in image coordinates.
    pub avail: Rect,
}

impl<'a> View<'a> {
    /// A whole image as a view.
    pub fn of(img: &'a Rgb8) -> View<'a> {
        View {
            data: &img.data,
            stride: img.width as usize * 3,
            origin: (0, 0),
            avail: Rect::new(0, 0, img.width, img.height),
        }
    }

    /// The same pixels seen as an image whose (0, 0) is `(x0, y0)` of this one, `width ×
    /// height` large (a crop); only the pixels available in both are available.
    pub fn shifted(self, x0: u32, y0: u32, width: u32, height: u32) -> View<'a> {
        let crop = Rect::new(x0, y0, width, height);
        let inter = Rect {
            x0: self.avail.x0.max(crop.x0),
            y0: self.avail.y0.max(crop.y0),
            x1: self.avail.x1.min(crop.x1),
            y1: self.avail.y1.min(crop.y1),
        };
        assert!(
            inter.x0 < inter.x1 && inter.y0 < inter.y1,
            "crop outside the decoded pixels"
        );
        let off = (inter.y0 - self.origin.1) as usize * self.stride
            + (inter.x0 - self.origin.0) as usize * 3;
        View {
            data: &self.data[off..],
            stride: self.stride,
            origin: (inter.x0 - x0, inter.y0 - y0),
            avail: Rect {
                x0: inter.x0 - x0,
                y0: inter.y0 - y0,
                x1: inter.x1 - x0,
                y1: inter.y1 - y0,
            },
        }
    }

    fn row(&self, y: u32, x0: u32, x1: u32) -> &'a [u8] {
        let start = (y - self.origin.1) as usize * self.stride + (x0 - self.origin.0) as usize * 3;
        &self.data[start..start + (x1 - x0) as usize * 3]
    }

    /// Row `y` from column `x0` to the end of the buffer (this row's pixels, then whatever
    /// follows them in memory).
    fn row_on(&self, y: u32, x0: u32) -> &'a [u8] {
        let start = (y - self.origin.1) as usize * self.stride + (x0 - self.origin.0) as usize * 3;
        &self.data[start..]
    }

    /// Copies the rectangle `r` into a new image.
    pub fn copy_rect(&self, r: Rect) -> Rgb8 {
        assert!(self.avail.contains(&r), "copy outside the decoded pixels");
        let mut data = Vec::with_capacity(r.width() as usize * r.height() as usize * 3);
        for y in r.y0..r.y1 {
            data.extend_from_slice(self.row(y, r.x0, r.x1));
        }
        Rgb8 {
            width: r.width(),
            height: r.height(),
            data,
        }
    }
}

#[cfg(test)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an `in_w × in_h` image (seen through `src`) to `out_w × out_h` like Pillow's
/// `Image.resize((out_w, out_h), filter)`, returning only the output rectangle `out`.
/// `src.avail` must contain [`needed_input`] for the same arguments.
pub fn resize_rect(
    src: View<'_>,
    (in_w, in_h): (u32, u32),
    (out_w, out_h): (u32, u32),
    filter: Filter,
    out: Rect,
) -> Rgb8 {
    assert!(out.x1 <= out_w && out.y1 <= out_h && out.width() > 0 && out.height() > 0);
    let need = needed_input(in_w, in_h, out_w, out_h, filter, out);
    assert!(
        src.avail.contains(&need),
        "resampler needs input {need:?} but only {:?} was decoded",
        src.avail
    );
    let ow = out.width() as usize;

    // Horizontal pass over the input rows the vertical pass will read, kept as uint8 like
    // Pillow's intermediate image.
    let horiz = (in_w != out_w).then(|| {
        let c = Coeffs::cached(in_w, out_w, filter);
        kernels::Horizontal::new(
            &c,
            out.x0 as usize,
            out.x1 as usize,
            need.x0 as usize,
            need.width() as usize,
        )
    });
    let tmp_rows = need.y0..need.y1;
    let mut tmp = vec![0u8; tmp_rows.len() * ow * 3];
    // The kernel reads whole SIMD chunks past a row's last tap: it reads the row in place
    // when the pixels after it (the next rows) cover that, and a zero-padded copy otherwise.
    let span = need.width() as usize * 3;
    let mut padded = Vec::new();
    for (y, dst) in tmp_rows.clone().zip(tmp.chunks_exact_mut(ow * 3)) {
        match &horiz {
            None => dst.copy_from_slice(src.row(y, out.x0, out.x1)),
            Some(h) => {
                let tail = src.row_on(y, need.x0);
                let row = if tail.len() >= h.row_len() {
                    tail
                } else {
                    padded.resize(h.row_len(), 0);
                    padded[..span].copy_from_slice(&tail[..span]);
                    &padded[..]
                };
                kernels::horizontal(h, row, dst);
            }
        }
    }

    if in_h == out_h {
        return Rgb8 {
            width: out.width(),
            height: out.height(),
            data: tmp,
        };
    }
    let vert = Coeffs::cached(in_h, out_h, filter);
    let mut data = vec![0u8; ow * out.height() as usize * 3];
    let mut acc = vec![0i32; ow * 3];
    let tmp_rows: Vec<&[u8]> = tmp.chunks_exact(ow * 3).collect();
    for (yy, dst) in (out.y0 as usize..out.y1 as usize).zip(data.chunks_exact_mut(ow * 3)) {
        let (first, k) = vert.taps(yy);
        let r = first - need.y0 as usize;
        // Row-at-a-time accumulation vectorises; the sum is the same as Pillow's per-pixel
        // loop because integer addition is exact.
        kernels::vertical(&tmp_rows[r..r + k.len()], k, &mut acc, dst);
    }
    Rgb8 {
        width: out.width(),
        height: out.height(),
        data,
    }
}

/// One row of the horizontal pass, written like Pillow's loop (the reference the vectorised
/// kernel is tested against): `row` holds RGB pixels starting at input x = `row_x0`; writes
/// outputs `out_x0 ..` (as many as fit in `dst`).
#[cfg(test)]
fn horizontal_row(row: &[u8], row_x0: usize, c: &Coeffs, out_x0: usize, dst: &mut [u8]) {
    for (j, px) in dst.chunks_exact_mut(3).enumerate() {
        let (first, k) = c.taps(out_x0 + j);
        let start = (first - row_x0) * 3;
        let taps = &row[start..start + k.len() * 3];
        let (mut s0, mut s1, mut s2) = (1i32 << (PRECISION_BITS - 1), 0, 0);
        s1 += s0;
        s2 += s0;
        for (p, &w) in taps.chunks_exact(3).zip(k) {
            s0 += p[0] as i32 * w;
            s1 += p[1] as i32 * w;
            s2 += p[2] as i32 * w;
        }
        px[0] = clip8(s0);
        px[1] = clip8(s1);
        px[2] = clip8(s2);
    }
}

/// `Image.resize((out_w, out_h), filter)` of a whole image (a copy when the size matches): the
/// reference the tests hold [`resize_rect`] to.
#[cfg(test)]
fn resize(img: &Rgb8, out_w: u32, out_h: u32, filter: Filter) -> Rgb8 {
    resize_rect(
        View::of(img),
        (img.width, img.height),
        (out_w, out_h),
        filter,
        Rect::new(0, 0, out_w, out_h),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy() {
        let img = Rgb8 {
            width: 3,
            height: 2,
            data: (0..18).collect(),
        };
        assert_eq!(resize(&img, 3, 2, Filter::Lanczos), img);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point_and_clip() {
        let c = Coeffs::new(218, 64, Filter::Bilinear);
        for i in 0..64 {
            let (_, k) = c.taps(i);
            let sum: i64 = k.iter().map(|&w| w as i64).sum();
            assert!((sum - (1 << 22)).abs() <= k.len() as i64, "row {i}: {sum}");
        }
        // Lanczos has negative lobes: overshoot must clip, not wrap.
        assert_eq!(clip8(-5 << 22), 0);
        assert_eq!(clip8(300 << 22), 255);
    }

    #[test]
    fn simd_and_scalar_horizontal_kernels_equal_pillows_loop() {
        // Pseudo-random pixels, and hard 0/255 edges where Lanczos over- and undershoots (the
        // clamp), across downscales, upscales, sub-ranges of outputs and shifted row starts.
        let noise: Vec<u8> = (0..1031 * 3).map(|i| (i * 7919 % 256) as u8).collect();
        let edges: Vec<u8> = (0..1031 * 3).map(|i| [0, 255][i / 3 / 2 % 2]).collect();
        for row in [noise, edges] {
            for (in_w, out_w, filter) in [
                (1031, 256, Filter::Lanczos),
                (1031, 97, Filter::Bilinear),
                (1031, 1200, Filter::Lanczos),
                (1031, 1031 / 3, Filter::Bilinear),
                (1031, 2000, Filter::Bilinear),
                (1031, 5, Filter::Lanczos),
                (1031, 1030, Filter::Lanczos),
            ] {
                let c = Coeffs::new(in_w, out_w, filter);
                let (o0, o1) = (out_w as usize / 3, out_w as usize);
                let (x0, x1) = c.span(o0 as u32, o1 as u32);
                let mut want = vec![0u8; (o1 - o0) * 3];
                horizontal_row(&row, 0, &c, o0, &mut want);
                let h = kernels::Horizontal::new(&c, o0, o1, x0 as usize, (x1 - x0) as usize);
                let mut padded = row[x0 as usize * 3..x1 as usize * 3].to_vec();
                padded.resize(h.row_len(), 0);
                let mut simd = vec![0u8; want.len()];
                kernels::horizontal(&h, &padded, &mut simd);
                assert_eq!(simd, want, "{in_w} -> {out_w} {filter:?}");
                let mut scalar = vec![0u8; want.len()];
                kernels::horizontal_scalar(&h, &padded, &mut scalar);
                assert_eq!(scalar, want, "{in_w} -> {out_w} {filter:?}");
            }
        }
    }

    #[test]
    fn rect_of_the_output_equals_the_crop_of_the_whole_output() {
        let (w, h) = (37u32, 29u32);
        let data = (0..w * h * 3).map(|i| (i * 7919 % 251) as u8).collect();
        let img = Rgb8 {
            width: w,
            height: h,
            data,
        };
        for filter in [Filter::Bilinear, Filter::Lanczos] {
            let full = resize(&img, 13, 11, filter);
            let r = Rect::new(3, 2, 7, 8);
            let part = resize_rect(View::of(&img), (w, h), (13, 11), filter, r);
            assert_eq!(part, View::of(&full).copy_rect(r));
        }
    }
}
