//! The demo pipeline (scripts/demo.sh) scaled down, through the real binary: synth → ingest →
//! calibrate → train → sample, asserting that the sample grid and the loss plot exist and
//! decode (with Pillow from the project venv), and that the raw samples load in numpy.

mod common;
use common::{ok_text as ncsn, py};
use std::path::Path;

#[test]
fn demo_pipeline_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (raw, shards, cal, run) = (d("raw"), d("shards"), d("calibration.json"), d("run"));
    let (png, npz) = (d("samples.png"), d("samples.npz"));

    ncsn(&[
        "synth",
        "cifar10",
        "--out",
        &s(&raw),
        "--n-train",
        "120",
        "--n-test",
        "20",
    ]);
    ncsn(&[
        "ingest",
        "cifar10",
        "--input",
        &s(&raw.join("cifar-10-batches-bin")),
        "--out",
        &s(&shards),
    ]);
    ncsn(&[
        "calibrate",
        "--data",
        &s(&shards),
        "--out",
        &s(&cal),
        "--overlap",
        "0.05",
        "--steps-each",
        "1",
    ]);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo.yml");
    ncsn(&[
        "train",
        "--config",
        &s(&config),
        "--data",
        &s(&shards),
        "--calibration",
        &s(&cal),
        "--workdir",
        &s(&run),
        "--n-iters",
        "6",
        "--snapshot-freq",
        "6",
        "--snapshot-samples",
        "4",
        "--batch-size",
        "8",
        "--loss-plot",
    ]);
    let out = ncsn(&[
        "sample",
        "--workdir",
        &s(&run),
        "--out",
        &s(&png),
        "--n",
        "6",
        "--raw",
        &s(&npz),
    ]);
    assert!(out.contains("wrote"), "{out}");

    // Pillow decodes the grid: 3 per row (⌈√6⌉), 2 rows of 32-px images, 2-px padding.
    let size = py(
        "import sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); \
         print(im.size, im.mode)",
        &[&png],
    );
    assert_eq!(size.trim(), "(104, 70) RGB");
    let loss = py(
        "import sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); print(im.mode)",
        &[&run.join("loss.png")],
    );
    assert!(!loss.trim().is_empty());
    let arr = py(
        "import sys, numpy as np; a = np.load(sys.argv[1])['arr_0']; print(a.shape, a.dtype)",
        &[&npz],
    );
    assert_eq!(arr.trim(), "(6, 32, 32, 3) uint8");
}
