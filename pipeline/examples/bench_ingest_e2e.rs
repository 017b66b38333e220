//! End-to-end ingest throughput (readers + decode/transform + Parquet writer + journal), 1 vs 2
//! workers, on generated CIFAR-10 (binary) batches and a CelebA-layout directory (the script
//! fills it with photo-like 178×218 JPEGs q95 from scripts/bench/gen_inputs.py). Run by
//! `scripts/bench_ingest_e2e.sh`; 1 worker, 2 workers, 2 workers with 2 shard writers, and 1
//! worker with the process pinned to one core alternate for `ROUNDS` rounds and each
//! configuration's best time is reported (the VM's speed drifts between minutes); the shards
//! must be identical across worker counts.
//!
//! usage: bench_ingest_e2e DIR CIFAR_PER_BATCH CELEBA_DIR [ROUNDS]

use std::path::Path;
use std::time::Instant;

mod common;
use common::cpu_seconds;

use pipeline::ingest::{self, Options};
use pipeline::sources::{celeba, cifar10, Source};
use testkit::fixtures::{write_cifar, CifarVersion};

/// Restricts the calling thread, and the threads it starts from now on, to the first `cores`
/// CPUs (all of them for `None`). Linux only; elsewhere a no-op.
fn pin(cores: Option<usize>) {
    #[cfg(target_os = "linux")]
    // SAFETY: a cpu_set_t is plain data, zeroed then filled with the libc macros, and applies
    // to this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let max = libc::CPU_SETSIZE as usize;
        for c in 0..cores.unwrap_or(max).min(max) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cores;
}

fn run(name: &str, open: &dyn Fn() -> Source, dir: &Path, rounds: usize) {
    // (workers, writers, cores): the scaling pair; two writers for the writer-bound case; and
    // 1 worker with the whole process pinned to one core. Unpinned, the 1-worker run gets the
    // writer and reader threads' CPU from the idle second core for free; pinned, it shows what
    // one core does, the fair base for "2 cores / 1 core".
    let configs = [(1, 1, None), (2, 1, None), (2, 2, None), (1, 1, Some(1))];
    let mut best = [f64::INFINITY; 4];
    let mut shas: Vec<Vec<String>> = vec![];
    let mut n = 0;
    for round in 1..=rounds {
        for (w, &(workers, writers, cores)) in configs.iter().enumerate() {
            let out = dir.join(format!("out-{name}-{workers}-{writers}"));
            pin(cores);
            let _ = std::fs::remove_dir_all(&out);
            let src = open();
            let (t0, cpu0) = (Instant::now(), cpu_seconds());
            let s = ingest::ingest(
                &src,
                &Options {
                    out: out.clone(),
                    shard_rows: None,
                    workers,
                    writers,
                    resume: false,
                    partition: None,
                    progress: false,
                },
            )
            .expect("ingest");
            let secs = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            n = s.manifest.total_images();
            println!(
                "round {round}: {name:8} workers={workers} writers={writers} {:8} {n:6} images  {secs:7.2} s  {:8.0} img/s  \
                 CPU {:5.1} us/img ({:3.0} % of the wall time)",
                cores.map_or(String::new(), |c| format!("{c} core")),
                n as f64 / secs,
                cpu * 1e6 / n as f64,
                cpu / secs * 100.0
            );
            best[w] = best[w].min(secs);
            let sha: Vec<String> = s
                .manifest
                .splits
                .values()
                .flat_map(|sp| sp.shards.iter().map(|e| e.sha256.clone()))
                .collect();
            if let Some(first) = shas.first() {
                assert_eq!(
                    first, &sha,
                    "{name}: shards differ between runs/worker counts"
                );
            }
            shas.push(sha);
            std::fs::remove_dir_all(&out).expect("cleanup");
        }
    }
    println!(
        "best: {name:8} {n} images: 1 worker {:.0} img/s, 2 workers {:.0} img/s, 2/1 = {:.2}x; \
         2 workers + 2 writers {:.0} img/s; all on 1 core {:.0} img/s, 2 workers / 1 core = {:.2}x",
        n as f64 / best[0],
        n as f64 / best[1],
        best[0] / best[1],
        n as f64 / best[2],
        n as f64 / best[3],
        best[3] / best[1]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_ingest_e2e DIR CIFAR_PER_BATCH CELEBA_DIR [ROUNDS]";
    let dir = Path::new(args.get(1).expect(usage));
    let per_batch: usize = args.get(2).expect(usage).parse().expect("number");
    let celeba_dir = Path::new(args.get(3).expect(usage));
    let rounds: usize = args.get(4).map_or(3, |s| s.parse().expect("number"));
    let cifar_dir = dir.join(format!("cifar-{per_batch}"));
    if !cifar_dir.exists() {
        write_cifar(&cifar_dir, CifarVersion::Binary, per_batch).expect("cifar fixture");
    }
    run(
        "cifar10",
        &|| cifar10::open(&cifar_dir.join("cifar-10-batches-bin")).expect("open"),
        dir,
        rounds,
    );
    run(
        "celeba",
        &|| celeba::open(celeba_dir, None).expect("open"),
        dir,
        rounds,
    );
}
