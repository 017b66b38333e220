//! CIFAR-10 (SPEC §3): the binary (`cifar-10-batches-bin`) and python (`cifar-10-batches-py`)
//! versions, extracted or as the distributed `.tar.gz`. 32×32, no resize; labels kept.
//! train = data_batch_1..5, test = test_batch. Both versions give byte-identical shards: rows
//! are keyed `<batch>/<index>` (e.g. `data_batch_3/0042`) whatever the version.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use schemas::cifar::{chw_to_hwc, PIXEL_BYTES, RECORD_BYTES, TEST_BATCHES, TRAIN_BATCHES};

use super::{pickle, require_exists, Item, Items, Payload, Source, SplitSource};
use crate::{Error, Result};

/// Where the batches are and in which version.
#[derive(Debug, Clone)]
enum Layout {
    /// An extracted directory; `bin` says whether files end in `.bin`.
    Dir { dir: PathBuf, bin: bool },
    /// The `.tar.gz` as downloaded (either version; detected per member).
    Archive(PathBuf),
}

impl Layout {
    /// The files the batches are read from: the six batch files, or the archive.
    fn files(&self) -> Vec<PathBuf> {
        match self {
            Layout::Dir { dir, bin } => TRAIN_BATCHES
                .iter()
                .chain(&TEST_BATCHES)
                .map(|n| {
                    dir.join(if *bin {
                        format!("{n}.bin")
                    } else {
                        n.to_string()
                    })
                })
                .collect(),
            Layout::Archive(p) => vec![p.clone()],
        }
    }
}

/// One decoded batch file: labels and CHW records back to back.
struct Batch {
    name: String,
    labels: Vec<i32>,
    planes: Vec<u8>,
}

/// Opens CIFAR-10 at `input`: an extracted `cifar-10-batches-{bin,py}` directory, a directory
/// containing one, or the `.tar.gz`.
pub fn open(input: &Path) -> Result<Source> {
    require_exists(input)?;
    let layout = detect(input)?;
    let counts = count_batches(&layout)?;
    let mut splits = Vec::new();
    for (split, names) in [("train", &TRAIN_BATCHES[..]), ("test", &TEST_BATCHES[..])] {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let len = names.iter().map(|n| counts[n]).sum();
        let layout = layout.clone();
        splits.push(SplitSource {
            name: split.into(),
            len,
            open: Box::new(move |start| items(&layout, names.clone(), start)),
        });
    }
    Ok(Source {
        dataset: "cifar10".into(),
        input: input.display().to_string(),
        recipe: crate::transforms::Recipe::Identity.describe(),
        height: 32,
        width: 32,
        split_seed: None,
        options: BTreeMap::new(),
        splits,
        decoder: None,
        limits: Default::default(),
        inputs: layout.files(),
    })
}

fn detect(input: &Path) -> Result<Layout> {
    if input.is_file() {
        let name = input.to_string_lossy();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            return Ok(Layout::Archive(input.to_path_buf()));
        }
        return Err(Error::format(
            input,
            "not a CIFAR-10 input: give the extracted cifar-10-batches-{bin,py} directory or the .tar.gz",
        ));
    }
    for dir in [
        input.to_path_buf(),
        input.join("cifar-10-batches-bin"),
        input.join("cifar-10-batches-py"),
    ] {
        if dir.join("data_batch_1.bin").exists() || dir.join("test_batch.bin").exists() {
            return Ok(Layout::Dir { dir, bin: true });
        }
        if dir.join("data_batch_1").exists() || dir.join("test_batch").exists() {
            return Ok(Layout::Dir { dir, bin: false });
        }
    }
    Err(Error::format(
        input,
        "no CIFAR-10 batches here (expected data_batch_1..5 and test_batch, .bin or python)",
    ))
}

/// Images per batch file, read once before ingesting (sizes for planning and progress).
fn count_batches(layout: &Layout) -> Result<HashMap<String, u64>> {
    let all: Vec<String> = TRAIN_BATCHES
        .iter()
        .chain(&TEST_BATCHES)
        .map(|s| s.to_string())
        .collect();
    let mut counts = HashMap::new();
    if let Layout::Dir { dir, bin: true } = layout {
        // The binary version's count is its size: no need to read it twice.
        for name in &all {
            let path = dir.join(format!("{name}.bin"));
            let len = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
            check_bin_size(&path, len)?;
            counts.insert(name.clone(), len / RECORD_BYTES as u64);
        }
        return Ok(counts);
    }
    for b in batches(layout, all) {
        let b = b?;
        counts.insert(b.name, b.labels.len() as u64);
    }
    Ok(counts)
}

fn check_bin_size(path: &Path, len: u64) -> Result<()> {
    if len == 0 || !len.is_multiple_of(RECORD_BYTES as u64) {
        return Err(Error::format(
            path,
            format!(
                "{len} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records \
                 (1 label + {PIXEL_BYTES} pixels): truncated or not the binary version"
            ),
        ));
    }
    Ok(())
}

