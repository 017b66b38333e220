//! End-to-end `ncsn ingest` on hostile input: decompression bombs are rejected and listed while
//! the run goes on, `--max-pixels` moves the limit without touching `--resume`, numeric flags
//! outside their range and an empty or escaping CelebA partition file are refused in one line.

mod common;

use std::path::Path;

use common::{ncsn, ok, run, s};
use image::ImageFormat;
use testkit::fixtures::{encode, write_celeba};
use testkit::hostile::{jpeg_claiming, png_claiming};

/// stderr of a run that must fail.
fn refused(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "ncsn {}: succeeded", args.join(" "));
    err
}

fn rejected(out: &Path) -> Vec<(String, String)> {
    let m = shards::Dataset::open(out).unwrap().manifest;
    m.splits["train"]
        .rejected
        .iter()
        .map(|r| (r.key.clone(), r.reason.clone()))
        .collect()
}

#[test]
fn bombs_are_rejected_and_listed_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a_bomb.png"), png_claiming(100_000, 100_000)).unwrap();
    std::fs::write(dir.join("b_bomb.jpg"), jpeg_claiming(65_000, 65_000)).unwrap();
    std::fs::write(dir.join("c_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("d_ok.png"), encode(40, 30, 3, ImageFormat::Png)).unwrap();
    let out = tmp.path().join("out");
    let args = [
        "ingest",
        "folder",
        "--input",
        s(&dir),
        "--out",
        s(&out),
        "--resolution",
        "16",
        "--workers",
        "1",
    ];
    // Before: the PNG aborted the process (exit 134, no manifest), the JPEG took 37 s and
    // 12.7 GB and was accepted as a grey image.
    let text = ok(&run(&args));
    assert!(
        text.contains("train 1 images") && text.contains("3 rejected"),
        "{text}"
    );
    let bomb = |w: u64, h: u64| {
        format!(
            "image is {w}x{h} = {} pixels, over the --max-pixels limit of 178956970 \
             (a decompression bomb?)",
            w * h
        )
    };
    assert_eq!(
        rejected(&out),
        [
            ("a_bomb.png".to_string(), bomb(100_000, 100_000)),
            ("b_bomb.jpg".to_string(), bomb(65_000, 65_000)),
            (
                "c_empty.jpg".to_string(),
                "empty file (0 bytes)".to_string()
            ),
        ]
    );

    // The limit is the user's: at 1000 pixels the 40×30 image goes too, named with the limit.
    let low = tmp.path().join("low");
    let mut args_low = args.to_vec();
    args_low[5] = s(&low);
    args_low.extend(["--max-pixels", "1000"]);
    ok(&run(&args_low));
    let reasons = rejected(&low);
    assert_eq!(reasons.len(), 4);
    assert_eq!(
        reasons[3].1,
        "image is 40x30 = 1200 pixels, over the --max-pixels limit of 1000 (a decompression bomb?)"
    );

    // It never changes an accepted image's bytes, so it is no option a --resume compares.
    let mut again = args.to_vec();
    again.extend(["--resume", "--max-pixels", "5000"]);
    let text = ok(&run(&again));
    assert!(text.contains("already complete"), "{text}");
}

#[test]
fn numeric_flags_out_of_range_are_refused_naming_the_flag_and_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ok.png"), encode(40, 30, 3, ImageFormat::Png)).unwrap();
    let out = tmp.path().join("out");
    let mut cases = vec![
        ("folder", "--resolution", "0", "1..=4096"),
        ("folder", "--resolution", "100000", "1..=4096"),
        ("folder", "--workers", "100000", "0..=1024"),
        ("folder", "--writers", "5000", "0..=1024"),
        ("folder", "--limit", "0", "at least 1"),
        ("folder", "--shard-rows", "0", "at least 1"),
        ("folder", "--max-pixels", "0", "at least 1"),
    ];
    // Before: CelebA panicked at 0, LSUN and folders rejected every image and exited 0, and
    // 100000 aborted allocating one 30 GB output image. (Clap checks before any input is
    // read, so the folder stands in for each dataset's input.)
    for dataset in ["celeba", "lsun", "ffhq"] {
        cases.push((dataset, "--resolution", "0", "1..=4096"));
    }
    for (dataset, flag, value, want) in cases {
        let err = refused(&[
            "ingest",
            dataset,
            "--input",
            s(&dir),
            "--out",
            s(&out),
            flag,
            value,
        ]);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains(&format!("'{value}' for '{flag} <N>'")) && first.contains(want),
            "{dataset} {flag} {value}: {err}"
        );
    }
    assert!(!out.exists(), "a refused run wrote {}", out.display());
    let err = refused(&[
        "ingest",
        "cifar10",
        "--input",
        s(&dir),
        "--out",
        s(&out),
        "--max-pixels",
        "100",
    ]);
    assert!(err.contains("--max-pixels does not apply"), "{err}");
}

#[test]
fn an_empty_or_escaping_celeba_partition_file_is_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let celeba = tmp.path().join("celeba");
    write_celeba(&celeba, 3).unwrap();
    let list = celeba.join("list_eval_partition.txt");
    let out = tmp.path().join("out");
    let args = ["ingest", "celeba", "--input", s(&celeba), "--out", s(&out)];
    for (text, want) in [
        ("", "lists no images (empty file)"),
        (
            "000001.jpg 0\n../../../etc/hostname 1\n",
            "line 2: `../../../etc/hostname`",
        ),
        ("/etc/hostname 0\n", "line 1: `/etc/hostname`"),
    ] {
        std::fs::write(&list, text).unwrap();
        let err = refused(&args);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(s(&list)) && err.contains(want),
            "{text:?}: {err}"
        );
    }
    // The images are not the problem: with a good list the same folder ingests.
    std::fs::write(&list, "000001.jpg 0\n000002.jpg 0\n").unwrap();
    let text = ok(&ncsn().args(args).output().unwrap());
    assert!(text.contains("train 2 images"), "{text}");
}
