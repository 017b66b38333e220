//! The shard writer of `ncsn ingest` (SPEC §4): a [`Source`] in, Parquet shards and
//! `manifest.json` out.
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
//!   shards atomically and journal each one (see [`journal`]).
//!
//! Ids are assigned before the writers, so a shard's bytes do not depend on how many writers
//! there are.

pub mod journal;
pub mod merge;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use schemas::manifest::{Manifest, Partition, Rejected, SplitManifest, MANIFEST_FILE};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;

use crate::sources::{Item, Source, SplitSource};
use crate::{Error, Result};
use journal::{DoneShard, Journal};
use schemas::atomic::tmp_path;
use shards::{default_row_group_rows, Row, ShardWriter};

/// How to run an ingest; none of these but `shard_rows` and `partition` change the bytes.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    /// Source items per shard; `None` sizes shards at about 256 MiB of pixels.
    pub shard_rows: Option<u64>,
    /// Decode threads; 0 means one per core.
    pub workers: usize,
    /// Shard writer threads; 0 means [`default_writers`] for the worker count.
    pub writers: usize,
    pub resume: bool,
    pub partition: Option<Partition>,
    pub progress: bool,
}

/// Shards of ~256 MiB of pixels, a multiple of 1024 rows when that many fit.
pub fn default_shard_rows(pixel_bytes: usize) -> u64 {
    let r = ((256u64 << 20) / pixel_bytes.max(1) as u64).max(1);
    if r >= 1024 {
        r / 1024 * 1024
    } else {
        r
    }
}

/// Writer threads for `workers` decode threads: one per 6. Per row, a writer (Arrow batch,
/// Parquet encoding, zstd, sha256, page cache) costs about a sixth of a worker's decode and
/// resize for CelebA and LSUN sizes and under a fifteenth for FFHQ (`bench_shard_writer` against
/// `bench_transforms`, BENCHMARKS.md), so one per 6 keeps the writers off the critical path.
pub fn default_writers(workers: usize) -> usize {
    workers.div_ceil(6).max(1)
}

/// Parses `i/n` (0-based `i`, as Slurm array and Kubernetes indexed-Job indices are).
pub fn parse_partition(s: &str) -> Result<Partition> {
    let bad = || Error::Usage(format!("--partition `{s}`: expected i/n with 0 <= i < n"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, count): (u32, u32) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Partition { index, count })
}

/// The shard indices partition `p` owns out of `shards`: a contiguous block, so its rows are
/// contiguous ids and merging is concatenation.
pub fn partition_block(shards: u64, p: Option<Partition>) -> std::ops::Range<u64> {
    match p {
        None => 0..shards,
        Some(p) => {
            let (i, n) = (p.index as u64, p.count as u64);
            shards * i / n..shards * (i + 1) / n
        }
    }
}

pub fn shard_file(split: &str, index: u64) -> String {
    format!("{split}-{index:05}.parquet")
}

fn part_suffix(p: Option<Partition>) -> String {
    p.map(|p| format!(".part-{}-of-{}", p.index, p.count))
        .unwrap_or_default()
}

/// `manifest.json`, or `manifest.part-i-of-n.json` for a partition.
pub fn manifest_file(p: Option<Partition>) -> String {
    match p {
        None => MANIFEST_FILE.to_string(),
        Some(_) => format!("manifest{}.json", part_suffix(p)),
    }
}

pub fn journal_file(p: Option<Partition>) -> String {
    format!("ingest-journal{}.json", part_suffix(p))
}

/// What a run did, for the closing paragraph.
#[derive(Debug, Clone)]
pub struct Summary {
    pub out: PathBuf,
    pub manifest: Manifest,
    /// Source items decoded by this run (not counting shards a resumed run found done).
    pub processed: u64,
    pub resumed_shards: usize,
    pub elapsed: Duration,
    pub workers: usize,
    pub writers: usize,
    pub already_complete: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        if self.already_complete {
            return write!(
                f,
                "{}: already complete, nothing to do.",
                self.out.display()
            );
        }
        let splits: Vec<String> = m
            .splits
            .iter()
            .map(|(name, s)| {
                format!(
                    "{name} {} images in {} shard{}",
                    s.count,
                    s.shards.len(),
                    if s.shards.len() == 1 { "" } else { "s" }
                )
            })
            .collect();
        let rejected: usize = m.splits.values().map(|s| s.rejected.len()).sum();
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{} {}x{} ({}) -> {}: {}; {rejected} rejected{}. Decoded {} images in {secs:.1} s \
             ({:.0} img/s, {} workers, {} writer{}){}.",
            m.dataset,
            m.height,
            m.width,
            m.recipe,
            self.out.display(),
            splits.join(", "),
            if rejected > 0 {
                " (listed with reasons in the manifest)"
            } else {
                ""
            },
            self.processed,
            self.processed as f64 / secs.max(1e-9),
            self.workers,
            self.writers,
            if self.writers == 1 { "" } else { "s" },
            if self.resumed_shards > 0 {
                format!("; {} shards were already done", self.resumed_shards)
            } else {
                String::new()
            },
        )?;
        if let Some(p) = m.partition {
            write!(
                f,
                " This is partition {}/{}: once all {} are done, run `ncsn ingest merge {}`.",
                p.index,
                p.count,
                p.count,
                self.out.display()
            )?;
        }
        Ok(())
    }
}

