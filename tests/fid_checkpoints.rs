//! `ncsn fid` on checkpoints through the binary: a checkpoint sampled and scored, a sweep over
//! a run's checkpoints (fid.jsonl, fid.png, the best, a rerun that skips), a diverged
//! checkpoint refused in one line, `fast_fid.ensemble: true` refused, and FID during training
//! (`ncsn train --fid-samples`). Random Inception weights (scripts/fid_random_weights.py),
//! 8×8 images, tiny networks, 10 samples, on the CPU.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{ok, py, run, s};

/// What every test shares, made once per test binary: random Inception weights, an ingested
/// 8×8 dataset, and its reference statistics.
struct Fixture {
    _dir: tempfile::TempDir,
    weights: PathBuf,
    data: PathBuf,
    stats: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let weights = common::random_inception_weights(dir.path());
        let data = dir.path().join("data");
        testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
        let stats = dir.path().join("stats.npz");
        ok(&run(&[
            "fid-stats",
            "--data",
            s(&data),
            "--out",
            s(&stats),
            "--weights",
            s(&weights),
            "--device",
            "cpu",
            "--quiet",
        ]));
        Fixture {
            _dir: dir,
            weights,
            data,
            stats,
        }
    })
}

/// A tiny run of 4 steps in `dir/run` with checkpoints at steps 2 and 4; `extra` flags and
/// config lines appended.
fn train(dir: &Path, extra: &[&str], config_extra: &str) -> (PathBuf, String) {
    let cfg = common::tiny_config(dir, 4, 2, false);
    let text = std::fs::read_to_string(&cfg).unwrap() + config_extra;
    std::fs::write(&cfg, text).unwrap();
    let work = dir.join("run");
    let mut args = vec!["--quiet", "--snapshot-samples", "0"];
    args.extend(extra);
    let out = common::run_train(&cfg, &fixture().data, &work, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "train failed: {text}");
    (work, text)
}

/// `ncsn fid` with the fixture's weights and statistics on the CPU, then `args`.
fn fid(args: &[&str]) -> std::process::Output {
    let f = fixture();
    let mut all = vec!["fid", "--weights", s(&f.weights), "--device", "cpu"];
    all.extend(["--stats", s(&f.stats), "--quiet"]);
    all.extend(args);
    run(&all)
}

fn ckpt(work: &Path, step: u64) -> PathBuf {
    work.join(format!("checkpoints/ckpt_{step:08}.safetensors"))
}

