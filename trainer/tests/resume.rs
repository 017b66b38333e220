//! Acceptance (issue 5): on CPU, 20 steps straight and 10 + `--resume` + 10 give bitwise-identical
//! losses, because the checkpoint holds model, EMA, Adam moments, step and data cursor, and every
//! random draw is a function of (seed, position).

mod train_support;

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use trainer::checkpoint::{self, Weights};
use trainer::train::{train, TrainOptions};

/// Training seeds and draws from torch's process-global generator (one run per process in the
/// binary), so the tests of this file, which share a process, must not train at the same time.
static TORCH_RNG: Mutex<()> = Mutex::new(());

#[test]
fn twenty_steps_equal_ten_plus_resume_plus_ten() {
    straight_equals_resumed(|_| {});
}

/// The dequantisation noise of the authors' data transforms is drawn from the per-step seeded
/// generator too, so resuming stays exact with it.
#[test]
fn resume_stays_exact_with_the_data_transforms() {
    straight_equals_resumed(|c| {
        c.data.uniform_dequantization = true;
        c.data.gaussian_dequantization = true;
        c.data.rescaled = true;
    });
}

/// Without an EMA copy the checkpoint holds the model and Adam only; resuming is still exact.
#[test]
fn resume_stays_exact_without_ema() {
    straight_equals_resumed(|c| c.model.ema = false);
}

/// 20 steps straight and 10 + `--resume` + 10 of the tiny config with `edit` applied.
fn straight_equals_resumed(edit: fn(&mut schemas::config::Config)) {
    let config = |n_iters| {
        let mut c = train_support::tiny_config(4, n_iters, 1000);
        edit(&mut c);
        c
    };
    let _serial = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 37 rows over 3 shards with batch 4: epochs end mid-way (a partial batch of 1) so the
    // cursor crosses an epoch boundary inside the 20 steps.
    train_support::write_dataset(&data, 8, 37, 3, 6);
    let no_stop = AtomicBool::new(false);
    let opts = |work: &str| {
        let mut o = TrainOptions::new(&data, &tmp.path().join(work));
        o.shuffle_buffer = 16;
        o.prefetch = 2;
        o.seed = 42;
        o.loss_plot = false;
        o
    };

    let straight = train(&config(20), &opts("a"), &no_stop).unwrap();
    assert_eq!(straight.step, 20);

    let first = train(&config(10), &opts("b"), &no_stop).unwrap();
    assert_eq!(first.step, 10);
    let mut resumed_opts = opts("b");
    resumed_opts.resume = true;
    let second = train(&config(20), &resumed_opts, &no_stop).unwrap();
    assert_eq!(second.step, 20);

    let bits = |v: &[(u64, f32)]| v.iter().map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>();
    let joined: Vec<(u64, f32)> = first.losses.iter().chain(&second.losses).copied().collect();
    assert_eq!(
        bits(&joined),
        bits(&straight.losses),
        "losses differ after resume"
    );

    // The final EMA (if kept) and model weights are identical too.
    let kept = if config(20).model.ema {
        vec![Weights::Ema, Weights::Model]
    } else {
        vec![Weights::Model]
    };
    for which in kept {
        let (_, mut a) = checkpoint::load_weights(&tmp.path().join("a"), which).unwrap();
        let (mb, mut b) = checkpoint::load_weights(&tmp.path().join("b"), which).unwrap();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(mb.step, 20);
        assert_eq!(a.len(), b.len());
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta.equal(tb), "{which:?} tensor {na} differs");
        }
    }
    // Losses were not all the same number (the test would be vacuous).
    let distinct: std::collections::BTreeSet<u32> =
        straight.losses.iter().map(|l| l.1.to_bits()).collect();
    assert!(distinct.len() > 10);
}

#[test]
fn resume_without_checkpoint_and_fresh_run_over_checkpoints_are_refused() {
    let _serial = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    train_support::write_dataset(&data, 8, 8, 1, 0);
    let no_stop = AtomicBool::new(false);
    let mut o = TrainOptions::new(&data, &tmp.path().join("w"));
    o.loss_plot = false;
    o.resume = true;
    let err = train(&train_support::tiny_config(4, 2, 1000), &o, &no_stop)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--resume") && err.contains("checkpoint"),
        "{err}"
    );

    o.resume = false;
    train(&train_support::tiny_config(4, 2, 1000), &o, &no_stop).unwrap();
    let err = train(&train_support::tiny_config(4, 2, 1000), &o, &no_stop)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");

    // Resuming with a different network is refused, naming the section.
    o.resume = true;
    let mut other = train_support::tiny_config(4, 4, 1000);
    other.model.ngf = 8;
    let err = train(&other, &o, &no_stop).unwrap_err().to_string();
    assert!(err.contains("`model`"), "{err}");
}
