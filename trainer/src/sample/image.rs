//! Samples as pictures: floats in [0, 1] to bytes exactly like torchvision's `save_image`, and
//! PNG grids laid out like its `make_grid`.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::SampleError;

/// Float images in [0, 1] (NCHW) to uint8 NHWC RGB bytes exactly like torchvision's
/// `save_image` (`x·255 + 0.5`, clamped, truncated). One channel is repeated to three.
pub fn to_rgb8(images: &Tensor) -> Vec<u8> {
    let x = images.to_device(Device::Cpu).to_kind(Kind::Float);
    let x = if x.size()[1] == 1 {
        x.repeat([1, 3, 1, 1])
    } else {
        x
    };
    let u8s = (x * 255.0 + 0.5)
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    Vec::<u8>::try_from(&u8s.flatten(0, -1)).expect("uint8 tensor to bytes")
}

/// The grid PNG of `images` (NCHW, [0, 1]), `nrow` per row, torchvision's padding (2, black).
pub fn write_grid(images: &Tensor, nrow: usize, path: &Path) -> Result<(), SampleError> {
    let size = images.size();
    let (n, h, w) = (size[0] as usize, size[2] as u32, size[3] as u32);
    let bytes = to_rgb8(images);
    let per = (h * w * 3) as usize;
    let cells: Vec<&[u8]> = (0..n).map(|k| &bytes[k * per..(k + 1) * per]).collect();
    let grid = shards::make_grid(&cells, h, w, nrow, 2, 0);
    shards::write_png(path, &grid)?;
    Ok(())
}

/// A square-ish grid: ⌈√n⌉ images per row (the authors use √n for their square batches).
pub fn default_nrow(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb8_matches_save_image_rounding() {
        let x = Tensor::from_slice(&[0.0f32, 1.0, 0.5, -0.2, 1.3, 0.998, 0.001, 0.5])
            .view([1, 2, 2, 2]);
        // Channel 0 = [0, 1, .5, -.2], channel 1 = [1.3, .998, .001, .5]; each taken as a
        // grey image, which is repeated to RGB.
        let one = x.narrow(1, 0, 1);
        assert_eq!(
            to_rgb8(&one),
            vec![0, 0, 0, 255, 255, 255, 128, 128, 128, 0, 0, 0]
        );
        let two = x.narrow(1, 1, 1);
        assert_eq!(to_rgb8(&two)[3], 254); // 0.998·255 + 0.5 = 254.99 → 254
    }
}