#[test]
fn a_checkpoint_is_sampled_and_scored_like_ncsn_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (work, _) = train(dir.path(), &[], "");
    let raw = dir.path().join("raw.npz");
    let file = ckpt(&work, 2);
    let out = fid(&[
        "--checkpoint",
        s(&file),
        "--n",
        "10",
        "--sample-batch-size",
        "4",
        "--raw",
        s(&raw),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(v["step"], 2);
    assert_eq!(v["num_samples"], 10);
    assert_eq!(v["ema"], true);
    for key in ["fid", "inception_score", "inception_score_std", "seconds"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"));
        assert!(x.is_finite() && x >= 0.0, "{key} = {x}");
    }
    // The samples are those of `ncsn sample` with the same seed, whatever the batch size.
    let png = dir.path().join("s.png");
    let sampled = dir.path().join("sampled.npz");
    ok(&run(&[
        "sample",
        "--checkpoint",
        s(&file),
        "--out",
        s(&png),
        "--n",
        "10",
        "--raw",
        s(&sampled),
        "--quiet",
    ]));
    let read = |p: &Path| shards::npz::Npz::open(p).unwrap().read("arr_0").unwrap();
    let (a, b) = (read(&raw), read(&sampled));
    assert_eq!(a.shape, [10, 8, 8, 3]);
    assert_eq!(a.data, b.data);

    // --workdir alone: its latest checkpoint, in text.
    let text = ok(&fid(&["--workdir", s(&work), "--n", "10"]));
    assert!(
        text.contains("(step 4, EMA weights)") && text.contains("FID:"),
        "{text}"
    );
}

#[test]
fn a_sweep_logs_plots_names_the_best_and_a_rerun_skips() {
    let dir = tempfile::tempdir().unwrap();
    let (work, _) = train(
        dir.path(),
        &[],
        "fast_fid: {batch_size: 5, num_samples: 10, step_lr: 0.00002, n_steps_each: 1,\n\
                    begin_ckpt: 4, end_ckpt: 4, verbose: false, ensemble: false}\n",
    );
    let out = fid(&[
        "--workdir",
        s(&work),
        "--ckpts",
        "2:4",
        "--n",
        "10",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(
        v["ckpts"], "2:4:2",
        "STEP defaults to training.snapshot_freq"
    );
    let lines = v["checkpoints"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    let log = std::fs::read_to_string(work.join("fid.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    let mut fids = vec![];
    for (line, step) in log.lines().zip([2, 4]) {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(l["step"], step);
        assert_eq!(l["n"], 10);
        // The sweep's sampler is fast_fid's.
        assert_eq!(
            (l["n_steps_each"].as_u64(), l["step_lr"].as_f64()),
            (Some(1), Some(2e-5))
        );
        for key in ["fid", "is", "is_std", "seconds"] {
            assert!(l[key].as_f64().unwrap().is_finite(), "{key}: {line}");
        }
        fids.push((l["fid"].as_f64().unwrap(), step));
    }
    let best = fids.iter().min_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
    assert_eq!(v["best"]["step"], best.1);
    let png = work.join("fid.png");
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");

    // A rerun from fast_fid.begin_ckpt on: step 4 is skipped, the missing 6 is named.
    let out = fid(&["--workdir", s(&work), "--ckpts", ":6", "--n", "10"]);
    let text = ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(text.matches("already in fid.jsonl").count(), 1, "{text}");
    assert!(text.contains(&format!("best: step {}", best.1)), "{text}");
    assert!(
        err.contains("no checkpoint at step 6 of --ckpts 4:6:2"),
        "{err}"
    );
    let again = std::fs::read_to_string(work.join("fid.jsonl")).unwrap();
    assert_eq!(again, log, "nothing rescored");

    // Every default from fast_fid (range, 10 samples), another seed: scored anew, beside.
    let out = fid(&[
        "--workdir",
        s(&work),
        "--ckpts",
        ":",
        "--seed",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert_eq!(v["ckpts"], "4:4:2");
    let l = &v["checkpoints"][0];
    assert_eq!(
        (l["step"].as_u64(), l["n"].as_u64(), l["seed"].as_u64()),
        (Some(4), Some(10), Some(1))
    );
    let n = std::fs::read_to_string(work.join("fid.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(n, 3);
}

/// Sets every EMA tensor of a checkpoint to NaN (and its recorded sha256 to match, as a run
/// that diverged would have written it).
fn poison(file: &Path) {
    let tensors = tch::Tensor::read_safetensors(file).unwrap();
    let tensors: Vec<(String, tch::Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| {
            let t = if n.starts_with("ema.") && t.is_floating_point() {
                t.full_like(f64::NAN)
            } else {
                t
            };
            (n, t)
        })
        .collect();
    tch::Tensor::write_safetensors(&tensors, file).unwrap();
    let meta = file.with_extension("json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    m["tensors_sha256"] = shards::sha256_file(file).unwrap().0.into();
    std::fs::write(&meta, m.to_string()).unwrap();
}

#[test]
fn a_diverged_checkpoint_is_one_line_naming_it_not_a_fid() {
    let dir = tempfile::tempdir().unwrap();
    let (work, _) = train(dir.path(), &[], "");
    let file = ckpt(&work, 2);
    poison(&file);
    let out = fid(&["--checkpoint", s(&file), "--n", "10", "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no FID printed");
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: ")
            && last.contains(&format!("checkpoint {} (step 2)", file.display()))
            && last.contains("NaN or infinite"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1);
    // In a sweep too, and nothing is logged for it.
    let out = fid(&["--workdir", s(&work), "--ckpts", "2:2", "--n", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(step 2): sample 0 of 10 is NaN"), "{err}");
    assert!(!work.join("fid.jsonl").exists());
}

#[test]
fn fast_fid_ensemble_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config(dir.path(), 4, 2, false);
    let text = std::fs::read_to_string(&cfg).unwrap()
        + "fast_fid: {batch_size: 10, num_samples: 10, step_lr: 0.00001, n_steps_each: 2,\n\
                      begin_ckpt: 2, end_ckpt: 4, verbose: false, ensemble: true}\n";
    std::fs::write(&cfg, text).unwrap();
    let work = dir.path().join("run");
    let out = common::run_train(&cfg, &fixture().data, &work, &["--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("fast_fid.ensemble: true is not supported by ncsn"),
        "{err}"
    );
}
const READ_TB: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;

#[test]
fn training_with_fid_samples_logs_fid_at_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    // The data's statistics are made once, beside its shards, with the fixture's weights.
    let data = dir.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
    let cfg = common::tiny_config(dir.path(), 4, 2, false);
    let work = dir.path().join("run");
    let w = s(&fixture().weights);
    let out = common::run_train(
        &cfg,
        &data,
        &work,
        &[
            "--snapshot-samples",
            "0",
            "--fid-samples",
            "10",
            "--fid-weights",
            w,
        ],
    );
    ok(&out);
    assert!(data.join("_fid_stats_train.npz").is_file());
    let metrics = std::fs::read_to_string(work.join("metrics.jsonl")).unwrap();
    let fids: Vec<(u64, f64, f64)> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("fid").is_some())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["fid"].as_f64().unwrap(),
                v["inception_score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(fids.iter().map(|f| f.0).collect::<Vec<_>>(), [2, 4]);
    assert!(fids.iter().all(|f| f.1.is_finite() && f.2.is_finite()));
    let tb: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(py(READ_TB, &[work.join("tb")]).trim()).unwrap();
    for tag in ["eval/fid", "eval/inception_score"] {
        let points = tb[tag]
            .as_array()
            .unwrap_or_else(|| panic!("{tag}: {tb:?}"));
        assert_eq!(points.len(), 2, "{tag}");
    }

    // FID sampling draws from its own streams: the losses are those of a run without it.
    let plain = dir.path().join("plain");
    ok(&common::run_train(
        &cfg,
        &data,
        &plain,
        &["--quiet", "--snapshot-samples", "0"],
    ));
    let losses = |w: &Path| -> Vec<(u64, f64)> {
        std::fs::read_to_string(w.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|v| Some((v["step"].as_u64()?, v.get("loss")?.as_f64()?)))
            .collect()
    };
    assert_eq!(losses(&work), losses(&plain));
    assert_eq!(losses(&plain).len(), 4);

    // Missing weights stop the run before its first step.
    let work2 = dir.path().join("run2");
    let missing = dir.path().join("no-weights.pth");
    let out = common::run_train(
        &cfg,
        &data,
        &work2,
        &["--quiet", "--fid-samples", "--fid-weights", s(&missing)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-weights.pth") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!work2.join("checkpoints").exists(), "no step was trained");
}
