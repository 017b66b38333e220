//! The shard reader: one Parquet shard back into columnar rows, whole or row group by row
//! group (the unit a streaming reader seeks to). It is the only way into a shard (calibration,
//! the training loader, inspect, merges), so it is where corruption is caught: every row's
//! pixels are checked against their CRC-32 before the batch is handed out, and pages that carry
//! a Parquet page CRC are checked by the Parquet reader. Either failure is an error naming the
//! file and row group, never silently wrong pixels. Whole-file sha256s (the manifest's) cost a
//! second pass over every byte and are left to `inspect --verify`.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, FixedSizeBinaryArray, Int32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use schemas::shard::{ShardInfo, COL_ID, COL_KEY, COL_LABEL, COL_PIXELS, COL_PIXELS_CRC32};

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

    /// All rows, or only those of the given row groups, in batches of at most `batch_rows`,
    /// each checked (see the module docs) before it is returned.
    pub fn batches(
        self,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
    ) -> Result<impl Iterator<Item = Result<ShardRows>>> {
        let path = self.path.clone();
        let width = self.info.pixel_bytes();
        let md = self.builder.metadata().clone();
        let groups = row_groups.unwrap_or_else(|| (0..md.num_row_groups()).collect());
        let mut at = RowGroups {
            sizes: groups
                .iter()
                .map(|&g| (g, md.row_group(g).num_rows() as u64))
                .collect(),
            done: 0,
        };
        let reader = self
            .builder
            .with_batch_size(batch_rows.max(1))
            .with_row_groups(groups)
            .build()
            .map_err(Error::parquet(&path))?;
        Ok(reader.map(move |batch| {
            let corrupt = |row: u64, msg: String| Error::Corrupt {
                path: path.clone(),
                row_group: at.group_of(row),
                msg,
            };
            let batch = batch.map_err(|e| corrupt(at.done, e.to_string()))?;
            let rows = rows_from_batch(&batch, width, &path)?;
            if let Some((i, msg)) = check_crcs(&batch, &rows, &path)? {
                return Err(corrupt(at.done + i as u64, msg));
            }
            at.done += rows.len() as u64;
            Ok(rows)
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

/// The row groups a batch iterator reads, in order, and how many of their rows it has
/// returned: enough to name the row group of a bad row.
struct RowGroups {
    /// (row group index, rows).
    sizes: Vec<(usize, u64)>,
    done: u64,
}

impl RowGroups {
    /// The row group of the `row`-th row read.
    fn group_of(&self, row: u64) -> usize {
        let mut end = 0;
        for &(g, n) in &self.sizes {
            end += n;
            if row < end {
                return g;
            }
        }
        self.sizes.last().map_or(0, |&(g, _)| g)
    }
}

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

/// The first row of `rows` whose pixels do not match the CRC-32 stored beside them (shards
/// written before the column existed have none to check), with the message for it.
fn check_crcs(
    batch: &RecordBatch,
    rows: &ShardRows,
    path: &Path,
) -> Result<Option<(usize, String)>> {
    if batch.column_by_name(COL_PIXELS_CRC32).is_none() {
        return Ok(None);
    }
    let crcs = col::<UInt32Array>(batch, COL_PIXELS_CRC32, path)?;
    let bad = (0..rows.len()).find(|&i| crc32fast::hash(rows.image(i)) != crcs.value(i));
    Ok(bad.map(|i| {
        (
            i,
            format!(
                "pixels of row id {} (`{}`) do not match their CRC32: the file is corrupt or \
                 was changed since it was written",
                rows.ids[i], rows.keys[i]
            ),
        )
    }))
}

fn rows_from_batch(batch: &RecordBatch, width: usize, path: &Path) -> Result<ShardRows> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{Row, ShardWriter};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    fn info() -> ShardInfo {
        ShardInfo {
            height: 4,
            width: 4,
            channels: 3,
            dataset: "test".into(),
            split: "train".into(),
            recipe: "none".into(),
        }
    }

    /// Pseudo-random pixels: incompressible, so zstd keeps them as they are and a flipped byte
    /// in a page changes one pixel instead of breaking decompression.
    fn rows(n: u64) -> Vec<Row> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|i| Row {
                id: i,
                key: format!("img{i}.png"),
                label: None,
                pixels: (0..48)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 24) as u8
                    })
                    .collect(),
            })
            .collect()
    }

    /// Flips the middle byte of row group `g`'s pixel chunk (page data: the chunks here are one
    /// page each, its header a few dozen bytes at the start).
    fn flip_pixel_byte(path: &Path, g: usize) {
        let r = ShardReader::open(path).unwrap();
        let group = r.builder.metadata().row_group(g);
        let chunk = (0..group.num_columns())
            .map(|i| group.column(i))
            .find(|c| c.column_path().string() == COL_PIXELS)
            .unwrap();
        let (start, len) = chunk.byte_range();
        let mut bytes = std::fs::read(path).unwrap();
        bytes[(start + len / 2) as usize] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_flipped_pixel_byte_is_an_error_naming_file_row_group_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00003.parquet");
        let mut w = ShardWriter::create(&path, &info(), 0, 50).unwrap();
        w.write(&rows(120)).unwrap();
        w.finish().unwrap();
        flip_pixel_byte(&path, 1);

        // Whatever the batch size, no row of the bad batch is handed out.
        for batch_rows in [7, 50, 1000] {
            let mut good = 0;
            let mut err = None;
            for b in ShardReader::open(&path)
                .unwrap()
                .batches(batch_rows, None)
                .unwrap()
            {
                match b {
                    Ok(b) => good += b.len(),
                    Err(e) => {
                        err = Some(e.to_string());
                        break;
                    }
                }
            }
            let err = err.expect("the flipped byte is caught");
            assert!(
                err.ends_with(
                    "train-00003.parquet: row group 1: pixels of row id 74 (`img74.png`) do not \
                 match their CRC32: the file is corrupt or was changed since it was written"
                ),
                "{err}"
            );
            assert!(good < 75, "{batch_rows}: {good} rows before the error");
        }
        // Row group 0 alone is intact; row group 1 alone is not.
        let r = ShardReader::open(&path).unwrap();
        assert_eq!(r.batches(1000, Some(vec![0])).unwrap().count(), 1);
        let r = ShardReader::open(&path).unwrap();
        let err = r.batches(1000, Some(vec![1])).unwrap().next().unwrap();
        assert!(err.unwrap_err().to_string().contains("row group 1"));
    }

    #[test]
    fn shards_without_the_crc_column_are_still_read() {
        // A shard as ncsn wrote them before `pixels_crc32`: the four columns only.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.parquet");
        let schema = Arc::new(
            schemas::shard::arrow_schema_for(48)
                .project(&[0, 1, 2, 3])
                .unwrap(),
        );
        let kv = info()
            .to_metadata()
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(kv))
            .build();
        let want = rows(5);
        let pixels: Vec<u8> = want.iter().flat_map(|r| r.pixels.clone()).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from_iter_values(0..5)),
                Arc::new(StringArray::from_iter_values(want.iter().map(|r| &r.key))),
                Arc::new(Int32Array::from(vec![None; 5])),
                Arc::new(FixedSizeBinaryArray::try_new(48, pixels.clone().into(), None).unwrap()),
            ],
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(&path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let back = ShardReader::open(&path).unwrap().read_all().unwrap();
        assert_eq!(back.pixels, pixels);
        assert_eq!(back.keys[4], "img4.png");
    }
}
