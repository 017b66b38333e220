//! FFHQ (SPEC §3): `images1024x1024/NNNNN/NNNNN.png` (70 000 PNGs, 1024²), or the authors' LMDB
//! (keys `{res}-{index:05}`, values JPEG, plus a `length` key). Resized to 256 with Pillow's
//! LANCZOS by default (how the authors' LMDB was made), any power of two via `--resolution`.
//!
//! FFHQ has no official test set: the split is seeded and recorded in the manifest
//! (`split_seed`, `options.split_rule`): a Fisher–Yates shuffle of the indices `0..N` driven by
//! SplitMix64(seed); the first `N/10` shuffled indices are `test`, the rest `train`, each kept in
//! ascending order (70 000 → 63 000 / 7 000; the 90/10 ratio holds for any N).

use std::path::Path;
use std::sync::Arc;

use schemas::rng::SplitMix64;

use super::{file_split, image_files, lsun, require_exists, Item, Payload, Source, SplitSource};
use crate::transforms::{Filter, Recipe};
use crate::{Error, Result};

pub const DEFAULT_RESOLUTION: u32 = 256;
pub const DEFAULT_SPLIT_SEED: u64 = 2020;
pub const SPLIT_RULE: &str =
    "fisher-yates(0..N, splitmix64(seed)); first N/10 -> test, rest -> train; each ascending";

