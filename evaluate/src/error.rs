//! The evaluation stage's errors. Each names the file (weights, statistics, samples) or the
//! step it concerns, so the one line a user sees says what to fix.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that is not what it should be: a weights file of another network, statistics of
    /// another feature size, samples that are not uint8 images.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the shards of `--data` failed.
    #[error(transparent)]
    Shards(#[from] shards::Error),
    /// The nearest-neighbour engine (`calibrate::nearest`) refused or failed.
    #[error(transparent)]
    Nearest(#[from] calibrate::Error),
    /// Options that do not fit the data (more IS splits than samples, …).
    #[error("{0}")]
    Invalid(String),
    #[error("torch ({step}): {source}")]
    Torch {
        step: &'static str,
        #[source]
        source: tch::TchError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn torch(step: &'static str) -> impl FnOnce(tch::TchError) -> Self {
        move |source| Error::Torch { step, source }
    }
}
