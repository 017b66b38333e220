//! End-to-end `ncsn train`/`ncsn sample` with the one-GPU flags (issue 16) on the CPU:
//! --precision bf16 --channels-last --sync-every run the same code paths as on a GPU, and a
//! NaN loss read late is still named with its step and σ.

mod common;

use common::{ncsn, s, tiny_config};

fn dataset(dir: &std::path::Path) {
    testkit::datasets::id_dataset(dir, 8, 24, 2, 8);
}

#[test]
fn bf16_channels_last_training_and_sampling_run_and_log_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("w"));
    dataset(&data);
    let cfg = tiny_config(tmp.path(), 6, 3, true);
    let fast = ["--precision", "bf16", "--channels-last"];
    let out = ncsn()
        .args(common::train_args(&cfg, &data, &work, &fast))
        .args(["--sync-every", "4", "--snapshot-samples", "4", "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = std::fs::read_to_string(work.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [1, 2, 3, 4, 5, 6],
        "one line per step, read 4 at a time"
    );
    assert!(work.join("samples/step_00000003.png").exists());
    assert!(work.join("checkpoints/latest.json").exists());

    let png = tmp.path().join("s.png");
    let out = ncsn()
        .args([
            "sample",
            "--workdir",
            s(&work),
            "--n",
            "4",
            "--out",
            s(&png),
            "--quiet",
        ])
        .args(fast)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(png.exists());
}

#[test]
fn a_nan_loss_read_late_still_names_step_and_sigma_and_saves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("w"));
    dataset(&data);
    let cfg = tiny_config(tmp.path(), 50, 1000, false);
    // σ₁ = 1e38 (2 levels): x + σz overflows float32 inside the network.
    let cal = tmp.path().join("cal.json");
    let c = serde_json::json!({
        "schema_version": schemas::SCHEMA_VERSION, "sigma_begin": 1e38, "sigma_end": 0.01,
        "num_classes": 2, "n_steps_each": 3, "step_lr": 2e-5, "gamma": 1.5,
        "overlap": 0.5, "dims": 192, "eq4_value": 1.0
    });
    std::fs::write(&cal, c.to_string()).unwrap();
    let run = |sync: &str, w: &std::path::Path| {
        let out = common::run_train(
            &cfg,
            &data,
            w,
            &["--calibration", s(&cal), "--sync-every", sync, "--quiet"],
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let late = run("10", &work);
    assert!(
        late.contains("step ") && late.contains("σ index 0") && late.contains("1.0000e38"),
        "{late}"
    );
    assert!(!work.join("checkpoints/latest.json").exists());
    // The same step, sample and σ as reading every step.
    let every = run("1", &tmp.path().join("w1"));
    let cause = |e: &str| e[e.find("step ").unwrap()..].to_string();
    assert_eq!(cause(&late), cause(&every));
}
