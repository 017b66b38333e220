//! The calibration tests' datasets, from `testkit::datasets` with the split fixed to `train`.
#![allow(dead_code)]

use std::path::Path;

use schemas::shard::ShardInfo;
use shards::Row;
pub use testkit::datasets::{random_dataset, random_rows};

pub fn info(height: u32, width: u32) -> ShardInfo {
    testkit::datasets::info("train", height, width)
}

/// One `train` shard per entry of `shards` (each with its own geometry and rows), listed by a
/// manifest with the geometry `manifest_hw`.
pub fn write_dataset(dir: &Path, manifest_hw: (u32, u32), shards: &[(ShardInfo, Vec<Row>)]) {
    testkit::datasets::write_dataset(dir, manifest_hw, &[("train", shards.to_vec())]);
}
