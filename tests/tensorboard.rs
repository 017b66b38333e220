//! `ncsn train` writes TensorBoard scalars beside metrics.jsonl, read back here by TensorBoard's
//! own loader (the `tensorboard` package, which checks every record's CRC-32C): the same
//! values at the same steps, and after a resume from an earlier checkpoint a second event file
//! whose steps continue, with what the first logged past that checkpoint dropped.

mod common;

use std::path::Path;

use common::{ok, py, run, s};

const READ: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;

fn config(dir: &Path) -> std::path::PathBuf {
    common::tiny_config(dir, 6, 3, false)
}

/// tag -> [(step, value)] as TensorBoard reads WORK/tb.
fn scalars(work: &Path) -> serde_json::Map<String, serde_json::Value> {
    let text = py(READ, &[work.join("tb")]);
    serde_json::from_str(text.trim()).unwrap()
}

fn steps_values(map: &serde_json::Map<String, serde_json::Value>, tag: &str) -> Vec<(u64, f32)> {
    map.get(tag)
        .unwrap_or_else(|| panic!("no {tag} in {:?}", map.keys()))
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32))
        .collect()
}

#[test]
fn tensorboard_reads_the_scalars_and_a_resume_continues_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
    let cfg = config(tmp.path());
    let work = tmp.path().join("run");
    let train = |n_iters: &str, extra: &[&str]| {
        let mut args = vec!["train", "--config", s(&cfg), "--data", s(&data)];
        args.extend(["--workdir", s(&work), "--n-iters", n_iters, "--quiet"]);
        args.extend(["--snapshot-samples", "0"]);
        args.extend(extra);
        ok(&run(&args));
    };
    train("6", &[]);
    let tb = scalars(&work);
    for tag in [
        "train/loss",
        "test/loss",
        "train/sigma_mean",
        "train/lr",
        "train/data_wait",
        "train/steps_per_sec",
    ] {
        assert!(tb.contains_key(tag), "{tag} missing: {:?}", tb.keys());
    }
    assert_eq!(steps_values(&tb, "train/lr")[0], (1, 0.001));
    assert_eq!(
        steps_values(&tb, "test/loss")
            .iter()
            .map(|v| v.0)
            .collect::<Vec<_>>(),
        [3, 6]
    );

    // As if the run had been killed after logging step 6 but before its checkpoint: resume
    // from step 3's. Steps 4-6 run again; TensorBoard keeps only the resumed run's.
    std::fs::write(
        work.join("checkpoints/latest.json"),
        r#"{"step": 3, "file": "ckpt_00000003.safetensors"}"#,
    )
    .unwrap();
    std::fs::remove_file(work.join("checkpoints/ckpt_00000006.safetensors")).unwrap();
    std::fs::remove_file(work.join("checkpoints/ckpt_00000006.json")).unwrap();
    train("9", &["--resume"]);
    assert_eq!(std::fs::read_dir(work.join("tb")).unwrap().count(), 2);
    let tb = scalars(&work);
    let want: Vec<(u64, f32)> = trainer::metrics::read(&work.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter_map(|r| r.loss.map(|l| (r.step, l as f32)))
        .collect();
    assert_eq!(
        want.iter().map(|v| v.0).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(steps_values(&tb, "train/loss"), want);

    // Off on request, and --overwrite clears tb/ with the other results.
    train("2", &["--overwrite", "--tensorboard", "false"]);
    assert!(!work.join("tb").exists());
}
