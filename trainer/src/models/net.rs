//! The RefineNet-style score network shared by NCSN and NCSNv2: begin conv, ResBlock stages
//! (encoder), one RefineBlock per stage walking back up (decoder), norm → act → end conv.
//! Which stages exist and how wide they are is the [`Plan`] (Tables 2–3); the forward pass is
//! the authors' `forward` of `NCSNv2`, `NCSNv2Deeper`, `NCSNv2Deepest`, `NCSN`, `NCSNdeeper`.

use tch::nn::Path;
use tch::Tensor;

use super::layers::{
    conv3x3, refine_block, residual_block, Act, Conv2d, RefineBlock, RefineSpec, ResSpec,
    ResidualBlock,
};
use super::normalization::{Norm, NormKind};
use super::{Arch, ScoreModel};

/// One encoder level and the decoder block that consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `res1`, `res2`, …, `res31` (the authors' attribute names).
    pub res_name: &'static str,
    pub blocks: Vec<ResSpec>,
    /// `refine1` belongs to the deepest stage; each refine takes [this stage, deeper refine].
    pub refine_name: &'static str,
    pub refine: RefineSpec,
}

/// A concrete architecture: everything needed to build it and to describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub arch: Arch,
    pub ngf: i64,
    pub channels: i64,
    pub image_size: i64,
    /// Shallowest first (`res1`).
    pub stages: Vec<Stage>,
    pub act: Act,
    /// Feed `2x − 1` (the authors do unless `logit_transform` or `rescaled`).
    pub map_input: bool,
}

impl Plan {
    /// NCSN's CondInstanceNorm++ vs NCSNv2's InstanceNorm++ with output / σ (Technique 3).
    pub fn conditional(&self) -> bool {
        self.arch.conditional()
    }

    /// Factor by which the encoder shrinks the image (2 per mean-pooled `down`).
    pub fn downsampling(&self) -> i64 {
        let halvings = self
            .stages
            .iter()
            .flat_map(|s| &s.blocks)
            .filter(|b| b.halves())
            .count();
        1 << halvings
    }

    /// Spatial size after each stage, shallowest first.
    pub fn stage_sizes(&self) -> Vec<i64> {
        let mut size = self.image_size;
        self.stages
            .iter()
            .map(|s| {
                size /= 1 << s.blocks.iter().filter(|b| b.halves()).count();
                size
            })
            .collect()
    }
}

/// The built network. Holds shallow clones of its VarStore's tensors.
#[derive(Debug)]
pub struct RefineNet {
    begin_conv: Conv2d,
    res: Vec<Vec<ResidualBlock>>,
    /// In decoder order: `refine1` (deepest) first.
    refines: Vec<RefineBlock>,
    res_names: Vec<&'static str>,
    refine_names: Vec<&'static str>,
    normalizer: Norm,
    end_conv: Conv2d,
    act: Act,
    sigmas: Tensor,
    map_input: bool,
    divide_by_sigma: bool,
}

pub fn refine_net(p: &Path, plan: &Plan, sigmas: Tensor) -> RefineNet {
    let norm = NormKind {
        conditional_classes: plan.conditional().then(|| sigmas.size()[0]),
    };
    let refine_norm = plan.conditional().then_some(norm);
    let act = plan.act;
    let ngf = plan.ngf;
    let begin_conv = conv3x3(&(p / "begin_conv"), plan.channels, ngf, true);
    let normalizer = norm.build(&(p / "normalizer"), ngf);
    let end_conv = conv3x3(&(p / "end_conv"), ngf, plan.channels, true);
    let res = plan
        .stages
        .iter()
        .map(|s| {
            s.blocks
                .iter()
                .enumerate()
                .map(|(i, &b)| residual_block(&(p / s.res_name / i), b, act, norm))
                .collect()
        })
        .collect();
    let refines = plan
        .stages
        .iter()
        .rev()
        .map(|s| refine_block(&(p / s.refine_name), &s.refine, act, refine_norm))
        .collect();
    // A buffer in the authors' model: saved with the weights, never trained.
    let sigmas = p.add("sigmas", sigmas, false);
    RefineNet {
        begin_conv,
        res,
        refines,
        res_names: plan.stages.iter().map(|s| s.res_name).collect(),
        refine_names: plan.stages.iter().rev().map(|s| s.refine_name).collect(),
        normalizer,
        end_conv,
        act,
        sigmas,
        map_input: plan.map_input,
        divide_by_sigma: !plan.conditional(),
    }
}

impl RefineNet {
    /// The network output before the division by σ_y (the authors' `end_conv` output).
    pub fn unscaled(&self, x: &Tensor, y: &Tensor) -> Tensor {
        self.run(x, y, &mut |_, _| {})
    }

    /// The output of every top-level module, named like the authors' modules (`begin_conv`,
    /// `res2.0`, `refine1`, `normalizer`, `end_conv`): to localise a parity mismatch.
    pub fn trace(&self, x: &Tensor, y: &Tensor) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let _ = self.run(x, y, &mut |name, t| out.push((name, t.shallow_clone())));
        out
    }

    fn run(&self, x: &Tensor, y: &Tensor, seen: &mut dyn FnMut(String, &Tensor)) -> Tensor {
        let h = if self.map_input {
            x * 2.0 - 1.0
        } else {
            x.shallow_clone()
        };
        let mut out = self.begin_conv.forward(&h);
        seen("begin_conv".into(), &out);
        let mut layers = Vec::with_capacity(self.res.len());
        for (stage, name) in self.res.iter().zip(&self.res_names) {
            for (i, block) in stage.iter().enumerate() {
                out = block.forward(&out, y);
                seen(format!("{name}.{i}"), &out);
            }
            layers.push(out.shallow_clone());
        }
        let mut refined: Option<Tensor> = None;
        let decoder = self.refines.iter().zip(&self.refine_names);
        for ((refine, name), layer) in decoder.zip(layers.iter().rev()) {
            let size = layer.size();
            let shape = [size[2], size[3]];
            let xs = match refined.take() {
                None => vec![layer.shallow_clone()],
                Some(r) => vec![layer.shallow_clone(), r],
            };
            let r = refine.forward(&xs, y, shape);
            seen(name.to_string(), &r);
            refined = Some(r);
        }
        let out = self
            .normalizer
            .forward(&refined.expect("a plan has at least one stage"), y);
        seen("normalizer".into(), &out);
        let out = self.end_conv.forward(&self.act.apply(&out));
        seen("end_conv".into(), &out);
        out
    }
}

impl ScoreModel for RefineNet {
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let out = self.unscaled(x, y);
        if self.divide_by_sigma {
            // Technique 3: s_θ(x, σ) = s_θ(x) / σ.
            let b = x.size()[0];
            out / self.sigmas.index_select(0, y).view([b, 1, 1, 1])
        } else {
            out
        }
    }
}
