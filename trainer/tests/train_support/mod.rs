//! Fixtures for the training tests: tiny ingested datasets and a tiny config.
#![allow(dead_code)]

use std::path::Path;

use pipeline::shards::{Row, ShardWriter};
use schemas::config::Config;
use schemas::manifest::{Manifest, SplitManifest, MANIFEST_FILE};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;

/// Writes an `ncsn ingest`-style directory: `train` with `n_train` rows over `shards` shards
/// and, if `n_test > 0`, a `test` split. Pixel bytes encode the row id so tests can tell rows
/// apart: byte 0..8 = id little-endian, the rest a pattern.
pub fn write_dataset(dir: &Path, size: u32, n_train: u64, shards: u64, n_test: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut m = Manifest::new("test", "generated", "none", size, size);
    let bytes = (size * size * 3) as usize;
    for (split, n, k) in [("train", n_train, shards), ("test", n_test, 1)] {
        if n == 0 {
            continue;
        }
        let info = ShardInfo {
            height: size,
            width: size,
            channels: 3,
            dataset: "test".into(),
            split: split.into(),
            recipe: "none".into(),
        };
        let mut sm = SplitManifest::default();
        let per = n.div_ceil(k);
        let mut id = 0u64;
        for s in 0..k {
            let rows: Vec<Row> = (id..(id + per).min(n))
                .map(|i| Row {
                    id: i,
                    key: format!("{split}{i}"),
                    label: None,
                    pixels: pixels(i + if split == "test" { 1 << 20 } else { 0 }, bytes),
                })
                .collect();
            if rows.is_empty() {
                break;
            }
            let path = dir.join(format!("{split}-{s:05}.parquet"));
            let mut w = ShardWriter::create(&path, &info, id, 64).unwrap();
            w.write(&rows).unwrap();
            id += rows.len() as u64;
            let e = w.finish().unwrap();
            sm.count += e.rows;
            sm.shards.push(e);
        }
        m.splits.insert(split.into(), sm);
    }
    m.write_atomic(&dir.join(MANIFEST_FILE)).unwrap();
}

/// Row `id`'s pixels: its id in the first 8 bytes, then a smooth pattern.
pub fn pixels(id: u64, bytes: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..bytes)
        .map(|j| ((j as u64 * 7 + id * 13) % 251) as u8)
        .collect();
    if bytes >= 8 {
        p[..8].copy_from_slice(&id.to_le_bytes());
    }
    p
}

/// A small NCSNv2 (ngf 4, 8×8, 5 noise levels) that trains in milliseconds per step on CPU.
pub fn tiny_config(batch: usize, n_iters: u64, snapshot_freq: u64) -> Config {
    let text = format!(
        r#"
training: {{batch_size: {batch}, n_iters: {n_iters}, snapshot_freq: {snapshot_freq}, snapshot_sampling: false}}
sampling: {{batch_size: 4, step_lr: 0.00001, n_steps_each: 2}}
data: {{dataset: "TEST", image_size: 8, channels: 3, random_flip: true}}
model: {{sigma_begin: 10, num_classes: 5, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}}
optim: {{optimizer: Adam, lr: 0.001, eps: 0.00000001}}
"#
    );
    Config::from_yaml_str(&text, Path::new("tiny.yml")).unwrap()
}
