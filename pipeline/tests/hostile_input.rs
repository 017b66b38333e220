//! Images that lie cost a rejection with a reason, never the run: decompression bombs (PNG,
//! JPEG, WebP headers claiming billions of pixels) refused from their headers before any pixel
//! buffer, a truncated file under the limit costing only the rows it holds, a JPEG of
//! thousands of progressive scans refused, empty and truncated files named as such.

use std::time::Instant;

use image::ImageFormat;
use pipeline::{decode, decode_region, process_encoded, Filter, ImageError, Limits, Recipe, Rect};
use testkit::alloc::{largest_allocation, Largest};
use testkit::fixtures::encode;
use testkit::hostile::{jpeg_claiming, png_claiming, webp_claiming_16384};

#[global_allocator]
static ALLOC: Largest = Largest;

const CELEBA: Recipe = Recipe::CropResize {
    crop: 140,
    size: 64,
    filter: Filter::Bilinear,
};

#[test]
fn a_png_claiming_100000_squared_is_refused_from_its_header() {
    let bomb = png_claiming(100_000, 100_000);
    let (err, largest) = largest_allocation(|| decode(&bomb).unwrap_err());
    assert_eq!(
        err.to_string(),
        "image is 100000x100000 = 10000000000 pixels, over the --max-pixels limit of \
         178956970 (a decompression bomb?)"
    );
    assert!(largest < 1 << 20, "allocated {largest} bytes");
    let err = process_encoded(&bomb, &CELEBA).unwrap_err();
    assert!(matches!(err, ImageError::TooManyPixels { .. }), "{err}");
}

#[test]
fn a_jpeg_claiming_65000_squared_is_refused_at_once() {
    let bomb = jpeg_claiming(65_000, 65_000);
    let t = Instant::now();
    let err = process_encoded(&bomb, &CELEBA).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("image is 65000x65000 = 4225000000 pixels, over the --max-pixels"),
        "{err}"
    );
    // Before the budget: 37 s and 12.7 GB, then accepted as a grey image.
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
}

#[test]
fn a_webp_claiming_16384_squared_is_refused_from_its_header() {
    let (err, largest) = largest_allocation(|| decode(&webp_claiming_16384()).unwrap_err());
    assert!(
        matches!(
            err,
            ImageError::TooManyPixels {
                width: 16384,
                height: 16384,
                ..
            }
        ),
        "{err}"
    );
    assert!(largest < 1 << 20, "allocated {largest} bytes");
}

#[test]
fn the_limit_is_inclusive_and_set_by_the_caller() {
    let png = encode(64, 48, 4, ImageFormat::Png);
    let whole = |w, h| Ok(Rect::new(0, 0, w, h));
    let at = |max_pixels| decode_region(&png, whole, false, Limits { max_pixels });
    assert!(at(64 * 48).is_ok());
    let err = at(64 * 48 - 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "image is 64x48 = 3072 pixels, over the --max-pixels limit of 3071 (a decompression bomb?)"
    );
    // Raised above the default, an image over the default passes the budget (and then fails
    // for what it is: 8×8 pixels of data under a 15000×15000 header).
    let big = png_claiming(15_000, 15_000);
    assert!(matches!(
        decode(&big).unwrap_err(),
        ImageError::TooManyPixels { .. }
    ));
    let raised = Limits {
        max_pixels: 15_000 * 15_000,
    };
    let err = decode_region(&big, whole, false, raised).unwrap_err();
    assert!(matches!(err, ImageError::Png(_)), "{err}");
}

#[test]
fn a_truncated_png_under_the_limit_costs_only_the_rows_it_has() {
    // 13000² RGB (169 Mpx, under the default limit) is 507 MB of pixels; the file holds 8×8.
    let (err, largest) = largest_allocation(|| decode(&png_claiming(13_000, 13_000)).unwrap_err());
    assert!(matches!(err, ImageError::Png(_)), "{err}");
    assert!(
        largest < 16 << 20,
        "allocated {largest} bytes before finding no data"
    );
}

