//! LSUN (SPEC §3): the official LMDB per category and split (`<category>_train_lmdb`,
//! `<category>_val_lmdb`), keys are image ids, values WebP or JPEG. The dataset index is the
//! LMDB's sorted key order. Resize(r) then CenterCrop(r), r = 96 by default (the paper uses 96
//! for church_outdoor, 128 for bedroom and tower).

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Env, EnvFlags, EnvOpenOptions};

use super::{require_exists, Item, Items, Payload, Source, SplitSource};
use crate::decode::sniff;
use crate::transforms::{Filter, Recipe};
use crate::{Error, Result};

pub const DEFAULT_RESOLUTION: u32 = 96;

/// Opens an LMDB directory read-only and without a lock file (the input may sit on a
/// read-only share). Errors name the path.
pub fn open_env(path: &Path) -> Result<Env> {
    require_exists(path)?;
    let data = data_file(path);
    if !data.exists() {
        return Err(Error::format(path, "not an LMDB (no data.mdb inside)"));
    }
    // liblmdb faults (SIGBUS) on a truncated or corrupt file instead of returning an error.
    super::lmdb_check::check(&data).map_err(|m| Error::format(&data, m))?;
    let mut opts = EnvOpenOptions::new();
    opts.max_dbs(1);
    // SAFETY: READ_ONLY + NO_LOCK are sound as long as nobody writes the LMDB while we read it,
    // which holds for a distributed dataset; opening is unsafe in heed for that reason only.
    unsafe {
        opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK);
        if !path.is_dir() {
            opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_SUB_DIR);
        }
        opts.open(path)
    }
    .map_err(|e| Error::format(path, format!("not a readable LMDB: {e}")))
}

/// The file holding an LMDB's data: `data.mdb` in the directory `path`, or `path` itself.
pub fn data_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("data.mdb")
    } else {
        path.to_path_buf()
    }
}

/// The LMDB's unnamed database (the only one LSUN and FFHQ LMDBs have).
pub fn main_db(env: &Env, path: &Path) -> Result<heed::Database<'static, Bytes, Bytes>> {
    let lmdb = |e: heed::Error| Error::format(path, format!("LMDB: {e}"));
    let rtxn = env.read_txn().map_err(lmdb)?;
    let db = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| -> std::result::Result<_, heed::Error> {
            Ok(heed::CommitOrAbort::<_, ()>::Commit(
                dbo.open_database::<Bytes, Bytes>(rtxn, None)?,
            ))
        })
        .map_err(lmdb)?
        .unwrap_commit();
    db.ok_or_else(|| Error::format(path, "LMDB has no main database"))
}

/// Number of entries and the first (key, value) of the unnamed database.
type Entry = (Vec<u8>, Vec<u8>);

fn stat(env: &Env, path: &Path) -> Result<(u64, Option<Entry>)> {
    let lmdb = |e: heed::Error| Error::format(path, format!("LMDB: {e}"));
    // The database handle first: it takes (and commits) a read transaction of its own.
    let db = main_db(env, path)?;
    let rtxn = env.read_txn().map_err(lmdb)?;
    let len = db.len(&rtxn).map_err(lmdb)?;
    let first = db
        .first(&rtxn)
        .map_err(lmdb)?
        .map(|(k, v)| (k.to_vec(), v.to_vec()));
    Ok((len, first))
}

/// Streams `(key, value)` pairs whose key passes `keep`, in key order, from the `start`-th kept
/// one, on a reader thread (LMDB transactions stay on the thread that opened them).
pub fn stream(
    env: Env,
    path: &Path,
    start: u64,
    keep: impl Fn(&[u8]) -> bool + Send + 'static,
) -> Items {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Item>>(256);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let run = || -> Result<()> {
            let lmdb = |e: heed::Error| Error::format(&path, format!("LMDB: {e}"));
            // The database handle first: it takes (and commits) a read transaction of its own.
            let db = main_db(&env, &path)?;
            let rtxn = env.read_txn().map_err(lmdb)?;
            let mut skip = start;
            for kv in db.iter(&rtxn).map_err(lmdb)? {
                let (k, v) = kv.map_err(lmdb)?;
                if !keep(k) {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let item = Item {
                    key: String::from_utf8_lossy(k).into_owned(),
                    label: None,
                    payload: Payload::Encoded(v.to_vec()),
                };
                if tx.send(Ok(item)).is_err() {
                    return Ok(()); // consumer is done
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.send(Err(e));
        }
    });
    Box::new(rx.into_iter())
}

/// Opens an LSUN LMDB. The split is `train` or `val` from the directory name
/// (`bedroom_train_lmdb`), else `train`.
pub fn open(input: &Path, resolution: Option<u32>) -> Result<Source> {
    let env = open_env(input)?;
    let (len, first) = stat(&env, input)?;
    let Some((key, value)) = first else {
        return Err(Error::format(input, "the LMDB is empty"));
    };
    if sniff(&value).is_none() {
        return Err(Error::format(
            input,
            format!(
                "not an LSUN LMDB: the value of key `{}` is not a JPEG/PNG/WebP image",
                String::from_utf8_lossy(&key)
            ),
        ));
    }
    let size = resolution.unwrap_or(DEFAULT_RESOLUTION);
    let recipe = Recipe::ResizeCrop {
        size,
        filter: Filter::Bilinear,
    };
    let dir_name = input
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (category, split) = match dir_name.strip_suffix("_lmdb") {
        Some(s) if s.ends_with("_train") => (s.trim_end_matches("_train"), "train"),
        Some(s) if s.ends_with("_val") => (s.trim_end_matches("_val"), "val"),
        _ => (dir_name.as_str(), "train"),
    };
    let path = input.to_path_buf();
    let split = SplitSource {
        name: split.into(),
        len,
        open: Box::new(move |start| Ok(stream(env.clone(), &path, start, |_| true))),
    };
    let mut source =
        Source::encoded("lsun", input, size, recipe, vec![split]).with_inputs([data_file(input)]);
    source
        .options
        .insert("category".into(), category.to_string());
    Ok(source)
}
