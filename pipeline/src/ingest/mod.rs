//! The shard writer of `ncsn ingest` (SPEC §4): a [`Source`] in, Parquet shards (one folder
//! per split) and `_manifest.json` out ([`schemas::layout`]).
//!
//! Shard `s` of a split holds the accepted images among source items `[s·R, (s+1)·R)`
//! (`R = --shard-rows`), so every shard is a pure function of the input and the options: that is
//! what makes the output identical for any `--workers`, lets `--resume` restart at the first
//! unfinished shard and lets `--partition i/n` hand out disjoint blocks of shards.
//!
//! Three stages run concurrently with bounded queues between them, so memory stays a few
//! chunks whatever the dataset size:
//! - a reader thread pulls items in source order, split after split, and cuts them into
//!   chunks that never straddle a shard. It is one pipeline for the whole run, so no split
//!   waits for the previous one's last shard to be written;
//! - the calling thread decodes/transforms each chunk on a rayon pool of `--workers` threads
//!   (order preserved) and numbers the accepted rows with dense ids;
//! - `--writers` writer threads, dealt the run's shards round robin, append the rows, finish
//!   shards atomically and journal each one (see `journal.rs`).
//!
//! Ids are assigned before the writers, so a shard's bytes do not depend on how many writers
//! there are.
//!
//! One run at a time writes an output directory (or, with `--partition`, a partition of it):
//! the run holds its lock ([`schemas::output::DirLock`]) from start to end.
//!
//! One file per job: `options.rs` (flags and defaults), `layout.rs` (file names),
//! `resume.rs` (start, refuse or resume), `inputs.rs` (the input a resume must find again),
//! `engine.rs` (the threads), `journal.rs`, `summary.rs`, `merge.rs` (`ncsn ingest merge`)
//! and `malloc.rs`.

mod engine;
mod inputs;
mod journal;
mod layout;
mod malloc;
mod merge;
mod options;
mod resume;
mod summary;

pub use malloc::keep_freed_buffers;
pub use merge::{merge, MergeReport};
pub use options::{default_shard_rows, default_writers, parse_partition, Options};
pub use summary::Summary;

use std::time::Instant;

use schemas::manifest::Manifest;
use schemas::output::DirLock;
use schemas::JsonDocument;

use crate::sources::Source;
use crate::{Error, Result};
use resume::Start;

/// Ingests `source` into `opts.out` (see the module docs).
pub fn ingest(source: &Source, opts: &Options) -> Result<Summary> {
    let t0 = Instant::now();
    keep_freed_buffers();
    let (workers, writers) = opts.threads();
    let rows_per_shard = opts.rows_per_shard(source.pixel_bytes())?;
    let header = header(source, opts.partition, rows_per_shard);

    let out = &opts.out;
    let _lock = lock(source, opts)?;
    let files = layout::RunFiles::new(out, opts.partition);
    let blocks: Vec<_> = source
        .splits
        .iter()
        .map(|s| options::partition_block(s.len.div_ceil(rows_per_shard), opts.partition))
        .collect();
    let summary = |manifest, processed, resumed_shards, already_complete| Summary {
        out: out.clone(),
        manifest,
        processed,
        resumed_shards,
        elapsed: t0.elapsed(),
        workers,
        writers,
        already_complete,
    };

    let start = resume::start(source, &files, &header, &blocks, opts.resume)?;
    let mut journal = match start {
        Start::Complete(manifest) => {
            let _ = std::fs::remove_file(&files.inputs);
            return Ok(summary(manifest, 0, 0, true));
        }
        Start::Run(journal) => journal,
    };
    match &journal.inputs_sha256 {
        Some(sha256) => inputs::check(source, &files.inputs, sha256)?,
        None => journal.inputs_sha256 = Some(inputs::record(source, &files.inputs)?),
    }
    journal.write(&files.journal)?;

    let pool = engine::worker_pool(workers)?;
    let plan = resume::plan(source, &blocks, rows_per_shard, &mut journal);
    let bar = progress::bar(plan.items, opts.progress, "images");
    bar.set_message(format!("ingest {}", source.dataset));
    resume::remove_stale_temporaries(source, &files, &blocks);
    let run = engine::Run {
        source,
        files: &files,
        segments: plan.segments,
        rows_per_shard,
        writers,
        bar: &bar,
    };
    journal = run.run(&pool, journal)?;
    bar.finish_and_clear();

    let manifest = journal.into_manifest(source.splits.iter().map(|s| s.name.as_str()));
    manifest.write_atomic(&files.manifest)?;
    std::fs::remove_file(&files.journal).map_err(Error::io(&files.journal))?;
    std::fs::remove_file(&files.inputs).map_err(Error::io(&files.inputs))?;
    Ok(summary(manifest, plan.items, plan.resumed_shards, false))
}

/// The lock of `opts.out` (created if missing) for this run: all of it, or its partition.
fn lock(source: &Source, opts: &Options) -> Result<DirLock> {
    let holder = format!("ncsn ingest {}", source.dataset);
    Ok(match opts.partition {
        Some(p) => {
            let holder = format!("{holder} --partition {}/{}", p.index, p.count);
            DirLock::part(&opts.out, &layout::lock_part(p), &holder)?
        }
        None => DirLock::exclusive(&opts.out, &holder)?,
    })
}

/// The manifest of this run without its splits: everything a resume or a merge must agree on.
fn header(
    source: &Source,
    partition: Option<schemas::manifest::Partition>,
    rows_per_shard: u64,
) -> Manifest {
    let mut header = Manifest::new(
        &source.dataset,
        &source.input,
        &source.recipe,
        source.height,
        source.width,
    );
    header.split_seed = source.split_seed;
    header.partition = partition;
    header.options = source.options.clone();
    header
        .options
        .insert("shard_rows".into(), rows_per_shard.to_string());
    header
}
