//! The threaded engine of an ingest: one pipeline of three stages over the segments a run
//! writes (see the module docs of `ingest` for the stages and why the bytes never depend on
//! the thread counts).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use progress::ProgressBar;
use rayon::prelude::*;
use schemas::manifest::Rejected;
use schemas::shard::ShardInfo;
use shards::{default_row_group_rows, Row, ShardWriter};

use super::journal::{DoneShard, Journal};
use super::layout::RunFiles;
use crate::sources::{Item, Source, SplitSource};
use crate::{Error, Result};

/// The rayon pool of `workers` decode threads.
pub(super) fn worker_pool(workers: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {workers} worker threads: {e}")))
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
pub(super) struct Segment<'a> {
    pub split: &'a SplitSource,
    pub start_item: u64,
    pub end_item: u64,
    pub first_id: u64,
}

/// One pipeline over every split's segment in turn: while the writers finish one split's last
/// shard, the workers already decode the next split, and only the run's very end drains.
pub(super) struct Run<'a> {
    pub source: &'a Source,
    pub files: &'a RunFiles,
    pub segments: Vec<Segment<'a>>,
    pub rows_per_shard: u64,
    pub writers: usize,
    pub bar: &'a ProgressBar,
}

impl Run<'_> {
    /// Writes every segment's shards, journalling each as it finishes; returns the journal.
    pub(super) fn run(&self, pool: &rayon::ThreadPool, journal: Journal) -> Result<Journal> {
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
                let path = self.files.shard(&split.name, shard);
                if let Some(folder) = path.parent() {
                    std::fs::create_dir_all(folder).map_err(Error::io(folder))?;
                }
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
                let mut entry = writer.finish()?;
                entry.file = self.files.layout.shard_file(&split.name, index);
                let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                journal.done.push(DoneShard {
                    split: split.name.clone(),
                    index,
                    entry,
                    rejected,
                });
                journal.write(&self.files.journal)?;
            }
        }
        // An open shard here means the run stopped early: dropping it deletes its temp file.
        Ok(())
    }
}
