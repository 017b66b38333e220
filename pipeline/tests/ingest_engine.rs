//! The shard writer on CIFAR-10 fixtures and on a synthetic source with rejections:
//! determinism across workers, identical output from every CIFAR-10 distribution, partitions +
//! merge equal to a single run, rejected inputs recorded, clean errors.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline::ingest::{self, merge, Options};
use pipeline::sources::{cifar10, Item, Payload, Source, SplitSource};
use schemas::manifest::{Manifest, Partition};
use schemas::JsonDocument;
use shards::Dataset;
use testkit::fixtures::{pattern, write_cifar, write_tar_gz, CifarVersion};

fn opts(out: &Path, workers: usize, shard_rows: Option<u64>) -> Options {
    Options {
        out: out.to_path_buf(),
        shard_rows,
        workers,
        writers: 0,
        resume: false,
        partition: None,
        progress: false,
    }
}

/// (file, sha256) of every shard, in manifest order.
fn shard_hashes(dir: &Path) -> Vec<(String, String)> {
    let m = Dataset::open(dir).unwrap().manifest;
    m.splits
        .values()
        .flat_map(|s| s.shards.iter().map(|e| (e.file.clone(), e.sha256.clone())))
        .collect()
}

/// Every file under `dir`, as `/`-separated paths relative to it, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            files.extend(files_in(&path).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            files.push(name);
        }
    }
    files.sort();
    files
}

fn manifest_sans_source(dir: &Path) -> Manifest {
    let mut m = Dataset::open(dir).unwrap().manifest;
    m.source.clear();
    m
}

#[test]
fn cifar10_every_distribution_gives_the_same_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(&tmp.path().join("b"), CifarVersion::Binary, 3).unwrap();
    let py = write_cifar(&tmp.path().join("p"), CifarVersion::Python, 3).unwrap();
    let bin_tgz = tmp.path().join("cifar-10-binary.tar.gz");
    let py_tgz = tmp.path().join("cifar-10-python.tar.gz");
    write_tar_gz(&bin, &bin_tgz).unwrap();
    write_tar_gz(&py, &py_tgz).unwrap();

    let mut results = vec![];
    for (i, input) in [
        bin.clone(),
        py.clone(),
        bin_tgz,
        py_tgz,
        tmp.path().join("b"),
    ]
    .iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("out{i}"));
        let src = cifar10::open(input).unwrap();
        assert_eq!(src.splits[0].len, 15);
        assert_eq!(src.splits[1].len, 3);
        ingest::ingest(&src, &opts(&out, 2, Some(4))).unwrap();
        results.push((shard_hashes(&out), manifest_sans_source(&out)));
    }
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }

    // Content: image k of the fixture is pattern(32,32,k), label k % 10, dense ids.
    let ds = Dataset::open(&tmp.path().join("out0")).unwrap();
    assert_eq!(ds.manifest.splits["train"].shards.len(), 4); // 15 rows, 4 per shard
    let train = ds.read_split("train").unwrap();
    assert_eq!(train.ids, (0..15).collect::<Vec<u64>>());
    assert_eq!(train.keys[4], "data_batch_2/0001");
    assert_eq!(train.labels[4], Some(4));
    assert_eq!(train.image(4), &pattern(32, 32, 4)[..]);
    let test = ds.read_split("test").unwrap();
    assert_eq!(test.image(2), &pattern(32, 32, 17)[..]);
    assert_eq!(test.labels[2], Some(7));
}

#[test]
fn bytes_do_not_depend_on_workers_or_writers_and_limit_keeps_the_first_images() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 40).unwrap();
    let mut hashes = vec![];
    for (workers, writers) in [(1, 1), (2, 1), (3, 1), (2, 3), (1, 8)] {
        let out = tmp.path().join(format!("w{workers}-{writers}"));
        let s = ingest::ingest(
            &cifar10::open(&bin).unwrap(),
            &Options {
                writers,
                ..opts(&out, workers, Some(37))
            },
        )
        .unwrap();
        assert_eq!(s.writers, writers);
        hashes.push(shard_hashes(&out));
    }
    assert_eq!(hashes[0].len(), 6 + 2); // 200 train / 37 -> 6 shards, 40 test -> 2
    for h in &hashes[1..] {
        assert_eq!(h, &hashes[0]);
    }

    let mut src = cifar10::open(&bin).unwrap();
    src.limit(50);
    src.select_split("train").unwrap();
    let out = tmp.path().join("limited");
    ingest::ingest(&src, &opts(&out, 2, None)).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.splits.keys().collect::<Vec<_>>(), ["train"]);
    let rows = ds.read_split("train").unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows.keys[49], "data_batch_2/0009");
    assert_eq!(ds.manifest.options["limit"], "50");
}

