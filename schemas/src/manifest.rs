//! The manifest: what an `ncsn ingest` output directory holds (SPEC §4). Its file name, and
//! those of the shards it lists, are in [`crate::layout`].

use std::collections::BTreeMap;

use crate::{JsonDocument, SCHEMA_VERSION};

pub use crate::layout::MANIFEST_FILE;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// `ncsn` version that wrote the shards.
    pub tool_version: String,
    /// `cifar10`, `celeba`, `lsun`, `ffhq` or `folder`.
    pub dataset: String,
    /// The input as given on the command line (for provenance only).
    pub source: String,
    /// Transform recipe, identical to each shard's `ncsn.recipe` metadata.
    pub recipe: String,
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    /// Seed of a random train/test split (FFHQ), when the dataset has no official one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Set when this directory holds only slice `index` of `count` (`--partition i/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// Options that change the bytes written (e.g. `shard_rows`, `limit`), so a resumed or
    /// merged run can check it agrees with the run that started the directory.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub splits: BTreeMap<String, SplitManifest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct SplitManifest {
    /// Images written (sum of the shards' rows).
    pub count: u64,
    pub shards: Vec<ShardEntry>,
    /// Inputs that could not be used, each with the reason; never silently dropped.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardEntry {
    /// Path relative to the manifest's directory, `/`-separated
    /// ([`crate::layout::Layout::shard_file`]).
    pub file: String,
    pub rows: u64,
    /// `id` of the shard's first row (ids are dense within a split).
    pub first_id: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// File name or LMDB key of the input.
    pub key: String,
    pub reason: String,
}

impl Manifest {
    pub fn new(dataset: &str, source: &str, recipe: &str, height: u32, width: u32) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            dataset: dataset.into(),
            source: source.into(),
            recipe: recipe.into(),
            height,
            width,
            channels: 3,
            split_seed: None,
            partition: None,
            options: BTreeMap::new(),
            splits: BTreeMap::new(),
        }
    }

    pub fn total_images(&self) -> u64 {
        self.splits.values().map(|s| s.count).sum()
    }
}

impl JsonDocument for Manifest {
    const WHAT: &'static str = "ncsn manifest";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn round_trips_through_a_file() {
        let mut m = Manifest::new(
            "celeba",
            "data/celeba",
            "center_crop(140)|resize(64)",
            64,
            64,
        );
        m.partition = Some(Partition { index: 1, count: 4 });
        m.options.insert("shard_rows".into(), "8192".into());
        m.splits.insert(
            "train".into(),
            SplitManifest {
                count: 3,
                shards: vec![ShardEntry {
                    file: "split=train/train-00000.parquet".into(),
                    rows: 3,
                    first_id: 0,
                    bytes: 1234,
                    sha256: "ab".repeat(32),
                }],
                rejected: vec![Rejected {
                    key: "000007.jpg".into(),
                    reason: "truncated JPEG".into(),
                }],
            },
        );
        let dir = std::env::temp_dir().join(format!("ncsn-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(MANIFEST_FILE);
        m.write_atomic(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
        assert_eq!(m.total_images(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wrong_version_names_the_file() {
        let m = Manifest::new("cifar10", "x", "none", 32, 32);
        let text = serde_json::to_string(&m).unwrap().replace(
            &format!("\"schema_version\":{SCHEMA_VERSION}"),
            "\"schema_version\":7",
        );
        let err = Manifest::from_json_str(&text, Path::new("out/_manifest.json")).unwrap_err();
        assert!(err.to_string().contains("out/_manifest.json"), "{err}");
        assert!(err.to_string().contains('7'), "{err}");
    }
}
