//! End-to-end checks of `ncsn calibrate`: without data, on a small ingested directory, and
//! the one-line errors on bad input.

use std::path::Path;
use std::process::{Command, Output};

use schemas::calibration::Calibration;
use schemas::JsonDocument;

fn ncsn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ncsn"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` pseudo-random 8×8 RGB images in two shards, as `ncsn ingest` lays them out.
fn dataset(dir: &Path, n: u64) {
    testkit::datasets::random_dataset(dir, 8, 8, n as usize, n.div_ceil(2) as usize, 7);
}

#[test]
fn without_data_it_computes_the_schedule_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("cal.json");
    let out = ncsn(&[
        "calibrate",
        "--sigma-begin",
        "50",
        "--dims",
        "3072",
        "--overlap",
        "0.567",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let c = Calibration::read(&out_path).unwrap();
    // Table 4's CIFAR-10 row plus the one scale SPEC §5's formula adds (calibrate/tests/table4.rs).
    assert_eq!((c.num_classes, c.n_steps_each, c.dims), (233, 5, 3072));
    assert_eq!(format!("{:.1e}", c.step_lr), "6.2e-6");
    assert!(c.max_pair.is_none() && c.n.is_none());
    assert!(
        stdout.contains("Technique 2") && stdout.contains("Eq. 4"),
        "{stdout}"
    );
    assert!(stdout.contains("cal.json"), "{stdout}");
}

#[test]
fn with_data_it_writes_next_to_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 30);
    let out = ncsn(&[
        "--quiet",
        "calibrate",
        "--data",
        dir.path().to_str().unwrap(),
        "--device",
        "cpu",
        "--block-rows",
        "7",
        "--steps-each",
        "3",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let c = Calibration::read(&dir.path().join("_calibration.json")).unwrap();
    let p = c.max_pair.as_ref().unwrap();
    assert!(p.id_a < p.id_b && p.id_b < 30);
    assert_eq!(p.key_a, format!("img{}.png", p.id_a));
    assert_eq!(
        (c.sigma_begin, c.n, c.dims, c.n_steps_each),
        (p.distance, Some(30), 192, 3)
    );
    let st = c.stats.as_ref().unwrap();
    assert_eq!(st.median_method, "exact over all 435 pairs");
    assert!(st.median_pairwise_distance < p.distance);
    assert!(
        stdout.contains("max pair") && stdout.contains(&p.key_a),
        "{stdout}"
    );
}

#[test]
fn bad_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = ncsn(&["calibrate", "--data", missing.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing") && stderr.contains("no such directory"),
        "{stderr}"
    );

    let out = ncsn(&[
        "calibrate",
        "--sigma-begin",
        "50",
        "--dims",
        "3072",
        "--overlap",
        "1.5",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--overlap 1.5"), "{stderr}");

    // --sigma-begin without --dims, and neither data nor σ₁: clap explains.
    assert!(!ncsn(&["calibrate", "--sigma-begin", "50"]).status.success());
    assert!(!ncsn(&["calibrate"]).status.success());

    // --block-rows 0 would make the pairwise pass crawl one image at a time: refused.
    let data = tempfile::tempdir().unwrap();
    dataset(data.path(), 4);
    let out = ncsn(&[
        "calibrate",
        "--data",
        data.path().to_str().unwrap(),
        "--block-rows",
        "0",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--block-rows"), "{stderr}");
}
