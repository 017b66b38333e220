//! Config keys that change what training does (README "Config keys"), each shown by a run:
//! the authors' data transforms on training batches and the held-out batch, `training.n_epochs`,
//! `model.ema: false`, `test.batch_size`; and `WORKDIR/config.yml` loading in the authors' code.

mod train_support;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use schemas::config::Config;
use tch::Tensor;
use trainer::checkpoint::{self, Weights};
use trainer::models::{ModelError, ScoreModel};
use trainer::train::{train, train_with, ModelFactory, TrainOptions};

/// Training seeds torch's process-global generator: runs in this binary must not overlap.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// s(x) = −x whatever its weight: the losses depend only on the data and the draws, so two runs
/// whose losses differ were fed different data.
struct Fixed {
    w: Tensor,
}

impl ScoreModel for Fixed {
    fn forward(&self, x: &Tensor, _y: &Tensor) -> Tensor {
        // `w·0` keeps a gradient path (zero), so Adam and the EMA have a parameter to hold.
        -x + &self.w * 0.0
    }
}

fn fixed(p: &tch::nn::Path, _cfg: &Config) -> Result<Box<dyn ScoreModel>, ModelError> {
    Ok(Box::new(Fixed {
        w: p.zeros("w", &[1]),
    }))
}

struct Run {
    train: Vec<f32>,
    test: Vec<f64>,
    step: u64,
}

