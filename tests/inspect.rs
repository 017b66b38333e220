//! End-to-end `ncsn inspect`: the description, `--verify` catching a changed shard by name,
//! `--grid` writing a make_grid PNG of the first 64 images, both directory layouts.

mod common;

use common::{ok, run, s};
use testkit::fixtures::{pattern, write_cifar, CifarVersion};

#[test]
fn inspect_verify_and_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 16).unwrap();
    let out = tmp.path().join("out");
    ok(&run(&[
        "ingest",
        "cifar10",
        "--input",
        s(&bin),
        "--out",
        s(&out),
        "--shard-rows",
        "30",
    ]));

    let grid = tmp.path().join("grid.png");
    let text = ok(&run(&["inspect", s(&out), "--verify", "--grid", s(&grid)]));
    assert!(
        text.contains("cifar10") && text.contains("32x32x3"),
        "{text}"
    );
    assert!(text.contains("split train  80 images, 3 shards"), "{text}");
    assert!(text.contains("split test   16 images, 1 shards"), "{text}");
    assert!(text.contains("verified: 4 shards"), "{text}");

    // 64 images, 8 per row, padding 2: 8 * (32 + 2) + 2 = 274 square.
    let img = pipeline::decode(&std::fs::read(&grid).unwrap()).unwrap();
    assert_eq!((img.width, img.height), (274, 274));
    // Image 9 sits in row 1, column 1; its pixel (0, 0) is at (2 + 34, 2 + 34).
    let want = pattern(32, 32, 9);
    let at = (36 * 274 + 36) * 3;
    assert_eq!(&img.data[at..at + 3], &want[..3]);

    // The flat layout of earlier versions (manifest.json beside the shards) is read alike.
    testkit::datasets::flatten(&out);
    let flat = ok(&run(&["inspect", s(&out), "--verify"]));
    let note = "  layout      flat, as earlier ncsn versions wrote it";
    assert!(flat.contains(note) && !text.contains(note), "{flat}");
    let flat: String = flat
        .lines()
        .filter(|l| !l.starts_with(note))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.starts_with(&flat), "{flat}");

    // Flip one byte of a shard: --verify fails naming it.
    let shard = out.join("train-00001.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let r = run(&["inspect", s(&out), "--verify"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(
        err.contains("train-00001.parquet") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn inspect_of_a_directory_without_manifest_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&["inspect", s(tmp.path())]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("no _manifest.json (nor the manifest.json of earlier versions)"),
        "{err}"
    );
}
