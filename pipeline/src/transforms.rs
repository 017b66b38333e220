//! The ingestion recipes of SPEC §3, pixel-exact with torchvision on PIL images.
//!
//! API used by the dataset readers (stable):
//! - [`Recipe`] (`Identity`, `CropResize { crop, size, filter }`, `ResizeCrop { size, filter }`)
//!   with [`Recipe::describe`] (for the manifest) and [`Recipe::output_size`];
//! - [`process_encoded`]`(bytes, &recipe) -> Result<Rgb8, ImageError>`: sniffs JPEG/PNG/WebP,
//!   decodes only the pixels the recipe reads, converts to RGB like `convert('RGB')`, transforms;
//! - [`process_rgb`]`(&Rgb8, &recipe)` for pixels that are already decoded (CIFAR, tests);
//! - [`ImageError`]: one line, no file name (the caller adds the file or key).
//!
//! The reference is `T(PIL.Image.open(f).convert('RGB'))` with `T` built from torchvision's
//! `Resize(s)` (shorter side → `s`, longer → `int(s * long / short)`, Pillow resampling, a no-op
//! when the size already matches) and `CenterCrop(s)` (offsets `round((n - s) / 2)`, half to
//! even). Pixels are bit-identical to it (see `tests/pillow_parity.rs`).

pub use crate::decode::ImageError;
use crate::decode::{decode_region, Decoded, Limits};
pub use crate::resample::Filter;
use crate::resample::{needed_input, resize_rect, Rect, View};
use shards::Rgb8;

/// How one image becomes one training sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipe {
    /// Used as decoded (CIFAR-10's 32×32).
    Identity,
    /// `CenterCrop(crop)` then `Resize(size)` (CelebA: 140 then 64, bilinear).
    CropResize {
        crop: u32,
        size: u32,
        filter: Filter,
    },
    /// `Resize(size)` on the shorter side then `CenterCrop(size)` (LSUN, folders: bilinear;
    /// FFHQ: Lanczos, as the authors' LMDB was made).
    ResizeCrop { size: u32, filter: Filter },
}

impl Recipe {
    /// The transform in torchvision's words, recorded in manifests.
    pub fn describe(&self) -> String {
        match *self {
            Recipe::Identity => "identity".to_string(),
            Recipe::CropResize { crop, size, filter } => format!(
                "CenterCrop({crop}) -> Resize({size}, {})",
                filter.pil_name()
            ),
            Recipe::ResizeCrop { size, filter } => format!(
                "Resize({size}, {}) -> CenterCrop({size})",
                filter.pil_name()
            ),
        }
    }

    /// Width and height of every output; `(0, 0)` for `Identity`, whose output is the input.
    pub fn output_size(&self) -> (u32, u32) {
        match *self {
            Recipe::Identity => (0, 0),
            Recipe::CropResize { size, .. } | Recipe::ResizeCrop { size, .. } => (size, size),
        }
    }
}

