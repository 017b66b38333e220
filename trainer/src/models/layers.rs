//! The building blocks of NCSN/NCSNv2 (the authors' models/layers.py): convolutions with
//! PyTorch's default initialisation, the ResNet blocks of the encoder, and the RefineNet blocks
//! (RCU, MSF, CRP) of the decoder. Sub-path names are the authors' module names so state_dict
//! keys (`res2.0.conv2.conv.weight`, `refine4.output_convs.3_2_conv.weight`) line up.

use tch::nn::{Init, Path};
use tch::Tensor;

use super::normalization::{Norm, NormKind};

/// The nonlinearity (`model.nonlinearity`); the authors share one instance across all blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Elu,
    Relu,
    LeakyRelu,
    Swish,
}

impl Act {
    pub fn parse(name: &str) -> Option<Act> {
        match name.to_ascii_lowercase().as_str() {
            "elu" => Some(Act::Elu),
            "relu" => Some(Act::Relu),
            "lrelu" => Some(Act::LeakyRelu),
            "swish" => Some(Act::Swish),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Act::Elu => "ELU",
            Act::Relu => "ReLU",
            Act::LeakyRelu => "LeakyReLU(0.2)",
            Act::Swish => "Swish",
        }
    }

    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Act::Elu => x.elu(),
            Act::Relu => x.relu(),
            // nn.LeakyReLU(negative_slope=0.2)
            Act::LeakyRelu => x.maximum(&(x * 0.2)),
            Act::Swish => x * x.sigmoid(),
        }
    }
}

/// `nn.Conv2d` with stride 1. Initialised like PyTorch's `reset_parameters`:
/// kaiming_uniform(a=√5) for the weight and U(±1/√fan_in) for the bias, which both come to
/// U(−1/√fan_in, 1/√fan_in).
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    padding: i64,
    dilation: i64,
}

pub fn conv2d(p: &Path, cin: i64, cout: i64, kernel: i64, dilation: i64, bias: bool) -> Conv2d {
    let bound = 1.0 / ((cin * kernel * kernel) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    Conv2d {
        weight: p.var("weight", &[cout, cin, kernel, kernel], init),
        bias: bias.then(|| p.var("bias", &[cout], init)),
        // "same" padding: kernel // 2 for plain convs, `dilation` for the dilated 3x3 ones.
        padding: dilation * (kernel / 2),
        dilation,
    }
}

/// `conv3x3(cin, cout, bias)`.
pub fn conv3x3(p: &Path, cin: i64, cout: i64, bias: bool) -> Conv2d {
    conv2d(p, cin, cout, 3, 1, bias)
}

/// `dilated_conv3x3`: padding = dilation keeps the resolution.
pub fn dilated_conv3x3(p: &Path, cin: i64, cout: i64, dilation: i64) -> Conv2d {
    conv2d(p, cin, cout, 3, dilation, true)
}

impl Conv2d {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [1i64, 1],
            [self.padding, self.padding],
            [self.dilation, self.dilation],
            1,
        )
    }
}

/// `ConvMeanPool`: a stride-1 conv, then 2x2 mean pooling written as the sum of the four
/// strided sub-grids (the authors' form, kept for bitwise-close parity).
#[derive(Debug)]
pub struct ConvMeanPool {
    conv: Conv2d,
}

pub fn conv_mean_pool(p: &Path, cin: i64, cout: i64, kernel: i64) -> ConvMeanPool {
    ConvMeanPool {
        conv: conv2d(&(p / "conv"), cin, cout, kernel, 1, true),
    }
}

impl ConvMeanPool {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let o = self.conv.forward(x);
        let sub = |r: i64, c: i64| o.slice(2, r, None, 2).slice(3, c, None, 2);
        (sub(0, 0) + sub(1, 0) + sub(0, 1) + sub(1, 1)) / 4.0
    }
}

/// A conv that may also halve the resolution (the `conv2`/`shortcut` slots of a ResBlock).
#[derive(Debug)]
pub enum ConvLayer {
    Plain(Conv2d),
    MeanPool(ConvMeanPool),
}

impl ConvLayer {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            ConvLayer::Plain(c) => c.forward(x),
            ConvLayer::MeanPool(c) => c.forward(x),
        }
    }
}

/// What a ResBlock of Tables 2–3 does to its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResSpec {
    pub cin: i64,
    pub cout: i64,
    /// `resample='down'`. Without dilation it halves the resolution (ConvMeanPool); *with*
    /// dilation it does not (plain dilated convs, the authors' code).
    pub down: bool,
    pub dilation: Option<i64>,
}

impl ResSpec {
    /// Whether the block halves the spatial resolution.
    pub fn halves(&self) -> bool {
        self.down && self.dilation.is_none()
    }
}

