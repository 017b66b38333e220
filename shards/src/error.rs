//! The pipeline's errors. Every variant names the file, key or step it concerns, so the
//! one-line message a user sees says where to look.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{}: {source}", path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error(transparent)]
    Schema(#[from] schemas::SchemaError),
    /// Rows of a shard that cannot be read back as they were written: a page that does not
    /// decode or fails its Parquet CRC, or pixels that do not match their CRC-32.
    #[error("{}: row group {row_group}: {msg}", path.display())]
    Corrupt {
        path: PathBuf,
        row_group: usize,
        msg: String,
    },
    /// A file or directory whose content is not what it should be.
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    /// Wrong usage: options that do not fit together, a split that does not exist.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { path, source }
    }

    pub fn parquet(path: impl AsRef<Path>) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Parquet { path, source }
    }

    pub fn arrow(path: impl AsRef<Path>) -> impl FnOnce(arrow::error::ArrowError) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Arrow { path, source }
    }

    pub fn format(path: impl AsRef<Path>, msg: impl Into<String>) -> Error {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
}
