//! Small synthetic inputs in each dataset's distributed layout, generated on the fly for tests,
//! examples and benchmarks (no binary blobs in the repository). Pixels are smooth colour
//! gradients with a per-image pattern, so grids look like something and crops are checkable.

use std::path::{Path, PathBuf};

use schemas::cifar;
use shards::{Error, Result};

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
    let names = cifar::TRAIN_BATCHES.iter().chain(&cifar::TEST_BATCHES);
    for (b, name) in names.enumerate() {
        let mut planes = Vec::new();
        let mut labels = Vec::new();
        let mut bin = Vec::new();
        for i in 0..per_batch {
            let k = (b * per_batch + i) as u64;
            let side = cifar::SIDE as u32;
            let chw = cifar::hwc_to_chw(&pattern(side, side, k));
            labels.push((k % 10) as i32);
            bin.push((k % 10) as u8);
            bin.extend_from_slice(&chw);
            planes.extend(chw);
        }
        let (path, bytes) = match version {
            CifarVersion::Binary => (sub.join(format!("{name}.bin")), bin),
            CifarVersion::Python => (
                sub.join(name),
                crate::pickle::write_cifar_batch_py2(&planes, &labels),
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

/// Encoded test images (the `image` crate's encoders; the decoders under test are others).
pub fn encode(w: u32, h: u32, seed: u64, format: image::ImageFormat) -> Vec<u8> {
    let px = pattern(w, h, seed);
    let mut out = std::io::Cursor::new(Vec::new());
    match format {
        image::ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
                .encode(&px, w, h, image::ExtendedColorType::Rgb8)
                .expect("jpeg encodes")
        }
        other => image::write_buffer_with_format(
            &mut out,
            &px,
            w,
            h,
            image::ExtendedColorType::Rgb8,
            other,
        )
        .expect("image encodes"),
    }
    out.into_inner()
}

/// Writes an LMDB at `dir` (created) holding `entries` in its unnamed database.
pub fn write_lmdb(dir: &Path, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    use heed::types::Bytes;
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let lmdb = |e: heed::Error| Error::format(dir, format!("LMDB: {e}"));
    let size: usize = entries.iter().map(|(k, v)| k.len() + v.len() + 64).sum();
    // SAFETY: a fresh directory no other process uses.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size((size * 4).max(1 << 20).next_multiple_of(4096))
            .open(dir)
    }
    .map_err(lmdb)?;
    let wtxn = env.write_txn().map_err(lmdb)?;
    let db = env
        .create_databases_and_commit(wtxn, |wdo, wtxn| -> std::result::Result<_, heed::Error> {
            Ok(heed::CommitOrAbort::<_, ()>::Commit(
                wdo.create_database::<Bytes, Bytes>(wtxn, None)?,
            ))
        })
        .map_err(lmdb)?
        .unwrap_commit();
    let mut wtxn = env.write_txn().map_err(lmdb)?;
    for (k, v) in entries {
        db.put(&mut wtxn, k, v).map_err(lmdb)?;
    }
    wtxn.commit().map_err(lmdb)?;
    Ok(())
}

/// CelebA-like input in `dir`: `img_align_celeba/` with `n` JPEGs of 178×218 (image `i` is
/// `pattern(178, 218, i)`, file `{i+1:06}.jpg`) and `list_eval_partition.txt` (every 5th image
/// valid, the next test, the rest train).
pub fn write_celeba(dir: &Path, n: usize) -> Result<()> {
    let img = dir.join("img_align_celeba");
    std::fs::create_dir_all(&img).map_err(Error::io(&img))?;
    let mut list = String::new();
    for i in 0..n {
        let name = format!("{:06}.jpg", i + 1);
        let p = img.join(&name);
        std::fs::write(&p, encode(178, 218, i as u64, image::ImageFormat::Jpeg))
            .map_err(Error::io(&p))?;
        let part = match i % 5 {
            3 => 1,
            4 => 2,
            _ => 0,
        };
        list.push_str(&format!("{name} {part}\n"));
    }
    let p = dir.join("list_eval_partition.txt");
    std::fs::write(&p, list).map_err(Error::io(&p))
}

/// Zips `dir/img_align_celeba/` into `dir/img_align_celeba.zip` (stored, like the original).
pub fn zip_celeba(dir: &Path) -> Result<()> {
    let out = dir.join("img_align_celeba.zip");
    let f = std::fs::File::create(&out).map_err(Error::io(&out))?;
    let mut zip = zip::ZipWriter::new(f);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut names: Vec<_> = std::fs::read_dir(dir.join("img_align_celeba"))
        .map_err(Error::io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(Error::io(dir))?;
    names.sort();
    let zerr = |e: zip::result::ZipError| Error::format(&out, e.to_string());
    for p in names {
        let name = format!(
            "img_align_celeba/{}",
            p.file_name().unwrap().to_string_lossy()
        );
        zip.start_file(name, opts).map_err(zerr)?;
        let bytes = std::fs::read(&p).map_err(Error::io(&p))?;
        std::io::Write::write_all(&mut zip, &bytes).map_err(Error::io(&out))?;
    }
    zip.finish().map_err(zerr)?;
    Ok(())
}

/// FFHQ-like `dir/images1024x1024/NNNNN/NNNNN.png` tree of `n` PNGs of `side`² (the real ones
/// are 1024²; tests use small ones), folders of 1000 as in the original.
pub fn write_ffhq(dir: &Path, n: usize, side: u32) -> Result<()> {
    for i in 0..n {
        let sub = dir
            .join("images1024x1024")
            .join(format!("{:05}", i / 1000 * 1000));
        std::fs::create_dir_all(&sub).map_err(Error::io(&sub))?;
        let p = sub.join(format!("{i:05}.png"));
        std::fs::write(&p, encode(side, side, i as u64, image::ImageFormat::Png))
            .map_err(Error::io(&p))?;
    }
    Ok(())
}
