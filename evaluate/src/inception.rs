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

/// Pool3 features: the 2048 channels of the final average pool, what FID compares.
pub const POOL3_DIMS: usize = 2048;
/// Classes of the TensorFlow graph's softmax (1000 ImageNet classes + 8 unused).
pub const CLASSES: usize = 1008;
/// Torchvision's BasicConv2d BatchNorm epsilon.
const BN_EPS: f64 = 0.001;

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
    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
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

/// torchvision's BasicConv2d (conv without bias → BatchNorm2d(eps=0.001) → ReLU), with the
/// BatchNorm folded in: w' = w·γ/√(var+ε), b' = β − mean·γ/√(var+ε).
#[derive(Debug)]
struct BasicConv2d {
    weight: Tensor,
    bias: Tensor,
    stride: [i64; 2],
    padding: [i64; 2],
}

/// A BasicConv2d's geometry: kernel (h, w), stride, padding (h, w).
#[derive(Clone, Copy)]
struct Geom {
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
}

const fn k(kernel: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 1,
        padding: [0, 0],
    }
}
const fn kp(kernel: i64, padding: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 1,
        padding: [padding, padding],
    }
}
const fn ks2(kernel: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 2,
        padding: [0, 0],
    }
}
/// 1×n (`row`) and n×1 convolutions with "same" padding.
const fn row(n: i64) -> Geom {
    Geom {
        kernel: [1, n],
        stride: 1,
        padding: [0, n / 2],
    }
}
const fn col(n: i64) -> Geom {
    Geom {
        kernel: [n, 1],
        stride: 1,
        padding: [n / 2, 0],
    }
}

impl BasicConv2d {
    fn new(p: &mut Params, name: &str, cin: i64, cout: i64, g: Geom) -> Result<Self> {
        let w = p.take(
            &format!("{name}.conv.weight"),
            &[cout, cin, g.kernel[0], g.kernel[1]],
        )?;
        let gamma = p.take(&format!("{name}.bn.weight"), &[cout])?;
        let beta = p.take(&format!("{name}.bn.bias"), &[cout])?;
        let mean = p.take(&format!("{name}.bn.running_mean"), &[cout])?;
        let var = p.take(&format!("{name}.bn.running_var"), &[cout])?;
        // Folded in f64, rounded once to f32.
        let scale = gamma.to_kind(Kind::Double) / (var.to_kind(Kind::Double) + BN_EPS).sqrt();
        let weight = (w.to_kind(Kind::Double) * scale.view([cout, 1, 1, 1])).to_kind(Kind::Float);
        let bias =
            (beta.to_kind(Kind::Double) - mean.to_kind(Kind::Double) * &scale).to_kind(Kind::Float);
        Ok(BasicConv2d {
            weight,
            bias,
            stride: [g.stride, g.stride],
            padding: g.padding,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            Some(&self.bias),
            self.stride,
            self.padding,
            [1, 1],
            1,
        )
        .relu_()
    }

    fn move_to(&mut self, device: tch::Device) {
        self.weight = self.weight.to_device(device);
        self.bias = self.bias.to_device(device);
    }
}

/// TensorFlow's 3×3 average pool, stride 1, "SAME" padding: padded zeros are not counted
/// (the FID blocks' patch of torchvision's `count_include_pad=True`).
fn avg_pool_tf(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
}

fn max_pool_3x3_s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// `FIDInceptionA` (Mixed_5b/5c/5d).
#[derive(Debug)]
struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(p: &mut Params, name: &str, cin: i64, pool_features: i64) -> Result<Self> {
        let c = |p: &mut Params, sub: &str, i, o, g| {
            BasicConv2d::new(p, &format!("{name}.{sub}"), i, o, g)
        };
        Ok(InceptionA {
            branch1x1: c(p, "branch1x1", cin, 64, k(1))?,
            branch5x5_1: c(p, "branch5x5_1", cin, 48, k(1))?,
            branch5x5_2: c(p, "branch5x5_2", 48, 64, kp(5, 2))?,
            branch3x3dbl_1: c(p, "branch3x3dbl_1", cin, 64, k(1))?,
            branch3x3dbl_2: c(p, "branch3x3dbl_2", 64, 96, kp(3, 1))?,
            branch3x3dbl_3: c(p, "branch3x3dbl_3", 96, 96, kp(3, 1))?,
            branch_pool: c(p, "branch_pool", cin, pool_features, k(1))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b5 = self.branch5x5_2.forward(&self.branch5x5_1.forward(x));
        let b3 = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&self.branch3x3dbl_1.forward(x)));
        let bp = self.branch_pool.forward(&avg_pool_tf(x));
        Tensor::cat(&[b1, b5, b3, bp], 1)
    }

