//! PNG through the `png` crate, converted to RGB exactly as Pillow's PNG plugin and
//! `convert('RGB')` do: palette, low bit depths and tRNS expanded, alpha dropped, 16-bit
//! colour channels reduced to their high byte (Pillow's `RGB;16B` raw modes), and 16-bit
//! grayscale clipped to 255 (Pillow opens it as `I;16`, and `I;16 → RGB` saturates).

use std::io::Cursor;

use super::ImageError;
use shards::Rgb8;

fn err(e: impl std::fmt::Display) -> ImageError {
    ImageError::Png(e.to_string())
}

pub(super) fn decode(bytes: &[u8]) -> Result<Rgb8, ImageError> {
    let mut dec = ::png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(::png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(err)?;
    let (width, height) = (reader.info().width, reader.info().height);
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    let gray16 = reader.info().color_type == ::png::ColorType::Grayscale
        && reader.info().bit_depth == ::png::BitDepth::Sixteen;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ImageError::Unsupported(format!("PNG of {width}x{height} is too large")))?;
    let mut buf = vec![0u8; size];
    let out = reader.next_frame(&mut buf).map_err(err)?;
    buf.truncate(out.buffer_size());
    let (color, depth) = (out.color_type, out.bit_depth);
    let n = (width * height) as usize;
    use ::png::ColorType as C;
    let channels = match color {
        C::Grayscale => 1,
        C::GrayscaleAlpha => 2,
        C::Rgb => 3,
        C::Rgba => 4,
        C::Indexed => return Err(ImageError::Png("palette was not expanded".into())),
    };
    let bytes_per = if depth == ::png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    let stride = channels * bytes_per;
    if buf.len() < n * stride {
        return Err(ImageError::Png("decoded buffer is too short".into()));
    }
    if (channels, bytes_per) == (3, 1) {
        // Already RGB8: hand over the decoder's buffer instead of copying megabytes.
        buf.truncate(n * 3);
        return Ok(Rgb8 {
            width,
            height,
            data: buf,
        });
    }
    let mut data = Vec::with_capacity(n * 3);
    match (channels, bytes_per) {
        (4, 1) => buf
            .chunks_exact(4)
            .for_each(|p| data.extend_from_slice(&p[..3])),
        (1 | 2, 1) => buf.chunks_exact(stride).for_each(|p| {
            data.extend_from_slice(&[p[0]; 3]);
        }),
        (1 | 2, 2) => buf.chunks_exact(stride).for_each(|p| {
            // Pillow: 16-bit gray is I;16 and clips; gray+alpha 16 is LA;16B (high byte).
            let v = if gray16 {
                u16::from_be_bytes([p[0], p[1]]).min(255) as u8
            } else {
                p[0]
            };
            data.extend_from_slice(&[v; 3]);
        }),
        (_, _) => buf.chunks_exact(stride).for_each(|p| {
            data.extend_from_slice(&[p[0], p[2], p[4]]);
        }),
    }
    Ok(Rgb8 {
        width,
        height,
        data,
    })
}
