//! Ingestion: dataset readers, Pillow-exact crop/resize, and the threaded engine that turns a
//! dataset as distributed into Parquet shards (written through the `shards` crate).
//!
//! The surface: [`sources`] (one reader per dataset), [`ingest`] (the engine, `--resume`,
//! `--partition` and `merge`), [`synthetic`] (the procedural demo set), and the decode +
//! transform functions re-exported here; the modules behind them are private.

mod decode;
pub mod ingest;
mod resample;
pub mod sources;
pub mod synthetic;
mod transforms;

pub use decode::{decode, decode_region, ImageError, Limits, DEFAULT_MAX_PIXELS};
pub use resample::{Rect, View};
pub use shards::{Error, Result};
pub use transforms::{process_encoded, process_encoded_with, process_rgb, Filter, Recipe};
