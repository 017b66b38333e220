//! The CRP max-pool (5×5, stride 1, padding 2), forward + backward as a training step runs it
//! and the forward alone without autograd as sampling runs it,
//! libtorch's `max_pool2d` against `torchrt::pool::max_pool2d_same`, on the pooling shapes of
//! the CIFAR-10 config at batch 8 (ngf 128: refine1 and refine2 at 256 × 16², refine3 at
//! 128 × 16², refine4 at 128 × 32², two pools each), alternating,
//! best and median of ROUNDS. Issue 15; numbers in BENCHMARKS.md (Training).
//!
//! cargo run --release -p torchrt --example bench_pool -- [THREADS] [ROUNDS]

use std::time::Instant;

use tch::{Device, Kind, Tensor};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let threads: i32 = a.get(1).map_or(2, |s| s.parse().expect("THREADS"));
    let rounds: usize = a.get(2).map_or(9, |s| s.parse().expect("ROUNDS"));
    tch::set_num_threads(threads);
    // As `ncsn train` runs: denormals flushed, freed activations kept in the heap.
    torchrt::accel::set_flush_denormal(true);
    torchrt::accel::keep_freed_memory();
    // The eight pools of one NCSNv2 forward at 32 px, batch 8, ngf 128 (2 stages per CRP).
    let shapes: [[i64; 4]; 4] = [
        [8, 256, 16, 16],
        [8, 256, 16, 16],
        [8, 128, 16, 16],
        [8, 128, 32, 32],
    ];
    let inputs: Vec<(Tensor, Tensor)> = shapes
        .iter()
        .map(|&s| {
            let x = Tensor::randn(s, (Kind::Float, Device::Cpu)).elu();
            (x, Tensor::randn(s, (Kind::Float, Device::Cpu)))
        })
        .collect();
    // The forward with indices (what a training step's forward runs), then its backward (with
    // the `y·g` sum that seeds it, the same on both sides).
    let step = |ours: bool| {
        let (mut forward, mut backward) = (0.0, 0.0);
        for (x, g) in &inputs {
            for _ in 0..2 {
                let x = x.detach().set_requires_grad(true);
                let t = Instant::now();
                let y = if ours {
                    torchrt::pool::max_pool2d_same(&x, 5).expect("pool")
                } else {
                    x.max_pool2d([5, 5], [1, 1], [2, 2], [1, 1], false)
                };
                forward += t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                (&y * g).sum(Kind::Float).backward();
                backward += t.elapsed().as_secs_f64() * 1e3;
            }
        }
        (forward, backward)
    };
    // Without autograd, as sampling runs the network: values only.
    let infer = |ours: bool| {
        let _no_grad = tch::no_grad_guard();
        let t = Instant::now();
        for (x, _) in &inputs {
            for _ in 0..2 {
                let _y = if ours {
                    torchrt::pool::max_pool2d_same(x, 5).expect("pool")
                } else {
                    x.max_pool2d([5, 5], [1, 1], [2, 2], [1, 1], false)
                };
            }
        }
        t.elapsed().as_secs_f64() * 1e3
    };
    step(false);
    step(true);
    // libtorch forward, backward, no-grad; ncsn the same.
    let mut times: [Vec<f64>; 6] = Default::default();
    for _ in 0..rounds {
        for ours in [false, true] {
            let (f, b) = step(ours);
            let at = 3 * ours as usize;
            times[at].push(f);
            times[at + 1].push(b);
            times[at + 2].push(infer(ours));
        }
    }
    let [tf, tb, ti, of, ob, oi] = times.map(|mut v| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    });
    let json =
        |(best, median): (f64, f64)| format!("{{\"best\":{best:.2},\"median\":{median:.2}}}");
    println!(
        "{{\"threads\":{threads},\"rounds\":{rounds},\"libtorch_forward_ms\":{},\"libtorch_backward_ms\":{},\
         \"libtorch_no_grad_ms\":{},\"ncsn_forward_ms\":{},\"ncsn_backward_ms\":{},\"ncsn_no_grad_ms\":{},\
         \"forward_speedup_median\":{:.2},\"step_speedup_median\":{:.2},\"no_grad_speedup_median\":{:.2}}}",
        json(tf),
        json(tb),
        json(ti),
        json(of),
        json(ob),
        json(oi),
        tf.1 / of.1,
        (tf.1 + tb.1) / (of.1 + ob.1),
        ti.1 / oi.1
    );
}
