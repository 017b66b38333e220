//! uint8 images → pool3 features and logits, with pytorch-fid's preprocessing exactly:
//! `ToTensor` (uint8 / 255 → [0, 1]), `F.interpolate(size=(299, 299), mode='bilinear',
//! align_corners=False)`, then `2x − 1` (`InceptionV3(resize_input=True,
//! normalize_input=True)`), all in f32.

use std::path::{Path, PathBuf};

use shards::Rgb8;
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::inception::InceptionV3;

/// The network's input side (pytorch-fid resizes every image to it).
pub const INPUT_SIZE: i64 = 299;

/// pytorch-fid's preprocessing of a uint8 NHWC RGB batch: f32 [N, 3, 299, 299] in [−1, 1],
/// on the batch's device.
pub fn preprocess(images: &Tensor) -> Tensor {
    // ToTensor divides (it does not multiply by 1/255): the same f32 values to the bit.
    let x = images.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0;
    let x = x.upsample_bilinear2d([INPUT_SIZE, INPUT_SIZE], false, None, None);
    x * 2.0 - 1.0
}

/// What the network gives for a batch, on the extractor's device.
#[derive(Debug)]
pub struct Features {
    /// [N, 2048] f32: FID's features, and the space of nearest neighbours (App. C.5.2).
    pub pool3: Tensor,
    /// [N, 1008] f32: the Inception Score's logits (no bias, as the original IS code).
    pub logits: Tensor,
}

/// The FID Inception network on a device, taking uint8 NHWC batches (on any device).
#[derive(Debug)]
pub struct FeatureExtractor {
    net: InceptionV3,
    device: Device,
    weights: PathBuf,
}

impl FeatureExtractor {
    /// Loads the weights (see [`crate::load_inception`]) onto `device`.
    pub fn load(weights: &Path, device: Device) -> Result<Self> {
        let mut net = crate::weights::load_inception(weights)?;
        net.move_to(device);
        Ok(FeatureExtractor {
            net,
            device,
            weights: weights.to_path_buf(),
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The weights file, for messages.
    pub fn weights(&self) -> &Path {
        &self.weights
    }

    /// Features of a uint8 [N, H, W, 3] batch (any size; each image is resized to 299²).
    pub fn extract(&self, images: &Tensor) -> Result<Features> {
        check_batch(images)?;
        let _guard = tch::no_grad_guard();
        let x = preprocess(&images.to_device(self.device));
        self.forward(&x)
    }

    /// Features of images of different sizes: each is preprocessed alone (as pytorch-fid does
    /// one image at a time), then the network runs on them together.
    pub fn extract_rgb(&self, images: &[Rgb8]) -> Result<Features> {
        if images.is_empty() {
            return Err(Error::Invalid("no images to extract features from".into()));
        }
        let _guard = tch::no_grad_guard();
        let xs: Vec<Tensor> = images
            .iter()
            .map(|im| {
                let t = Tensor::from_data_size(
                    &im.data,
                    &[1, im.height as i64, im.width as i64, 3],
                    Kind::Uint8,
                );
                preprocess(&t.to_device(self.device))
            })
            .collect();
        self.forward(&Tensor::cat(&xs, 0))
    }

    fn forward(&self, x: &Tensor) -> Result<Features> {
        let pool3 = self.net.pool3(x);
        // uint8 input cannot be NaN, so a non-finite feature comes from the weights.
        let finite = pool3.isfinite().all().int64_value(&[]) == 1;
        if !finite {
            return Err(Error::file(
                &self.weights,
                "the network produced NaN or infinite features: the weights hold NaN/inf",
            ));
        }
        let logits = self.net.logits(&pool3);
        Ok(Features { pool3, logits })
    }
}

fn check_batch(images: &Tensor) -> Result<()> {
    let size = images.size();
    if images.kind() != Kind::Uint8 || size.len() != 4 || size[3] != 3 {
        return Err(Error::Invalid(format!(
            "Inception features take uint8 [N, H, W, 3] RGB batches, got {:?} {size:?}",
            images.kind()
        )));
    }
    if size[..3].contains(&0) {
        return Err(Error::Invalid(format!("an empty batch {size:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_maps_bytes_to_minus_one_one_at_299() {
        let x = Tensor::from_slice(&[0u8, 255, 51, 0, 255, 51, 0, 255, 51, 0, 255, 51])
            .view([1, 2, 2, 3]);
        let y = preprocess(&x);
        assert_eq!(y.size(), [1, 3, 299, 299]);
        // A constant channel stays constant through bilinear resizing.
        let lo = y.get(0).get(0).min().double_value(&[]);
        let hi = y.get(0).get(1).max().double_value(&[]);
        assert_eq!((lo, hi), (-1.0, 1.0));
        let mid = y.get(0).get(2).mean(Kind::Double).double_value(&[]);
        assert!((mid - (2.0 * 51.0 / 255.0 - 1.0)).abs() < 1e-6, "{mid}");
    }

    #[test]
    fn batches_of_the_wrong_kind_are_refused() {
        let f = Tensor::zeros([1, 8, 8, 3], (Kind::Float, Device::Cpu));
        assert!(check_batch(&f).unwrap_err().to_string().contains("uint8"));
        let g = Tensor::zeros([1, 8, 8, 1], (Kind::Uint8, Device::Cpu));
        assert!(check_batch(&g).is_err());
    }
}
