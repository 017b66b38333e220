//! The paper's whole evaluation, end to end through the binary (issue 13): synth → ingest →
//! fid-stats → train a few steps → an FID sweep over two checkpoints (fid.jsonl, fid.png, the
//! best) → samples of the best checkpoint → their nearest training images (PNG and JSON).
//! pytorch-fid's network on random weights saved here (no real weights in CI), a 32×32 model
//! of ngf 4, on the CPU.

mod common;

use std::path::Path;

use common::{ok, ok_text, run, s};

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn synth_ingest_stats_train_sweep_and_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let weights = common::random_inception_weights(dir.path());
    let data = common::cifar_shards(dir.path(), 12, 4);
    let inception = ["--weights", s(&weights), "--device", "cpu"];

    // Reference statistics, where `fid` and `train --fid-samples` look for them.
    let mut args = vec!["fid-stats", "--data", s(&data), "--quiet"];
    args.extend(inception);
    ok(&run(&args));
    let stats = data.join("_fid_stats_train.npz");
    assert!(stats.is_file(), "fid-stats wrote {}", stats.display());

    // Four steps on the synthetic CIFAR-10, a checkpoint every two.
    let cfg = dir.path().join("c.yml");
    std::fs::write(
        &cfg,
        r#"
training: {batch_size: 4, n_iters: 4, snapshot_freq: 2, snapshot_sampling: false}
sampling: {batch_size: 5, step_lr: 0.00001, n_steps_each: 2}
data: {dataset: "CIFAR10", image_size: 32, channels: 3}
model: {sigma_begin: 10, num_classes: 4, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}
optim: {optimizer: Adam, lr: 0.001}
"#,
    )
    .unwrap();
    let work = dir.path().join("run");
    ok(&common::run_train(&cfg, &data, &work, &["--quiet"]));

    // The sweep, like the authors' --fast_fid: one line per checkpoint, a plot, the best.
    let mut args = vec![
        "fid",
        "--workdir",
        s(&work),
        "--ckpts",
        "2:4:2",
        "--n",
        "10",
    ];
    args.extend(["--stats", s(&stats), "--json", "--quiet"]);
    args.extend(inception);
    let out: serde_json::Value = serde_json::from_str(ok(&run(&args)).trim()).unwrap();
    let lines = json_lines(&work.join("fid.jsonl"));
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [2, 4], "{lines:?}");
    for l in &lines {
        let fid = l["fid"].as_f64().unwrap();
        assert!(fid.is_finite() && fid >= 0.0, "{l}");
        assert!(l["is"].as_f64().unwrap() >= 1.0 - 1e-9, "{l}");
        assert_eq!(l["n"].as_u64(), Some(10), "{l}");
    }
    let best = lines
        .iter()
        .min_by(|a, b| a["fid"].as_f64().partial_cmp(&b["fid"].as_f64()).unwrap())
        .unwrap();
    assert_eq!(out["best"]["step"], best["step"], "{out}");
    let png = std::fs::read(work.join("fid.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // Samples of the best checkpoint, then their nearest training images (flips included).
    let step = best["step"].as_u64().unwrap();
    let ckpt = work.join(format!("checkpoints/ckpt_{step:08}.safetensors"));
    let raw = dir.path().join("samples.npz");
    ok(&run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--out",
        s(&dir.path().join("grid.png")),
        "--n",
        "3",
        "--raw",
        s(&raw),
        "--quiet",
    ]));
    let (fig, json) = (dir.path().join("nn.png"), dir.path().join("nn.json"));
    let mut args = vec![
        "neighbours",
        "--samples",
        s(&raw),
        "--data",
        s(&data),
        "-k",
        "4",
    ];
    args.extend(["--out", s(&fig), "--json", s(&json), "--quiet"]);
    args.extend(inception);
    ok_text(&args);
    let decoded = image::open(&fig).unwrap();
    let size = evaluate::neighbours::figure_size(3, 4, [32, 32]);
    assert_eq!((decoded.width(), decoded.height()), size);
    let nn: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let samples = nn["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3, "{nn}");
    for sample in samples {
        let found = sample["neighbours"].as_array().unwrap();
        assert_eq!(found.len(), 4, "{sample}");
        let d: Vec<f64> = found
            .iter()
            .map(|n| n["distance"].as_f64().unwrap())
            .collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "nearest first: {d:?}");
        for n in found {
            assert!(n["id"].as_u64().unwrap() < 12, "{n}");
        }
    }
}
