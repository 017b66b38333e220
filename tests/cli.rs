//! End-to-end checks of the `ncsn` binary's surface: help, doctor, errors.

use std::process::Command;

fn ncsn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ncsn"))
}

#[test]
fn help_lists_every_subcommand() {
    let out = ncsn().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in [
        "ingest",
        "inspect",
        "calibrate",
        "train",
        "sample",
        "model-info",
        "doctor",
    ] {
        assert!(text.contains(sub), "--help does not mention {sub}:\n{text}");
    }
}

#[test]
fn doctor_reports_libtorch_and_cuda() {
    let out = ncsn().args(["doctor", "--check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tch       0.24.0"), "{text}");
    assert!(
        text.contains("libtorch  2.11.0"),
        "libtorch version not found:\n{text}"
    );
    assert!(text.contains("cuda"), "{text}");
    assert!(text.contains("check Cpu: 256x256 matmul ok"), "{text}");
}

#[test]
fn unknown_subcommand_fails_with_nonzero_exit() {
    let out = ncsn().arg("frobnicate").output().unwrap();
    assert!(!out.status.success());
}
