//! `ncsn ingest merge DIR`: unifies the manifests that `--partition i/n` runs wrote into one
//! directory (a shared filesystem, or the partitions' files copied together: their file names
//! are disjoint) into the `_manifest.json` a single-machine run would have written.
//! Partitions written by an earlier ncsn in the flat layout merge into its `manifest.json`;
//! a directory holding partitions of both layouts is refused.
//!
//! Partition `i` owns a contiguous block of each split's shards and numbers its rows as if no
//! earlier partition had rejected anything. When one did, the later shards' ids are off by the
//! number rejected before them; merge rewrites those shards with the right ids (a Parquet copy,
//! no image decoding), so the result is byte-identical to an unpartitioned run.

use std::path::Path;

use schemas::layout::{parse_partition_manifest_name, Layout};
use schemas::manifest::{Manifest, Partition, SplitManifest};
use schemas::JsonDocument;

use super::journal;
use super::layout::{journal_file, manifest_file};
use crate::{Error, Result};
use shards::{default_row_group_rows, Row, ShardReader, ShardWriter};

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub manifest: Manifest,
    /// Where it was written: `_manifest.json` (flat partitions: `manifest.json`).
    pub manifest_path: std::path::PathBuf,
    pub partitions: u32,
    /// Shards rewritten to renumber ids after a partition that rejected inputs.
    pub renumbered: usize,
}

pub fn merge(dir: &Path) -> Result<MergeReport> {
    std::fs::metadata(dir).map_err(Error::io(dir))?;
    // No partition run may be writing here meanwhile (they hold the lock shared).
    let _lock = schemas::output::DirLock::exclusive(dir, "ncsn ingest merge")?;
    let mut parts: Vec<(u32, u32, std::path::PathBuf)> = Vec::new();
    let mut layouts: Vec<(Layout, String)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((layout, i, n)) = parse_partition_manifest_name(&name) {
            parts.push((i, n, entry.path()));
            layouts.push((layout, name));
        }
    }
    if parts.is_empty() {
        let what = match Layout::of_dir(dir) {
            Some(l) => format!(
                "already merged ({} is here and no partition manifests are left)",
                l.manifest_file()
            ),
            None => "no partition manifests (_manifest.part-i-of-n.json) here: nothing to merge"
                .to_string(),
        };
        return Err(Error::format(dir, what));
    }
    layouts.sort_by_key(|(l, _)| *l == Layout::Flat);
    let layout = layouts[0].0;
    if let Some((_, flat)) = layouts.iter().find(|(l, _)| *l != layout) {
        return Err(Error::format(
            dir.join(flat),
            format!(
                "is a partition in the flat layout of an earlier ncsn, {} is in the current \
                 one: ingest every partition with one version",
                layouts[0].1
            ),
        ));
    }
    parts.sort();
    let count = parts[0].1;
    if let Some(p) = parts.iter().find(|p| p.1 != count) {
        return Err(Error::format(
            &p.2,
            format!("is a partition of {} runs, others are of {count}", p.1),
        ));
    }
    for i in 0..count {
        if !parts.iter().any(|p| p.0 == i) {
            let part = Some(Partition { index: i, count });
            let why = if dir.join(journal_file(layout, part)).exists() {
                "is still running or was interrupted (its journal is here; finish it with --resume)"
            } else {
                "has not written its manifest here"
            };
            return Err(Error::format(
                dir.join(manifest_file(layout, part)),
                format!("partition {i}/{count} {why}"),
            ));
        }
    }
    let manifests: Vec<Manifest> = parts
        .iter()
        .map(|p| Manifest::read(&p.2).map_err(Error::from))
        .collect::<Result<_>>()?;

    let mut merged = manifests[0].clone();
    merged.partition = None;
    merged.splits.clear();
    for (m, p) in manifests.iter().zip(&parts) {
        let mut h = m.clone();
        h.partition = None;
        journal::check_same_run(&h, &merged, &p.2)?;
    }
    let mut renumbered = 0;
    let split_names: std::collections::BTreeSet<&String> =
        manifests.iter().flat_map(|m| m.splits.keys()).collect();
    for name in split_names {
        let mut sm = SplitManifest::default();
        for m in &manifests {
            let Some(part) = m.splits.get(name) else {
                continue;
            };
            for e in &part.shards {
                let mut e = e.clone();
                let path = dir.join(&e.file);
                let len = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
                if len != e.bytes {
                    return Err(Error::format(
                        &path,
                        format!("is {len} bytes, its manifest says {}", e.bytes),
                    ));
                }
                if e.first_id != sm.count {
                    let file = e.file;
                    e = renumber(&path, sm.count)?;
                    e.file = file;
                    renumbered += 1;
                }
                sm.count += e.rows;
                sm.shards.push(e);
            }
            sm.rejected.extend(part.rejected.iter().cloned());
        }
        merged.splits.insert(name.clone(), sm);
    }
    let manifest_path = dir.join(layout.manifest_file());
    merged.write_atomic(&manifest_path)?;
    for p in &parts {
        std::fs::remove_file(&p.2).map_err(Error::io(&p.2))?;
    }
    Ok(MergeReport {
        manifest: merged,
        manifest_path,
        partitions: count,
        renumbered,
    })
}

/// Rewrites a shard with ids from `first_id` on (same rows otherwise, same row groups).
fn renumber(path: &Path, first_id: u64) -> Result<schemas::manifest::ShardEntry> {
    let reader = ShardReader::open(path)?;
    let info = reader.info.clone();
    let rows = reader.read_all()?;
    let mut w = ShardWriter::create(path, &info, first_id, default_row_group_rows(&info))?;
    let out: Vec<Row> = (0..rows.len())
        .map(|i| Row {
            id: first_id + i as u64,
            key: rows.keys[i].clone(),
            label: rows.labels[i],
            pixels: rows.image(i).to_vec(),
        })
        .collect();
    w.write(&out)?;
    w.finish()
}
