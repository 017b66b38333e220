//! An ingested directory: its manifest and the way to its shards.

use std::path::{Path, PathBuf};

use schemas::manifest::{Manifest, ShardEntry, SplitManifest, MANIFEST_FILE};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;

use crate::error::{Error, Result};
use crate::read::{ShardReader, ShardRows};

/// An ingested directory: its manifest and the way to its shards.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Dataset {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Err(Error::format(
                dir,
                "no manifest.json here: not an `ncsn ingest` output directory",
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest: Manifest::read(&path)?,
        })
    }

    /// The geometry and provenance shared by all shards of `split`.
    pub fn info(&self, split: &str) -> ShardInfo {
        let m = &self.manifest;
        ShardInfo {
            height: m.height,
            width: m.width,
            channels: m.channels,
            dataset: m.dataset.clone(),
            split: split.to_string(),
            recipe: m.recipe.clone(),
        }
    }

    pub fn split(&self, name: &str) -> Result<&SplitManifest> {
        self.manifest.splits.get(name).ok_or_else(|| {
            let have: Vec<_> = self.manifest.splits.keys().cloned().collect();
            Error::Usage(format!(
                "{}: no split `{name}` (this directory has: {})",
                self.dir.display(),
                have.join(", ")
            ))
        })
    }

    pub fn shard_path(&self, entry: &ShardEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Every row of a split, in id order. For small data only (tests, previews).
    pub fn read_split(&self, split: &str) -> Result<ShardRows> {
        let mut out = ShardRows::default();
        for e in &self.split(split)?.shards {
            out.append(ShardReader::open(&self.shard_path(e))?.read_all()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Dataset::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
    }
}