/// 30 "encoded" items; those whose index is in `bad` fail to decode.
fn synthetic(bad: &'static [u64]) -> Source {
    let open = move |start: u64| -> pipeline::Result<pipeline::sources::Items> {
        Ok(Box::new((start..30).map(move |i| {
            Ok(Item {
                key: format!("img{i:03}.jpg"),
                label: None,
                payload: Payload::Encoded(vec![u8::from(!bad.contains(&i)), i as u8]),
            })
        })))
    };
    Source {
        dataset: "synthetic".into(),
        input: "memory".into(),
        recipe: "test".into(),
        height: 2,
        width: 2,
        split_seed: None,
        options: BTreeMap::new(),
        inputs: Vec::new(),
        splits: vec![SplitSource {
            name: "train".into(),
            len: 30,
            open: Box::new(open),
        }],
        decoder: Some(Box::new(|b: &[u8], _| {
            if b[0] == 0 {
                Err("corrupt or truncated JPEG: bad Huffman code".into())
            } else {
                Ok(vec![b[1]; 12])
            }
        })),
        limits: Default::default(),
    }
}

#[test]
fn rejected_items_are_listed_and_ids_stay_dense() {
    let tmp = tempfile::tempdir().unwrap();
    let src = synthetic(&[3, 17]);
    let out = tmp.path().join("o");
    // Three writers: each shard's first id comes from the rows accepted before it, wherever
    // those were written.
    let s = ingest::ingest(
        &src,
        &Options {
            writers: 3,
            ..opts(&out, 2, Some(8))
        },
    )
    .unwrap();
    let m = &s.manifest;
    let train = &m.splits["train"];
    assert_eq!(train.count, 28);
    assert_eq!(train.rejected.len(), 2);
    assert_eq!(train.rejected[1].key, "img017.jpg");
    assert!(train.rejected[1].reason.contains("Huffman"));
    assert_eq!(
        train
            .shards
            .iter()
            .map(|e| (e.rows, e.first_id))
            .collect::<Vec<_>>(),
        [(7, 0), (8, 7), (7, 15), (6, 22)]
    );
    let rows = Dataset::open(&out).unwrap().read_split("train").unwrap();
    assert_eq!(rows.ids, (0..28).collect::<Vec<u64>>());
    assert_eq!(rows.keys[3], "img004.jpg");
    assert!(s.to_string().contains("2 rejected"), "{s}");
}

#[test]
fn partitions_merge_into_the_single_run_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let single = tmp.path().join("single");
    ingest::ingest(&synthetic(&[3, 17]), &opts(&single, 1, Some(4))).unwrap();

    let shared = tmp.path().join("shared");
    for i in [2, 0, 1] {
        let mut o = opts(&shared, 1, Some(4));
        o.partition = Some(Partition { index: i, count: 3 });
        ingest::ingest(&synthetic(&[3, 17]), &o).unwrap();
    }
    let report = merge(&shared).unwrap();
    assert_eq!(report.partitions, 3);
    assert!(
        report.renumbered > 0,
        "partition 0 rejected img003: later ids shift"
    );
    assert_eq!(shard_hashes(&shared), shard_hashes(&single));
    assert_eq!(
        Manifest::read(&shared.join("_manifest.json")).unwrap(),
        Manifest::read(&single.join("_manifest.json")).unwrap()
    );
    let err = merge(&shared).unwrap_err().to_string();
    assert!(err.contains("already merged"), "{err}");
}

#[test]
fn merge_names_a_missing_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path(), 1, Some(4));
    o.partition = Some(Partition { index: 0, count: 2 });
    ingest::ingest(&synthetic(&[]), &o).unwrap();
    let err = merge(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("partition 1/2"), "{err}");
}

