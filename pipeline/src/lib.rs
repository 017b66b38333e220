//! Ingestion: dataset readers, Pillow-exact crop/resize, Parquet shard writer and reader.

pub mod error;
pub mod grid;
pub mod shards;

pub use error::{Error, Result};
