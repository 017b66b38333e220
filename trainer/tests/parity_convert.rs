//! scripts/convert_pth.py turns an official ncsnv2 checkpoint into ours: a synthetic `.pth`
//! in the authors' runner layout (DataParallel `module.` keys; EMA in the last slot), made
//! with torch from the reference weights, converts to a workdir whose EMA weights load into
//! our NCSNv2 and reproduce the authors' score.

use std::path::PathBuf;
use std::process::Command;

use schemas::config::Config;
use tch::nn::VarStore;
use tch::{Device, Tensor};
use trainer::checkpoint::{copy_into, load_weights, resolve, Weights};
use trainer::models::{self, ScoreModel};

use testkit::python::{python, workspace_root as workspace};

fn reference_dir() -> PathBuf {
    let dir = match std::env::var_os("NCSN_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d).join("ncsnv2-32px"),
        None => workspace().join("../shared/reference/ncsnv2-32px"),
    };
    assert!(
        dir.join("model.safetensors").is_file(),
        "parity reference not found at {} (set NCSN_REFERENCE_DIR)",
        dir.display()
    );
    dir
}

const CONFIG: &str = "training:
  batch_size: 128
  n_iters: 300001
  snapshot_freq: 5000
sampling:
  batch_size: 100
  step_lr: 6.2e-6
  n_steps_each: 5
data:
  dataset: CIFAR10
  image_size: 32
  channels: 3
model:
  sigma_begin: 50
  num_classes: 10
  sigma_end: 0.01
  normalization: InstanceNorm++
  nonlinearity: elu
  ngf: 16
optim:
  optimizer: Adam
  lr: 0.0001
  eps: 1e-8
";

/// The runner's `states` list: model weights perturbed (so model ≠ EMA), EMA = reference.
const MAKE_PTH: &str = r#"
import sys, torch
from safetensors.torch import load_file
ref, out = sys.argv[1], sys.argv[2]
sd = load_file(ref + "/model.safetensors")
g = torch.Generator().manual_seed(0)
model = {"module." + k: (v if k == "sigmas" else v + 0.01 * torch.randn(v.shape, generator=g)) for k, v in sd.items()}
ema = {"module." + k: v.clone() for k, v in sd.items() if k != "sigmas"}
optim = {"state": {}, "param_groups": [{"lr": 1e-4, "eps": 1e-8, "params": list(range(len(ema)))}]}
torch.save([model, optim, 3, 1234, ema], out)
"#;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("spawn python");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn converted_official_checkpoint_reproduces_the_authors_score() {
    let py = python();
    let reference = reference_dir();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("checkpoint_1234.pth");
    let cfg_path = dir.path().join("cifar10.yml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    run(Command::new(&py)
        .arg("-c")
        .arg(MAKE_PTH)
        .arg(&reference)
        .arg(&pth));

    let workdir = dir.path().join("run");
    run(Command::new(&py)
        .arg(workspace().join("scripts/convert_pth.py"))
        .arg("--pth")
        .arg(&pth)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--workdir")
        .arg(&workdir));

    assert!(resolve(&workdir)
        .unwrap()
        .ends_with("ckpt_00001234.safetensors"));
    let (meta, ema) = load_weights(&workdir, Weights::Ema).unwrap();
    assert_eq!((meta.step, meta.arch.as_str()), (1234, "ncsnv2"));
    assert_eq!(meta.data_cursor.epoch, 3);
    // Recorded by the converter, checked by load_weights.
    assert!(meta.tensors_sha256.is_some());
    // The config travels as JSON our trainer reads back (`1e-8` is a number, not a string).
    let cfg: Config = serde_json::from_value(meta.config.clone()).unwrap();
    assert_eq!(cfg.optim.eps, 1e-8);
    assert_eq!(cfg, Config::read(&workdir.join("config.yml")).unwrap());

    let vs = VarStore::new(Device::Cpu);
    let net = models::build_net(&vs.root(), &cfg).unwrap();
    copy_into(&vs, &ema, "ema").unwrap();
    let io: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(reference.join("io.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let s = tch::no_grad(|| net.forward(&io["x"], &io["y"]));
    let err = (&s - &io["s"]).abs().max().double_value(&[]);
    assert!(err <= 1e-4 * 194.756, "EMA weights give max |Δs| {err:e}");

    // The raw model weights are the perturbed ones: a different score.
    let (_, model) = load_weights(&workdir, Weights::Model).unwrap();
    copy_into(&vs, &model, "model").unwrap();
    let s2 = tch::no_grad(|| net.forward(&io["x"], &io["y"]));
    assert!((&s2 - &io["s"]).abs().max().double_value(&[]) > 1e-2);
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_refused_with_its_name() {
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("bogus.pth");
    let cfg_path = dir.path().join("c.yml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    std::fs::write(&pth, b"not a pickle").unwrap();
    let out = Command::new(&py)
        .arg(workspace().join("scripts/convert_pth.py"))
        .arg("--pth")
        .arg(&pth)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--workdir")
        .arg(dir.path().join("w"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bogus.pth") && err.contains("cannot load"),
        "{err}"
    );
    assert!(!dir.path().join("w/checkpoints/latest.json").exists());
}
