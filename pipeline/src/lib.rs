//! Ingestion: dataset readers, Pillow-exact crop/resize, Parquet shard writer and reader.

pub mod decode;
pub mod error;
pub mod grid;
pub mod ingest;
pub mod inspect;
pub mod npz;
pub mod resample;
pub mod shards;
pub mod sources;
pub mod synthetic;
pub mod transforms;

pub use error::{Error, Result};
