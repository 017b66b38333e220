//! Small ingested directories (shards + manifest) written with the same shard writer
//! `ncsn ingest` uses, so tests of calibration, loading and training need no dataset reader.

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::layout::Layout;
use schemas::manifest::{Manifest, SplitManifest};
use schemas::shard::ShardInfo;
use schemas::JsonDocument;
use shards::{Row, ShardWriter};

/// The geometry of a test split: `height × width` RGB, dataset "test", recipe "none".
pub fn info(split: &str, height: u32, width: u32) -> ShardInfo {
    ShardInfo {
        height,
        width,
        channels: 3,
        dataset: "test".into(),
        split: split.into(),
        recipe: "none".into(),
    }
}

/// One shard of a test split: its geometry and rows.
pub type Shard = (ShardInfo, Vec<Row>);

/// [`write_dataset_in`] the flat layout of earlier ncsn versions (`manifest.json`,
/// `<split>-<k>.parquet`), which every reader still reads: the calibration, trainer and
/// integrity tests built on these fixtures keep covering it, the tests of `ncsn ingest` (and
/// of everything run on its output) cover the current layout.
pub fn write_dataset(dir: &Path, manifest_hw: (u32, u32), splits: &[(&str, Vec<Shard>)]) {
    write_dataset_in(dir, Layout::Flat, manifest_hw, splits);
}

/// Writes each split's shards in `layout` (`<split>-<k>`, one per entry, each with its own
/// geometry and rows; ids continue across a split's shards) and a manifest with the geometry
/// `manifest_hw` listing them.
pub fn write_dataset_in(
    dir: &Path,
    layout: Layout,
    manifest_hw: (u32, u32),
    splits: &[(&str, Vec<Shard>)],
) {
    std::fs::create_dir_all(dir).unwrap();
    let mut m = Manifest::new("test", "generated", "none", manifest_hw.0, manifest_hw.1);
    for (split, shards) in splits {
        let mut sm = SplitManifest::default();
        let mut first_id = 0;
        for (k, (info, rows)) in shards.iter().enumerate() {
            let file = layout.shard_file(split, k as u64);
            let path = dir.join(&file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut w = ShardWriter::create(&path, info, first_id, 16).unwrap();
            w.write(rows).unwrap();
            let mut entry = w.finish().unwrap();
            entry.file = file;
            first_id += entry.rows;
            sm.count += entry.rows;
            sm.shards.push(entry);
        }
        m.splits.insert(split.to_string(), sm);
    }
    m.write_atomic(&dir.join(layout.manifest_file())).unwrap();
}

/// Shard `k` of `split` of the ingested directory `dir`, whatever its layout.
pub fn shard_path(dir: &Path, split: &str, k: usize) -> PathBuf {
    let ds = shards::Dataset::open(dir).unwrap();
    ds.shard_path(&ds.split(split).unwrap().shards[k])
}

/// Turns an ingest output directory in the current layout (finished, partitioned or
/// interrupted) into what an earlier ncsn left in the flat layout: the shards out of their
/// split folders, the `_` dropped from its manifests, journals and input listings, and the
/// manifests' and journals' shard paths without the folder. Shards keep their bytes.
pub fn flatten(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && name.starts_with("split=") {
            for shard in std::fs::read_dir(&path).unwrap() {
                let shard = shard.unwrap().path();
                std::fs::rename(&shard, dir.join(shard.file_name().unwrap())).unwrap();
            }
            std::fs::remove_dir(&path).unwrap();
        } else if let Some(flat) = name.strip_prefix('_') {
            // `"split=train/train-00000.parquet"` → `"train-00000.parquet"`.
            let text = std::fs::read_to_string(&path).unwrap();
            let mut parts = text.split("\"split=");
            let mut flat_text = parts.next().unwrap().to_string();
            for part in parts {
                flat_text.push('"');
                flat_text.push_str(part.split_once('/').unwrap().1);
            }
            std::fs::write(dir.join(flat), flat_text).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// Random images, ids from `first_id`, keys `img<id>.png`.
pub fn random_rows(n: usize, dims: usize, first_id: u64, seed: u64) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n as u64)
        .map(|i| Row {
            id: first_id + i,
            key: format!("img{}.png", first_id + i),
            label: None,
            pixels: (0..dims).map(|_| rng.random::<u8>()).collect(),
        })
        .collect()
}

/// `n` random `h × w` images as the `train` split, in shards of at most `per_shard` rows.
pub fn random_dataset(dir: &Path, h: u32, w: u32, n: usize, per_shard: usize, seed: u64) {
    let rows = random_rows(n, (h * w * 3) as usize, 0, seed);
    let shards = rows
        .chunks(per_shard.max(1))
        .map(|c| (info("train", h, w), c.to_vec()))
        .collect();
    write_dataset(dir, (h, w), &[("train", shards)]);
}

/// Row `id`'s pixels: its id little-endian in the first 8 bytes (so a test can tell which row
/// a batch holds), then a smooth pattern.
pub fn id_pixels(id: u64, bytes: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..bytes)
        .map(|j| ((j as u64 * 7 + id * 13) % 251) as u8)
        .collect();
    if bytes >= 8 {
        p[..8].copy_from_slice(&id.to_le_bytes());
    }
    p
}

/// A `size × size` dataset whose pixels name their rows ([`id_pixels`]): `train` with
/// `n_train` rows over `shards` shards and, if `n_test > 0`, a one-shard `test` split; in the
/// flat layout, as [`write_dataset`].
pub fn id_dataset(dir: &Path, size: u32, n_train: u64, shards: u64, n_test: u64) {
    id_dataset_in(dir, Layout::Flat, size, n_train, shards, n_test);
}

/// [`id_dataset`] in `layout`.
pub fn id_dataset_in(
    dir: &Path,
    layout: Layout,
    size: u32,
    n_train: u64,
    shards: u64,
    n_test: u64,
) {
    let bytes = (size * size * 3) as usize;
    let mut splits = vec![];
    for (split, n, k) in [("train", n_train, shards.max(1)), ("test", n_test, 1)] {
        if n == 0 {
            continue;
        }
        let offset = if split == "test" { 1 << 20 } else { 0 };
        let rows: Vec<Row> = (0..n)
            .map(|i| Row {
                id: i,
                key: format!("{split}{i}"),
                label: None,
                pixels: id_pixels(i + offset, bytes),
            })
            .collect();
        let per = n.div_ceil(k) as usize;
        let shards = rows
            .chunks(per)
            .map(|c| (info(split, size, size), c.to_vec()))
            .collect();
        splits.push((split, shards));
    }
    write_dataset_in(dir, layout, (size, size), &splits);
}

/// Flips one byte inside the page data of row group 0's `pixels` column chunk of `shard` (the
/// middle byte of the chunk, past its page header when the chunk is one page, as in these small
/// test shards): what a bad disk sector or a careless copy does to a shard. Returns the offset.
pub fn flip_pixel_byte(shard: &Path) -> u64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(shard).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    let chunk = (0..group.num_columns())
        .map(|i| group.column(i))
        .find(|c| c.column_path().string() == schemas::shard::COL_PIXELS)
        .expect("a shard has a pixels column");
    let (start, len) = chunk.byte_range();
    flip_byte(shard, start + len / 2);
    start + len / 2
}

/// Inverts every bit of the byte at `offset` of `file`.
pub fn flip_byte(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset as usize] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}
