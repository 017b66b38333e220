//! Careless use never costs data (issue 12, part B), through the real binary: one run at a
//! time per `--out`/`--workdir` (the second is refused naming the first's pid, partitions
//! share an `--out`), a workdir with a previous run is not overwritten without `--overwrite`,
//! `--resume` refuses an input, data or shuffle buffer other than the run started with, and
//! an output path that cannot be written fails before any work.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ncsn, ok, run, s};
use testkit::fixtures::{encode, write_cifar, CifarVersion};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Refused in one line, naming `want`.
fn refused(out: &Output, want: &[&str]) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "should have failed: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for w in want {
        assert!(err.contains(w), "`{w}` not in: {err}");
    }
    err
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

/// Polls until `ready` holds, for at most two minutes.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{what} did not happen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Finished shards listed in an ingest journal.
fn journaled(journal: &Path) -> usize {
    std::fs::read_to_string(journal).map_or(0, |t| t.matches("\"index\"").count())
}

// ---------------------------------------------------------------------------------- train

/// An ingested-looking directory of 8×8 images: `train` (24 rows, 2 shards) and `test` (8);
/// `n_train` varies the data.
fn dataset(dir: &Path, n_train: u64) -> PathBuf {
    testkit::datasets::id_dataset(dir, 8, n_train, 2, 8);
    dir.to_path_buf()
}

fn config(dir: &Path) -> std::path::PathBuf {
    common::tiny_config(dir, 6, 3, false)
}

fn train(cfg: &Path, data: &Path, work: &Path, extra: &[&str]) -> Command {
    let mut c = ncsn();
    c.args(["train", "--quiet", "--config", s(cfg), "--data", s(data)])
        .args(["--workdir", s(work)])
        .args(extra);
    c
}

fn logged_steps(work: &Path) -> Vec<u64> {
    trainer::metrics::read(&work.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|r| r.loss.is_some())
        .map(|r| r.step)
        .collect()
}

#[test]
fn a_second_train_on_a_workdir_in_use_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"), 24);
    let (cfg, work) = (config(tmp.path()), tmp.path().join("run"));
    let long = ["--n-iters", "10", "--snapshot-freq", "5"];
    let mut first = train(&cfg, &data, &work, &long)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Paused mid-run, so the second run surely meets it.
    wait_for("the first run's first step", || {
        trainer::metrics::read(&work.join("metrics.jsonl")).is_ok_and(|r| !r.is_empty())
    });
    signal(&first, "-STOP");
    let pid = format!("pid {}, `ncsn train`", first.id());
    for extra in [&long[..], &["--resume"], &["--overwrite"]] {
        let out = train(&cfg, &data, &work, extra).output().unwrap();
        refused(&out, &["_ncsn.lock", &pid, "is using this directory"]);
    }
    signal(&first, "-CONT");
    assert!(first.wait().unwrap().success());
    assert_eq!(logged_steps(&work), (1..=10).collect::<Vec<_>>());
    assert!(work.join("checkpoints/ckpt_00000010.safetensors").is_file());
    assert!(
        !work.join(schemas::output::LOCK_FILE).exists(),
        "the lock goes with its run"
    );
}

