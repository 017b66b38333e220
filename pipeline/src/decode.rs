//! Image decoding with Pillow's results: `PIL.Image.open(f).convert('RGB')`, byte for byte.
//!
//! JPEG goes through libjpeg-turbo (what Pillow links; accurate IDCT, fancy upsampling, no DCT
//! scaling, no EXIF rotation), WebP through libwebp, PNG through the `png` crate. Every decoder
//! can produce a sub-rectangle of the image ([`decode_region`]): JPEG through libjpeg-turbo's
//! cropping and scanline skipping, WebP through libwebp's cropping. Both codecs treat the edge
//! of a cropped region as an image edge when upsampling chroma, so the decoders widen the
//! request by a margin and return a buffer whose pixels inside the request equal those of a
//! full decode (proven in `tests/pillow_parity.rs`).

mod jpeg;
mod png;
mod webp;

use crate::resample::{Rect, View};
use shards::Rgb8;

/// What is wrong with one encoded image, in one line and without the file name (the caller
/// knows the file or key and adds it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("corrupt or truncated JPEG: {0}")]
    Jpeg(String),
    #[error("corrupt or truncated PNG: {0}")]
    Png(String),
    #[error("corrupt or truncated WebP: {0}")]
    WebP(String),
    #[error("unsupported format (not JPEG, PNG or WebP)")]
    UnknownFormat,
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("image is {width}x{height}, smaller than the {crop}x{crop} crop")]
    TooSmall { width: u32, height: u32, crop: u32 },
    #[error("image is empty (0 pixels)")]
    Empty,
}

/// An encoded image format, recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
}

/// Recognises JPEG, PNG and WebP by their signatures (file extensions are not trusted: LSUN's
/// LMDB values carry none).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else {
        None
    }
}

/// Decoded RGB pixels covering (at least) a requested rectangle of a `full.0 × full.1` image.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels of the rectangle `area` of the image.
    pub pixels: Rgb8,
    /// Which rectangle of the full image `pixels` holds.
    pub area: Rect,
    /// The full image's size.
    pub full: (u32, u32),
}

impl Decoded {
    /// The decoded pixels addressed in full-image coordinates.
    pub fn view(&self) -> View<'_> {
        View {
            data: &self.pixels.data,
            stride: self.pixels.width as usize * 3,
            origin: (self.area.x0, self.area.y0),
            avail: self.area,
        }
    }

    /// A full decode (area = whole image).
    pub fn into_full(self) -> Rgb8 {
        debug_assert_eq!(self.area, Rect::new(0, 0, self.full.0, self.full.1));
        self.pixels
    }
}

/// Decodes a whole image to RGB like `Image.open(f).convert('RGB')`.
pub fn decode(bytes: &[u8]) -> Result<Rgb8, ImageError> {
    decode_region(bytes, |w, h| Ok(Rect::new(0, 0, w, h)), true).map(Decoded::into_full)
}

/// Decodes at least the rectangle `want(width, height)` returns (it sees the header's size
/// first, and may refuse the image with an error). Pixels inside that rectangle are exactly
/// those of [`decode`]; pixels outside it are absent or unspecified. With `partial == false`
/// the whole image is decoded (the reference path the tests compare against).
pub fn decode_region(
    bytes: &[u8],
    want: impl FnOnce(u32, u32) -> Result<Rect, ImageError>,
    partial: bool,
) -> Result<Decoded, ImageError> {
    let out = match sniff(bytes) {
        Some(Format::Jpeg) => jpeg::decode(bytes, want, partial)?,
        Some(Format::WebP) => webp::decode(bytes, want, partial)?,
        // PNG rows are deflate-compressed and filtered against the row above, so nothing
        // before the last wanted row can be skipped; rows after it are not worth the code.
        Some(Format::Png) => {
            let img = png::decode(bytes)?;
            let full = (img.width, img.height);
            let r = want(img.width, img.height)?;
            check_inside(r, full)?;
            Decoded {
                area: Rect::new(0, 0, full.0, full.1),
                pixels: img,
                full,
            }
        }
        None => return Err(ImageError::UnknownFormat),
    };
    Ok(out)
}

fn check_inside(r: Rect, (w, h): (u32, u32)) -> Result<(), ImageError> {
    if r.x1 > w || r.y1 > h || r.x0 >= r.x1 || r.y0 >= r.y1 {
        return Err(ImageError::Unsupported(format!(
            "region {r:?} does not fit in a {w}x{h} image"
        )));
    }
    Ok(())
}

/// Widens `r` by `mx` columns and `my` rows on each side (clamped to the image) and moves its
/// left edge down to a multiple of `align_x` (codecs can only start a cropped row there).
fn widen(r: Rect, (mx, my): (u32, u32), align_x: u32, (w, h): (u32, u32)) -> Rect {
    let x0 = r.x0.saturating_sub(mx) / align_x * align_x;
    Rect {
        x0,
        y0: r.y0.saturating_sub(my),
        x1: (r.x1 + mx).min(w),
        y1: (r.y1 + my).min(h),
    }
}
