//! Dataset readers (SPEC §3). Each turns its input, as distributed, into a [`Source`]: the
//! recipe, the output geometry, and per split an ordered stream of items that the ingest writer
//! decodes and transforms in parallel.
//!
//! Items are cheap to produce (a path, the encoded bytes or, for CIFAR-10, the final pixels):
//! the expensive decode + transform runs on the writer's worker threads, in [`Source::prepare`].

pub mod celeba;
pub mod cifar10;
pub mod ffhq;
pub mod folder;
mod lmdb_check;
pub mod lsun;
mod pickle;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::decode::Limits;
use crate::transforms::Recipe;
use crate::{Error, Result};

/// The largest output side (`--resolution`). A row of 4096² RGB is 48 MiB, so a chunk in
/// flight (at least 16 rows per worker batch) is already ~800 MiB and a default shard holds 5
/// rows; FFHQ's native 1024 leaves four times the headroom any recipe here needs. Far below
/// the default pixel budget, so the output is never the largest buffer of a decode.
pub const MAX_RESOLUTION: u32 = 4096;

/// One input image before decoding.
#[derive(Debug)]
pub struct Item {
    /// Source file name or LMDB key, stored in the shard's `key` column.
    pub key: String,
    pub label: Option<i32>,
    pub payload: Payload,
}

#[derive(Debug)]
pub enum Payload {
    /// Final pixels (uint8 RGB HWC at the output size), e.g. CIFAR-10 records.
    Pixels(Vec<u8>),
    /// An encoded image (JPEG/PNG/WebP) to decode and transform.
    Encoded(Vec<u8>),
    /// A file to read, then decode and transform (read on the worker thread).
    File(PathBuf),
    /// The item exists but could not be read (the reason ends up in the manifest).
    Unreadable(String),
}

/// An ordered stream of items. An `Err` is fatal for the run (e.g. the archive itself is
/// unreadable); a bad single image is an `Item` whose preparation fails, and gets rejected.
pub type Items = Box<dyn Iterator<Item = Result<Item>> + Send>;

/// Opens a split's item stream at item index `start` (resume and `--partition` skip ahead).
pub type Opener = Box<dyn Fn(u64) -> Result<Items> + Send + Sync>;

/// Decodes + transforms encoded image bytes to final pixels within the limits; `Err` is the
/// rejection reason.
pub type Decoder = Box<dyn Fn(&[u8], Limits) -> std::result::Result<Vec<u8>, String> + Send + Sync>;

pub struct SplitSource {
    pub name: String,
    /// Number of items the stream yields from index 0.
    pub len: u64,
    pub open: Opener,
}

/// A dataset ready to ingest.
pub struct Source {
    /// `cifar10`, `celeba`, `lsun`, `ffhq` or `folder`.
    pub dataset: String,
    /// The input as given (provenance, and checked on `--resume`).
    pub input: String,
    /// Transform recipe, e.g. `center_crop(140)|resize(64,bilinear)`.
    pub recipe: String,
    pub height: u32,
    pub width: u32,
    /// Seed of a random split when the dataset has no official one (FFHQ).
    pub split_seed: Option<u64>,
    /// Source-specific options that change the bytes (recorded in the manifest).
    pub options: BTreeMap<String, String>,
    pub splits: Vec<SplitSource>,
    /// How `Encoded`/`File` payloads become pixels; `None` when every item is `Pixels`.
    pub decoder: Option<Decoder>,
    /// What one encoded image may cost the decoder (`--max-pixels`). Not in the manifest's
    /// options, which a `--resume` compares: it never changes an accepted image's bytes, and
    /// a run killed by a huge image should resume with a lower limit. An image it refuses is
    /// listed with the limit in its reason.
    pub limits: Limits,
    /// The files the items are read from (images, archives, batch files, `data.mdb`): an
    /// ingest lists their sizes and mtimes when it starts, so that `--resume` refuses an input
    /// that changed since.
    pub inputs: Vec<PathBuf>,
}

impl Source {
    /// A dataset of encoded images (JPEG/PNG/WebP) that `recipe` decodes and transforms to
    /// `size`², on the workers. Its options record the resolution; the caller adds the rest.
    pub fn encoded(
        dataset: &str,
        input: &std::path::Path,
        size: u32,
        recipe: Recipe,
        splits: Vec<SplitSource>,
    ) -> Source {
        Source {
            dataset: dataset.into(),
            input: input.display().to_string(),
            recipe: recipe.describe(),
            height: size,
            width: size,
            split_seed: None,
            options: BTreeMap::from([("resolution".into(), size.to_string())]),
            splits,
            decoder: Some(recipe_decoder(recipe)),
            limits: Limits::default(),
            inputs: Vec::new(),
        }
    }

    /// This source with `inputs` as the files its items are read from ([`Source::inputs`]).
    pub fn with_inputs(mut self, inputs: impl IntoIterator<Item = PathBuf>) -> Source {
        self.inputs = inputs.into_iter().collect();
        self
    }

