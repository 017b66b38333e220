//! The shard writer (SPEC §4): rows in, one Parquet file out, atomically.
//!
//! A shard is written to `<name>.tmp` and renamed into place only once complete, so a crash
//! never leaves a file that looks finished, and a failed write leaves no `.tmp` behind. Its
//! sha256 is computed from the bytes as they are written and recorded in the manifest (checked
//! by `inspect --verify`); each row also carries the CRC-32 of its pixels, which every read
//! checks (see `read.rs`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeBinaryArray, Int32Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::buffer::Buffer;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use schemas::atomic::TmpFile;
use schemas::manifest::ShardEntry;
use schemas::shard::{ShardInfo, COL_ID, COL_KEY, COL_PIXELS, COL_PIXELS_CRC32};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::read::ShardRows;

/// Rows per Parquet row group: ~64 MiB of pixels, at least one row (SPEC §4: sized for streaming).
pub fn default_row_group_rows(info: &ShardInfo) -> usize {
    ((64 << 20) / info.pixel_bytes().max(1)).max(1)
}

/// Rows handed to Parquet at once (see [`ShardWriter`]): ~12 MiB of 64×64 pixels.
pub const BATCH_ROWS: usize = 1024;

/// One image as stored in a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: u64,
    pub key: String,
    pub label: Option<i32>,
    /// uint8 RGB, HWC, exactly `ShardInfo::pixel_bytes()` long.
    pub pixels: Vec<u8>,
}

/// Writes one shard atomically: rows go to `<path>.tmp`, `finish` renames it into place.
///
/// Rows are buffered and handed to Parquet in batches cut at fixed places (every
/// [`BATCH_ROWS`] rows from the start of each row group, and at its end), so the file's bytes
/// depend only on the sequence of rows, never on how callers chunked their `write` calls
/// (resume, `--workers` and merge renumbering all rely on that). Encoding a row group batch by
/// batch spreads its zstd work over the row group's arrival instead of leaving it all for the
/// last row, when a pipeline's decode threads have nothing left to do but wait.
///
/// Dropping a writer without `finish` (an error mid-run), or a `finish` that fails, deletes the
/// temporary file: no half-written shard stays behind.
pub struct ShardWriter {
    path: PathBuf,
    writer: Option<ArrowWriter<HashingFile>>,
    /// Dropped after `writer` (field order), so the file is closed before it is deleted.
    tmp: TmpFile,
    info: ShardInfo,
    schema: Arc<arrow::datatypes::Schema>,
    first_id: u64,
    rows: u64,
    row_group_rows: usize,
    pending: ShardRows,
}

