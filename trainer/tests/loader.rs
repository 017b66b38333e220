//! The streaming loader: every row once per epoch, seeded order, flips, exact cursor replay,
//! and memory bounded by the shuffle buffer rather than the dataset.

mod train_support;

use std::collections::BTreeMap;

use schemas::checkpoint::DataCursor;
use schemas::layout::Layout;
use shards::Dataset;
use tch::Device;
use trainer::loader::{Loader, LoaderConfig, Shard};

fn cfg(batch: usize, buffer: usize, flip: bool) -> LoaderConfig {
    LoaderConfig {
        seed: 3,
        batch_size: batch,
        shuffle_buffer: buffer,
        prefetch: 2,
        random_flip: flip,
        device: Device::Cpu,
        shard: Shard::ALL,
    }
}

/// Row ids of a batch (the fixture stores the id in the first 8 bytes of each row; with
/// flips off those bytes stay put).
fn ids(b: &trainer::loader::Batch) -> Vec<u64> {
    let v: Vec<u8> = Vec::try_from(b.pixels.flatten(0, -1)).unwrap();
    let n = b.pixels.size()[0] as usize;
    if n == 0 {
        return vec![];
    }
    let w = v.len() / n;
    (0..n)
        .map(|i| u64::from_le_bytes(v[i * w..i * w + 8].try_into().unwrap()))
        .collect()
}

#[test]
fn each_epoch_is_a_seeded_permutation_of_all_rows() {
    let tmp = tempfile::tempdir().unwrap();
    train_support::write_dataset(tmp.path(), 4, 50, 4, 0);
    let ds = Dataset::open(tmp.path()).unwrap();
    let start = DataCursor {
        epoch: 0,
        rows_consumed: 0,
    };
    let mut l = Loader::start(&ds, "train", cfg(8, 10, false), start.clone()).unwrap();
    let mut epochs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut sizes = vec![];
    loop {
        let b = l.next_batch().unwrap();
        sizes.push(b.pixels.size()[0]);
        epochs.entry(b.cursor.epoch).or_default().extend(ids(&b));
        if b.cursor.epoch == 2 && b.cursor.rows_consumed == 50 {
            break;
        }
    }
    assert_eq!(epochs.len(), 3);
    for (e, v) in &epochs {
        let mut s = v.clone();
        s.sort();
        assert_eq!(
            s,
            (0..50).collect::<Vec<_>>(),
            "epoch {e} is not a permutation"
        );
    }
    assert_ne!(epochs[&0], epochs[&1], "epochs are shuffled differently");
    assert_ne!(epochs[&0], (0..50).collect::<Vec<_>>(), "rows are shuffled");
    // 50 = 6×8 + 2: the last batch of each epoch is partial, like the authors' DataLoader.
    assert_eq!(&sizes[..7], &[8, 8, 8, 8, 8, 8, 2]);

    // Same seed, same stream.
    let mut again = Loader::start(&ds, "train", cfg(8, 10, false), start).unwrap();
    assert_eq!(ids(&again.next_batch().unwrap()), epochs[&0][..8]);
}

/// A directory in the current layout (a folder per split) and one in the flat layout of
/// earlier versions stream the same batches.
#[test]
fn both_directory_layouts_stream_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let start = DataCursor {
        epoch: 0,
        rows_consumed: 0,
    };
    let mut streams = vec![];
    for layout in [Layout::Split, Layout::Flat] {
        let dir = tmp.path().join(format!("{layout:?}"));
        testkit::datasets::id_dataset_in(&dir, layout, 4, 20, 3, 0);
        let ds = Dataset::open(&dir).unwrap();
        assert_eq!(ds.layout, layout);
        let mut l = Loader::start(&ds, "train", cfg(8, 10, false), start.clone()).unwrap();
        streams.push(
            (0..6)
                .flat_map(|_| ids(&l.next_batch().unwrap()))
                .collect::<Vec<_>>(),
        );
    }
    assert!(tmp
        .path()
        .join("Split/split=train/train-00002.parquet")
        .is_file());
    assert_eq!(streams[0], streams[1]);
}

#[test]
fn a_cursor_replays_the_rest_of_the_stream_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    train_support::write_dataset(tmp.path(), 4, 30, 3, 0);
    let ds = Dataset::open(tmp.path()).unwrap();
    let mut l = Loader::start(
        &ds,
        "train",
        cfg(4, 7, true),
        DataCursor {
            epoch: 0,
            rows_consumed: 0,
        },
    )
    .unwrap();
    let all: Vec<_> = (0..20).map(|_| l.next_batch().unwrap()).collect();
    for k in [0usize, 3, 7, 8, 12] {
        let mut r = Loader::start(&ds, "train", cfg(4, 7, true), all[k].cursor.clone()).unwrap();
        for want in &all[k + 1..k + 6] {
            let got = r.next_batch().unwrap();
            assert!(
                got.pixels.equal(&want.pixels),
                "batch after cursor {:?} differs",
                all[k].cursor
            );
            assert_eq!(got.cursor, want.cursor);
        }
    }
}

