//! Hostile images made on the fly: valid tiny files whose headers lie about their size (the
//! decompression bombs that the decoders' pixel budget refuses).

use crate::fixtures::encode;
use image::ImageFormat;

/// A valid 8×8 PNG whose IHDR claims `w × h`, its CRC recomputed so only the size is a lie
/// (70-odd bytes claiming, e.g., 100000² = 30 GB of RGB).
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = encode(8, 8, 1, ImageFormat::Png);
    assert_eq!(&b[12..16], b"IHDR");
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&b[12..29]);
    b[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    b
}

/// A valid 8×8 baseline JPEG whose SOF0 claims `w × h` (libjpeg-turbo decodes the missing
/// rows as grey: 65000² took 37 s and 12.7 GB before the budget).
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut b = encode(8, 8, 2, ImageFormat::Jpeg);
    let sof = b
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("a baseline JPEG has SOF0");
    b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    b
}

/// A valid 8×8 lossless WebP whose VP8L header claims the largest size WebP has, 16384².
pub fn webp_claiming_16384() -> Vec<u8> {
    let mut b = encode(8, 8, 3, ImageFormat::WebP);
    assert_eq!(&b[12..16], b"VP8L");
    // Signature 0x2f at 20, then 14 bits of width - 1 and 14 of height - 1.
    b[21..25].copy_from_slice(&(0x3FFFu32 | 0x3FFF << 14).to_le_bytes());
    b
}