/// Lets glibc's allocator keep freed buffers of up to 32 MiB for reuse (process-wide, once;
/// [`ingest`] calls it).
///
/// By default glibc maps every allocation over 128 KiB fresh from the kernel and unmaps it on
/// free, and threads other than the main one can never raise that limit themselves. The
/// writer allocates dozens of 1 MiB Parquet pages per row group and the workers a decode
/// buffer per LSUN or FFHQ image, so each was paid again in page faults and page clearing:
/// measured on the shard writer alone, 49 -> 26-29 us per 12 KiB row. Memory stays bounded:
/// what is kept is what a thread already had in use.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes glibc's allocation thresholds; both values are in
            // the documented range (M_MMAP_THRESHOLD at most 32 MiB on 64-bit).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
            }
        });
    }
}

/// Ingests `source` into `opts.out` (see the module docs).
pub fn ingest(source: &Source, opts: &Options) -> Result<Summary> {
    let t0 = Instant::now();
    keep_freed_buffers();
    let workers = if opts.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.workers
    };
    let writers = if opts.writers == 0 {
        default_writers(workers)
    } else {
        opts.writers
    };
    let rows_per_shard = opts
        .shard_rows
        .unwrap_or_else(|| default_shard_rows(source.pixel_bytes()));
    if rows_per_shard == 0 {
        return Err(Error::Usage("--shard-rows must be at least 1".into()));
    }
    let mut header = Manifest::new(
        &source.dataset,
        &source.input,
        &source.recipe,
        source.height,
        source.width,
    );
    header.split_seed = source.split_seed;
    header.partition = opts.partition;
    header.options = source.options.clone();
    header
        .options
        .insert("shard_rows".into(), rows_per_shard.to_string());

    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let manifest_path = out.join(manifest_file(opts.partition));
    let journal_path = out.join(journal_file(opts.partition));
    let blocks: Vec<_> = source
        .splits
        .iter()
        .map(|s| partition_block(s.len.div_ceil(rows_per_shard), opts.partition))
        .collect();

    if manifest_path.exists() {
        let done = Manifest::read(&manifest_path)?;
        if !opts.resume {
            return Err(Error::format(
                &manifest_path,
                "this output directory already holds a finished ingest; use a new --out",
            ));
        }
        journal::check_same_run(&done, &header, &manifest_path)?;
        let _ = std::fs::remove_file(&journal_path);
        return Ok(Summary {
            out: out.clone(),
            manifest: done,
            processed: 0,
            resumed_shards: 0,
            elapsed: t0.elapsed(),
            workers,
            writers,
            already_complete: true,
        });
    }
    let mut journal = if journal_path.exists() {
        if !opts.resume {
            return Err(Error::format(
                &journal_path,
                "an interrupted ingest is in this directory: rerun with --resume to finish it, \
                 or use a new --out",
            ));
        }
        let j = Journal::read(&journal_path)?;
        journal::check_same_run(&j.header, &header, &journal_path)?;
        j
    } else {
        if !opts.resume {
            for (split, block) in source.splits.iter().zip(&blocks) {
                if let Some(s) = block.clone().next() {
                    let p = out.join(shard_file(&split.name, s));
                    if p.exists() {
                        return Err(Error::format(
                            &p,
                            "a shard is already here; use a new --out (or --resume)",
                        ));
                    }
                }
            }
        }
        Journal {
            header: header.clone(),
            done: Vec::new(),
        }
    };
    journal.write(&journal_path)?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {workers} worker threads: {e}")))?;

    // Work left, for the progress bar and the summary.
    let mut todo = Vec::new();
    let mut resumed_shards = 0;
    for (split, block) in source.splits.iter().zip(&blocks) {
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
        resumed_shards += (first - block.start) as usize;
        journal
            .done
            .retain(|d| d.split != split.name || d.index < first);
        let end_item = (block.end * rows_per_shard).min(split.len);
        todo.push((first, end_item));
    }
    let total: u64 = todo
        .iter()
        .map(|&(first, end)| end.saturating_sub(first * rows_per_shard))
        .sum();
    let bar = progress_bar(opts.progress, total, &source.dataset);

    let mut segments = Vec::new();
    for ((split, block), &(first, end_item)) in source.splits.iter().zip(&blocks).zip(&todo) {
        // Stale temporaries of a killed run are never part of the output.
        for s in block.clone() {
            let _ = std::fs::remove_file(tmp_path(&out.join(shard_file(&split.name, s))));
        }
        if first >= block.end {
            continue;
        }
        let first_id = block.start * rows_per_shard
            + journal
                .done
                .iter()
                .filter(|d| d.split == split.name)
                .map(|d| d.entry.rows)
                .sum::<u64>();
        segments.push(Segment {
            split,
            start_item: first * rows_per_shard,
            end_item,
            first_id,
        });
    }
    let run = Run {
        source,
        segments,
        rows_per_shard,
        writers,
        out,
        journal_path: &journal_path,
        bar: &bar,
    };
    journal = run.run(&pool, journal)?;
    bar.finish_and_clear();

    let mut manifest = header;
    for split in &source.splits {
        let mut sm = SplitManifest::default();
        let mut done: Vec<&DoneShard> = journal
            .done
            .iter()
            .filter(|d| d.split == split.name)
            .collect();
        done.sort_by_key(|d| d.index);
        for d in done {
            sm.count += d.entry.rows;
            sm.shards.push(d.entry.clone());
            sm.rejected.extend(d.rejected.iter().cloned());
        }
        manifest.splits.insert(split.name.clone(), sm);
    }
    manifest.write_atomic(&manifest_path)?;
    std::fs::remove_file(&journal_path).map_err(Error::io(&journal_path))?;
    Ok(Summary {
        out: out.clone(),
        manifest,
        processed: total,
        resumed_shards,
        elapsed: t0.elapsed(),
        workers,
        writers,
        already_complete: false,
    })
}

