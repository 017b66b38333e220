//! Image decoding with Pillow's results: `PIL.Image.open(f).convert('RGB')`, byte for byte.
//!
//! JPEG goes through libjpeg-turbo (what Pillow links; accurate IDCT, fancy upsampling, no DCT
//! scaling, no EXIF rotation), WebP through libwebp, PNG through the `png` crate. Every decoder
//! can produce a sub-rectangle of the image ([`decode_region`]): JPEG through libjpeg-turbo's
//! cropping and scanline skipping, WebP through libwebp's cropping. Both codecs treat the edge
//! of a cropped region as an image edge when upsampling chroma, so the decoders widen the
//! request by a margin and return a buffer whose pixels inside the request equal those of a
//! full decode (proven in `tests/pillow_parity.rs`).
//!
//! Every decoder reads the header first and checks the image's size against a pixel budget
//! ([`Limits`]) before it allocates anything for pixels: a 70-byte file can claim 100000×100000
//! pixels (30 GB), and hostile input must cost a rejection, never the run.

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
    #[error("empty file (0 bytes)")]
    EmptyFile,
    #[error("file ends after {0} bytes, inside the {1} signature (truncated)")]
    TruncatedSignature(usize, &'static str),
    #[error(
        "image is {width}x{height} = {pixels} pixels, over the --max-pixels limit of {limit} \
         (a decompression bomb?)"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
}

/// Pillow's `Image.MAX_IMAGE_PIXELS` (`1024 * 1024 * 1024 // 4 // 3`): above it Pillow warns,
/// above twice it refuses to open the image (`DecompressionBombError`).
pub const PILLOW_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The default pixel budget, where Pillow refuses an image: 178,956,970 pixels (13377² or so).
pub const DEFAULT_MAX_PIXELS: u64 = 2 * PILLOW_MAX_IMAGE_PIXELS;

/// What one encoded image may cost the decoder, checked from its header before any pixel
/// buffer exists. It never changes the bytes of an image it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Images with more pixels (width × height, as the header claims) are refused.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl Limits {
    /// The largest encoded file worth reading: 16 bytes a pixel (a PNG of 16-bit RGBA stored
    /// uncompressed is 8, a JPEG of noise at quality 100 about 10) plus 64 MiB of metadata.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(16).saturating_add(64 << 20)
    }

    /// Refuses a `width × height` header over the budget.
    pub fn check(&self, width: u32, height: u32) -> Result<(), ImageError> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(ImageError::TooManyPixels {
                width,
                height,
                pixels,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// An encoded image format, recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Recognises JPEG, PNG and WebP by their signatures (file extensions are not trusted: LSUN's
/// LMDB values carry none).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
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

/// Decodes a whole image to RGB like `Image.open(f).convert('RGB')`, within the default
/// [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Rgb8, ImageError> {
    decode_region(
        bytes,
        |w, h| Ok(Rect::new(0, 0, w, h)),
        false,
        Limits::default(),
    )
    .map(Decoded::into_full)
}

/// Decodes at least the rectangle `want(width, height)` returns (it sees the header's size
/// first, and may refuse the image with an error). Pixels inside that rectangle are exactly
/// those of [`decode`]; pixels outside it are absent or unspecified. With `partial == false`
/// the whole image is decoded (the reference path the tests compare against). An image over
/// `limits` is refused from its header, before `want` runs and before any pixel buffer.
pub fn decode_region(
    bytes: &[u8],
    want: impl FnOnce(u32, u32) -> Result<Rect, ImageError>,
    partial: bool,
    limits: Limits,
) -> Result<Decoded, ImageError> {
    let want = |w: u32, h: u32| {
        limits.check(w, h)?;
        want(w, h)
    };
    match sniff(bytes) {
        Some(Format::Jpeg) => jpeg::decode(bytes, want, partial),
        Some(Format::WebP) => webp::decode(bytes, want, partial),
        Some(Format::Png) => png::decode(bytes, want, partial),
        None => Err(unknown(bytes)),
    }
}

/// Why bytes that are no JPEG, PNG or WebP were refused: empty, cut inside a signature, or
/// something else.
fn unknown(bytes: &[u8]) -> ImageError {
    let n = bytes.len();
    let cut_in = |sig: &[u8]| n < sig.len() && sig.starts_with(bytes);
    // RIFF <any 4-byte length> WEBP
    let webp = n < 12
        && b"RIFF".starts_with(&bytes[..n.min(4)])
        && b"WEBP".starts_with(&bytes[n.min(8)..]);
    if n == 0 {
        ImageError::EmptyFile
    } else if cut_in(&[0xFF, 0xD8, 0xFF]) {
        ImageError::TruncatedSignature(n, "JPEG")
    } else if cut_in(PNG_SIGNATURE) {
        ImageError::TruncatedSignature(n, "PNG")
    } else if webp {
        ImageError::TruncatedSignature(n, "WebP")
    } else {
        ImageError::UnknownFormat
    }
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
