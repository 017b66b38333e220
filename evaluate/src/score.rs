//! Feature passes over whole sets of images: an ingested split (the reference statistics of
//! `ncsn fid-stats`), a samples file of `ncsn sample --raw`, or batches a caller brings (image
//! folders, samples drawn on the device); each gathers μ, Σ and, for samples, the logits.

use std::path::Path;

use shards::{Dataset, ShardReader};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::extract::{FeatureExtractor, Features};
use crate::inception_score::{inception_score, InceptionScore};
use crate::npz::{NpyData, Npz};
use crate::stats::{Moments, Stats};

/// What a pass over a set of images keeps: the moments for FID, the logits for IS (on the
/// CPU, N × 1008 f32) when asked.
#[derive(Debug, Default)]
pub struct Gather {
    moments: Moments,
    logits: Option<Vec<Tensor>>,
    image_size: Option<[u32; 2]>,
}

impl Gather {
    /// `keep_logits`: also keep what the Inception Score needs.
    pub fn new(keep_logits: bool) -> Self {
        Gather {
            moments: Moments::new(),
            logits: keep_logits.then(Vec::new),
            image_size: None,
        }
    }

    /// Adds a batch's features.
    pub fn add(&mut self, f: &Features) {
        self.moments.add(&f.pool3);
        if let Some(l) = &mut self.logits {
            l.push(f.logits.to_device(Device::Cpu));
        }
    }

    /// Records the images' size, which the statistics then carry.
    pub fn set_image_size(&mut self, size: [u32; 2]) {
        self.image_size = Some(size);
    }

    pub fn len(&self) -> u64 {
        self.moments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.moments.is_empty()
    }

    /// μ and Σ of everything added (≥ 2 images).
    pub fn stats(&self) -> Result<Stats> {
        let mut s = self.moments.stats()?;
        s.image_size = self.image_size;
        Ok(s)
    }

    /// The Inception Score over `splits` (needs `keep_logits`).
    pub fn inception_score(&self, splits: usize) -> Result<InceptionScore> {
        let logits = self
            .logits
            .as_ref()
            .ok_or_else(|| Error::Invalid("logits were not kept for the Inception Score".into()))?;
        if logits.is_empty() {
            return Err(Error::Invalid("no samples for the Inception Score".into()));
        }
        inception_score(&Tensor::cat(logits, 0), splits)
    }
}

/// uint8 NHWC samples as `ncsn sample --raw` writes them (`np.savez(f, samples)`).
#[derive(Debug, Clone)]
pub struct Samples {
    /// [N, H, W, 3].
    pub shape: [usize; 4],
    pub pixels: Vec<u8>,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// [height, width].
    pub fn image_size(&self) -> [u32; 2] {
        [self.shape[1] as u32, self.shape[2] as u32]
    }

    /// Reads `arr_0` (or the archive's only array). Refused, naming the file: not uint8 (a
    /// float array may hold NaN and has no agreed range), not [N, H, W, 3], no images.
    pub fn read_npz(path: &Path) -> Result<Samples> {
        let mut npz = Npz::open(path)?;
        let names = npz.names();
        let name = if names.iter().any(|n| n == "arr_0") || names.len() != 1 {
            "arr_0".to_string()
        } else {
            names[0].clone()
        };
        let a = npz.read(&name)?;
        let NpyData::U8(pixels) = a.data else {
            let nan = match &a.data {
                NpyData::F32(v) => v.iter().any(|x| !x.is_finite()),
                NpyData::F64(v) => v.iter().any(|x| !x.is_finite()),
                _ => false,
            };
            return Err(Error::file(
                path,
                format!(
                    "`{name}` is {}{}: FID takes uint8 images [N, H, W, 3] (what `ncsn sample \
                     --raw` writes)",
                    a.data.dtype(),
                    if nan { " holding NaN/inf" } else { "" }
                ),
            ));
        };
        let shape: [usize; 4] = match a.shape.as_slice() {
            &[n, h, w, 3] if n > 0 && h > 0 && w > 0 => [n, h, w, 3],
            other => {
                return Err(Error::file(
                    path,
                    format!(
                        "`{name}` is {other:?}: expected uint8 images [N, H, W, 3] with N ≥ 1 \
                         (NHWC RGB, what `ncsn sample --raw` writes)"
                    ),
                ))
            }
        };
        Ok(Samples { shape, pixels })
    }

    /// Images `[start, start + len)` as a uint8 [len, H, W, 3] tensor on the CPU.
    pub fn batch(&self, start: usize, len: usize) -> Tensor {
        let per = self.shape[1] * self.shape[2] * 3;
        Tensor::from_data_size(
            &self.pixels[start * per..(start + len) * per],
            &[len as i64, self.shape[1] as i64, self.shape[2] as i64, 3],
            Kind::Uint8,
        )
    }
}

/// Features of all `samples`, `batch_size` at a time, logits kept for the Inception Score.
pub fn gather_samples(
    extractor: &FeatureExtractor,
    samples: &Samples,
    batch_size: usize,
    progress: bool,
) -> Result<Gather> {
    let batch_size = batch_size.max(1);
    let mut g = Gather::new(true);
    g.set_image_size(samples.image_size());
    let bar = progress::bar(samples.len() as u64, progress, "images");
    bar.set_message("Inception features");
    let mut start = 0;
    while start < samples.len() {
        let len = batch_size.min(samples.len() - start);
        g.add(&extractor.extract(&samples.batch(start, len))?);
        start += len;
        bar.inc(len as u64);
    }
    bar.finish_and_clear();
    Ok(g)
}

/// Reference statistics of a split of an `ncsn ingest` directory, read shard by shard.
pub fn dataset_stats(
    extractor: &FeatureExtractor,
    dir: &Path,
    split: &str,
    batch_size: usize,
    progress: bool,
) -> Result<Stats> {
    let ds = Dataset::open(dir)?;
    let entries = &ds.split(split)?.shards;
    let m = &ds.manifest;
    if m.channels != 3 {
        return Err(Error::file(
            dir,
            format!("images have {} channels; FID takes RGB", m.channels),
        ));
    }
    let total: u64 = entries.iter().map(|e| e.rows).sum();
    if total < 2 {
        return Err(Error::file(
            dir,
            format!("split `{split}` has {total} images: statistics need at least 2"),
        ));
    }
    let mut g = Gather::new(false);
    g.set_image_size([m.height, m.width]);
    let bar = progress::bar(total, progress, "images");
    bar.set_message(format!("Inception features of {split}"));
    for entry in entries {
        let path = ds.shard_path(entry);
        let reader = ShardReader::open(&path)?;
        let info = &reader.info;
        if (info.height, info.width, info.channels) != (m.height, m.width, m.channels) {
            return Err(Error::file(
                &path,
                format!(
                    "images are {}×{}×{}, the manifest says {}×{}×{}",
                    info.height, info.width, info.channels, m.height, m.width, m.channels
                ),
            ));
        }
        for rows in reader.batches(batch_size.max(1), None)? {
            let rows = rows?;
            let images = Tensor::from_data_size(
                &rows.pixels,
                &[rows.len() as i64, m.height as i64, m.width as i64, 3],
                Kind::Uint8,
            );
            g.add(&extractor.extract(&images)?);
            bar.inc(rows.len() as u64);
        }
    }
    bar.finish_and_clear();
    if g.len() != total {
        return Err(Error::file(
            dir,
            format!(
                "split `{split}`: read {} images, the manifest says {total}",
                g.len()
            ),
        ));
    }
    g.stats()
}
