//! A small procedural image dataset for the demo and for tests: ten classes of coloured shapes
//! and patterns with random placement, size and colour, written in CIFAR-10's real binary format
//! (`cifar-10-batches-bin/`: records of 1 label byte + 1024 R + 1024 G + 1024 B bytes), so the
//! demo exercises the same ingestion path as the real dataset, without a download.
//!
//! The classes are large, smooth and distinct so a small score network learns them in a few
//! hundred CPU steps and a person recognises them in a sample grid.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::cifar;

use crate::{Error, Result};

/// The side of a procedural image: CIFAR-10's.
pub use schemas::cifar::SIDE;

/// The ten classes, in label order (written to `batches.meta.txt`).
pub const CLASSES: [&str; 10] = [
    "red_disc",
    "green_square",
    "blue_hstripes",
    "yellow_vstripes",
    "magenta_triangle",
    "cyan_cross",
    "orange_ring",
    "white_diagonal",
    "sunset_gradient",
    "twin_dots",
];

/// Uniform in [0, 1).
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

fn range(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}

/// A colour near `base` (each channel jittered by ±`jit`).
fn jitter(rng: &mut ChaCha8Rng, base: [f32; 3], jit: f32) -> [f32; 3] {
    base.map(|c| (c + range(rng, -jit, jit)).clamp(0.0, 1.0))
}

