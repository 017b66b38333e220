//! How a run starts from what its output directory holds, and the work left to a resumed one.
//!
//! A finished run leaves its manifest, an interrupted one its journal (see `journal.rs`); a
//! run refuses to write over either unless `--resume`, and a resume refuses other options.
//! Shard `s` of a split is a pure function of the input and the options, so resuming is
//! starting at the first shard the journal does not list.

use std::ops::Range;

use schemas::atomic::tmp_path;
use schemas::manifest::Manifest;
use schemas::JsonDocument;

use super::engine::Segment;
use super::journal::{self, Journal};
use super::layout::RunFiles;
use crate::sources::Source;
use crate::{Error, Result};

/// What the output directory says to do.
pub(super) enum Start {
    /// Its manifest is there, written by a run with the same options: nothing to do.
    Complete(Manifest),
    /// Write the shards the journal does not list (all of them for a fresh run).
    Run(Journal),
}

/// The state of the output directory for a run of `header` writing shard blocks `blocks` of
/// the source's splits (in order) into `files`.
pub(super) fn start(
    source: &Source,
    files: &RunFiles,
    header: &Manifest,
    blocks: &[Range<u64>],
    resume: bool,
) -> Result<Start> {
    let (manifest_path, journal_path) = (&files.manifest, &files.journal);
    if manifest_path.exists() {
        let done = Manifest::read(manifest_path)?;
        if !resume {
            return Err(Error::format(
                manifest_path,
                "this output directory already holds a finished ingest; use a new --out",
            ));
        }
        journal::check_same_run(&done, header, manifest_path)?;
        let _ = std::fs::remove_file(journal_path);
        return Ok(Start::Complete(done));
    }
    if journal_path.exists() {
        if !resume {
            return Err(Error::format(
                journal_path,
                "an interrupted ingest is in this directory: rerun with --resume to finish it, \
                 or use a new --out",
            ));
        }
        let j = Journal::read(journal_path)?;
        journal::check_same_run(&j.header, header, journal_path)?;
        return Ok(Start::Run(j));
    }
    if !resume {
        for (split, block) in source.splits.iter().zip(blocks) {
            if let Some(s) = block.clone().next() {
                let p = files.shard(&split.name, s);
                if p.exists() {
                    return Err(Error::format(
                        &p,
                        "a shard is already here; use a new --out (or --resume)",
                    ));
                }
            }
        }
    }
    Ok(Start::Run(Journal {
        header: header.clone(),
        done: Vec::new(),
        inputs_sha256: None,
    }))
}

/// The work left to a run.
pub(super) struct Plan<'a> {
    /// Per split with shards left, the stretch of source items to write.
    pub segments: Vec<Segment<'a>>,
    /// Source items in the segments (for the progress bar and the summary).
    pub items: u64,
    /// Shards the journal lists as done, which this run keeps.
    pub resumed_shards: usize,
}

/// Plans the rest of the run whose journal is `journal`, dropping from it the shards that will
/// be written again.
pub(super) fn plan<'a>(
    source: &'a Source,
    blocks: &[Range<u64>],
    rows_per_shard: u64,
    journal: &mut Journal,
) -> Plan<'a> {
    let mut plan = Plan {
        segments: Vec::new(),
        items: 0,
        resumed_shards: 0,
    };
    for (split, block) in source.splits.iter().zip(blocks) {
        // Resume at the first shard not done. With several writers, shards after it may have
        // finished too; they are dropped from the journal and written again (same bytes), which
        // keeps the rows of the rerun one contiguous stretch of the source.
        let mut first = block.start;
        while first < block.end
            && journal
                .done
                .iter()
                .any(|d| d.split == split.name && d.index == first)
        {
            first += 1;
        }
        plan.resumed_shards += (first - block.start) as usize;
        journal
            .done
            .retain(|d| d.split != split.name || d.index < first);
        if first >= block.end {
            continue;
        }
        let end_item = (block.end * rows_per_shard).min(split.len);
        let first_id = block.start * rows_per_shard
            + journal
                .done
                .iter()
                .filter(|d| d.split == split.name)
                .map(|d| d.entry.rows)
                .sum::<u64>();
        let segment = Segment {
            split,
            start_item: first * rows_per_shard,
            end_item,
            first_id,
        };
        plan.items += segment.end_item - segment.start_item;
        plan.segments.push(segment);
    }
    plan
}

/// Deletes the temporaries a killed run left of the shards in `blocks`: never part of the
/// output.
pub(super) fn remove_stale_temporaries(source: &Source, files: &RunFiles, blocks: &[Range<u64>]) {
    for (split, block) in source.splits.iter().zip(blocks) {
        for s in block.clone() {
            let _ = std::fs::remove_file(tmp_path(&files.shard(&split.name, s)));
        }
    }
}
