//! Nearest neighbours of samples in the training set (App. C.5.2, Figs. 16–19): ℓ2 in the
//! FID Inception network's pool3 space, every training image offered twice, as stored and
//! horizontally flipped — the trainer flips at random, so a memorised flip must show.
//!
//! The training split is streamed shard by shard; each batch's features go through
//! `calibrate`'s blockwise GEMM engine ([`calibrate::nearest`]), which keeps the running
//! top k per sample, exact in f64. Only the samples' features and one batch are held, plus
//! the pixels of the current k best of each sample (what the figure shows).

mod figure;

use std::path::Path;

use calibrate::nearest::Nearest;
use shards::{Dataset, Rgb8, ShardReader};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::extract::FeatureExtractor;
use crate::score::Samples;

pub use figure::{figure, figure_size, flip_horizontal, line_width, PADDING};

/// One of a sample's nearest training images.
#[derive(Debug, Clone)]
pub struct TrainingNeighbour {
    /// The shard row's id (dense per split, in dataset order).
    pub id: u64,
    /// The row's source key (file name, LMDB key, CIFAR record).
    pub key: String,
    /// Whether the match is the horizontally flipped image.
    pub flipped: bool,
    /// ℓ2 in pool3 space (f64, from the features).
    pub distance: f64,
    /// The image as matched: as stored, mirrored when `flipped`.
    pub image: Rgb8,
}

/// A sample and its nearest training images, nearest first.
#[derive(Debug, Clone)]
pub struct SampleNeighbours {
    /// The sample's row in the samples file.
    pub index: usize,
    pub neighbours: Vec<TrainingNeighbour>,
}

#[derive(Debug, Clone)]
pub struct Neighbours {
    /// The training images' [height, width].
    pub image_size: [u32; 2],
    /// Images in the split (each a candidate twice, with its flip).
    pub training_images: u64,
    pub samples: Vec<SampleNeighbours>,
}

impl Neighbours {
    /// Figs. 16–19: one row per sample of `samples` (the file the indices refer to).
    pub fn figure(&self, samples: &Samples) -> Rgb8 {
        let [_, h, w, _] = samples.shape;
        let per = h * w * 3;
        let images: Vec<Rgb8> = self
            .samples
            .iter()
            .map(|s| Rgb8 {
                width: w as u32,
                height: h as u32,
                data: samples.pixels[s.index * per..(s.index + 1) * per].to_vec(),
            })
            .collect();
        let rows: Vec<(&Rgb8, Vec<&Rgb8>)> = images
            .iter()
            .zip(&self.samples)
            .map(|(im, s)| (im, s.neighbours.iter().map(|n| &n.image).collect()))
            .collect();
        figure(&rows)
    }
}

/// What a reference carries into a sample's top k.
struct Match {
    id: u64,
    key: String,
    flipped: bool,
    image: Rgb8,
}

/// How many neighbours, and how the pass runs.
#[derive(Debug, Clone)]
pub struct NeighbourOptions {
    /// Neighbours per sample (at most twice the split's images).
    pub k: usize,
    /// Images per forward pass.
    pub batch_size: usize,
    pub progress: bool,
}

