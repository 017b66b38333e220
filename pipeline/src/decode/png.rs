//! PNG through the `png` crate, converted to RGB exactly as Pillow's PNG plugin and
//! `convert('RGB')` do: palette, low bit depths and tRNS expanded, alpha dropped, 16-bit
//! colour channels reduced to their high byte (Pillow's `RGB;16B` raw modes), and 16-bit
//! grayscale clipped to 255 (Pillow opens it as `I;16`, and `I;16 → RGB` saturates).
//!
//! Rows are decoded one at a time and converted to RGB as they arrive, so memory grows with
//! the data actually present (a truncated file never costs its header's full size) and only
//! the wanted rows are kept. Every row is still decoded: rows are deflate-compressed and
//! filtered against the row above, and a file corrupt after the wanted rows is refused as
//! Pillow refuses it. Interlaced (Adam7) images, whose passes each cover the whole image, are
//! assembled in one full-size RGB buffer instead.

use std::io::Cursor;

use ::png::{BitDepth, ColorType, Transformations};

use super::{check_inside, Decoded, ImageError};
use crate::resample::Rect;
use shards::Rgb8;

fn err(e: impl std::fmt::Display) -> ImageError {
    ImageError::Png(e.to_string())
}

/// How one decoded row (after `EXPAND`) becomes RGB8.
#[derive(Clone, Copy)]
struct Layout {
    channels: usize,
    /// 1 or 2 bytes per sample.
    bytes_per: usize,
    /// 16-bit grayscale without alpha in the file: clipped, not shifted (Pillow's `I;16`).
    gray16: bool,
}

impl Layout {
    fn append_rgb(self, row: &[u8], out: &mut Vec<u8>) {
        let stride = self.channels * self.bytes_per;
        match (self.channels, self.bytes_per) {
            (3, 1) => out.extend_from_slice(row),
            (4, 1) => row
                .chunks_exact(4)
                .for_each(|p| out.extend_from_slice(&p[..3])),
            (1 | 2, 1) => row
                .chunks_exact(stride)
                .for_each(|p| out.extend_from_slice(&[p[0]; 3])),
            (1 | 2, _) => row.chunks_exact(stride).for_each(|p| {
                // Pillow: 16-bit gray is I;16 and clips; gray+alpha 16 is LA;16B (high byte).
                let v = if self.gray16 {
                    u16::from_be_bytes([p[0], p[1]]).min(255) as u8
                } else {
                    p[0]
                };
                out.extend_from_slice(&[v; 3]);
            }),
            (_, _) => row
                .chunks_exact(stride)
                .for_each(|p| out.extend_from_slice(&[p[0], p[2], p[4]])),
        }
    }
}

/// Decodes the rows of the rectangle `want` returns (all rows with `partial == false`), full
/// width; `want` sees the header's size before any pixel buffer is allocated.
pub(super) fn decode(
    bytes: &[u8],
    want: impl FnOnce(u32, u32) -> Result<Rect, ImageError>,
    partial: bool,
) -> Result<Decoded, ImageError> {
    let mut dec = ::png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(err)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    let gray16 = info.color_type == ColorType::Grayscale && info.bit_depth == BitDepth::Sixteen;
    let interlaced = info.interlaced;
    let full = (width, height);
    let wanted = want(width, height)?;
    check_inside(wanted, full)?;
    let (color, depth) = reader.output_color_type();
    let channels = match color {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => return Err(ImageError::Png("palette was not expanded".into())),
    };
    let layout = Layout {
        channels,
        bytes_per: if depth == BitDepth::Sixteen { 2 } else { 1 },
        gray16,
    };
    let line = width as usize * channels * layout.bytes_per;
    let area = if partial {
        Rect {
            x0: 0,
            y0: wanted.y0,
            x1: width,
            y1: wanted.y1,
        }
    } else {
        Rect::new(0, 0, width, height)
    };
    let rows = area.y0 as usize..area.y1 as usize;
    let mut data = Vec::new();
    if interlaced {
        // Each Adam7 pass row is converted to RGB and scattered into the image, so the
        // full-size buffer is the RGB output's (3 bytes a pixel), not the decoder's (up to 8).
        let stride = width as usize * 3;
        // Zeroed, so the pages a truncated file never reaches are never touched.
        data = vec![0u8; stride * height as usize];
        let mut rgb = Vec::with_capacity(stride);
        while let Some(row) = reader.next_interlaced_row().map_err(err)? {
            let ::png::InterlaceInfo::Adam7(pass) = row.interlace() else {
                return Err(ImageError::Png("an interlaced row without its pass".into()));
            };
            rgb.clear();
            layout.append_rgb(row.data(), &mut rgb);
            ::png::expand_interlaced_row(&mut data, stride, &rgb, pass, 24);
        }
        data.truncate(rows.end * stride);
        data.drain(..rows.start * stride);
    } else {
        let mut y = 0;
        while let Some(row) = reader.next_row().map_err(err)? {
            let row = row.data();
            if row.len() != line {
                return Err(ImageError::Png(format!(
                    "row {y} has {} bytes, expected {line}",
                    row.len()
                )));
            }
            if rows.contains(&y) {
                layout.append_rgb(row, &mut data);
            }
            y += 1;
        }
        if y != height as usize {
            return Err(ImageError::Png(format!(
                "{y} rows decoded, the header says {height}"
            )));
        }
    }
    Ok(Decoded {
        pixels: Rgb8 {
            width,
            height: area.height(),
            data,
        },
        area,
        full,
    })
}
