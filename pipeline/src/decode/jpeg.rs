//! JPEG through libjpeg-turbo's TurboJPEG 3 API (the same decoder and settings as Pillow:
//! accurate integer IDCT, fancy upsampling, no scaling). Partial decoding uses
//! `tj3SetCroppingRegion`: columns outside the crop are neither dequantised nor transformed,
//! rows above it are skipped without IDCT, and rows below it are never produced.
//!
//! Two guards against hostile files: the pixel budget ([`super::Limits`]) is checked on the
//! header's size before any buffer exists, and progressive images of more than [`SCAN_LIMIT`]
//! scans are refused (each scan walks every block of the image, so a small file of thousands
//! of scans costs minutes; libjpeg-turbo's advisory LJT-01-004).

use std::ffi::CStr;

use turbojpeg::raw;

use super::{check_inside, widen, Decoded, ImageError};
use crate::resample::Rect;
use shards::Rgb8;

/// A TurboJPEG decompressor, one per image. Reusing one across images (a thread's worth, as
/// before) made an image's pixels depend on the images decoded before it on that thread: a
/// handle keeps the Huffman and quantisation tables it has seen, and an image that lacks one
/// (an MJPEG-style frame without DHT, or a corrupt file) used the previous image's where a
/// fresh decoder, like Pillow's, uses the standard tables; and after a failed header read
/// TurboJPEG 3.1 leaves the handle mid-stream, so one corrupt JPEG made every later one on the
/// thread fail. Creating one costs well under a microsecond.
struct Handle(raw::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) };
    }
}

/// libjpeg-turbo's suggested limit (`tjbench -limitscans`, `djpeg -maxscans`); real encoders
/// write about 10 scans.
pub(super) const SCAN_LIMIT: CInt = 500;

fn with_handle<T>(f: impl FnOnce(raw::tjhandle) -> Result<T, ImageError>) -> Result<T, ImageError> {
    // SAFETY: plain constructor; a null result is handled.
    let h = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as CInt) };
    if h.is_null() {
        return Err(ImageError::Jpeg(
            "cannot create a libjpeg-turbo decoder".into(),
        ));
    }
    let handle = Handle(h);
    // SAFETY: valid handle, documented parameter.
    if unsafe { raw::tj3Set(h, raw::TJPARAM_TJPARAM_SCANLIMIT as CInt, SCAN_LIMIT) } != 0 {
        return Err(ImageError::Jpeg(error_string(h)));
    }
    f(handle.0)
}

use std::os::raw::c_int as CInt;

/// Whether a libjpeg message is one of its warnings (the `JWRN_*` of jerror.h), which Pillow
/// ignores, rather than an error. `tj3GetErrorCode` cannot tell: it reports a warning for a
/// fatal error that came after one. After warnings alone the message is the first warning's;
/// after a fatal error, the error's.
fn is_warning(msg: &str) -> bool {
    const WARNINGS: [&str; 7] = [
        "Corrupt JPEG data:",
        "Premature end of JPEG file",
        "Inconsistent progression sequence",
        "Invalid SOS parameters for sequential JPEG",
        "Unknown Adobe color transform code",
        "Warning: unknown JFIF revision number",
        "Application transferred too many scanlines",
    ];
    WARNINGS.iter().any(|w| msg.starts_with(w))
}

fn error_string(h: raw::tjhandle) -> String {
    // SAFETY: tj3GetErrorStr returns a NUL-terminated static or per-handle string.
    unsafe { CStr::from_ptr(raw::tj3GetErrorStr(h)) }
        .to_string_lossy()
        .into_owned()
}

struct Header {
    width: u32,
    height: u32,
    subsamp: CInt,
    colorspace: CInt,
    lossless: bool,
}

fn read_header(h: raw::tjhandle, bytes: &[u8]) -> Result<Header, ImageError> {
    // SAFETY: the pointer/length pair describes `bytes`.
    let rc = unsafe { raw::tj3DecompressHeader(h, bytes.as_ptr(), bytes.len() as _) };
    // A warning (e.g. extraneous bytes before a marker) still reads the whole header.
    if rc != 0 && !is_warning(&error_string(h)) {
        return Err(ImageError::Jpeg(error_string(h)));
    }
    // SAFETY: parameter getters on a valid handle.
    let get = |p: raw::TJPARAM| unsafe { raw::tj3Get(h, p as CInt) };
    let (width, height) = (
        get(raw::TJPARAM_TJPARAM_JPEGWIDTH),
        get(raw::TJPARAM_TJPARAM_JPEGHEIGHT),
    );
    // TurboJPEG reports 0 × 0 when the data end before a frame header (or hold only tables).
    if width <= 0 || height <= 0 {
        return Err(ImageError::Jpeg(
            "no frame header (SOF) before the end".into(),
        ));
    }
    Ok(Header {
        width: width as u32,
        height: height as u32,
        subsamp: get(raw::TJPARAM_TJPARAM_SUBSAMP),
        colorspace: get(raw::TJPARAM_TJPARAM_COLORSPACE),
        lossless: get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0,
    })
}

