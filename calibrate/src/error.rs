//! The calibration stage's errors. Each message names the option, file or step it concerns, so
//! the one line a user sees says what to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option out of range or options that do not fit together (`--overlap 1.2`).
    #[error("{0}")]
    Invalid(String),
    /// Reading the shards failed (missing manifest, unreadable shard, …).
    #[error(transparent)]
    Pipeline(#[from] shards::Error),
    /// The data cannot be calibrated (no images, one image, shards of different sizes).
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },
    #[error("torch ({step}): {source}")]
    Torch {
        step: &'static str,
        #[source]
        source: tch::TchError,
    },
    /// A check of our own arithmetic failed: a bug or a device that does not compute f32 GEMMs
    /// in IEEE arithmetic.
    #[error("internal check failed: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn torch(step: &'static str) -> impl FnOnce(tch::TchError) -> Self {
        move |source| Error::Torch { step, source }
    }
}