#[test]
fn empty_and_truncated_files_say_so() {
    assert_eq!(decode(b"").unwrap_err().to_string(), "empty file (0 bytes)");
    assert_eq!(
        decode(&[0xFF, 0xD8]).unwrap_err().to_string(),
        "file ends after 2 bytes, inside the JPEG signature (truncated)"
    );
    assert_eq!(
        decode(b"\x89PNG\r").unwrap_err().to_string(),
        "file ends after 5 bytes, inside the PNG signature (truncated)"
    );
    assert_eq!(
        decode(b"RIFF\x10\0\0\0WE").unwrap_err().to_string(),
        "file ends after 10 bytes, inside the WebP signature (truncated)"
    );
    assert_eq!(
        decode(b"GIF89a").unwrap_err().to_string(),
        "unsupported format (not JPEG, PNG or WebP)"
    );
    // (A file cut after its last pixel data, e.g. in PNG's IEND, is still whole to Pillow.)
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
        let whole = encode(40, 30, 5, format);
        for cut in [3, 20, whole.len() / 2] {
            let Err(err) = decode(&whole[..cut]) else {
                panic!("{format:?} cut at {cut} decoded");
            };
            let err = err.to_string();
            assert!(
                err.contains("truncated") || err.contains("ends early"),
                "{format:?} cut at {cut}: {err}"
            );
        }
    }
}

/// A progressive JPEG written by libjpeg-turbo.
fn progressive_jpeg(w: i32, h: i32) -> Vec<u8> {
    turbo_jpeg(w, h, turbojpeg::raw::TJPARAM_TJPARAM_PROGRESSIVE)
}

/// A JPEG written by libjpeg-turbo with `flag` (PROGRESSIVE, OPTIMIZE) set.
fn turbo_jpeg(w: i32, h: i32, flag: turbojpeg::raw::TJPARAM) -> Vec<u8> {
    use turbojpeg::raw;
    let px = testkit::fixtures::pattern(w as u32, h as u32, 6);
    // SAFETY: the handle is created, used and destroyed here; the pixel buffer holds
    // `h` rows of `w * 3` bytes; libjpeg-turbo allocates the output, freed after copying.
    unsafe {
        let tj = raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as i32);
        assert!(!tj.is_null());
        for (p, v) in [
            (raw::TJPARAM_TJPARAM_QUALITY, 90),
            (raw::TJPARAM_TJPARAM_SUBSAMP, raw::TJSAMP_TJSAMP_420),
            (flag, 1),
        ] {
            assert_eq!(raw::tj3Set(tj, p as i32, v), 0);
        }
        let (mut out, mut size) = (std::ptr::null_mut(), 0);
        let rc = raw::tj3Compress8(
            tj,
            px.as_ptr(),
            w,
            0,
            h,
            raw::TJPF_TJPF_RGB,
            &mut out,
            &mut size,
        );
        assert_eq!(rc, 0);
        let bytes = std::slice::from_raw_parts(out, size as usize).to_vec();
        raw::tj3Free(out as *mut _);
        raw::tj3Destroy(tj);
        bytes
    }
}

