//! Training-step throughput of `trainer::train` (used by scripts/bench_train.sh).
//!
//! Writes a temporary dataset of random images at the config's resolution, runs the real
//! training loop (loader, DSM loss, Adam, EMA) for `warmup + steps` steps and reports the steps
//! per second of the last `steps` (from metrics.jsonl timestamps) and the data-wait share, as
//! one JSON line.
//!
//! cargo run --example bench_train -- CONFIG.yml BATCH STEPS WARMUP THREADS [DEVICE]

use std::sync::atomic::AtomicBool;

use schemas::config::Config;
use trainer::train::{train, TrainOptions};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: bench_train CONFIG.yml BATCH STEPS WARMUP THREADS [cpu|cuda]");
        std::process::exit(2);
    }
    let mut cfg = Config::read(std::path::Path::new(&a[1])).expect("config");
    let batch: usize = a[2].parse().expect("batch");
    let steps: u64 = a[3].parse().expect("steps");
    let warmup: u64 = a[4].parse().expect("warmup");
    let threads: i32 = a[5].parse().expect("threads");
    let device = match a.get(6).map(String::as_str) {
        Some("cuda") => tch::Device::Cuda(0),
        _ => tch::Device::Cpu,
    };
    tch::set_num_threads(threads);
    cfg.training.batch_size = batch;
    cfg.training.n_iters = warmup + steps;
    cfg.training.snapshot_freq = u64::MAX / 2;
    cfg.training.snapshot_sampling = false;

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let size = cfg.data.image_size;
    let rows = (batch * 8).max(64);
    testkit::datasets::random_dataset(&data, size, size, rows, rows, 0x1234_5678);

    let mut opts = TrainOptions::new(&data, &tmp.path().join("run"));
    opts.device = device;
    opts.loss_plot = false;
    opts.snapshot_samples = 0;
    opts.shuffle_buffer = 256;
    let stop = AtomicBool::new(false);
    let s = train(&cfg, &opts, &stop).expect("training");
    let records = trainer::metrics::read(&opts.workdir.join("metrics.jsonl")).expect("metrics");
    let t = |step: u64| {
        records
            .iter()
            .find(|r| r.step == step && r.loss.is_some())
            .map(|r| r.time)
    };
    let (t0, t1) = (
        t(warmup).expect("warmup step"),
        t(warmup + steps).expect("last step"),
    );
    println!(
        "{}",
        serde_json::json!({
            "impl": "ncsn", "config": a[1], "size": size, "batch": batch, "ngf": cfg.model.ngf,
            "threads": threads, "device": format!("{device:?}"), "steps": steps,
            "steps_per_s": steps as f64 / (t1 - t0), "data_wait_fraction": s.data_wait_fraction,
        })
    );
}