#[test]
fn a_finished_directory_is_not_overwritten_and_resume_checks_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    ingest::ingest(&synthetic(&[]), &opts(&out, 1, Some(8))).unwrap();
    let err = ingest::ingest(&synthetic(&[]), &opts(&out, 1, Some(8)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a finished ingest"), "{err}");
    let mut again = opts(&out, 1, Some(9));
    again.resume = true;
    let err = ingest::ingest(&synthetic(&[]), &again)
        .unwrap_err()
        .to_string();
    assert!(err.contains("shard_rows"), "{err}");
    again.shard_rows = Some(8);
    assert!(
        ingest::ingest(&synthetic(&[]), &again)
            .unwrap()
            .already_complete
    );
}

#[test]
fn bad_cifar_inputs_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let err = cifar10::open(&tmp.path().join("nope"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("no such file"),
        "{err}"
    );

    let bin = write_cifar(tmp.path(), CifarVersion::Binary, 3).unwrap();
    let f = bin.join("data_batch_3.bin");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.truncate(3073 * 2 + 100);
    std::fs::write(&f, bytes).unwrap();
    let err = cifar10::open(&bin).err().unwrap().to_string();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("3073"),
        "{err}"
    );

    let py = write_cifar(tmp.path(), CifarVersion::Python, 3).unwrap();
    let f = py.join("test_batch");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let err = cifar10::open(&py).err().unwrap().to_string();
    assert!(
        err.contains("test_batch") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_fatal_source_error_leaves_no_half_written_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let mut src = synthetic(&[]);
    src.splits[0].open = Box::new(|start| {
        Ok(Box::new((start..30).map(|i| {
            if i == 13 {
                return Err(pipeline::Error::format(
                    "archive.tar.gz",
                    "unexpected end of file",
                ));
            }
            Ok(Item {
                key: format!("img{i:03}.jpg"),
                label: None,
                payload: Payload::Encoded(vec![1, i as u8]),
            })
        })))
    });
    let out = tmp.path().join("o");
    let err = ingest::ingest(&src, &opts(&out, 2, Some(8)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("archive.tar.gz"), "{err}");
    // Shard 0 (items 0..8) finished and is journaled; shard 1 died with item 13: no trace.
    // The journal's listing of the input stays for the resume.
    assert_eq!(
        files_in(&out),
        [
            "_ingest-inputs.tsv",
            "_ingest-journal.json",
            "split=train/train-00000.parquet"
        ]
    );
    let journal = std::fs::read_to_string(out.join("_ingest-journal.json")).unwrap();
    assert_eq!(journal.matches("\"index\"").count(), 1, "{journal}");
    // With the input fixed, --resume finishes it to the bytes of a clean run.
    let mut resume = opts(&out, 2, Some(8));
    resume.resume = true;
    ingest::ingest(&synthetic(&[]), &resume).unwrap();
    let clean = tmp.path().join("clean");
    ingest::ingest(&synthetic(&[]), &opts(&clean, 1, Some(8))).unwrap();
    assert_eq!(shard_hashes(&out), shard_hashes(&clean));
}

/// The splits run as one pipeline, so a later split is opened while the earlier one is still
/// being written: its failure must still be the error reported, after the earlier split's
/// shards are finished and journaled, and a resume must finish the run to the clean bytes.
#[test]
fn a_split_that_cannot_be_opened_stops_the_run_after_the_splits_before_it() {
    let with_test_split = |broken: bool| {
        let mut src = synthetic(&[]);
        let test = synthetic(&[]).splits.remove(0);
        src.splits.push(SplitSource {
            name: "test".into(),
            open: if broken {
                Box::new(|_| Err(pipeline::Error::format("test_lmdb", "no such LMDB")))
            } else {
                test.open
            },
            ..test
        });
        src
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let err = ingest::ingest(&with_test_split(true), &opts(&out, 2, Some(8)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test_lmdb") && err.contains("no such LMDB"),
        "{err}"
    );
    let train = (0..4).map(|s| format!("split=train/train-{s:05}.parquet"));
    let mut want = vec![
        "_ingest-inputs.tsv".to_string(),
        "_ingest-journal.json".to_string(),
    ];
    want.extend(train);
    assert_eq!(
        files_in(&out),
        want,
        "all of train, journaled; nothing of test"
    );

    let mut resume = opts(&out, 2, Some(8));
    resume.resume = true;
    let s = ingest::ingest(&with_test_split(false), &resume).unwrap();
    assert_eq!(s.resumed_shards, 4);
    let clean = tmp.path().join("clean");
    ingest::ingest(&with_test_split(false), &opts(&clean, 1, Some(8))).unwrap();
    assert_eq!(shard_hashes(&out), shard_hashes(&clean));
    assert_eq!(shard_hashes(&out).len(), 8);
}

/// A run in the current layout: a folder per split, everything else named with a leading `_`.
#[test]
fn a_finished_run_holds_split_folders_and_underscored_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    ingest::ingest(&synthetic(&[3]), &opts(tmp.path(), 1, Some(12))).unwrap();
    assert_eq!(
        files_in(tmp.path()),
        [
            "_manifest.json",
            "split=train/train-00000.parquet",
            "split=train/train-00001.parquet",
            "split=train/train-00002.parquet",
        ]
    );
    let m = Dataset::open(tmp.path()).unwrap().manifest;
    assert_eq!(
        m.splits["train"].shards[1].file,
        "split=train/train-00001.parquet"
    );
}

/// What an earlier ncsn left in the flat layout is finished, and merged, in that layout: a
/// resume of its interrupted run, the merge of its partitions. A directory holding partitions
/// of both layouts is refused.
#[test]
fn flat_runs_of_earlier_versions_resume_and_merge_flat() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    ingest::ingest(&synthetic(&[3, 17]), &opts(&clean, 1, Some(8))).unwrap();
    let sha = |dir: &Path| -> Vec<String> { shard_hashes(dir).into_iter().map(|f| f.1).collect() };

    // Interrupted after shard 0 (the source dies at item 13), then flattened.
    let out = tmp.path().join("cut");
    let mut broken = synthetic(&[3, 17]);
    broken.splits[0].open = Box::new(|start| {
        Ok(Box::new((start..30).map(|i| match i {
            13 => Err(pipeline::Error::format(
                "archive.tar.gz",
                "unexpected end of file",
            )),
            _ => Ok(Item {
                key: format!("img{i:03}.jpg"),
                label: None,
                payload: Payload::Encoded(vec![u8::from(![3, 17].contains(&i)), i as u8]),
            }),
        })))
    });
    assert!(ingest::ingest(&broken, &opts(&out, 1, Some(8))).is_err());
    testkit::datasets::flatten(&out);
    assert_eq!(
        files_in(&out),
        [
            "ingest-inputs.tsv",
            "ingest-journal.json",
            "train-00000.parquet"
        ]
    );
    // A plain run refuses it, as before; --resume finishes it flat, to the same shard bytes.
    let err = ingest::ingest(&synthetic(&[3, 17]), &opts(&out, 1, Some(8)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ingest-journal.json") && err.contains("--resume"),
        "{err}"
    );
    let mut resume = opts(&out, 1, Some(8));
    resume.resume = true;
    ingest::ingest(&synthetic(&[3, 17]), &resume).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.layout, schemas::layout::Layout::Flat);
    assert_eq!(
        ds.manifest.splits["train"].shards[3].file,
        "train-00003.parquet"
    );
    assert_eq!(sha(&out), sha(&clean));
    assert!(files_in(&out)
        .iter()
        .all(|f| !f.contains('/') && !f.starts_with('_')));

    // Flat partitions merge into manifest.json.
    let parts = tmp.path().join("parts");
    for i in 0..2 {
        let mut o = opts(&parts, 1, Some(8));
        o.partition = Some(Partition { index: i, count: 2 });
        ingest::ingest(&synthetic(&[3, 17]), &o).unwrap();
    }
    testkit::datasets::flatten(&parts);
    let report = merge(&parts).unwrap();
    assert_eq!(report.manifest_path, parts.join("manifest.json"));
    assert_eq!(
        Dataset::open(&parts).unwrap().layout,
        schemas::layout::Layout::Flat
    );
    assert_eq!(sha(&parts), sha(&clean));

    // Partition 0 flat, partition 1 current: refused, naming the flat one.
    let mixed = tmp.path().join("mixed");
    let mut o = opts(&mixed, 1, Some(8));
    o.partition = Some(Partition { index: 0, count: 2 });
    ingest::ingest(&synthetic(&[3, 17]), &o).unwrap();
    testkit::datasets::flatten(&mixed);
    o.partition = Some(Partition { index: 1, count: 2 });
    ingest::ingest(&synthetic(&[3, 17]), &o).unwrap();
    let err = merge(&mixed).unwrap_err().to_string();
    assert!(
        err.contains("manifest.part-0-of-2.json: is a partition in the flat layout")
            && err.contains("_manifest.part-1-of-2.json is in the current one"),
        "{err}"
    );
}