#[test]
fn a_jpeg_of_thousands_of_scans_is_refused() {
    let jpeg = progressive_jpeg(24, 16);
    assert!(decode(&jpeg).is_ok());
    // Repeat the last scan (its SOS segment and entropy-coded data, up to EOI) 600 times:
    // each costs a pass over every block, the "progressive scan" denial of service.
    let sos = jpeg
        .windows(2)
        .rposition(|m| m == [0xFF, 0xDA])
        .expect("a scan");
    let eoi = jpeg.len() - 2;
    assert_eq!(&jpeg[eoi..], [0xFF, 0xD9]);
    let mut bomb = jpeg[..eoi].to_vec();
    for _ in 0..600 {
        bomb.extend_from_slice(&jpeg[sos..eoi]);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    let err = decode(&bomb).unwrap_err().to_string();
    assert!(err.contains("500 scans"), "{err}");
}

#[test]
fn a_corrupt_jpeg_does_not_cost_the_next_one_on_its_thread() {
    let good = encode(16, 16, 1, ImageFormat::Jpeg);
    let want = decode(&good).unwrap();
    let dht = good.windows(2).position(|m| m == [0xFF, 0xC4]).unwrap();
    let mut bad = good.clone();
    bad[dht + 5..dht + 21].fill(0xFF); // 16 code counts of 255: a bogus Huffman table
    assert_eq!(
        decode(&bad).unwrap_err().to_string(),
        "corrupt or truncated JPEG: Bogus Huffman table definition"
    );
    // Before: the thread's decoder kept reading the failed stream, and every later JPEG on
    // that worker was rejected with the same error.
    assert_eq!(decode(&good).unwrap(), want);
}

/// `jpeg` with `junk` inserted before its `n`-th marker `FF marker`.
fn insert_before(jpeg: &[u8], marker: u8, n: usize, junk: &[u8]) -> Vec<u8> {
    let at = jpeg
        .windows(2)
        .enumerate()
        .filter(|(_, m)| *m == [0xFF, marker])
        .nth(n)
        .expect("marker")
        .0;
    [&jpeg[..at], junk, &jpeg[at..]].concat()
}

#[test]
fn libjpeg_warnings_pass_like_in_pillow_and_an_error_after_one_does_not() {
    // Extraneous bytes before the quantisation tables: a warning in the header, which
    // Pillow ignores (the image decodes as if they were not there). Before, refused.
    let clean = encode(16, 16, 1, ImageFormat::Jpeg);
    let warned = insert_before(&clean, 0xDB, 0, &[0, 0]);
    assert_eq!(decode(&warned).unwrap(), decode(&clean).unwrap());

    // A warning between scans, then a scan whose parameters are invalid: Pillow refuses
    // ("broken data stream"). Before, TurboJPEG's error code still said "warning" and the
    // half-decoded image was accepted.
    let progressive = progressive_jpeg(32, 24);
    let mut broken = insert_before(&progressive, 0xDA, 1, &[0, 0]);
    let sos = broken
        .windows(2)
        .enumerate()
        .filter(|(_, m)| *m == [0xFF, 0xDA])
        .nth(3)
        .unwrap()
        .0;
    let ss = sos + 5 + 2 * broken[sos + 4] as usize;
    broken[ss..ss + 2].copy_from_slice(&[63, 0]); // Ss = 63 > Se = 0
    let err = decode(&broken).unwrap_err().to_string();
    assert!(err.contains("Invalid progressive"), "{err}");
}

#[test]
fn a_jpeg_without_huffman_tables_decodes_alike_whatever_came_before() {
    // An MJPEG-style frame: the DHT segments dropped, so the decoder falls back to the
    // standard tables (as Pillow's fresh decoder per image does).
    let full = encode(16, 16, 3, ImageFormat::Jpeg);
    let mut frame = full[..2].to_vec();
    let mut at = 2;
    while full[at + 1] != 0xDA {
        let len = u16::from_be_bytes([full[at + 2], full[at + 3]]) as usize;
        if full[at + 1] != 0xC4 {
            frame.extend_from_slice(&full[at..at + 2 + len]);
        }
        at += 2 + len;
    }
    frame.extend_from_slice(&full[at..]);
    let frame = std::sync::Arc::new(frame);
    let alone = {
        let frame = frame.clone();
        std::thread::spawn(move || decode(&frame).map(|i| i.data))
            .join()
            .unwrap()
    };
    // An image with optimised (its own) Huffman tables, decoded first on this thread.
    let optimised = turbo_jpeg(16, 16, turbojpeg::raw::TJPARAM_TJPARAM_OPTIMIZE);
    assert!(decode(&optimised).is_ok());
    // Before: the thread's reused decoder kept those tables and used them for the frame.
    assert_eq!(decode(&frame).map(|i| i.data), alone);
}
