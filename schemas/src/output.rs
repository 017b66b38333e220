//! Output locations, claimed before long work starts.
//!
//! A directory that an ncsn run writes (`ingest --out`, `train --workdir`) is locked for that
//! run with an advisory lock (flock) on `DIR/_ncsn.lock`, which holds the holder's pid and
//! command. A second run on the same directory is refused at once, naming the first. The OS
//! drops the lock when its holder dies, so a SIGKILLed run leaves nothing that blocks
//! `--resume`. Runs that legitimately share a directory, each writing its own part of it
//! (`ingest --partition i/n`), hold `_ncsn.lock` shared and their own `_ncsn.<part>.lock`
//! exclusively, which still keeps out a whole-directory run and a second copy of the same part.
//! A lock file is removed by its last holder, so a finished directory holds only its results.
//! Its name starts with `_`, like every file ncsn keeps beside the shards of a dataset
//! directory (`schemas::layout`), so that Parquet readers listing the directory skip it.
//!
//! A file written at the end of a long run (`sample --out`, `calibrate --out`) is checked up
//! front with [`check_file`]: a typo in its directory costs a second, not an hour of sampling.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::SchemaError;

/// The lock file of a directory.
pub const LOCK_FILE: &str = "_ncsn.lock";

/// The lock file of part `part` of a directory: `_ncsn.<part>.lock`.
fn part_lock_file(part: &str) -> String {
    format!("_ncsn.{part}.lock")
}

/// A lock held on a directory (see the module docs): released, and its files removed when no
/// other run shares them, on drop.
#[derive(Debug)]
pub struct DirLock {
    /// The held lock files, outermost first, with whether the lock is shared.
    held: Vec<(PathBuf, File, bool)>,
}

impl DirLock {
    /// All of `dir` (created if missing) for one run. `holder` names the run in the error
    /// another run gets, e.g. `ncsn train`.
    pub fn exclusive(dir: &Path, holder: &str) -> Result<DirLock, SchemaError> {
        create_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let file = acquire(&path, false)?;
        let lock = DirLock {
            held: vec![(path, file, false)],
        };
        lock.stamp(holder)?;
        Ok(lock)
    }

    /// The part `part` of `dir` (created if missing): `_ncsn.lock` shared with the other parts'
    /// runs, `_ncsn.<part>.lock` for this one alone.
    pub fn part(dir: &Path, part: &str, holder: &str) -> Result<DirLock, SchemaError> {
        create_dir(dir)?;
        let whole = dir.join(LOCK_FILE);
        let file = acquire(&whole, true)?;
        let mut lock = DirLock {
            held: vec![(whole, file, true)],
        };
        let own = dir.join(part_lock_file(part));
        let file = acquire(&own, false)?;
        lock.held.push((own, file, false));
        lock.stamp(holder)?;
        Ok(lock)
    }

    /// One job of its own in `dir` (created if missing), such as a FID sweep that appends to
    /// the workdir of a training run while the run goes on: `_ncsn.<name>.lock` alone, so it
    /// keeps out a second copy of that job and nothing else.
    pub fn own(dir: &Path, name: &str, holder: &str) -> Result<DirLock, SchemaError> {
        create_dir(dir)?;
        let path = dir.join(part_lock_file(name));
        let file = acquire(&path, false)?;
        let lock = DirLock {
            held: vec![(path, file, false)],
        };
        lock.stamp(holder)?;
        Ok(lock)
    }

