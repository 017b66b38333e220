//! `ncsn export webdataset`, read back by the `webdataset` package: every row of every split
//! once, pixels equal to the shard's (lossless PNG), metadata and labels; the README's example
//! as written; the same bytes from a second export; refusals in one line.

mod common;

use common::{ok, python, readme_python_blocks, run, s};
use schemas::layout::Layout;

/// Reads `out`'s tars with `webdataset` and compares each sample with the shard rows of `root`.
const CHECK: &str = r#"
import json, sys, tarfile
import numpy as np, pyarrow.parquet as pq, webdataset as wds

root, out, readme = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(f"{root}/_manifest.json"))
for split, sm in m["splits"].items():
    rows = [r for e in sm["shards"] for r in pq.read_table(f"{root}/{e['file']}").to_pylist()]
    n_tars = len([f for f in __import__("os").listdir(out) if f.startswith(f"{split}-")])
    urls = f"{out}/{split}-{{000000..{n_tars - 1:06d}}}.tar"
    got = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))
    assert len(got) == len(rows), (split, len(got), len(rows))
    for sample, row in zip(got, rows):
        assert sample["__key__"] == f"{row['id']:09d}", sample["__key__"]
        want = np.frombuffer(row["pixels"], np.uint8).reshape(m["height"], m["width"], 3)
        assert sample["png"].dtype == np.uint8 and np.array_equal(sample["png"], want), sample["__key__"]
        meta = sample["json"]
        assert meta == {"id": row["id"], "key": row["key"], "label": row["label"], "split": split,
                        "dataset": m["dataset"]}, meta
        if row["label"] is None:
            assert "cls" not in sample, sample.keys()
        else:
            assert sample["cls"] == row["label"], sample["cls"]
    # Plain tar files: members in id order, no timestamps.
    with tarfile.open(f"{out}/{split}-000000.tar") as t:
        members = t.getmembers()
        assert all(x.mtime == 0 and x.mode == 0o644 for x in members)
        assert [x.name for x in members][:2] == ["000000000.png", "000000000.json"], members[:2]
    print(f"{split}: {len(got)} samples in {n_tars} tars ok")
if readme:
    code = open(readme).read()
    assert code.count("wds/cifar10/train-{000000..000004}.tar") == 1, code
    ns = {}
    exec(code.replace("wds/cifar10/train-{000000..000004}.tar", f"{out}/train-{{000000..000004}}.tar"), ns)
    first = [r for e in m["splits"]["train"]["shards"][:1]
             for r in pq.read_table(f"{root}/{e['file']}").to_pylist()][0]
    assert ns["meta"]["id"] == 0 and ns["image"].tobytes() == first["pixels"], ns["meta"]
    print("README example ok")
"#;

fn check(root: &std::path::Path, out: &std::path::Path, readme: &str) {
    let o = std::process::Command::new(python())
        .args(["-c", CHECK, s(root), s(out), readme])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    println!("{text}");
}

fn export(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", "webdataset", "--data", s(data), "--out", s(out)];
    args.extend(extra);
    run(&args)
}

fn one_line_error(o: &std::process::Output) -> String {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn webdataset_export_reads_back_with_the_webdataset_package() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::cifar_shards_with(tmp.path(), 230, 20, &["--shard-rows", "64"]);
    let out = tmp.path().join("wds");
    let text = ok(&export(&root, &out, &["--samples-per-shard", "50"]));
    assert!(
        text.contains("train: 230 samples in 5 tar files: ")
            && text.contains("train-{000000..000004}.tar")
            && text.contains("test: 20 samples in 1 tar file: "),
        "{text}"
    );
    let readme = tmp.path().join("readme_export.py");
    let blocks = readme_python_blocks("### ncsn export");
    assert_eq!(blocks.len(), 1);
    std::fs::write(&readme, &blocks[0]).unwrap();
    check(&root, &out, s(&readme));

    // Deterministic: a second export (one split) is the same bytes.
    let again = tmp.path().join("again");
    ok(&export(
        &root,
        &again,
        &["--samples-per-shard", "50", "--split", "train"],
    ));
    for k in 0..5 {
        let name = shards::tar_name("train", k);
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert!(!again.join("test-000000.tar").exists());

    // Refused in one line: tars already there, the dataset itself, a split it lacks.
    let err = one_line_error(&export(&root, &out, &["--samples-per-shard", "50"]));
    assert!(err.contains("test-000000.tar: already exists"), "{err}");
    let err = one_line_error(&export(&root, &root, &[]));
    assert!(err.contains("the dataset's own directory"), "{err}");
    let err = one_line_error(&export(&root, &tmp.path().join("x"), &["--split", "valid"]));
    assert!(err.contains("no split `valid`"), "{err}");
}

/// A dataset without labels (no `.cls` members) in the flat layout of earlier versions.
#[test]
fn unlabelled_flat_datasets_export_too() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    testkit::datasets::id_dataset_in(&root, Layout::Split, 8, 40, 3, 5);
    let out = tmp.path().join("wds");
    ok(&export(&root, &out, &[]));
    check(&root, &out, "");
    // The flat layout exports to the same tars.
    testkit::datasets::flatten(&root);
    let flat = tmp.path().join("flat");
    ok(&export(&root, &flat, &[]));
    for name in ["train-000000.tar", "test-000000.tar"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(flat.join(name)).unwrap()
        );
    }
}
