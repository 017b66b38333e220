//! The whole stage on an ingested directory: read the training images, Technique 1 (σ₁ and the
//! pair that defines it), the statistics, then Techniques 2 and 4 for that σ₁ and D.

use std::path::Path;
use std::time::{Duration, Instant};

use schemas::calibration::{Calibration, DataStats, MaxPair};

use crate::data::{load_split, Images, LoadOptions};
use crate::error::{Error, Result};
use crate::pairwise::{pairwise, ByteRows, Pairwise, PairwiseOptions};
use crate::stats::channel_mean_std;
use crate::{Schedule, ScheduleOptions};

/// A calibration of real data, with what it took.
#[derive(Debug, Clone)]
pub struct DataCalibration {
    pub calibration: Calibration,
    pub read_time: Duration,
    pub pairwise_time: Duration,
}

/// Calibrates the images of one split of an `ncsn ingest` directory.
pub fn calibrate_dir(
    dir: &Path,
    load: &LoadOptions,
    pairs: &PairwiseOptions,
    schedule: &ScheduleOptions,
) -> Result<DataCalibration> {
    let t0 = Instant::now();
    let images = load_split(dir, load)?;
    let read_time = t0.elapsed();
    let t1 = Instant::now();
    let rows = ByteRows::new(&images.pixels, images.dims())?;
    let pw = pairwise(rows, pairs)?;
    let pairwise_time = t1.elapsed();
    let calibration = calibration_from(&images, &pw, schedule)?;
    Ok(DataCalibration {
        calibration,
        read_time,
        pairwise_time,
    })
}

/// Technique 1: σ₁ is the maximum pairwise distance; then Techniques 2 and 4.
fn calibration_from(
    images: &Images,
    pw: &Pairwise,
    schedule: &ScheduleOptions,
) -> Result<Calibration> {
    let sigma_begin = pw.max.distance();
    if sigma_begin <= schedule.sigma_end {
        return Err(Error::Invalid(format!(
            "the largest distance between two training images is {sigma_begin}, not above \
             --sigma-end {}: are the images (nearly) all identical?",
            schedule.sigma_end
        )));
    }
    let mut c = Schedule::new(sigma_begin, images.dims(), schedule)?.calibration();
    let (a, b) = (pw.max.first, pw.max.second);
    let (channel_mean, channel_std) = channel_mean_std(&images.pixels, images.channels as usize);
    c.n = Some(images.total);
    c.sample_seed = images.sample_seed;
    c.max_pair = Some(MaxPair {
        id_a: images.ids[a],
        id_b: images.ids[b],
        key_a: images.keys[a].clone(),
        key_b: images.keys[b].clone(),
        distance: sigma_begin,
    });
    c.stats = Some(DataStats {
        images_used: images.len() as u64,
        median_pairwise_distance: pw.median,
        median_method: pw.median_method.clone(),
        channel_mean,
        channel_std,
    });
    Ok(c)
}
