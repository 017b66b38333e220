//! An ingested directory: its manifest and the way to its shards.

use std::path::{Path, PathBuf};

use schemas::layout::{Layout, FLAT_MANIFEST_FILE, MANIFEST_FILE};
use schemas::manifest::{Manifest, ShardEntry, SplitManifest};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;

use crate::error::{Error, Result};
use crate::read::{ShardReader, ShardRows};

/// An ingested directory: its manifest and the way to its shards.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub layout: Layout,
}

impl Dataset {
    /// The ingested directory `dir`, in either layout ([`Layout`]: the current one with
    /// `_manifest.json` and a folder per split, or the flat one with `manifest.json`).
    pub fn open(dir: &Path) -> Result<Self> {
        let Some(layout) = Layout::of_dir(dir) else {
            return Err(Error::format(dir, not_a_dataset(dir)));
        };
        let manifest = Manifest::read(&dir.join(layout.manifest_file()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            layout,
        })
    }

    /// The manifest file this dataset was opened from.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(self.layout.manifest_file())
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

/// Why `dir` is no ingested directory, with the likely mistake when it is one split's folder.
fn not_a_dataset(dir: &Path) -> String {
    let split_folder = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("split="))
        && dir.parent().and_then(Layout::of_dir).is_some();
    if split_folder {
        "is one split's folder of an `ncsn ingest` directory: pass its parent".to_string()
    } else {
        format!(
            "no {MANIFEST_FILE} (nor the {FLAT_MANIFEST_FILE} of earlier versions) here: not an \
             `ncsn ingest` output directory"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{Row, ShardWriter};
    use schemas::JsonDocument;

    /// A two-split directory in `layout`, written as `ncsn ingest` would.
    fn write(dir: &Path, layout: Layout) {
        let mut m = Manifest::new("test", "generated", "none", 1, 2);
        for (split, n) in [("train", 5u64), ("test", 2)] {
            let info = ShardInfo {
                height: 1,
                width: 2,
                channels: 3,
                dataset: "test".into(),
                split: split.into(),
                recipe: "none".into(),
            };
            let path = dir.join(layout.shard_file(split, 0));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut w = ShardWriter::create(&path, &info, 0, 4).unwrap();
            let rows: Vec<Row> = (0..n)
                .map(|i| Row {
                    id: i,
                    key: format!("{split}{i}"),
                    label: None,
                    pixels: vec![i as u8; 6],
                })
                .collect();
            w.write(&rows).unwrap();
            let mut entry = w.finish().unwrap();
            entry.file = layout.shard_file(split, 0);
            let sm = SplitManifest {
                count: n,
                shards: vec![entry],
                rejected: vec![],
            };
            m.splits.insert(split.into(), sm);
        }
        m.write_atomic(&dir.join(layout.manifest_file())).unwrap();
    }

    #[test]
    fn both_layouts_open_and_read_the_same_rows() {
        let tmp = tempfile::tempdir().unwrap();
        for layout in [Layout::Split, Layout::Flat] {
            let dir = tmp.path().join(format!("{layout:?}"));
            write(&dir, layout);
            let ds = Dataset::open(&dir).unwrap();
            assert_eq!(ds.layout, layout);
            assert_eq!(ds.manifest_path(), dir.join(layout.manifest_file()));
            let train = ds.read_split("train").unwrap();
            assert_eq!(
                train.keys,
                ["train0", "train1", "train2", "train3", "train4"]
            );
            assert_eq!(train.image(4), [4; 6]);
            assert_eq!(ds.read_split("test").unwrap().len(), 2);
        }
        let split = tmp.path().join("Split");
        assert!(split.join("split=train/train-00000.parquet").is_file());
        assert!(tmp.path().join("Flat/train-00000.parquet").is_file());
    }

    #[test]
    fn missing_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Dataset::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("_manifest.json") && err.contains("manifest.json of earlier"),
            "{err}"
        );
        write(dir.path(), Layout::Split);
        let err = Dataset::open(&dir.path().join("split=train"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "split=train: is one split's folder of an `ncsn ingest` directory: pass its parent"
            ),
            "{err}"
        );
    }
}
