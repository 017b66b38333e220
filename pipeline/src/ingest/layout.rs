//! The names of what an ingest writes into its output directory, in one place: the run, its
//! resume and `merge` all find files by these names. Shard `index` of a split (source items
//! `[index·R, (index+1)·R)`) is [`schemas::shard::file_name`], which test datasets use too.

use schemas::manifest::{partition_manifest_name, partition_suffix, Partition, MANIFEST_FILE};

pub(super) use schemas::shard::file_name as shard_file;

/// `manifest.json`, or `manifest.part-i-of-n.json` for a partition.
pub(super) fn manifest_file(p: Option<Partition>) -> String {
    match p {
        None => MANIFEST_FILE.to_string(),
        Some(p) => partition_manifest_name(p.index, p.count),
    }
}

/// `ingest-journal.json`, or `ingest-journal.part-i-of-n.json` for a partition.
pub(super) fn journal_file(p: Option<Partition>) -> String {
    let suffix = p
        .map(|p| partition_suffix(p.index, p.count))
        .unwrap_or_default();
    format!("ingest-journal{suffix}.json")
}

/// `ingest-inputs.tsv`, or `ingest-inputs.part-i-of-n.tsv` for a partition (see `inputs.rs`).
pub(super) fn inputs_file(p: Option<Partition>) -> String {
    let suffix = p
        .map(|p| partition_suffix(p.index, p.count))
        .unwrap_or_default();
    format!("ingest-inputs{suffix}.tsv")
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
        assert_eq!(manifest_file(None), "manifest.json");
        assert_eq!(manifest_file(p), "manifest.part-2-of-8.json");
        assert_eq!(journal_file(None), "ingest-journal.json");
        assert_eq!(journal_file(p), "ingest-journal.part-2-of-8.json");
        assert_eq!(inputs_file(None), "ingest-inputs.tsv");
        assert_eq!(inputs_file(p), "ingest-inputs.part-2-of-8.tsv");
        assert_eq!(lock_part(Partition { index: 2, count: 8 }), "part-2-of-8");
    }
}
