//! Checkpoint layout (CONTRACTS.md): atomic save, latest.json, resolve, load_weights.

use schemas::checkpoint::CheckpointMeta;
use tch::{Kind, Tensor};
use trainer::checkpoint::{self, Weights};

fn meta(step: u64) -> CheckpointMeta {
    CheckpointMeta::new(
        step,
        "ncsnv2",
        serde_json::json!({"training": {"batch_size": 2}}),
    )
}

fn tensors(v: f64) -> Vec<(String, Tensor)> {
    vec![
        (
            "model.begin_conv.weight".into(),
            Tensor::full([2, 3], v, (Kind::Float, tch::Device::Cpu)),
        ),
        (
            "model.sigmas".into(),
            Tensor::from_slice(&[50.0f32, 1.0, 0.01]),
        ),
        (
            "ema.begin_conv.weight".into(),
            Tensor::full([2, 3], v + 0.5, (Kind::Float, tch::Device::Cpu)),
        ),
        (
            "ema.sigmas".into(),
            Tensor::from_slice(&[50.0f32, 1.0, 0.01]),
        ),
        ("optim.step".into(), Tensor::from_slice(&[3i64])),
    ]
}

#[test]
fn save_then_resolve_and_load_each_copy() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(checkpoint::CHECKPOINT_DIR);
    let first = checkpoint::save(&dir, &meta(5), &tensors(1.0)).unwrap();
    let second = checkpoint::save(&dir, &meta(10), &tensors(2.0)).unwrap();
    assert!(
        first.ends_with("ckpt_00000005.safetensors"),
        "{}",
        first.display()
    );
    assert!(dir.join("ckpt_00000010.json").is_file());
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));

    // A workdir, the checkpoints dir and latest.json all resolve to the newest file.
    for p in [
        work.path().to_path_buf(),
        dir.clone(),
        dir.join("latest.json"),
    ] {
        assert_eq!(checkpoint::resolve(&p).unwrap(), second);
    }
    // An explicit file resolves to itself (older checkpoints stay loadable).
    assert_eq!(checkpoint::resolve(&first).unwrap(), first);

    let (m, ema) = checkpoint::load_weights(work.path(), Weights::Ema).unwrap();
    assert_eq!(m.step, 10);
    let names: Vec<&str> = ema.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"begin_conv.weight") && names.contains(&"sigmas"),
        "{names:?}"
    );
    let w = &ema
        .iter()
        .find(|(n, _)| n == "begin_conv.weight")
        .unwrap()
        .1;
    assert_eq!(w.double_value(&[0, 0]), 2.5);

    let (_, model) = checkpoint::load_weights(&first, Weights::Model).unwrap();
    let w = &model
        .iter()
        .find(|(n, _)| n == "begin_conv.weight")
        .unwrap()
        .1;
    assert_eq!(w.double_value(&[1, 2]), 1.0);
}

/// The file names in `dir`, sorted.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn weights_changed_on_disk_are_refused_naming_the_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(checkpoint::CHECKPOINT_DIR);
    let file = checkpoint::save(&dir, &meta(5), &tensors(1.0)).unwrap();
    let recorded = checkpoint::read_meta(&file).unwrap().tensors_sha256;
    assert_eq!(recorded.unwrap(), shards::sha256_file(&file).unwrap().0);

    // One flipped bit in the last tensor's data (the JSON header comes first).
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let want = format!(
        "checkpoint {}: sha256 mismatch (file corrupt or changed since it was written)",
        file.display()
    );
    for which in [Weights::Ema, Weights::Model] {
        let err = checkpoint::load_weights(work.path(), which).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    let err = checkpoint::read_tensors(&file).unwrap_err();
    assert_eq!(err.to_string(), want);

    // Checkpoints written before the sha256 was recorded load unchecked.
    let mut m = checkpoint::read_meta(&file).unwrap();
    m.tensors_sha256 = None;
    schemas::JsonDocument::write_atomic(&m, &checkpoint::meta_path(&file)).unwrap();
    assert!(!std::fs::read_to_string(checkpoint::meta_path(&file))
        .unwrap()
        .contains("sha256"));
    assert_eq!(checkpoint::read_tensors(&file).unwrap().len(), 5);
}

