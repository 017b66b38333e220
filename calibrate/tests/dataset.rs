//! The stage on ingested directories: the right images, the farthest pair named by id and key,
//! the statistics, the sample, and clear errors on bad input.

mod common;

use calibrate::data::{load_split, LoadOptions};
use calibrate::dataset::calibrate_dir;
use calibrate::pairwise::{squared_distance_bytes, PairwiseOptions};
use calibrate::ScheduleOptions;
use common::{info, random_dataset, random_rows, write_dataset};
use schemas::layout::Layout;

fn pairs() -> PairwiseOptions {
    PairwiseOptions {
        block_rows: 16,
        ..PairwiseOptions::default()
    }
}

/// Brute force over all images of a split: (id_a, id_b, distance).
fn brute_force(dir: &std::path::Path) -> (u64, u64, f64) {
    let rows = shards::Dataset::open(dir)
        .unwrap()
        .read_split("train")
        .unwrap();
    let mut best = (0, 0, 0u64);
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let d2 = squared_distance_bytes(rows.image(i), rows.image(j));
            if d2 > best.2 {
                best = (rows.ids[i], rows.ids[j], d2);
            }
        }
    }
    (best.0, best.1, (best.2 as f64).sqrt() / 255.0)
}

#[test]
fn calibrates_all_images_of_a_small_split() {
    let dir = tempfile::tempdir().unwrap();
    // 45 images of 6×5 in shards of 20, 20, 5: N is no multiple of the block size (16).
    random_dataset(dir.path(), 6, 5, 45, 20, 1);
    let done = calibrate_dir(
        dir.path(),
        &LoadOptions::default(),
        &pairs(),
        &ScheduleOptions::default(),
    )
    .unwrap();
    let c = &done.calibration;
    let (a, b, d) = brute_force(dir.path());
    let p = c.max_pair.as_ref().unwrap();
    assert_eq!((p.id_a, p.id_b), (a, b));
    assert_eq!(
        (p.key_a.clone(), p.key_b.clone()),
        (format!("img{a}.png"), format!("img{b}.png"))
    );
    assert!((p.distance - d).abs() <= 1e-9 * d);
    assert_eq!(c.sigma_begin, p.distance);
    assert_eq!((c.n, c.sample_seed, c.dims), (Some(45), None, 90));
    let st = c.stats.as_ref().unwrap();
    assert_eq!(st.images_used, 45);
    assert_eq!(st.median_method, "exact over all 990 pairs");
    assert_eq!(st.channel_mean.len(), 3);
    // Uniform random bytes: mean ≈ 0.5, std ≈ 1/√12 ≈ 0.289.
    for (m, s) in st.channel_mean.iter().zip(&st.channel_std) {
        assert!(
            (m - 0.5).abs() < 0.06 && (s - 0.289).abs() < 0.03,
            "{m} {s}"
        );
    }
    // Techniques 2 and 4 on top of σ₁ and D, as without data.
    let alone = calibrate::Schedule::new(c.sigma_begin, 90, &ScheduleOptions::default())
        .unwrap()
        .calibration();
    assert_eq!(
        (c.num_classes, c.gamma, c.step_lr, c.eq4_value),
        (
            alone.num_classes,
            alone.gamma,
            alone.step_lr,
            alone.eq4_value
        )
    );
}

#[test]
fn large_splits_are_sampled_with_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    random_dataset(dir.path(), 4, 4, 60, 25, 2);
    let load = |seed| LoadOptions {
        max_images_exact: 50,
        sample_size: 13,
        seed,
        ..LoadOptions::default()
    };
    let s = load_split(dir.path(), &load(4)).unwrap();
    assert_eq!((s.len(), s.total, s.sample_seed), (13, 60, Some(4)));
    assert!(s.ids.windows(2).all(|w| w[0] < w[1]), "in split order");
    assert_eq!(load_split(dir.path(), &load(4)).unwrap().ids, s.ids);
    assert_ne!(load_split(dir.path(), &load(5)).unwrap().ids, s.ids);
    // The sampled rows are the stored rows with those ids.
    let all = shards::Dataset::open(dir.path())
        .unwrap()
        .read_split("train")
        .unwrap();
    for (k, &id) in s.ids.iter().enumerate() {
        assert_eq!(&s.pixels[k * 48..(k + 1) * 48], all.image(id as usize));
    }

    let c = calibrate_dir(dir.path(), &load(4), &pairs(), &ScheduleOptions::default())
        .unwrap()
        .calibration;
    assert_eq!((c.n, c.sample_seed), (Some(60), Some(4)));
    assert_eq!(c.stats.unwrap().images_used, 13);
    let p = c.max_pair.unwrap();
    assert!(s.ids.contains(&p.id_a) && s.ids.contains(&p.id_b));
}

fn err_of(dir: &std::path::Path) -> String {
    calibrate_dir(
        dir,
        &LoadOptions::default(),
        &pairs(),
        &ScheduleOptions::default(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn empty_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(
        dir.path(),
        (4, 4),
        &[(info(4, 4), vec![]), (info(4, 4), vec![])],
    );
    let e = err_of(dir.path());
    assert!(
        e.contains("has no images") && e.contains("at least 2"),
        "{e}"
    );
}

#[test]
fn a_single_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(
        dir.path(),
        (4, 4),
        &[(info(4, 4), random_rows(1, 48, 0, 1))],
    );
    let e = err_of(dir.path());
    assert!(e.contains("only 1 image"), "{e}");
}

#[test]
fn mixed_resolutions_are_refused_naming_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(
        dir.path(),
        (4, 4),
        &[
            (info(4, 4), random_rows(5, 48, 0, 1)),
            (info(5, 5), random_rows(5, 75, 5, 2)),
        ],
    );
    let e = err_of(dir.path());
    assert!(
        e.contains("train-00001.parquet") && e.contains("mixed resolutions"),
        "{e}"
    );
}

/// The current layout (a folder per split) and the flat one of earlier versions hold the same
/// shards under other names: the same calibration.
#[test]
fn both_directory_layouts_calibrate_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = vec![
        (info(4, 4), random_rows(9, 48, 0, 3)),
        (info(4, 4), random_rows(4, 48, 9, 4)),
    ];
    let mut done = vec![];
    for layout in [Layout::Split, Layout::Flat] {
        let dir = tmp.path().join(format!("{layout:?}"));
        testkit::datasets::write_dataset_in(&dir, layout, (4, 4), &[("train", shards.clone())]);
        let c = calibrate_dir(
            &dir,
            &LoadOptions::default(),
            &pairs(),
            &ScheduleOptions::default(),
        )
        .unwrap()
        .calibration;
        done.push(c);
    }
    assert!(tmp
        .path()
        .join("Split/split=train/train-00001.parquet")
        .is_file());
    assert_eq!(done[0], done[1]);
}

#[test]
fn a_missing_directory_or_split_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = err_of(&missing);
    assert!(e.contains("nope") && e.contains("no such directory"), "{e}");
    let e = err_of(dir.path());
    assert!(e.contains("manifest.json"), "{e}");
    random_dataset(dir.path(), 2, 2, 5, 5, 1);
    let e = load_split(
        dir.path(),
        &LoadOptions {
            split: "test".into(),
            ..LoadOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no split `test`") && e.contains("train"), "{e}");
}

#[test]
fn identical_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = random_rows(4, 12, 0, 1);
    for r in &mut rows {
        r.pixels = vec![9; 12];
    }
    write_dataset(dir.path(), (2, 2), &[(info(2, 2), rows)]);
    let e = err_of(dir.path());
    assert!(e.contains("identical"), "{e}");
}
