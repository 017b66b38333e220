//! [`Config::validate`]: the one place that accepts or refuses a config (README "Config keys").
//!
//! Three kinds of keys: those ncsn honours, checked for a sane value; those where ncsn
//! implements exactly one value, the one in every config of the paper (`optim.optimizer:
//! Adam`), any other refused naming the key; and those only the authors' other commands read
//! ([`Config::unused_keys`]), accepted so their files load. Checks that need the model table
//! (`model.arch`, `model.nonlinearity`, an image size the encoder cannot halve) live next to the
//! model in `trainer::models::plan`, which calls this first.

use std::fmt::Debug;

use super::Config;

/// A refused config value: the key and why, one line (`optim.beta1: 1.5 is not in [0, 1)`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct KeyError {
    pub key: String,
    pub msg: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            msg: msg.into(),
        }
    }
}

type Check = Result<(), KeyError>;

fn ensure(ok: bool, key: &str, msg: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(KeyError::new(key, msg()))
    }
}

fn positive(key: &str, v: f64) -> Check {
    ensure(v > 0.0, key, || format!("{v} is not > 0"))
}

fn at_least_one(key: &str, v: u64) -> Check {
    ensure(v >= 1, key, || format!("{v} is not ≥ 1"))
}

fn unit_interval(key: &str, v: f64) -> Check {
    ensure((0.0..1.0).contains(&v), key, || {
        format!("{v} is not in [0, 1)")
    })
}

/// ncsn implements only `ok` (the value of every config of the paper).
fn only<T: PartialEq + Debug>(key: &str, v: &T, ok: &T, why: &str) -> Check {
    ensure(v == ok, key, || {
        format!("{v:?} is not supported by ncsn ({why}); use {ok:?} or remove the key")
    })
}

/// The largest `model.ngf` accepted: 32× the paper's 128, far beyond any GPU's memory at the
/// paper's depths, and small enough that channel counts (up to 8·ngf) cannot overflow.
pub const MAX_NGF: i64 = 4096;