#[test]
fn a_failed_save_leaves_no_temporary_file_and_the_previous_checkpoint_latest() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(checkpoint::CHECKPOINT_DIR);
    let first = checkpoint::save(&dir, &meta(5), &tensors(1.0)).unwrap();
    // The next checkpoint's name is taken by a non-empty directory: its tensors are written
    // and hashed, then the rename fails.
    let blocked = dir.join("ckpt_00000010.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"").unwrap();
    let err = checkpoint::save(&dir, &meta(10), &tensors(2.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ckpt_00000010.safetensors"), "{err}");
    assert_eq!(
        files(&dir),
        [
            "ckpt_00000005.json",
            "ckpt_00000005.safetensors",
            "ckpt_00000010.safetensors",
            "latest.json"
        ]
    );
    assert_eq!(checkpoint::resolve(work.path()).unwrap(), first);

    // A write killed midway (SIGKILL, a second Ctrl-C) leaves its temporary file: the next
    // complete save sweeps it away.
    std::fs::remove_dir_all(&blocked).unwrap();
    std::fs::write(dir.join("ckpt_00000007.safetensors.tmp"), b"half").unwrap();
    checkpoint::save(&dir, &meta(10), &tensors(2.0)).unwrap();
    assert!(
        files(&dir).iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        files(&dir)
    );
}

#[test]
fn prune_keeps_the_newest() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("checkpoints");
    for s in [1, 2, 3] {
        checkpoint::save(&dir, &meta(s), &tensors(0.0)).unwrap();
    }
    checkpoint::prune(&dir, 2).unwrap();
    assert!(!dir.join("ckpt_00000001.safetensors").exists());
    assert!(!dir.join("ckpt_00000001.json").exists());
    assert!(dir.join("ckpt_00000002.safetensors").exists());
    assert_eq!(
        checkpoint::resolve(work.path()).unwrap(),
        dir.join("ckpt_00000003.safetensors")
    );
}

#[test]
fn clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let err = checkpoint::resolve(work.path()).unwrap_err().to_string();
    assert!(
        err.contains("latest.json") && err.contains(&work.path().display().to_string()),
        "{err}"
    );

    let err = checkpoint::resolve(&work.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");

    // latest.json pointing at a missing file names both.
    let dir = work.path().join("checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("latest.json"),
        r#"{"step": 7, "file": "ckpt_00000007.safetensors"}"#,
    )
    .unwrap();
    let err = checkpoint::resolve(work.path()).unwrap_err().to_string();
    assert!(
        err.contains("ckpt_00000007.safetensors") && err.contains("step 7"),
        "{err}"
    );

    // A file without ema tensors says so.
    let only_model: Vec<(String, Tensor)> = tensors(1.0)
        .into_iter()
        .filter(|(n, _)| !n.starts_with("ema."))
        .collect();
    let f = checkpoint::save(&work.path().join("c2"), &meta(1), &only_model).unwrap();
    let err = checkpoint::load_weights(&f, Weights::Ema)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ema.") && err.contains("ckpt_00000001"),
        "{err}"
    );
}

#[test]
fn copy_into_refuses_wrong_shapes_and_missing_names() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _w = vs.root().sub("begin_conv").zeros("weight", &[2, 3]);
    let _b = vs.root().sub("begin_conv").zeros("bias", &[2]);
    let t = |name: &str, shape: &[i64]| {
        (
            name.to_string(),
            Tensor::ones(shape, (Kind::Float, tch::Device::Cpu)),
        )
    };
    let value = |name: &str| vs.variables()[name].sum(Kind::Float).double_value(&[]);
    checkpoint::copy_into(
        &vs,
        &[t("begin_conv.weight", &[2, 3]), t("begin_conv.bias", &[2])],
        "ckpt",
    )
    .unwrap();
    assert_eq!(value("begin_conv.weight"), 6.0);

    // Every problem is named, and nothing is copied when any is found (no half-loaded model).
    let _z = tch::no_grad(|| vs.variables()["begin_conv.weight"].shallow_clone().zero_());
    let err = checkpoint::copy_into(
        &vs,
        &[t("begin_conv.weight", &[2, 3]), t("begin_conv.bias", &[3])],
        "ckpt",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("ckpt: ") && err.contains("`begin_conv.bias` has shape [3]"),
        "{err}"
    );
    assert_eq!(value("begin_conv.weight"), 0.0, "copied before refusing");

    let err = checkpoint::copy_into(&vs, &[t("begin_conv.weight", &[2, 3])], "ckpt")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no tensor for the model's `begin_conv.bias`"),
        "{err}"
    );

    let extra = [
        t("begin_conv.weight", &[2, 3]),
        t("begin_conv.bias", &[2]),
        t("end_conv.weight", &[1]),
    ];
    let err = checkpoint::copy_into(&vs, &extra, "ckpt")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not parameters of this model: `end_conv.weight`"),
        "{err}"
    );
}
