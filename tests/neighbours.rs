//! `ncsn neighbours` through the binary (App. C.5.2, Figs. 16–19), with pytorch-fid's network on
//! random weights saved here: samples that are copies of training images, one of them flipped,
//! find those images at distance ~0 (the flip marked), in the PNG and the JSON; and the bad
//! inputs are one-line errors naming the file.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, one_line_error, run, s};
use evaluate::neighbours::{figure_size, flip_horizontal};
use shards::{Dataset, ShardRows};

fn random_weights(dir: &Path) -> PathBuf {
    common::random_inception_weights(dir)
}

fn shards(dir: &Path) -> PathBuf {
    common::cifar_shards(dir, 6, 2)
}

fn write_samples(path: &Path, images: &[Vec<u8>], side: usize) {
    let pixels: Vec<u8> = images.concat();
    shards::write_npz_u8(path, &[("arr_0", &[images.len(), side, side, 3], &pixels)]).unwrap();
}

/// The pixels of the figure's cell in row `r`, column `c` (0: the sample; 1..: neighbours).
fn cell(png: &image::RgbImage, r: u32, c: u32, side: u32) -> Vec<u8> {
    let p = evaluate::neighbours::PADDING;
    let x0 = if c == 0 {
        p
    } else {
        p + (side + p) + (evaluate::neighbours::line_width(side) + p) + (c - 1) * (side + p)
    };
    let y0 = p + r * (side + p);
    let mut v = vec![];
    for y in y0..y0 + side {
        for x in x0..x0 + side {
            v.extend_from_slice(&png.get_pixel(x, y).0);
        }
    }
    v
}

