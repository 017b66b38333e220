//! Files that appear whole or not at all: the one home of the temp-file-and-rename pattern
//! that shards, manifests, checkpoints, PNG grids and `.npz` archives are all written with.
//!
//! A file is written to `<path>.tmp`, flushed and fsynced, then renamed over `path`; a crash
//! at any point leaves either the old file or the new one, never a half-written one. On an
//! error the temporary file is removed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `<path>.tmp`: where a file lives until it is complete.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Streams a file into place atomically: `fill` writes it through a buffered writer on
/// `<path>.tmp`, which is then fsynced and renamed to `path`. Errors of `fill` (or of the
/// flush, fsync or rename) remove the temporary file and are returned as they are.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> std::io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
{
    let tmp = tmp_path(path);
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_write_replaces_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new content").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new content");
        assert!(!tmp_path(&p).exists());
    }
}