/// The split's items from index `start` on.
fn items(layout: &Layout, names: Vec<String>, start: u64) -> Result<Items> {
    let mut skip = start;
    let it = batches(layout, names).flat_map(move |b| -> Vec<Result<Item>> {
        let b = match b {
            Ok(b) => b,
            Err(e) => return vec![Err(e)],
        };
        let n = b.labels.len() as u64;
        let from = skip.min(n);
        skip -= from;
        (from as usize..n as usize)
            .map(|i| {
                Ok(Item {
                    key: format!("{}/{i:04}", b.name),
                    label: Some(b.labels[i]),
                    payload: Payload::Pixels(chw_to_hwc(
                        &b.planes[i * PIXEL_BYTES..(i + 1) * PIXEL_BYTES],
                    )),
                })
            })
            .collect()
    });
    Ok(Box::new(it))
}

/// The named batches in order, each read and parsed only when the consumer gets to it.
fn batches(layout: &Layout, names: Vec<String>) -> Box<dyn Iterator<Item = Result<Batch>> + Send> {
    match layout.clone() {
        Layout::Dir { dir, bin } => Box::new(names.into_iter().map(move |name| {
            let path = dir.join(if bin {
                format!("{name}.bin")
            } else {
                name.clone()
            });
            let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
            parse(&path, name, bin, bytes)
        })),
        Layout::Archive(path) => archive_batches(path, names),
    }
}

fn parse(path: &Path, name: String, bin: bool, bytes: Vec<u8>) -> Result<Batch> {
    if bin {
        check_bin_size(path, bytes.len() as u64)?;
        let n = bytes.len() / RECORD_BYTES;
        let mut labels = Vec::with_capacity(n);
        let mut planes = Vec::with_capacity(n * PIXEL_BYTES);
        for (i, rec) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            if rec[0] > 9 {
                return Err(Error::format(
                    path,
                    format!("record {i} has label {} (CIFAR-10 labels are 0-9)", rec[0]),
                ));
            }
            labels.push(rec[0] as i32);
            planes.extend_from_slice(&rec[1..]);
        }
        Ok(Batch {
            name,
            labels,
            planes,
        })
    } else {
        let b = pickle::cifar_batch(&bytes).map_err(|m| Error::format(path, m))?;
        if let Some(l) = b.labels.iter().find(|&&l| !(0..=9).contains(&l)) {
            return Err(Error::format(
                path,
                format!("label {l} (CIFAR-10 labels are 0-9)"),
            ));
        }
        Ok(Batch {
            name,
            labels: b.labels,
            planes: b.data,
        })
    }
}

/// The largest batch file read out of the archive: 10 000 records are 30 730 000 bytes (the
/// pickle a little more), so 64 MiB is twice any real batch.
const MAX_BATCH_BYTES: u64 = 64 << 20;

/// Streams the `.tar.gz` once on a reader thread and hands the named batches over in order
/// (members that come early are held until their turn; a batch is ~30 MB).
fn archive_batches(
    path: PathBuf,
    names: Vec<String>,
) -> Box<dyn Iterator<Item = Result<Batch>> + Send> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(1);
    std::thread::spawn(move || {
        let run = || -> Result<()> {
            let file = File::open(&path).map_err(Error::io(&path))?;
            let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let mut pending: HashMap<String, (PathBuf, bool, Vec<u8>)> = HashMap::new();
            let mut next = 0;
            let entries = ar.entries().map_err(Error::io(&path))?;
            for entry in entries {
                if next == names.len() {
                    break;
                }
                let mut entry = entry.map_err(Error::io(&path))?;
                let member = entry.path().map_err(Error::io(&path))?.into_owned();
                let file_name = member
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (base, bin) = match file_name.strip_suffix(".bin") {
                    Some(b) => (b.to_string(), true),
                    None => (file_name.clone(), false),
                };
                if !names.contains(&base) {
                    continue;
                }
                // The header's size is the archive's word: a batch is ~30 MB, so anything
                // over MAX_BATCH_BYTES (a gzip bomb, a corrupt header) is refused unread.
                let too_big = || {
                    Error::format(
                        path.join(&member),
                        format!("over {MAX_BATCH_BYTES} bytes, not a CIFAR-10 batch"),
                    )
                };
                if entry.size() > MAX_BATCH_BYTES {
                    return Err(too_big());
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                (&mut entry)
                    .take(MAX_BATCH_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(Error::io(path.join(&member)))?;
                if bytes.len() as u64 > MAX_BATCH_BYTES {
                    return Err(too_big());
                }
                pending.insert(base, (path.join(&member), bin, bytes));
                while let Some((p, bin, bytes)) = names.get(next).and_then(|n| pending.remove(n)) {
                    let batch = parse(&p, names[next].clone(), bin, bytes)?;
                    next += 1;
                    if tx.send(Ok(batch)).is_err() {
                        return Ok(()); // the consumer stopped (limit reached)
                    }
                }
            }
            if let Some(missing) = names.get(next) {
                return Err(Error::format(
                    &path,
                    format!("the archive has no CIFAR-10 batch `{missing}`"),
                ));
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.send(Err(e));
        }
    });
    Box::new(rx.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_size_binary_batch_names_the_file() {
        let err = check_bin_size(Path::new("x/data_batch_2.bin"), 3073 * 2 + 5)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_batch_2.bin") && err.contains("3073"),
            "{err}"
        );
    }
}
