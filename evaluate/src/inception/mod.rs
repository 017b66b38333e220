//! pytorch-fid's FID Inception network (`pytorch_fid.inception.fid_inception_v3`): torchvision's
//! Inception3 with 1008 classes, no auxiliary head, and the four blocks patched to match the
//! TensorFlow graph every published FID was computed with (`FIDInceptionA`/`C`: average pools
//! that ignore padded zeros; `FIDInceptionE_1`: the same; `FIDInceptionE_2`: a max pool).
//!
//! One struct per block, built from parameters named exactly as the state_dict of that module
//! (`Mixed_6b.branch7x7dbl_3.conv.weight`, `fc.bias`), so pytorch-fid's published weights file
//! loads unchanged. Each BasicConv2d's BatchNorm (eval mode, eps 0.001) is folded into its
//! convolution when the weights are loaded: one pass over each activation instead of three.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

mod blocks;

use blocks::{
    k, kp, ks2, max_pool_3x3_s2, BasicConv2d, EPool, InceptionA, InceptionB, InceptionC,
    InceptionD, InceptionE,
};

/// Pool3 features: the 2048 channels of the final average pool, what FID compares.
pub const POOL3_DIMS: usize = 2048;
/// Classes of the TensorFlow graph's softmax (1000 ImageNet classes + 8 unused).
pub const CLASSES: usize = 1008;
/// Torchvision's BasicConv2d BatchNorm epsilon.
pub(crate) const BN_EPS: f64 = 0.001;

/// The weights of a file, handed out by state_dict name with their shapes checked.
pub(crate) struct Params {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    used: BTreeSet<String>,
}

impl Params {
    pub(crate) fn new(path: &Path, tensors: Vec<(String, Tensor)>) -> Self {
        Params {
            path: path.to_path_buf(),
            tensors: tensors.into_iter().collect(),
            used: BTreeSet::new(),
        }
    }

    /// The f32 tensor `name` of exactly `shape`, or an error naming the file and the key.
    pub(crate) fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| {
            Error::file(
                &self.path,
                format!("no tensor `{name}`: not pytorch-fid's FID Inception weights"),
            )
        })?;
        if t.size() != shape {
            return Err(Error::file(
                &self.path,
                format!(
                    "`{name}` is {:?}, the FID Inception network needs {shape:?}: not \
                     pytorch-fid's FID Inception weights",
                    t.size()
                ),
            ));
        }
        if !t.is_floating_point() {
            return Err(Error::file(
                &self.path,
                format!("`{name}` is {:?}, not floating point", t.kind()),
            ));
        }
        self.used.insert(name.to_string());
        Ok(t.to_kind(Kind::Float))
    }

    /// Refuses names the network does not have (a different network's file would have some);
    /// `num_batches_tracked` counters are training state and are ignored.
    fn finish(self) -> Result<()> {
        let extra: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k) && !k.ends_with(".num_batches_tracked"))
            .collect();
        if let Some(first) = extra.iter().min() {
            return Err(Error::file(
                &self.path,
                format!(
                    "{} tensors the FID Inception network does not have (first: `{first}`): \
                     not pytorch-fid's FID Inception weights",
                    extra.len()
                ),
            ));
        }
        Ok(())
    }
}

/// The whole network up to pool3, plus the 1008-way classifier's weight.
#[derive(Debug)]
pub struct InceptionV3 {
    conv2d_1a_3x3: BasicConv2d,
    conv2d_2a_3x3: BasicConv2d,
    conv2d_2b_3x3: BasicConv2d,
    conv2d_3b_1x1: BasicConv2d,
    conv2d_4a_3x3: BasicConv2d,
    mixed_5b: InceptionA,
    mixed_5c: InceptionA,
    mixed_5d: InceptionA,
    mixed_6a: InceptionB,
    mixed_6b: InceptionC,
    mixed_6c: InceptionC,
    mixed_6d: InceptionC,
    mixed_6e: InceptionC,
    mixed_7a: InceptionD,
    mixed_7b: InceptionE,
    mixed_7c: InceptionE,
    /// `fc.weight`, [1008, 2048]. (`fc.bias` is checked on load but unused: see
    /// [`InceptionV3::logits`].)
    fc_weight: Tensor,
}

