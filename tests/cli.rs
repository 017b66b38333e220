//! End-to-end checks of the `ncsn` binary's surface: help, doctor, errors.

use std::process::Command;

fn ncsn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ncsn"))
}

/// The `Commands:` section of clap's help: each subcommand's name and its summary (wrapped
/// summary lines joined).
fn commands(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    let section = help
        .lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty());
    for line in section {
        let entry = line
            .strip_prefix("  ")
            .filter(|rest| !rest.starts_with(' '));
        match (entry, out.last_mut()) {
            (Some(entry), _) => {
                let (name, summary) = entry.split_once(' ').unwrap_or((entry, ""));
                out.push((name.to_string(), summary.trim().to_string()));
            }
            (None, Some((_, summary))) => {
                summary.push(' ');
                summary.push_str(line.trim());
            }
            (None, None) => panic!("a continuation line before any command: {line:?}"),
        }
    }
    // clap ends a summary with the visible aliases (`fid ... [alias: evaluate]`).
    for (_, summary) in &mut out {
        if let Some(at) = summary.find(" [alias") {
            summary.truncate(at);
        }
    }
    out
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[test]
fn help_lists_every_subcommand() {
    let out = ncsn().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let listed = commands(&text);
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest",
            "inspect",
            "export",
            "calibrate",
            "train",
            "sample",
            "fid-stats",
            "fid",
            "neighbours",
            "model-info",
            "doctor",
            "synth",
            "help"
        ],
        "the Commands: section of --help:\n{text}"
    );
    for (name, summary) in listed.iter().filter(|(n, _)| n != "help") {
        assert!(!summary.is_empty(), "{name} has no summary in --help");
        let out = ncsn().args([name, "--help"]).output().unwrap();
        let own = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "ncsn {name} --help failed");
        assert!(
            words(&own).starts_with(&words(summary)),
            "ncsn {name} --help does not start with {summary:?}:\n{own}"
        );
    }
}

/// `ncsn` (the front-end) and `ncsn-torch` declare one command line (src/cli.rs): the same
/// top-level help, and `ncsn help X` is `ncsn X --help` for the subcommands that `ncsn-torch`
/// runs too.
#[test]
fn both_binaries_tell_the_same_help() {
    let help = |exe: &str, args: &[&str]| {
        let out = Command::new(exe).args(args).output().unwrap();
        assert!(out.status.success(), "{exe} {args:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .replace("ncsn-torch", "ncsn")
    };
    let (front, tensor) = (env!("CARGO_BIN_EXE_ncsn"), env!("CARGO_BIN_EXE_ncsn-torch"));
    assert_eq!(help(front, &["--help"]), help(tensor, &["--help"]));
    assert_eq!(help(front, &["-h"]), help(tensor, &["-h"]));
    for name in ["train", "ingest", "evaluate"] {
        assert_eq!(help(front, &["help", name]), help(front, &[name, "--help"]));
        assert_eq!(
            help(front, &[name, "--help"]),
            help(tensor, &[name, "--help"])
        );
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
    assert!(text.contains("parallel  gloo (CPU), "), "{text}");
    assert!(text.contains("check Cpu: 256x256 matmul ok"), "{text}");
    assert!(
        text.contains("check gloo: one-rank all-reduce on Cpu ok"),
        "{text}"
    );
}

#[test]
fn unknown_subcommand_fails_with_nonzero_exit() {
    let out = ncsn().arg("frobnicate").output().unwrap();
    assert!(!out.status.success());
}

/// Out-of-range numbers are refused by the parser, naming the flag, before any work starts
/// (no panic, no division by zero, no 160× slower run).
#[test]
fn zero_and_out_of_range_options_are_refused_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["calibrate", "--data", "d", "--median-pairs", "0"],
            "--median-pairs",
        ),
        (
            &["calibrate", "--data", "d", "--block-rows", "0"],
            "--block-rows",
        ),
        (
            &["inspect", "d", "--grid", "g.png", "--grid-images", "0"],
            "--grid-images",
        ),
        (
            &[
                "train",
                "--config",
                "c",
                "--data",
                "d",
                "--workdir",
                "w",
                "--shuffle-buffer",
                "0",
            ],
            "--shuffle-buffer",
        ),
        (
            &[
                "train",
                "--config",
                "c",
                "--data",
                "d",
                "--workdir",
                "w",
                "--prefetch",
                "0",
            ],
            "--prefetch",
        ),
        (
            &[
                "train",
                "--config",
                "c",
                "--data",
                "d",
                "--workdir",
                "w",
                "--log-every",
                "0",
            ],
            "--log-every",
        ),
        (
            &[
                "train",
                "--config",
                "c",
                "--data",
                "d",
                "--workdir",
                "w",
                "--threads=-2",
            ],
            "--threads",
        ),
        (
            &["sample", "--workdir", "w", "--out", "o.png", "--n", "0"],
            "--n",
        ),
        (
            &["sample", "--workdir", "w", "--out", "o.png", "--nrow", "0"],
            "--nrow",
        ),
        (
            &[
                "sample",
                "--workdir",
                "w",
                "--out",
                "o.png",
                "--interpolate",
                "0",
            ],
            "--interpolate",
        ),
        (
            &["sample", "--workdir", "w", "--out", "o.png", "--rows", "0"],
            "--rows",
        ),
        (
            &["sample", "--workdir", "w", "--out", "o.png", "--threads=-1"],
            "--threads",
        ),
        (
            &[
                "fid",
                "--samples",
                "s.npz",
                "--stats",
                "t.npz",
                "--splits",
                "0",
            ],
            "--splits",
        ),
        (
            &["fid-stats", "--data", "d", "--batch-size", "0"],
            "--batch-size",
        ),
        (&["fid-stats", "--data", "d", "--threads=-1"], "--threads"),
        (
            &["synth", "cifar10", "--out", "o", "--n-train", "0"],
            "--n-train",
        ),
        (
            &["synth", "cifar10", "--out", "o", "--n-test", "0"],
            "--n-test",
        ),
    ];
    for (args, flag) in cases {
        let out = ncsn().args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(flag) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn an_infinite_sigma_begin_is_refused() {
    let out = ncsn()
        .args([
            "calibrate",
            "--sigma-begin",
            "inf",
            "--dims",
            "3072",
            "--out",
        ])
        .arg(std::env::temp_dir().join("ncsn-never-written.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("finite"), "{err}");
}
