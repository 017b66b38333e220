//! The contracts every ncsn stage shares, defined once (SPEC §4–6).
//!
//! Readers and writers import the column names, metadata keys and JSON types from here; nobody
//! re-spells them. Every persisted document carries a `schema_version` so that a newer tool can
//! refuse (or migrate) files it does not understand instead of misreading them.

pub mod atomic;
pub mod calibration;
pub mod checkpoint;
pub mod cifar;
pub mod config;
pub mod layout;
pub mod manifest;
pub mod output;
pub mod rng;
pub mod shard;

use std::path::Path;

/// Version of every on-disk format this crate defines (shards, manifest, calibration,
/// checkpoint metadata). Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors reading or writing a schema document; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid {what}: {source}")]
    Parse {
        path: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: schema_version {found} is not supported (this ncsn reads version {expected})"
    )]
    Version {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("{0}")]
    Invalid(String),
    /// Another run holds the lock of a directory ([`output::DirLock`]).
    #[error("{path}: another ncsn run ({holder}) is using this directory")]
    Busy { path: String, holder: String },
}

/// A JSON document with a `schema_version`: read with a version check, written atomically.
pub trait JsonDocument: serde::Serialize + serde::de::DeserializeOwned {
    /// Human name used in error messages ("manifest", "calibration").
    const WHAT: &'static str;
    fn schema_version(&self) -> u32;

    fn from_json_str(text: &str, path: &Path) -> Result<Self, SchemaError> {
        let doc: Self = serde_json::from_str(text).map_err(|source| SchemaError::Parse {
            path: path.display().to_string(),
            what: Self::WHAT,
            source,
        })?;
        if doc.schema_version() != SCHEMA_VERSION {
            return Err(SchemaError::Version {
                path: path.display().to_string(),
                found: doc.schema_version(),
                expected: SCHEMA_VERSION,
            });
        }
        Ok(doc)
    }

    fn read(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Writes pretty JSON through a temporary file and a rename, so a crash never leaves a
    /// half-written document behind.
    fn write_atomic(&self, path: &Path) -> Result<(), SchemaError> {
        let mut text = serde_json::to_string_pretty(self).expect("schema types always serialize");
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically ([`atomic::write_atomic`]), naming the file on error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SchemaError> {
    atomic::write_atomic(path, bytes).map_err(|source| SchemaError::Io {
        path: path.display().to_string(),
        source,
    })
}
