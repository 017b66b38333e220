//! Files that appear whole or not at all: the one home of the temp-file-and-rename pattern
//! that shards, manifests, checkpoints, PNG grids and `.npz` archives are all written with.
//!
//! A file is written to `<path>.tmp`, flushed and fsynced, then renamed over `path`; a crash
//! at any point leaves either the old file or the new one, never a half-written one. On an
//! error (or a panic) the temporary file is removed: [`TmpFile`] owns it until the rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `<path>.tmp`: where a file lives until it is complete.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// The temporary file `<path>.tmp` of a file being written, for writers that produce the file
/// themselves (Parquet, safetensors). [`commit`](TmpFile::commit) fsyncs it and renames it to
/// `path`; dropped before that, on any error or a panic, it deletes the temporary file, so a
/// failed write leaves nothing behind.
#[derive(Debug)]
pub struct TmpFile {
    /// `<target>.tmp`.
    path: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TmpFile {
    /// Claims `<path>.tmp` (nothing is created yet: the writer creates the file).
    pub fn new(path: &Path) -> Self {
        Self {
            path: tmp_path(path),
            target: path.to_path_buf(),
            committed: false,
        }
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the complete temporary file to disk and renames it over the final path. On an
    /// error the temporary file is removed.
    pub fn commit(mut self) -> std::io::Result<()> {
        File::open(&self.path)?.sync_all()?;
        std::fs::rename(&self.path, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streams a file into place atomically: `fill` writes it through a buffered writer on
/// `<path>.tmp`, which is then fsynced and renamed to `path`. Errors of `fill` (or of the
/// flush, fsync or rename) remove the temporary file and are returned as they are; so does a
/// panic in `fill`.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> std::io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
{
    let tmp = TmpFile::new(path);
    let mut w = BufWriter::new(File::create(tmp.path())?);
    fill(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?;
    tmp.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_fill_leaves_neither_file_nor_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert!(!p.exists() && !tmp_path(&p).exists());
    }

    #[test]
    fn a_panicking_fill_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        let r = std::panic::catch_unwind(|| {
            write_atomic_with(&p, |w| {
                w.write_all(b"half")?;
                w.flush()?;
                panic!("a bug in the writer");
            })
        });
        assert!(r.is_err());
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_failed_rename_leaves_no_temp() {
        // The target is a non-empty directory: the rename fails after the whole file was
        // written and synced (as it would on a read-only or vanished target directory).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"").unwrap();
        assert!(write_atomic(&p, b"content").is_err());
        assert_eq!(names(dir.path()), ["x.bin"]);

        let tmp = TmpFile::new(&p);
        std::fs::write(tmp.path(), b"content").unwrap();
        assert!(tmp.commit().is_err());
        assert_eq!(names(dir.path()), ["x.bin"]);
    }

    #[test]
    fn a_write_replaces_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new content").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new content");
        assert!(!tmp_path(&p).exists());
    }
}
