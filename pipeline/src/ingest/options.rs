//! How to run an ingest: the options, their defaults and `--partition i/n`.

use std::ops::Range;
use std::path::PathBuf;

use schemas::manifest::Partition;

use crate::{Error, Result};

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

impl Options {
    /// (decode workers, shard writers), the zeros resolved to their defaults.
    pub(super) fn threads(&self) -> (usize, usize) {
        let workers = if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        };
        let writers = if self.writers == 0 {
            default_writers(workers)
        } else {
            self.writers
        };
        (workers, writers)
    }

    /// Source items per shard for images of `pixel_bytes`.
    pub(super) fn rows_per_shard(&self, pixel_bytes: usize) -> Result<u64> {
        let rows = self
            .shard_rows
            .unwrap_or_else(|| default_shard_rows(pixel_bytes));
        if rows == 0 {
            return Err(Error::Usage("--shard-rows must be at least 1".into()));
        }
        Ok(rows)
    }
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
pub(super) fn partition_block(shards: u64, p: Option<Partition>) -> Range<u64> {
    match p {
        None => 0..shards,
        Some(p) => {
            let (i, n) = (p.index as u64, p.count as u64);
            shards * i / n..shards * (i + 1) / n
        }
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
