//! The shard writer alone (Arrow batch, Parquet encoding, zstd, sha256, page cache, fsync): CPU
//! and wall time per row for `ROWS` rows of `SIDE`×`SIDE` RGB pixels, three times, into a
//! temporary directory. The pixels are photo-like gradients plus noise (zstd finds little to
//! squeeze, as in real images). This is the number behind `--writers` and the many-core
//! extrapolation in BENCHMARKS.md.
//!
//! usage: cargo run --release -p pipeline --example bench_shard_writer -- [ROWS] [SIDE]
//! [--glibc-defaults]   (default 20000 64; the flag skips the allocator tuning `ingest` does)

use std::time::Instant;

mod common;
use common::cpu_seconds;

use schemas::shard::ShardInfo;
use shards::{default_row_group_rows, Row, ShardWriter};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = args.iter().any(|a| a == "--glibc-defaults");
    if !defaults {
        pipeline::ingest::keep_freed_buffers();
    }
    let mut args = args.into_iter().filter(|a| !a.starts_with("--"));
    let n: usize = args.next().map_or(20_000, |s| s.parse().expect("ROWS"));
    let side: u32 = args.next().map_or(64, |s| s.parse().expect("SIDE"));
    let info = ShardInfo {
        height: side,
        width: side,
        channels: 3,
        dataset: "bench".into(),
        split: "train".into(),
        recipe: "none".into(),
    };
    let bytes = info.pixel_bytes();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let rows: Vec<Row> = (0..n)
        .map(|i| Row {
            id: i as u64,
            key: format!("{i:06}.jpg"),
            label: None,
            pixels: (0..bytes)
                .map(|j| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((j / 3 % side as usize + i % 97) as u64 + (state >> 61)) as u8
                })
                .collect(),
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("ncsn-bench-shard-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for round in 1..=3 {
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        let path = dir.join("train-00000.parquet");
        let mut w =
            ShardWriter::create(&path, &info, 0, default_row_group_rows(&info)).expect("create");
        for chunk in rows.chunks(1024) {
            w.write(chunk).expect("write");
        }
        let entry = w.finish().expect("finish");
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        println!(
            "{} round {round}: {n} rows of {bytes} B -> {} B: {:.1} us/row CPU, {:.1} us/row wall, \
             {:.0} MB/s of pixels per CPU second",
            if defaults { "glibc defaults" } else { "as in ingest" },
            entry.bytes,
            cpu * 1e6 / n as f64,
            wall * 1e6 / n as f64,
            (n * bytes) as f64 / cpu.max(1e-9) / 1e6
        );
        std::fs::remove_file(&path).expect("cleanup");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