/// torchvision `CenterCrop` offset: `int(round((n - s) / 2))` with Python's half-to-even.
pub fn center_offset(n: u32, s: u32) -> u32 {
    debug_assert!(n >= s);
    let d = n - s;
    let half = d / 2;
    // d odd: (d / 2) ends in .5 and rounds to the even neighbour.
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// torchvision `Resize(s)` output size for a `w × h` image: the shorter side becomes `s`, the
/// longer `int(s * long / short)` (true division, then truncation, as Python computes it).
pub fn resize_size(w: u32, h: u32, s: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((s as u64 * long as u64) as f64 / short as f64) as u32;
    if w <= h {
        (s, new_long)
    } else {
        (new_long, s)
    }
}

/// The geometry of one recipe on one input size: resize the `src` rectangle (the crop, or
/// the whole image) from its size to `scaled`, then keep `out` of the result.
struct Plan {
    src: Rect,
    scaled: (u32, u32),
    out: Rect,
    filter: Filter,
}

impl Plan {
    fn new(recipe: &Recipe, w: u32, h: u32) -> Result<Plan, ImageError> {
        if w == 0 || h == 0 {
            return Err(ImageError::Empty);
        }
        if let Recipe::CropResize { size: 0, .. } | Recipe::ResizeCrop { size: 0, .. } = recipe {
            return Err(ImageError::Unsupported("output size 0x0".into()));
        }
        Ok(match *recipe {
            Recipe::Identity => Plan {
                src: Rect::new(0, 0, w, h),
                scaled: (w, h),
                out: Rect::new(0, 0, w, h),
                filter: Filter::Bilinear,
            },
            Recipe::CropResize { crop, size, filter } => {
                if w < crop || h < crop {
                    return Err(ImageError::TooSmall {
                        width: w,
                        height: h,
                        crop,
                    });
                }
                let src = Rect::new(center_offset(w, crop), center_offset(h, crop), crop, crop);
                Plan {
                    src,
                    scaled: (size, size),
                    out: Rect::new(0, 0, size, size),
                    filter,
                }
            }
            Recipe::ResizeCrop { size, filter } => {
                let (sw, sh) = resize_size(w, h, size);
                if sw < size || sh < size || sw == 0 || sh == 0 {
                    return Err(ImageError::Unsupported(format!(
                        "a {w}x{h} image resizes to {sw}x{sh}, too small for a {size}x{size} crop"
                    )));
                }
                Plan {
                    src: Rect::new(0, 0, w, h),
                    scaled: (sw, sh),
                    out: Rect::new(center_offset(sw, size), center_offset(sh, size), size, size),
                    filter,
                }
            }
        })
    }

    /// The input pixels (full-image coordinates) the kept outputs read.
    fn input_needed(&self) -> Rect {
        let r = needed_input(
            self.src.width(),
            self.src.height(),
            self.scaled.0,
            self.scaled.1,
            self.filter,
            self.out,
        );
        Rect {
            x0: r.x0 + self.src.x0,
            y0: r.y0 + self.src.y0,
            x1: r.x1 + self.src.x0,
            y1: r.y1 + self.src.y0,
        }
    }

    /// Runs the plan on pixels covering `input_needed()`.
    fn run(&self, view: View<'_>) -> Rgb8 {
        let src = view.shifted(
            self.src.x0,
            self.src.y0,
            self.src.width(),
            self.src.height(),
        );
        let in_size = (self.src.width(), self.src.height());
        if in_size == self.scaled {
            // torchvision's Resize is a no-op at the same size, so this is a plain crop.
            return src.copy_rect(self.out);
        }
        resize_rect(src, in_size, self.scaled, self.filter, self.out)
    }
}

/// Applies `recipe` to decoded pixels.
pub fn process_rgb(img: &Rgb8, recipe: &Recipe) -> Result<Rgb8, ImageError> {
    let plan = Plan::new(recipe, img.width, img.height)?;
    if let Recipe::Identity = recipe {
        return Ok(img.clone());
    }
    Ok(plan.run(View::of(img)))
}

/// Decodes a JPEG, PNG or WebP file's bytes and applies `recipe`, decoding only the part of
/// the image the recipe reads, within the default [`Limits`].
pub fn process_encoded(bytes: &[u8], recipe: &Recipe) -> Result<Rgb8, ImageError> {
    process_encoded_with(bytes, recipe, true, Limits::default())
}

/// [`process_encoded`] with partial decoding switched on or off (`false` decodes every pixel
/// first; the tests prove both give the same bytes, the benchmark times both) and with the
/// given limits (`--max-pixels`).
pub fn process_encoded_with(
    bytes: &[u8],
    recipe: &Recipe,
    partial: bool,
    limits: Limits,
) -> Result<Rgb8, ImageError> {
    let mut plan = None;
    let decoded: Decoded = decode_region(
        bytes,
        |w, h| {
            let p = Plan::new(recipe, w, h)?;
            let need = p.input_needed();
            plan = Some(p);
            Ok(need)
        },
        partial,
        limits,
    )?;
    let plan = plan.expect("decoder asked for the region");
    if let Recipe::Identity = recipe {
        return Ok(decoded.into_full());
    }
    Ok(plan.run(decoded.view()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_crop_offsets_round_half_to_even() {
        // torchvision: int(round((n - 96) / 2)).
        assert_eq!(center_offset(127, 96), 16); // 15.5 -> 16
        assert_eq!(center_offset(129, 96), 16); // 16.5 -> 16
        assert_eq!(center_offset(131, 96), 18); // 17.5 -> 18
        assert_eq!(center_offset(128, 96), 16);
        assert_eq!(center_offset(96, 96), 0);
        // CelebA: 178x218 -> CenterCrop(140) starts at (19, 39).
        assert_eq!((center_offset(178, 140), center_offset(218, 140)), (19, 39));
    }

    #[test]
    fn resize_keeps_the_shorter_side_and_truncates_the_longer() {
        assert_eq!(resize_size(341, 256, 96), (127, 96));
        assert_eq!(resize_size(256, 341, 96), (96, 127));
        assert_eq!(resize_size(1024, 1024, 256), (256, 256));
        // 96 * 400 / 300 = 128 exactly; 96 * 401 / 300 = 128.32 -> 128.
        assert_eq!(resize_size(400, 300, 96), (128, 96));
        assert_eq!(resize_size(401, 300, 96), (128, 96));
    }

    #[test]
    fn describe_and_sizes() {
        let celeba = Recipe::CropResize {
            crop: 140,
            size: 64,
            filter: Filter::Bilinear,
        };
        assert_eq!(celeba.describe(), "CenterCrop(140) -> Resize(64, BILINEAR)");
        assert_eq!(celeba.output_size(), (64, 64));
        let ffhq = Recipe::ResizeCrop {
            size: 256,
            filter: Filter::Lanczos,
        };
        assert_eq!(ffhq.describe(), "Resize(256, LANCZOS) -> CenterCrop(256)");
    }

    #[test]
    fn too_small_for_the_crop_is_a_clear_error() {
        let img = Rgb8 {
            width: 120,
            height: 100,
            data: vec![0; 120 * 100 * 3],
        };
        let recipe = Recipe::CropResize {
            crop: 140,
            size: 64,
            filter: Filter::Bilinear,
        };
        let err = process_rgb(&img, &recipe).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image is 120x100, smaller than the 140x140 crop"
        );
    }

    #[test]
    fn unknown_bytes_are_refused() {
        let err = process_encoded(b"GIF89a....", &Recipe::Identity).unwrap_err();
        assert_eq!(err, ImageError::UnknownFormat);
    }
}