impl InceptionV3 {
    /// Builds the network from a state_dict with pytorch-fid's names, shapes checked.
    pub(crate) fn from_params(mut params: Params) -> Result<Self> {
        let p = &mut params;
        let net = InceptionV3 {
            conv2d_1a_3x3: BasicConv2d::new(p, "Conv2d_1a_3x3", 3, 32, ks2(3))?,
            conv2d_2a_3x3: BasicConv2d::new(p, "Conv2d_2a_3x3", 32, 32, k(3))?,
            conv2d_2b_3x3: BasicConv2d::new(p, "Conv2d_2b_3x3", 32, 64, kp(3, 1))?,
            conv2d_3b_1x1: BasicConv2d::new(p, "Conv2d_3b_1x1", 64, 80, k(1))?,
            conv2d_4a_3x3: BasicConv2d::new(p, "Conv2d_4a_3x3", 80, 192, k(3))?,
            mixed_5b: InceptionA::new(p, "Mixed_5b", 192, 32)?,
            mixed_5c: InceptionA::new(p, "Mixed_5c", 256, 64)?,
            mixed_5d: InceptionA::new(p, "Mixed_5d", 288, 64)?,
            mixed_6a: InceptionB::new(p, "Mixed_6a", 288)?,
            mixed_6b: InceptionC::new(p, "Mixed_6b", 768, 128)?,
            mixed_6c: InceptionC::new(p, "Mixed_6c", 768, 160)?,
            mixed_6d: InceptionC::new(p, "Mixed_6d", 768, 160)?,
            mixed_6e: InceptionC::new(p, "Mixed_6e", 768, 192)?,
            mixed_7a: InceptionD::new(p, "Mixed_7a", 768)?,
            mixed_7b: InceptionE::new(p, "Mixed_7b", 1280, EPool::Avg)?,
            mixed_7c: InceptionE::new(p, "Mixed_7c", 2048, EPool::Max)?,
            fc_weight: p.take("fc.weight", &[CLASSES as i64, POOL3_DIMS as i64])?,
        };
        let _unused_bias = p.take("fc.bias", &[CLASSES as i64])?;
        params.finish()?;
        Ok(net)
    }

    /// Moves every weight to `device`.
    pub fn move_to(&mut self, device: tch::Device) {
        let mut convs = vec![
            &mut self.conv2d_1a_3x3,
            &mut self.conv2d_2a_3x3,
            &mut self.conv2d_2b_3x3,
            &mut self.conv2d_3b_1x1,
            &mut self.conv2d_4a_3x3,
        ];
        for block in [&mut self.mixed_5b, &mut self.mixed_5c, &mut self.mixed_5d] {
            convs.extend(block.convs());
        }
        convs.extend(self.mixed_6a.convs());
        for block in [
            &mut self.mixed_6b,
            &mut self.mixed_6c,
            &mut self.mixed_6d,
            &mut self.mixed_6e,
        ] {
            convs.extend(block.convs());
        }
        convs.extend(self.mixed_7a.convs());
        convs.extend(self.mixed_7b.convs());
        convs.extend(self.mixed_7c.convs());
        for c in convs {
            c.move_to(device);
        }
        self.fc_weight = self.fc_weight.to_device(device);
    }

    /// Pool3 features [N, 2048] of a preprocessed batch [N, 3, H, W] (values in [−1, 1]):
    /// pytorch-fid's blocks 0–3, ending in the adaptive average pool.
    pub fn pool3(&self, x: &Tensor) -> Tensor {
        let mut x = self.conv2d_1a_3x3.forward(x);
        x = self.conv2d_2a_3x3.forward(&x);
        x = self.conv2d_2b_3x3.forward(&x);
        x = max_pool_3x3_s2(&x);
        x = self.conv2d_3b_1x1.forward(&x);
        x = self.conv2d_4a_3x3.forward(&x);
        x = max_pool_3x3_s2(&x);
        x = self.mixed_5b.forward(&x);
        x = self.mixed_5c.forward(&x);
        x = self.mixed_5d.forward(&x);
        x = self.mixed_6a.forward(&x);
        x = self.mixed_6b.forward(&x);
        x = self.mixed_6c.forward(&x);
        x = self.mixed_6d.forward(&x);
        x = self.mixed_6e.forward(&x);
        x = self.mixed_7a.forward(&x);
        x = self.mixed_7b.forward(&x);
        x = self.mixed_7c.forward(&x);
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    /// The 1008 logits of pool3 features as the original Inception Score code computes them:
    /// pool3 · Wᵀ with the graph's `softmax/logits` weight and no bias (openai/improved-gan's
    /// `inception_score/model.py`; torch-fidelity's `logits_unbiased`).
    pub fn logits(&self, pool3: &Tensor) -> Tensor {
        pool3.matmul(&self.fc_weight.tr())
    }
}
