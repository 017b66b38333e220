//! Where a training step's time goes: forward, backward, Adam and EMA timed separately, averaged
//! over STEPS after WARMUP, printed as one JSON line. `scripts/bench/train_reference.py
//! --phases` prints the same split for PyTorch, so a gap between the two can be located.
//!
//! cargo run --release --example profile_step -- CONFIG.yml BATCH STEPS WARMUP THREADS

use std::time::Instant;

use schemas::config::Config;
use tch::{nn::VarStore, Device, Kind, Tensor};
use trainer::ema::Ema;
use trainer::loss::dsm_loss;
use trainer::optim::{Adam, AdamConfig};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: profile_step CONFIG.yml BATCH STEPS WARMUP THREADS");
        std::process::exit(2);
    }
    let cfg = Config::read(std::path::Path::new(&a[1])).expect("config");
    let batch: i64 = a[2].parse().expect("batch");
    let steps: usize = a[3].parse().expect("steps");
    let warmup: usize = a[4].parse().expect("warmup");
    tch::set_num_threads(a[5].parse().expect("threads"));
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = trainer::models::build(&vs.root(), &cfg).expect("model");
    let ema_vs = VarStore::new(Device::Cpu);
    let _ema_model = trainer::models::build(&ema_vs.root(), &cfg).expect("ema model");
    let mut ema = Ema::new(&vs, &ema_vs, cfg.model.ema_rate).expect("ema");
    let mut adam = Adam::new(&vs, AdamConfig::from_config(&cfg.optim));
    let sigmas = schemas::calibration::geometric_sigmas(
        cfg.model.sigma_begin,
        cfg.model.sigma_end,
        cfg.model.num_classes,
    );
    let sigmas = Tensor::from_slice(&sigmas).to_kind(Kind::Float);
    let size = cfg.data.image_size as i64;
    let mut t = [0f64; 4];
    for i in 0..warmup + steps {
        let x = Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(
            cfg.model.num_classes as i64,
            [batch],
            (Kind::Int64, Device::Cpu),
        );
        let z = x.randn_like();
        let t0 = Instant::now();
        adam.zero_grad();
        let (loss, _) = dsm_loss(model.as_ref(), &x, &y, &z, &sigmas, 2.0);
        let _ = loss.double_value(&[]);
        let t1 = Instant::now();
        loss.backward();
        let t2 = Instant::now();
        adam.step();
        let t3 = Instant::now();
        ema.update();
        let t4 = Instant::now();
        if i >= warmup {
            for (acc, d) in t.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                *acc += d.as_secs_f64() * 1e3 / steps as f64;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"impl": "ncsn", "forward_ms": t[0], "backward_ms": t[1],
            "adam_ms": t[2], "ema_ms": t[3], "total_ms": t.iter().sum::<f64>()})
    );
}