    fn convs(&mut self) -> Vec<&mut BasicConv2d> {
        vec![
            &mut self.branch1x1,
            &mut self.branch5x5_1,
            &mut self.branch5x5_2,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3,
            &mut self.branch_pool,
        ]
    }
}

/// torchvision's `InceptionB` (Mixed_6a), unpatched.
#[derive(Debug)]
struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(p: &mut Params, name: &str, cin: i64) -> Result<Self> {
        let c = |p: &mut Params, sub: &str, i, o, g| {
            BasicConv2d::new(p, &format!("{name}.{sub}"), i, o, g)
        };
        Ok(InceptionB {
            branch3x3: c(p, "branch3x3", cin, 384, ks2(3))?,
            branch3x3dbl_1: c(p, "branch3x3dbl_1", cin, 64, k(1))?,
            branch3x3dbl_2: c(p, "branch3x3dbl_2", 64, 96, kp(3, 1))?,
            branch3x3dbl_3: c(p, "branch3x3dbl_3", 96, 96, ks2(3))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b3 = self.branch3x3.forward(x);
        let bd = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&self.branch3x3dbl_1.forward(x)));
        Tensor::cat(&[b3, bd, max_pool_3x3_s2(x)], 1)
    }

    fn convs(&mut self) -> Vec<&mut BasicConv2d> {
        vec![
            &mut self.branch3x3,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3,
        ]
    }
}

