//! Helpers shared by the end-to-end tests of the `ncsn` binary (each test file is its own crate,
//! so not every file uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `ncsn` binary built for these tests.
pub fn ncsn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ncsn"))
}

pub fn run(args: &[&str]) -> Output {
    ncsn().args(args).output().unwrap()
}

/// stdout of a run that must have succeeded (stdout and stderr shown otherwise).
pub fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ncsn failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[allow(unused_imports)]
pub use testkit::python::{py, python};

/// stdout then stderr of `ncsn ARGS`, which must succeed (both shown otherwise).
pub fn ok_text(args: &[&str]) -> String {
    let out = run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ncsn {}: failed\n{text}",
        args.join(" ")
    );
    text
}

/// The ```` ```python ```` blocks of the README section whose heading line is `heading` (up to
/// the next heading of the same or a higher level), in order: tests run them as written, so
/// the documented code cannot rot.
pub fn readme_python_blocks(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let level = heading.split(' ').next().unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "README.md has no `{heading}`");
    let mut blocks = vec![];
    let mut block: Option<String> = None;
    for line in lines {
        match (&mut block, line) {
            (None, "```python") => block = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {
                let hashes = line.split(' ').next().unwrap_or_default();
                if !hashes.is_empty()
                    && hashes.chars().all(|c| c == '#')
                    && hashes.len() <= level.len()
                {
                    break;
                }
            }
        }
    }
    blocks
}

/// A tiny training config in `dir/tiny.yml`: 8×8 images, ngf 4, 5 noise scales, batch 4, the
/// given steps and snapshots. The tests that train through the binary share it.
pub fn tiny_config(
    dir: &Path,
    n_iters: u64,
    snapshot_freq: u64,
    snapshot_sampling: bool,
) -> std::path::PathBuf {
    let p = dir.join("tiny.yml");
    std::fs::write(
        &p,
        format!(
            r#"
training: {{batch_size: 4, n_iters: {n_iters}, snapshot_freq: {snapshot_freq}, snapshot_sampling: {snapshot_sampling}}}
sampling: {{batch_size: 4, step_lr: 0.00001, n_steps_each: 2}}
data: {{dataset: "TEST", image_size: 8, channels: 3}}
model: {{sigma_begin: 10, num_classes: 5, sigma_end: 0.01, normalization: InstanceNorm++, nonlinearity: elu, ngf: 4}}
optim: {{optimizer: Adam, lr: 0.001}}
"#
        ),
    )
    .unwrap();
    p
}

/// pytorch-fid's FID Inception network with seeded random weights, saved as its `.pth` in
/// `dir` (scripts/fid_random_weights.py): the real weights cannot be downloaded in tests.
pub fn random_inception_weights(dir: &Path) -> std::path::PathBuf {
    let w = dir.join("weights.pth");
    let o = Command::new(python())
        .arg(testkit::python::workspace_root().join("scripts/fid_random_weights.py"))
        .arg("--out")
        .arg(&w)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    w
}

/// A small CIFAR-10-format dataset made by `ncsn synth` and ingested into `dir/shards`.
pub fn cifar_shards(dir: &Path, n_train: usize, n_test: usize) -> std::path::PathBuf {
    cifar_shards_with(dir, n_train, n_test, &[])
}

/// [`cifar_shards`] with more `ncsn ingest` flags (e.g. `--shard-rows 64`).
pub fn cifar_shards_with(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    ingest: &[&str],
) -> std::path::PathBuf {
    let synth = dir.join("synth");
    let data = dir.join("shards");
    let (train, test) = (n_train.to_string(), n_test.to_string());
    ok(&run(&[
        "synth",
        "cifar10",
        "--out",
        s(&synth),
        "--n-train",
        &train,
        "--n-test",
        &test,
    ]));
    let input = synth.join("cifar-10-batches-bin");
    let mut args = vec!["ingest", "cifar10", "--input", s(&input), "--out", s(&data)];
    args.extend(ingest);
    ok(&run(&args));
    data
}

/// The error line of `ncsn ARGS`, which must fail with exactly one line on stderr besides
/// warnings and notes, starting with `error: `.
pub fn one_line_error(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "ncsn {} succeeded", args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: ") && !l.starts_with("note: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with("error: "), "{stderr}");
    errors[0].to_string()
}

/// `ncsn train --config CFG --data DATA --workdir WORK EXTRA...` as arguments.
pub fn train_args(cfg: &Path, data: &Path, work: &Path, extra: &[&str]) -> Vec<String> {
    let paths = [("--config", cfg), ("--data", data), ("--workdir", work)];
    let mut args = vec!["train".to_string()];
    for (flag, p) in paths {
        args.extend([flag.to_string(), p.display().to_string()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// Runs `ncsn train` with [`train_args`].
pub fn run_train(cfg: &Path, data: &Path, work: &Path, extra: &[&str]) -> Output {
    ncsn()
        .args(train_args(cfg, data, work, extra))
        .output()
        .unwrap()
}

/// Flags of a training run that goes on until a signal stops it: no snapshot of its own, a
/// metrics line every step.
pub const UNTIL_STOPPED: [&str; 9] = [
    "--n-iters",
    "100000",
    "--snapshot-freq",
    "100000",
    "--snapshot-samples",
    "0",
    "--log-every",
    "1",
    "--quiet",
];

/// (step, loss) of every metrics line of a training workdir with a loss.
pub fn losses(work: &Path) -> Vec<(u64, f64)> {
    trainer::metrics::read(&work.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter_map(|r| r.loss.map(|l| (r.step, l)))
        .collect()
}
