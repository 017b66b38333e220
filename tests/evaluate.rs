//! End-to-end checks of `ncsn fid-stats` and `ncsn fid` (alias `evaluate`) through the binary,
//! with pytorch-fid's network on random weights saved to a file here (the real weights cannot
//! be downloaded in tests): synth → ingest → fid-stats → FID and IS of raw samples and of the
//! same samples as PNG files, and the one-line errors on bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{ncsn, ok, one_line_error, run, s};
use evaluate::npz::{NpyData, Npz};
use shards::{Dataset, Rgb8};

fn random_weights(dir: &Path) -> PathBuf {
    common::random_inception_weights(dir)
}

fn shards(dir: &Path) -> PathBuf {
    common::cifar_shards(dir, 24, 10)
}

fn split_images(data: &Path, split: &str) -> Vec<Rgb8> {
    let rows = Dataset::open(data).unwrap().read_split(split).unwrap();
    (0..rows.len())
        .map(|i| Rgb8 {
            width: 32,
            height: 32,
            data: rows.image(i).to_vec(),
        })
        .collect()
}

fn write_raw(path: &Path, images: &[Rgb8]) {
    let pixels: Vec<u8> = images.iter().flat_map(|im| im.data.clone()).collect();
    shards::write_npz_u8(path, &[("arr_0", &[images.len(), 32, 32, 3], &pixels)]).unwrap();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(ok(out).trim()).unwrap()
}

