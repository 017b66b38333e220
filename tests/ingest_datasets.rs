//! End-to-end `ncsn ingest` for CelebA (folder and zip), LSUN (LMDB of WebP and JPEG values),
//! FFHQ (PNG tree) and an image folder: the binary's shards hold exactly what Pillow computes
//! for the recipe of SPEC §3 on every row, the splits and counts are the dataset's, and bad
//! input (a corrupt image, a missing partition file, a directory that is not an LMDB, an image
//! smaller than the crop) is reported the way SPEC §8 asks.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python, run, s};

use schemas::manifest::Manifest;
use schemas::JsonDocument;
use testkit::fixtures::{encode, write_celeba, write_ffhq, write_lmdb, zip_celeba};

fn ok(args: &[&str]) -> String {
    common::ok(&run(args))
}

/// Runs `ncsn` expecting failure; returns stderr, asserting it is one line.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "ncsn {args:?} should fail");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err
}

/// The Pillow side of SPEC §3, then a row-by-row comparison with the shards in `out`:
/// `sources` maps each shard key to the file (or LMDB value dumped to a file) it came from.
const CHECK: &str = r#"
import json, sys
import pyarrow.parquet as pq
from PIL import Image

recipe, out, sources = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
size = int(sys.argv[4])

def resize_short(im, s, method):  # torchvision Resize(s) on a PIL image
    w, h = im.size
    if w <= h:
        return im.resize((s, int(s * h / w)), method)
    return im.resize((int(s * w / h), s), method)

def center_crop(im, s):  # torchvision CenterCrop(s)
    w, h = im.size
    top, left = int(round((h - s) / 2)), int(round((w - s) / 2))
    return im.crop((left, top, left + s, top + s))

def reference(path):
    im = Image.open(path).convert("RGB")
    if recipe == "celeba":
        return center_crop(im, 140).resize((size, size), Image.BILINEAR)
    if recipe == "ffhq":
        return im.resize((size, size), Image.LANCZOS)
    return center_crop(resize_short(im, size, Image.BILINEAR), size)

manifest = json.load(open(f"{out}/_manifest.json"))
seen = 0
for split, sm in manifest["splits"].items():
    for shard in sm["shards"]:
        for row in pq.read_table(f"{out}/{shard['file']}").to_pylist():
            want = reference(sources[row["key"]]).tobytes()
            assert row["pixels"] == want, (split, row["key"])
            seen += 1
assert seen == len(sources), (seen, len(sources))
print("pillow ok", seen)
"#;

