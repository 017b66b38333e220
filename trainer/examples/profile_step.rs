//! Where a training step's time goes: forward, backward, Adam and EMA timed separately, averaged
//! over STEPS after WARMUP, printed as one JSON line. `scripts/bench/train_reference.py
//! --phases` prints the same split for PyTorch, so a gap between the two can be located, and
//! `scripts/bench/authors_train.py --phases` for the authors' code. With THREADS = 1 the
//! `cpu_*` fields (CPU time of the one thread that runs every op) are the ones to compare on a
//! loaded machine: another process moves them far less than wall time.
//!
//! cargo run --release --example profile_step -- CONFIG.yml BATCH STEPS WARMUP THREADS

use std::time::Instant;

use tch::{nn::VarStore, Device};
use trainer::ema::Ema;
use trainer::loss::dsm_loss;
use trainer::optim::{Adam, AdamConfig};

mod support;
use support::thread_cpu_ms;

fn main() {
    let (cfg, batch, counts) = support::set_up("profile_step", &["STEPS", "WARMUP"]);
    let (steps, warmup) = (counts[0], counts[1]);
    let (vs, model, sigmas) = support::network(&cfg);
    let ema_vs = VarStore::new(Device::Cpu);
    let _ema_model = trainer::models::build(&ema_vs.root(), &cfg).expect("ema model");
    let mut ema = Ema::new(&vs, &ema_vs, cfg.model.ema_rate).expect("ema");
    let mut adam = Adam::new(&vs, AdamConfig::from_config(&cfg.optim));
    let mut t = [0f64; 4];
    let mut c = [0f64; 4];
    for i in 0..warmup + steps {
        let (x, y, z) = support::batch(&cfg, batch);
        let (t0, c0) = (Instant::now(), thread_cpu_ms());
        adam.zero_grad();
        let (loss, _) = dsm_loss(
            model.as_ref(),
            &x,
            &y,
            &z,
            &sigmas,
            cfg.training.anneal_power,
        );
        let _ = loss.double_value(&[]);
        let (t1, c1) = (Instant::now(), thread_cpu_ms());
        loss.backward();
        let (t2, c2) = (Instant::now(), thread_cpu_ms());
        adam.step();
        let (t3, c3) = (Instant::now(), thread_cpu_ms());
        ema.update();
        let (t4, c4) = (Instant::now(), thread_cpu_ms());
        if i >= warmup {
            for (acc, d) in t.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                *acc += d.as_secs_f64() * 1e3 / steps as f64;
            }
            for (acc, d) in c.iter_mut().zip([c1 - c0, c2 - c1, c3 - c2, c4 - c3]) {
                *acc += d / steps as f64;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"impl": "ncsn", "forward_ms": t[0], "backward_ms": t[1],
            "adam_ms": t[2], "ema_ms": t[3], "total_ms": t.iter().sum::<f64>(),
            "cpu_forward_ms": c[0], "cpu_backward_ms": c[1], "cpu_adam_ms": c[2],
            "cpu_ema_ms": c[3], "cpu_total_ms": c.iter().sum::<f64>()})
    );
}