    pub fn pixel_bytes(&self) -> usize {
        self.height as usize * self.width as usize * 3
    }

    /// Keeps only the named split (`--split`), or errs listing the ones there are.
    pub fn select_split(&mut self, name: &str) -> Result<()> {
        let have: Vec<String> = self.splits.iter().map(|s| s.name.clone()).collect();
        self.splits.retain(|s| s.name == name);
        if self.splits.is_empty() {
            return Err(Error::Usage(format!(
                "{} has no split `{name}` (it has: {})",
                self.dataset,
                have.join(", ")
            )));
        }
        self.options.insert("split".into(), name.into());
        Ok(())
    }

    /// Keeps the first `n` items of every split (`--limit`).
    pub fn limit(&mut self, n: u64) {
        for s in &mut self.splits {
            s.len = s.len.min(n);
        }
        self.options.insert("limit".into(), n.to_string());
    }

    /// Final pixels of one item, or the reason it is rejected. Runs on worker threads.
    pub fn prepare(&self, payload: Payload) -> std::result::Result<Vec<u8>, String> {
        let encoded = match payload {
            Payload::Pixels(p) => {
                return if p.len() == self.pixel_bytes() {
                    Ok(p)
                } else {
                    Err(format!(
                        "{} pixel bytes, expected {}",
                        p.len(),
                        self.pixel_bytes()
                    ))
                };
            }
            Payload::Unreadable(why) => return Err(why),
            Payload::Encoded(b) => b,
            Payload::File(p) => read_file(&p, self.limits.max_file_bytes())?,
        };
        let decode = self
            .decoder
            .as_ref()
            .ok_or_else(|| format!("{}: no decoder for encoded images", self.dataset))?;
        let px = decode(&encoded, self.limits)?;
        if px.len() != self.pixel_bytes() {
            return Err(format!(
                "transform gave {} bytes, expected {}",
                px.len(),
                self.pixel_bytes()
            ));
        }
        Ok(px)
    }
}

/// The bytes of the image file `path`, which must be a regular file of at most `max_bytes`:
/// a name such as `x.jpg` may be a symlink to `/dev/zero` (read forever), a FIFO (opening it
/// blocks) or a sparse file of a terabyte. Reading stops one byte past the size it had when
/// opened.
fn read_file(path: &std::path::Path, max_bytes: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a device, FIFO or directory)",
            path.display()
        ));
    }
    if meta.len() > max_bytes {
        return Err(format!(
            "{} is {} bytes, more than any image within --max-pixels can be ({max_bytes})",
            path.display(),
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(meta.len() + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > meta.len() {
        return Err(format!(
            "{} grew past its {} bytes while being read",
            path.display(),
            meta.len()
        ));
    }
    Ok(bytes)
}

/// Errs with a one-line message naming `path` when it does not exist.
pub fn require_exists(path: &std::path::Path) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(Error::format(path, "no such file or directory"))
    }
}

/// The decoder of a recipe: the Pillow-exact decode + transform ([`crate::transforms`]).
fn recipe_decoder(recipe: Recipe) -> Decoder {
    Box::new(move |bytes: &[u8], limits| {
        crate::transforms::process_encoded_with(bytes, &recipe, true, limits)
            .map(|img| img.data)
            .map_err(|e| e.to_string())
    })
}

/// A split made of files read on the worker threads: `(key, path)` in dataset order.
pub fn file_split(name: &str, files: Vec<(String, PathBuf)>) -> SplitSource {
    let files = std::sync::Arc::new(files);
    SplitSource {
        name: name.into(),
        len: files.len() as u64,
        open: Box::new(move |start| {
            let files = files.clone();
            Ok(Box::new((start as usize..files.len()).map(move |i| {
                let (key, path) = &files[i];
                Ok(Item {
                    key: key.clone(),
                    label: None,
                    payload: Payload::File(path.clone()),
                })
            })))
        }),
    }
}

/// Every JPEG/PNG/WebP file under `dir`, as (path relative to `dir` with `/`, path), sorted
/// by the relative path so the order never depends on the filesystem. Symlinked directories
/// are followed, but each real directory is walked once (in sorted order, so which path names
/// it is fixed): a link back up the tree listed its images again under ever longer paths, 41
/// times over before the kernel's symlink limit stopped it.
pub fn image_files(dir: &std::path::Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(
        dir: &std::path::Path,
        seen: &mut std::collections::HashSet<PathBuf>,
        out: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let real = std::fs::canonicalize(dir).map_err(Error::io(dir))?;
        if !seen.insert(real) {
            return Ok(());
        }
        let mut entries = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(Error::io(dir))?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, seen, out)?;
            } else if is_image_name(&p.to_string_lossy()) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut paths = Vec::new();
    walk(dir, &mut Default::default(), &mut paths)?;
    let mut files: Vec<(String, PathBuf)> = paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap_or(&p);
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (key, p)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// JPEG, PNG or WebP by extension (case-insensitive).
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".webp"]
        .iter()
        .any(|e| lower.ends_with(e))
}