#[test]
fn flips_mirror_about_half_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    train_support::write_dataset(tmp.path(), 4, 200, 1, 0);
    let ds = Dataset::open(tmp.path()).unwrap();
    let start = DataCursor {
        epoch: 0,
        rows_consumed: 0,
    };
    let mut plain = Loader::start(&ds, "train", cfg(200, 16, false), start.clone()).unwrap();
    let mut flipped = Loader::start(&ds, "train", cfg(200, 16, true), start).unwrap();
    let (a, b) = (
        plain.next_batch().unwrap().pixels,
        flipped.next_batch().unwrap().pixels,
    );
    let mut n = 0;
    for i in 0..200 {
        let (ai, bi) = (a.get(i), b.get(i));
        if ai.equal(&bi) {
            continue;
        }
        assert!(
            ai.flip([1]).equal(&bi),
            "row {i} is neither itself nor its mirror image"
        );
        n += 1;
    }
    assert!((70..130).contains(&n), "{n} of 200 flipped");
}

#[test]
fn float_conversion_is_torchvision_to_tensor() {
    let px = tch::Tensor::from_slice(&[0u8, 255, 128, 1, 2, 3]).view([1, 1, 2, 3]);
    let x = trainer::loader::pixels_to_float(&px);
    assert_eq!(x.size(), [1, 3, 1, 2]);
    let v: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
    assert_eq!(
        v,
        [
            0.0,
            1.0 / 255.0,
            1.0,
            2.0 / 255.0,
            128.0 / 255.0,
            3.0 / 255.0
        ]
    );
}

/// Data-parallel shares (issue 16): for any number of ranks, rank r's rows of each batch are
/// rows r, r + world, … of the one-process batch, so in every epoch each image is seen exactly
/// once across the ranks (none twice, none skipped), and a cursor saved at one world size
/// resumes at another with the same global batches.
#[test]
fn ranks_split_each_global_batch_without_overlap_or_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    train_support::write_dataset(tmp.path(), 4, 45, 3, 0);
    let ds = Dataset::open(tmp.path()).unwrap();
    let at = |rows_consumed| DataCursor {
        epoch: 0,
        rows_consumed,
    };
    let sharded = |world: usize, rank: usize, flip: bool, cursor: DataCursor| {
        let mut c = cfg(8, 10, flip);
        c.shard = Shard { rank, world };
        Loader::start(&ds, "train", c, cursor).unwrap()
    };
    for flip in [false, true] {
        // One process: 45 = 5×8 + 5, a batch and a half of epoch 1 after epoch 0.
        let mut one = Loader::start(&ds, "train", cfg(8, 10, flip), at(0)).unwrap();
        let whole: Vec<_> = (0..8).map(|_| one.next_batch().unwrap()).collect();
        for world in [2usize, 3, 5, 8] {
            let mut ranks: Vec<_> = (0..world).map(|r| sharded(world, r, flip, at(0))).collect();
            let mut epoch_ids = vec![];
            for (k, want) in whole.iter().enumerate() {
                let parts: Vec<_> = ranks.iter_mut().map(|l| l.next_batch().unwrap()).collect();
                let rows = want.pixels.size()[0] as usize;
                for (r, p) in parts.iter().enumerate() {
                    assert_eq!(p.global_rows, rows, "batch {k}, world {world}");
                    assert_eq!(p.cursor, want.cursor, "batch {k}, world {world}");
                    let n = Shard { rank: r, world }.rows_of(rows);
                    assert_eq!(p.pixels.size()[0] as usize, n);
                    let idx: Vec<i64> = (r..rows).step_by(world).map(|i| i as i64).collect();
                    let mine = want.pixels.index_select(0, &tch::Tensor::from_slice(&idx));
                    assert!(p.pixels.equal(&mine), "batch {k}, rank {r} of {world}");
                    if k < 6 && !flip {
                        epoch_ids.extend(ids(p));
                    }
                }
            }
            if !flip {
                epoch_ids.sort();
                assert_eq!(
                    epoch_ids,
                    (0..45).collect::<Vec<_>>(),
                    "world {world}: epoch 0"
                );
            }
        }
    }
    let mut one = Loader::start(&ds, "train", cfg(8, 10, true), at(0)).unwrap();
    let whole: Vec<_> = (0..8).map(|_| one.next_batch().unwrap()).collect();
    // Checkpointed after 2 batches at 4 ranks, resumed at 3 ranks and at 1.
    let cursor = whole[1].cursor.clone();
    let mut three: Vec<_> = (0..3)
        .map(|r| sharded(3, r, true, cursor.clone()))
        .collect();
    let mut alone = Loader::start(&ds, "train", cfg(8, 10, true), cursor).unwrap();
    for want in &whole[2..8] {
        let got = alone.next_batch().unwrap();
        assert!(got.pixels.equal(&want.pixels));
        let parts: Vec<_> = three.iter_mut().map(|l| l.next_batch().unwrap()).collect();
        let total: i64 = parts.iter().map(|p| p.pixels.size()[0]).sum();
        assert_eq!(total, want.pixels.size()[0]);
    }
}
