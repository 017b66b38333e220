//! Memory of the streaming loader is bounded by its shuffle buffer, not the dataset (issue 5).
//! Alone in its test binary: VmRSS is per process, so no other test may allocate meanwhile.

mod train_support;

use schemas::checkpoint::DataCursor;
use shards::Dataset;
use tch::Device;
use trainer::loader::{Loader, LoaderConfig, Shard};

fn cfg(batch: usize, buffer: usize, flip: bool) -> LoaderConfig {
    LoaderConfig {
        seed: 3,
        batch_size: batch,
        shuffle_buffer: buffer,
        prefetch: 2,
        random_flip: flip,
        device: Device::Cpu,
        shard: Shard::ALL,
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Streams a dataset ten times the shuffle buffer and checks the resident memory stays flat:
/// the loader holds the buffer, not the data.
#[test]
fn memory_is_bounded_by_the_shuffle_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    // 64×64×3 = 12 KiB rows; buffer 200 rows ≈ 2.4 MiB; data 2000 rows ≈ 24 MiB.
    let (rows, buffer) = (2000u64, 200usize);
    train_support::write_dataset(tmp.path(), 64, rows, 10, 0);
    let ds = Dataset::open(tmp.path()).unwrap();
    let mut l = Loader::start(
        &ds,
        "train",
        cfg(32, buffer, true),
        DataCursor {
            epoch: 0,
            rows_consumed: 0,
        },
    )
    .unwrap();
    let mut seen = 0u64;
    let mut warm = 0;
    let mut peak = 0;
    while seen < 2 * rows {
        let b = l.next_batch().unwrap();
        seen += b.pixels.size()[0] as u64;
        drop(b);
        if seen >= 2 * buffer as u64 && warm == 0 {
            warm = rss_kib();
        }
        peak = peak.max(rss_kib());
    }
    let data_kib = rows * 64 * 64 * 3 / 1024;
    let growth = peak.saturating_sub(warm);
    eprintln!("RSS warm {warm} KiB, peak {peak} KiB, growth {growth} KiB; dataset {data_kib} KiB streamed twice");
    assert!(
        growth < data_kib / 3,
        "RSS grew {growth} KiB while streaming {data_kib} KiB"
    );
}