impl ShardWriter {
    pub fn create(
        path: &Path,
        info: &ShardInfo,
        first_id: u64,
        row_group_rows: usize,
    ) -> Result<Self> {
        let tmp = TmpFile::new(path);
        let file = File::create(tmp.path()).map_err(Error::io(tmp.path()))?;
        let kv = info
            .to_metadata()
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v));
        let mut kv: Vec<KeyValue> = kv.collect();
        kv.sort_by(|a, b| a.key.cmp(&b.key)); // deterministic bytes
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).expect("valid level"),
            ))
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .set_key_value_metadata(Some(kv))
            // Ids and keys are unique and pixel blobs almost always are: a dictionary only
            // costs hashing before parquet falls back to plain encoding.
            .set_column_dictionary_enabled(COL_ID.into(), false)
            .set_column_dictionary_enabled(COL_KEY.into(), false)
            .set_column_dictionary_enabled(COL_PIXELS.into(), false)
            .set_column_dictionary_enabled(COL_PIXELS_CRC32.into(), false)
            .set_column_statistics_enabled(COL_PIXELS_CRC32.into(), EnabledStatistics::None)
            // No min/max for pixels: useless for a blob, and parquet-rs truncates them to 64
            // bytes, which a fixed_size_binary reader (parquet-cpp, hence pyarrow) cannot
            // decode. Ids, keys and labels keep theirs, for filters on them.
            .set_column_statistics_enabled(COL_PIXELS.into(), EnabledStatistics::None)
            .build();
        // The footer's key-value metadata above is what ncsn reads; pyarrow (hence pandas and
        // HF datasets) reads the metadata of the Arrow schema embedded beside it instead, so
        // that schema carries the dataset's geometry and recipe too.
        let schema = info.arrow_schema();
        let file = HashingFile::new(file);
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(Error::parquet(tmp.path()))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Some(writer),
            tmp,
            info: info.clone(),
            schema,
            first_id,
            rows: 0,
            row_group_rows: row_group_rows.max(1),
            pending: ShardRows::default(),
        })
    }

    pub fn write(&mut self, rows: &[Row]) -> Result<()> {
        let width = self.info.pixel_bytes();
        for r in rows {
            if r.pixels.len() != width {
                return Err(Error::format(
                    self.tmp.path(),
                    format!(
                        "row {} (`{}`) has {} pixel bytes, expected {width}",
                        r.id,
                        r.key,
                        r.pixels.len()
                    ),
                ));
            }
            self.pending.ids.push(r.id);
            self.pending.keys.push(r.key.clone());
            self.pending.labels.push(r.label);
            self.pending.pixels.extend_from_slice(&r.pixels);
            let in_group = (self.rows as usize + self.pending.len()) % self.row_group_rows;
            // 0: the row group is full.
            if in_group.is_multiple_of(BATCH_ROWS) {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Rows written so far (buffered ones included).
    pub fn rows(&self) -> u64 {
        self.rows + self.pending.len() as u64
    }

    /// Writes the buffered rows as one record batch (Parquet closes the row group once it holds
    /// `row_group_rows`).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        let n = p.len();
        let width = self.info.pixel_bytes();
        let tmp = self.tmp.path();
        let crcs = UInt32Array::from_iter_values(p.pixels.chunks_exact(width).map(crc32fast::hash));
        // The pixels go to Arrow without a copy, and their allocation comes back afterwards for
        // the next row group: a fresh 64 MiB buffer per row group cost the writer thread more
        // in page faults than zstd and sha256 together.
        let pixels = Arc::new(
            FixedSizeBinaryArray::try_new(width as i32, Buffer::from_vec(p.pixels), None)
                .map_err(Error::arrow(tmp))?,
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(p.ids)),
            Arc::new(StringArray::from_iter_values(p.keys.iter())),
            Arc::new(Int32Array::from(p.labels)),
            pixels.clone(),
            Arc::new(crcs),
        ];
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(Error::arrow(tmp))?;
        self.writer
            .as_mut()
            .expect("writer is open until finish")
            .write(&batch)
            .map_err(Error::parquet(tmp))?;
        drop(batch);
        if let Ok(array) = Arc::try_unwrap(pixels) {
            if let Ok(mut reuse) = array.into_parts().1.into_vec::<u8>() {
                reuse.clear();
                self.pending.pixels = reuse;
            }
        }
        self.rows += n as u64;
        Ok(())
    }

    /// Closes the file, syncs it, hashes it and renames it into place. The entry's `file` is
    /// the file's name: a caller that writes into a split's folder sets the path the manifest
    /// lists ([`schemas::layout::Layout::shard_file`]).
    pub fn finish(mut self) -> Result<ShardEntry> {
        self.flush()?;
        let file = self
            .writer
            .take()
            .expect("finish is called once")
            .into_inner()
            .map_err(Error::parquet(self.tmp.path()))?;
        let (sha256, bytes) = (hex::encode(file.hash.finalize()), file.bytes);
        drop(file.file);
        self.tmp.commit().map_err(Error::io(&self.path))?;
        Ok(ShardEntry {
            file: self
                .path
                .file_name()
                .expect("shard path has a file name")
                .to_string_lossy()
                .into_owned(),
            rows: self.rows,
            first_id: self.first_id,
            bytes,
            sha256,
        })
    }
}

/// The shard file, hashed as it is written: the sha256 in the manifest comes from the bytes
/// that went to disk without reading the file back.
///
/// On Linux the kernel is also asked to start writing each [`WRITEBACK_BYTES`] to disk as soon
/// as they are written (`sync_file_range`, which does not wait). Otherwise a whole shard sits in
/// the page cache until `finish` syncs it, and the ingest pipeline idles through that sync.
struct HashingFile {
    file: File,
    hash: Sha256,
    bytes: u64,
    /// Bytes already handed to writeback.
    started: u64,
}

/// How often [`HashingFile`] starts writeback.
const WRITEBACK_BYTES: u64 = 8 << 20;

