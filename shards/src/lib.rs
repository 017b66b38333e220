//! The shard contract's one implementation: Parquet shards written atomically and read back
//! (SPEC §4), an ingested directory opened through its manifest, its verification, the image
//! files every stage writes (`make_grid` PNGs, NumPy `.npz`) and the export of a directory to
//! WebDataset tar shards.
//!
//! `pipeline` writes shards; `calibrate` and `trainer` only read them. None of them needs an
//! image decoder for that, so this crate has none.

mod dataset;
mod error;
mod export;
mod grid;
mod hash;
pub mod inspect;
pub mod npz;
mod read;
mod rgb;
mod write;

pub use dataset::Dataset;
pub use error::{Error, Result};
pub use export::{export_webdataset, tar_name, tar_pattern, ExportedSplit, WebDatasetOptions};
pub use grid::{encode_png, make_grid, write_png};
pub use hash::sha256_file;
pub use npz::{npy_f64, npy_i64, npy_u8, write_npz, write_npz_u8};
pub use read::{ShardReader, ShardRows};
pub use rgb::Rgb8;
pub use write::{default_row_group_rows, Row, ShardWriter, BATCH_ROWS};
