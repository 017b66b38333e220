//! Issue 16, part 1, on the CPU (CI): bf16 autocast and channels-last against float32 and the
//! default layout, the deferred finiteness check, and exact resume with the speed settings.
//! The same code paths run on a GPU; what only a GPU has (TF32, cuDNN, the side-stream copy)
//! is checked by scripts/gpu_check.sh.

mod train_support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use schemas::config::Config;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use trainer::loss::dsm_loss;
use trainer::models::{self, ModelError, ScoreModel};
use trainer::speed::{Precision, Speed};
use trainer::train::{train, train_with, Summary, TrainError, TrainOptions};

/// Training seeds torch's process-global generator, and autocast and the switches are libtorch
/// state: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Measured on this project's CI machine (x86-64 with AMX-BF16, 2 threads), the NCSNv2 32 px
/// model of configs/cifar10.yml (ngf 128, L = 232), random weights, batch 4, one fixed x, y, z:
/// the bf16 loss is 5.5e-4 relative from float32 and the score 8.7e-3 (relative ℓ2). The
/// bounds leave ~20× and ~6× of margin (other CPUs round bf16 the same way but sum in other
/// orders); bf16 keeps 8 bits of mantissa (2^-8 ≈ 4e-3 per rounding), so much more means
/// something runs in bf16 that should not (the loss, the σ division).
const BF16_LOSS_REL: f64 = 1e-2;
const BF16_SCORE_REL: f64 = 5e-2;
/// Channels-last changes only the order of the convolutions' sums (measured: loss 0, score
/// 3.0e-6).
const CHANNELS_LAST_REL: f64 = 1e-5;

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).norm().double_value(&[]);
    d / b.norm().double_value(&[]).max(f64::MIN_POSITIVE)
}

fn cifar10_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cifar10.yml");
    Config::read(&path).unwrap()
}

/// The score and the loss of the NCSNv2 32 px network for one fixed batch, with the network
/// run as `speed` asks, from the weights of `seed`.
fn score_and_loss(speed: &Speed, seed: i64) -> (Tensor, f64) {
    let cfg = cifar10_config();
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = speed
        .wrap(models::build(&vs.root(), &cfg).unwrap(), Device::Cpu)
        .unwrap();
    speed.prepare_weights(&vs).unwrap();
    let sigmas_f64 = cfg.sigmas();
    let sigmas = Tensor::from_slice(&sigmas_f64.iter().map(|&s| s as f32).collect::<Vec<_>>());
    let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let l = sigmas_f64.len() as i64;
    let y = Tensor::from_slice(&[0i64, l / 4, l / 2, l - 1]);
    let z = x.randn_like();
    let perturbed = &x + &z * sigmas.index_select(0, &y).view([4, 1, 1, 1]);
    let (loss, _) = tch::no_grad(|| dsm_loss(model.as_ref(), &x, &y, &z, &sigmas, 2.0));
    let score = tch::no_grad(|| model.forward(&perturbed, &y));
    assert_eq!(
        score.kind(),
        Kind::Float,
        "float32 at the network's boundary"
    );
    assert!(
        score.is_contiguous(),
        "the default layout at the network's boundary"
    );
    (score, loss.double_value(&[]))
}

#[test]
fn bf16_autocast_is_within_bf16_rounding_of_float32() {
    let _serial = serial();
    tch::set_num_threads(2);
    let (s32, l32) = score_and_loss(&Speed::default(), 7);
    let bf16 = Speed {
        precision: Precision::Bf16,
        ..Speed::default()
    };
    let (s16, l16) = score_and_loss(&bf16, 7);
    let (loss_rel, score_rel) = ((l16 - l32).abs() / l32.abs(), rel(&s16, &s32));
    eprintln!("bf16 vs fp32: loss {l16} vs {l32} (rel {loss_rel:.2e}), score rel {score_rel:.2e}");
    assert!(loss_rel < BF16_LOSS_REL, "loss rel {loss_rel:.2e}");
    assert!(score_rel < BF16_SCORE_REL, "score rel {score_rel:.2e}");
    // Not vacuous: the forward did run in bf16.
    assert!(score_rel > 1e-6, "bf16 changed nothing: was autocast on?");
}

#[test]
fn channels_last_matches_the_default_layout() {
    let _serial = serial();
    tch::set_num_threads(2);
    let (s0, l0) = score_and_loss(&Speed::default(), 11);
    let cl = Speed {
        channels_last: true,
        ..Speed::default()
    };
    let (s1, l1) = score_and_loss(&cl, 11);
    let (loss_rel, score_rel) = ((l1 - l0).abs() / l0.abs(), rel(&s1, &s0));
    eprintln!("channels-last vs contiguous: loss rel {loss_rel:.2e}, score rel {score_rel:.2e}");
    assert!(loss_rel < CHANNELS_LAST_REL, "loss rel {loss_rel:.2e}");
    assert!(score_rel < CHANNELS_LAST_REL, "score rel {score_rel:.2e}");
}

/// A run of the tiny config on `data` into `work` with `speed`.
fn run(data: &Path, work: &Path, n_iters: u64, speed: Speed, resume: bool) -> Summary {
    let mut o = TrainOptions::new(data, work);
    o.shuffle_buffer = 16;
    o.prefetch = 2;
    o.seed = 42;
    o.speed = speed;
    o.resume = resume;
    let cfg = train_support::tiny_config(4, n_iters, 1000);
    train(&cfg, &o, &AtomicBool::new(false)).unwrap()
}