impl Config {
    /// Accepts the config or names the first key it refuses (README "Config keys").
    pub fn validate(&self) -> Result<(), KeyError> {
        self.check_finite()?;
        let (t, s, d, m, o) = (
            &self.training,
            &self.sampling,
            &self.data,
            &self.model,
            &self.optim,
        );

        at_least_one("training.batch_size", t.batch_size as u64)?;
        at_least_one("training.n_epochs", t.n_epochs)?;
        at_least_one("training.n_iters", t.n_iters)?;
        at_least_one("training.snapshot_freq", t.snapshot_freq)?;
        only(
            "training.log_all_sigmas",
            &t.log_all_sigmas,
            &false,
            "per-σ test losses are not logged",
        )?;

        at_least_one("sampling.batch_size", s.batch_size as u64)?;
        positive("sampling.step_lr", s.step_lr)?;
        at_least_one("sampling.n_steps_each", s.n_steps_each as u64)?;
        only(
            "sampling.data_init",
            &s.data_init,
            &false,
            "chains start from U[0, 1]",
        )?;
        only(
            "sampling.final_only",
            &s.final_only,
            &true,
            "the sampler keeps only the final images",
        )?;
        only(
            "sampling.fid",
            &s.fid,
            &false,
            "score a checkpoint with `ncsn fid --checkpoint FILE --n N`",
        )?;
        only(
            "sampling.inpainting",
            &s.inpainting,
            &false,
            "no inpainting sampler",
        )?;
        only(
            "sampling.interpolation",
            &s.interpolation,
            &false,
            "interpolate with `ncsn sample --interpolate N`",
        )?;
        if let Some(test) = &self.test {
            at_least_one("test.batch_size", test.batch_size as u64)?;
        }
        // `ncsn fid --ckpts`' defaults. begin_ckpt > end_ckpt (the authors' ffhq.yml) is
        // refused only by a sweep that takes them, so the file still trains.
        if let Some(f) = &self.fast_fid {
            at_least_one("fast_fid.batch_size", f.batch_size as u64)?;
            ensure(f.num_samples >= 2, "fast_fid.num_samples", || {
                format!("{} is not ≥ 2 (μ and Σ need two samples)", f.num_samples)
            })?;
            positive("fast_fid.step_lr", f.step_lr)?;
            at_least_one("fast_fid.n_steps_each", f.n_steps_each as u64)?;
            only(
                "fast_fid.verbose",
                &f.verbose,
                &false,
                "the sweep prints a line per checkpoint and progress bars follow --quiet",
            )?;
            only(
                "fast_fid.ensemble",
                &f.ensemble,
                &false,
                "no averaging of neighbouring checkpoints' scores; sweep with EMA weights",
            )?;
        }

        at_least_one("data.image_size", d.image_size as u64)?;
        only(
            "data.channels",
            &d.channels,
            &3,
            "`ncsn ingest` writes RGB shards",
        )?;
        // The authors' data_transform applies `rescaled` and skips the logit, but their
        // inverse applies the logit's inverse: the pair would not invert each other.
        ensure(
            !(d.rescaled && d.logit_transform),
            "data.logit_transform",
            || {
                "true cannot be combined with data.rescaled: true (the authors' transform would \
             rescale and their inverse would undo a logit)"
                    .into()
            },
        )?;

        positive("model.sigma_end", m.sigma_end)?;
        ensure(m.sigma_begin > m.sigma_end, "model.sigma_begin", || {
            format!(
                "{} is not > model.sigma_end ({}): σ₁ is the largest noise level",
                m.sigma_begin, m.sigma_end
            )
        })?;
        at_least_one("model.num_classes", m.num_classes as u64)?;
        unit_interval("model.ema_rate", m.ema_rate)?;
        only(
            "model.spec_norm",
            &m.spec_norm,
            &false,
            "no spectral normalisation",
        )?;
        only(
            "model.sigma_dist",
            &m.sigma_dist.as_str(),
            &"geometric",
            "the paper's noise levels are geometric",
        )?;
        only(
            "model.normalization",
            &m.normalization.as_str(),
            &"InstanceNorm++",
            "every config of the paper uses it",
        )?;
        ensure((1..=MAX_NGF).contains(&m.ngf), "model.ngf", || {
            format!("{} is not in 1..={MAX_NGF}", m.ngf)
        })?;

        only(
            "optim.optimizer",
            &o.optimizer.as_str(),
            &"Adam",
            "App. B.1 trains with Adam",
        )?;
        only(
            "optim.weight_decay",
            &o.weight_decay,
            &0.0,
            "the paper uses none",
        )?;
        only("optim.amsgrad", &o.amsgrad, &false, "plain Adam only")?;
        positive("optim.lr", o.lr)?;
        unit_interval("optim.beta1", o.beta1)?;
        positive("optim.eps", o.eps)?;
        Ok(())
    }

    /// NaN and ±inf are refused in every number (YAML spells them `.nan`, `.inf`).
    fn check_finite(&self) -> Check {
        let mut floats = vec![
            ("training.anneal_power", self.training.anneal_power),
            ("sampling.step_lr", self.sampling.step_lr),
            ("model.sigma_begin", self.model.sigma_begin),
            ("model.sigma_end", self.model.sigma_end),
            ("model.ema_rate", self.model.ema_rate),
            ("optim.weight_decay", self.optim.weight_decay),
            ("optim.lr", self.optim.lr),
            ("optim.beta1", self.optim.beta1),
            ("optim.eps", self.optim.eps),
        ];
        if let Some(f) = &self.fast_fid {
            floats.push(("fast_fid.step_lr", f.step_lr));
        }
        for (key, v) in floats {
            ensure(v.is_finite(), key, || format!("{v} is not a finite number"))?;
        }
        Ok(())
    }
}
