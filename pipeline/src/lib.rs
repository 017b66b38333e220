//! Ingestion: dataset readers, Pillow-exact crop/resize, Parquet shard writer and reader.

pub mod decode;
pub mod error;
pub mod grid;
pub mod resample;
pub mod shards;
pub mod transforms;

pub use error::{Error, Result};