/// `ResidualBlock` / `ConditionalResidualBlock`:
/// norm1 → act → conv1 → norm2 → act → conv2, plus the (possibly convolved) shortcut.
#[derive(Debug)]
pub struct ResidualBlock {
    normalize1: Norm,
    conv1: Conv2d,
    normalize2: Norm,
    conv2: ConvLayer,
    shortcut: Option<ConvLayer>,
    act: Act,
}

pub fn residual_block(p: &Path, s: ResSpec, act: Act, norm: NormKind) -> ResidualBlock {
    let (cin, cout) = (s.cin, s.cout);
    let (conv1, n2, conv2, shortcut) = match (s.down, s.dilation) {
        (true, Some(d)) => (
            dilated_conv3x3(&(p / "conv1"), cin, cin, d),
            cin,
            ConvLayer::Plain(dilated_conv3x3(&(p / "conv2"), cin, cout, d)),
            Some(ConvLayer::Plain(dilated_conv3x3(
                &(p / "shortcut"),
                cin,
                cout,
                d,
            ))),
        ),
        (true, None) => (
            conv3x3(&(p / "conv1"), cin, cin, true),
            cin,
            ConvLayer::MeanPool(conv_mean_pool(&(p / "conv2"), cin, cout, 3)),
            Some(ConvLayer::MeanPool(conv_mean_pool(
                &(p / "shortcut"),
                cin,
                cout,
                1,
            ))),
        ),
        (false, Some(d)) => (
            dilated_conv3x3(&(p / "conv1"), cin, cout, d),
            cout,
            ConvLayer::Plain(dilated_conv3x3(&(p / "conv2"), cout, cout, d)),
            (cin != cout)
                .then(|| ConvLayer::Plain(dilated_conv3x3(&(p / "shortcut"), cin, cout, d))),
        ),
        (false, None) => (
            conv3x3(&(p / "conv1"), cin, cout, true),
            cout,
            ConvLayer::Plain(conv3x3(&(p / "conv2"), cout, cout, true)),
            (cin != cout)
                .then(|| ConvLayer::Plain(conv2d(&(p / "shortcut"), cin, cout, 1, 1, true))),
        ),
    };
    ResidualBlock {
        normalize2: norm.build(&(p / "normalize2"), n2),
        normalize1: norm.build(&(p / "normalize1"), cin),
        conv1,
        conv2,
        shortcut,
        act,
    }
}

impl ResidualBlock {
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let h = self.act.apply(&self.normalize1.forward(x, y));
        let h = self.conv1.forward(&h);
        let h = self.act.apply(&self.normalize2.forward(&h, y));
        let h = self.conv2.forward(&h);
        let shortcut = match &self.shortcut {
            Some(s) => s.forward(x),
            None => x.shallow_clone(),
        };
        shortcut + h
    }
}

/// `RCUBlock` / `CondRCUBlock` (residual conv unit): `n_blocks` times
/// x ← x + conv(act([norm] x)) … over `n_stages` bias-free 3x3 convs named `{i}_{j}_conv`.
#[derive(Debug)]
pub struct RcuBlock {
    stages: Vec<Vec<(Option<Norm>, Conv2d)>>,
    act: Act,
}

pub fn rcu_block(
    p: &Path,
    features: i64,
    n_blocks: usize,
    n_stages: usize,
    act: Act,
    norm: Option<NormKind>,
) -> RcuBlock {
    let stages = (1..=n_blocks)
        .map(|i| {
            (1..=n_stages)
                .map(|j| {
                    let n = norm.map(|k| k.build(&(p / format!("{i}_{j}_norm")), features));
                    let c = conv3x3(&(p / format!("{i}_{j}_conv")), features, features, false);
                    (n, c)
                })
                .collect()
        })
        .collect();
    RcuBlock { stages, act }
}

impl RcuBlock {
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        for block in &self.stages {
            let residual = x.shallow_clone();
            for (norm, conv) in block {
                if let Some(n) = norm {
                    x = n.forward(&x, y);
                }
                x = conv.forward(&self.act.apply(&x));
            }
            x += residual;
        }
        x
    }
}

/// `MSFBlock` / `CondMSFBlock` (multi-resolution fusion): a biased 3x3 conv per input
/// (after its norm in the conditional form), bilinearly resized (align_corners=True) to the
/// output shape, summed.
#[derive(Debug)]
pub struct MsfBlock {
    convs: Vec<(Option<Norm>, Conv2d)>,
}

