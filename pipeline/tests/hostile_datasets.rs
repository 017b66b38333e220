//! Dataset inputs that lie cost a rejection or a one-line error naming the file, never the
//! run or a file outside the dataset: an empty or escaping CelebA partition list, a zip entry
//! that inflates without bound, a symlink loop in an image folder, a CIFAR-10 archive member
//! claiming a terabyte, a truncated LMDB (liblmdb faults on it), an FFHQ `length` that lies.

use std::path::Path;

use image::ImageFormat;
use pipeline::sources::{celeba, cifar10, ffhq, folder, lsun};
use testkit::alloc::{largest_allocation, Largest};
use testkit::fixtures::{encode, write_celeba, write_lmdb, zip_celeba};

#[global_allocator]
static ALLOC: Largest = Largest;

/// CelebA whose list_eval_partition.txt is `list`.
fn celeba_with_list(dir: &Path, list: &str) -> String {
    write_celeba(dir, 3).unwrap();
    std::fs::write(dir.join("list_eval_partition.txt"), list).unwrap();
    celeba::open(dir, None).err().expect("refused").to_string()
}

#[test]
fn an_empty_celeba_partition_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = celeba_with_list(tmp.path(), "\n\n");
    assert!(
        err.contains("list_eval_partition.txt") && err.contains("empty"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn celeba_partition_entries_outside_the_images_folder_are_refused() {
    for (list, line) in [
        ("000001.jpg 0\n/etc/passwd 0\n", 2),
        ("000001.jpg 0\n000002.jpg 1\n../../secret.jpg 2\n", 3),
        ("sub/../../x.jpg 0\n", 1),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let err = celeba_with_list(tmp.path(), list);
        assert!(
            err.contains("list_eval_partition.txt") && err.contains(&format!("line {line}:")),
            "{err}"
        );
    }
}

#[test]
fn a_zip_bomb_entry_is_rejected_without_inflating_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_celeba(dir, 3).unwrap();
    zip_celeba(dir).unwrap();
    std::fs::remove_dir_all(dir.join("img_align_celeba")).unwrap();
    // Append a fourth entry: 64 MiB of zeros, deflated to ~64 KB.
    let zip_path = dir.join("img_align_celeba.zip");
    let mut zip = zip::ZipWriter::new_append(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&zip_path)
            .unwrap(),
    )
    .unwrap();
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("img_align_celeba/000004.jpg", opts).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut zip, &zeros).unwrap();
    }
    zip.finish().unwrap();
    let mut list = std::fs::read_to_string(dir.join("list_eval_partition.txt")).unwrap();
    list.push_str("000004.jpg 0\n");
    std::fs::write(dir.join("list_eval_partition.txt"), list).unwrap();

    let src = celeba::open(dir, None).unwrap();
    let train = &src.splits[0];
    let (items, largest) = largest_allocation(|| {
        (train.open)(0)
            .unwrap()
            .map(|i| i.unwrap())
            .collect::<Vec<_>>()
    });
    let bomb = items.iter().find(|i| i.key == "000004.jpg").unwrap();
    match &bomb.payload {
        pipeline::sources::Payload::Unreadable(why) => {
            assert!(why.contains("zip bomb"), "{why}")
        }
        other => panic!("the bomb was read: {other:?}"),
    }
    assert!(largest < 8 << 20, "allocated {largest} bytes");
}

#[test]
fn a_symlink_loop_in_an_image_folder_is_walked_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a/x.png"), encode(8, 8, 7, ImageFormat::Png)).unwrap();
    std::os::unix::fs::symlink("..", dir.join("a/up")).unwrap();
    let src = folder::open(&dir, Some(8), None).unwrap();
    // Before: 41 rows of the one image (a/x.png, a/up/a/x.png, ...) until ELOOP.
    assert_eq!(src.splits[0].len, 1);
}

#[test]
fn an_image_name_on_a_device_fifo_or_sparse_terabyte_is_rejected_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.png"), encode(8, 8, 7, ImageFormat::Png)).unwrap();
    // Before: read forever (until the allocator aborted), and blocked forever opening it.
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.jpg")).unwrap();
    // A sparse terabyte: `Vec::with_capacity` of its size aborted.
    std::fs::File::create(dir.join("sparse.webp"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let fifo =
        std::ffi::CString::new(dir.join("fifo.png").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let src = folder::open(&dir, Some(8), None).unwrap();
    let reasons: Vec<_> = (src.splits[0].open)(0)
        .unwrap()
        .map(|i| {
            let i = i.unwrap();
            (i.key, src.prepare(i.payload).err())
        })
        .collect();
    let why: Vec<_> = reasons
        .iter()
        .map(|(_, w)| w.as_deref().unwrap_or("ok"))
        .collect();
    assert_eq!(reasons.len(), 4);
    assert_eq!(why[0], "ok");
    assert!(why[1].ends_with("fifo.png is not a regular file (a device, FIFO or directory)"));
    let cap = pipeline::Limits::default().max_file_bytes();
    assert!(
        why[2].ends_with(&format!(
            "sparse.webp is 1099511627776 bytes, more than any image within --max-pixels can \
             be ({cap})"
        )),
        "{}",
        why[2]
    );
    assert!(why[3].ends_with("zero.jpg is not a regular file (a device, FIFO or directory)"));
}

#[test]
fn a_cifar_archive_member_claiming_a_terabyte_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("cifar-10-python.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&tgz).unwrap(),
        flate2::Compression::fast(),
    );
    // A tar header alone: the member says 1 TiB, the archive ends.
    let mut header = tar::Header::new_gnu();
    header.set_path("cifar-10-batches-py/data_batch_1").unwrap();
    header.set_size(1 << 40);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = gz;
    std::io::Write::write_all(&mut gz, header.as_bytes()).unwrap();
    gz.finish().unwrap();
    let err = cifar10::open(&tgz).err().expect("refused").to_string();
    assert!(
        err.contains("data_batch_1") && err.contains("not a CIFAR-10 batch"),
        "{err}"
    );
}

fn lsun_lmdb(dir: &Path) {
    let entries: Vec<_> = (0..12u64)
        .map(|i| {
            (
                format!("{i:040x}").into_bytes(),
                encode(40, 30, i, ImageFormat::WebP),
            )
        })
        .collect();
    write_lmdb(dir, &entries).unwrap();
}

#[test]
fn a_truncated_lmdb_is_refused_not_a_sigbus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bedroom_train_lmdb");
    lsun_lmdb(&dir);
    let data = dir.join("data.mdb");
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
    // Before the check, liblmdb mapped the file and the process died of SIGBUS here.
    let err = lsun::open(&dir, None).err().expect("refused").to_string();
    assert!(
        err.contains("data.mdb") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn an_ffhq_lmdb_whose_length_is_a_lie_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ffhq_lmdb");
    let mut entries: Vec<_> = (0..3u64)
        .map(|i| {
            (
                format!("16-{i:05}").into_bytes(),
                encode(16, 16, i, ImageFormat::Jpeg),
            )
        })
        .collect();
    // The split would allocate 8 bytes per claimed image: 8 EB.
    entries.push((b"length".to_vec(), b"1000000000000000000".to_vec()));
    write_lmdb(&dir, &entries).unwrap();
    let err = ffhq::open(&dir, Some(16), None)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("`length` is 1000000000000000000 but it holds 4 keys"),
        "{err}"
    );
}