#[test]
fn fid_stats_then_fid_and_is_of_raw_samples_and_of_png_folders() {
    let dir = tempfile::tempdir().unwrap();
    let w = random_weights(dir.path());
    let data = shards(dir.path());
    let common_flags = ["--weights", s(&w), "--device", "cpu", "--batch-size", "16"];

    // fid-stats: pytorch-fid's layout, float64, plus ncsn's count and size.
    let mut args = vec!["fid-stats", "--data", s(&data)];
    args.extend(common_flags);
    let out = run(&args);
    let text = ok(&out);
    let stats = data.join("_fid_stats_train.npz");
    assert!(text.contains("wrote") && stats.is_file(), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Σ is singular"));
    let mut npz = Npz::open(&stats).unwrap();
    let mu = npz.read("mu").unwrap();
    assert_eq!(mu.shape, [2048]);
    assert!(matches!(mu.data, NpyData::F64(_)));
    assert_eq!(npz.read("sigma").unwrap().shape, [2048, 2048]);
    assert_eq!(npz.read("num_images").unwrap().data, NpyData::I64(vec![24]));
    assert_eq!(
        npz.read("image_size").unwrap().data,
        NpyData::I64(vec![32, 32])
    );

    // The test split as `ncsn sample --raw` would write samples, and as PNG files.
    let test = split_images(&data, "test");
    let raw = dir.path().join("samples.npz");
    write_raw(&raw, &test);
    let folder = dir.path().join("pngs");
    std::fs::create_dir(&folder).unwrap();
    for (i, im) in test.iter().enumerate() {
        shards::write_png(&folder.join(format!("{i:03}.png")), im).unwrap();
    }
    let score = |samples: &Path, cmd: &str| {
        let mut a = vec![
            cmd,
            "--samples",
            s(samples),
            "--stats",
            s(&stats),
            "--splits",
            "2",
            "--json",
        ];
        a.extend(common_flags);
        json(&run(&a))
    };
    let from_raw = score(&raw, "fid");
    let from_png = score(&folder, "evaluate");
    assert_eq!(from_raw["num_samples"], 10);
    assert_eq!(from_raw["image_size"], serde_json::json!([32, 32]));
    assert_eq!(from_raw["is_splits"], 2);
    let fid = from_raw["fid"].as_f64().unwrap();
    assert!(fid.is_finite() && fid > 0.0, "{from_raw}");
    // Same pixels, same numbers (the folder's images are resized one by one).
    for key in ["fid", "inception_score"] {
        let (a, b) = (
            from_raw[key].as_f64().unwrap(),
            from_png[key].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-6 * a.abs(), "{key}: {a} vs {b}");
    }
    assert!(from_raw["inception_score"].as_f64().unwrap() >= 1.0);

    // The training images against their own statistics, through --data: FID 0.
    let train_raw = dir.path().join("train.npz");
    write_raw(&train_raw, &split_images(&data, "train"));
    let mut a = vec![
        "fid",
        "--samples",
        s(&train_raw),
        "--data",
        s(&data),
        "--splits",
        "2",
        "--json",
    ];
    a.extend(common_flags);
    let same = json(&run(&a));
    assert!(same["fid"].as_f64().unwrap().abs() < 1e-6, "{same}");

    // Text output names both sides and prints IS as mean ± std.
    let mut a = vec![
        "fid",
        "--samples",
        s(&raw),
        "--stats",
        s(&stats),
        "--splits",
        "2",
    ];
    a.extend(common_flags);
    let text = ok(&run(&a));
    assert!(
        text.contains("FID:") && text.contains(" ± ") && text.contains("(2 splits)"),
        "{text}"
    );
}

#[test]
fn bad_inputs_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = random_weights(d);
    let samples = d.join("samples.npz");
    let pixels = vec![128u8; 4 * 32 * 32 * 3];
    shards::write_npz_u8(&samples, &[("arr_0", &[4, 32, 32, 3], &pixels)]).unwrap();
    let stats_of = |path: &Path, dims: usize, size: Option<[i64; 2]>| {
        let mut eye = vec![0.0; dims * dims];
        for i in 0..dims {
            eye[i * dims + i] = 1.0;
        }
        let mut arrays = vec![
            ("mu", shards::npy_f64(&[dims], &vec![0.5; dims])),
            ("sigma", shards::npy_f64(&[dims, dims], &eye)),
        ];
        if let Some(size) = size {
            arrays.push(("image_size", shards::npy_i64(&[2], &size)));
        }
        shards::write_npz(path, &arrays).unwrap();
    };
    let stats = d.join("stats.npz");
    stats_of(&stats, 2048, Some([32, 32]));

    let fid = |samples: &Path, stats: &Path, weights: &Path| {
        one_line_error(&[
            "fid",
            "--samples",
            s(samples),
            "--stats",
            s(stats),
            "--weights",
            s(weights),
            "--device",
            "cpu",
        ])
    };

    // A missing weights file: where it was looked for and where to get it. The default is
    // torch hub's cache, under TORCH_HOME.
    let home = d.join("torch-home");
    let out = ncsn()
        .args(["fid", "--samples", s(&samples), "--stats", s(&stats)])
        .env("TORCH_HOME", &home)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let want = home.join("hub/checkpoints").join(evaluate::WEIGHTS_FILE);
    assert!(
        err.starts_with(&format!("error: {}: ", want.display())),
        "{err}"
    );
    assert!(
        err.contains(evaluate::WEIGHTS_URL) && err.trim().lines().count() == 1,
        "{err}"
    );

    // A file that is not the FID Inception network's weights.
    let junk = d.join("junk.pth");
    std::fs::write(&junk, b"not weights").unwrap();
    assert!(fid(&samples, &stats, &junk).contains("junk.pth: not a torch.save file"));
    let truncated = d.join("truncated.pth");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(fid(&samples, &stats, &truncated).contains("truncated.pth: "));

    // Statistics of another feature size or resolution, or not statistics at all.
    let small = d.join("dims64.npz");
    stats_of(&small, 64, None);
    let e = fid(&samples, &small, &w);
    assert!(e.contains("dims64.npz: statistics of 64-d features"), "{e}");
    let other = d.join("res64.npz");
    stats_of(&other, 2048, Some([64, 64]));
    let e = fid(&samples, &other, &w);
    assert!(
        e.contains("res64.npz: statistics of 64×64 images, the samples are 32×32"),
        "{e}"
    );
    let e = fid(&samples, &samples, &w);
    assert!(e.contains("samples.npz: no `mu` and `sigma`"), "{e}");

    // Samples that are not uint8 NHWC images: floats holding NaN, channels first.
    let nan = d.join("nan.npz");
    let mut v = vec![0.5; 2 * 32 * 32 * 3];
    v[7] = f64::NAN;
    shards::write_npz(&nan, &[("arr_0", shards::npy_f64(&[2, 32, 32, 3], &v))]).unwrap();
    let e = fid(&nan, &stats, &w);
    assert!(
        e.contains("nan.npz: `arr_0` is float64 holding NaN/inf"),
        "{e}"
    );
    let nchw = d.join("nchw.npz");
    shards::write_npz_u8(&nchw, &[("arr_0", &[4, 3, 32, 32], &pixels)]).unwrap();
    assert!(fid(&nchw, &stats, &w).contains("nchw.npz: `arr_0` is [4, 3, 32, 32]"));

    // Fewer samples than feature dimensions: a warning, not an error.
    let mut a = vec![
        "fid",
        "--samples",
        s(&samples),
        "--stats",
        s(&stats),
        "--splits",
        "2",
    ];
    a.extend(["--weights", s(&w), "--device", "cpu"]);
    let out = run(&a);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("samples.npz: 4 images ≤ 2048"),
        "{err}"
    );
}
