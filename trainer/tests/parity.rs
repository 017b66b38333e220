//! Parity with the authors' code (ermongroup/ncsnv2): their ngf=16 32x32 NCSNv2's weights,
//! inputs, per-layer intermediates, score, DSM loss, gradients and first Adam step, stored in
//! `shared/reference/ncsnv2-32px/` (see its README). Acceptance bars of issue 5:
//! score per sample within 1e-4·max|s|, loss within 1e-5 relative, gradients and post-Adam
//! parameters within 1e-4 relative (‖Δ‖/‖ref‖ per tensor).

use std::collections::HashMap;
use std::path::PathBuf;

use schemas::config::Config;
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};
use trainer::checkpoint;
use trainer::loss::dsm_loss;
use trainer::models::{self, ScoreModel};

/// `$NCSN_REFERENCE_DIR`, else `shared/reference/ncsnv2-32px` beside the repository.
fn reference_dir() -> PathBuf {
    let dir = match std::env::var_os("NCSN_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d).join("ncsnv2-32px"),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/reference/ncsnv2-32px"
        )),
    };
    assert!(
        dir.join("model.safetensors").is_file(),
        "parity reference not found at {} (set NCSN_REFERENCE_DIR to the folder holding \
         ncsnv2-32px/, normally shared/reference beside the repository)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> HashMap<String, Tensor> {
    let path = reference_dir().join(name);
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// The authors' configs/cifar10.yml with the reference's overrides (ngf 16, 10 noise levels).
fn reference_config() -> Config {
    let text = r#"
training: {batch_size: 128, n_epochs: 500000, n_iters: 300001, snapshot_freq: 5000,
           snapshot_sampling: true, anneal_power: 2, log_all_sigmas: false}
sampling: {batch_size: 100, data_init: false, step_lr: 0.0000062, n_steps_each: 5,
           ckpt_id: 300000, final_only: true, fid: false, denoise: true}
data: {dataset: CIFAR10, image_size: 32, channels: 3, logit_transform: false,
       uniform_dequantization: false, gaussian_dequantization: false, random_flip: true,
       rescaled: false, num_workers: 4}
model: {sigma_begin: 50, num_classes: 10, ema: true, ema_rate: 0.999, spec_norm: false,
        sigma_dist: geometric, sigma_end: 0.01, normalization: InstanceNorm++,
        nonlinearity: elu, ngf: 16}
optim: {weight_decay: 0.0, optimizer: Adam, lr: 0.0001, beta1: 0.9, amsgrad: false,
        eps: 0.00000001}
"#;
    Config::from_yaml_str(text, std::path::Path::new("reference.yml")).unwrap()
}

/// Our model with the authors' weights loaded.
fn reference_model() -> (VarStore, models::RefineNet) {
    tch::set_num_threads(2);
    let vs = VarStore::new(Device::Cpu);
    let net = models::build_net(&vs.root(), &reference_config()).unwrap();
    let weights: Vec<(String, Tensor)> = read("model.safetensors").into_iter().collect();
    checkpoint::copy_into(&vs, &weights, "model.safetensors").unwrap();
    (vs, net)
}

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).norm().double_value(&[]);
    d / b.norm().double_value(&[]).max(f64::MIN_POSITIVE)
}

#[test]
fn state_dict_names_shapes_and_parameter_count_match() {
    let vs = VarStore::new(Device::Cpu);
    let _net = models::build(&vs.root(), &reference_config()).unwrap();
    let reference = read("model.safetensors");
    let ours = vs.variables();
    let mut a: Vec<_> = ours.keys().cloned().collect();
    let mut b: Vec<_> = reference.keys().cloned().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(a.len(), 154);
    for (name, t) in &ours {
        assert_eq!(t.size(), reference[name].size(), "{name}");
    }
    assert_eq!(models::parameter_count(&vs), 466_451);
    // sigmas is a buffer: saved with the weights, never trained.
    assert_eq!(vs.trainable_variables().len(), 153);
    // Our float32 sigmas come from cfg.sigmas() exactly as the authors' numpy formula.
    let ours = ours["sigmas"].shallow_clone();
    assert!(
        ours.equal(&reference["sigmas"]),
        "{ours:?} vs {:?}",
        reference["sigmas"]
    );
}