/// `cfg` trained on `data` into `dir/name`; the train losses and the logged test losses.
fn run(dir: &Path, name: &str, cfg: &Config, factory: ModelFactory) -> Run {
    let _serial = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let work = dir.join(name);
    let opts = TrainOptions {
        shuffle_buffer: 16,
        prefetch: 2,
        ..TrainOptions::new(&dir.join("data"), &work)
    };
    let s = train_with(cfg, &opts, &AtomicBool::new(false), factory).unwrap();
    let test = trainer::metrics::read(&work.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter_map(|r| r.test_loss)
        .collect();
    Run {
        train: s.losses.iter().map(|l| l.1).collect(),
        test,
        step: s.step,
    }
}

/// 12 train rows, 6 test rows, 8×8.
fn dataset(dir: &Path) {
    train_support::write_dataset(&dir.join("data"), 8, 12, 2, 6);
}

/// A change to the tiny config.
type Edit = fn(&mut Config);

#[test]
fn the_authors_data_transforms_reach_training_and_the_test_loss() {
    let tmp = tempfile::tempdir().unwrap();
    dataset(tmp.path());
    let base_cfg = train_support::tiny_config(4, 2, 1000);
    let base = run(tmp.path(), "base", &base_cfg, fixed);
    assert_eq!((base.train.len(), base.test.len()), (2, 1));
    let edits: [(&str, Edit); 4] = [
        ("uniform_dequantization", |c| {
            c.data.uniform_dequantization = true
        }),
        ("gaussian_dequantization", |c| {
            c.data.gaussian_dequantization = true
        }),
        ("rescaled", |c| c.data.rescaled = true),
        ("logit_transform", |c| c.data.logit_transform = true),
    ];
    for (key, edit) in edits {
        let mut cfg = base_cfg.clone();
        edit(&mut cfg);
        let r = run(tmp.path(), key, &cfg, fixed);
        assert_ne!(r.train[0], base.train[0], "data.{key}: training batches");
        assert_ne!(r.test[0], base.test[0], "data.{key}: the held-out batch");
    }
    // With the same key the run is reproducible: the dequantisation draws are seeded.
    let mut cfg = base_cfg.clone();
    cfg.data.gaussian_dequantization = true;
    let (a, b) = (
        run(tmp.path(), "g1", &cfg, fixed),
        run(tmp.path(), "g2", &cfg, fixed),
    );
    assert_eq!((a.train, a.test), (b.train, b.test));
}

#[test]
fn n_epochs_stops_training_after_that_many_passes() {
    let tmp = tempfile::tempdir().unwrap();
    dataset(tmp.path());
    // 12 rows in batches of 5: 3 steps per epoch (5, 5, 2).
    let mut cfg = train_support::tiny_config(5, 100, 1000);
    cfg.training.n_epochs = 2;
    let r = run(tmp.path(), "w", &cfg, fixed);
    assert_eq!(r.step, 6);
    let latest = checkpoint::resolve(&tmp.path().join("w")).unwrap();
    assert!(latest.ends_with("ckpt_00000006.safetensors"), "{latest:?}");
}

#[test]
fn test_batch_size_sets_the_held_out_rows() {
    let tmp = tempfile::tempdir().unwrap();
    dataset(tmp.path());
    let mut cfg = train_support::tiny_config(4, 1, 1000);
    let all = run(tmp.path(), "four", &cfg, fixed);
    cfg.test = Some(schemas::config::Test {
        begin_ckpt: None,
        end_ckpt: None,
        batch_size: 2,
    });
    let two = run(tmp.path(), "two", &cfg, fixed);
    assert_eq!(all.train, two.train);
    assert_ne!(all.test, two.test);
}

#[test]
fn without_ema_the_raw_network_is_evaluated_and_saved_alone() {
    let tmp = tempfile::tempdir().unwrap();
    dataset(tmp.path());
    let with = train_support::tiny_config(4, 3, 1000);
    let mut without = with.clone();
    without.model.ema = false;
    let (a, b) = (
        run(tmp.path(), "ema", &with, trainer::models::build),
        run(tmp.path(), "raw", &without, trainer::models::build),
    );
    // The EMA does not touch training; it is what the test loss runs.
    assert_eq!(a.train, b.train);
    assert_ne!(a.test, b.test);
    let raw = tmp.path().join("raw");
    let err = checkpoint::load_weights(&raw, Weights::Ema)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ema."), "{err}");
    let loaded = trainer::sample::load_model(&raw, Weights::Ema, tch::Device::Cpu).unwrap();
    assert!(!loaded.ema, "sampling falls back to the trained weights");
}

/// `WORKDIR/config.yml` runs in the authors' code: PyYAML (YAML 1.1) reads every float as a
/// float, and their `get_optimizer` builds Adam from it.
#[test]
fn written_config_loads_in_the_authors_code() {
    let tmp = tempfile::tempdir().unwrap();
    dataset(tmp.path());
    let work = tmp.path().join("w");
    {
        let _serial = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let opts = TrainOptions::new(&tmp.path().join("data"), &work);
        let cfg = train_support::tiny_config(4, 1, 1000);
        train(&cfg, &opts, &AtomicBool::new(false)).unwrap();
    }
    let text = std::fs::read_to_string(work.join("config.yml")).unwrap();
    assert!(text.contains("eps: 1.0e-8"), "{text}");
    let out = testkit::python::py(
        r#"
import argparse, sys
import torch, yaml

def dict2namespace(config):
    namespace = argparse.Namespace()
    for key, value in config.items():
        if isinstance(value, dict):
            new_value = dict2namespace(value)
        else:
            new_value = value
        setattr(namespace, key, new_value)
    return namespace

with open(sys.argv[1]) as f:
    config = dict2namespace(yaml.safe_load(f))
for section, key in [("optim", "eps"), ("optim", "lr"), ("model", "sigma_begin"),
                     ("model", "sigma_end"), ("sampling", "step_lr"), ("model", "ema_rate"),
                     ("optim", "beta1"), ("optim", "weight_decay")]:
    value = getattr(getattr(config, section), key)
    assert isinstance(value, float), (section, key, repr(value))
params = [torch.nn.Parameter(torch.zeros(2))]
torch.optim.Adam(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay,
                 betas=(config.optim.beta1, 0.999), amsgrad=config.optim.amsgrad,
                 eps=config.optim.eps)
print("ok", config.optim.eps, config.sampling.step_lr)
"#,
        &[&work.join("config.yml")],
    );
    assert_eq!(out.trim(), "ok 1e-08 1e-05");
}