/// (train, test) indices of `n` images for `seed` (see the module docs).
pub fn split_indices(n: u64, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let mut perm: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..perm.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let n_test = (n / 10) as usize;
    let mut test = perm[..n_test].to_vec();
    let mut train = perm[n_test..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

pub fn open(input: &Path, resolution: Option<u32>, seed: Option<u64>) -> Result<Source> {
    require_exists(input)?;
    let size = resolution.unwrap_or(DEFAULT_RESOLUTION);
    if !size.is_power_of_two() {
        return Err(Error::Usage(format!(
            "ffhq --resolution {size}: must be a power of two (e.g. 256)"
        )));
    }
    let seed = seed.unwrap_or(DEFAULT_SPLIT_SEED);
    let is_lmdb = input.join("data.mdb").exists() || input.extension().is_some_and(|e| e == "mdb");
    // The files the items come from: the LMDB's data, or (below) the PNGs.
    let mut inputs = vec![lsun::data_file(input)];
    let (splits, recipe) = if is_lmdb {
        lmdb_splits(input, size, seed)?
    } else {
        let dir = if input.join("images1024x1024").is_dir() {
            input.join("images1024x1024")
        } else {
            input.to_path_buf()
        };
        let files: Vec<_> = image_files(&dir)?
            .into_iter()
            .filter(|(k, _)| k.to_ascii_lowercase().ends_with(".png"))
            .collect();
        if files.is_empty() {
            return Err(Error::format(
                &dir,
                "no FFHQ PNGs here (expected images1024x1024/NNNNN/NNNNN.png)",
            ));
        }
        inputs = files.iter().map(|(_, p)| p.clone()).collect();
        let (train, test) = split_indices(files.len() as u64, seed);
        let pick = |idx: &[u64]| idx.iter().map(|&i| files[i as usize].clone()).collect();
        let recipe = Recipe::ResizeCrop {
            size,
            filter: Filter::Lanczos,
        };
        (
            vec![
                file_split("train", pick(&train)),
                file_split("test", pick(&test)),
            ],
            recipe,
        )
    };
    let mut source = Source::encoded("ffhq", input, size, recipe, splits).with_inputs(inputs);
    source.split_seed = Some(seed);
    source
        .options
        .insert("split_rule".into(), SPLIT_RULE.into());
    Ok(source)
}

/// The authors' LMDB: images are already at `{res}` (JPEG), so they are only decoded
/// (`Identity`); `length` says how many there are.
fn lmdb_splits(input: &Path, size: u32, seed: u64) -> Result<(Vec<SplitSource>, Recipe)> {
    let env = lsun::open_env(input)?;
    let lmdb = |e: heed::Error| Error::format(input, format!("LMDB: {e}"));
    let n = {
        // The database handle first: it takes (and commits) a read transaction of its own.
        let db = lsun::main_db(&env, input)?;
        let rtxn = env.read_txn().map_err(lmdb)?;
        let length = db
            .get(&rtxn, b"length")
            .map_err(lmdb)?
            .ok_or_else(|| Error::format(input, "not an FFHQ LMDB: no `length` key"))?;
        let n: u64 = std::str::from_utf8(length)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::format(input, "not an FFHQ LMDB: `length` is not a number"))?;
        // The split allocates `length` indices: a corrupt one must not be believed.
        let entries = db.len(&rtxn).map_err(lmdb)?;
        if n >= entries {
            return Err(Error::format(
                input,
                format!("corrupt FFHQ LMDB: `length` is {n} but it holds {entries} keys"),
            ));
        }
        let first = format!("{size}-{:05}", 0);
        if n > 0 && db.get(&rtxn, first.as_bytes()).map_err(lmdb)?.is_none() {
            let have: std::collections::BTreeSet<String> = db
                .iter(&rtxn)
                .map_err(lmdb)?
                .filter_map(|kv| kv.ok())
                .filter_map(|(k, _)| {
                    std::str::from_utf8(k)
                        .ok()?
                        .split_once('-')
                        .map(|p| p.0.to_string())
                })
                .collect();
            return Err(Error::format(
                input,
                format!(
                    "no key `{first}`: this FFHQ LMDB holds resolutions {}",
                    have.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        n
    };
    let (train, test) = split_indices(n, seed);
    let mut splits = Vec::new();
    for (name, idx) in [("train", train), ("test", test)] {
        let idx = Arc::new(idx);
        let (env, path) = (env.clone(), input.to_path_buf());
        splits.push(SplitSource {
            name: name.into(),
            len: idx.len() as u64,
            open: Box::new(move |start| {
                let (env, path, idx) = (env.clone(), path.clone(), idx.clone());
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Item>>(64);
                std::thread::spawn(move || {
                    let run = || -> Result<()> {
                        let lmdb = |e: heed::Error| Error::format(&path, format!("LMDB: {e}"));
                        // The database handle first: it takes (and commits) a read transaction of its own.
                        let db = lsun::main_db(&env, &path)?;
                        let rtxn = env.read_txn().map_err(lmdb)?;
                        for &i in &idx[start as usize..] {
                            let key = format!("{size}-{i:05}");
                            let payload = match db.get(&rtxn, key.as_bytes()).map_err(lmdb)? {
                                Some(v) => Payload::Encoded(v.to_vec()),
                                None => Payload::Unreadable(format!(
                                    "key missing although `length` is {}",
                                    idx.len()
                                )),
                            };
                            let item = Item {
                                key,
                                label: None,
                                payload,
                            };
                            if tx.send(Ok(item)).is_err() {
                                return Ok(());
                            }
                        }
                        Ok(())
                    };
                    if let Err(e) = run() {
                        let _ = tx.send(Err(e));
                    }
                });
                Ok(Box::new(rx.into_iter()) as super::Items)
            }),
        });
    }
    Ok((splits, Recipe::Identity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_90_10_disjoint_and_seeded() {
        let (train, test) = split_indices(70_000, DEFAULT_SPLIT_SEED);
        assert_eq!((train.len(), test.len()), (63_000, 7_000));
        let mut all = [train.clone(), test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..70_000).collect::<Vec<_>>());
        assert_eq!(split_indices(70_000, DEFAULT_SPLIT_SEED).1, test);
        assert_ne!(split_indices(70_000, 1).1, test);
        assert_eq!(split_indices(25, 3).1.len(), 2);
    }

    #[test]
    fn split_of_the_default_seed_is_pinned() {
        // Recorded in manifests (`split_rule`): computed by an independent SplitMix64 +
        // Fisher–Yates in Python; a change here changes every FFHQ test set.
        assert_eq!(split_indices(20, DEFAULT_SPLIT_SEED).1, [5, 8]);
        assert_eq!(
            split_indices(100, DEFAULT_SPLIT_SEED).1,
            [8, 30, 41, 70, 74, 76, 77, 81, 86, 97]
        );
        assert_eq!(
            split_indices(70_000, DEFAULT_SPLIT_SEED).1[..5],
            [4, 11, 12, 38, 74]
        );
    }
}
