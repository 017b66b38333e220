//! End-to-end ingest throughput (readers + decode/transform + Parquet writer + journal), 1 vs 2
//! workers, on generated CIFAR-10 (binary) and CelebA-like (178×218 JPEG q95) inputs. Run by
//! `scripts/bench_ingest_e2e.sh`; prints one line per run and checks the shards are identical
//! across worker counts.
//!
//! usage: bench_ingest_e2e DIR [CIFAR_PER_BATCH] [N_CELEBA]

use std::path::Path;
use std::time::Instant;

use pipeline::ingest::{self, Options};
use pipeline::sources::fixtures::{write_celeba, write_cifar, CifarVersion};
use pipeline::sources::{celeba, cifar10, Source};

fn run(name: &str, open: &dyn Fn() -> Source, dir: &Path) {
    let mut shas = vec![];
    for workers in [1, 2] {
        let out = dir.join(format!("out-{name}-{workers}"));
        let _ = std::fs::remove_dir_all(&out);
        let src = open();
        let t0 = Instant::now();
        let s = ingest::ingest(
            &src,
            &Options {
                out: out.clone(),
                shard_rows: None,
                workers,
                resume: false,
                partition: None,
                progress: false,
            },
        )
        .expect("ingest");
        let secs = t0.elapsed().as_secs_f64();
        let n = s.manifest.total_images();
        println!(
            "{name:8} workers={workers}  {n:6} images  {secs:7.2} s  {:8.0} img/s",
            n as f64 / secs
        );
        shas.push(
            s.manifest
                .splits
                .values()
                .flat_map(|sp| sp.shards.iter().map(|e| e.sha256.clone()))
                .collect::<Vec<_>>(),
        );
        std::fs::remove_dir_all(&out).expect("cleanup");
    }
    assert_eq!(
        shas[0], shas[1],
        "{name}: shards differ between 1 and 2 workers"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .expect("usage: bench_ingest_e2e DIR [PER_BATCH] [N_CELEBA]"),
    );
    let per_batch: usize = args.get(2).map_or(10_000, |s| s.parse().expect("number"));
    let n_celeba: usize = args.get(3).map_or(3_000, |s| s.parse().expect("number"));
    let cifar_dir = dir.join(format!("cifar-{per_batch}"));
    if !cifar_dir.exists() {
        write_cifar(&cifar_dir, CifarVersion::Binary, per_batch).expect("cifar fixture");
    }
    let celeba_dir = dir.join(format!("celeba-{n_celeba}"));
    if !celeba_dir.join("list_eval_partition.txt").exists() {
        write_celeba(&celeba_dir, n_celeba).expect("celeba fixture");
    }
    run(
        "cifar10",
        &|| cifar10::open(&cifar_dir.join("cifar-10-batches-bin")).expect("open"),
        dir,
    );
    run(
        "celeba",
        &|| celeba::open(&celeba_dir, None).expect("open"),
        dir,
    );
}
