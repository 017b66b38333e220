//! WebP through libwebp (Pillow's decoder too). Partial decoding uses libwebp's cropping: lossy
//! frames stop after the last wanted macroblock row and only filter and colour-convert the
//! wanted area; lossless frames only colour-convert it.

use libwebp_sys as sys;

use super::{check_inside, widen, Decoded, ImageError};
use crate::resample::Rect;
use shards::Rgb8;

fn features(bytes: &[u8]) -> Result<sys::WebPBitstreamFeatures, ImageError> {
    // SAFETY: zeroed is a valid bit pattern for this plain C struct; libwebp fills it.
    let mut f: sys::WebPBitstreamFeatures = unsafe { std::mem::zeroed() };
    // SAFETY: pointer/length describe `bytes`; `f` is writable.
    let st = unsafe { sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut f) };
    if st != sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(ImageError::WebP(status_text(st).into()));
    }
    if f.has_animation != 0 {
        return Err(ImageError::Unsupported("animated WebP".into()));
    }
    if f.width <= 0 || f.height <= 0 {
        return Err(ImageError::Empty);
    }
    Ok(f)
}

fn status_text(st: sys::VP8StatusCode) -> &'static str {
    use sys::VP8StatusCode::*;
    match st {
        VP8_STATUS_OK => "ok",
        VP8_STATUS_OUT_OF_MEMORY => "out of memory",
        VP8_STATUS_INVALID_PARAM => "invalid parameter",
        VP8_STATUS_BITSTREAM_ERROR => "bitstream error",
        VP8_STATUS_UNSUPPORTED_FEATURE => "unsupported feature",
        VP8_STATUS_SUSPENDED => "suspended",
        VP8_STATUS_USER_ABORT => "aborted",
        VP8_STATUS_NOT_ENOUGH_DATA => "file ends early (not enough data)",
    }
}

pub(super) fn decode(
    bytes: &[u8],
    want: impl FnOnce(u32, u32) -> Result<Rect, ImageError>,
    partial: bool,
) -> Result<Decoded, ImageError> {
    let f = features(bytes)?;
    let full = (f.width as u32, f.height as u32);
    let wanted = want(full.0, full.1)?;
    check_inside(wanted, full)?;
    let whole = Rect::new(0, 0, full.0, full.1);
    // libwebp snaps the crop origin to even coordinates (4:2:0 chroma) and, like libjpeg-turbo,
    // upsamples chroma at the crop's edge as if it were the image's edge: keep a margin of one
    // chroma sample.
    let area = if partial {
        let mut a = widen(wanted, (2, 2), 2, full);
        a.y0 &= !1;
        a
    } else {
        whole
    };
    let (w, h) = (area.width() as usize, area.height() as usize);
    let mut buf = vec![0u8; w * h * 3];
    // SAFETY: WebPInitDecoderConfig fills a zeroed config; the output buffer is external
    // memory of exactly `h` rows of `w * 3` bytes, which is what the crop produces.
    unsafe {
        let mut config: sys::WebPDecoderConfig = std::mem::zeroed();
        if !sys::WebPInitDecoderConfig(&mut config) {
            return Err(ImageError::WebP("libwebp version mismatch".into()));
        }
        if area != whole {
            config.options.use_cropping = 1;
            config.options.crop_left = area.x0 as _;
            config.options.crop_top = area.y0 as _;
            config.options.crop_width = area.width() as _;
            config.options.crop_height = area.height() as _;
        }
        config.output.colorspace = sys::WEBP_CSP_MODE::MODE_RGB;
        config.output.is_external_memory = 1;
        config.output.u.RGBA = sys::WebPRGBABuffer {
            rgba: buf.as_mut_ptr(),
            stride: (w * 3) as _,
            size: buf.len(),
        };
        let st = sys::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config);
        sys::WebPFreeDecBuffer(&mut config.output);
        if st != sys::VP8StatusCode::VP8_STATUS_OK {
            return Err(ImageError::WebP(status_text(st).into()));
        }
    }
    Ok(Decoded {
        pixels: Rgb8 {
            width: w as u32,
            height: h as u32,
            data: buf,
        },
        area,
        full,
    })
}
