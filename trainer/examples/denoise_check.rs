//! Diagnostic: how well a checkpoint denoises held-out images at each noise level. For σ_i it
//! prints E‖x̂ − x‖² / E‖x̃ − x‖² with x̃ = x + σ_i z and x̂ = x̃ + σ_i² s(x̃, σ_i) (Tweedie's
//! denoiser): 1 means the score is useless, small means it points at the data. Also writes a
//! grid of rows x / x̃ / x̂ at a few levels.
//!
//! cargo run --release --example denoise_check -- WORKDIR DATA_DIR OUT.png [raw]

use tch::{Device, Kind, Tensor};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let which = if a.get(4).map(String::as_str) == Some("raw") {
        trainer::checkpoint::Weights::Model
    } else {
        trainer::checkpoint::Weights::Ema
    };
    let m = trainer::sample::load_model(a[1].as_ref(), which, Device::Cpu).expect("model");
    let ds = shards::Dataset::open(a[2].as_ref()).expect("data");
    let split = if ds.manifest.splits.contains_key("test") {
        "test"
    } else {
        "train"
    };
    let rows = ds.read_split(split).expect("rows");
    let n = rows.len().min(16) as i64;
    let info = ds.info(split);
    let (h, w) = (info.height as i64, info.width as i64);
    let px = Tensor::from_slice(&rows.pixels[..(n * h * w * 3) as usize]).view([n, h, w, 3]);
    let x = trainer::loader::pixels_to_float(&px);
    let sig = &m.settings.sigmas;
    let _g = tch::no_grad_guard();
    tch::manual_seed(0);
    let mut grid = vec![];
    let picks: Vec<usize> = (0..10).map(|k| k * (sig.len() - 1) / 9).collect();
    for &i in &picks {
        let s = sig[i];
        let z = x.randn_like();
        let xt = &x + &z * s;
        let y = Tensor::full([n], i as i64, (Kind::Int64, Device::Cpu));
        let score = m.model.forward(&xt, &y);
        let xh = &xt + score * (s * s);
        let num = (&xh - &x).square().sum(Kind::Float).double_value(&[]);
        let den = (&xt - &x).square().sum(Kind::Float).double_value(&[]);
        let mean_err = (&xh - &x).mean(Kind::Float).double_value(&[]);
        println!(
            "sigma[{i:3}] = {s:9.4}: denoised/noisy error {:.4}  mean bias {mean_err:+.4}",
            num / den
        );
        if [picks[3], picks[5], picks[7]].contains(&i) {
            let k = 8.min(n);
            grid.push(x.narrow(0, 0, k));
            grid.push(xt.narrow(0, 0, k).clamp(0.0, 1.0));
            grid.push(xh.narrow(0, 0, k).clamp(0.0, 1.0));
        }
    }
    let g = Tensor::cat(&grid, 0);
    trainer::sample::write_grid(&g, 8, a[3].as_ref()).expect("grid");

    // Annealed Langevin, traced: at each level the RMS of σ²·s (the noise the score sees,
    // ≈ σ on the right track) and the spread of x.
    let st = &m.settings;
    let (eps, t) = (st.step_lr, st.n_steps_each);
    let mut x = Tensor::rand([n, 3, h, w], (Kind::Float, Device::Cpu));
    let last = sig[sig.len() - 1];
    for (i, &s) in sig.iter().enumerate() {
        let alpha = eps * (s / last).powi(2);
        let y = Tensor::full([n], i as i64, (Kind::Int64, Device::Cpu));
        let mut seen = 0.0;
        for _ in 0..t {
            let score = m.model.forward(&x, &y);
            seen = (&score * (s * s))
                .square()
                .mean(Kind::Float)
                .double_value(&[])
                .sqrt();
            x = &x + score * alpha + x.randn_like() * (2.0 * alpha).sqrt();
        }
        if i % 12 == 0 || i + 1 == sig.len() {
            println!(
                "level {i:3} sigma {s:9.4} alpha {alpha:10.3e}: rms(sigma^2 s) {seen:9.4}  x mean {:+.3} std {:.3}",
                x.mean(Kind::Float).double_value(&[]),
                x.std(true).double_value(&[])
            );
        }
    }
}
