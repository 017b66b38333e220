//! Training-step throughput of `trainer::train` (used by scripts/bench_train.sh).
//!
//! Writes a temporary dataset of random images at the config's resolution, runs the real
//! training loop (loader, DSM loss, Adam, EMA) for `warmup + steps` steps and reports the steps
//! per second of the last `steps` and the data-wait share, as one JSON line.
//!
//! The host reads the device every `--sync-every` steps (default: WARMUP, so the reads fall on
//! the timed window's ends), and a step's metrics time is taken when the host issues it, so the
//! window is timed from the step after the last warm-up step to the step after the last timed
//! one: each of those is issued right after a read that waited for every kernel before it.
//!
//! cargo run --example bench_train -- CONFIG.yml BATCH STEPS WARMUP THREADS [cpu|cuda]
//!     [--precision fp32|bf16] [--channels-last] [--tf32 true|false] [--sync-every N]
//!     [--keep-denormals] [--default-malloc]

use std::sync::atomic::AtomicBool;

use schemas::config::Config;
use trainer::speed::{Precision, Speed};
use trainer::train::{train, TrainOptions};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!(
            "usage: bench_train CONFIG.yml BATCH STEPS WARMUP THREADS [cpu|cuda] \
             [--precision fp32|bf16] [--channels-last] [--tf32 true|false] [--sync-every N] [--keep-denormals] [--default-malloc]"
        );
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
    let mut speed = Speed {
        sync_every: Some(warmup.max(1)),
        ..Speed::default()
    };
    let mut keep_denormals = false;
    let mut default_malloc = false;
    let mut flags = a.iter().skip(7);
    while let Some(flag) = flags.next() {
        let mut value = || flags.next().expect("a value after the flag").clone();
        match flag.as_str() {
            "--precision" => speed.precision = value().parse::<Precision>().expect("--precision"),
            "--channels-last" => speed.channels_last = true,
            "--tf32" => speed.tf32 = value().parse().expect("--tf32 true|false"),
            "--sync-every" => speed.sync_every = Some(value().parse().expect("--sync-every N")),
            "--keep-denormals" => keep_denormals = true,
            "--default-malloc" => default_malloc = true,
            other => panic!("unknown flag {other}"),
        }
    }
    let sync = speed.sync_interval(device);
    assert!(
        warmup.is_multiple_of(sync) && steps.is_multiple_of(sync),
        "WARMUP and STEPS must be multiples of --sync-every ({sync}) for the timing"
    );
    // As `ncsn train` runs: denormals flushed (unless --keep-denormals), set before libtorch's
    // thread pool exists so that its threads inherit it.
    torchrt::accel::set_flush_denormal(!keep_denormals);
    // And freed activations kept in the heap (unless --default-malloc), as `ncsn train` does.
    if !default_malloc {
        torchrt::accel::keep_freed_memory();
    }
    tch::set_num_threads(threads);
    cfg.training.batch_size = batch;
    cfg.training.n_iters = warmup + steps + 1;
    cfg.training.snapshot_freq = u64::MAX / 2;
    cfg.training.snapshot_sampling = false;

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let size = cfg.data.image_size;
    let rows = (batch * 8).max(64);
    testkit::datasets::random_dataset(&data, size, size, rows, rows, 0x1234_5678);

    let mut opts = TrainOptions::new(&data, &tmp.path().join("run"));
    opts.device = device;
    opts.speed = speed;
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
        t(warmup + 1).expect("first step after warm-up"),
        t(warmup + steps + 1).expect("step after the last timed one"),
    );
    // The median step over the timed window's sync intervals (each `sync` steps long), the
    // statistic authors_train.py reports, which one slow interval does not move.
    let mut per_step: Vec<f64> = (0..steps / sync)
        .map(|i| {
            let from = warmup + 1 + i * sync;
            let (a, b) = (
                t(from).expect("timed step"),
                t(from + sync).expect("timed step"),
            );
            (b - a) / sync as f64
        })
        .collect();
    per_step.sort_by(f64::total_cmp);
    let median_step_s = per_step[per_step.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "impl": "ncsn", "config": a[1], "size": size, "batch": batch, "ngf": cfg.model.ngf,
            "threads": threads, "device": format!("{device:?}"), "steps": steps,
            "precision": speed.precision.to_string(), "channels_last": speed.channels_last,
            "tf32": speed.tf32, "sync_every": sync,
            "steps_per_s": steps as f64 / (t1 - t0), "median_step_s": median_step_s,
            "data_wait_fraction": s.data_wait_fraction,
        })
    );
}