fn progress_bar(show: bool, total: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta} ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("ingest {what}"));
    bar
}

/// Source items per chunk: ~32 MiB of output pixels, fixed for given geometry (never a function
/// of `--workers`, so the writer sees the same sequence of rows whatever the thread count).
fn chunk_items(pixel_bytes: usize) -> usize {
    ((32 << 20) / pixel_bytes.max(1)).clamp(16, 1024)
}

/// One prepared chunk: its segment, first source index, id of its first accepted row, then per
/// item (key, label, pixels or reason).
type Prepared = (
    usize,
    u64,
    u64,
    Vec<(String, Option<i32>, std::result::Result<Vec<u8>, String>)>,
);

/// A chunk as read: its segment, first source index and items.
type Chunk = (usize, u64, Vec<Item>);

/// The part of one split this run writes: source items `[start_item, end_item)`, the first of
/// them starting a shard, whose first accepted row gets id `first_id`.
struct Segment<'a> {
    split: &'a SplitSource,
    start_item: u64,
    end_item: u64,
    first_id: u64,
}

/// One pipeline over every split's segment in turn: while the writers finish one split's last
/// shard, the workers already decode the next split, and only the run's very end drains.
struct Run<'a> {
    source: &'a Source,
    segments: Vec<Segment<'a>>,
    rows_per_shard: u64,
    writers: usize,
    out: &'a Path,
    journal_path: &'a Path,
    bar: &'a ProgressBar,
}