fn check_with_pillow(recipe: &str, out: &Path, sources: &[(String, PathBuf)], size: u32) {
    let map: serde_json::Map<String, serde_json::Value> = sources
        .iter()
        .map(|(k, p)| (k.clone(), s(p).into()))
        .collect();
    let py = Command::new(python())
        .args([
            "-c",
            CHECK,
            recipe,
            s(out),
            &serde_json::Value::Object(map).to_string(),
            &size.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{recipe}: {}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
}

fn counts(out: &Path) -> Vec<(String, u64)> {
    let m = Manifest::read(&out.join("_manifest.json")).unwrap();
    m.splits.iter().map(|(k, v)| (k.clone(), v.count)).collect()
}

/// The keys of one split's rows, in order.
fn split_keys(out: &Path, split: &str) -> Vec<String> {
    let ds = shards::Dataset::open(out).unwrap();
    ds.read_split(split).unwrap().keys
}

/// Every key the shards of `out` hold, split by split.
fn keys(out: &Path) -> Vec<String> {
    let ds = shards::Dataset::open(out).unwrap();
    let splits: Vec<String> = ds.manifest.splits.keys().cloned().collect();
    splits.iter().flat_map(|sp| split_keys(out, sp)).collect()
}

/// The last path component of a key.
fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap()
}

/// Every key of `out`, with the raw file of the same name in `dir` it was made from.
fn sources_in(out: &Path, dir: &Path) -> Vec<(String, PathBuf)> {
    keys(out)
        .into_iter()
        .map(|k| {
            let p = dir.join(file_name(&k));
            (k, p)
        })
        .collect()
}

#[test]
fn celeba_folder_and_zip_match_pillow_and_the_partition_file() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("celeba");
    write_celeba(&raw, 15).unwrap();
    // One image smaller than the 140x140 crop: rejected with the reason, the rest goes on.
    std::fs::write(
        raw.join("img_align_celeba/000002.jpg"),
        encode(120, 100, 1, image::ImageFormat::Jpeg),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let text = ok(&["ingest", "celeba", "--input", s(&raw), "--out", s(&out)]);
    assert!(text.contains("train 8 images"), "{text}");
    // Every 5th image is valid (1), the next test (2), the rest train (list_eval_partition).
    assert_eq!(
        counts(&out),
        [("test".into(), 3), ("train".into(), 8), ("valid".into(), 3)]
    );
    let m = Manifest::read(&out.join("_manifest.json")).unwrap();
    let rejected = &m.splits["train"].rejected;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].key.contains("000002.jpg") && rejected[0].reason.contains("140x140 crop"),
        "{rejected:?}"
    );
    let sources = sources_in(&out, &raw.join("img_align_celeba"));
    check_with_pillow("celeba", &out, &sources, 64);

    // The zip as distributed gives the same shards, byte for byte.
    zip_celeba(&raw).unwrap();
    std::fs::rename(
        raw.join("img_align_celeba"),
        tmp.path().join("unzipped-copy"),
    )
    .unwrap();
    let from_zip = tmp.path().join("zip-out");
    ok(&[
        "ingest",
        "celeba",
        "--input",
        s(&raw),
        "--out",
        s(&from_zip),
    ]);
    let m = Manifest::read(&out.join("_manifest.json")).unwrap();
    let files: Vec<&String> = m
        .splits
        .values()
        .flat_map(|sm| sm.shards.iter().map(|e| &e.file))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for (a, b) in files.iter().map(|n| (out.join(n), from_zip.join(n))) {
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{a:?}"
        );
    }

    // Without the partition file: one line naming it, and nothing written.
    std::fs::remove_file(raw.join("list_eval_partition.txt")).unwrap();
    let bad = tmp.path().join("bad-out");
    let err = fails(&["ingest", "celeba", "--input", s(&raw), "--out", s(&bad)]);
    assert!(err.contains("list_eval_partition.txt"), "{err}");
    assert!(!bad.join("_manifest.json").exists());
}

#[test]
fn lsun_lmdb_of_webp_and_jpeg_matches_pillow_in_key_order() {
    let tmp = tempfile::tempdir().unwrap();
    let lmdb = tmp.path().join("church_outdoor_train_lmdb");
    let values = tmp.path().join("values");
    std::fs::create_dir_all(&values).unwrap();
    // LSUN images are ~256 on the short side, landscape or portrait; keys are hex ids.
    let shapes = [
        (40u32, 30u32),
        (30, 44),
        (37, 37),
        (52, 31),
        (29, 41),
        (33, 50),
    ];
    let mut entries = vec![];
    let mut sources = vec![];
    for (i, &(w, h)) in shapes.iter().enumerate() {
        let (fmt, ext) = if i % 2 == 0 {
            (image::ImageFormat::WebP, "webp")
        } else {
            (image::ImageFormat::Jpeg, "jpg")
        };
        let key = format!("{:040x}", (shapes.len() - i) * 7919);
        let bytes = encode(w, h, i as u64, fmt);
        let file = values.join(format!("{key}.{ext}"));
        std::fs::write(&file, &bytes).unwrap();
        entries.push((key.clone().into_bytes(), bytes));
        sources.push((key, file));
    }
    write_lmdb(&lmdb, &entries).unwrap();
    let out = tmp.path().join("out");
    ok(&[
        "ingest",
        "lsun",
        "--input",
        s(&lmdb),
        "--out",
        s(&out),
        "--resolution",
        "24",
    ]);
    assert_eq!(counts(&out), [("train".into(), 6)]);
    let mut sorted: Vec<String> = sources.iter().map(|(k, _)| k.clone()).collect();
    sorted.sort();
    assert_eq!(
        keys(&out),
        sorted,
        "rows follow the LMDB's sorted key order"
    );
    check_with_pillow("lsun", &out, &sources, 24);

    // A directory that is not an LMDB: one line naming it.
    let err = fails(&[
        "ingest",
        "lsun",
        "--input",
        s(&values),
        "--out",
        s(&tmp.path().join("o2")),
    ]);
    assert!(err.contains("values"), "{err}");
}

