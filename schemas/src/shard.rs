//! One Parquet shard row (SPEC §4): `id`, `key`, `label`, `pixels`, `pixels_crc32`, and the
//! metadata that says how to interpret `pixels`: in the file's key-value metadata (what ncsn
//! reads) and in its Arrow schema (what pyarrow, pandas and HF datasets show).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};

use crate::{SchemaError, SCHEMA_VERSION};

/// Dense, stable index of the image within its split (u64).
pub const COL_ID: &str = "id";
/// Source file name or LMDB key (utf8).
pub const COL_KEY: &str = "key";
/// Class label, null when the dataset has none (i32).
pub const COL_LABEL: &str = "label";
/// uint8 RGB, row-major HWC, `height * width * channels` bytes (fixed_size_binary).
pub const COL_PIXELS: &str = "pixels";
/// CRC-32 of the row's `pixels` (uint32; the IEEE polynomial of zlib's `crc32` and of Parquet's
/// page checksums), checked on every read so that a corrupt shard is never trained on. Shards
/// written before it existed lack the column and are read unchecked.
pub const COL_PIXELS_CRC32: &str = "pixels_crc32";

/// Key-value metadata keys stored in every shard's Parquet footer (and, but for `SPLIT`, in its
/// Arrow schema).
pub mod meta {
    pub const SCHEMA_VERSION: &str = "ncsn.schema_version";
    pub const HEIGHT: &str = "ncsn.height";
    pub const WIDTH: &str = "ncsn.width";
    pub const CHANNELS: &str = "ncsn.channels";
    pub const DATASET: &str = "ncsn.dataset";
    pub const SPLIT: &str = "ncsn.split";
    pub const RECIPE: &str = "ncsn.recipe";
    /// Arrow schema metadata only: the other keys as a JSON object, from which pandas'
    /// `read_parquet` fills `DataFrame.attrs`.
    pub const PANDAS_ATTRS: &str = "PANDAS_ATTRS";
}

/// What a shard's rows are: the image geometry and provenance, stored in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardInfo {
    pub height: u32,
    pub width: u32,
    pub channels: u32,
    pub dataset: String,
    pub split: String,
    /// Human-readable transform recipe, e.g. `center_crop(140)|resize(64,bilinear)`.
    pub recipe: String,
}

impl ShardInfo {
    /// Bytes in one image's `pixels` value.
    pub fn pixel_bytes(&self) -> usize {
        self.height as usize * self.width as usize * self.channels as usize
    }

    /// D = H·W·C, the dimension of a flattened image (calibration, Technique 1–2).
    pub fn dims(&self) -> usize {
        self.pixel_bytes()
    }