#[test]
fn a_plain_train_over_a_previous_run_is_refused_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"), 24);
    let (cfg, work) = (config(tmp.path()), tmp.path().join("run"));
    ok(&train(&cfg, &data, &work, &[]).output().unwrap());
    // Without latest.json the checkpoints and metrics are still a previous run's.
    std::fs::remove_file(work.join("checkpoints/latest.json")).unwrap();
    let ckpt = work.join("checkpoints/ckpt_00000006.safetensors");
    let (before, metrics) = (
        std::fs::read(&ckpt).unwrap(),
        std::fs::read(work.join("metrics.jsonl")).unwrap(),
    );
    let out = train(&cfg, &data, &work, &[]).output().unwrap();
    refused(
        &out,
        &["checkpoints, metrics.jsonl", "--resume", "--overwrite"],
    );
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    assert_eq!(std::fs::read(work.join("metrics.jsonl")).unwrap(), metrics);

    // metrics.jsonl alone (a run killed before its first checkpoint) is kept too.
    std::fs::remove_dir_all(work.join("checkpoints")).unwrap();
    let out = train(&cfg, &data, &work, &[]).output().unwrap();
    refused(&out, &["metrics.jsonl", "--overwrite"]);

    // --overwrite starts over: the old results go, the new run's are whole.
    let out = train(&cfg, &data, &work, &["--overwrite", "--n-iters", "3"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(logged_steps(&work), [1, 2, 3]);
    assert!(!ckpt.exists());
    let out = train(&cfg, &data, &work, &["--overwrite", "--resume"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--overwrite and --resume conflict");
}

#[test]
fn train_resume_refuses_other_data_or_shuffle_buffer_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(&tmp.path().join("data"), 24);
    let other = dataset(&tmp.path().join("other"), 20);
    let (cfg, work) = (config(tmp.path()), tmp.path().join("run"));
    ok(&train(&cfg, &data, &work, &["--n-iters", "3"])
        .output()
        .unwrap());
    let more = ["--resume", "--n-iters", "6"];

    let out = train(&cfg, &other, &work, &more).output().unwrap();
    refused(
        &out,
        &[
            "run.json",
            &format!("--data {}", s(&other)),
            s(&data),
            "sha256",
        ],
    );
    let mut args = more.to_vec();
    args.extend(["--shuffle-buffer", "8"]);
    let out = train(&cfg, &data, &work, &args).output().unwrap();
    refused(&out, &["--shuffle-buffer 8", "--shuffle-buffer 10000"]);
    assert_eq!(logged_steps(&work), [1, 2, 3], "nothing was trained");

    // The same shards in another directory are the same data.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&data).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    ok(&train(&cfg, &copy, &work, &more).output().unwrap());
    assert_eq!(logged_steps(&work), (1..=6).collect::<Vec<_>>());
}

// --------------------------------------------------------------------------------- ingest

fn cifar_args(bin: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["ingest", "cifar10", "--input", s(bin), "--out", s(out)]
        .into_iter()
        .chain(["--shard-rows", "100", "--workers", "1", "--quiet"])
        .map(String::from)
        .collect();
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

#[test]
fn a_second_ingest_into_an_out_in_use_is_refused_and_partitions_share_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 400).unwrap();
    let out = tmp.path().join("out");

    let mut first = ncsn()
        .args(cifar_args(&bin, &out, &[]))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first shard", || {
        journaled(&out.join("_ingest-journal.json")) >= 1
    });
    signal(&first, "-STOP");
    let pid = format!("pid {}, `ncsn ingest cifar10`", first.id());
    // Neither a plain run nor the `--resume` that would fight the running one gets in.
    for extra in [&[][..], &["--resume"], &["--partition", "1/2"]] {
        let o = ncsn().args(cifar_args(&bin, &out, extra)).output().unwrap();
        refused(&o, &["_ncsn.lock", &pid, "is using this directory"]);
    }
    signal(&first, "-CONT");
    assert!(first.wait().unwrap().success());
    ok(&run(&["inspect", s(&out), "--verify", "--quiet"]));
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("split=") && n != "_manifest.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Partitions write one --out side by side; the same partition twice, a whole-directory
    // run or a merge while one runs are refused.
    let parts = tmp.path().join("parts");
    let mut p0 = ncsn()
        .args(cifar_args(&bin, &parts, &["--partition", "0/2"]))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("partition 0's first shard", || {
        journaled(&parts.join("_ingest-journal.part-0-of-2.json")) >= 1
    });
    signal(&p0, "-STOP");
    let pid = format!("pid {}, `ncsn ingest cifar10 --partition 0/2`", p0.id());
    ok(&ncsn()
        .args(cifar_args(&bin, &parts, &["--partition", "1/2"]))
        .output()
        .unwrap());
    let again = ncsn()
        .args(cifar_args(
            &bin,
            &parts,
            &["--partition", "0/2", "--resume"],
        ))
        .output()
        .unwrap();
    refused(&again, &["_ncsn.part-0-of-2.lock", &pid]);
    let whole = ncsn().args(cifar_args(&bin, &parts, &[])).output().unwrap();
    refused(&whole, &["_ncsn.lock", &pid]);
    let merge = run(&["ingest", "merge", s(&parts)]);
    refused(&merge, &["_ncsn.lock", &pid]);
    signal(&p0, "-CONT");
    assert!(p0.wait().unwrap().success());
    ok(&run(&["ingest", "merge", s(&parts)]));
    ok(&run(&["inspect", s(&parts), "--verify", "--quiet"]));
}

