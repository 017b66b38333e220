//! The flags of how a run uses its device (issue 16, part 1): `ncsn train` takes all of them,
//! `ncsn sample` the two that change the network's forward.

use clap::builder::TypedValueParser as _;
use trainer::speed::{Precision, Speed};

/// Precision and memory layout of the network's forward (`ncsn train` and `ncsn sample`).
#[derive(clap::Args, Debug, Clone)]
pub struct ForwardArgs {
    /// The network's forward and backward in fp32, or in bf16 under autocast (convolutions
    /// and matmuls in bfloat16, the ops autocast keeps in float32 there; the weights, the
    /// loss, Adam and the EMA stay float32). Sampling with bf16 draws slightly different
    /// images than with fp32.
    #[arg(long, default_value = "fp32", value_name = "fp32|bf16",
          value_parser = clap::builder::PossibleValuesParser::new(Precision::NAMES)
              .map(|s| s.parse::<Precision>().expect("one of the possible values")))]
    pub precision: Precision,
    /// Channels-last activations and weights (NHWC in memory), the layout of cuDNN's fastest
    /// convolutions on tensor-core GPUs. Same results up to the order of sums; checkpoints
    /// are the same either way.
    #[arg(long)]
    pub channels_last: bool,
}

/// `ncsn train`'s device flags.
#[derive(clap::Args, Debug, Clone)]
pub struct SpeedArgs {
    #[command(flatten)]
    pub forward: ForwardArgs,
    /// TF32 tensor cores for float32 convolutions and matmuls on CUDA (PyTorch's
    /// `allow_tf32` switches; 10 bits of mantissa in the products, float32 sums).
    /// `--tf32 false` for full float32.
    #[arg(long, default_value_t = Speed::default().tf32, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub tf32: bool,
    /// cuDNN's autotuner on CUDA (`torch.backends.cudnn.benchmark`): the fastest convolution
    /// algorithm per shape, timed in the first steps. `--cudnn-benchmark false` turns it off.
    #[arg(long, default_value_t = Speed::default().cudnn_benchmark, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub cudnn_benchmark: bool,
    /// Steps between the host's reads of the device: the losses (and their NaN/inf check,
    /// which still names the first bad step and σ), the metrics.jsonl and progress lines are
    /// read in one copy every N steps and before every checkpoint, so the GPU never waits for
    /// the host in between. Default: 100 on CUDA, 1 on the CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sync_every: Option<u64>,
}

impl ForwardArgs {
    pub fn speed(&self) -> Speed {
        Speed {
            precision: self.precision,
            channels_last: self.channels_last,
            ..Speed::default()
        }
    }
}

impl SpeedArgs {
    pub fn speed(&self) -> Speed {
        Speed {
            tf32: self.tf32,
            cudnn_benchmark: self.cudnn_benchmark,
            sync_every: self.sync_every,
            ..self.forward.speed()
        }
    }
}
