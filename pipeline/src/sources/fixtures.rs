//! Small synthetic inputs in each dataset's distributed layout, generated on the fly for tests,
//! examples and benchmarks (no binary blobs in the repository). Pixels are smooth colour
//! gradients with a per-image pattern, so grids look like something and crops are checkable.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A deterministic `w × h` RGB image (HWC), different for every `seed`.
pub fn pattern(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    let s = (seed % 97) as u32;
    for y in 0..h {
        for x in 0..w {
            let r = (x * 255 / w.max(1) + s * 7) % 256;
            let g = (y * 255 / h.max(1) + s * 13) % 256;
            let b = ((x + y) * 3 + s * 29 + ((x / 4 + y / 4 + s) % 2) * 60) % 256;
            out.extend_from_slice(&[r as u8, g as u8, b as u8]);
        }
    }
    out
}

/// Which CIFAR-10 version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVersion {
    Binary,
    Python,
}

/// Writes `dir/cifar-10-batches-{bin,py}/` with data_batch_1..5 and test_batch of `per_batch`
/// images each (image `k` of the whole set is `pattern(32, 32, k)`, label `k % 10`). Returns
/// the batches directory.
pub fn write_cifar(dir: &Path, version: CifarVersion, per_batch: usize) -> Result<PathBuf> {
    let sub = dir.join(match version {
        CifarVersion::Binary => "cifar-10-batches-bin",
        CifarVersion::Python => "cifar-10-batches-py",
    });
    std::fs::create_dir_all(&sub).map_err(Error::io(&sub))?;
    let names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ];
    for (b, name) in names.iter().enumerate() {
        let mut planes = Vec::new();
        let mut labels = Vec::new();
        let mut bin = Vec::new();
        for i in 0..per_batch {
            let k = (b * per_batch + i) as u64;
            let hwc = pattern(32, 32, k);
            let mut chw = vec![0u8; 3072];
            for p in 0..1024 {
                for c in 0..3 {
                    chw[c * 1024 + p] = hwc[p * 3 + c];
                }
            }
            labels.push((k % 10) as i32);
            bin.push((k % 10) as u8);
            bin.extend_from_slice(&chw);
            planes.extend_from_slice(&chw);
        }
        let (path, bytes) = match version {
            CifarVersion::Binary => (sub.join(format!("{name}.bin")), bin),
            CifarVersion::Python => (
                sub.join(name),
                super::pickle::write_cifar_batch_py2(&planes, &labels),
            ),
        };
        std::fs::write(&path, bytes).map_err(Error::io(&path))?;
    }
    Ok(sub)
}

/// Packs `dir` (keeping its own name as the top folder, like the distributed archives) into
/// a `.tar.gz` at `out`.
pub fn write_tar_gz(dir: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::create(out).map_err(Error::io(out))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let top = dir.file_name().expect("directory has a name");
    tar.append_dir_all(top, dir).map_err(Error::io(out))?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .map_err(Error::io(out))?;
    Ok(())
}