impl Run<'_> {
    fn run(&self, pool: &rayon::ThreadPool, journal: Journal) -> Result<Journal> {
        let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk>>(2);
        let (prep_txs, prep_rxs): (Vec<_>, Vec<_>) = (0..self.writers)
            .map(|_| sync_channel::<Prepared>(2))
            .unzip();
        // Shards are dealt to the writers round robin across the run, split after split.
        let mut first_ordinal = Vec::with_capacity(self.segments.len());
        let mut shards = 0;
        for seg in &self.segments {
            first_ordinal.push(shards);
            shards += (seg.end_item - seg.start_item).div_ceil(self.rows_per_shard);
        }
        let journal = Mutex::new(journal);
        let result = std::thread::scope(|scope| {
            scope.spawn(move || self.read(chunk_tx));
            let journal = &journal;
            let writers: Vec<_> = prep_rxs
                .into_iter()
                .map(|rx| scope.spawn(move || self.write(rx, journal)))
                .collect();
            let mut failed = None;
            let mut next_id: Vec<u64> = self.segments.iter().map(|s| s.first_id).collect();
            for chunk in chunk_rx {
                let (seg, start, items) = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                let source = self.source;
                let prepared: Vec<_> = pool.install(|| {
                    items
                        .into_par_iter()
                        .map(|it| (it.key, it.label, source.prepare(it.payload)))
                        .collect()
                });
                let first_id = next_id[seg];
                next_id[seg] += prepared.iter().filter(|p| p.2.is_ok()).count() as u64;
                let ordinal = first_ordinal[seg]
                    + (start - self.segments[seg].start_item) / self.rows_per_shard;
                let writer = (ordinal % self.writers as u64) as usize;
                if prep_txs[writer]
                    .send((seg, start, first_id, prepared))
                    .is_err()
                {
                    break; // that writer failed; its error is reported below
                }
            }
            drop(prep_txs);
            // Every writer is joined (an open shard of a stopped run deletes its temp file);
            // the first error, the source's or a writer's, is the one reported.
            let mut result = failed.map_or(Ok(()), Err);
            for w in writers {
                let written = w.join().expect("writer thread panicked");
                if result.is_ok() {
                    result = written;
                }
            }
            result
        });
        result?;
        Ok(journal.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reader thread: each segment in source order, chunks cut at shard boundaries.
    fn read(&self, tx: SyncSender<Result<Chunk>>) {
        let per_chunk = chunk_items(self.source.pixel_bytes()) as u64;
        for (seg, segment) in self.segments.iter().enumerate() {
            let split = segment.split;
            let mut items = match (split.open)(segment.start_item) {
                Ok(items) => items,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut at = segment.start_item;
            while at < segment.end_item {
                let shard_end =
                    ((at / self.rows_per_shard + 1) * self.rows_per_shard).min(segment.end_item);
                let n = per_chunk.min(shard_end - at);
                let mut chunk = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    match items.next() {
                        Some(Ok(item)) => chunk.push(item),
                        Some(Err(e)) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                        None => {
                            let _ = tx.send(Err(Error::Usage(format!(
                                "{} split `{}` ended after {} items, {} expected",
                                self.source.dataset,
                                split.name,
                                at + chunk.len() as u64,
                                split.len
                            ))));
                            return;
                        }
                    }
                }
                if tx.send(Ok((seg, at, chunk))).is_err() {
                    return;
                }
                at += n;
            }
        }
    }

    /// Writer thread: the rows of its shards (ids already assigned), one shard per
    /// `rows_per_shard` source items, each journalled as it finishes.
    fn write(&self, rx: Receiver<Prepared>, journal: &Mutex<Journal>) -> Result<()> {
        let mut current: Option<(u64, ShardWriter, Vec<Rejected>)> = None;
        for (seg, start, first_id, prepared) in rx {
            let split = self.segments[seg].split;
            let shard = start / self.rows_per_shard;
            let mut next_id = first_id;
            if current.is_none() {
                let info = ShardInfo {
                    height: self.source.height,
                    width: self.source.width,
                    channels: 3,
                    dataset: self.source.dataset.clone(),
                    split: split.name.clone(),
                    recipe: self.source.recipe.clone(),
                };
                let path = self.out.join(shard_file(&split.name, shard));
                let w = ShardWriter::create(&path, &info, first_id, default_row_group_rows(&info))?;
                current = Some((shard, w, Vec::new()));
            }
            let (index, writer, rejected) = current.as_mut().expect("open shard");
            debug_assert_eq!(*index, shard);
            let n = prepared.len() as u64;
            let mut rows = Vec::with_capacity(prepared.len());
            for (key, label, px) in prepared {
                match px {
                    Ok(pixels) => {
                        rows.push(Row {
                            id: next_id,
                            key,
                            label,
                            pixels,
                        });
                        next_id += 1;
                    }
                    Err(reason) => rejected.push(Rejected { key, reason }),
                }
            }
            writer.write(&rows)?;
            self.bar.inc(n);
            let shard_end = ((shard + 1) * self.rows_per_shard).min(split.len);
            if start + n == shard_end {
                let (index, writer, rejected) = current.take().expect("open shard");
                let entry = writer.finish()?;
                let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                journal.done.push(DoneShard {
                    split: split.name.clone(),
                    index,
                    entry,
                    rejected,
                });
                journal.write(self.journal_path)?;
            }
        }
        // An open shard here means the run stopped early: dropping it deletes its temp file.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_disjoint_and_cover_everything() {
        for shards in [0, 1, 3, 7, 100] {
            for n in 1..6 {
                let mut all = vec![];
                for i in 0..n {
                    all.extend(partition_block(
                        shards,
                        Some(Partition { index: i, count: n }),
                    ));
                }
                assert_eq!(all, (0..shards).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn partition_syntax() {
        assert_eq!(
            parse_partition("2/8").unwrap(),
            Partition { index: 2, count: 8 }
        );
        for bad in ["8/8", "1", "a/2", "0/0"] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_size_default() {
        assert_eq!(default_shard_rows(3072), 87040); // 256 MiB / 3072 B = 87 381, down to a multiple of 1024
        assert_eq!(default_shard_rows(1024 * 1024 * 3), 85);
    }
}