#[test]
fn channels_last_training_steps_follow_the_default_layout() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    train_support::write_dataset(&data, 8, 37, 3, 6);
    let plain = run(&data, &tmp.path().join("a"), 8, Speed::default(), false);
    let cl = Speed {
        channels_last: true,
        ..Speed::default()
    };
    let fast = run(&data, &tmp.path().join("b"), 8, cl, false);
    assert_eq!(plain.losses.len(), 8);
    let mut worst = 0f32;
    for ((s0, l0), (s1, l1)) in plain.losses.iter().zip(&fast.losses) {
        assert_eq!(s0, s1);
        let r = ((l1 - l0) / l0).abs();
        worst = worst.max(r);
        assert!(r < 1e-5, "step {s0}: {l1} vs {l0} (rel {r:.2e})");
    }
    eprintln!("channels-last, 8 training steps: losses within {worst:.2e} relative");
}

/// Speed settings leave resuming exact: 20 steps straight equal 10 + `--resume` + 10 bit for
/// bit with bf16, channels-last and the host reading every 3 steps (so reads and checkpoints
/// fall mid-window).
#[test]
fn resume_is_exact_with_bf16_channels_last_and_deferred_reads() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    train_support::write_dataset(&data, 8, 37, 3, 6);
    let speed = Speed {
        precision: Precision::Bf16,
        channels_last: true,
        sync_every: Some(3),
        ..Speed::default()
    };
    let straight = run(&data, &tmp.path().join("a"), 20, speed, false);
    let first = run(&data, &tmp.path().join("b"), 10, speed, false);
    let second = run(&data, &tmp.path().join("b"), 20, speed, true);
    let bits = |v: &[(u64, f32)]| v.iter().map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>();
    let joined: Vec<_> = first.losses.iter().chain(&second.losses).copied().collect();
    assert_eq!(bits(&joined), bits(&straight.losses));
    assert_eq!(straight.losses.len(), 20);
    // The metrics lines are the same whenever the host reads them.
    let metrics = |w: &str| {
        std::fs::read_to_string(tmp.path().join(w).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let loss = v.get("loss")?.as_f64()?;
                Some((v["step"].as_u64()?, loss, v["sigma_mean"].as_f64()?))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics("a").len(), 20);
    assert_eq!(metrics("a"), metrics("b"));
}

/// Calls of the poisoned network's forward (training steps only: no snapshot runs in the test).
static FORWARDS: AtomicUsize = AtomicUsize::new(0);
/// The forward call (1-based) whose sample `POISONED_SAMPLE` turns NaN.
const POISONED_CALL: usize = 5;
const POISONED_SAMPLE: i64 = 2;

/// The tiny network with one sample of one step's score made NaN (then everything after it
/// diverges through Adam).
struct Poisoned(Box<dyn ScoreModel>);

impl ScoreModel for Poisoned {
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let out = self.0.forward(x, y);
        if FORWARDS.fetch_add(1, Ordering::SeqCst) + 1 != POISONED_CALL {
            return out;
        }
        let mut mask = vec![1f32; x.size()[0] as usize];
        mask[POISONED_SAMPLE as usize] = f32::NAN;
        out * Tensor::from_slice(&mask).view([-1, 1, 1, 1])
    }
}

fn poisoned(p: &tch::nn::Path, cfg: &Config) -> Result<Box<dyn ScoreModel>, ModelError> {
    Ok(Box::new(Poisoned(models::build(p, cfg)?)))
}

/// The error of a run whose 5th step's loss is NaN, the host reading every `sync_every` steps.
fn nan_error(data: &Path, work: &Path, sync_every: u64) -> (String, TrainError) {
    FORWARDS.store(0, Ordering::SeqCst);
    let mut o = TrainOptions::new(data, work);
    o.shuffle_buffer = 16;
    o.seed = 42;
    o.speed.sync_every = Some(sync_every);
    let cfg = train_support::tiny_config(4, 30, 1000);
    let err = train_with(&cfg, &o, &AtomicBool::new(false), poisoned).unwrap_err();
    (err.to_string(), err)
}

/// Reading the loss every 7 steps names the same step, sample and σ as reading it every step,
/// and saves nothing of the diverged run.
#[test]
fn a_deferred_nan_check_names_the_first_bad_step_and_sigma() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    train_support::write_dataset(&data, 8, 37, 3, 6);
    let (every, _) = nan_error(&data, &tmp.path().join("a"), 1);
    let (deferred, err) = nan_error(&data, &tmp.path().join("b"), 7);
    assert_eq!(deferred, every);
    assert_eq!(
        FORWARDS.load(Ordering::SeqCst),
        7,
        "the deferred run reads at step 7"
    );
    let TrainError::NonFinite {
        step,
        sample,
        sigma_index,
        sigma,
        ..
    } = err
    else {
        panic!("{deferred}")
    };
    assert_eq!((step, sample), (POISONED_CALL as u64, POISONED_SAMPLE));
    let sigmas = train_support::tiny_config(4, 30, 1000).sigmas();
    assert_eq!(sigma, sigmas[sigma_index as usize]);
    assert!(
        deferred.starts_with("step 5: the loss is NaN (first bad sample 2: σ index"),
        "{deferred}"
    );
    for w in ["a", "b"] {
        assert!(
            !tmp.path().join(w).join("checkpoints/latest.json").exists(),
            "nothing is saved from a diverged run"
        );
    }
}
