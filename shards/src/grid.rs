//! Image grids like torchvision's `make_grid` (used by `inspect --grid` and by sampling), and
//! atomic PNG writing.

use std::path::Path;

use crate::error::{Error, Result};
use crate::rgb::Rgb8;

/// Lays out `images` (each `h × w` RGB, HWC) `nrow` per row with `padding` pixels of
/// `pad_value` around each, exactly like `torchvision.utils.make_grid` (default padding 2, 0).
pub fn make_grid(
    images: &[&[u8]],
    h: u32,
    w: u32,
    nrow: usize,
    padding: u32,
    pad_value: u8,
) -> Rgb8 {
    let n = images.len();
    let xmaps = nrow.min(n).max(1);
    let ymaps = n.div_ceil(xmaps).max(1);
    let (cell_h, cell_w) = ((h + padding) as usize, (w + padding) as usize);
    let gh = ymaps * cell_h + padding as usize;
    let gw = xmaps * cell_w + padding as usize;
    let mut data = vec![pad_value; gh * gw * 3];
    for (k, img) in images.iter().enumerate() {
        assert_eq!(
            img.len(),
            (h * w * 3) as usize,
            "grid image {k} has the wrong size"
        );
        let (gy, gx) = (k / xmaps, k % xmaps);
        let (y0, x0) = (
            gy * cell_h + padding as usize,
            gx * cell_w + padding as usize,
        );
        for y in 0..h as usize {
            let src = &img[y * w as usize * 3..(y + 1) * w as usize * 3];
            let dst = ((y0 + y) * gw + x0) * 3;
            data[dst..dst + src.len()].copy_from_slice(src);
        }
    }
    Rgb8 {
        width: gw as u32,
        height: gh as u32,
        data,
    }
}

/// Writes an RGB PNG atomically (temporary file, then rename).
pub fn write_png(path: &Path, img: &Rgb8) -> Result<()> {
    schemas::atomic::write_atomic_with(path, |w| encode_png(img, w))
        .map_err(|e| Error::format(path, format!("cannot write PNG: {e}")))
}

/// `img` as an 8-bit RGB PNG into `w` (lossless: decoders give back exactly `img.data`).
pub fn encode_png(img: &Rgb8, w: impl std::io::Write) -> std::io::Result<()> {
    let mut enc = png::Encoder::new(w, img.width, img.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(&img.data)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::atomic::tmp_path;

    #[test]
    fn geometry_matches_torchvision_make_grid() {
        // make_grid(torch.zeros(10,3,4,5), nrow=8, padding=2): 3 x 30 x 56... per torchvision:
        // xmaps=8, ymaps=2, H=2*(4+2)+2=14, W=8*(5+2)+2=58.
        let img = vec![7u8; 4 * 5 * 3];
        let imgs: Vec<&[u8]> = (0..10).map(|_| img.as_slice()).collect();
        let g = make_grid(&imgs, 4, 5, 8, 2, 0);
        assert_eq!((g.height, g.width), (14, 58));
        let px = |y: usize, x: usize| g.data[(y * 58 + x) * 3];
        assert_eq!(px(0, 0), 0);
        assert_eq!(px(2, 2), 7); // first image starts after the padding
        assert_eq!(px(2, 7), 0); // gap between images
        assert_eq!(px(8, 2), 7); // second row, first image
        assert_eq!(px(8, 2 + 2 * 7), 0); // second row has only two images
    }

    #[test]
    fn png_is_written_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        let img = Rgb8 {
            width: 3,
            height: 2,
            data: (0..18).collect(),
        };
        write_png(&p, &img).unwrap();
        assert!(!tmp_path(&p).exists());
        let mut reader =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()))
                .read_info()
                .unwrap();
        let mut back = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut back).unwrap();
        assert_eq!(
            (frame.width, frame.height, frame.color_type),
            (3, 2, png::ColorType::Rgb)
        );
        assert_eq!(back, img.data);
    }
}
