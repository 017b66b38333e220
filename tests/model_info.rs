//! `ncsn model-info`: the architecture a config builds and its parameter count.

use std::process::Command;

fn ncsn(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ncsn"))
        .args(args)
        .output()
        .expect("run ncsn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CONFIG: &str = "training: {batch_size: 8, n_iters: 10, snapshot_freq: 5}
sampling: {batch_size: 4, step_lr: 0.0000062, n_steps_each: 5}
data: {dataset: CIFAR10, image_size: 32, channels: 3}
model: {sigma_begin: 50, num_classes: 10, sigma_end: 0.01, normalization: InstanceNorm++,
        nonlinearity: elu, ngf: 16}
optim: {optimizer: Adam, lr: 0.0001}
";

#[test]
fn prints_the_reference_models_blocks_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let (ok, out, err) = ncsn(&["model-info", "--config", cfg.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("NCSNv2 (Table 3a"), "{out}");
    // The authors' count for this model (shared/reference/ncsnv2-32px/README.md).
    assert!(out.contains("total trainable parameters: 466,451"), "{out}");
    assert!(out.contains("res3") && out.contains("dilation 2") && out.contains("refine4"));

    let (ok, out, _) = ncsn(&[
        "model-info",
        "--config",
        cfg.to_str().unwrap(),
        "--image-size",
        "128",
    ]);
    assert!(ok);
    assert!(out.contains("3x128x128"), "{out}");
}

#[test]
fn a_size_the_network_cannot_take_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(&cfg, CONFIG.replace("dataset: CIFAR10", "dataset: LSUN")).unwrap();
    let (ok, _, err) = ncsn(&[
        "model-info",
        "--config",
        cfg.to_str().unwrap(),
        "--image-size",
        "98",
    ]);
    assert!(!ok);
    assert!(
        err.contains("c.yml") && err.contains("data.image_size") && err.contains("NCSNv2Deeper"),
        "{err}"
    );
}

#[test]
fn an_absurd_ngf_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let (ok, _, err) = ncsn(&[
        "model-info",
        "--config",
        cfg.to_str().unwrap(),
        "--ngf",
        "100000000",
    ]);
    assert!(!ok);
    assert!(
        err.contains("model.ngf: 100000000 is not in 1..=4096") && err.lines().count() == 1,
        "{err}"
    );
}