/// `FIDInceptionC` (Mixed_6b–6e).
#[derive(Debug)]
struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(p: &mut Params, name: &str, cin: i64, c7: i64) -> Result<Self> {
        let c = |p: &mut Params, sub: &str, i, o, g| {
            BasicConv2d::new(p, &format!("{name}.{sub}"), i, o, g)
        };
        Ok(InceptionC {
            branch1x1: c(p, "branch1x1", cin, 192, k(1))?,
            branch7x7_1: c(p, "branch7x7_1", cin, c7, k(1))?,
            branch7x7_2: c(p, "branch7x7_2", c7, c7, row(7))?,
            branch7x7_3: c(p, "branch7x7_3", c7, 192, col(7))?,
            branch7x7dbl_1: c(p, "branch7x7dbl_1", cin, c7, k(1))?,
            branch7x7dbl_2: c(p, "branch7x7dbl_2", c7, c7, col(7))?,
            branch7x7dbl_3: c(p, "branch7x7dbl_3", c7, c7, row(7))?,
            branch7x7dbl_4: c(p, "branch7x7dbl_4", c7, c7, col(7))?,
            branch7x7dbl_5: c(p, "branch7x7dbl_5", c7, 192, row(7))?,
            branch_pool: c(p, "branch_pool", cin, 192, k(1))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let mut b7 = self.branch7x7_1.forward(x);
        for conv in [&self.branch7x7_2, &self.branch7x7_3] {
            b7 = conv.forward(&b7);
        }
        let mut bd = self.branch7x7dbl_1.forward(x);
        for conv in [
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            bd = conv.forward(&bd);
        }
        let bp = self.branch_pool.forward(&avg_pool_tf(x));
        Tensor::cat(&[b1, b7, bd, bp], 1)
    }

    fn convs(&mut self) -> Vec<&mut BasicConv2d> {
        vec![
            &mut self.branch1x1,
            &mut self.branch7x7_1,
            &mut self.branch7x7_2,
            &mut self.branch7x7_3,
            &mut self.branch7x7dbl_1,
            &mut self.branch7x7dbl_2,
            &mut self.branch7x7dbl_3,
            &mut self.branch7x7dbl_4,
            &mut self.branch7x7dbl_5,
            &mut self.branch_pool,
        ]
    }
}

/// torchvision's `InceptionD` (Mixed_7a), unpatched.
#[derive(Debug)]
struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(p: &mut Params, name: &str, cin: i64) -> Result<Self> {
        let c = |p: &mut Params, sub: &str, i, o, g| {
            BasicConv2d::new(p, &format!("{name}.{sub}"), i, o, g)
        };
        Ok(InceptionD {
            branch3x3_1: c(p, "branch3x3_1", cin, 192, k(1))?,
            branch3x3_2: c(p, "branch3x3_2", 192, 320, ks2(3))?,
            branch7x7x3_1: c(p, "branch7x7x3_1", cin, 192, k(1))?,
            branch7x7x3_2: c(p, "branch7x7x3_2", 192, 192, row(7))?,
            branch7x7x3_3: c(p, "branch7x7x3_3", 192, 192, col(7))?,
            branch7x7x3_4: c(p, "branch7x7x3_4", 192, 192, ks2(3))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b3 = self.branch3x3_2.forward(&self.branch3x3_1.forward(x));
        let mut b7 = self.branch7x7x3_1.forward(x);
        for conv in [
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ] {
            b7 = conv.forward(&b7);
        }
        Tensor::cat(&[b3, b7, max_pool_3x3_s2(x)], 1)
    }

    fn convs(&mut self) -> Vec<&mut BasicConv2d> {
        vec![
            &mut self.branch3x3_1,
            &mut self.branch3x3_2,
            &mut self.branch7x7x3_1,
            &mut self.branch7x7x3_2,
            &mut self.branch7x7x3_3,
            &mut self.branch7x7x3_4,
        ]
    }
}

/// The pool branch of an E block: `FIDInceptionE_1` averages (without padded zeros),
/// `FIDInceptionE_2` takes the maximum, as the TensorFlow graph does.
#[derive(Debug, Clone, Copy)]
enum EPool {
    Avg,
    Max,
}

/// `FIDInceptionE_1` (Mixed_7b) and `FIDInceptionE_2` (Mixed_7c).
#[derive(Debug)]
struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
    pool: EPool,
}

impl InceptionE {
    fn new(p: &mut Params, name: &str, cin: i64, pool: EPool) -> Result<Self> {
        let c = |p: &mut Params, sub: &str, i, o, g| {
            BasicConv2d::new(p, &format!("{name}.{sub}"), i, o, g)
        };
        Ok(InceptionE {
            branch1x1: c(p, "branch1x1", cin, 320, k(1))?,
            branch3x3_1: c(p, "branch3x3_1", cin, 384, k(1))?,
            branch3x3_2a: c(p, "branch3x3_2a", 384, 384, row(3))?,
            branch3x3_2b: c(p, "branch3x3_2b", 384, 384, col(3))?,
            branch3x3dbl_1: c(p, "branch3x3dbl_1", cin, 448, k(1))?,
            branch3x3dbl_2: c(p, "branch3x3dbl_2", 448, 384, kp(3, 1))?,
            branch3x3dbl_3a: c(p, "branch3x3dbl_3a", 384, 384, row(3))?,
            branch3x3dbl_3b: c(p, "branch3x3dbl_3b", 384, 384, col(3))?,
            branch_pool: c(p, "branch_pool", cin, 192, k(1))?,
            pool,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b3 = self.branch3x3_1.forward(x);
        let b3 = Tensor::cat(
            &[
                self.branch3x3_2a.forward(&b3),
                self.branch3x3_2b.forward(&b3),
            ],
            1,
        );
        let bd = self.branch3x3dbl_2.forward(&self.branch3x3dbl_1.forward(x));
        let bd = Tensor::cat(
            &[
                self.branch3x3dbl_3a.forward(&bd),
                self.branch3x3dbl_3b.forward(&bd),
            ],
            1,
        );
        let pooled = match self.pool {
            EPool::Avg => avg_pool_tf(x),
            EPool::Max => x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false),
        };
        let bp = self.branch_pool.forward(&pooled);
        Tensor::cat(&[b1, b3, bd, bp], 1)
    }

    fn convs(&mut self) -> Vec<&mut BasicConv2d> {
        vec![
            &mut self.branch1x1,
            &mut self.branch3x3_1,
            &mut self.branch3x3_2a,
            &mut self.branch3x3_2b,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3a,
            &mut self.branch3x3dbl_3b,
            &mut self.branch_pool,
        ]
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
