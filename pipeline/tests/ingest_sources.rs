//! CelebA (folder and zip), LSUN LMDB, FFHQ (PNG tree and the authors' LMDB) and plain folders
//! through the shard writer: row order, keys, pixels equal to the Pillow-exact transform of the
//! source file, bad items rejected with their key and reason, bad inputs named.

use std::path::Path;

use image::ImageFormat;
use pipeline::ingest::{self, Options};
use pipeline::sources::{celeba, ffhq, folder, lsun, Source};
use pipeline::{process_encoded, Filter, Recipe};
use schemas::manifest::Manifest;
use shards::{Dataset, ShardRows};
use testkit::fixtures::{encode, write_celeba, write_ffhq, write_lmdb, zip_celeba};

fn ingest_to(src: &Source, out: &Path) -> Manifest {
    let opts = Options {
        out: out.to_path_buf(),
        shard_rows: Some(5),
        workers: 2,
        writers: 2,
        resume: false,
        partition: None,
        progress: false,
    };
    ingest::ingest(src, &opts).unwrap().manifest
}

fn read(out: &Path, split: &str) -> ShardRows {
    Dataset::open(out).unwrap().read_split(split).unwrap()
}

fn expect(bytes: &[u8], recipe: Recipe) -> Vec<u8> {
    process_encoded(bytes, &recipe).unwrap().data
}

#[test]
fn celeba_folder_and_zip_agree_and_bad_files_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("celeba");
    write_celeba(&dir, 12).unwrap();
    // A truncated JPEG and one smaller than the 140 crop: rejected, not fatal.
    let img = dir.join("img_align_celeba");
    let good = std::fs::read(img.join("000002.jpg")).unwrap();
    std::fs::write(img.join("000002.jpg"), &good[..good.len() / 3]).unwrap();
    std::fs::write(
        img.join("000006.jpg"),
        encode(100, 120, 5, ImageFormat::Jpeg),
    )
    .unwrap();

    let m = ingest_to(&celeba::open(&dir, None).unwrap(), &tmp.path().join("a"));
    assert_eq!(m.recipe, "CenterCrop(140) -> Resize(64, BILINEAR)");
    let counts: Vec<_> = m
        .splits
        .iter()
        .map(|(k, s)| (k.as_str(), s.count))
        .collect();
    assert_eq!(counts, [("test", 2), ("train", 6), ("valid", 2)]);
    let rej = &m.splits["train"].rejected;
    assert_eq!(rej.len(), 2, "{rej:?}");
    assert_eq!(rej[0].key, "000002.jpg");
    assert!(rej[0].reason.contains("JPEG"), "{}", rej[0].reason);
    assert_eq!(rej[1].key, "000006.jpg");
    assert!(rej[1].reason.contains("smaller than"), "{}", rej[1].reason);

    let train = read(&tmp.path().join("a"), "train");
    assert_eq!(
        train.keys,
        [
            "000001.jpg",
            "000003.jpg",
            "000007.jpg",
            "000008.jpg",
            "000011.jpg",
            "000012.jpg"
        ]
    );
    let recipe = Recipe::CropResize {
        crop: 140,
        size: 64,
        filter: Filter::Bilinear,
    };
    assert_eq!(
        train.image(1),
        &expect(&std::fs::read(img.join("000003.jpg")).unwrap(), recipe)[..]
    );

    // The same images from the zip give the same bytes.
    zip_celeba(&dir).unwrap();
    std::fs::rename(&img, dir.join("unzipped")).unwrap();
    let z = ingest_to(&celeba::open(&dir, None).unwrap(), &tmp.path().join("z"));
    let shas = |m: &Manifest| -> Vec<String> {
        m.splits
            .values()
            .flat_map(|s| s.shards.iter().map(|e| e.sha256.clone()))
            .collect()
    };
    assert_eq!(shas(&z), shas(&m));
    assert_eq!(z.splits["train"].rejected, m.splits["train"].rejected);

    std::fs::remove_file(dir.join("list_eval_partition.txt")).unwrap();
    let err = celeba::open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("list_eval_partition.txt"), "{err}");
}

