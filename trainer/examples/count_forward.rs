//! N forward passes of the DSM loss with autograd recording (as in a training step), nothing
//! else: run it under `valgrind --tool=callgrind` next to `scripts/bench/authors_forward.py` to
//! compare the forward pass op by op in instructions, which machine load does not move, or
//! under `perf stat -e 'probe_libtorch_cpu:*'` with uprobes on libtorch's `at::_ops::*::call`
//! to count the ops. Prints, per pass, the loss and the pass's CPU time on this thread (all of
//! it at THREADS = 1), which another process on the machine moves far less than wall time.
//!
//! cargo run --release --example count_forward -- CONFIG.yml BATCH PASSES THREADS

use trainer::loss::dsm_loss;

mod support;
use support::thread_cpu_ms;

fn main() {
    let (cfg, batch, counts) = support::set_up("count_forward", &["PASSES"]);
    let passes = counts[0];
    let (_vs, model, sigmas) = support::network(&cfg);
    // One batch, fresh σ indices and noise each pass: the ops of the authors' forward pass,
    // whose loss draws those two itself (scripts/bench/authors_forward.py).
    let (x, _, _) = support::batch(&cfg, batch);
    for _ in 0..passes {
        let (y, z) = support::noise(&cfg, &x);
        let t0 = thread_cpu_ms();
        let (loss, _) = dsm_loss(
            model.as_ref(),
            &x,
            &y,
            &z,
            &sigmas,
            cfg.training.anneal_power,
        );
        let loss = loss.double_value(&[]);
        println!("{loss} {:.1}", thread_cpu_ms() - t0);
    }
}
