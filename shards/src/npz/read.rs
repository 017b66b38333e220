//! Reads NumPy `.npz` archives (stored or deflated, as `np.savez`/`np.savez_compressed` write
//! them) and the `.npy` arrays inside: what pytorch-fid and TTUR statistics files (`mu`,
//! `sigma`: float32 or float64) and `ncsn sample --raw` samples (`arr_0`: uint8 NHWC) are.
//! Writing is in the parent module (`shards::write_npz`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// An array's elements, converted to native endianness.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    U8(Vec<u8>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl NpyData {
    /// numpy's name of the element type, for messages.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyData::U8(_) => "uint8",
            NpyData::I64(_) => "int64",
            NpyData::F32(_) => "float32",
            NpyData::F64(_) => "float64",
        }
    }

    /// The elements as f64 (exact for every type here but int64 beyond 2⁵³).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            NpyData::U8(v) => v.iter().map(|&x| x.into()).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::F32(v) => v.iter().map(|&x| x.into()).collect(),
            NpyData::F64(v) => v.clone(),
        }
    }
}

/// One array of an `.npz`, in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// An open `.npz`: its array names, each read on demand.
pub struct Npz {
    path: PathBuf,
    zip: zip::ZipArchive<File>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(Error::io(path))?;
        let zip = zip::ZipArchive::new(file)
            .map_err(|e| Error::format(path, format!("not a NumPy .npz (zip) archive: {e}")))?;
        Ok(Npz {
            path: path.to_path_buf(),
            zip,
        })
    }

    /// The arrays' names (`mu`, `sigma`, `arr_0`), in archive order.
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .filter_map(|n| n.strip_suffix(".npy").map(str::to_string))
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().iter().any(|n| n == name)
    }

    /// Reads the array `name`, or says which arrays the file has.
    pub fn read(&mut self, name: &str) -> Result<NpyArray> {
        let have = self.names();
        let mut entry = match self.zip.by_name(&format!("{name}.npy")) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(Error::format(
                    &self.path,
                    format!("no array `{name}` (it holds: {})", have.join(", ")),
                ))
            }
            Err(e) => return Err(Error::format(&self.path, format!("{name}.npy: {e}"))),
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(&self.path, format!("{name}.npy: {e}")))?;
        parse_npy(&bytes).map_err(|msg| Error::format(&self.path, format!("{name}.npy: {msg}")))
    }
}

/// Parses `.npy` bytes (format 1.0–3.0; little-endian or byte-sized types; C or Fortran order).
pub fn parse_npy(b: &[u8]) -> std::result::Result<NpyArray, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (
            u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let header = b
        .get(start..start + hlen)
        .map(String::from_utf8_lossy)
        .ok_or("truncated header")?;
    let descr = field(&header, "descr").ok_or("no 'descr' in the header")?;
    let descr = descr.trim_matches(['\'', '"']);
    let fortran = field(&header, "fortran_order").ok_or("no 'fortran_order' in the header")?;
    let fortran = match fortran {
        "True" => true,
        "False" => false,
        other => return Err(format!("fortran_order {other}")),
    };
    let shape_text = field(&header, "shape").ok_or("no 'shape' in the header")?;
    let shape = shape_text
        .trim_matches(['(', ')'])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format!("a bad shape {shape_text}"))?;
    let n: usize = shape.iter().product();
    let body = &b[start + hlen..];
    let need = |size: usize| -> std::result::Result<&[u8], String> {
        body.get(..n * size).ok_or_else(|| {
            format!(
                "holds {} bytes, shape {shape:?} needs {}",
                body.len(),
                n * size
            )
        })
    };
    let mut data = match descr {
        "|u1" | "<u1" | "u1" => NpyData::U8(need(1)?.to_vec()),
        "<i8" => NpyData::I64(
            need(8)?
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        "<f4" => NpyData::F32(
            need(4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        "<f8" => NpyData::F64(
            need(8)?
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        other => {
            return Err(format!(
                "dtype {other} is not supported (uint8, int64, float32, float64 little-endian)"
            ))
        }
    };
    if fortran && shape.len() > 1 {
        data = match data {
            NpyData::U8(v) => NpyData::U8(fortran_to_c(&v, &shape)),
            NpyData::I64(v) => NpyData::I64(fortran_to_c(&v, &shape)),
            NpyData::F32(v) => NpyData::F32(fortran_to_c(&v, &shape)),
            NpyData::F64(v) => NpyData::F64(fortran_to_c(&v, &shape)),
        };
    }
    Ok(NpyArray { shape, data })
}

/// The value of `'key': value` in a header dict (up to the next top-level comma).
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn fortran_to_c<T: Copy>(v: &[T], shape: &[usize]) -> Vec<T> {
    let n = v.len();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        // Fortran offset of the C-order multi-index `idx`: the first axis varies fastest.
        let mut off = 0;
        let mut stride = 1;
        for (d, &i) in idx.iter().enumerate() {
            off += i * stride;
            stride *= shape[d];
        }
        out.push(v[off]);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_shards_writes() {
        let a = parse_npy(&crate::npy_f64(&[2, 2], &[1.0, 2.0, 3.0, 4.5])).unwrap();
        assert_eq!(a.shape, [2, 2]);
        assert_eq!(a.data, NpyData::F64(vec![1.0, 2.0, 3.0, 4.5]));
        let u = parse_npy(&crate::npy_u8(&[3], &[7, 8, 9])).unwrap();
        assert_eq!(u.data, NpyData::U8(vec![7, 8, 9]));
        let s = parse_npy(&crate::npy_i64(&[], &[-3])).unwrap();
        assert_eq!((s.shape.len(), s.data), (0, NpyData::I64(vec![-3])));
    }

    #[test]
    fn fortran_order_is_transposed_to_c() {
        // [[1, 2, 3], [4, 5, 6]] in Fortran order is 1 4 2 5 3 6.
        assert_eq!(
            fortran_to_c(&[1, 4, 2, 5, 3, 6], &[2, 3]),
            [1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn header_fields() {
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2048, 2048), }";
        assert_eq!(field(h, "descr"), Some("'<f4'"));
        assert_eq!(field(h, "fortran_order"), Some("False"));
        assert_eq!(field(h, "shape"), Some("(2048, 2048)"));
        let bad = b"\x93NUMPY\x01\x00\x10\x00{'descr': '>f8'}";
        assert!(parse_npy(bad).is_err());
    }
}
