//! Progress where nobody watches a terminal: with stderr captured (a batch job's log), `train`
//! prints a plain line every --print-every steps instead of a bar, and nothing with --quiet.

mod common;

use std::path::Path;
use std::process::Command;

fn config(dir: &Path) -> std::path::PathBuf {
    common::tiny_config(dir, 10, 100, false)
}

#[test]
fn train_prints_plain_step_lines_into_a_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
    let cfg = config(tmp.path());
    let train = |work: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ncsn"))
            .args(["train", "--config", cfg.to_str().unwrap()])
            .args(["--data", data.to_str().unwrap()])
            .args(["--workdir", tmp.path().join(work).to_str().unwrap()])
            .args(["--snapshot-samples", "0", "--print-every", "4"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let err = train("a", &[]);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(lines.len(), 3, "steps 4, 8 and the last, 10: {err}");
    for (line, step) in lines.iter().zip([4, 8, 10]) {
        let prefix = format!("step {step}/10  loss ");
        assert!(line.starts_with(&prefix), "{line}");
        assert!(line.contains(" steps/s  eta "), "{line}");
    }
    assert!(
        !err.contains(['\r', '\x1b']),
        "no bar drawn into a log: {err:?}"
    );

    let err = train("b", &["--quiet"]);
    assert!(!err.contains("step "), "{err}");
}
