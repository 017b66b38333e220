//! The README's "Using the shards from Python", run as written against real shard directories:
//! pyarrow (`read_table` and `ParquetDataset` with a split filter), pandas, polars, DuckDB and
//! HF `datasets` each read an `ncsn ingest` directory with the right per-split counts, dense ids
//! per split and pixels equal to the shard rows; the `torch.utils.data` reader (map-style, and
//! iterable sharded over DataLoader workers by row group) hands out every row exactly once.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ok, python, readme_python_blocks, run, s};
use schemas::layout::Layout;

/// What the README's blocks must give on a directory: checked against each shard file read on
/// its own, which is the ground truth.
const CHECK: &str = r#"
import json, sys, time
import numpy as np, pyarrow.parquet as pq

root, unlabelled, code = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.time()

def truth(root):
    """Per split, every row of every shard in manifest order: what the tools must find."""
    m = json.load(open(f"{root}/_manifest.json"))
    rows = {s: [r for e in sm["shards"] for r in pq.read_table(f"{root}/{e['file']}").to_pylist()]
            for s, sm in m["splits"].items()}
    return m, rows

manifest, rows = truth(root)
counts = {s: len(r) for s, r in rows.items()}
assert counts == {"train": 300, "test": 50}, counts
h, w = manifest["height"], manifest["width"]

def check(tool, got, splits=None):
    """`got`: dicts with split, id, key, label, pixels. Per split: the count, ids 0..n-1 once
    each, and every row equal to the shard's."""
    by_split = {}
    for r in got:
        by_split.setdefault(str(r["split"]), []).append(r)
    want = {s: counts[s] for s in (splits or counts)}
    assert {s: len(v) for s, v in by_split.items()} == want, (tool, by_split.keys())
    for split, got_rows in by_split.items():
        got_rows = sorted(got_rows, key=lambda r: r["id"])
        assert [r["id"] for r in got_rows] == list(range(counts[split])), tool
        for g, t in zip(got_rows, rows[split]):
            assert (g["key"], g["label"], bytes(g["pixels"])) == (t["key"], t["label"], t["pixels"]), (tool, split, g["id"])
    print(f"{tool}: ok")

# --- the README's tool block, as written, on `root`
tools = open(f"{code}/tools.py").read()
assert tools.count('"data/cifar10"') == 1, "the README block sets root once"
ns = {}
exec(compile(tools.replace('"data/cifar10"', repr(root)), "README tools block", "exec"), ns)
cols = ["split", "id", "key", "label", "pixels"]
check("pyarrow read_table", ns["table"].select(cols).to_pylist())
train = ns["train"]
check("pyarrow ParquetDataset split filter",
      [dict(r, split="train") for r in train.select(cols[1:]).to_pylist()], ["train"])
import pyarrow.dataset as pads
check("pyarrow.dataset hive", pads.dataset(root, format="parquet", partitioning="hive").to_table(columns=cols).to_pylist())
md = ns["geometry"]
assert (md[b"ncsn.height"], md[b"ncsn.width"], md[b"ncsn.channels"]) == (b"32", b"32", b"3"), md
assert b"ncsn.split" not in md, md
check("pandas", ns["df"][cols].to_dict("records"))
assert ns["df"].attrs["ncsn.height"] == 32 and ns["df"].attrs["ncsn.dataset"] == "cifar10", ns["df"].attrs
first = ns["df"].iloc[0]
want = rows[str(first["split"])][first["id"]]["pixels"]
assert np.array_equal(np.asarray(ns["picture"]), np.frombuffer(want, np.uint8).reshape(h, w, 3))
check("polars glob", ns["pl_all"].select(cols).to_dicts())
check("polars one split", [dict(r, split="train") for r in ns["pl_train"].select(cols[1:]).to_dicts()], ["train"])
import polars as pl
check("polars hidden_file_prefix", pl.scan_parquet(root, hidden_file_prefix="_").select(cols).collect().to_dicts())
assert sorted(ns["counts"]) == sorted(counts.items()), ns["counts"]
import duckdb
for source in [f"'{root}/**/*.parquet'", f"read_parquet('{root}')"]:
    got = duckdb.sql(f"SELECT split, id, key, label, pixels FROM {source}").fetchall()
    check(f"duckdb {source}", [dict(zip(cols, r)) for r in got])
