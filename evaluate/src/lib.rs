//! Evaluation (issue 13; paper §4, Table 1, App. C.5.2): the FID Inception network of
//! pytorch-fid in tch, its preprocessing, the Fréchet distance, the Inception Score, and the
//! statistics files pytorch-fid and TTUR read and write.
//!
//! - [`FeatureExtractor`]: uint8 NHWC batches on a device → pool3 features (2048, for FID and
//!   nearest neighbours) and the 1008 logits (for IS), loaded from pytorch-fid's published
//!   weights file ([`default_weights_path`]) with no Python.
//! - [`Stats`] (μ, Σ; `.npz` in and out) from [`Moments`] accumulated batch by batch;
//!   [`frechet_distance`]; [`inception_score`].
//! - [`score`]: whole passes over an ingested split, a samples file, or caller's batches.
//! - [`neighbours`]: the nearest training images of samples, flips included (App. C.5.2), with
//!   `calibrate`'s blockwise GEMM engine.
//!
//! Like `calibrate` and `trainer`, it reads shards' raw pixels and links no image decoder.

mod error;
mod extract;
pub mod fid;
mod inception;
mod inception_score;
pub mod neighbours;
/// The `.npz` reader and writer (in `shards`, beside the sample writer), re-exported for
/// the statistics files' users.
pub use shards::npz;
mod pth;
pub mod score;
mod stats;
mod weights;

pub use error::{Error, Result};
pub use extract::{preprocess, FeatureExtractor, Features, INPUT_SIZE};
pub use fid::frechet_distance;
pub use inception::{InceptionV3, CLASSES, POOL3_DIMS};
pub use inception_score::{inception_score, InceptionScore, SPLITS};
pub use pth::read_state_dict;
pub use stats::{Moments, Stats};
pub use weights::{default_weights_path, load_inception, WEIGHTS_FILE, WEIGHTS_URL};
