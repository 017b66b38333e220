//! The shard reader: one Parquet shard back into columnar rows, whole or row group by row
//! group (the unit a streaming reader seeks to).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, FixedSizeBinaryArray, Int32Array, RecordBatch, StringArray, UInt64Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use schemas::shard::{ShardInfo, COL_ID, COL_KEY, COL_LABEL, COL_PIXELS};

use crate::error::{Error, Result};

/// Rows read back from a shard, columnar: `pixels` holds `len()` images back to back.
#[derive(Debug, Clone, Default)]
pub struct ShardRows {
    pub ids: Vec<u64>,
    pub keys: Vec<String>,
    pub labels: Vec<Option<i32>>,
    pub pixels: Vec<u8>,
}

impl ShardRows {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `i`-th image's bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let w = self.pixels.len() / self.len().max(1);
        &self.pixels[i * w..(i + 1) * w]
    }

    /// Appends `more`'s rows after these (images of the same size).
    pub fn append(&mut self, more: ShardRows) {
        self.ids.extend(more.ids);
        self.keys.extend(more.keys);
        self.labels.extend(more.labels);
        self.pixels.extend(more.pixels);
    }
}

/// Reads one shard, in record batches of at most `batch_rows` rows.
pub struct ShardReader {
    path: PathBuf,
    pub info: ShardInfo,
    pub num_rows: u64,
    builder: ParquetRecordBatchReaderBuilder<File>,
}

impl ShardReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(Error::io(path))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(Error::parquet(path))?;
        let md = builder.metadata().file_metadata();
        let kv = md
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .filter_map(|e| Some((e.key.clone(), e.value.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        let info = ShardInfo::from_metadata(&kv, &path.display().to_string())?;
        let num_rows = md.num_rows() as u64;
        Ok(Self {
            path: path.to_path_buf(),
            info,
            num_rows,
            builder,
        })
    }

    /// Number of Parquet row groups (the unit a streaming reader can seek to).
    pub fn num_row_groups(&self) -> usize {
        self.builder.metadata().num_row_groups()
    }

    /// All rows, or only those of the given row groups, in batches of at most `batch_rows`.
    pub fn batches(
        self,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
    ) -> Result<impl Iterator<Item = Result<ShardRows>>> {
        let path = self.path.clone();
        let width = self.info.pixel_bytes();
        let mut b = self.builder.with_batch_size(batch_rows.max(1));
        if let Some(g) = row_groups {
            b = b.with_row_groups(g);
        }
        let reader = b.build().map_err(Error::parquet(&path))?;
        Ok(reader.map(move |batch| {
            let batch = batch.map_err(Error::arrow(&path))?;
            rows_from_batch(&batch, width, &path)
        }))
    }

    /// Every row of the shard at once (tests, small shards, calibration blocks).
    pub fn read_all(self) -> Result<ShardRows> {
        let n = self.num_rows as usize;
        let mut out = ShardRows::default();
        for b in self.batches(n.max(1), None)? {
            out.append(b?);
        }
        Ok(out)
    }
}

fn rows_from_batch(batch: &RecordBatch, width: usize, path: &Path) -> Result<ShardRows> {
    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
        b.column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| {
                Error::format(
                    path,
                    format!("column `{name}` missing or of the wrong type"),
                )
            })
    }
    let ids = col::<UInt64Array>(batch, COL_ID, path)?;
    let keys = col::<StringArray>(batch, COL_KEY, path)?;
    let labels = col::<Int32Array>(batch, COL_LABEL, path)?;
    let pixels = col::<FixedSizeBinaryArray>(batch, COL_PIXELS, path)?;
    if pixels.value_length() as usize != width {
        return Err(Error::format(
            path,
            format!(
                "pixels are {} bytes per row, metadata says {width}",
                pixels.value_length()
            ),
        ));
    }
    let n = batch.num_rows();
    Ok(ShardRows {
        ids: ids.values().to_vec(),
        keys: (0..n).map(|i| keys.value(i).to_string()).collect(),
        labels: (0..n)
            .map(|i| labels.is_valid(i).then(|| labels.value(i)))
            .collect(),
        pixels: pixels.value_data()[..n * width].to_vec(),
    })
}