/// A folder of `n` distinct PNGs `img_00000.png`, ...
fn image_folder(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let png = encode(40, 40, i, image::ImageFormat::Png);
        std::fs::write(dir.join(format!("img_{i:05}.png")), png).unwrap();
    }
}

#[test]
fn ingest_resume_over_a_changed_input_is_refused_naming_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = (tmp.path().join("images"), tmp.path().join("out"));
    image_folder(&input, 400);
    let args: Vec<&str> = vec![
        "ingest",
        "folder",
        "--input",
        s(&input),
        "--out",
        s(&out),
        "--resolution",
        "16",
        "--shard-rows",
        "20",
        "--workers",
        "1",
        "--quiet",
    ];
    // SIGKILLed after its first shard: the lock dies with it, the journal stays.
    let mut child = ncsn().args(&args).spawn().unwrap();
    wait_for("the first shard", || {
        journaled(&out.join("_ingest-journal.json")) >= 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.join("_ingest-journal.json").is_file());

    std::fs::remove_file(input.join("img_00042.png")).unwrap();
    let smaller = encode(30, 30, 1000, image::ImageFormat::Png);
    let before = std::fs::metadata(input.join("img_00050.png"))
        .unwrap()
        .len();
    std::fs::write(input.join("img_00050.png"), &smaller).unwrap();
    let mut resume = args.clone();
    resume.push("--resume");
    let o = ncsn().args(&resume).output().unwrap();
    let want_size = format!("img_00050.png size {before}→{}", smaller.len());
    refused(
        &o,
        &[
            s(&input),
            "changed since the interrupted run",
            "img_00042.png removed",
            &want_size,
        ],
    );
    assert!(!out.join("_manifest.json").exists(), "nothing was finished");

    // Unchanged since, a resume after a SIGKILL finishes.
    let fresh = tmp.path().join("fresh");
    let mut args = args.clone();
    args[5] = s(&fresh);
    let mut child = ncsn().args(&args).spawn().unwrap();
    wait_for("the first shard", || {
        journaled(&fresh.join("_ingest-journal.json")) >= 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    args.push("--resume");
    ok(&ncsn().args(&args).output().unwrap());
    ok(&run(&["inspect", s(&fresh), "--verify", "--quiet"]));
    assert!(!fresh.join("_ingest-inputs.tsv").exists());
}

// ------------------------------------------------------------------------ early failures

#[test]
fn outputs_that_cannot_be_written_fail_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing_dir");
    // No checkpoint at all: the output is named first, before the model would load.
    let nowhere = tmp.path().join("no-checkpoint.safetensors");
    let png = missing.join("x.png");
    let o = run(&["sample", "--checkpoint", s(&nowhere), "--out", s(&png)]);
    refused(&o, &["--out", s(&png), "does not exist"]);
    let npz = missing.join("s.npz");
    let fine = tmp.path().join("x.png");
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&nowhere),
        "--out",
        s(&fine),
        "--raw",
        s(&npz),
    ]);
    refused(&o, &["--raw", s(&npz), "does not exist"]);
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&nowhere),
        "--out",
        s(tmp.path()),
    ]);
    refused(&o, &["--out", "is a directory"]);

    // calibrate: before the pairwise pass.
    let data = dataset(&tmp.path().join("data"), 24);
    let json = missing.join("c.json");
    let o = run(&["calibrate", "--data", s(&data), "--out", s(&json)]);
    refused(&o, &["--out", s(&json), "does not exist"]);
    let o = run(&[
        "calibrate",
        "--sigma-begin",
        "50",
        "--dims",
        "3072",
        "--out",
        s(&json),
    ]);
    refused(&o, &["--out", s(&json), "does not exist"]);

    // inspect: before --verify reads the shards.
    let grid = missing.join("g.png");
    let o = run(&["inspect", s(&data), "--verify", "--grid", s(&grid)]);
    refused(&o, &["--grid", s(&grid), "does not exist"]);
    assert!(!missing.exists());

    // train and ingest: a workdir/--out that cannot be created is named before any work.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let cfg = config(tmp.path());
    let o = train(&cfg, &data, &file.join("run"), &[]).output().unwrap();
    refused(&o, &[s(&file.join("run"))]);
    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 10).unwrap();
    let o = ncsn()
        .args(cifar_args(&bin, &file.join("out"), &[]))
        .output()
        .unwrap();
    refused(&o, &[s(&file.join("out"))]);
}
