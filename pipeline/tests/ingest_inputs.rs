//! Every source names the files its items are read from (`Source::inputs`), which an ingest
//! lists when it starts so that `--resume` refuses an input changed since: the batch files or
//! archive of CIFAR-10, the split file and images (or zip) of CelebA, `data.mdb` of an LMDB,
//! the PNGs of FFHQ, the images of a folder.

use std::path::{Path, PathBuf};

use image::ImageFormat;
use pipeline::sources::{celeba, cifar10, ffhq, folder, lsun, Source};
use testkit::fixtures::{
    encode, write_celeba, write_cifar, write_ffhq, write_lmdb, write_tar_gz, zip_celeba,
    CifarVersion,
};

/// The inputs relative to `root`, sorted.
fn inputs(src: &Source, root: &Path) -> Vec<String> {
    let mut names: Vec<String> = src
        .inputs
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn cifar10_batches_or_archive() {
    let tmp = tempfile::tempdir().unwrap();
    for version in [CifarVersion::Binary, CifarVersion::Python] {
        let dir = write_cifar(tmp.path(), version, 3).unwrap();
        let src = cifar10::open(&dir).unwrap();
        assert_eq!(src.inputs.len(), 6, "{:?}", src.inputs);
        assert!(src.inputs.iter().all(|p| p.is_file()), "{:?}", src.inputs);
        if version == CifarVersion::Binary {
            assert!(src.inputs.contains(&dir.join("data_batch_3.bin")));
        }
        let tgz = tmp.path().join("c.tar.gz");
        write_tar_gz(&dir, &tgz).unwrap();
        assert_eq!(cifar10::open(&tgz).unwrap().inputs, [tgz]);
    }
}

#[test]
fn celeba_split_file_and_images_or_zip() {
    let tmp = tempfile::tempdir().unwrap();
    write_celeba(tmp.path(), 6).unwrap();
    let src = celeba::open(tmp.path(), None).unwrap();
    let mut want: Vec<String> = (1..=6)
        .map(|i| format!("img_align_celeba/{i:06}.jpg"))
        .collect();
    want.push("list_eval_partition.txt".into());
    assert_eq!(inputs(&src, tmp.path()), want);

    zip_celeba(tmp.path()).unwrap();
    std::fs::remove_dir_all(tmp.path().join("img_align_celeba")).unwrap();
    let src = celeba::open(tmp.path(), None).unwrap();
    assert_eq!(
        inputs(&src, tmp.path()),
        ["img_align_celeba.zip", "list_eval_partition.txt"]
    );
}

#[test]
fn lmdbs_their_data_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lsun_dir = tmp.path().join("church_outdoor_train_lmdb");
    let img = encode(40, 40, 0, ImageFormat::Jpeg);
    write_lmdb(&lsun_dir, &[(b"k0".to_vec(), img.clone())]).unwrap();
    let src = lsun::open(&lsun_dir, Some(16)).unwrap();
    assert_eq!(src.inputs, [lsun_dir.join("data.mdb")]);

    let ffhq_dir = tmp.path().join("ffhq_lmdb");
    let entries = [
        (b"length".to_vec(), b"1".to_vec()),
        (b"16-00000".to_vec(), encode(16, 16, 0, ImageFormat::Jpeg)),
    ];
    write_lmdb(&ffhq_dir, &entries).unwrap();
    let src = ffhq::open(&ffhq_dir, Some(16), None).unwrap();
    assert_eq!(src.inputs, [ffhq_dir.join("data.mdb")]);
}

#[test]
fn ffhq_and_folder_their_images() {
    let tmp = tempfile::tempdir().unwrap();
    write_ffhq(tmp.path(), 3, 16).unwrap();
    let src = ffhq::open(tmp.path(), Some(16), None).unwrap();
    assert_eq!(
        inputs(&src, tmp.path()),
        (0..3)
            .map(|i| format!("images1024x1024/00000/{i:05}.png"))
            .collect::<Vec<_>>()
    );

    let dir: PathBuf = tmp.path().join("images1024x1024");
    let src = folder::open(&dir, Some(16), None).unwrap();
    assert_eq!(src.inputs.len(), 3);
    assert!(src
        .inputs
        .iter()
        .all(|p| p.starts_with(&dir) && p.is_file()));
}