#[test]
fn copies_and_a_flipped_copy_find_their_training_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = random_weights(d);
    let data = shards(d);
    let train: ShardRows = Dataset::open(&data).unwrap().read_split("train").unwrap();
    assert_eq!(train.len(), 6);
    let test = Dataset::open(&data).unwrap().read_split("test").unwrap();

    // Sample 0: training image 3; sample 1: image 1 flipped; sample 2: a test image (its
    // neighbours are whatever is nearest); sample 3: image 5.
    let samples = d.join("samples.npz");
    write_samples(
        &samples,
        &[
            train.image(3).to_vec(),
            flip_horizontal(train.image(1), 32),
            test.image(0).to_vec(),
            train.image(5).to_vec(),
        ],
        32,
    );
    let png = d.join("nn.png");
    let json = d.join("nn.json");
    let out = run(&[
        "neighbours",
        "--samples",
        s(&samples),
        "--data",
        s(&data),
        "-k",
        "4",
        "--ids",
        "0,1,3",
        "--out",
        s(&png),
        "--json",
        s(&json),
        "--weights",
        s(&w),
        "--device",
        "cpu",
        "--batch-size",
        "4",
    ]);
    let text = ok(&out);
    assert!(text.contains("sample    1: nearest id"), "{text}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["k"], 4);
    assert_eq!(doc["training_images"], 6);
    let per = doc["samples"].as_array().unwrap();
    assert_eq!(per.len(), 3);
    for (got, (index, row, flipped)) in per.iter().zip([(0, 3, false), (1, 1, true), (3, 5, false)])
    {
        assert_eq!(got["index"], index);
        let nn = got["neighbours"].as_array().unwrap();
        assert_eq!(nn.len(), 4);
        let first = &nn[0];
        assert_eq!(first["id"], train.ids[row], "sample {index}: {got}");
        assert_eq!(first["key"], train.keys[row].as_str(), "sample {index}");
        assert_eq!(first["flipped"], flipped, "sample {index}");
        let dist: Vec<f64> = nn.iter().map(|n| n["distance"].as_f64().unwrap()).collect();
        assert!(dist.windows(2).all(|p| p[0] <= p[1]), "{dist:?}");
        // The same pixels give the same features up to the batch they were computed in.
        assert!(dist[0] <= 1e-4 * dist[1], "sample {index}: {dist:?}");
        // Every neighbour is a real row, flipped or not, none twice.
        let mut seen = std::collections::BTreeSet::new();
        for n in nn {
            let id = n["id"].as_u64().unwrap();
            let at = train.ids.iter().position(|&i| i == id).unwrap();
            assert_eq!(n["key"], train.keys[at].as_str());
            assert!(seen.insert((id, n["flipped"].as_bool().unwrap())), "{got}");
        }
    }

    // The figure: 3 rows of the sample, the line, 4 neighbours; the first neighbour's cell
    // holds the training image as matched (flipped for sample 1).
    let fig = image::open(&png).unwrap().to_rgb8();
    assert_eq!(fig.dimensions(), figure_size(3, 4, [32, 32]));
    assert_eq!(fig.dimensions(), (2 + 34 + 4 + 4 * 34, 2 + 3 * 34));
    assert_eq!(cell(&fig, 0, 0, 32), train.image(3));
    assert_eq!(cell(&fig, 0, 1, 32), train.image(3));
    assert_eq!(cell(&fig, 1, 0, 32), flip_horizontal(train.image(1), 32));
    assert_eq!(cell(&fig, 1, 1, 32), flip_horizontal(train.image(1), 32));
    assert_eq!(cell(&fig, 2, 1, 32), train.image(5));
    assert_eq!(fig.get_pixel(2 + 32 + 2, 0).0, [255, 0, 0], "the red line");

    // Samples of another size: a note, and the figure's cells fit the larger images (against
    // the 2 test images, to keep the test short).
    let small = d.join("small.npz");
    let px: Vec<u8> = train
        .image(2)
        .chunks(32 * 3)
        .step_by(2)
        .flat_map(|r| {
            r.chunks(3)
                .step_by(2)
                .flatten()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    write_samples(&small, &[px], 16);
    let png2 = d.join("small.png");
    let out = run(&[
        "neighbours",
        "--samples",
        s(&small),
        "--data",
        s(&data),
        "--split",
        "test",
        "-k",
        "2",
        "--out",
        s(&png2),
        "--weights",
        s(&w),
        "--device",
        "cpu",
    ]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("note: ") && err.contains("samples are 16×16, the training images 32×32"),
        "{err}"
    );
    let fig = image::open(&png2).unwrap().to_rgb8();
    assert_eq!(fig.dimensions(), figure_size(1, 2, [32, 32]));
}

#[test]
fn bad_inputs_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = random_weights(d);
    let data = shards(d);
    let samples = d.join("samples.npz");
    write_samples(&samples, &vec![vec![7u8; 32 * 32 * 3]; 2], 32);
    let png = d.join("nn.png");
    let nn = |samples: &Path, k: &str, extra: &[&str], weights: &Path| {
        let mut a = vec![
            "neighbours",
            "--samples",
            s(samples),
            "--data",
            s(&data),
            "-k",
            k,
            "--out",
            s(&png),
            "--weights",
            s(weights),
            "--device",
            "cpu",
        ];
        a.extend(extra);
        one_line_error(&a)
    };

    // k larger than the 2·6 candidates.
    let e = nn(&samples, "13", &[], &w);
    assert!(
        e.contains(&format!(
            "{}: -k 13: split `train` has 6 images, so 12 candidates",
            data.display()
        )),
        "{e}"
    );
    // A sample that is not in the file.
    let e = nn(&samples, "2", &["--ids", "0,2"], &w);
    assert!(
        e.contains("samples.npz: --ids 2: the file has 2 samples"),
        "{e}"
    );
    // No samples in the file.
    let empty = d.join("empty.npz");
    shards::write_npz_u8(&empty, &[("arr_0", &[0, 32, 32, 3], &[])]).unwrap();
    let e = nn(&empty, "2", &[], &w);
    assert!(e.contains("empty.npz: `arr_0` is [0, 32, 32, 3]"), "{e}");
    // Missing weights.
    let missing = d.join("nowhere.pth");
    let e = nn(&samples, "2", &[], &missing);
    assert!(
        e.contains("nowhere.pth") && e.contains(evaluate::WEIGHTS_URL),
        "{e}"
    );
    assert!(!png.exists());
}
