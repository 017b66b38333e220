//! `ncsn export webdataset`: the splits of an ingested directory as WebDataset tar shards, the
//! format other trainers stream (webdataset, torchdata, Ray, MosaicML's loaders read it).
//!
//! Each row becomes one sample: `<id>.png`, its pixels as a lossless RGB PNG (so the images
//! another trainer sees are exactly the Pillow-exact ones ncsn trains on), `<id>.json` with
//! its `id`, `key`, `label`, `split` and `dataset`, and `<id>.cls`, the label as decimal text,
//! when it has one. `<id>` is the row's id, zero-padded to 9 digits so that tar order is id
//! order. Split `s` goes to `s-000000.tar`, `s-000001.tar`, ... (`--samples-per-shard` samples
//! each), the names WebDataset's brace notation expects (`train-{000000..000004}.tar`).
//!
//! The tars are deterministic (members in id order, mtime 0, uid/gid 0, mode 0644), each
//! written to `<name>.tmp` and renamed into place when complete. Pixels come through the one
//! shard reader, so every row's CRC-32 is checked on the way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use schemas::atomic::TmpFile;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::grid::encode_png;
use crate::read::{ShardReader, ShardRows};
use crate::rgb::Rgb8;

/// How to cut and encode the export.
#[derive(Debug, Clone)]
pub struct WebDatasetOptions {
    /// Samples per tar file (the last of a split holds the rest).
    pub samples_per_shard: u64,
    /// PNG encoding threads; 0: one per core.
    pub threads: usize,
}

impl Default for WebDatasetOptions {
    fn default() -> Self {
        Self {
            samples_per_shard: 10_000,
            threads: 0,
        }
    }
}

/// What the export of one split wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSplit {
    pub split: String,
    pub samples: u64,
    /// The tar files, in order.
    pub files: Vec<PathBuf>,
}

/// `train-000003.tar`: tar file `index` of `split`.
pub fn tar_name(split: &str, index: u64) -> String {
    format!("{split}-{index:06}.tar")
}

/// The tar files `0..count` of `split` in WebDataset's brace notation:
/// `train-{000000..000004}.tar` (or the one name when `count` is 1).
pub fn tar_pattern(split: &str, count: u64) -> String {
    match count {
        0 | 1 => tar_name(split, 0),
        n => format!("{split}-{{000000..{:06}}}.tar", n - 1),
    }
}

/// The number of tar files a split of `rows` rows is cut into (at least one: an empty split
/// still gets an empty tar, so that its brace pattern names a file).
fn tar_count(rows: u64, per_shard: u64) -> u64 {
    rows.div_ceil(per_shard.max(1)).max(1)
}

/// Exports `splits` of `ds` (all of them when empty) into `out` (created if missing; one
/// export at a time holds its lock), which must not hold any of the files it would write, nor
/// be the dataset itself. `progress` is told the number of samples written as it grows.
pub fn export_webdataset(
    ds: &Dataset,
    splits: &[String],
    out: &Path,
    opts: &WebDatasetOptions,
    mut progress: impl FnMut(u64),
) -> Result<Vec<ExportedSplit>> {
    let splits: Vec<String> = if splits.is_empty() {
        ds.manifest.splits.keys().cloned().collect()
    } else {
        splits.to_vec()
    };
    let per_shard = opts.samples_per_shard.max(1);
    let same = |a: &Path, b: &Path| {
        a.canonicalize()
            .ok()
            .is_some_and(|a| Some(a) == b.canonicalize().ok())
    };
    if same(out, &ds.dir) {
        return Err(Error::format(
            out,
            "is the dataset's own directory, whose Parquet readers would stumble on tar files: \
             export into another --out",
        ));
    }
    let _lock = schemas::output::DirLock::exclusive(out, "ncsn export webdataset")?;
    // Every name checked before the first byte is written.
    for split in &splits {
        for k in 0..tar_count(ds.split(split)?.count, per_shard) {
            let path = out.join(tar_name(split, k));
            if path.exists() {
                return Err(Error::format(
                    &path,
                    "already exists: export into a new or empty --out",
                ));
            }
        }
    }
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut done = 0;
    let mut exported = vec![];
    for split in &splits {
        let mut w = SplitWriter {
            out,
            split,
            per_shard,
            index: 0,
            open: None,
            in_tar: 0,
            files: vec![],
        };
        let info = ds.info(split);
        let mut samples = 0;
        for entry in &ds.split(split)?.shards {
            let shard = ds.shard_path(entry);
            for rows in ShardReader::open(&shard)?.batches(1024, None)? {
                let rows = rows?;
                let pngs = encode_all(&rows, info.width, info.height, threads)
                    .map_err(|e| Error::format(&shard, format!("cannot encode a PNG: {e}")))?;
                for (i, png) in pngs.iter().enumerate() {
                    let json = serde_json::json!({
                        "id": rows.ids[i],
                        "key": rows.keys[i],
                        "label": rows.labels[i],
                        "split": split,
                        "dataset": info.dataset,
                    });
                    w.sample(rows.ids[i], png, &json.to_string(), rows.labels[i])?;
                }
                samples += rows.len() as u64;
                done += rows.len() as u64;
                progress(done);
            }
        }
        exported.push(ExportedSplit {
            split: split.clone(),
            samples,
            files: w.finish()?,
        });
    }
    Ok(exported)
}