hf = ns["hf"]
assert sorted(hf.keys()) == ["test", "train"], hf
check("hf datasets", [dict(r, split=s) for s in hf for r in hf[s].select_columns(cols[1:]).to_list()])
image = ns["hf_images"][3]["image"]
assert np.array_equal(np.asarray(image), np.frombuffer(hf["train"][3]["pixels"], np.uint8).reshape(h, w, 3))
t1 = time.time()

# --- the README's torch reader, imported as written
sys.path.insert(0, code)
import torch
from torch.utils.data import DataLoader
from ncsn_reader import NcsnSplit, NcsnStream

def as_rows(pairs):
    return sorted((x.permute(1, 2, 0).contiguous().numpy().tobytes(), int(y)) for x, y in pairs)

def batches(loader):
    return [(x, y) for bx, by in loader for x, y in zip(bx, by)]

for r, (_, truth_rows) in [(root, (manifest, rows)), (unlabelled, truth(unlabelled))]:
    for split, want_rows in truth_rows.items():
        want = sorted((t["pixels"], -1 if t["label"] is None else t["label"]) for t in want_rows)
        ds = NcsnSplit(r, split, keep=2)
        assert len(ds) == len(want_rows), (r, split, len(ds))
        for i in {0, len(ds) // 2, len(ds) - 1}:
            x, y = ds[i]
            assert x.dtype == torch.uint8 and x.shape[0] == 3, x.shape
            assert as_rows([(x, y)])[0] == (want_rows[i]["pixels"], want_rows[i]["label"] if want_rows[i]["label"] is not None else -1), (r, split, i)
        shuffled = batches(DataLoader(ds, batch_size=16, shuffle=True, num_workers=2))
        assert as_rows(shuffled) == want, (r, split, "map-style")
        plain = batches(DataLoader(NcsnStream(r, split), batch_size=16, num_workers=2))
        assert as_rows(plain) == want, (r, split, "stream")
        seeded = [batches(DataLoader(NcsnStream(r, split, seed=7), batch_size=16, num_workers=2)) for _ in range(2)]
        assert as_rows(seeded[0]) == want, (r, split, "seeded stream")
        order = lambda b: [x.numpy().tobytes() for x, _ in b]
        assert order(seeded[0]) == order(seeded[1]), "a seed gives one order"
        if len(want) > 20:
            assert order(seeded[0]) != order(plain), "a seed shuffles"
        print(f"torch reader {split} of {r}: {len(ds)} rows in {len(ds.groups)} row groups ok")
print(f"tools {t1 - t0:.1f} s, torch {time.time() - t1:.1f} s")
"#;

#[test]
fn the_readme_python_blocks_read_an_ingested_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = common::cifar_shards_with(tmp.path(), 300, 50, &["--shard-rows", "64"]);
    // Calibrate's default output lands in the directory too: the tools must skip it.
    ok(&run(&[
        "calibrate",
        "--data",
        s(&root),
        "--steps-each",
        "1",
        "--quiet",
    ]));
    assert!(root.join("_calibration.json").is_file());
    // No labels and several row groups per shard (16 rows each): the stream's sharding unit.
    let unlabelled = tmp.path().join("unlabelled");
    testkit::datasets::id_dataset_in(&unlabelled, Layout::Split, 8, 100, 2, 10);

    let code = tmp.path().join("code");
    std::fs::create_dir(&code).unwrap();
    let blocks = readme_python_blocks("## Using the shards from Python");
    assert_eq!(blocks.len(), 2, "the tools block and the torch reader");
    std::fs::write(code.join("tools.py"), &blocks[0]).unwrap();
    std::fs::write(code.join("ncsn_reader.py"), &blocks[1]).unwrap();

    let out = python_offline(tmp.path())
        .args(["-c", CHECK, s(&root), s(&unlabelled), s(&code)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("hf datasets: ok"), "{text}");
    println!("{text}");
}

/// The project venv's Python with HF `datasets` kept off the network and out of `~/.cache`.
fn python_offline(tmp: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.env("HF_HOME", tmp.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_DATASETS_DISABLE_PROGRESS_BARS", "1");
    cmd
}
