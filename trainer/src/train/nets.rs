//! The networks of a run: the score network being trained and, with `model.ema`, its EMA twin
//! (Technique 5), which the test loss and the snapshot samples then use. Both run the way the
//! run's [`Speed`] asks (autocast, channels-last weights and activations).

use schemas::config::Config;
use schemas::rng::splitmix64;
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::{ModelFactory, Result};
use crate::checkpoint::{EMA_PREFIX, MODEL_PREFIX};
use crate::ema::Ema;
use crate::models::ScoreModel;
use crate::speed::Speed;

pub(super) struct Nets {
    pub vs: VarStore,
    pub model: Box<dyn ScoreModel>,
    pub ema: Option<EmaTwin>,
}

pub(super) struct EmaTwin {
    pub vs: VarStore,
    pub model: Box<dyn ScoreModel>,
    ema: Ema,
}

impl Nets {
    /// The initial weights are a function of the seed (a resumed run overwrites them); the
    /// speed settings change their layout, never their values.
    pub fn build(
        cfg: &Config,
        seed: u64,
        device: Device,
        speed: &Speed,
        factory: ModelFactory,
    ) -> Result<Self> {
        speed.apply_backend(device)?;
        tch::manual_seed((splitmix64(seed) >> 1) as i64);
        let vs = VarStore::new(device);
        let model = speed.wrap(factory(&vs.root(), cfg)?, device)?;
        speed.prepare_weights(&vs)?;
        let ema = if cfg.model.ema {
            let ema_vs = VarStore::new(device);
            let ema_model = speed.wrap(factory(&ema_vs.root(), cfg)?, device)?;
            speed.prepare_weights(&ema_vs)?;
            let ema = Ema::new(&vs, &ema_vs, cfg.model.ema_rate)?;
            Some(EmaTwin {
                vs: ema_vs,
                model: ema_model,
                ema,
            })
        } else {
            None
        };
        Ok(Self { vs, model, ema })
    }

    /// θ' ← m θ' + (1 − m) θ after an optimiser step (Technique 5), when the run keeps an EMA.
    pub fn update_ema(&mut self) {
        if let Some(twin) = &mut self.ema {
            twin.ema.update();
        }
    }

    /// What the test loss and the snapshot samples run: the EMA twin when there is one (the
    /// authors' `ema_helper.ema_copy(score)`), the trained network otherwise.
    pub fn eval_model(&self) -> &dyn ScoreModel {
        match &self.ema {
            Some(twin) => twin.model.as_ref(),
            None => self.model.as_ref(),
        }
    }

    /// The weights for a checkpoint, sorted by name: `model.*`, then `ema.*` if kept.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut stores = vec![(MODEL_PREFIX, &self.vs)];
        if let Some(twin) = &self.ema {
            stores.push((EMA_PREFIX, &twin.vs));
        }
        let mut tensors = vec![];
        for (prefix, store) in stores {
            let mut vars: Vec<_> = store.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            tensors.extend(vars.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)));
        }
        tensors
    }
}
