//! Ingestion: dataset readers, Pillow-exact crop/resize, and the threaded engine that turns a
//! dataset as distributed into Parquet shards (written through the `shards` crate).

pub mod decode;
pub mod ingest;
pub mod resample;
pub mod sources;
pub mod synthetic;
pub mod transforms;

pub use shards::{Error, Result};
