//! The blocks of the FID Inception network, one struct per torchvision/pytorch-fid module,
//! fields named as its submodules (`branch7x7dbl_3`), so parameter names are the state_dict's.

use tch::{Kind, Tensor};

use super::{Params, BN_EPS};
use crate::error::Result;

/// torchvision's BasicConv2d (conv without bias → BatchNorm2d(eps=0.001) → ReLU), with the
/// BatchNorm folded in: w' = w·γ/√(var+ε), b' = β − mean·γ/√(var+ε).
#[derive(Debug)]
pub(super) struct BasicConv2d {
    weight: Tensor,
    bias: Tensor,
    stride: [i64; 2],
    padding: [i64; 2],
}

/// A BasicConv2d's geometry: kernel (h, w), stride, padding (h, w).
#[derive(Clone, Copy)]
pub(super) struct Geom {
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
}

pub(super) const fn k(kernel: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 1,
        padding: [0, 0],
    }
}
pub(super) const fn kp(kernel: i64, padding: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 1,
        padding: [padding, padding],
    }
}
pub(super) const fn ks2(kernel: i64) -> Geom {
    Geom {
        kernel: [kernel, kernel],
        stride: 2,
        padding: [0, 0],
    }
}
/// 1×n (`row`) and n×1 convolutions with "same" padding.
pub(super) const fn row(n: i64) -> Geom {
    Geom {
        kernel: [1, n],
        stride: 1,
        padding: [0, n / 2],
    }
}
pub(super) const fn col(n: i64) -> Geom {
    Geom {
        kernel: [n, 1],
        stride: 1,
        padding: [n / 2, 0],
    }
}

impl BasicConv2d {
    pub(super) fn new(p: &mut Params, name: &str, cin: i64, cout: i64, g: Geom) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
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

    pub(super) fn move_to(&mut self, device: tch::Device) {
        self.weight = self.weight.to_device(device);
        self.bias = self.bias.to_device(device);
    }
}

/// TensorFlow's 3×3 average pool, stride 1, "SAME" padding: padded zeros are not counted
/// (the FID blocks' patch of torchvision's `count_include_pad=True`).
fn avg_pool_tf(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)
}

pub(super) fn max_pool_3x3_s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// `FIDInceptionA` (Mixed_5b/5c/5d).
#[derive(Debug)]
pub(super) struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    pub(super) fn new(p: &mut Params, name: &str, cin: i64, pool_features: i64) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        let b1 = self.branch1x1.forward(x);
        let b5 = self.branch5x5_2.forward(&self.branch5x5_1.forward(x));
        let b3 = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&self.branch3x3dbl_1.forward(x)));
        let bp = self.branch_pool.forward(&avg_pool_tf(x));
        Tensor::cat(&[b1, b5, b3, bp], 1)
    }

    pub(super) fn convs(&mut self) -> Vec<&mut BasicConv2d> {
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
pub(super) struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    pub(super) fn new(p: &mut Params, name: &str, cin: i64) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        let b3 = self.branch3x3.forward(x);
        let bd = self
            .branch3x3dbl_3
            .forward(&self.branch3x3dbl_2.forward(&self.branch3x3dbl_1.forward(x)));
        Tensor::cat(&[b3, bd, max_pool_3x3_s2(x)], 1)
    }

    pub(super) fn convs(&mut self) -> Vec<&mut BasicConv2d> {
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
pub(super) struct InceptionC {
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
    pub(super) fn new(p: &mut Params, name: &str, cin: i64, c7: i64) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
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

    pub(super) fn convs(&mut self) -> Vec<&mut BasicConv2d> {
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
pub(super) struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    pub(super) fn new(p: &mut Params, name: &str, cin: i64) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
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

    pub(super) fn convs(&mut self) -> Vec<&mut BasicConv2d> {
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
pub(super) enum EPool {
    Avg,
    Max,
}

/// `FIDInceptionE_1` (Mixed_7b) and `FIDInceptionE_2` (Mixed_7c).
#[derive(Debug)]
pub(super) struct InceptionE {
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
    pub(super) fn new(p: &mut Params, name: &str, cin: i64, pool: EPool) -> Result<Self> {
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

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
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

    pub(super) fn convs(&mut self) -> Vec<&mut BasicConv2d> {
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
