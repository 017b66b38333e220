//! Hostile and careless input never costs data (issue 12): a flipped byte in a shard's pixel
//! page or in a checkpoint's weights stops the command that reads it with one line naming the
//! file, a second Ctrl-C never crashes a run mid-checkpoint, and a kill never leaves a
//! checkpoint without its sample grid.

mod common;
use common::{ncsn, py, run, s, train_args};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use trainer::checkpoint::{self, Weights};

/// 24 random 8×8 images (incompressible, so zstd stores them as they are and a flipped byte
/// changes one pixel rather than breaking decompression) in two `train` shards.
fn dataset(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    testkit::datasets::random_dataset(&data, 8, 8, 24, 12, 7);
    data
}

/// A tiny NCSNv2 on 8×8 images; `sampling` is the config's `sampling:` body.
fn config(dir: &Path, sampling: &str) -> PathBuf {
    let p = dir.join("tiny.yml");
    std::fs::write(
        &p,
        format!(
            r#"
training: {{batch_size: 4, n_iters: 6, snapshot_freq: 3, snapshot_sampling: true}}
sampling: {{{sampling}}}
data: {{dataset: "TEST", image_size: 8, channels: 3}}
model: {{sigma_begin: 10, num_classes: 5, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}}
optim: {{optimizer: Adam, lr: 0.001}}
"#
        ),
    )
    .unwrap();
    p
}

fn tiny_config(dir: &Path) -> PathBuf {
    config(dir, "batch_size: 4, step_lr: 0.00001, n_steps_each: 2")
}

fn output<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    ncsn().args(args).output().unwrap()
}

/// stderr of a run that must have failed with a one-line message.
fn one_line_failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        !out.status.success(),
        "expected a failure:\n{}\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "one line expected:\n{err}");
    err
}

fn calibrate(data: &Path) -> Output {
    let out = data.join("cal.json");
    run(&[
        "--quiet",
        "calibrate",
        "--data",
        s(data),
        "--out",
        s(&out),
        "--device",
        "cpu",
    ])
}

#[test]
fn a_flipped_byte_in_a_pixel_page_stops_train_and_calibrate() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let shard = data.join("train-00001.parquet");
    testkit::datasets::flip_pixel_byte(&shard);

    let err = one_line_failure(&calibrate(&data));
    assert!(
        err.contains("train-00001.parquet") && err.contains("row group 0") && err.contains("CRC"),
        "{err}"
    );

    let cfg = tiny_config(tmp.path());
    let work = tmp.path().join("run");
    let out = output(&train_args(&cfg, &data, &work, &["--quiet"]));
    let err = one_line_failure(&out);
    assert!(
        err.contains("train-00001.parquet") && err.contains("row group 0") && err.contains("CRC"),
        "{err}"
    );
    assert!(
        !work.join("checkpoints/latest.json").exists(),
        "nothing trained on the corrupt shard may be saved"
    );
}

/// Shards rewritten by another tool: page CRCs (Parquet's own, here pyarrow's
/// `write_page_checksum`) are verified, and a shard with no checksum of either kind (older
/// ncsn shards) is still read.
#[test]
fn page_crcs_of_other_writers_are_verified_and_shards_without_any_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let rewrite = |shard: &Path, page_checksums: bool| {
        py(
            r#"
import sys, pyarrow.parquet as pq
kv = pq.ParquetFile(sys.argv[1]).metadata.metadata
t = pq.read_table(sys.argv[1])
t = t.drop_columns([c for c in t.column_names if c not in ("id", "key", "label", "pixels")])
t = t.replace_schema_metadata({k: v for k, v in kv.items() if k.startswith(b"ncsn.")})
pq.write_table(t, sys.argv[1], compression="zstd", use_dictionary=False,
               write_page_checksum=sys.argv[2] == "1")
"#,
            &[s(shard), if page_checksums { "1" } else { "0" }],
        );
    };
    let (plain, checked) = (
        data.join("train-00000.parquet"),
        data.join("train-00001.parquet"),
    );
    rewrite(&plain, false);
    rewrite(&checked, true);
    let out = calibrate(&data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    testkit::datasets::flip_pixel_byte(&checked);
    let err = one_line_failure(&calibrate(&data));
    assert!(
        err.contains("train-00001.parquet") && err.contains("CRC"),
        "{err}"
    );
}