    /// Writes `<pid> <holder>` into the innermost (exclusive) lock file.
    fn stamp(&self, holder: &str) -> Result<(), SchemaError> {
        let (path, file, _) = self.held.last().expect("a lock holds a file");
        let line = format!("{} {holder}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| (&*file).write_all(line.as_bytes()))
            .map_err(io(path))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Innermost first. A file is removed only while its lock is held alone, so a run that
        // opens it meanwhile finds the name gone (see `acquire`) instead of a lock nobody holds.
        while let Some((path, file, shared)) = self.held.pop() {
            if !shared || file.try_lock().is_ok() {
                let _ = std::fs::remove_file(&path);
            }
            drop(file);
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SchemaError + '_ {
    move |source| SchemaError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn create_dir(dir: &Path) -> Result<(), SchemaError> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// Opens and locks `path` without waiting; a lock held elsewhere is [`SchemaError::Busy`].
fn acquire(path: &Path, shared: bool) -> Result<File, SchemaError> {
    // A holder removes the file as it releases it: the lock just taken may be on a name that
    // is gone (or already a new file), in which case it is taken again on the new file.
    for _ in 0..16 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        let locked = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(SchemaError::Busy {
                    path: path.display().to_string(),
                    holder: holders(path),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(path)(e)),
        }
        if is_at(&file, path) {
            return Ok(file);
        }
    }
    Err(io(path)(std::io::Error::other(
        "the lock file keeps being replaced",
    )))
}

/// Whether `file` is the file named `path` right now.
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_at(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Who holds the lock on `path`, e.g. ``pid 1234, `ncsn train` ``: its own stamp, else (a
/// lock shared by part runs) the stamps of the part locks beside it that are held.
fn holders(path: &Path) -> String {
    if let Some(h) = stamp_of(path) {
        return h;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != LOCK_FILE && name.starts_with("_ncsn.") && name.ends_with(".lock") {
                // Held exclusively by a part run: a shared probe is refused.
                let held = File::open(e.path())
                    .is_ok_and(|f| matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock)));
                if let Some(h) = stamp_of(&e.path()).filter(|_| held) {
                    found.push(h);
                }
            }
        }
    }
    found.sort();
    if found.is_empty() {
        "pid unknown".into()
    } else {
        found.join("; ")
    }
}

/// The `<pid> <holder>` line of a lock file as ``pid 1234, `ncsn train` ``.
fn stamp_of(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    let (pid, holder) = text.trim().split_once(' ')?;
    pid.parse::<u32>().ok()?;
    Some(format!("pid {pid}, `{holder}`"))
}

/// Errs at once, naming the file, when `path` could not be written at the end of a run: it
/// is a directory, or its directory does not exist or takes no new file.
pub fn check_file(path: &Path) -> Result<(), SchemaError> {
    let invalid = |why: String| SchemaError::Invalid(format!("{}: {why}", path.display()));
    if path.is_dir() {
        return Err(invalid("is a directory, not a file".into()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(invalid(format!(
            "cannot be written: the directory {} does not exist",
            parent.display()
        )));
    }
    // A probe of our own name, so a run writing `path` right now is not disturbed.
    let mut probe = path.as_os_str().to_owned();
    probe.push(format!(".{}.probe", std::process::id()));
    let probe = PathBuf::from(probe);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| invalid(format!("cannot be written: {e}")))?;
    std::fs::remove_file(&probe).map_err(io(&probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        let lock = DirLock::exclusive(&work, "ncsn train").unwrap();
        let err = DirLock::exclusive(&work, "ncsn train")
            .unwrap_err()
            .to_string();
        let want = format!(
            "{}: another ncsn run (pid {}, `ncsn train`) is using this directory",
            work.join(LOCK_FILE).display(),
            std::process::id()
        );
        assert_eq!(err, want);
        drop(lock);
        assert!(!work.join(LOCK_FILE).exists(), "the lock file is removed");
        let _again = DirLock::exclusive(&work, "ncsn train").unwrap();
    }

    #[test]
    fn a_stale_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        // What a SIGKILLed holder leaves: the file with its pid, no lock.
        std::fs::write(dir.path().join(LOCK_FILE), "999999 ncsn ingest\n").unwrap();
        let _lock = DirLock::exclusive(dir.path(), "ncsn ingest").unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{} ncsn ingest\n", std::process::id()));
    }

    #[test]
    fn parts_share_the_directory_but_not_a_part() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = DirLock::part(d, "part-0-of-2", "ncsn ingest --partition 0/2").unwrap();
        let b = DirLock::part(d, "part-1-of-2", "ncsn ingest --partition 1/2").unwrap();
        let same = DirLock::part(d, "part-0-of-2", "x")
            .unwrap_err()
            .to_string();
        assert!(
            same.contains("_ncsn.part-0-of-2.lock") && same.contains("--partition 0/2"),
            "{same}"
        );
        let whole = DirLock::exclusive(d, "ncsn ingest merge")
            .unwrap_err()
            .to_string();
        assert!(
            whole.contains("--partition 0/2`; pid") && whole.contains("--partition 1/2"),
            "{whole}"
        );
        drop(a);
        assert!(d.join(LOCK_FILE).exists(), "still shared by part 1");
        drop(b);
        let left: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        let _whole = DirLock::exclusive(d, "ncsn ingest merge").unwrap();
        let err = DirLock::part(d, "part-0-of-2", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`ncsn ingest merge`"), "{err}");
    }

    #[test]
    fn an_own_job_lock_keeps_out_its_twin_but_not_the_directory_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let train = DirLock::exclusive(d, "ncsn train").unwrap();
        let sweep = DirLock::own(d, "fid", "ncsn fid --ckpts").unwrap();
        let err = DirLock::own(d, "fid", "x").unwrap_err().to_string();
        assert!(
            err.contains("_ncsn.fid.lock") && err.contains("`ncsn fid --ckpts`"),
            "{err}"
        );
        drop((train, sweep));
        let left: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_unwritable_output_file_is_named_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing_dir/x.png");
        let err = check_file(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&missing.display().to_string()) && err.contains("does not exist"),
            "{err}"
        );
        assert!(check_file(dir.path()).is_err());
        let fine = dir.path().join("x.png");
        check_file(&fine).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "the probe is removed: {left:?}");
    }
}
