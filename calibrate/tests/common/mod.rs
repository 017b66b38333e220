//! Builds small ingested directories (shards + manifest.json) for the tests, with the same
//! writer `ncsn ingest` uses, so these tests do not depend on any dataset reader.

#![allow(dead_code)]

use std::path::Path;

use pipeline::shards::{Row, ShardWriter};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::manifest::{Manifest, SplitManifest, MANIFEST_FILE};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;

pub fn info(height: u32, width: u32) -> ShardInfo {
    ShardInfo {
        height,
        width,
        channels: 3,
        dataset: "test".into(),
        split: "train".into(),
        recipe: "none".into(),
    }
}

/// Random images, ids from `first_id`, keys `img<id>.png`.
pub fn random_rows(n: usize, dims: usize, first_id: u64, seed: u64) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n as u64)
        .map(|i| Row {
            id: first_id + i,
            key: format!("img{}.png", first_id + i),
            label: None,
            pixels: (0..dims).map(|_| rng.random::<u8>()).collect(),
        })
        .collect()
}

/// Writes one shard per entry of `shards` (each with its own geometry and rows) and a
/// manifest with the geometry of `manifest_hw` listing them as the `train` split.
pub fn write_dataset(dir: &Path, manifest_hw: (u32, u32), shards: &[(ShardInfo, Vec<Row>)]) {
    let mut split = SplitManifest::default();
    let mut first_id = 0;
    for (k, (info, rows)) in shards.iter().enumerate() {
        let path = dir.join(format!("train-{k:05}.parquet"));
        let mut w = ShardWriter::create(&path, info, first_id, 16).unwrap();
        w.write(rows).unwrap();
        let entry = w.finish().unwrap();
        first_id += entry.rows;
        split.count += entry.rows;
        split.shards.push(entry);
    }
    let mut m = Manifest::new("test", "generated", "none", manifest_hw.0, manifest_hw.1);
    m.splits.insert("train".into(), split);
    m.write_atomic(&dir.join(MANIFEST_FILE)).unwrap();
}

/// `n` random h×w images split over shards of at most `per_shard` rows.
pub fn random_dataset(dir: &Path, h: u32, w: u32, n: usize, per_shard: usize, seed: u64) {
    let dims = (h * w * 3) as usize;
    let rows = random_rows(n, dims, 0, seed);
    let shards: Vec<_> = rows
        .chunks(per_shard)
        .map(|c| (info(h, w), c.to_vec()))
        .collect();
    write_dataset(dir, (h, w), &shards);
}
