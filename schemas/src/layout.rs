//! The names of what an ingested directory holds (SPEC §4), in one place: the writer, every
//! reader, resume and merge find files by these.
//!
//! The layout `ncsn ingest` writes ([`Layout::Split`]) is one a directory-reading Parquet tool
//! understands with no custom code:
//!
//! ```text
//! DIR/_manifest.json
//! DIR/split=train/train-00000.parquet, train-00001.parquet, ...
//! DIR/split=test/test-00000.parquet
//! ```
//!
//! One Hive-style folder per split gives pyarrow, pandas, polars and DuckDB a `split` column
//! (and a filter on it that skips the other splits' files). Every other file ncsn puts into
//! DIR starts with `_` (the manifest, a partition's manifest, the ingest journal and input
//! listing, the lock, `calibrate`'s default output), which is what pyarrow's directory
//! discovery, and Hadoop's before it, treat as "not data". The shard file names keep their
//! split, so shards copied out of their folder still say what they are.
//!
//! The flat layout ([`Layout::Flat`]: `DIR/manifest.json` beside `DIR/<split>-<k>.parquet`) is
//! what ncsn wrote before; every command still reads it, an interrupted flat run resumes flat
//! and flat partitions merge flat. Only the file names differ: shards are the same bytes.

use std::path::Path;

/// The manifest of a directory in the current layout.
pub const MANIFEST_FILE: &str = "_manifest.json";

/// The manifest of a directory in the flat layout (read, and written only to finish a flat run).
pub const FLAT_MANIFEST_FILE: &str = "manifest.json";

/// What `ncsn calibrate --data DIR` writes into DIR by default.
pub const CALIBRATION_FILE: &str = "_calibration.json";

/// The two ways an ingested directory can be laid out (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `split=<split>/<split>-<k>.parquet` and `_`-prefixed metadata: what ncsn writes.
    Split,
    /// `<split>-<k>.parquet` and `manifest.json` side by side: what earlier versions wrote.
    Flat,
}

impl Layout {
    /// What a new directory gets.
    pub const CURRENT: Layout = Layout::Split;

    /// `_` for the current layout, nothing for the flat one: what the names of ncsn's own
    /// files in the directory (manifests, the ingest journal and input listing) start with.
    pub fn prefix(self) -> &'static str {
        match self {
            Layout::Split => "_",
            Layout::Flat => "",
        }
    }

    /// The manifest of a finished (or merged) directory.
    pub fn manifest_file(self) -> &'static str {
        match self {
            Layout::Split => MANIFEST_FILE,
            Layout::Flat => FLAT_MANIFEST_FILE,
        }
    }

    /// `_manifest.part-i-of-n.json`: the manifest a `--partition i/n` run writes, and what
    /// `ncsn ingest merge` looks for.
    pub fn partition_manifest_name(self, index: u32, count: u32) -> String {
        format!(
            "{}manifest{}.json",
            self.prefix(),
            partition_suffix(index, count)
        )
    }

    /// Shard `index` of `split`, relative to the directory: `split=train/train-00007.parquet`
    /// (flat: `train-00007.parquet`). This is the `file` a manifest lists.
    pub fn shard_file(self, split: &str, index: u64) -> String {
        let name = crate::shard::file_name(split, index);
        match self {
            Layout::Split => format!("{}/{name}", split_dir(split)),
            Layout::Flat => name,
        }
    }

    /// The layout of a finished directory: the one whose manifest is in it.
    pub fn of_dir(dir: &Path) -> Option<Layout> {
        [Layout::Split, Layout::Flat]
            .into_iter()
            .find(|l| dir.join(l.manifest_file()).is_file())
    }
}

/// `_fid_stats_train.npz`: the FID reference statistics of a split, where `ncsn fid-stats`
/// writes them by default and `ncsn train --fid-samples` looks for them (and saves them).
pub fn fid_stats_file(split: &str) -> String {
    format!("_fid_stats_{split}.npz")
}

/// `split=train`: the folder of a split's shards, in Hive's `key=value` form so that readers
/// add the `split` column.
pub fn split_dir(split: &str) -> String {
    format!("split={split}")
}

/// `.part-i-of-n`: what the files of partition `i` of `n` add to their names, so partitions
/// written into one directory never collide.
pub fn partition_suffix(index: u32, count: u32) -> String {
    format!(".part-{index}-of-{count}")
}

/// The layout and `(i, n)` of a name [`Layout::partition_manifest_name`] writes (and only of
/// such a name: digits as it spells them, `i < n`); `None` for any other file.
pub fn parse_partition_manifest_name(name: &str) -> Option<(Layout, u32, u32)> {
    let (layout, rest) = match name.strip_prefix(Layout::Split.prefix()) {
        Some(rest) => (Layout::Split, rest),
        None => (Layout::Flat, name),
    };
    let part = rest.strip_prefix("manifest.part-")?.strip_suffix(".json")?;
    let (i, n) = part.split_once("-of-")?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (i < n && layout.partition_manifest_name(i, n) == name).then_some((layout, i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_both_layouts() {
        let (s, f) = (Layout::Split, Layout::Flat);
        assert_eq!(s.manifest_file(), "_manifest.json");
        assert_eq!(f.manifest_file(), "manifest.json");
        assert_eq!(s.shard_file("train", 7), "split=train/train-00007.parquet");
        assert_eq!(f.shard_file("test", 12), "test-00012.parquet");
        assert_eq!(
            s.partition_manifest_name(2, 8),
            "_manifest.part-2-of-8.json"
        );
        assert_eq!(f.partition_manifest_name(2, 8), "manifest.part-2-of-8.json");
        assert_eq!(Layout::CURRENT, s);
        // Everything but the shards is hidden from Parquet readers in the current layout.
        for name in [
            s.manifest_file().to_string(),
            s.partition_manifest_name(0, 3),
            CALIBRATION_FILE.to_string(),
            crate::output::LOCK_FILE.to_string(),
        ] {
            assert!(name.starts_with('_'), "{name}");
        }
    }

    #[test]
    fn partition_manifest_names_round_trip() {
        for layout in [Layout::Split, Layout::Flat] {
            for (i, n) in [(0, 1), (2, 8), (11, 12), (0, 1000)] {
                let name = layout.partition_manifest_name(i, n);
                assert_eq!(
                    parse_partition_manifest_name(&name),
                    Some((layout, i, n)),
                    "{name}"
                );
            }
        }
        for other in [
            MANIFEST_FILE,
            FLAT_MANIFEST_FILE,
            "_manifest.part-2-of-8.json.tmp",
            "__manifest.part-2-of-8.json",
            "_ingest-journal.part-2-of-8.json",
            "manifest.part-02-of-8.json",
            "_manifest.part-+2-of-8.json",
            "manifest.part-8-of-8.json",
            "manifest.part-a-of-8.json",
            "_manifest.part-2-of-.json",
        ] {
            assert_eq!(parse_partition_manifest_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_directory_says_its_layout_by_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Layout::of_dir(dir.path()), None);
        std::fs::write(dir.path().join(FLAT_MANIFEST_FILE), "{}").unwrap();
        assert_eq!(Layout::of_dir(dir.path()), Some(Layout::Flat));
        std::fs::write(dir.path().join(MANIFEST_FILE), "{}").unwrap();
        assert_eq!(Layout::of_dir(dir.path()), Some(Layout::Split));
    }
}
