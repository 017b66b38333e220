//! End-to-end `ncsn train`: calibration overrides, checkpoints, metrics, loss plot, snapshot
//! samples, --resume, Ctrl-C, and clear errors for a resolution mismatch and a NaN loss.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ncsn, train_args};

/// An ingested-looking directory of 8×8 images: `train` (24 rows, 2 shards) and `test` (8).
fn dataset(dir: &Path) {
    testkit::datasets::id_dataset(dir, 8, 24, 2, 8);
}

fn config(dir: &Path, image_size: u32) -> std::path::PathBuf {
    let p = dir.join(format!("tiny{image_size}.yml"));
    std::fs::write(
        &p,
        format!(
            r#"
training: {{batch_size: 4, n_iters: 6, snapshot_freq: 3, snapshot_sampling: true}}
sampling: {{batch_size: 4, step_lr: 0.00001, n_steps_each: 2}}
data: {{dataset: "TEST", image_size: {image_size}, channels: 3}}
model: {{sigma_begin: 10, num_classes: 5, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}}
optim: {{optimizer: Adam, lr: 0.001}}
"#
        ),
    )
    .unwrap();
    p
}

fn calibration(dir: &Path, sigma_begin: f64, num_classes: usize) -> std::path::PathBuf {
    let p = dir.join(format!("cal{num_classes}.json"));
    let c = serde_json::json!({
        "schema_version": schemas::SCHEMA_VERSION, "sigma_begin": sigma_begin, "sigma_end": 0.01,
        "num_classes": num_classes, "n_steps_each": 3, "step_lr": 2e-5, "gamma": 1.5,
        "overlap": 0.5, "dims": 192, "eq4_value": 1.0
    });
    std::fs::write(&p, c.to_string()).unwrap();
    p
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = ncsn().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn trains_checkpoints_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("run"));
    dataset(&data);
    let cfg = config(tmp.path(), 8);
    let cal = calibration(tmp.path(), 12.0, 7);
    let cal = cal.display().to_string();
    let extra = [
        "--calibration",
        &cal,
        "--snapshot-samples",
        "4",
        "--loss-plot",
    ];
    let base = train_args(&cfg, &data, &work, &extra);
    let (ok, out, err) = run(&base);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("step 6"), "{out}");

    // The effective config carries the calibration's values.
    let eff = schemas::config::Config::read(&work.join("config.yml")).unwrap();
    assert_eq!((eff.model.sigma_begin, eff.model.num_classes), (12.0, 7));
    assert_eq!((eff.sampling.n_steps_each, eff.sampling.step_lr), (3, 2e-5));

    let latest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("checkpoints/latest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(latest["step"], 6);
    assert!(work.join("checkpoints/ckpt_00000003.safetensors").is_file());
    assert!(work.join("checkpoints/ckpt_00000006.json").is_file());
    assert!(work.join("samples/step_00000003.png").is_file());
    assert!(work.join("samples/step_00000006.png").is_file());
    assert!(work.join("loss.png").is_file());

    let records = trainer::metrics::read(&work.join("metrics.jsonl")).unwrap();
    let train: Vec<_> = records.iter().filter(|r| r.loss.is_some()).collect();
    assert_eq!(
        train.iter().map(|r| r.step).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(train
        .iter()
        .all(|r| r.data_wait.is_some_and(|w| (0.0..=1.0).contains(&w))));
    let tests: Vec<u64> = records
        .iter()
        .filter(|r| r.test_loss.is_some())
        .map(|r| r.step)
        .collect();
    assert_eq!(tests, [3, 6], "test loss at each snapshot");

    // Resume to step 8.
    let mut resumed = base.clone();
    resumed.extend(["--resume", "--n-iters", "8"].map(String::from));
    let (ok, out, err) = run(&resumed);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("step 8"), "{out}");
    let steps: Vec<u64> = trainer::metrics::read(&work.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|r| r.loss.is_some())
        .map(|r| r.step)
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn resolution_mismatch_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let cfg = config(tmp.path(), 16);
    let (ok, _, err) = run(&train_args(&cfg, &data, &tmp.path().join("w"), &[]));
    assert!(!ok);
    assert!(
        err.contains("image_size") && err.contains("8×8×3") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn a_nan_loss_stops_with_step_and_sigma_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let cfg = config(tmp.path(), 8);
    // σ₁ = 1e38: x + σz overflows float32 inside the network, the loss is not finite.
    let cal = calibration(tmp.path(), 1e38, 2);
    let work = tmp.path().join("w");
    let cal = cal.display().to_string();
    let extra = [
        "--calibration",
        &cal,
        "--n-iters",
        "50",
        "--snapshot-freq",
        "1000",
    ];
    let (ok, _, err) = run(&train_args(&cfg, &data, &work, &extra));
    assert!(!ok);
    assert!(
        err.contains("step ") && err.contains("σ index 0") && err.contains("1.0000e38"),
        "{err}"
    );
    assert!(
        !work.join("checkpoints/latest.json").exists(),
        "nothing is saved from a diverged run"
    );
}

/// Ctrl-C (SIGINT) mid-run: the step in flight finishes, a checkpoint of exactly that step is
/// written and named in latest.json, the exit status is 130 with a hint to `--resume`, and
/// resuming reaches the end with every step logged once.
#[test]
fn ctrl_c_checkpoints_the_current_step_and_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("run"));
    dataset(&data);
    let cfg = config(tmp.path(), 8);
    let extra = common::UNTIL_STOPPED;
    let base = train_args(&cfg, &data, &work, &extra);
    let child = ncsn()
        .args(&base)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a few logged steps, then send SIGINT as a terminal's Ctrl-C would.
    let metrics = work.join("metrics.jsonl");
    let t0 = std::time::Instant::now();
    while trainer::metrics::read(&metrics).map_or(0, |r| r.len()) < 3 {
        assert!(t0.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");

    let latest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("checkpoints/latest.json")).unwrap(),
    )
    .unwrap();
    let stopped = latest["step"].as_u64().unwrap();
    let logged: Vec<u64> = trainer::metrics::read(&metrics)
        .unwrap()
        .iter()
        .filter(|r| r.loss.is_some())
        .map(|r| r.step)
        .collect();
    assert!((3..100_000).contains(&stopped), "{stopped}");
    assert_eq!(
        logged.last(),
        Some(&stopped),
        "checkpoint = last finished step"
    );
    assert!(work
        .join(format!("checkpoints/ckpt_{stopped:08}.safetensors"))
        .is_file());

    // Resume to two steps past the interruption: nothing lost, nothing repeated.
    let mut resumed = base.clone();
    let n_iters = resumed.iter().position(|a| a == "--n-iters").unwrap();
    resumed[n_iters + 1] = (stopped + 2).to_string();
    resumed.push("--resume".into());
    let (ok, out, err) = run(&resumed);
    assert!(ok, "{out}\n{err}");
    let steps: Vec<u64> = trainer::metrics::read(&metrics)
        .unwrap()
        .iter()
        .filter(|r| r.loss.is_some())
        .map(|r| r.step)
        .collect();
    assert_eq!(steps, (1..=stopped + 2).collect::<Vec<_>>());
}

