//! N forward passes of the DSM loss with autograd recording (as in a training step), nothing
//! else: run it under `valgrind --tool=callgrind` next to `scripts/bench/authors_forward.py` to
//! compare the forward pass op by op in instructions, which machine load does not move, or
//! under `perf stat -e 'probe_libtorch_cpu:*'` with uprobes on libtorch's `at::_ops::*::call`
//! to count the ops. Prints, per pass, the loss and the pass's CPU time on this thread (all of
//! it at THREADS = 1), which another process on the machine moves far less than wall time.
//!
//! cargo run --release --example count_forward -- CONFIG.yml BATCH PASSES THREADS

use schemas::config::Config;
use tch::{nn::VarStore, Device, Kind, Tensor};
use trainer::loss::dsm_loss;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: count_forward CONFIG.yml BATCH PASSES THREADS");
        std::process::exit(2);
    }
    let cfg = Config::read(std::path::Path::new(&a[1])).expect("config");
    let batch: i64 = a[2].parse().expect("batch");
    let passes: usize = a[3].parse().expect("passes");
    torchrt::accel::set_flush_denormal(true);
    torchrt::accel::keep_freed_memory();
    tch::set_num_threads(a[4].parse().expect("threads"));
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = trainer::models::build(&vs.root(), &cfg).expect("model");
    let sigmas = schemas::calibration::geometric_sigmas(
        cfg.model.sigma_begin,
        cfg.model.sigma_end,
        cfg.model.num_classes,
    );
    let sigmas = Tensor::from_slice(&sigmas).to_kind(Kind::Float);
    let size = cfg.data.image_size as i64;
    let x = Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu));
    for _ in 0..passes {
        let y = Tensor::randint(
            cfg.model.num_classes as i64,
            [batch],
            (Kind::Int64, Device::Cpu),
        );
        let z = x.randn_like();
        let t0 = thread_cpu_ms();
        let (loss, _) = dsm_loss(model.as_ref(), &x, &y, &z, &sigmas, 2.0);
        let loss = loss.double_value(&[]);
        println!("{loss} {:.1}", thread_cpu_ms() - t0);
    }
}

/// CPU time of the calling thread in ms.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}