/// A trained workdir of the tiny config (checkpoints at steps 3 and 6).
fn trained(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = dataset(tmp);
    let cfg = tiny_config(tmp);
    let work = tmp.join("run");
    let out = output(&train_args(
        &cfg,
        &data,
        &work,
        &["--quiet", "--snapshot-samples", "0"],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (data, cfg, work)
}

#[test]
fn a_flipped_byte_in_checkpoint_weights_stops_sample_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg, work) = trained(tmp.path());
    let file = checkpoint::resolve(&work).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checkpoint::meta_path(&file)).unwrap())
            .unwrap();
    assert!(meta["tensors_sha256"].is_string(), "{meta}");
    // The tensors take up most of the file, after a JSON header of their names.
    let len = std::fs::metadata(&file).unwrap().len();
    testkit::datasets::flip_byte(&file, len - len / 4);
    let want = format!(
        "checkpoint {}: sha256 mismatch (file corrupt or changed since it was written)",
        file.display()
    );

    let png = tmp.path().join("s.png");
    let err = one_line_failure(&output(&[
        "sample",
        "--workdir",
        s(&work),
        "--out",
        s(&png),
        "--n",
        "2",
    ]));
    assert!(err.contains(&want), "{err}");
    assert!(!png.exists());

    let out = output(&train_args(
        &cfg,
        &data,
        &work,
        &["--quiet", "--resume", "--n-iters", "9"],
    ));
    let err = one_line_failure(&out);
    assert!(err.contains(&want), "{err}");
}

/// `kill -SIG pid`, as a terminal or a supervisor would send it.
fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// The step `latest.json` of `work` names, if it exists and parses.
fn latest_step(work: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(work.join("checkpoints/latest.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(120), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A second Ctrl-C exits at once with status 130, wherever it lands (mid-step or mid-checkpoint
/// write): never a crash in libtorch's teardown, and the workdir's latest checkpoint loads.
#[test]
fn a_second_ctrl_c_exits_130_without_a_crash_and_leaves_a_loadable_workdir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    let cfg = tiny_config(tmp.path());
    const TRIALS: u64 = 8;
    let mut report = vec![];
    for trial in 0..TRIALS {
        let work = tmp.path().join(format!("run{trial}"));
        // A checkpoint every other step, so the second signal often lands in a write.
        let extra = [
            "--n-iters",
            "100000",
            "--snapshot-freq",
            "2",
            "--snapshot-samples",
            "0",
            "--quiet",
        ];
        let mut child = ncsn()
            .args(train_args(&cfg, &data, &work, &extra))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("a first checkpoint", || latest_step(&work).is_some());
        signal(&child, "-INT");
        std::thread::sleep(Duration::from_micros(400 * trial));
        signal(&child, "-INT");
        let status: ExitStatus = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        report.push(format!("trial {trial}: {status}"));
        assert_eq!(status.code(), Some(130), "{report:?}\n{err}");
        let (meta, _) = checkpoint::load_weights(&work, Weights::Model)
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        assert_eq!(Some(meta.step), latest_step(&work));
        let leftovers: Vec<_> = std::fs::read_dir(work.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        // A temporary file of the write that was cut short may stay; it is never `latest`.
        assert!(leftovers.len() <= 1, "trial {trial}: {leftovers:?}");
    }
}

/// Every checkpoint of a snapshot step has its sample grid: the grid is written before the
/// checkpoint, so a kill right after a checkpoint appears never leaves it without one, and the
/// resumed run has them all.
#[test]
fn a_kill_never_leaves_a_snapshot_checkpoint_without_its_sample_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path());
    // Snapshot sampling (5 levels × 10 steps on 16 images) takes long enough to be caught
    // between a checkpoint and its grid, were the checkpoint written first.
    let cfg = config(
        tmp.path(),
        "batch_size: 16, step_lr: 0.00001, n_steps_each: 10",
    );
    let work = tmp.path().join("run");
    let base = train_args(
        &cfg,
        &data,
        &work,
        &["--quiet", "--snapshot-samples", "16", "--threads", "1"],
    );
    let mut child = ncsn()
        .args(&base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the step-3 checkpoint", || latest_step(&work) == Some(3));
    child.kill().unwrap();
    child.wait().unwrap();
    let grid = |step: u64| work.join(format!("samples/step_{step:08}.png"));
    assert!(grid(3).is_file(), "checkpoint 3 exists without its grid");

    let mut resumed = base.clone();
    resumed.push("--resume".into());
    let out = output(&resumed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(latest_step(&work), Some(6));
    assert!(grid(3).is_file() && grid(6).is_file());
}