/// The k nearest training images of each sample `which` of `samples` in split `split` of the
/// ingested directory `dir`, flips included.
pub fn nearest_training_images(
    extractor: &FeatureExtractor,
    samples: &Samples,
    which: &[usize],
    dir: &Path,
    split: &str,
    opts: &NeighbourOptions,
) -> Result<Neighbours> {
    let NeighbourOptions {
        k,
        batch_size,
        progress,
    } = *opts;
    if which.is_empty() {
        return Err(Error::Invalid("no samples to find neighbours of".into()));
    }
    if let Some(&i) = which.iter().find(|&&i| i >= samples.len()) {
        return Err(Error::Invalid(format!(
            "sample {i} does not exist: the file has {} (0 to {})",
            samples.len(),
            samples.len() - 1
        )));
    }
    let ds = Dataset::open(dir)?;
    let m = &ds.manifest;
    if m.channels != 3 {
        return Err(Error::file(
            dir,
            format!("images have {} channels; Inception takes RGB", m.channels),
        ));
    }
    let entries = &ds.split(split)?.shards;
    let total: u64 = entries.iter().map(|e| e.rows).sum();
    if k as u64 > 2 * total {
        return Err(Error::file(
            dir,
            format!(
                "-k {k}: split `{split}` has {total} images, so {} candidates with their flips",
                2 * total
            ),
        ));
    }

    let batch_size = batch_size.max(1);
    let [_, sh, sw, _] = samples.shape;
    let per = sh * sw * 3;
    let mut feats = vec![];
    for chunk in which.chunks(batch_size) {
        let pixels: Vec<u8> = chunk
            .iter()
            .flat_map(|&i| samples.pixels[i * per..(i + 1) * per].iter().copied())
            .collect();
        let batch = Tensor::from_data_size(
            &pixels,
            &[chunk.len() as i64, sh as i64, sw as i64, 3],
            Kind::Uint8,
        );
        feats.push(extractor.extract(&batch)?.pool3);
    }
    let mut nn: Nearest<Match> = Nearest::new(&Tensor::cat(&feats, 0), k)?;

    let (h, w) = (m.height, m.width);
    let bar = progress::bar(total, progress, "images");
    bar.set_message(format!("nearest neighbours in {split}"));
    // Each image and its flip go through the network together: half a batch of rows.
    let rows_per_batch = (batch_size / 2).max(1);
    for entry in entries {
        let path = ds.shard_path(entry);
        let reader = ShardReader::open(&path)?;
        let info = &reader.info;
        if (info.height, info.width, info.channels) != (h, w, m.channels) {
            return Err(Error::file(
                &path,
                format!(
                    "images are {}×{}×{}, the manifest says {h}×{w}×{}",
                    info.height, info.width, info.channels, m.channels
                ),
            ));
        }
        for rows in reader.batches(rows_per_batch, None)? {
            let rows = rows?;
            let n = rows.len() as i64;
            let x = Tensor::from_data_size(&rows.pixels, &[n, h as i64, w as i64, 3], Kind::Uint8);
            // Interleaved (image, its flip): a candidate's stream index is 2·row + flipped,
            // so ties go to the earlier image, and to the unflipped one, whatever the batch.
            let both = Tensor::stack(&[&x, &x.flip([2])], 1).view([2 * n, h as i64, w as i64, 3]);
            let f = extractor.extract(&both)?.pool3;
            nn.push(&f, |j| {
                let (row, flipped) = (j / 2, j % 2 == 1);
                let stored = rows.image(row);
                Match {
                    id: rows.ids[row],
                    key: rows.keys[row].clone(),
                    flipped,
                    image: Rgb8 {
                        width: w,
                        height: h,
                        data: if flipped {
                            flip_horizontal(stored, w)
                        } else {
                            stored.to_vec()
                        },
                    },
                }
            })?;
            bar.inc(rows.len() as u64);
        }
    }
    bar.finish_and_clear();
    if nn.seen() != 2 * total {
        return Err(Error::file(
            dir,
            format!(
                "split `{split}`: read {} images, the manifest says {total}",
                nn.seen() / 2
            ),
        ));
    }
    let samples = which
        .iter()
        .zip(nn.finish())
        .map(|(&index, list)| SampleNeighbours {
            index,
            neighbours: list
                .into_iter()
                .map(|e| TrainingNeighbour {
                    distance: e.distance(),
                    id: e.payload.id,
                    key: e.payload.key,
                    flipped: e.payload.flipped,
                    image: e.payload.image,
                })
                .collect(),
        })
        .collect();
    Ok(Neighbours {
        image_size: [h, w],
        training_images: total,
        samples,
    })
}