    pub fn to_metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (meta::SCHEMA_VERSION.into(), SCHEMA_VERSION.to_string()),
            (meta::HEIGHT.into(), self.height.to_string()),
            (meta::WIDTH.into(), self.width.to_string()),
            (meta::CHANNELS.into(), self.channels.to_string()),
            (meta::DATASET.into(), self.dataset.clone()),
            (meta::SPLIT.into(), self.split.clone()),
            (meta::RECIPE.into(), self.recipe.clone()),
        ])
    }

    /// Parses the metadata written by [`ShardInfo::to_metadata`]; `file` names the shard in errors.
    pub fn from_metadata(md: &HashMap<String, String>, file: &str) -> Result<Self, SchemaError> {
        let get = |k: &str| {
            md.get(k).ok_or_else(|| {
                SchemaError::Invalid(format!(
                    "{file}: not an ncsn shard (metadata key `{k}` missing)"
                ))
            })
        };
        let num = |k: &str| -> Result<u32, SchemaError> {
            get(k)?.parse().map_err(|_| {
                SchemaError::Invalid(format!("{file}: metadata `{k}` is not a number"))
            })
        };
        let version = num(meta::SCHEMA_VERSION)?;
        if version != SCHEMA_VERSION {
            return Err(SchemaError::Version {
                path: file.to_string(),
                found: version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(Self {
            height: num(meta::HEIGHT)?,
            width: num(meta::WIDTH)?,
            channels: num(meta::CHANNELS)?,
            dataset: get(meta::DATASET)?.clone(),
            split: get(meta::SPLIT)?.clone(),
            recipe: get(meta::RECIPE)?.clone(),
        })
    }

    /// The Arrow schema's metadata. pyarrow reads a file's schema metadata from the Arrow
    /// schema embedded in it, not from the footer, so without this a shard read by pyarrow,
    /// pandas or HF datasets would not say its geometry. It holds the footer's keys that every
    /// shard of a dataset shares (all but `ncsn.split`: the shard's folder makes that a
    /// column, and a whole directory read through one schema would otherwise claim one split)
    /// and [`meta::PANDAS_ATTRS`], the same keys as JSON with numbers as numbers.
    pub fn schema_metadata(&self) -> HashMap<String, String> {
        let mut md = self.to_metadata();
        md.remove(meta::SPLIT);
        let attrs = BTreeMap::from([
            (
                meta::SCHEMA_VERSION,
                serde_json::Value::from(SCHEMA_VERSION),
            ),
            (meta::HEIGHT, self.height.into()),
            (meta::WIDTH, self.width.into()),
            (meta::CHANNELS, self.channels.into()),
            (meta::DATASET, self.dataset.clone().into()),
            (meta::RECIPE, self.recipe.clone().into()),
        ]);
        let attrs = serde_json::to_string(&attrs).expect("strings and numbers serialize");
        md.insert(meta::PANDAS_ATTRS.into(), attrs);
        md
    }

    /// The Arrow schema of a shard holding images of this geometry, with
    /// [`ShardInfo::schema_metadata`].
    pub fn arrow_schema(&self) -> Arc<Schema> {
        Arc::new(arrow_schema_for(self.pixel_bytes()).with_metadata(self.schema_metadata()))
    }
}

/// `{split}-{index:05}.parquet`: the file name of shard `index` of a split, as `ncsn ingest`
/// (and every test dataset) names it, in its split's folder
/// ([`crate::layout::Layout::shard_file`]); readers go by the manifest's `file` instead.
pub fn file_name(split: &str, index: u64) -> String {
    format!("{split}-{index:05}.parquet")
}

/// The row schema without file metadata.
pub fn arrow_schema_for(pixel_bytes: usize) -> Schema {
    Schema::new(vec![
        Field::new(COL_ID, DataType::UInt64, false),
        Field::new(COL_KEY, DataType::Utf8, false),
        Field::new(COL_LABEL, DataType::Int32, true),
        Field::new(
            COL_PIXELS,
            DataType::FixedSizeBinary(i32::try_from(pixel_bytes).expect("image fits in i32 bytes")),
            false,
        ),
        Field::new(COL_PIXELS_CRC32, DataType::UInt32, false),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ShardInfo {
        ShardInfo {
            height: 64,
            width: 64,
            channels: 3,
            dataset: "celeba".into(),
            split: "train".into(),
            recipe: "center_crop(140)|resize(64,bilinear)".into(),
        }
    }

    #[test]
    fn file_names_pad_the_index_to_five_digits() {
        assert_eq!(file_name("train", 7), "train-00007.parquet");
        assert_eq!(file_name("test", 123_456), "test-123456.parquet");
        // Up to 100 000 shards a split's files sort in shard order.
        assert!(file_name("test", 9) < file_name("test", 10));
    }

    #[test]
    fn metadata_round_trips() {
        let i = info();
        assert_eq!(ShardInfo::from_metadata(&i.to_metadata(), "x").unwrap(), i);
    }

    #[test]
    fn schema_has_the_five_columns_and_pixel_width() {
        let s = info().arrow_schema();
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [COL_ID, COL_KEY, COL_LABEL, COL_PIXELS, COL_PIXELS_CRC32]
        );
        assert_eq!(
            s.field_with_name(COL_PIXELS).unwrap().data_type(),
            &DataType::FixedSizeBinary(64 * 64 * 3)
        );
        assert!(s.field_with_name(COL_LABEL).unwrap().is_nullable());
        assert_eq!(s.metadata()[meta::HEIGHT], "64");
        assert!(!s.metadata().contains_key(meta::SPLIT));
        assert_eq!(
            s.metadata()[meta::PANDAS_ATTRS],
            format!(
                r#"{{"ncsn.channels":3,"ncsn.dataset":"celeba","ncsn.height":64,"ncsn.recipe":"center_crop(140)|resize(64,bilinear)","ncsn.schema_version":{SCHEMA_VERSION},"ncsn.width":64}}"#
            )
        );
    }

    #[test]
    fn foreign_metadata_is_rejected_with_file_name() {
        let err = ShardInfo::from_metadata(&HashMap::new(), "a.parquet").unwrap_err();
        assert!(err.to_string().contains("a.parquet"), "{err}");
        let mut md = info().to_metadata();
        md.insert(meta::SCHEMA_VERSION.into(), "99".into());
        let err = ShardInfo::from_metadata(&md, "b.parquet").unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
    }
}