/// Config::validate through the binary: a bad value in the file or from a flag is refused in
/// one line naming the key (and the file), before any training.
#[test]
fn config_errors_name_the_key_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let cfg = config(tmp.path(), 8);
    let (ok, _, err) = run(&train_args(
        &cfg,
        &data,
        &tmp.path().join("w"),
        &["--batch-size", "0"],
    ));
    assert!(!ok);
    assert!(
        err.contains("training.batch_size: 0 is not ≥ 1") && err.lines().count() == 1,
        "{err}"
    );

    let bad = tmp.path().join("bad.yml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&bad, text.replace("lr: 0.001}", "lr: 0.001, beta1: 1.5}")).unwrap();
    let (ok, _, err) = run(&train_args(&bad, &data, &tmp.path().join("w"), &[]));
    assert!(!ok);
    assert!(
        err.contains("bad.yml: optim.beta1: 1.5 is not in [0, 1)") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!tmp.path().join("w").exists(), "nothing written");
}

/// Keys only the authors' other commands read are accepted (their files must load) and named
/// in a note; `--quiet` drops the note.
#[test]
fn keys_ncsn_does_not_use_are_named_in_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("authors.yml");
    let text = std::fs::read_to_string(config(tmp.path(), 8)).unwrap()
        + "test: {begin_ckpt: 5000, end_ckpt: 300000, batch_size: 4}\n\
           fast_fid: {batch_size: 1000, num_samples: 1000, step_lr: 0.0000062, n_steps_each: 5,\n\
                      begin_ckpt: 5000, end_ckpt: 300000, verbose: false, ensemble: false}\n";
    std::fs::write(&cfg, text).unwrap();
    // No data: the run stops right after the config is taken in.
    let missing = tmp.path().join("no-data");
    let (ok, _, err) = run(&train_args(&cfg, &missing, &tmp.path().join("w"), &[]));
    assert!(!ok);
    let note = err.lines().next().unwrap();
    assert!(
        note.starts_with("note: ")
            && note.contains("test.begin_ckpt, test.end_ckpt")
            // The defaults of `ncsn fid --ckpts` now, so not named as unused.
            && !note.contains("fast_fid")
            && !note.contains("test.batch_size"),
        "{err}"
    );
    assert!(err.contains("no-data"), "{err}");
    let (_, _, err) = run(&train_args(
        &cfg,
        &missing,
        &tmp.path().join("w"),
        &["--quiet"],
    ));
    assert!(!err.contains("note:"), "{err}");
}