#[test]
fn forward_matches_per_layer_and_score() {
    let (_vs, net) = reference_model();
    let io = read("io.safetensors");
    let inter = read("intermediates.safetensors");
    let (x, y) = (&io["x"], &io["y"]);
    assert!(x.equal(&(io["x_u8"].to_kind(Kind::Float) / 255.0)));

    // Layer by layer first (every top-level module's output), to localise a mismatch.
    let trace = tch::no_grad(|| net.trace(x, y));
    assert_eq!(trace.len(), 15);
    for (name, t) in &trace {
        let want = &inter[&format!("out.{name}")];
        let r = rel(t, want);
        assert!(r < 1e-5, "{name}: relative error {r:e} against out.{name}");
    }
    let s = tch::no_grad(|| net.forward(x, y));
    let unscaled = tch::no_grad(|| net.unscaled(x, y));
    let r = rel(&unscaled, &inter["out.end_conv"]);
    assert!(
        r < 1e-5,
        "end_conv output (before / sigma) relative error {r:e}"
    );

    let s_ref = &io["s"];
    for i in 0..2 {
        let (a, b) = (s.get(i), s_ref.get(i));
        let err = (&a - &b).abs().max().double_value(&[]);
        let scale = b.abs().max().double_value(&[]);
        eprintln!("sample {i}: max |Δs| = {err:e}, max|s| = {scale}");
        assert!(
            err <= 1e-4 * scale,
            "sample {i}: max |Δs| {err:e} > 1e-4 · max|s| = {:e}",
            1e-4 * scale
        );
    }
}

#[test]
fn dsm_loss_matches() {
    let (vs, net) = reference_model();
    let io = read("io.safetensors");
    let sigmas = vs.variables()["sigmas"].shallow_clone();
    let (loss, per_sample) =
        tch::no_grad(|| dsm_loss(&net, &io["x"], &io["y"], &io["z"], &sigmas, 2.0));
    let want = 1895.24658203125;
    let got = loss.double_value(&[]);
    eprintln!("loss {got} (authors' {want})");
    assert!(
        ((got - want) / want).abs() <= 1e-5,
        "loss {got} vs the authors' {want}"
    );
    assert!(rel(&per_sample, &io["loss_per_sample"]) <= 1e-5);
}

#[test]
fn one_training_step_matches_gradients_and_adam() {
    let (vs, net) = reference_model();
    let io = read("io.safetensors");
    let step = read("train_step.safetensors");
    let sigmas = vs.variables()["sigmas"].shallow_clone();
    let mut opt = nn::Adam {
        beta1: 0.9,
        beta2: 0.999,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&vs, 1e-4)
    .unwrap();
    opt.zero_grad();
    let (loss, _) = dsm_loss(&net, &io["x"], &io["y"], &io["z"], &sigmas, 2.0);
    loss.backward();

    let vars = vs.variables();
    let mut worst = (0.0f64, String::new());
    let mut checked = 0;
    for (name, var) in &vars {
        if name == "sigmas" {
            continue;
        }
        let r = rel(&var.grad(), &step[&format!("grad.{name}")]);
        if r > worst.0 {
            worst = (r, name.clone());
        }
        checked += 1;
    }
    assert_eq!(checked, 153);
    eprintln!(
        "largest relative gradient error: {:e} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 1e-4,
        "gradient of {} off by {:e} relative",
        worst.1,
        worst.0
    );

    let before: HashMap<String, Tensor> = vars.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
    opt.step();
    let mut worst = (0.0f64, String::new());
    let mut worst_update = (0.0f64, String::new());
    for (name, var) in &vars {
        if name == "sigmas" {
            continue;
        }
        let want = &step[&format!("param_after_adam.{name}")];
        let r = rel(var, want);
        if r > worst.0 {
            worst = (r, name.clone());
        }
        // The update itself (≈ lr·sign(g) on a first step) is a sharper check.
        let r = rel(&(var - &before[name]), &(want - &before[name]));
        if r > worst_update.0 {
            worst_update = (r, name.clone());
        }
    }
    assert!(
        worst.0 <= 1e-4,
        "parameter {} after Adam off by {:e} relative",
        worst.1,
        worst.0
    );
    eprintln!(
        "largest relative error of an Adam update: {:e} ({})",
        worst_update.0, worst_update.1
    );
    assert!(
        worst_update.0 <= 1e-2,
        "Adam update of {} off by {:e}",
        worst_update.1,
        worst_update.0
    );
}