#[test]
fn ffhq_png_tree_matches_pillow_lanczos_with_a_seeded_split() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("ffhq");
    write_ffhq(&raw, 20, 64).unwrap();
    let out = tmp.path().join("out");
    ok(&[
        "ingest",
        "ffhq",
        "--input",
        s(&raw),
        "--out",
        s(&out),
        "--resolution",
        "16",
    ]);
    assert_eq!(counts(&out), [("test".into(), 2), ("train".into(), 18)]);
    let m = Manifest::read(&out.join("_manifest.json")).unwrap();
    let seed = m.split_seed.expect("the split seed is recorded");
    let (_, want_test) = pipeline::sources::ffhq::split_indices(20, seed);
    let want_test: Vec<String> = want_test.iter().map(|i| format!("{i:05}.png")).collect();
    let got_test: Vec<String> = split_keys(&out, "test")
        .iter()
        .map(|k| file_name(k).to_string())
        .collect();
    assert_eq!(got_test, want_test, "test split = split_indices(N, seed)");
    let sources = sources_in(&out, &raw.join("images1024x1024/00000"));
    check_with_pillow("ffhq", &out, &sources, 16);
}

#[test]
fn folder_mixes_formats_and_lists_corrupt_and_small_images_as_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("pics");
    std::fs::create_dir_all(raw.join("b/nested")).unwrap();
    let files = [
        ("a.png", image::ImageFormat::Png, 50, 34),
        ("b/c.jpg", image::ImageFormat::Jpeg, 31, 47),
        ("b/nested/d.webp", image::ImageFormat::WebP, 40, 40),
    ];
    let mut sources = vec![];
    for (i, (name, fmt, w, h)) in files.iter().enumerate() {
        let p = raw.join(name);
        std::fs::write(&p, encode(*w, *h, i as u64, *fmt)).unwrap();
        sources.push((name.to_string(), p));
    }
    // A truncated JPEG is rejected with its reason, not fatal; other files are not images.
    let jpeg = encode(30, 30, 9, image::ImageFormat::Jpeg);
    std::fs::write(raw.join("broken.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(raw.join("notes.txt"), "not an image").unwrap();
    let out = tmp.path().join("out");
    ok(&[
        "ingest",
        "folder",
        "--input",
        s(&raw),
        "--out",
        s(&out),
        "--resolution",
        "24",
    ]);
    assert_eq!(counts(&out), [("train".into(), 3)]);
    let got: Vec<String> = keys(&out);
    assert_eq!(got.len(), 3);
    for (k, (name, _)) in got.iter().zip(&sources) {
        assert!(k.ends_with(name.as_str()), "sorted by path: {got:?}");
    }
    let sources: Vec<_> = got
        .into_iter()
        .zip(sources)
        .map(|(k, (_, p))| (k, p))
        .collect();
    check_with_pillow("folder", &out, &sources, 24);
    let m = Manifest::read(&out.join("_manifest.json")).unwrap();
    let rejected: Vec<_> = m.splits["train"]
        .rejected
        .iter()
        .map(|r| (r.key.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].0.contains("broken.jpg") && rejected[0].1.contains("JPEG"),
        "{rejected:?}"
    );
}
