//! The training images calibration works on: read from an ingested directory's shards, all of
//! them or a seeded random sample (App. B.1: more than 60 000 → 10 000 at random).

use std::path::Path;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shards::{Dataset, ShardReader};

use crate::error::{Error, Result};

/// Which images to read.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub split: String,
    /// Up to this many images, use them all (the paper: 60 000).
    pub max_images_exact: u64,
    /// Above it, use a random sample of this many (the paper: 10 000).
    pub sample_size: u64,
    pub seed: u64,
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            split: "train".into(),
            max_images_exact: 60_000,
            sample_size: 10_000,
            seed: 0,
            progress: false,
        }
    }
}

/// Images held in memory as the shards store them: uint8 HWC, back to back.
#[derive(Debug, Clone)]
pub struct Images {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    /// Images in the split (N), whether or not all were read.
    pub total: u64,
    /// The sample's seed when a sample was drawn.
    pub sample_seed: Option<u64>,
    pub ids: Vec<u64>,
    pub keys: Vec<String>,
    pub pixels: Vec<u8>,
}

impl Images {
    /// D = H·W·C.
    pub fn dims(&self) -> usize {
        self.height as usize * self.width as usize * self.channels as usize
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Reads the split of an `ncsn ingest` directory (all images, or the seeded sample).
///
/// Refuses, naming the file: a missing directory, a split with fewer than two images, and
/// shards whose geometry differs from the manifest's (mixed resolutions).
pub fn load_split(dir: &Path, opts: &LoadOptions) -> Result<Images> {
    if !dir.is_dir() {
        return Err(Error::data(dir, "no such directory"));
    }
    let ds = Dataset::open(dir)?;
    let split = ds.split(&opts.split)?;
    let m = &ds.manifest;
    let total: u64 = split.shards.iter().map(|s| s.rows).sum();
    if total < 2 {
        let what = if total == 0 {
            "no images".to_string()
        } else {
            "only 1 image".to_string()
        };
        return Err(Error::data(
            dir,
            format!(
                "split `{}` has {what}: calibration needs at least 2 (σ₁ is a pairwise distance)",
                opts.split
            ),
        ));
    }
    let (wanted, sample_seed) = if total > opts.max_images_exact && opts.sample_size < total {
        if opts.sample_size < 2 {
            return Err(Error::Invalid(format!(
                "--sample-size {}: needs at least 2 images",
                opts.sample_size
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut pick: Vec<u64> = sample(&mut rng, total as usize, opts.sample_size as usize)
            .into_iter()
            .map(|i| i as u64)
            .collect();
        pick.sort_unstable();
        (Some(pick), Some(opts.seed))
    } else {
        (None, None)
    };

    let dims = m.height as usize * m.width as usize * m.channels as usize;
    let keep = wanted.as_ref().map_or(total, |w| w.len() as u64) as usize;
    let mut out = Images {
        height: m.height,
        width: m.width,
        channels: m.channels,
        total,
        sample_seed,
        ids: Vec::with_capacity(keep),
        keys: Vec::with_capacity(keep),
        pixels: Vec::with_capacity(keep * dims),
    };
    let bar = progress::bar(total, opts.progress, "images");
    bar.set_message("reading shards");
    // Position of a row in the split (shards in manifest order) and the next sampled position.
    let mut pos = 0u64;
    let mut next = 0usize;
    // ~64 MiB of pixels per batch, like a row group.
    let batch_rows = ((64usize << 20) / dims.max(1)).max(1);
    for entry in &split.shards {
        let path = ds.shard_path(entry);
        let end = pos + entry.rows;
        if let Some(w) = &wanted {
            if w.get(next).is_none_or(|&p| p >= end) {
                pos = end;
                bar.inc(entry.rows);
                continue; // nothing sampled in this shard
            }
        }
        let reader = ShardReader::open(&path)?;
        let info = &reader.info;
        if (info.height, info.width, info.channels) != (m.height, m.width, m.channels) {
            return Err(Error::data(
                &path,
                format!(
                    "images are {}×{}×{}, the manifest says {}×{}×{}: mixed resolutions \
                     cannot be calibrated together",
                    info.height, info.width, info.channels, m.height, m.width, m.channels
                ),
            ));
        }
        if reader.num_rows != entry.rows {
            return Err(Error::data(
                &path,
                format!(
                    "holds {} rows, the manifest says {}",
                    reader.num_rows, entry.rows
                ),
            ));
        }
        for batch in reader.batches(batch_rows, None)? {
            let batch = batch?;
            for r in 0..batch.len() {
                let take = match &wanted {
                    None => true,
                    Some(w) if w.get(next) == Some(&pos) => {
                        next += 1;
                        true
                    }
                    Some(_) => false,
                };
                if take {
                    out.ids.push(batch.ids[r]);
                    out.keys.push(batch.keys[r].clone());
                    out.pixels.extend_from_slice(batch.image(r));
                }
                pos += 1;
            }
            bar.inc(batch.len() as u64);
        }
        if pos != end {
            return Err(Error::data(
                &path,
                format!(
                    "yielded {} rows, the manifest says {}",
                    pos + entry.rows - end,
                    entry.rows
                ),
            ));
        }
    }
    bar.finish_and_clear();
    debug_assert_eq!(out.len(), keep);
    Ok(out)
}