#[test]
fn lsun_lmdb_in_key_order_and_non_lsun_lmdbs_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lmdb = tmp.path().join("church_outdoor_train_lmdb");
    let mut entries = vec![];
    for i in 0..20u64 {
        let (w, h) = (120 + (i as u32 * 7) % 40, 100 + (i as u32 * 11) % 50);
        let fmt = if i % 2 == 0 {
            ImageFormat::WebP
        } else {
            ImageFormat::Jpeg
        };
        // Keys inserted out of order: the index is LMDB's sorted key order.
        entries.push((
            format!("{:040x}", (i * 7919) % 20).into_bytes(),
            encode(w, h, i, fmt),
        ));
    }
    write_lmdb(&lmdb, &entries).unwrap();
    let src = lsun::open(&lmdb, Some(32)).unwrap();
    let m = ingest_to(&src, &tmp.path().join("o"));
    assert_eq!(m.options["category"], "church_outdoor");
    assert_eq!(m.splits["train"].count, 20);
    let rows = read(&tmp.path().join("o"), "train");
    let mut sorted = entries.clone();
    sorted.sort();
    let recipe = Recipe::ResizeCrop {
        size: 32,
        filter: Filter::Bilinear,
    };
    for i in [0, 7, 19] {
        assert_eq!(rows.keys[i].as_bytes(), &sorted[i].0[..]);
        assert_eq!(rows.image(i), &expect(&sorted[i].1, recipe)[..]);
    }

    let not_lsun = tmp.path().join("other_lmdb");
    write_lmdb(&not_lsun, &[(b"a".to_vec(), b"hello".to_vec())]).unwrap();
    let err = lsun::open(&not_lsun, None).err().unwrap().to_string();
    assert!(
        err.contains("not an LSUN LMDB") && err.contains("`a`"),
        "{err}"
    );
    let err = lsun::open(tmp.path(), None).err().unwrap().to_string();
    assert!(err.contains("not an LMDB"), "{err}");
}

#[test]
fn ffhq_png_tree_and_authors_lmdb() {
    let tmp = tempfile::tempdir().unwrap();
    write_ffhq(tmp.path(), 20, 64).unwrap();
    let src = ffhq::open(tmp.path(), Some(16), Some(7)).unwrap();
    let m = ingest_to(&src, &tmp.path().join("o"));
    assert_eq!(m.split_seed, Some(7));
    assert_eq!((m.splits["train"].count, m.splits["test"].count), (18, 2));
    assert_eq!(m.recipe, "Resize(16, LANCZOS) -> CenterCrop(16)");
    let (_, test_idx) = ffhq::split_indices(20, 7);
    let test = read(&tmp.path().join("o"), "test");
    let k = test_idx[1] as usize;
    assert_eq!(test.keys[1], format!("00000/{k:05}.png"));
    let png = encode(64, 64, k as u64, ImageFormat::Png);
    let recipe = Recipe::ResizeCrop {
        size: 16,
        filter: Filter::Lanczos,
    };
    assert_eq!(test.image(1), &expect(&png, recipe)[..]);
    assert!(
        ffhq::open(tmp.path(), Some(100), None).is_err(),
        "not a power of two"
    );

    // The authors' LMDB: `{res}-{index:05}` JPEG values and `length`.
    let lmdb = tmp.path().join("ffhq_lmdb");
    let mut entries = vec![(b"length".to_vec(), b"10".to_vec())];
    for i in 0..10u64 {
        entries.push((
            format!("16-{i:05}").into_bytes(),
            encode(16, 16, i, ImageFormat::Jpeg),
        ));
        entries.push((
            format!("32-{i:05}").into_bytes(),
            encode(32, 32, i, ImageFormat::Jpeg),
        ));
    }
    write_lmdb(&lmdb, &entries).unwrap();
    let m = ingest_to(
        &ffhq::open(&lmdb, Some(16), None).unwrap(),
        &tmp.path().join("l"),
    );
    assert_eq!((m.splits["train"].count, m.splits["test"].count), (9, 1));
    let (_, test_idx) = ffhq::split_indices(10, ffhq::DEFAULT_SPLIT_SEED);
    let rows = read(&tmp.path().join("l"), "test");
    assert_eq!(rows.keys[0], format!("16-{:05}", test_idx[0]));
    let err = ffhq::open(&lmdb, Some(64), None).err().unwrap().to_string();
    assert!(err.contains("16, 32"), "{err}");
}

#[test]
fn folder_of_mixed_formats_in_sorted_path_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(dir.join("b/sub")).unwrap();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("b/sub/z.png"), encode(50, 40, 1, ImageFormat::Png)).unwrap();
    std::fs::write(dir.join("a/y.webp"), encode(40, 60, 2, ImageFormat::WebP)).unwrap();
    std::fs::write(dir.join("b/x.JPG"), encode(45, 45, 3, ImageFormat::Jpeg)).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let m = ingest_to(
        &folder::open(&dir, Some(24), Some("all")).unwrap(),
        &tmp.path().join("o"),
    );
    assert_eq!(m.splits["all"].count, 3);
    let rows = read(&tmp.path().join("o"), "all");
    assert_eq!(rows.keys, ["a/y.webp", "b/sub/z.png", "b/x.JPG"]);
    let recipe = Recipe::ResizeCrop {
        size: 24,
        filter: Filter::Bilinear,
    };
    assert_eq!(
        rows.image(0),
        &expect(&std::fs::read(dir.join("a/y.webp")).unwrap(), recipe)[..]
    );
}
