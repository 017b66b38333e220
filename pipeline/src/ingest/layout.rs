//! The names of what an ingest writes into its output directory, in one place: the run, its
//! resume and `merge` all find files by these. The directory's own names (manifest, shards in
//! their split folders) are [`schemas::layout`]'s; the run's bookkeeping files are named here,
//! with the same `_` prefix in the current layout, so that Parquet readers skip them too.

use std::path::{Path, PathBuf};

use schemas::layout::partition_suffix;
use schemas::manifest::Partition;

pub(super) use schemas::layout::Layout;

/// Where the files of one run are: its output directory and layout, and in it the run's
/// manifest, journal and input listing.
pub(super) struct RunFiles {
    pub out: PathBuf,
    pub layout: Layout,
    pub manifest: PathBuf,
    pub journal: PathBuf,
    pub inputs: PathBuf,
}

impl RunFiles {
    /// The files of a run (of partition `p`) into `out`, in the layout [`of_run`] picks.
    pub fn new(out: &Path, p: Option<Partition>) -> Self {
        let layout = of_run(out, p);
        Self {
            out: out.to_path_buf(),
            layout,
            manifest: out.join(manifest_file(layout, p)),
            journal: out.join(journal_file(layout, p)),
            inputs: out.join(inputs_file(layout, p)),
        }
    }

    /// Shard `index` of `split`.
    pub fn shard(&self, split: &str, index: u64) -> PathBuf {
        self.out.join(self.layout.shard_file(split, index))
    }
}

/// The layout a run into `out` writes: the flat one only to finish, or to refuse to overwrite,
/// what an earlier ncsn left there in it (its manifest or journal); else the current one.
pub(super) fn of_run(out: &Path, p: Option<Partition>) -> Layout {
    let flat = Layout::Flat;
    let started_flat = [manifest_file(flat, p), journal_file(flat, p)]
        .iter()
        .any(|name| out.join(name).exists());
    if started_flat {
        flat
    } else {
        Layout::CURRENT
    }
}

/// `_manifest.json`, or `_manifest.part-i-of-n.json` for a partition.
pub(super) fn manifest_file(layout: Layout, p: Option<Partition>) -> String {
    match p {
        None => layout.manifest_file().to_string(),
        Some(p) => layout.partition_manifest_name(p.index, p.count),
    }
}

/// `_ingest-journal.json`, or `_ingest-journal.part-i-of-n.json` for a partition.
pub(super) fn journal_file(layout: Layout, p: Option<Partition>) -> String {
    format!("{}ingest-journal{}.json", layout.prefix(), suffix(p))
}

/// `_ingest-inputs.tsv`, or `_ingest-inputs.part-i-of-n.tsv` for a partition (see `inputs.rs`).
pub(super) fn inputs_file(layout: Layout, p: Option<Partition>) -> String {
    format!("{}ingest-inputs{}.tsv", layout.prefix(), suffix(p))
}

fn suffix(p: Option<Partition>) -> String {
    p.map(|p| partition_suffix(p.index, p.count))
        .unwrap_or_default()
}

/// The part of the output directory a partition locks: `part-i-of-n`.
pub(super) fn lock_part(p: Partition) -> String {
    partition_suffix(p.index, p.count)
        .trim_start_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = Some(Partition { index: 2, count: 8 });
        let (s, f) = (Layout::Split, Layout::Flat);
        assert_eq!(manifest_file(s, None), "_manifest.json");
        assert_eq!(manifest_file(s, p), "_manifest.part-2-of-8.json");
        assert_eq!(journal_file(s, None), "_ingest-journal.json");
        assert_eq!(journal_file(s, p), "_ingest-journal.part-2-of-8.json");
        assert_eq!(inputs_file(s, None), "_ingest-inputs.tsv");
        assert_eq!(inputs_file(s, p), "_ingest-inputs.part-2-of-8.tsv");
        assert_eq!(manifest_file(f, p), "manifest.part-2-of-8.json");
        assert_eq!(journal_file(f, None), "ingest-journal.json");
        assert_eq!(inputs_file(f, p), "ingest-inputs.part-2-of-8.tsv");
        assert_eq!(lock_part(Partition { index: 2, count: 8 }), "part-2-of-8");
    }

    #[test]
    fn a_run_is_flat_only_where_a_flat_run_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = Some(Partition { index: 1, count: 2 });
        assert_eq!(of_run(dir.path(), None), Layout::Split);
        std::fs::write(dir.path().join("ingest-journal.part-1-of-2.json"), "{}").unwrap();
        assert_eq!(of_run(dir.path(), p), Layout::Flat);
        assert_eq!(of_run(dir.path(), None), Layout::Split);
        std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
        assert_eq!(of_run(dir.path(), None), Layout::Flat);
    }
}
