//! How `ncsn` ends when something outside it asks: SIGTERM (Slurm preemption, `timeout`,
//! `docker stop`, torchrun) stops `train` as cleanly as Ctrl-C does, with a resumable
//! checkpoint and status 143, and a reader that closes the pipe early (`| head`) ends a
//! command quietly instead of a "Broken pipe" panic.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{losses, ncsn, train_args};

fn config(dir: &Path) -> std::path::PathBuf {
    common::tiny_config(dir, 6, 3, true)
}

fn with_n_iters(args: &[String], n: u64) -> Vec<String> {
    let mut args = args.to_vec();
    let i = args.iter().position(|a| a == "--n-iters").unwrap();
    args[i + 1] = n.to_string();
    args
}

/// SIGTERM mid-run: the step in flight finishes, its checkpoint is written, the exit status is
/// 143 with a `--resume` hint naming the signal, and the resumed run's losses are bit for bit
/// those of a run never stopped (CPU). Both runs are the one command a requeued job repeats,
/// `--resume auto`: the first starts (nothing to continue), the second continues.
#[test]
fn sigterm_checkpoints_and_resume_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
    let cfg = config(tmp.path());
    let (work, whole) = (tmp.path().join("run"), tmp.path().join("whole"));
    let extra = common::UNTIL_STOPPED;
    let base = train_args(&cfg, &data, &work, &extra);
    let requeued = [base.clone(), vec!["--resume".into(), "auto".into()]].concat();
    let child = ncsn()
        .args(&requeued)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while trainer::metrics::read(&work.join("metrics.jsonl")).map_or(0, |r| r.len()) < 3 {
        assert!(t0.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("stopped by SIGTERM at step") && err.contains("--resume"),
        "{err}"
    );
    let latest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("checkpoints/latest.json")).unwrap(),
    )
    .unwrap();
    let stopped = latest["step"].as_u64().unwrap();
    assert_eq!(losses(&work).last().map(|l| l.0), Some(stopped));

    // Resume to three steps past the stop; a second workdir runs the same steps without a stop.
    let end = stopped + 3;
    let out = ncsn().args(with_n_iters(&requeued, end)).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = ncsn()
        .args(with_n_iters(&train_args(&cfg, &data, &whole, &extra), end))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (got, want) = (losses(&work), losses(&whole));
    assert_eq!(
        got.iter().map(|l| l.0).collect::<Vec<_>>(),
        (1..=end).collect::<Vec<_>>()
    );
    assert_eq!(got, want, "losses after a SIGTERM and --resume");
}

/// `--resume auto` in a workdir that a run left before its first checkpoint (killed at once,
/// say): it starts over instead of refusing the leftovers, as a requeued job must; plain
/// `--resume` there still says there is nothing to continue.
#[test]
fn resume_auto_starts_over_without_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 24, 2, 8);
    let cfg = config(tmp.path());
    let work = tmp.path().join("run");
    std::fs::create_dir_all(work.join("checkpoints")).unwrap();
    std::fs::write(work.join("metrics.jsonl"), "{\"step\":1,\"loss\":1.0}\n").unwrap();
    let run = |extra: &[&str]| {
        let args = [
            &["--n-iters", "2", "--snapshot-samples", "0", "--quiet"],
            extra,
        ]
        .concat();
        ncsn()
            .args(train_args(&cfg, &data, &work, &args))
            .output()
            .unwrap()
    };
    let out = run(&["--resume"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no checkpoint"));
    let out = run(&["--resume", "auto"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        losses(&work).iter().map(|l| l.0).collect::<Vec<_>>(),
        [1, 2]
    );
}

/// `ncsn … | head -1`: a reader that closes the pipe early ends ncsn quietly, killed by SIGPIPE
/// like any Unix filter, not a "Broken pipe" panic (exit 101) on stderr. `model-info` prints
/// with `println!`, line by line (clap's own `--help` already swallowed the error).
#[test]
fn a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let args = ["model-info", "--config", cfg.to_str().unwrap()];
    let mut child = ncsn()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end before ncsn writes (it loads libtorch first): its first line meets a
    // closed pipe, as the second does behind `head -1`.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGPIPE),
        "{status}: {err}"
    );

    // Through a shell, as a person types it.
    for line in [
        format!(
            "'{}' model-info --config '{}' | head -1",
            env!("CARGO_BIN_EXE_ncsn"),
            args[2]
        ),
        format!("'{}' --help | head -1", env!("CARGO_BIN_EXE_ncsn")),
    ] {
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &line])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{line}: {err}");
        assert_ne!(out.status.code(), Some(101), "{line}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            1,
            "{line}"
        );
    }
}
