//! CelebA (SPEC §3): `img_align_celeba/*.jpg` (178×218) or `img_align_celeba.zip`, with
//! `list_eval_partition.txt` (0 train, 1 valid, 2 test). CenterCrop(140) then Resize(64,
//! bilinear); `--resolution` changes the output size. Rows follow the partition file's order.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::{file_split, require_exists, Item, Payload, Source, SplitSource};
use crate::transforms::{Filter, Recipe};
use crate::{Error, Result};

pub const CROP: u32 = 140;
pub const DEFAULT_RESOLUTION: u32 = 64;
const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// Opens CelebA in `input`: a directory holding (directly, or under `Img/`, `Eval/`, `Anno/`
/// as on the authors' drive) the images folder or zip and `list_eval_partition.txt`.
pub fn open(input: &Path, resolution: Option<u32>) -> Result<Source> {
    require_exists(input)?;
    let size = resolution.unwrap_or(DEFAULT_RESOLUTION);
    let find = |name: &str| {
        ["", "Img", "Eval", "Anno"]
            .iter()
            .map(|d| input.join(d).join(name))
            .find(|p| p.exists())
    };
    let partition = find("list_eval_partition.txt").ok_or_else(|| {
        Error::format(
            input.join("list_eval_partition.txt"),
            "CelebA's split file is missing (looked here and in Eval/, Anno/, Img/)",
        )
    })?;
    let lists = read_partition(&partition)?;
    let recipe = Recipe::CropResize {
        crop: CROP,
        size,
        filter: Filter::Bilinear,
    };
    // The files the items come from: the split file, then the listed images or the zip.
    let mut inputs = vec![partition.clone()];
    let splits = if let Some(dir) = find("img_align_celeba").filter(|p| p.is_dir()) {
        inputs.extend(lists.iter().flat_map(|(_, f)| f).map(|f| dir.join(f)));
        lists
            .into_iter()
            .map(|(name, files)| {
                let files = files
                    .into_iter()
                    .map(|f| (f.clone(), dir.join(&f)))
                    .collect();
                file_split(&name, files)
            })
            .collect()
    } else if let Some(zip) = find("img_align_celeba.zip") {
        inputs.push(zip.clone());
        zip_splits(&zip, lists)?
    } else {
        return Err(Error::format(
            input.join("img_align_celeba"),
            "no CelebA images here (neither img_align_celeba/ nor img_align_celeba.zip)",
        ));
    };
    Ok(Source::encoded("celeba", input, size, recipe, splits).with_inputs(inputs))
}

/// `list_eval_partition.txt`: `<file> <0|1|2>` per line, any whitespace. File names are
/// joined to the images folder, so one that is absolute or climbs out with `..` is refused
/// (a hostile list would otherwise ingest any file on the machine); an empty list is refused
/// rather than ingested as nothing.
fn read_partition(path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let mut lists: Vec<Vec<String>> = vec![Vec::new(); 3];
    for (n, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let (Some(file), Some(part)) = (f.next(), f.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::format(
                path,
                format!("line {}: expected `<file> <0|1|2>`, got `{line}`", n + 1),
            ));
        };
        let k: usize = part.parse().ok().filter(|&k| k < 3).ok_or_else(|| {
            Error::format(
                path,
                format!("line {}: partition `{part}` is not 0, 1 or 2", n + 1),
            )
        })?;
        let inside = Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(Error::format(
                path,
                format!(
                    "line {}: `{file}` is not a file name inside the images folder \
                     (absolute, or `..`)",
                    n + 1
                ),
            ));
        }
        lists[k].push(file.to_string());
    }
    if lists.iter().all(|l| l.is_empty()) {
        return Err(Error::format(
            path,
            "lists no images (empty file): nothing to ingest",
        ));
    }
    Ok(SPLITS
        .iter()
        .map(|s| s.to_string())
        .zip(lists)
        .filter(|(_, l)| !l.is_empty())
        .collect())
}

/// Splits read from the zip on the reader thread (entries are small; decoding dominates).
fn zip_splits(zip: &Path, lists: Vec<(String, Vec<String>)>) -> Result<Vec<SplitSource>> {
    let file = std::fs::File::open(zip).map_err(Error::io(zip))?;
    let archive = zip::ZipArchive::new(file)
        .map_err(|e| Error::format(zip, format!("not a readable zip: {e}")))?;
    // file name -> entry index (entries are `img_align_celeba/000001.jpg`).
    let index: HashMap<String, usize> = (0..archive.len())
        .filter_map(|i| {
            let name = archive.name_for_index(i)?;
            let base = name.rsplit('/').next()?.to_string();
            Some((base, i))
        })
        .collect();
    let index = Arc::new(index);
    let zip: PathBuf = zip.to_path_buf();
    Ok(lists
        .into_iter()
        .map(|(name, files)| {
            let files = Arc::new(files);
            let (index, zip) = (index.clone(), zip.clone());
            SplitSource {
                name,
                len: files.len() as u64,
                open: Box::new(move |start| {
                    let f = std::fs::File::open(&zip).map_err(Error::io(&zip))?;
                    let mut ar = zip::ZipArchive::new(f)
                        .map_err(|e| Error::format(&zip, format!("not a readable zip: {e}")))?;
                    let (files, index) = (files.clone(), index.clone());
                    Ok(Box::new((start as usize..files.len()).map(move |i| {
                        let key = files[i].clone();
                        let payload = match index.get(&key) {
                            None => Payload::Unreadable(
                                "listed in list_eval_partition.txt but not in the zip".into(),
                            ),
                            Some(&k) => match ar.by_index(k) {
                                Ok(e) => read_entry(e),
                                Err(e) => Payload::Unreadable(format!("zip entry: {e}")),
                            },
                        };
                        Ok(Item {
                            key,
                            label: None,
                            payload,
                        })
                    })) as super::Items)
                }),
            }
        })
        .collect())
}

/// An encoded image is already compressed, so deflate barely shrinks it: an entry that inflates
/// to more than this many times its stored size (and over [`INFLATE_FLOOR`]) is a zip bomb,
/// refused before it is held in memory.
const MAX_INFLATE_RATIO: u64 = 100;
const INFLATE_FLOOR: u64 = 1 << 20;

/// One zip entry's bytes, reading at most what [`MAX_INFLATE_RATIO`] allows (the declared size
/// is the archive's word, not a bound).
fn read_entry(entry: zip::read::ZipFile<'_, std::fs::File>) -> Payload {
    let cap = (entry.compressed_size().saturating_mul(MAX_INFLATE_RATIO)).max(INFLATE_FLOOR);
    let bomb = || {
        Payload::Unreadable(format!(
            "zip entry inflates to over {cap} bytes, {MAX_INFLATE_RATIO}x its stored size \
             (a zip bomb?)"
        ))
    };
    if entry.size() > cap {
        return bomb();
    }
    let mut bytes = Vec::new();
    match entry.take(cap + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > cap => bomb(),
        Ok(_) => Payload::Encoded(bytes),
        Err(e) => Payload::Unreadable(format!("zip entry: {e}")),
    }
}