/// iMCU size in pixels for a TurboJPEG subsampling code (None when libjpeg-turbo does not
/// know it, in which case the image is decoded whole).
fn mcu_size(subsamp: CInt) -> Option<(u32, u32)> {
    match subsamp as raw::TJSAMP {
        raw::TJSAMP_TJSAMP_444 => Some((8, 8)),
        raw::TJSAMP_TJSAMP_422 => Some((16, 8)),
        raw::TJSAMP_TJSAMP_420 => Some((16, 16)),
        raw::TJSAMP_TJSAMP_GRAY => Some((8, 8)),
        raw::TJSAMP_TJSAMP_440 => Some((8, 16)),
        raw::TJSAMP_TJSAMP_411 => Some((32, 8)),
        raw::TJSAMP_TJSAMP_441 => Some((8, 32)),
        _ => None,
    }
}

pub(super) fn decode(
    bytes: &[u8],
    want: impl FnOnce(u32, u32) -> Result<Rect, ImageError>,
    partial: bool,
) -> Result<Decoded, ImageError> {
    with_handle(|h| {
        let hd = read_header(h, bytes)?;
        let full = (hd.width, hd.height);
        let wanted = want(hd.width, hd.height)?;
        check_inside(wanted, full)?;
        let whole = Rect::new(0, 0, hd.width, hd.height);
        let area = match mcu_size(hd.subsamp) {
            Some((mw, mh)) if partial && !hd.lossless => {
                // Fancy upsampling reads one chroma sample on each side, i.e. mcu/8 pixels
                // (2 for 4:2:0); libjpeg-turbo replicates the edge of a cropped region instead.
                widen(wanted, ((mw / 8).max(1), (mh / 8).max(1)), mw, full)
            }
            _ => whole,
        };
        let region = if area == whole {
            raw::tjregion {
                x: 0,
                y: 0,
                w: 0,
                h: 0,
            }
        } else {
            raw::tjregion {
                x: area.x0 as _,
                y: area.y0 as _,
                w: area.width() as _,
                h: area.height() as _,
            }
        };
        // SAFETY: valid handle; the region was checked against the header above.
        if unsafe { raw::tj3SetCroppingRegion(h, region) } != 0 {
            return Err(ImageError::Jpeg(error_string(h)));
        }
        let cmyk = matches!(
            hd.colorspace as raw::TJCS,
            raw::TJCS_TJCS_CMYK | raw::TJCS_TJCS_YCCK
        );
        let (format, channels) = if cmyk {
            (raw::TJPF_TJPF_CMYK, 4)
        } else {
            (raw::TJPF_TJPF_RGB, 3)
        };
        let (w, hgt) = (area.width() as usize, area.height() as usize);
        let mut buf = vec![0u8; w * hgt * channels];
        // SAFETY: `buf` holds exactly `hgt` rows of `w * channels` bytes, the region's size.
        let rc = unsafe {
            raw::tj3Decompress8(
                h,
                bytes.as_ptr(),
                bytes.len() as _,
                buf.as_mut_ptr(),
                (w * channels) as CInt,
                format as CInt,
            )
        };
        if rc != 0 {
            let msg = error_string(h);
            // Pillow tolerates libjpeg's warnings ("extraneous bytes before marker") but
            // refuses a file that ends early ("image file is truncated").
            if !is_warning(&msg) || msg.starts_with("Premature end") {
                return Err(ImageError::Jpeg(msg));
            }
        }
        let data = if cmyk { cmyk_to_rgb(buf) } else { buf };
        Ok(Decoded {
            pixels: Rgb8 {
                width: w as u32,
                height: hgt as u32,
                data,
            },
            area,
            full,
        })
    })
}

/// Pillow reads 4-channel JPEGs as Adobe-style inverted CMYK (`rawmode "CMYK;I"`) and
/// `convert('RGB')` then applies libImaging/Convert.c `cmyk2rgb`. In place: pixel `i` is
/// written at `3i`, which never reaches pixel `i + 1`'s bytes at `4i + 4` (a second buffer
/// would add 3 bytes per pixel to the peak of a large image).
fn cmyk_to_rgb(mut px: Vec<u8>) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let n = px.len() / 4;
    for i in 0..n {
        let [c, m, y, k] = [0, 1, 2, 3].map(|j| 255 - px[4 * i + j] as i32);
        let nk = 255 - k;
        for (j, v) in [c, m, y].into_iter().enumerate() {
            px[3 * i + j] = (nk - muldiv255(v, nk)).clamp(0, 255) as u8;
        }
    }
    px.truncate(3 * n);
    px
}
