//! `ncsn inspect`: what an ingested directory holds, checksum verification, and a grid of the
//! first images so a person can look at them.

use std::fmt::Write as _;
use std::path::Path;

use schemas::layout::Layout;
use schemas::manifest::Manifest;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::grid::{make_grid, write_png};
use crate::hash::sha256_file;
use crate::read::ShardReader;

/// A human-readable description of the manifest: counts, recipe, geometry, shards, rejected.
pub fn describe(ds: &Dataset) -> String {
    let m: &Manifest = &ds.manifest;
    let mut s = String::new();
    let _ = writeln!(s, "{}", ds.dir.display());
    let _ = writeln!(
        s,
        "  dataset     {} (from {}; ncsn {}, schema v{})",
        m.dataset, m.source, m.tool_version, m.schema_version
    );
    let _ = writeln!(
        s,
        "  images      {}x{}x{} uint8 RGB, recipe {}",
        m.height, m.width, m.channels, m.recipe
    );
    if ds.layout == Layout::Flat {
        let _ = writeln!(
            s,
            "  layout      flat, as earlier ncsn versions wrote it (Parquet tools need the \
             current layout: ingest again)"
        );
    }
    if let Some(seed) = m.split_seed {
        let _ = writeln!(s, "  split seed  {seed}");
    }
    if let Some(p) = m.partition {
        let _ = writeln!(s, "  partition   {}/{}", p.index, p.count);
    }
    if !m.options.is_empty() {
        let opts: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "  options     {}", opts.join(" "));
    }
    for (name, sp) in &m.splits {
        let bytes: u64 = sp.shards.iter().map(|e| e.bytes).sum();
        let _ = writeln!(
            s,
            "  split {name:<6} {} images, {} shards, {:.1} MiB, {} rejected",
            sp.count,
            sp.shards.len(),
            bytes as f64 / (1 << 20) as f64,
            sp.rejected.len()
        );
        for r in sp.rejected.iter().take(10) {
            let _ = writeln!(s, "    rejected {}: {}", r.key, r.reason);
        }
        if sp.rejected.len() > 10 {
            let _ = writeln!(
                s,
                "    ... and {} more in {}",
                sp.rejected.len() - 10,
                ds.layout.manifest_file()
            );
        }
    }
    let _ = write!(s, "  total       {} images", m.total_images());
    s
}

/// Recomputes every shard's sha256 and checks its rows, ids and metadata against the manifest.
/// The error names the first shard that does not match.
pub fn verify(ds: &Dataset, mut progress: impl FnMut(&str)) -> Result<u64> {
    let mut shards = 0;
    for (split, sp) in &ds.manifest.splits {
        let mut next_id = 0;
        let mut total = 0;
        for e in &sp.shards {
            let path = ds.shard_path(e);
            progress(&e.file);
            let (sha, bytes) = sha256_file(&path)?;
            if bytes != e.bytes || sha != e.sha256 {
                return Err(Error::format(
                    &path,
                    format!(
                        "checksum mismatch: sha256 {sha} ({bytes} bytes), manifest says {} ({} bytes)",
                        e.sha256, e.bytes
                    ),
                ));
            }
            let r = ShardReader::open(&path)?;
            if r.info != ds.info(split) {
                return Err(Error::format(
                    &path,
                    format!("metadata {:?} does not match the manifest", r.info),
                ));
            }
            if r.num_rows != e.rows {
                return Err(Error::format(
                    &path,
                    format!("has {} rows, manifest says {}", r.num_rows, e.rows),
                ));
            }
            if e.first_id != next_id {
                return Err(Error::format(
                    &path,
                    format!(
                        "first id {} in the manifest, expected {next_id}",
                        e.first_id
                    ),
                ));
            }
            for b in r.batches(4096, None)? {
                for id in b?.ids {
                    if id != next_id {
                        return Err(Error::format(
                            &path,
                            format!("row id {id} where {next_id} was expected (ids must be dense)"),
                        ));
                    }
                    next_id += 1;
                }
            }
            total += e.rows;
            shards += 1;
        }
        if total != sp.count {
            return Err(Error::format(
                ds.manifest_path(),
                format!(
                    "split {split}: shards hold {total} rows, count says {}",
                    sp.count
                ),
            ));
        }
    }
    Ok(shards)
}

/// Writes a make_grid PNG (8 per row, padding 2) of the first `n` images of `split` (default:
/// `train`, else the first split). Reads only as many rows as it shows.
pub fn write_grid(ds: &Dataset, split: Option<&str>, n: usize, out: &Path) -> Result<usize> {
    let m = &ds.manifest;
    let split = match split {
        Some(s) => s.to_string(),
        None if m.splits.contains_key("train") => "train".into(),
        None => m
            .splits
            .keys()
            .next()
            .cloned()
            .ok_or_else(|| Error::format(&ds.dir, "the manifest lists no splits"))?,
    };
    let mut pixels: Vec<u8> = Vec::new();
    let width = ds.info(&split).pixel_bytes();
    'outer: for e in &ds.split(&split)?.shards {
        for b in ShardReader::open(&ds.shard_path(e))?.batches(n.max(1), None)? {
            pixels.extend_from_slice(&b?.pixels);
            if pixels.len() >= n * width {
                break 'outer;
            }
        }
    }
    pixels.truncate(n * width);
    let images: Vec<&[u8]> = pixels.chunks_exact(width.max(1)).collect();
    if images.is_empty() {
        return Err(Error::format(
            &ds.dir,
            format!("split {split} has no images"),
        ));
    }
    let grid = make_grid(&images, m.height, m.width, 8, 2, 0);
    write_png(out, &grid)?;
    Ok(images.len())
}