impl HashingFile {
    fn new(file: File) -> Self {
        Self {
            file,
            hash: Sha256::new(),
            bytes: 0,
            started: 0,
        }
    }

    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on our own open descriptor over bytes already written;
            // failure only means writeback starts later, at the kernel's pace or at sync_all.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.bytes - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.started = self.bytes;
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        if self.bytes - self.started >= WRITEBACK_BYTES {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256_file;
    use crate::read::ShardReader;
    use schemas::atomic::tmp_path;

    fn info() -> ShardInfo {
        ShardInfo {
            height: 2,
            width: 3,
            channels: 3,
            dataset: "test".into(),
            split: "train".into(),
            recipe: "none".into(),
        }
    }

    fn rows(n: u64) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                id: i,
                key: format!("img{i}.png"),
                label: (i % 2 == 0).then_some(i as i32),
                pixels: (0..18).map(|j| (i * 18 + j) as u8).collect(),
            })
            .collect()
    }

    #[test]
    fn write_then_read_round_trips_and_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000.parquet");
        let mut w = ShardWriter::create(&path, &info(), 0, 4).unwrap();
        w.write(&rows(10)).unwrap();
        assert!(!path.exists(), "a shard must not appear before finish()");
        let entry = w.finish().unwrap();
        assert!(!tmp_path(&path).exists());
        assert_eq!(entry.rows, 10);
        // Hashed while written; must equal the hash of the file as it lies on disk.
        assert_eq!(
            (entry.sha256.clone(), entry.bytes),
            sha256_file(&path).unwrap()
        );

        let r = ShardReader::open(&path).unwrap();
        assert_eq!(r.info, info());
        assert_eq!(r.num_row_groups(), 3);
        let back = r.read_all().unwrap();
        let want = rows(10);
        assert_eq!(back.ids, want.iter().map(|r| r.id).collect::<Vec<_>>());
        assert_eq!(
            back.labels,
            want.iter().map(|r| r.label).collect::<Vec<_>>()
        );
        // Row groups 2 and 3 reuse the pixel buffer of the one before.
        for (i, w) in want.iter().enumerate() {
            assert_eq!(back.image(i), &w.pixels[..], "row {i}");
        }
        assert_eq!(back.keys[9], "img9.png");
    }

    #[test]
    fn same_rows_give_identical_bytes_however_they_are_chunked() {
        // 64x64 pixels, so Parquet cuts pages inside a batch, and row groups that are not a
        // multiple of BATCH_ROWS: batch and page boundaries must come from the rows alone.
        let info = ShardInfo {
            height: 64,
            width: 64,
            ..info()
        };
        let n = 3 * BATCH_ROWS - 100;
        let rows: Vec<Row> = (0..n as u64)
            .map(|i| Row {
                id: i,
                key: format!("img{i}.png"),
                label: None,
                pixels: (0..info.pixel_bytes() as u64)
                    .map(|j| ((j * 7919) ^ (i * 31) ^ (j >> 5)) as u8)
                    .collect(),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut shas = vec![];
        for (name, chunk) in [("a", n), ("b", 1), ("c", 997), ("d", BATCH_ROWS + 1)] {
            let path = dir.path().join(format!("{name}.parquet"));
            let mut w = ShardWriter::create(&path, &info, 0, 2 * BATCH_ROWS + 300).unwrap();
            for c in rows.chunks(chunk) {
                w.write(c).unwrap();
            }
            shas.push((name, w.finish().unwrap().sha256));
            let r = ShardReader::open(&path).unwrap();
            assert_eq!(r.num_row_groups(), 2);
            let back = r.read_all().unwrap();
            assert_eq!(back.len(), n);
            assert_eq!(back.image(n - 1), &rows[n - 1].pixels[..]);
        }
        for (name, sha) in &shas[1..] {
            assert_eq!(sha, &shas[0].1, "chunks of {name} against one write");
        }
    }

    #[test]
    fn a_failed_finish_leaves_no_temporary_file() {
        // The shard's name is taken by a non-empty directory: everything is written and
        // synced, then the rename fails.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000.parquet");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"").unwrap();
        let mut w = ShardWriter::create(&path, &info(), 0, 4).unwrap();
        w.write(&rows(5)).unwrap();
        let err = w.finish().unwrap_err().to_string();
        assert!(err.contains("train-00000.parquet"), "{err}");
        assert!(!tmp_path(&path).exists(), "{err}");
    }

    #[test]
    fn wrong_pixel_length_names_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::create(&dir.path().join("x.parquet"), &info(), 0, 4).unwrap();
        let mut bad = rows(1);
        bad[0].pixels.pop();
        let err = w.write(&bad).unwrap_err().to_string();
        assert!(err.contains("img0.png") && err.contains("17"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.parquet");
        std::fs::write(&p, b"not parquet at all").unwrap();
        let err = ShardReader::open(&p).err().unwrap().to_string();
        assert!(err.contains("junk.parquet"), "{err}");
    }
}
