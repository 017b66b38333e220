//! End-to-end `ncsn ingest`: CIFAR-10 from the .tar.gz, the shards read by pyarrow with no custom
//! code, SIGKILL + `--resume` ending byte-identical to an uninterrupted run, one-line errors.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ncsn, ok, python, run, s};

use schemas::manifest::Manifest;
use schemas::JsonDocument;
use testkit::fixtures::{pattern, write_cifar, write_tar_gz, CifarVersion};

/// sha256 of every shard plus the manifest text.
fn snapshot(dir: &Path) -> (Vec<(String, String)>, String) {
    let m = Manifest::read(&dir.join("_manifest.json")).unwrap();
    let mut shards = vec![];
    for sp in m.splits.values() {
        for e in &sp.shards {
            let (sha, _) = shards::sha256_file(&dir.join(&e.file)).unwrap();
            assert_eq!(sha, e.sha256, "{}", e.file);
            shards.push((e.file.clone(), sha));
        }
    }
    // The manifest, the split folders and their shards: no journal, listing or temporary.
    let mut leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_manifest.json" && !n.starts_with("split="))
        .collect();
    for split in m.splits.keys() {
        let folder = dir.join(format!("split={split}"));
        leftovers.extend(
            std::fs::read_dir(folder)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".parquet")),
        );
    }
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    (
        shards,
        std::fs::read_to_string(dir.join("_manifest.json")).unwrap(),
    )
}

#[test]
fn cifar10_tar_gz_to_shards_that_pyarrow_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(tmp.path(), CifarVersion::Python, 20).unwrap();
    let tgz = tmp.path().join("cifar-10-python.tar.gz");
    write_tar_gz(&bin, &tgz).unwrap();
    let out = tmp.path().join("out");
    let text = ok(&run(&[
        "ingest",
        "cifar10",
        "--input",
        s(&tgz),
        "--out",
        s(&out),
    ]));
    assert!(
        text.contains("train 100 images") && text.contains("test 20 images"),
        "{text}"
    );
    assert!(text.contains("img/s"), "{text}");

    let shard = out.join("split=train/train-00000.parquet");
    let want = pattern(32, 32, 21); // row 21 = data_batch_2/0001
    let script = format!(
        r#"
import pyarrow.parquet as pq, pyarrow as pa, sys, zlib
t = pq.read_table(sys.argv[1])
md = pq.read_metadata(sys.argv[1]).metadata
assert t.num_rows == 100, t.num_rows
assert t.schema.names == ["id", "key", "label", "pixels", "pixels_crc32"], t.schema.names
assert t.schema.field("id").type == pa.uint64()
assert t.schema.field("key").type == pa.string()
assert t.schema.field("label").type == pa.int32()
assert t.schema.field("pixels").type == pa.binary(3072), t.schema.field("pixels").type
assert md[b"ncsn.height"] == b"32" and md[b"ncsn.width"] == b"32" and md[b"ncsn.channels"] == b"3"
assert md[b"ncsn.dataset"] == b"cifar10" and md[b"ncsn.split"] == b"train", md
row = t.slice(21, 1).to_pylist()[0]
assert row["id"] == 21 and row["key"] == "data_batch_2/0001" and row["label"] == 1, row
px = row["pixels"]
# The row's checksum is zlib's CRC-32 of its pixels: any tool can check it.
assert t.schema.field("pixels_crc32").type == pa.uint32()
assert row["pixels_crc32"] == zlib.crc32(px), row["pixels_crc32"]
# pixel (y=5, x=7), HWC
assert tuple(px[(5 * 32 + 7) * 3:(5 * 32 + 7) * 3 + 3]) == ({}, {}, {}), tuple(px[:6])
# Every column's statistics decode (parquet-cpp aborts the process on a malformed one, e.g. a
# fixed-size binary min/max truncated to fewer bytes than the type), and filters can use them.
meta = pq.ParquetFile(sys.argv[1]).metadata
stats = [[meta.row_group(g).column(c).statistics for c in range(meta.num_columns)]
         for g in range(meta.num_row_groups)]
assert stats[0][0].min == 0 and stats[-1][0].max == 99, stats[0][0]
assert stats[0][3] is None or not stats[0][3].has_min_max, stats[0][3]
assert pq.read_table(sys.argv[1], filters=[("id", ">=", 60)]).num_rows == 40
print("pyarrow ok")
"#,
        want[(5 * 32 + 7) * 3],
        want[(5 * 32 + 7) * 3 + 1],
        want[(5 * 32 + 7) * 3 + 2]
    );
    let py = Command::new(python())
        .args(["-c", &script, s(&shard)])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
}

/// Starts an ingest, SIGKILLs it once the journal lists `after` finished shards (or at once
/// when `after` is 0), and returns whether it was killed before finishing.
fn start_and_kill(args: &[&str], journal: &Path, after: usize) -> bool {
    let mut child = ncsn().args(args).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "ingest failed before the kill");
            return false;
        }
        let done = std::fs::read_to_string(journal)
            .map(|t| t.matches("\"index\"").count())
            .unwrap_or(0);
        if done >= after {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            return true;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "ingest stalled");
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn sigkill_then_resume_gives_the_uninterrupted_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 1500).unwrap();
    let common = |out: &Path| -> Vec<String> {
        [
            "ingest",
            "cifar10",
            "--input",
            s(&bin),
            "--out",
            s(out),
            "--shard-rows",
            "200",
            "--workers",
            "1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let whole = tmp.path().join("whole");
    let args = common(&whole);
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    ok(&ncsn().args(&args).output().unwrap());
    let want = snapshot(&whole);
    assert_eq!(want.0.len(), 38 + 8);

    let cut = tmp.path().join("cut");
    let journal = cut.join("_ingest-journal.json");
    let args = common(&cut);
    let mut args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    // Three writers finish shards out of order, so the resumes also meet journals whose done
    // shards are not a prefix; the bytes must still be the single writer's.
    args.extend(["--writers", "3"]);
    // Killed right after start, then after a few shards, then further on.
    let mut kills = 0;
    for after in [0, 3, 20] {
        kills += start_and_kill(&args, &journal, after) as usize;
        // Killed before it wrote its journal, the directory holds nothing: a plain run is fine.
        if journal.exists() && !args.contains(&"--resume") {
            // A second plain run must refuse to touch the interrupted directory.
            let refused = ncsn().args(&args).output().unwrap();
            assert!(!refused.status.success());
            let err = String::from_utf8_lossy(&refused.stderr);
            assert!(err.contains("--resume"), "{err}");
            args.push("--resume");
        }
    }
    assert!(kills >= 2, "the runs finished before they could be killed");
    assert!(!cut.join("_manifest.json").exists());
    let text = ok(&ncsn().args(&args).output().unwrap());
    assert!(text.contains("already done"), "{text}");
    assert_eq!(snapshot(&cut), want);

    // Resuming with different options is refused, naming the option.
    let mut other = args.clone();
    other[7] = "300";
    let out = ncsn().args(&other).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("shard_rows"), "{err}");
}

#[test]
fn bad_input_is_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let out = run(&[
        "ingest",
        "cifar10",
        "--input",
        s(&missing),
        "--out",
        s(tmp.path()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no-such-dir"), "{err}");

    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 2).unwrap();
    std::fs::write(bin.join("data_batch_4.bin"), vec![0u8; 3073 + 9]).unwrap();
    let out = run(&[
        "ingest",
        "cifar10",
        "--input",
        s(&bin),
        "--out",
        s(&tmp.path().join("o")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("data_batch_4.bin"), "{err}");
}