pub fn msf_block(p: &Path, in_planes: &[i64], features: i64, norm: Option<NormKind>) -> MsfBlock {
    let convs = in_planes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let conv = conv3x3(&(p / "convs" / i), c, features, true);
            let n = norm.map(|k| k.build(&(p / "norms" / i), c));
            (n, conv)
        })
        .collect();
    MsfBlock { convs }
}

impl MsfBlock {
    pub fn forward(&self, xs: &[Tensor], y: &Tensor, shape: [i64; 2]) -> Tensor {
        let mut sum: Option<Tensor> = None;
        for ((norm, conv), x) in self.convs.iter().zip(xs) {
            let h = match norm {
                Some(n) => conv.forward(&n.forward(x, y)),
                None => conv.forward(x),
            };
            let h = h.upsample_bilinear2d(shape, true, None::<f64>, None::<f64>);
            sum = Some(match sum {
                Some(s) => s + h,
                None => h,
            });
        }
        sum.expect("an MSF block has at least one input")
    }
}

/// `CRPBlock` / `CondCRPBlock` (chained residual pooling): act, then `n_stages` times
/// path ← conv(pool([norm] path)); x ← x + path. Max pooling 5x5/1/2 in NCSNv2, average
/// pooling in the original NCSN (paper App. B.1, modification (ii)).
#[derive(Debug)]
pub struct CrpBlock {
    convs: Vec<(Option<Norm>, Conv2d)>,
    maxpool: bool,
    act: Act,
}

pub fn crp_block(
    p: &Path,
    features: i64,
    n_stages: usize,
    act: Act,
    norm: Option<NormKind>,
) -> CrpBlock {
    let convs = (0..n_stages)
        .map(|i| {
            let n = norm.map(|k| k.build(&(p / "norms" / i), features));
            (n, conv3x3(&(p / "convs" / i), features, features, false))
        })
        .collect();
    CrpBlock {
        convs,
        maxpool: norm.is_none(),
        act,
    }
}

impl CrpBlock {
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let mut x = self.act.apply(x);
        let mut path = x.shallow_clone();
        for (norm, conv) in &self.convs {
            if let Some(n) = norm {
                path = n.forward(&path, y);
            }
            path = if self.maxpool {
                // libtorch's max_pool2d(5, stride 1, padding 2), bit for bit, with a kernel
                // that is ~6x faster on the CPU (torchrt::pool); like tch's own ops, a libtorch
                // error here (an input no max-pool takes) is a panic with its message.
                torchrt::pool::max_pool2d_same(&path, 5).unwrap_or_else(|e| panic!("{e}"))
            } else {
                path.avg_pool2d([5i64, 5], [1i64, 1], [2i64, 2], false, true, None::<i64>)
            };
            path = conv.forward(&path);
            x = &path + x;
        }
        x
    }
}

/// `RefineBlock` / `CondRefineBlock`: two RCUs per input (`adapt_convs.i`), MSF when there is
/// more than one input, CRP, and an output RCU of 1 block (3 for the last, `end`).
#[derive(Debug)]
pub struct RefineBlock {
    adapt_convs: Vec<RcuBlock>,
    msf: Option<MsfBlock>,
    crp: CrpBlock,
    output_convs: RcuBlock,
}

/// A RefineBlock's shape: input channels (deepest first), output features, first/last flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefineSpec {
    pub in_planes: Vec<i64>,
    pub features: i64,
    pub start: bool,
    pub end: bool,
}

pub fn refine_block(p: &Path, s: &RefineSpec, act: Act, norm: Option<NormKind>) -> RefineBlock {
    let adapt_convs = s
        .in_planes
        .iter()
        .enumerate()
        .map(|(i, &c)| rcu_block(&(p / "adapt_convs" / i), c, 2, 2, act, norm))
        .collect();
    let n_out = if s.end { 3 } else { 1 };
    RefineBlock {
        adapt_convs,
        output_convs: rcu_block(&(p / "output_convs"), s.features, n_out, 2, act, norm),
        msf: (!s.start).then(|| msf_block(&(p / "msf"), &s.in_planes, s.features, norm)),
        crp: crp_block(&(p / "crp"), s.features, 2, act, norm),
    }
}

impl RefineBlock {
    pub fn forward(&self, xs: &[Tensor], y: &Tensor, shape: [i64; 2]) -> Tensor {
        let hs: Vec<Tensor> = self
            .adapt_convs
            .iter()
            .zip(xs)
            .map(|(rcu, x)| rcu.forward(x, y))
            .collect();
        let h = match (&self.msf, hs.len()) {
            (Some(msf), n) if n > 1 => msf.forward(&hs, y, shape),
            _ => hs[0].shallow_clone(),
        };
        let h = self.crp.forward(&h, y);
        self.output_convs.forward(&h, y)
    }
}
