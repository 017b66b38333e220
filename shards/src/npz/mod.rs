//! NumPy `.npz` files: the reader (`read.rs`: stored or deflated, uint8, int64, float32, float64) and a
//! minimal writer: an uncompressed zip of `.npy` files (format 1.0), which
//! `numpy.load` reads and external FID tools accept: uint8 samples (`arr_0`, NHWC, like
//! `np.savez(path, samples)`) and float64 statistics (`mu`, `sigma`, like pytorch-fid's
//! `save_fid_stats`).

mod read;
pub use read::{parse_npy, NpyArray, NpyData, Npz};

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use crate::error::{Error, Result};

/// The `.npy` (v1.0) bytes of a C-ordered uint8 array of `shape`.
pub fn npy_u8(shape: &[usize], data: &[u8]) -> Vec<u8> {
    npy("|u1", shape, data.len(), data)
}

/// The `.npy` (v1.0) bytes of a C-ordered float64 array of `shape` (little-endian).
pub fn npy_f64(shape: &[usize], data: &[f64]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<f8", shape, data.len(), &bytes)
}

/// The `.npy` (v1.0) bytes of a C-ordered int64 array of `shape` (little-endian).
pub fn npy_i64(shape: &[usize], data: &[i64]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<i8", shape, data.len(), &bytes)
}

fn npy(descr: &str, shape: &[usize], len: usize, data: &[u8]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        len,
        "npy: shape does not match the data"
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces and a final
    // newline to a multiple of 64 bytes, as numpy writes it.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Writes `arrays` (name, shape, uint8 data) as an uncompressed `.npz`, atomically.
pub fn write_npz_u8(path: &Path, arrays: &[(&str, &[usize], &[u8])]) -> Result<()> {
    let encoded: Vec<(&str, Vec<u8>)> = arrays
        .iter()
        .map(|(name, shape, data)| (*name, npy_u8(shape, data)))
        .collect();
    write_npz(path, &encoded)
}

/// Writes `.npy` files (name without `.npy`, bytes from [`npy_u8`], [`npy_f64`], [`npy_i64`])
/// as an uncompressed `.npz`, atomically.
pub fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)]) -> Result<()> {
    schemas::atomic::write_atomic_with(path, |w| {
        let mut zip = zip::ZipWriter::new(w);
        for (name, npy) in arrays {
            let opts = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .large_file(npy.len() as u64 >= u32::MAX as u64);
            zip.start_file(format!("{name}.npy"), opts)?;
            zip.write_all(npy)?;
        }
        zip.finish()?;
        Ok(())
    })
    .map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::atomic::tmp_path;

    #[test]
    fn npy_header_is_aligned_and_describes_the_array() {
        let b = npy_u8(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        assert_eq!(&b[10 + hlen..], &[1, 2, 3, 4, 5, 6]);
        let one = npy_u8(&[3], &[0, 0, 0]);
        assert!(std::str::from_utf8(&one[10..]).unwrap().contains("(3,)"));
        let f = npy_f64(&[2], &[1.5, -2.0]);
        let hlen = u16::from_le_bytes([f[8], f[9]]) as usize;
        assert!(std::str::from_utf8(&f[10..10 + hlen])
            .unwrap()
            .contains("'descr': '<f8'"));
        assert_eq!(&f[10 + hlen..10 + hlen + 8], &1.5f64.to_le_bytes());
        let scalar = npy_i64(&[], &[7]);
        assert!(std::str::from_utf8(&scalar[10..])
            .unwrap()
            .contains("'shape': ()"));
    }

    #[test]
    fn npz_is_a_zip_of_npy_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npz");
        write_npz_u8(&p, &[("arr_0", &[1, 2, 2, 3], &[7u8; 12])]).unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap();
        let mut f = z.by_name("arr_0.npy").unwrap();
        let mut bytes = vec![];
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        assert_eq!(bytes, npy_u8(&[1, 2, 2, 3], &[7u8; 12]));
        assert!(!tmp_path(&p).exists());
    }
}