/// The PNGs of `rows`, in order, encoded on `threads` threads.
fn encode_all(
    rows: &ShardRows,
    width: u32,
    height: u32,
    threads: usize,
) -> std::io::Result<Vec<Vec<u8>>> {
    let n = rows.len();
    let per = n.div_ceil(threads.max(1)).max(1);
    let chunks: Vec<std::io::Result<Vec<Vec<u8>>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| {
                s.spawn(move || {
                    (start..(start + per).min(n))
                        .map(|i| {
                            let img = Rgb8 {
                                width,
                                height,
                                data: rows.image(i).to_vec(),
                            };
                            let mut png = Vec::new();
                            encode_png(&img, &mut png).map(|()| png)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("PNG encoding does not panic"))
            .collect()
    });
    let mut pngs = Vec::with_capacity(n);
    for chunk in chunks {
        pngs.extend(chunk?);
    }
    Ok(pngs)
}

/// The tar files of one split, cut every `per_shard` samples.
struct SplitWriter<'a> {
    out: &'a Path,
    split: &'a str,
    per_shard: u64,
    /// Index of the next tar to open.
    index: u64,
    open: Option<(PathBuf, TmpFile, tar::Builder<BufWriter<File>>)>,
    in_tar: u64,
    files: Vec<PathBuf>,
}

impl SplitWriter<'_> {
    fn sample(&mut self, id: u64, png: &[u8], json: &str, label: Option<i32>) -> Result<()> {
        if self.open.is_none() || self.in_tar == self.per_shard {
            self.close()?;
            self.start()?;
        }
        let (path, _, tar) = self.open.as_mut().expect("a tar is open");
        let key = format!("{id:09}");
        let cls = label.map(|l| l.to_string());
        let mut members = vec![("png", png), ("json", json.as_bytes())];
        if let Some(cls) = &cls {
            members.push(("cls", cls.as_bytes()));
        }
        for (ext, data) in members {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("{key}.{ext}"), data)
                .map_err(Error::io(&*path))?;
        }
        self.in_tar += 1;
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        let path = self.out.join(tar_name(self.split, self.index));
        let tmp = TmpFile::new(&path);
        let file = File::create(tmp.path()).map_err(Error::io(tmp.path()))?;
        let tar = tar::Builder::new(BufWriter::new(file));
        self.open = Some((path, tmp, tar));
        self.index += 1;
        self.in_tar = 0;
        Ok(())
    }

    /// Finishes the open tar (end blocks, flush) and renames it into place.
    fn close(&mut self) -> Result<()> {
        if let Some((path, tmp, tar)) = self.open.take() {
            let finished = tar
                .into_inner()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .and_then(|mut f| f.flush());
            finished.map_err(Error::io(tmp.path()))?;
            tmp.commit().map_err(Error::io(&path))?;
            self.files.push(path);
        }
        Ok(())
    }

    /// Closes the last tar (or writes an empty one for an empty split) and returns them all.
    fn finish(mut self) -> Result<Vec<PathBuf>> {
        if self.open.is_none() && self.files.is_empty() {
            self.start()?;
        }
        self.close()?;
        Ok(self.files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tars_are_cut_by_count_and_named_for_brace_patterns() {
        assert_eq!(tar_name("train", 3), "train-000003.tar");
        assert_eq!(tar_pattern("train", 5), "train-{000000..000004}.tar");
        assert_eq!(tar_pattern("test", 1), "test-000000.tar");
        assert_eq!(tar_count(0, 10), 1);
        assert_eq!(tar_count(10, 10), 1);
        assert_eq!(tar_count(11, 10), 2);
        assert_eq!(tar_count(5, 0), 5);
    }
}