/// One procedural `SIDE`×`SIDE` RGB image (HWC bytes) of class `label`, fully determined by
/// (`seed`, `index`): generation order and parallelism never change the dataset.
pub fn procedural_image(label: u8, seed: u64, index: u64) -> Vec<u8> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = SIDE as f32;
    // Dark background with a gentle vertical gradient, jittered per image.
    let bg_top = jitter(&mut rng, [0.12, 0.12, 0.16], 0.08);
    let bg_bot = jitter(&mut rng, [0.05, 0.05, 0.08], 0.05);
    let (cx, cy) = (range(&mut rng, 11.0, 21.0), range(&mut rng, 11.0, 21.0));
    let r = range(&mut rng, 6.0, 10.0);
    let phase = range(&mut rng, 0.0, 8.0);
    let period = range(&mut rng, 6.0, 9.0);
    let fg = match label {
        0 => jitter(&mut rng, [0.9, 0.15, 0.1], 0.1),
        1 => jitter(&mut rng, [0.2, 0.8, 0.25], 0.1),
        2 => jitter(&mut rng, [0.2, 0.35, 0.95], 0.1),
        3 => jitter(&mut rng, [0.95, 0.9, 0.2], 0.08),
        4 => jitter(&mut rng, [0.9, 0.2, 0.85], 0.1),
        5 => jitter(&mut rng, [0.2, 0.9, 0.9], 0.1),
        6 => jitter(&mut rng, [1.0, 0.55, 0.1], 0.08),
        7 => jitter(&mut rng, [0.92, 0.92, 0.92], 0.06),
        8 => jitter(&mut rng, [0.95, 0.5, 0.2], 0.08),
        _ => jitter(&mut rng, [0.95, 0.95, 0.3], 0.08),
    };
    let sky = jitter(&mut rng, [0.35, 0.15, 0.55], 0.08);
    let mut out = vec![0u8; SIDE * SIDE * 3];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = fy / n;
            let bg: [f32; 3] = std::array::from_fn(|c| bg_top[c] * (1.0 - t) + bg_bot[c] * t);
            let (dx, dy) = (fx - cx, fy - cy);
            let d = (dx * dx + dy * dy).sqrt();
            // Coverage of the foreground at this pixel, in [0, 1].
            let cover: f32 = match label {
                0 => (r - d + 0.5).clamp(0.0, 1.0),
                1 => (dx.abs() < r * 0.85 && dy.abs() < r * 0.85) as u8 as f32,
                2 => (((fy + phase) / period).floor() as i64 % 2 == 0) as u8 as f32,
                3 => (((fx + phase) / period).floor() as i64 % 2 == 0) as u8 as f32,
                4 => {
                    // Upward triangle: apex at (cx, cy − r), base at cy + r.
                    let h = (fy - (cy - r)) / (2.0 * r);
                    ((0.0..=1.0).contains(&h) && dx.abs() <= h * r) as u8 as f32
                }
                5 => {
                    ((dx.abs() < r * 0.3 && dy.abs() < r) || (dy.abs() < r * 0.3 && dx.abs() < r))
                        as u8 as f32
                }
                6 => ((d - r * 0.75).abs() < r * 0.28) as u8 as f32,
                7 => {
                    let u = (fx + fy + phase * 2.0) / (2.0 * n);
                    u.fract()
                }
                8 => 1.0,
                _ => {
                    let d2 = |ox: f32| ((fx - ox).powi(2) + dy * dy).sqrt();
                    let o = r * 0.8;
                    ((r * 0.5 - d2(cx - o) + 0.5).clamp(0.0, 1.0))
                        .max((r * 0.5 - d2(cx + o) + 0.5).clamp(0.0, 1.0))
                }
            };
            let px: [f32; 3] = if label == 8 {
                // A sunset: the sky colour at the top fading to the sun colour at a random horizon.
                let h = ((fy - cy + 12.0) / 24.0).clamp(0.0, 1.0);
                std::array::from_fn(|c| sky[c] * (1.0 - h) + fg[c] * h)
            } else {
                std::array::from_fn(|c| bg[c] * (1.0 - cover) + fg[c] * cover)
            };
            for c in 0..3 {
                out[(y * SIDE + x) * 3 + c] = (px[c] * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Options of [`write_cifar10_bin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    pub n_train: u64,
    pub n_test: u64,
    pub seed: u64,
}

/// What [`write_cifar10_bin`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// `OUT/cifar-10-batches-bin`.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Writes `out/cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin, batches.meta.txt}`.
/// Train images are spread over the five batches like the real set (the first batches take any
/// remainder); labels cycle 0..9 so every class is equally represented. Each file is written
/// atomically. `progress` is called with the number of images written so far.
pub fn write_cifar10_bin(
    out: &Path,
    opts: SynthOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<SynthSummary> {
    let dir = out.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let mut files = vec![];
    let mut done = 0u64;
    // Test images use indices after all train images so the two splits never share an image.
    let mut write_batch = |name: &str, first: u64, count: u64| -> Result<PathBuf> {
        let path = dir.join(name);
        let mut bytes = Vec::with_capacity(count as usize * cifar::RECORD_BYTES);
        for i in first..first + count {
            let label = (i % 10) as u8;
            bytes.extend(cifar::record(label, &procedural_image(label, opts.seed, i)));
            done += 1;
            if done.is_multiple_of(256) {
                progress(done);
            }
        }
        write_atomic(&path, &bytes)?;
        Ok(path)
    };
    let mut first = 0;
    let batches = cifar::TRAIN_BATCHES.len() as u64;
    for (b, name) in (0..).zip(cifar::TRAIN_BATCHES) {
        let count = opts.n_train / batches + u64::from(b < opts.n_train % batches);
        files.push(write_batch(&format!("{name}.bin"), first, count)?);
        first += count;
    }
    let [test] = cifar::TEST_BATCHES;
    files.push(write_batch(
        &format!("{test}.bin"),
        opts.n_train,
        opts.n_test,
    )?);
    progress(opts.n_train + opts.n_test);
    // Like the real file: one class name per line.
    let meta = dir.join("batches.meta.txt");
    write_atomic(&meta, (CLASSES.join("\n") + "\n\n").as_bytes())?;
    files.push(meta);
    Ok(SynthSummary { dir, files })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    schemas::atomic::write_atomic(path, bytes).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_byte_layout() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SynthOptions {
            n_train: 23,
            n_test: 7,
            seed: 5,
        };
        let s = write_cifar10_bin(dir.path(), opts, &mut |_| {}).unwrap();
        assert_eq!(s.files.len(), 7);
        let sizes: Vec<u64> = (1..=5)
            .map(|b| {
                std::fs::metadata(s.dir.join(format!("data_batch_{b}.bin")))
                    .unwrap()
                    .len()
            })
            .collect();
        // 23 = 5 + 5 + 5 + 4 + 4 records of 3073 bytes.
        let recs: Vec<u64> = sizes
            .iter()
            .map(|b| b / cifar::RECORD_BYTES as u64)
            .collect();
        assert_eq!(recs, vec![5, 5, 5, 4, 4]);
        assert!(sizes.iter().all(|b| b % cifar::RECORD_BYTES as u64 == 0));

        // Byte-level decode of one record: label byte, then R plane, G plane, B plane.
        let batch2 = std::fs::read(s.dir.join("data_batch_2.bin")).unwrap();
        let rec = &batch2[cifar::RECORD_BYTES..2 * cifar::RECORD_BYTES]; // global index 6
        assert_eq!(rec[0], 6);
        let img = procedural_image(6, 5, 6);
        for (y, x) in [(0, 0), (3, 17), (31, 31), (16, 2)] {
            for c in 0..3 {
                assert_eq!(rec[1 + c * 1024 + y * 32 + x], img[(y * 32 + x) * 3 + c]);
            }
        }
        let test = std::fs::read(s.dir.join("test_batch.bin")).unwrap();
        assert_eq!(test.len(), 7 * cifar::RECORD_BYTES);
        assert_eq!(test[0], (23 % 10) as u8);
        let meta = std::fs::read_to_string(s.dir.join("batches.meta.txt")).unwrap();
        assert_eq!(meta.lines().next(), Some("red_disc"));
        assert_eq!(meta.lines().filter(|l| !l.is_empty()).count(), 10);
    }

    #[test]
    fn images_are_deterministic_and_classes_differ() {
        assert_eq!(procedural_image(3, 1, 10), procedural_image(3, 1, 10));
        assert_ne!(procedural_image(3, 1, 10), procedural_image(3, 2, 10));
        // Mean colour per class: the ten classes are far apart from each other on average.
        let mean = |label: u8| -> [f64; 3] {
            let mut m = [0.0; 3];
            for i in 0..20 {
                let img = procedural_image(label, 0, i);
                for (k, v) in img.iter().enumerate() {
                    m[k % 3] += *v as f64 / (20.0 * 1024.0);
                }
            }
            m
        };
        let means: Vec<[f64; 3]> = (0..10).map(mean).collect();
        for a in 0..10 {
            for b in a + 1..10 {
                let d: f64 = (0..3).map(|c| (means[a][c] - means[b][c]).abs()).sum();
                assert!(
                    d > 5.0,
                    "classes {a} and {b} look alike on average ({d:.1})"
                );
            }
        }
    }
}
